//! The container C API (`nsboot_container_*`, tests/c/container.c) and the
//! stage-2 `NSBOOT_ROOTFS_EXEC` flag (tests/c/spawn.c --exec): libnsboot
//! calls into the plugin's container table, loaded on demand.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{busybox_bundle, edit_config, stdout, OwnMounts};
use serde_json::json;

fn id(tag: &str) -> String {
    format!("nsboot-capi-{tag}-{}", std::process::id())
}

/// The config: busybox sh SCRIPT, Docker-like caps, no_new_privs, a pids
/// cgroup; the bundle made by `runc spec` (its namespaces and mounts).
fn bundle(tag: &str, script: &str, cgp: &str) -> Option<common::TestDir> {
    let b = busybox_bundle(tag, false)?;
    edit_config(b.path(), |c| {
        c["root"]["path"] = json!("rootfs");
        c["root"]["readonly"] = json!(false);
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
        let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []});
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["cgroupsPath"] = json!(cgp);
        c["linux"]["resources"] = json!({"pids": {"limit": 32}});
    });
    Some(b)
}

fn run(args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(common::c_program("container", &[]));
    cmd.args(args);
    let o = common::run_with_timeout(cmd, Duration::from_secs(60));
    (o.status.code().unwrap_or(-1), stdout(&o) + &common::stderr(&o))
}

fn assert_clean(state: &Path, cgp: &str) {
    assert!(!state.exists(), "state dir left");
    for c in ["pids", "memory", "cpu"] {
        let d = Path::new("/sys/fs/cgroup").join(c).join(cgp.trim_start_matches('/'));
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn c_api_runs_a_container() {
    require_root!();
    let cgp = format!("/{}", id("run"));
    let Some(b) = bundle("capi-run", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /proc/self/cgroup | grep pids; exit 7", &cgp) else { return };
    let mounts = OwnMounts::new(&[b.path()]);
    let state = b.path().join("state");
    let (code, out) = run(&["run", b.path().to_str().unwrap(), &id("run"), state.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // CHOWN 0, KILL 5, SETGID 6, SETUID 7.
    assert!(out.contains("CapEff:\t00000000000000e1"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains(&format!("pids:{cgp}")), "{out}");
    assert!(out.contains("status=7"), "{out}");
    assert_clean(&state, &cgp);
    mounts.assert_unchanged("nsboot_container_run");
}

#[test]
fn c_api_create_start_delete() {
    require_root!();
    let cgp = format!("/{}", id("life"));
    let Some(b) = bundle("capi-life", "echo in-container; exit 3", &cgp) else { return };
    let state = b.path().join("state");
    let (code, out) = run(&["lifecycle", b.path().to_str().unwrap(), &id("life"), state.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // Created: not yet the program (the C program's own image).
    assert!(out.lines().any(|l| l.starts_with("exe before start=") && l.contains("/container")), "{out}");
    let before = out.find("exe before start").unwrap();
    assert!(!out[..before].contains("in-container"), "ran before start: {out}");
    assert!(out.contains("in-container\nexited=3\n"), "{out}");
    assert!(out.contains("start after delete: state "), "{out}");
    assert_clean(&state, &cgp);
}

#[test]
fn c_api_refuses_a_hostile_config_and_creates_nothing() {
    require_root!();
    let cgp = format!("/{}", id("refused"));
    let Some(b) = bundle("capi-refused", "true", &cgp) else { return };
    edit_config(b.path(), |c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}));
    let state = b.path().join("state");
    let (code, out) = run(&["refused", b.path().to_str().unwrap(), &id("refused"), state.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("refused: ") && out.contains("SCMP_CMP_NOPE"), "{out}");
    assert_clean(&state, &cgp);
}

#[test]
fn c_api_features_has_the_seccomp_and_cgroup_sections() {
    let (code, out) = run(&["features"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("features JSON");
    assert_eq!(v["linux"]["seccomp"]["enabled"], json!(true), "{out}");
    assert!(v["linux"]["seccomp"]["actions"].as_array().unwrap().contains(&json!("SCMP_ACT_NOTIFY")));
    assert_eq!(v["linux"]["cgroup"]["v2"], json!(true));
    assert!(v["annotations"]["io.github.seccomp.libseccomp.version"].as_str().is_some_and(|s| s.starts_with('2')));
}

/// One bootstrap turns a config.json into the running container process:
/// NSBOOT_ROOTFS_CONFIG + NSBOOT_ROOTFS_FLAGS = EXEC; stage-2 prepares the
/// rootfs, applies process.* with the seccomp filter and execs
/// process.args (the program given to spawn never runs).
#[test]
fn bootstrap_exec_flag_runs_process_args() {
    require_root!();
    let Some(b) = busybox_bundle("exec-flag", false) else { return };
    edit_config(b.path(), |c| {
        c["root"]["path"] = json!("rootfs");
        c["process"]["terminal"] = json!(false);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["args"] = json!(["sh", "-c", "id; pwd; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; readlink /bin/sh; echo readlink=$?"]);
        c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"], "effective": [], "permitted": [], "inheritable": [], "ambient": []});
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "ipc"}]);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["readlink", "readlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    });
    let mounts = OwnMounts::new(&[b.path()]);
    let (spawn, probe) = common::c_programs();
    let cfg = b.path().join("config.json");
    let o = common::run_with_timeout(
        {
            let mut c = Command::new(spawn);
            c.args(["--ns", "mnt,pid,uts,ipc", "--rootfs", cfg.to_str().unwrap(), "--bundle", b.path().to_str().unwrap(), "--exec", "--"]);
            c.arg(probe);
            c
        },
        Duration::from_secs(60),
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", common::stderr(&o));
    assert!(out.contains("uid=1000 gid=1000"), "{out}");
    assert!(out.contains("/tmp\n"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // readlink of /bin/sh (a symlink anyone may read) fails: the filter.
    assert!(out.contains("readlink=1") && !out.contains("busybox\n"), "{out}");
    mounts.assert_unchanged("bootstrap with NSBOOT_ROOTFS_EXEC");
}
