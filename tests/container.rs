//! One bootstrap, a whole container: the C caller sends the OCI config in
//! the nsboot extension attribute and stage-2 prepares the rootfs before
//! returning into the C program, which then runs busybox inside.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn run_in_bundle(dir: &std::path::Path, rootless: bool, extra: &[&str], script: &str) -> std::process::Output {
    let (spawn, probe) = c_programs();
    let cfg = dir.join("config.json");
    let mut cmd = if rootless {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(spawn);
        c
    } else {
        Command::new(spawn)
    };
    cmd.args(extra);
    cmd.arg("--rootfs").arg(&cfg).arg("--bundle").arg(dir).arg("--").arg(probe).args(["/bin/sh", "-c", script]);
    run_with_timeout(cmd, Duration::from_secs(30))
}

const CHECKS: &str = "echo pid=$$; hostname; ls /; \
    stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/tty; readlink /dev/ptmx; readlink /dev/fd; \
    grep -c ' /proc ' /proc/self/mountinfo; touch /x 2>&1; cat /proc/kcore 2>&1 | head -c 40; echo; ls /proc/self/fd";

#[test]
fn rootful_container_in_one_bootstrap() {
    require_root!();
    let Some(dir) = busybox_bundle("ctr", false) else { return };
    edit_config(&dir, |v| v["hostname"] = "nsboot-ctr".into());
    let mounts = OwnMounts::new(&[dir.path()]);
    let o = run_in_bundle(&dir, false, &["--ns", "mnt,pid,uts,ipc,net"], CHECKS);
    let out = stdout(&o);
    assert!(o.status.success(), "container failed: {}\n{out}", stderr(&o));
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("nsboot-ctr\n"), "{out}");
    assert!(out.contains("/dev/null character special file 1:3 666"), "{out}");
    assert!(out.contains("pts/ptmx\n/proc/self/fd\n"), "{out}");
    assert!(out.contains("Read-only file system"), "readonly root: {out}");
    // No host path visible: the bundle's files are the only root entries.
    assert!(!out.contains("config.json"), "{out}");
    mounts.assert_unchanged("rootful container");
}

#[test]
fn rootless_container_in_one_bootstrap() {
    require_root!();
    let Some(dir) = busybox_bundle("ctr-rl", true) else { return };
    let mounts = OwnMounts::new(&[dir.path()]);
    let o = run_in_bundle(
        &dir,
        true,
        &["--ns", "user,mnt,pid,uts,ipc,net", "--rootless", "--uid-map", "0 65534 1", "--gid-map", "0 65534 1"],
        "echo pid=$$; id -u; echo hi > /dev/null && echo null-ok; stat -c '%n %t:%T' /dev/null; ls /",
    );
    let out = stdout(&o);
    assert!(o.status.success(), "rootless container failed: {}\n{out}", stderr(&o));
    assert!(out.contains("pid=1\n0\nnull-ok\n/dev/null 1:3\n"), "{out}");
    mounts.assert_unchanged("rootless container");
}

#[test]
fn bad_rootfs_config_fails_before_anything_runs() {
    require_root!();
    let Some(dir) = busybox_bundle("ctr-bad", false) else { return };
    edit_config(&dir, |v| v["mounts"][1]["destination"] = "dev/relative".into());
    let mounts = OwnMounts::new(&[dir.path()]);
    let o = run_in_bundle(&dir, false, &["--ns", "mnt,pid"], "echo should-not-run");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("mounts[1].destination"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("should-not-run"));
    mounts.assert_unchanged("bad config");
}
