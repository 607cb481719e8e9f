//! fd hygiene, the CVE-2024-21626 class (issue #6, item 3): the process
//! handed back after the bootstrap (and the rootfs preparation) holds
//! exactly the fds its caller gave it. tests/c/probe.c lists
//! `/proc/self/fd` from `main`, *before* any exec, so close-on-exec fds
//! (sync sockets, namespace fds, the sealed memfd, the rootfs and /proc
//! directory fds) would show up too; the only fds allowed are stdio, the
//! fds this test process itself lets children inherit, the init socket and,
//! when the caller passed one, the log pipe.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Run `spawn ARGS -- probe` with the fd listing on, optionally as nobody;
/// return the listing.
fn fds_inside(args: &[String], as_nobody: bool) -> Vec<(u32, String)> {
    let (spawn, probe) = c_programs();
    let mut cmd = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(spawn);
        c
    } else {
        Command::new(spawn)
    };
    cmd.env("NSBOOT_PROBE_FDS", "1").args(args).arg("--").arg(probe);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "spawn {args:?} failed: {}\n{}", stderr(&o), stdout(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("fd "))
        .map(|l| {
            let (n, t) = l.split_once(" -> ").expect("fd line");
            (n.parse().expect("fd number"), t.to_owned())
        })
        .collect()
}

/// Assert the listing holds only what the caller gave.
fn only_the_callers(what: &str, fds: &[(u32, String)], log: Option<&Path>) {
    let mine = inheritable_fds();
    let mut sockets = 0;
    let mut logs = 0;
    for (fd, target) in fds {
        if *fd <= 2 || mine.contains(fd) {
            continue;
        }
        if target.starts_with("socket:") {
            sockets += 1;
            continue;
        }
        if let Some(l) = log {
            if target.contains(l.file_name().unwrap().to_str().unwrap()) {
                logs += 1;
                continue;
            }
        }
        panic!("{what}: fd {fd} -> {target} was not given by the caller; inside:\n{fds:?}");
    }
    assert_eq!(sockets, 1, "{what}: exactly the init socket expected: {fds:?}");
    assert_eq!(logs, usize::from(log.is_some()), "{what}: the log pipe: {fds:?}");
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn rootfs_args(dir: &Path) -> Vec<String> {
    strings(&["--rootfs", dir.join("config.json").to_str().unwrap(), "--bundle", dir.to_str().unwrap()])
}

#[test]
fn bootstrap_with_sealed_memfd_and_user_namespace() {
    require_root!();
    let args = strings(&["--ns", "user,mnt,pid,net", "--uid-map", "0 100000 10", "--gid-map", "0 100000 10", "--sealed"]);
    only_the_callers("bootstrap", &fds_inside(&args, false), None);
}

#[test]
fn after_rootfs_preparation_with_and_without_a_log_pipe() {
    require_root!();
    let Some(dir) = busybox_bundle("hyg", false) else { return };
    let mut args = strings(&["--ns", "mnt,pid,uts,ipc,net"]);
    args.extend(rootfs_args(&dir));
    only_the_callers("rootfs", &fds_inside(&args, false), None);
    let log = dir.join("nsboot-hygiene-log.json");
    let mut with_log = args.clone();
    with_log.extend(strings(&["--log", log.to_str().unwrap()]));
    only_the_callers("rootfs + log pipe", &fds_inside(&with_log, false), Some(&log));
    assert!(std::fs::read_to_string(&log).unwrap().contains("prepare rootfs"), "the log pipe was used");
}

#[test]
fn after_joining_namespaces_by_path() {
    require_root!();
    let mark = marker("hyg-join");
    let (mut holder, pid) = start_holder(
        &["--ns", "user,net,uts,ipc,mnt", "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536"],
        &mark,
    );
    let mut args = Vec::new();
    for k in ["user", "net", "uts", "ipc", "mnt"] {
        args.push("--join".to_owned());
        args.push(format!("{k}:/proc/{pid}/ns/{k}"));
    }
    let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hyg-join-{}.json", rand_u32()));
    args.extend(strings(&["--log", log.to_str().unwrap()]));
    let fds = fds_inside(&args, false);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = holder.wait();
    only_the_callers("joined user,net,uts,ipc,mnt by path + log pipe", &fds, Some(&log));
    let _ = std::fs::remove_file(&log);
}

#[test]
fn rootless_container_after_rootfs_preparation() {
    require_root!();
    if !have("runuser") {
        common::skip("runuser missing");
        return;
    }
    let Some(dir) = busybox_bundle("hyg-rl", true) else { return };
    let mut args =
        strings(&["--ns", "user,mnt,pid,uts,ipc,net", "--rootless", "--uid-map", "0 65534 1", "--gid-map", "0 65534 1"]);
    args.extend(rootfs_args(&dir));
    only_the_callers("rootless rootfs", &fds_inside(&args, true), None);
}
