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
        common::skip("ipcmk (util-linux) missing");
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
    let mark = marker("join");
    // A long-running container to join.
    let (mut holder, pid) = start_holder(&["--ns", "net,uts,ipc,mnt"], &mark);
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
        common::skip("runuser missing");
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
        // As root the caller's "sealed once" view is a detached read-only
        // bind mount too (no copy); unprivileged it is a sealed memfd (below).
        (vec!["--ns", "uts,pid", "--sealed"], "sealed once", "exe: writable=0 rdonly-mount=1 sealed=0\n"),
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
fn readme_rust_snippet_runs() {
    require_root!();
    // `cargo test` builds examples; `cargo test --test bootstrap` does not.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--example", "hello_rust"]);
    if profile_dir().ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building examples/hello_rust failed");
    let exe = profile_dir().join("examples/hello_rust");
    let o = run_with_timeout(std::process::Command::new(&exe), Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "inside: pid 1 uid 0 hostname hello-rust\n");
    // Not root: the example picks a rootless map itself (a copy under /tmp
    // that `nobody` can run).
    if !have("runuser") {
        common::skip("runuser missing: the rootless half");
        return;
    }
    let dir = TestDir::adopt(std::path::PathBuf::from(format!("/tmp/nsboot-hello-rust-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(dir.path()).unwrap();
    let copy = dir.join("hello_rust");
    std::fs::copy(&exe, &copy).unwrap();
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()).status();
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", "nobody", "--"]).arg(&copy);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "hello_rust as nobody: {}", stderr(&o));
    assert_eq!(stdout(&o), "inside: pid 1 uid 0 hostname hello-rust\n");
}

/// Run probe through the Rust caller with a log pipe at `level`; returns
/// the log lines and whether the bootstrap succeeded.
fn logged_run(level: u8, cfg: &nsboot::wire::BootstrapConfig) -> (Vec<serde_json::Value>, bool) {
    let (_, probe) = c_programs();
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut cmd = std::process::Command::new(probe);
    cmd.stderr(std::process::Stdio::null());
    let opts = nsboot::caller::SpawnOptions { log_fd: Some(std::os::fd::AsFd::as_fd(&w)), log_level: Some(level), ..Default::default() };
    let res = nsboot::caller::spawn(cmd, cfg, opts);
    drop(w);
    let ok = match res {
        Ok(mut s) => s.wait_init().map(|c| c == 0).unwrap_or(false),
        Err(_) => false,
    };
    let text = std::fs::read_to_string(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&r))).unwrap_or_default();
    let lines = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON {l:?}: {e}"))).collect();
    (lines, ok)
}

#[test]
fn log_level_is_honoured_and_failures_are_logged_fatal() {
    require_root!();
    let mut cfg = nsboot::wire::BootstrapConfig {
        clone_flags: nsboot::ns::NsSet::from_clone_flags(libc::CLONE_NEWUTS as u32).unwrap(),
        ..Default::default()
    };
    let (debug, ok) = logged_run(5, &cfg);
    assert!(ok);
    assert!(debug.iter().any(|l| l["level"] == "debug"), "{debug:?}");
    let (quiet, ok) = logged_run(2, &cfg);
    assert!(ok);
    assert!(quiet.is_empty(), "level 2 (error) must drop debug lines: {quiet:?}");
    // A failure at error level: exactly the fatal lines, naming the fault.
    cfg.ns_paths = nsboot::ns::parse_ns_list(b"net:/nonexistent/netns").unwrap();
    let (fatal, ok) = logged_run(2, &cfg);
    assert!(!ok);
    assert!(!fatal.is_empty());
    assert!(fatal.iter().all(|l| l["level"] == "fatal"), "{fatal:?}");
    assert!(fatal[0]["msg"].as_str().unwrap().contains("/nonexistent/netns"), "{fatal:?}");
}

/// A stand-in for newuidmap/newgidmap: records its argv (one per line,
/// NUL-safe enough for numbers) and then does what `mode` says.
fn fake_helper(dir: &std::path::Path, name: &str, mode: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let log = dir.join(format!("{name}.argv"));
    let body = match mode {
        // Write only the caller's own id (what an unprivileged helper may).
        "map" => format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\nfile=uid_map; [ {name} = fake-newgidmap ] && file=gid_map\nid=$(id -u); [ $file = gid_map ] && id=$(id -g)\necho \"0 $id 1\" > /proc/$1/$file\n",
            log = log.display()
        ),
        "kill" => format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\nkill -KILL $$\n", log = log.display()),
        _ => format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\nexit 3\n", log = log.display()),
    };
    std::fs::write(&path, body).unwrap();
    let _ = std::process::Command::new("chmod").args(["0755"]).arg(&path).status();
    path
}

