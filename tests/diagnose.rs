//! Errors that name the cause (issue 19): each diagnosis provoked for real
//! in a namespace or mount of the test's own, and the structured record
//! (stage, step, syscall, errno, path, cause, hint) checked as the C API
//! (tests/c/spawn.c --errors) and the Rust API return it.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// The `spawn: record k=v ...` line of a failed spawn, as a map.
fn record(o: &std::process::Output) -> HashMap<String, String> {
    let err = stderr(o);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("spawn: record "))
        .unwrap_or_else(|| panic!("no record line (exit {:?}):\n{err}\n{}", o.status.code(), stdout(o)));
    // hint= is last and may hold spaces.
    let (head, hint) = line.split_once(" hint=").expect("hint field");
    let mut m: HashMap<String, String> =
        head.split(' ').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    m.insert("hint".into(), hint.to_owned());
    m
}

fn spawn_cmd(pre: &[&str], args: &[&str]) -> Command {
    let (spawn, probe) = c_programs();
    let mut cmd = Command::new(pre.first().copied().unwrap_or_else(|| spawn.to_str().unwrap()));
    if !pre.is_empty() {
        cmd.args(&pre[1..]).arg(spawn);
    }
    cmd.arg("--errors").args(args).arg("--").arg(probe).arg("true");
    cmd
}

