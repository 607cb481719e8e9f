//! End-to-end bootstrap tests: a C caller (tests/c/spawn.c, C API) starts a
//! C host program (tests/c/probe.c, links libnsboot.so) whose constructor
//! runs the stages; checks run inside the namespaces.

mod common;

use common::*;
use std::time::Duration;

fn inside(args: &[&str], script: &str) -> String {
    let o = spawn_probe(args, &["sh", "-c", script]);
    assert!(o.status.success(), "spawn {args:?} failed: {}\n{}", stderr(&o), stdout(&o));
    stdout(&o)
}

#[test]
fn each_namespace_type_is_created() {
    require_root!();
    for kind in ["mnt", "uts", "ipc", "net", "pid", "cgroup", "time"] {
        let file = if kind == "mnt" { "mnt" } else { kind };
        let out = inside(&["--ns", kind], &format!("readlink /proc/self/ns/{file}"));
        let host = host_ns(file);
        assert_ne!(out.trim(), host, "{kind}: namespace inode unchanged");
        assert!(out.trim().starts_with(&format!("{file}:[")), "{kind}: {out}");
    }
}

#[test]
fn user_namespace_as_root_with_65536_ids() {
    require_root!();
    let out = inside(
        &["--ns", "user,mnt", "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536", "--setgroup"],
        "readlink /proc/self/ns/user; id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], host_ns("user"));
    assert_eq!(lines[1], "0");
    assert_eq!(lines[2], "0");
    for l in &lines[3..5] {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f, ["0", "100000", "65536"], "map line {l:?}");
    }
    assert_eq!(lines[5], "allow", "setgroups stays allowed when SETGROUP is set");
}

#[test]
fn pid_namespace_makes_pid_1() {
    require_root!();
    let out = inside(&["--ns", "pid,mnt"], "echo $$; readlink /proc/self/ns/pid");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1");
    assert_ne!(l[1], host_ns("pid"));
}

#[test]
fn hostname_change_is_not_visible_outside() {
    require_root!();
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = inside(&["--ns", "uts"], "hostname nsboot-uts-test && hostname");
    assert_eq!(out.trim(), "nsboot-uts-test");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before);
}

#[test]
fn new_ipc_namespace_is_empty() {
    require_root!();
    if !have("ipcmk") {
        eprintln!("SKIP new_ipc_namespace_is_empty: ipcmk (util-linux) missing");
        return;
    }
    let mk = std::process::Command::new("ipcmk").args(["-M", "4096"]).output().unwrap();
    let id: String = stdout(&mk).chars().filter(|c| c.is_ascii_digit()).collect();
    let host_lines = std::fs::read_to_string("/proc/sysvipc/shm").unwrap().lines().count();
    let out = inside(&["--ns", "ipc"], "cat /proc/sysvipc/shm | wc -l");
    let _ = std::process::Command::new("ipcrm").args(["-m", &id]).status();
    assert!(host_lines >= 2, "host segment was created");
    assert_eq!(out.trim(), "1", "only the header line inside");
}

#[test]
fn joins_a_helper_processes_namespaces_by_path() {
    require_root!();
    let (spawn, probe) = c_programs();
    let mark = marker("join");
    // A long-running container to join.
    let mut holder = std::process::Command::new(spawn)
        .args(["--ns", "net,uts,ipc,mnt", "--"])
        .arg(probe)
        .args(["sh", "-c", &format!("exec sleep 30 # {mark}")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its pid from "spawn: stage1_pid=.. stage2_pid=N".
    let mut err = holder.stderr.take().unwrap();
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut err, &mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid: i32 = line.split("stage2_pid=").nth(1).unwrap().trim().parse().unwrap();
    let want: Vec<String> = ["net", "uts", "ipc", "mnt"]
        .iter()
        .map(|k| std::fs::read_link(format!("/proc/{pid}/ns/{k}")).unwrap().to_string_lossy().into_owned())
        .collect();
    let mut args = Vec::new();
    for k in ["net", "uts", "ipc", "mnt"] {
        args.push("--join".to_owned());
        args.push(format!("{k}:/proc/{pid}/ns/{k}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = inside(&args, "for k in net uts ipc mnt; do readlink /proc/self/ns/$k; done");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = holder.wait();
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    for k in ["net", "uts"] {
        assert_ne!(want.iter().find(|w| w.starts_with(k)).unwrap(), &host_ns(k));
    }
}

#[test]
fn rootless_as_nobody_with_a_single_mapping() {
    require_root!();
    if !have("runuser") {
        eprintln!("SKIP rootless_as_nobody_with_a_single_mapping: runuser missing");
        return;
    }
    let (spawn, probe) = c_programs();
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", "nobody", "--"]).arg(spawn).args([
        "--ns",
        "user,mnt,uts,ipc,pid",
        "--rootless",
        "--uid-map",
        "0 65534 1",
        "--gid-map",
        "0 65534 1",
        "--",
    ]);
    cmd.arg(probe).args(["sh", "-c", "id -u; id -g; cat /proc/self/setgroups; echo $$; hostname rootless-ok && hostname"]);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "rootless spawn failed: {}", stderr(&o));
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), ["0", "0", "deny", "1", "rootless-ok"]);
}

#[test]
fn oom_score_adj_is_applied() {
    require_root!();
    let out = inside(&["--ns", "uts", "--oom", "345"], "cat /proc/self/oom_score_adj");
    assert_eq!(out.trim(), "345");
}

