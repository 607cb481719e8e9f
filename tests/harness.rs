//! Tests of the test harness itself (tests/common): skips are visible
//! (logged, and printed with their count at the end of `make test`), the
//! mount-leak checks look at a test's own mounts only, and a test's
//! directories go away when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `common::skip` logs `<suite>::<test>: <reason>` into NSBOOT_TEST_SKIP_DIR,
/// and scripts/report-skips.sh — which `make test` runs at its end, after
/// a failure too — prints each line and the count.
#[test]
fn skips_are_logged_and_reported_with_a_count() {
    let dir = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-skips-{}-{}", std::process::id(), rand_u32())));
    let report = |d: &Path| {
        let o = Command::new(root_dir().join("scripts/report-skips.sh")).arg(d).output().expect("report-skips.sh");
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(report(&dir), "skipped: none\n");
    // This binary, running only the probe below, which skips.
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "skip_probe", "--test-threads=1"])
        .env("NSBOOT_TEST_SKIP_DIR", dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let logged = std::fs::read_to_string(dir.join("harness.txt")).unwrap_or_default();
    assert_eq!(logged, "harness::skip_probe: a reason\n");
    let out = report(&dir);
    assert!(out.contains("  SKIP harness::skip_probe: a reason\n"), "{out}");
    assert!(out.ends_with("1 test or part of a test skipped (reason above)\n"), "{out}");
    // make test clears the log, runs the suites, and reports.
    let o = Command::new("make").args(["-n", "test"]).current_dir(root_dir()).output().expect("make");
    let plan = stdout(&o);
    assert!(plan.contains("rm -rf") && plan.contains("report-skips.sh"), "make test does not clear and report skips: {plan}");
    // The skips come before the final verdict, which is the last line.
    let (report, verdict) = (plan.find("report-skips.sh"), plan.find("all suites passed"));
    assert!(matches!((report, verdict), (Some(r), Some(v)) if r < v), "{plan}");
}

#[test]
#[ignore = "run by skips_are_logged_and_reported_with_a_count"]
fn skip_probe() {
    common::skip("a reason");
}

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