/// user.max_user_namespaces = 0, set in a user namespace of the test's own
/// (the limit is per user namespace): stage-0's clone(CLONE_NEWUSER) fails
/// with ENOSPC, and the record says why. The log line keeps runc's format.
#[test]
fn userns_max_zero() {
    require_root!();
    if !have("unshare") {
        skip("needs unshare(1)");
        return;
    }
    let (spawn, probe) = c_programs();
    let mut cmd = Command::new("unshare");
    cmd.args(["-U", "-r", "sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"", "sh"]);
    cmd.arg(spawn).args(["--errors", "--ns", "user,uts", "--uid-map", "0 0 1", "--gid-map", "0 0 1", "--"]);
    cmd.arg(probe).arg("true");
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["stage"], "0");
    assert_eq!(r["syscall"], "clone");
    assert_eq!(r["errno"], "28", "ENOSPC");
    assert_eq!(r["cause"], "userns_max_zero");
    assert!(r["hint"].contains("user.max_user_namespaces is 0"), "{}", r["hint"]);
    // runc's log line format, unchanged: FATAL on stderr without a log pipe.
    assert!(stderr(&o).lines().any(|l| l.starts_with("FATAL: unshare(")), "{}", stderr(&o));
}

/// A host seccomp profile that refuses unshare(2): stage-1's unshare of the
/// UTS namespace fails with EPERM, diagnosed as the host's filter.
#[test]
fn host_seccomp_blocks_unshare() {
    require_root!();
    let o = run_with_timeout(spawn_cmd(&[], &["--seccomp-deny", "unshare", "--ns", "uts"]), Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["stage"], "1");
    assert_eq!(r["syscall"], "unshare");
    assert_eq!(r["errno"], "1");
    assert_eq!(r["cause"], "host_seccomp");
    assert!(r["hint"].contains("seccomp filter"), "{}", r["hint"]);
}

/// A filter that refuses clone3 is not a failure: stage-0 falls back to
/// clone + pidfd_open (Docker's default profile answers clone3 so).
#[test]
fn clone3_refused_falls_back_to_clone() {
    require_root!();
    let o = run_with_timeout(spawn_cmd(&[], &["--seccomp-deny", "clone3", "--ns", "uts,ipc"]), Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The three map-helper failures, as `nobody` with a 2-range map (a direct
/// write is EPERM, so stage-0 runs the helper).
fn rootless_with_helper(pre: &[&str], helper: &str) -> std::process::Output {
    let (spawn, probe) = c_programs();
    let map = "0 65534 1;1 100000 10";
    let mut cmd = Command::new(pre[0]);
    cmd.args(&pre[1..]).args(["runuser", "-u", "nobody", "--"]).arg(spawn);
    cmd.args(["--errors", "--ns", "user,uts", "--rootless", "--uid-map", map, "--gid-map", map]);
    cmd.args(["--uidmap-helper", helper, "--gidmap-helper", helper, "--"]).arg(probe).arg("true");
    run_with_timeout(cmd, Duration::from_secs(30))
}

fn can_run_as_nobody() -> bool {
    if !is_root() || !have("runuser") {
        skip("needs root and runuser");
        return false;
    }
    true
}

#[test]
fn map_helper_missing() {
    if !can_run_as_nobody() {
        return;
    }
    let o = rootless_with_helper(&["env"], "/nonexistent/nsboot-test/newuidmap");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["stage"], "0");
    assert_eq!(r["path"], "/nonexistent/nsboot-test/newuidmap");
    assert_eq!(r["cause"], "map_helper_missing");
    assert!(r["hint"].contains("install newuidmap"), "{}", r["hint"]);
}

/// A copy of the real newuidmap without its setuid bit.
#[test]
fn map_helper_not_setuid() {
    if !can_run_as_nobody() {
        return;
    }
    let Some(real) = ["/usr/bin/newuidmap", "/bin/newuidmap"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        skip("newuidmap not installed");
        return;
    };
    let dir = TestDir::adopt(std::path::PathBuf::from(format!("/tmp/nsboot-diag-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("newuidmap");
    std::fs::copy(real, &copy).unwrap();
    let _ = Command::new("chmod").arg("0755").arg(&*dir).arg(&copy).status();
    let o = rootless_with_helper(&["env"], copy.to_str().unwrap());
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["cause"], "map_helper_not_setuid", "{}", stderr(&o));
    assert!(r["hint"].contains("chmod u+s"), "{}", r["hint"]);
}

/// The real setuid newuidmap, with empty /etc/subuid and /etc/subgid
/// bind-mounted in a private mount namespace of this test.
#[test]
fn no_subordinate_ids() {
    if !can_run_as_nobody() || !have("unshare") {
        return;
    }
    let Some(real) = ["/usr/bin/newuidmap"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        skip("newuidmap not installed");
        return;
    };
    let dir = TestDir::adopt(std::path::PathBuf::from(format!("/tmp/nsboot-subid-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "").unwrap();
    let _ = Command::new("chmod").arg("a+rX").arg(&*dir).arg(&empty).status();
    let script = format!("mount --bind {e} /etc/subuid && mount --bind {e} /etc/subgid && exec \"$@\"", e = empty.display());
    let o = rootless_with_helper(&["unshare", "-m", "--propagation", "private", "sh", "-c", &script, "sh"], real);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["cause"], "no_subordinate_ids", "{}", stderr(&o));
    assert!(r["hint"].contains("/etc/subuid gives nobody no subordinate range"), "{}", r["hint"]);
}

/// Rust API: `SpawnOptions::error_records` gives `SpawnError::Stage` with
/// the typed record: joining a namespace path that does not exist.
#[test]
fn rust_typed_record() {
    require_root!();
    use nsboot::caller::{spawn, SpawnError, SpawnOptions};
    use nsboot::ns::NsKind;
    use nsboot::ns::NsPath;
    use nsboot::wire::{BootstrapConfig, Dialect};
    let (_, probe) = c_programs();
    let missing = format!("/nonexistent/nsboot-{}/net", rand_u32());
    let cfg = BootstrapConfig {
        ns_paths: vec![NsPath { kind: NsKind::Net, path: std::ffi::CString::new(missing.clone()).unwrap() }],
        ..Default::default()
    };
    let mut cmd = Command::new(probe);
    cmd.arg("true").stderr(std::process::Stdio::null());
    let opts = SpawnOptions { dialect: Dialect::Runc12, error_records: true, ..Default::default() };
    match spawn(cmd, &cfg, opts) {
        Err(SpawnError::Stage(f)) => {
            assert_eq!(f.stage, 1);
            assert_eq!(f.syscall.as_deref(), Some("open"));
            assert_eq!(f.errno, Some(libc::ENOENT));
            assert_eq!(f.path.as_deref(), Some(missing.as_str()));
            assert!(f.message.contains(&missing), "{f:?}");
        }
        other => panic!("want a stage record, got {other:?}"),
    }
}

/// /proc masked (a file bind-mounted over /proc/kcore or the like, as Docker does, in
/// a private mount namespace of the test's own): a rootless container's
/// new procfs is refused ("mount too revealing"), diagnosed as such.
#[test]
fn proc_masked_refuses_a_new_procfs() {
    // One of the files Docker masks, bind-mounted over with /dev/null.
    let Some(masked) = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        skip("no /proc file to mask");
        return;
    };
    if !can_run_as_nobody() || !have("unshare") {
        return;
    }
    let Some(bundle) = busybox_bundle("procmask", true) else { return };
    edit_config(&bundle, |v| {
        v["process"]["terminal"] = false.into();
        v["root"]["path"] = "rootfs".into();
    });
    let (spawn, probe) = c_programs();
    let cfg = bundle.join("config.json");
    // Only this /proc may be visible: other procfs mounts (other jobs' containers)
    // would let the kernel allow the new one. Unmounted in our namespace only.
    let script = format!(
        "grep ' - proc ' /proc/self/mountinfo | awk '{{print $5}}' | grep -vx /proc | while read m; do umount -l \"$m\"; done; \
         mount --bind /dev/null {masked} && exec \"$@\""
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh", "runuser", "-u", "nobody", "--"]).arg(spawn);
    cmd.args(["--errors", "--ns", "user,mnt,pid,uts,ipc", "--rootless", "--uid-map", "0 65534 1", "--gid-map", "0 65534 1"]);
    cmd.arg("--rootfs").arg(&cfg).arg("--bundle").arg(&*bundle).arg("--").arg(probe).args(["/bin/sh", "-c", "true"]);
    let mounts = OwnMounts::new(&[bundle.path()]);
    let o = run_with_timeout(cmd, Duration::from_secs(60));
    mounts.assert_unchanged("proc masked");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let r = record(&o);
    assert_eq!(r["stage"], "2", "{}", stderr(&o));
    assert_eq!(r["errno"], "1", "{}", stderr(&o));
    assert_eq!(r["cause"], "proc_masked", "{}", stderr(&o));
    assert!(r["hint"].contains("mount too revealing"), "{}", r["hint"]);
}