#[test]
fn map_helper_fallback_argv_and_failures() {
    require_root!();
    let dir = TestDir::adopt(std::path::PathBuf::from(format!("/tmp/nsboot-helper-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::process::Command::new("chmod").args(["0777"]).arg(&dir).status();
    let (spawn, probe) = c_programs();
    // A 3-range map: an unprivileged direct write gets EPERM, so stage-0
    // runs the helper with "PID inside outside count" for every range.
    let map = "0 65534 1;1 100000 1000;2000 300000 5";
    let run = |uid_helper: &std::path::Path, gid_helper: &std::path::Path| {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]).arg(spawn).args(["--ns", "user,uts", "--rootless", "--uid-map", map, "--gid-map", map]);
        cmd.arg("--uidmap-helper").arg(uid_helper).arg("--gidmap-helper").arg(gid_helper);
        cmd.arg("--").arg(probe).args(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
        run_with_timeout(cmd, Duration::from_secs(30))
    };
    let u = fake_helper(&dir, "fake-newuidmap", "map");
    let g = fake_helper(&dir, "fake-newgidmap", "map");
    let o = run(&u, &g);
    assert!(o.status.success(), "{}", stderr(&o));
    let argv = std::fs::read_to_string(dir.join("fake-newuidmap.argv")).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(argv.len(), 10, "PID + 3 ranges x 3: {argv:?}");
    assert!(argv[0].parse::<i32>().unwrap() > 1);
    assert_eq!(&argv[1..], ["0", "65534", "1", "1", "100000", "1000", "2000", "300000", "5"]);
    assert_eq!(std::fs::read_to_string(dir.join("fake-newgidmap.argv")).unwrap().lines().count(), 10);
    // A helper killed by a signal is a failure, and so is a non-zero exit.
    for mode in ["kill", "exit"] {
        let bad = fake_helper(&dir, &format!("bad-{mode}"), mode);
        let o = run(&bad, &g);
        assert_eq!(o.status.code(), Some(125), "{mode}: {}", stderr(&o));
        let want = if mode == "kill" { "killed by signal 9" } else { "exited with status 3" };
        assert!(stderr(&o).contains(want), "{mode}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn joins_a_pid_namespace_by_path_like_runc_exec() {
    require_root!();
    // Regression: stage-2 forked into a *joined* PID namespace reads
    // getppid() == 0 (its parent, the caller, is outside); it used to take
    // that for "the caller died" and fail every `runc exec`-style join.
    let mark = marker("join-pid");
    let (mut holder, pid) = start_holder(&["--ns", "pid,mnt"], &mark);
    let want = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap().to_string_lossy().into_owned();
    let (jp, jm) = (format!("pid:/proc/{pid}/ns/pid"), format!("mnt:/proc/{pid}/ns/mnt"));
    let out = inside(&["--join", &jp, "--join", &jm], "readlink /proc/self/ns/pid; echo $$");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = holder.wait();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], want);
    assert_ne!(l[1], "1", "a joined process is not the namespace's init");
}

/// The C API's way of starting stage-0 (fork + execvpe, no
/// std::process::Command): an exec failure comes back as the errno, and a
/// program found through PATH runs (and is reaped when it fails).
#[test]
fn spawn_program_exec_failure_and_path_search() {
    use nsboot::caller::{spawn_program, SpawnError, SpawnOptions};
    use nsboot::ns::{NsKind, NsSet};
    use nsboot::wire::BootstrapConfig;
    let mut flags = NsSet::default();
    flags.insert(NsKind::Uts);
    let cfg = BootstrapConfig { clone_flags: flags, ..Default::default() };
    let err = spawn_program(c"/nonexistent/nsboot-prog", &[], None, &cfg, SpawnOptions::default()).unwrap_err();
    assert!(matches!(err, SpawnError::Start { .. }), "{err}");
    assert_eq!(err.errno(), Some(nix::errno::Errno::ENOENT), "{err}");
    // `true` (no slash: searched in PATH) runs but never bootstraps: the
    // caller sees stage-0 close the init pipe, and stage-0 is reaped.
    let err = spawn_program(c"true", &[], None, &cfg, SpawnOptions::default()).unwrap_err();
    assert!(matches!(err, SpawnError::Failed { .. }), "{err}");
}