#[test]
fn every_log_line_is_json_with_level_and_msg() {
    require_root!();
    let dir = tempdir("log");
    let log = dir.join("log.json");
    let out = inside(
        &["--ns", "user,uts,pid", "--uid-map", "0 100000 1000", "--gid-map", "0 100000 1000", "--log", log.to_str().unwrap()],
        "true",
    );
    assert_eq!(out, "");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        let o = v.as_object().expect("object");
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["level", "msg"], "{line}");
        assert!(!o["msg"].as_str().unwrap().is_empty());
        n += 1;
    }
    assert!(n >= 5, "expected the stages' debug lines, got {n}:\n{text}");
    assert!(text.contains("nsexec-1["), "{text}");
    assert!(text.contains("nsexec-2["), "{text}");
}

#[test]
fn fds_handed_back_are_only_the_callers() {
    require_root!();
    // The program inside sees: what its caller inherited from us (stdio and
    // whatever this test process leaves inheritable), the init socket, and
    // `ls`'s own directory fd. Nothing of nsboot's (sync sockets, memfd,
    // namespace fds).
    let out = inside(
        &["--ns", "user,mnt,pid,net", "--uid-map", "0 100000 10", "--gid-map", "0 100000 10", "--sealed"],
        "exec ls -l /proc/self/fd",
    );
    let mine = inheritable_fds();
    let mut sockets = 0;
    for line in out.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = line.split_once(" -> ").unwrap();
        let fd: u32 = left.rsplit(' ').next().unwrap().parse().unwrap();
        if fd <= 2 || mine.contains(&fd) {
            continue;
        }
        if target.starts_with("socket:") {
            sockets += 1;
            continue;
        }
        // ls's own directory fd.
        assert!(target.starts_with("/proc/"), "unexpected fd {fd} -> {target} inside:\n{out}");
    }
    assert_eq!(sockets, 1, "exactly the init socket expected:\n{out}");
}

#[test]
fn caller_killed_mid_bootstrap_leaves_nothing() {
    require_root!();
    for point in ["stage1-before-usermap", "stage1-after-unshare", "stage2-start", "stage0-after-pid", "stage2-before-finish"] {
        let (spawn, probe) = c_programs();
        let mark = marker("kill-caller");
        let mut caller = std::process::Command::new(spawn)
            .env("NSBOOT_TEST_STOP_AT", point)
            .args(["--ns", "user,uts,pid", "--uid-map", "0 100000 10", "--gid-map", "0 100000 10", "--"])
            .arg(probe)
            .args(["sh", "-c", "true", &mark])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until a stage stopped itself at the point.
        let t = std::time::Instant::now();
        loop {
            let stopped = processes_with(&mark).into_iter().any(at_stop_point);
            if stopped {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "{point}: no stage reached the stop point");
            std::thread::sleep(Duration::from_millis(5));
        }
        caller.kill().unwrap();
        let _ = caller.wait();
        let left = wait_gone(&mark, Duration::from_secs(1));
        assert!(left.is_empty(), "{point}: stage processes survived the caller: {left:?}");
    }
}

pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}-{}", std::process::id(), rand_u32()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn running_binary_cannot_be_written_after_the_bootstrap() {
    require_root!();
    // Plain path (re-exec from a read-only view), caller-sealed memfd, and
    // rootless (memfd copy: no mount privilege).
    for (args, via, want) in [
        (vec!["--ns", "uts,pid"], "read-only bind", "exe: writable=0 rdonly-mount=1 sealed=0\n"),
        (vec!["--ns", "uts,pid", "--sealed"], "sealed memfd", "exe: writable=0 rdonly-mount=0 sealed=1\n"),
    ] {
        let (spawn, probe) = c_programs();
        let mut cmd = std::process::Command::new(spawn);
        cmd.env("NSBOOT_PROBE_EXE_CHECK", "1").args(&args).arg("--").arg(probe);
        let o = run_with_timeout(cmd, Duration::from_secs(30));
        let out = stdout(&o);
        assert!(o.status.success(), "{via}: {}", stderr(&o));
        assert_eq!(out, format!("{want}probe-main\n"), "{via}");
    }
    let (spawn, probe) = c_programs();
    let mut cmd = std::process::Command::new("runuser");
    cmd.env("NSBOOT_PROBE_EXE_CHECK", "1").args(["-u", "nobody", "--"]).arg(spawn);
    cmd.args(["--ns", "user,uts", "--rootless", "--uid-map", "0 65534 1", "--gid-map", "0 65534 1", "--"]).arg(probe);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "rootless: {}", stderr(&o));
    assert_eq!(stdout(&o), "exe: writable=0 rdonly-mount=0 sealed=1\nprobe-main\n", "rootless runs from a sealed memfd copy");
}

#[test]
fn joins_a_pid_namespace_by_path_like_runc_exec() {
    require_root!();
    // Regression: stage-2 forked into a *joined* PID namespace reads
    // getppid() == 0 (its parent, the caller, is outside); it used to take
    // that for "the caller died" and fail every `runc exec`-style join.
    let (spawn, probe) = c_programs();
    let mark = marker("join-pid");
    let mut holder = std::process::Command::new(spawn)
        .args(["--ns", "pid,mnt", "--"])
        .arg(probe)
        .args(["sh", "-c", "exec sleep 30", &mark])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = holder.stderr.take().unwrap();
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut err, &mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid: i32 = line.split("stage2_pid=").nth(1).unwrap().trim().parse().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap().to_string_lossy().into_owned();
    let (jp, jm) = (format!("pid:/proc/{pid}/ns/pid"), format!("mnt:/proc/{pid}/ns/mnt"));
    let out = inside(&["--join", &jp, "--join", &jm], "readlink /proc/self/ns/pid; echo $$");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = holder.wait();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], want);
    assert_ne!(l[1], "1", "a joined process is not the namespace's init");
}
