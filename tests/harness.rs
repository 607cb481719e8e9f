//! Tests of the test harness itself (tests/common): the mount-leak checks
//! look at a test's own mounts only, and a test's directories go away when
//! it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The leak checks of the suites look at the test's own mounts only: a
/// mount of another job appearing meanwhile does not fail them, one under
/// the test's directory does; and a test's directories are removed even
/// when it fails, with whatever is mounted inside them detached first (so
/// the removal never reaches a bind-mounted host directory).
#[test]
fn leak_checks_see_own_mounts_only_and_cleanup_survives_failure() {
    require_root!();
    let Some(r) = busybox_rootfs("guard", &["sh"]) else { return };
    let other = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-other-job-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(other.path()).unwrap();
    let mount = |what: &str, at: &Path, opts: &[&str]| {
        let st = Command::new("mount").args(opts).arg(what).arg(at).status().unwrap();
        assert!(st.success(), "mount {what} {}", at.display());
    };
    let own = OwnMounts::new(&[r.path()]);
    // Someone else mounts: not this test's business.
    mount("tmpfs", other.path(), &["-t", "tmpfs"]);
    own.assert_unchanged("another job's mount");
    // A mount under the test's directory: caught.
    mount("tmpfs", &r.join("tmp"), &["-t", "tmpfs"]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| own.assert_unchanged("own mount")));
    assert!(caught.is_err(), "a mount under the test's directory went unnoticed");
    // A test that fails with a host directory bind-mounted into its image:
    // the guard detaches it, then removes the image; the host directory's
    // file survives.
    std::fs::write(other.join("keep"), "host data").unwrap();
    mount(other.to_str().unwrap(), &r.join("root"), &["--bind"]);
    let path = r.to_path_buf();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _r = r;
        panic!("a failing test");
    }));
    assert!(failed.is_err());
    assert!(!path.exists(), "{} left behind by a failed test", path.display());
    assert!(!mount_points().iter().any(|p| p.starts_with(path.to_str().unwrap())), "mounts left under {}", path.display());
    assert_eq!(std::fs::read_to_string(other.join("keep")).unwrap(), "host data", "the removal reached into a bind mount");
}
