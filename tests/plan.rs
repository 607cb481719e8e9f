//! Features and the dry run (issue 19): `nsboot_plan_explain` prints the
//! steps the stages log (debug level) when they run the same message, and
//! `nsboot_features` reports what this machine does.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// `stage-N: step` lines of the dry run.
fn explain(args: &[&str]) -> Vec<String> {
    let o = spawn_probe(&[args, &["--explain"]].concat(), &["true"]);
    assert!(o.status.success(), "explain {args:?}: {}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

/// The `step:` lines a real run logs at debug level, as `stage-N: step`,
/// grouped by stage (each stage's own order kept).
fn logged(args: &[&str]) -> Vec<String> {
    let dir = TestDir::adopt(std::path::PathBuf::from(format!("/tmp/nsboot-plan-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    let o = spawn_probe(&[args, &["--log", log.to_str().unwrap()]].concat(), &["true"]);
    assert!(o.status.success(), "run {args:?}: {}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut by_stage: Vec<Vec<String>> = vec![Vec::new(); 3];
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        let msg = v["msg"].as_str().unwrap();
        // "nsexec-N[PID]: step: ..."
        let Some(rest) = msg.strip_prefix("nsexec-") else { continue };
        let stage: usize = rest[..1].parse().unwrap();
        if let Some((_, step)) = rest.split_once("]: step: ") {
            by_stage[stage].push(format!("stage-{stage}: {step}"));
        }
    }
    by_stage.concat()
}

fn same_plan(args: &[&str]) {
    let dry = explain(args);
    let real = logged(args);
    assert!(!dry.is_empty());
    assert_eq!(dry, real, "dry run vs the debug log of the real run, for {args:?}");
}

#[test]
fn dry_run_equals_the_logged_steps() {
    require_root!();
    same_plan(&["--dialect", "1.2", "--ns", "uts,ipc,mnt,pid"]);
    same_plan(&["--dialect", "1.2", "--ns", "user,uts,mnt", "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536", "--setgroup"]);
    same_plan(&["--dialect", "1.2", "--join", "net:/proc/self/ns/net", "--ns", "uts"]);
    same_plan(&["--dialect", "1.1", "--ns", "cgroup,uts"]);
}

/// The dry run names what differs: the user namespace at clone, the join
/// order of the dialect, cgroup unshared by stage-2 in runc 1.1.
#[test]
fn dry_run_shows_the_choices() {
    let user = explain(&["--dialect", "1.2", "--ns", "user,uts", "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536"]);
    assert_eq!(user[0], "stage-0: clone stage-1 (clone3 CLONE_PIDFD|CLONE_PARENT|CLONE_NEWUSER; fallback clone + pidfd_open)");
    assert!(user.contains(&"stage-0: write stage-1's uid_map, gid_map".to_owned()), "{user:?}");
    let join = explain(&["--dialect", "1.2", "--join", "net:/proc/self/ns/net"]);
    assert!(join.contains(&"stage-1: join namespaces (passes: non-user, user, the rest): net:/proc/self/ns/net".to_owned()), "{join:?}");
    let cg = explain(&["--dialect", "1.1", "--ns", "cgroup,uts"]);
    assert!(cg.contains(&"stage-2: unshare cgroup namespace".to_owned()), "{cg:?}");
    assert!(cg.contains(&"stage-1: unshare uts (flags 0x4000000)".to_owned()), "{cg:?}");
}

fn features(pre: &[&str]) -> serde_json::Value {
    let (spawn, probe) = c_programs();
    let mut cmd = Command::new(pre.first().copied().unwrap_or(spawn.to_str().unwrap()));
    if !pre.is_empty() {
        cmd.args(&pre[1..]).arg(spawn);
    }
    cmd.arg("--features").arg("--").arg(probe);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// The document's values against independent checks of this machine, and
/// userns_allowed turning false when user.max_user_namespaces is set to 0
/// in a user namespace of the test's own.
#[test]
fn features_match_the_machine() {
    let f = features(&[]);
    for k in ["openat2", "mount_setattr", "open_tree", "clone3", "clone_into_cgroup", "pidfd_open", "waitid_pidfd", "idmapped_mounts"] {
        assert!(f[k].is_boolean(), "{k}: {f}");
    }
    assert_eq!(f["time_namespace"], std::path::Path::new("/proc/self/ns/time").exists());
    assert_eq!(f["dialects"], serde_json::json!(["runc-1.1", "runc-1.2"]));
    let uname = String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    let v: Vec<u32> = uname.split(['.', '-']).take(2).filter_map(|x| x.parse().ok()).collect();
    if v.len() == 2 && (v[0], v[1]) >= (5, 12) {
        for k in ["openat2", "mount_setattr", "open_tree", "clone3", "clone_into_cgroup", "pidfd_send_signal", "waitid_pidfd", "idmapped_mounts"] {
            assert_eq!(f[k], true, "{k} on Linux {uname}: {f}");
        }
    }
    let unshare_ok = have("unshare") && Command::new("unshare").args(["-U", "true"]).status().map(|s| s.success()).unwrap_or(false);
    assert_eq!(f["userns_allowed"], unshare_ok, "{f}");
    match Command::new("sh").args(["-c", "command -v newuidmap"]).output() {
        Ok(o) if o.status.success() => assert_eq!(f["newuidmap"]["path"], stdout(&o).trim(), "{f}"),
        _ => assert!(f["newuidmap"].is_null(), "{f}"),
    }
    if is_root() && have("unshare") {
        let f0 = features(&["unshare", "-U", "-r", "sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"", "sh"]);
        assert_eq!(f0["userns_allowed"], false, "{f0}");
        assert_eq!(f0["max_user_namespaces"], 0, "{f0}");
    }
}
