//! Malformed bootstrap input sent to the live bootstrap: every case must
//! exit 1 with a fatal line naming the fault, never hang, and leave no
//! process behind. The host program is tests/c/probe.c (links libnsboot.so).

mod common;

use common::*;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn hdr(len: u32, kind: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&len.to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(&1u16.to_ne_bytes());
    v.extend_from_slice(&1u32.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v
}

/// One attribute with a given nla_len (padded to 4).
fn attr_raw(nla_len: u16, kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&nla_len.to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    attr_raw((4 + payload.len()) as u16, kind, payload)
}

fn s(text: &str) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.push(0);
    v
}

fn msg(attrs: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = attrs.concat();
    let mut m = hdr((16 + body.len()) as u32, 62000);
    m.extend_from_slice(&body);
    m
}

fn flags(f: u32) -> Vec<u8> {
    attr(27281, &f.to_ne_bytes())
}

/// Start probe as a bootstrap with `env`, feed `bytes`, close our end, and
/// return (exit code, stderr). Fails the test on a hang or a survivor.
fn feed(bytes: &[u8], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (_, probe) = c_programs();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    let fd = theirs.as_raw_fd();
    let mark = marker("malformed");
    let mut cmd = Command::new(probe);
    cmd.args(["sh", "-c", "echo reached-main", &mark])
        .env("_LIBCONTAINER_INITPIPE", fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: pre_exec only clears FD_CLOEXEC with fcntl (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(theirs);
    let mut ours = ours;
    let _ = ours.write_all(bytes);
    let _ = ours.shutdown(std::net::Shutdown::Write);
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("bootstrap hung on {bytes:02x?}");
        }
    };
    drop(ours);
    let left = wait_gone(&mark, Duration::from_secs(1));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("reached-main"), "main ran after a failed bootstrap");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn expect_fatal(name: &str, bytes: &[u8], env: &[(&str, &str)], want: &str) {
    let (code, err) = feed(bytes, env);
    assert_eq!(code, Some(1), "{name}: exit {code:?}, stderr: {err}");
    // The failing stage's line names the fault; when that stage is a child,
    // stage-0 adds one line saying the child is gone.
    assert!(err.lines().next().is_some_and(|l| l.contains(want)), "{name}: stderr {err:?} does not name {want:?}");
    assert!(err.lines().all(|l| l.starts_with("FATAL: ")), "{name}: not fatal lines: {err:?}");
    assert!(err.lines().count() <= 2, "{name}: too many lines: {err:?}");
}

#[test]
fn thirty_plus_malformed_messages_each_fail_cleanly() {
    require_root!();
    let huge = "0 0 1\n".repeat(341);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "closed after 0 of 16"),
        ("short header", vec![0; 8], "closed after 8 of 16"),
        ("wrong type", msg_typed(1234), "message type 1234"),
        ("NLMSG_ERROR", msg_typed(2), "NLMSG_ERROR"),
        ("len below header", hdr(8, 62000), "below the 16-byte header"),
        ("len over cap", hdr(64 << 20, 62000), "cap"),
        ("truncated body", { let mut m = hdr(100, 62000); m.extend_from_slice(&[0; 20]); m }, "closed after 36 of 100"),
        ("nla_len 0", msg(&[attr_raw(0, 27281, &[0; 4])]), "nla_len 0"),
        ("nla_len 3", msg(&[attr_raw(3, 27281, &[0; 4])]), "nla_len 3"),
        ("nla_len past end", msg(&[attr_raw(200, 27281, &[0; 4])]), "past the end"),
        ("unknown attribute", msg(&[attr(27299, &[0; 4])]), "27299"),
        ("unknown low attribute", msg(&[attr(1, &[0; 4])]), "unknown attribute"),
        ("clone flags 2 bytes", msg(&[attr(27281, &[0; 2])]), "CLONE_FLAGS"),
        ("clone flags 8 bytes", msg(&[attr(27281, &[0; 8])]), "CLONE_FLAGS"),
        ("clone flags non-namespace bit", msg(&[flags(0x100)]), "CLONE_FLAGS"),
        ("ns paths without NUL", msg(&[attr(27282, b"net:/x")]), "NUL"),
        ("ns paths unknown type", msg(&[attr(27282, &s("foo:/x"))]), "foo"),
        ("ns paths missing colon", msg(&[attr(27282, &s("net"))]), "missing ':'"),
        ("ns paths empty path", msg(&[attr(27282, &s("net:"))]), "empty path"),
        ("ns paths inner NUL", msg(&[attr(27282, b"net:/a\0b\0")]), "NS_PATHS"),
        ("uid map garbage", msg(&[attr(27283, &s("abc"))]), "UIDMAP"),
        ("uid map count 0", msg(&[attr(27283, &s("0 1000 0\n"))]), "UIDMAP"),
        ("uid map overflow", msg(&[attr(27283, &s("0 4294967295 2\n"))]), "UIDMAP"),
        ("uid map 341 extents", msg(&[attr(27283, &s(&huge))]), "340"),
        ("gid map two fields", msg(&[attr(27284, &s("0 1000\n"))]), "GIDMAP"),
        ("setgroup 3 bytes", msg(&[attr(27285, &[1, 0, 0])]), "SETGROUP"),
        ("rootless 2 bytes", msg(&[attr(27287, &[1, 0])]), "ROOTLESS_EUID"),
        ("oom not a number", msg(&[attr(27286, &s("abc"))]), "OOM_SCORE_ADJ"),
        ("oom out of range", msg(&[attr(27286, &s("5000"))]), "OOM_SCORE_ADJ"),
        ("duplicate clone flags", msg(&[flags(0), flags(0)]), "given twice"),
        ("uidmap helper without NUL", msg(&[attr(27288, b"/usr/bin/newuidmap")]), "UIDMAPPATH"),
        ("time offsets without time ns", msg(&[flags(0), attr(27303, &s("monotonic 10 0\n"))]), "time namespace"),
        ("time offsets unknown clock", msg(&[attr(27303, &s("realtime 10 0\n"))]), "NSBOOT_TIMENS_OFFSETS"),
        ("mount sources without MOUNT_FDS", msg(&[attr(27290, b"/tmp\0\0")]), "_LIBCONTAINER_MOUNT_FDS"),
        ("rootfs flags unknown bit", msg(&[attr(27302, &0x80u32.to_ne_bytes())]), "NSBOOT_ROOTFS_FLAGS"),
        ("rootfs config not JSON", msg(&[flags(libc::CLONE_NEWNS as u32), attr(27300, &s("{not json"))]), "rootfs"),
        ("rootfs config without mount ns", msg(&[flags(0), attr(27300, &s("{}"))]), "mount namespace"),
        ("ns path does not exist", msg(&[flags(0), attr(27282, &s("net:/nonexistent/ns"))]), "/nonexistent/ns"),
        ("ns path of the wrong type", msg(&[flags(0), attr(27282, &s("net:/proc/self/ns/uts"))]), "setns to net"),
    ];
    assert!(cases.len() >= 30);
    for (name, bytes, want) in &cases {
        expect_fatal(name, bytes, &[], want);
    }
}

fn msg_typed(kind: u16) -> Vec<u8> {
    let mut m = hdr(20, kind);
    m.extend_from_slice(&[0; 4]);
    m
}

#[test]
fn malformed_environment_fails_cleanly() {
    require_root!();
    let ok = msg(&[flags(0)]);
    for (name, env, want) in [
        ("log level out of range", vec![("_LIBCONTAINER_LOGLEVEL", "9")], "_LIBCONTAINER_LOGLEVEL"),
        ("log pipe not a number", vec![("_LIBCONTAINER_LOGPIPE", "x")], "_LIBCONTAINER_LOGPIPE"),
        ("dialect unknown", vec![("NSBOOT_DIALECT", "2.7")], "NSBOOT_DIALECT"),
        ("mount fds not JSON", vec![("_LIBCONTAINER_MOUNT_FDS", "[3,")], "_LIBCONTAINER_MOUNT_FDS"),
    ] {
        expect_fatal(name, &ok, &env, want);
    }
}

#[test]
fn init_pipe_that_is_not_a_number_or_not_open() {
    require_root!();
    let (_, probe) = c_programs();
    for (val, want) in [("abc", "not a number"), ("-3", "out of range"), ("987", "not an open file descriptor")] {
        let o = run_with_timeout(
            {
                let mut c = Command::new(probe);
                c.env("_LIBCONTAINER_INITPIPE", val);
                c
            },
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(1), "{val}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{val}: {}", stderr(&o));
    }
    // Unset or empty: not a bootstrap; main runs untouched.
    let o = run_with_timeout(
        {
            let mut c = Command::new(probe);
            c.env("_LIBCONTAINER_INITPIPE", "");
            c
        },
        Duration::from_secs(10),
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), "probe-main\n");
}

#[test]
fn message_one_byte_at_a_time_with_pauses_is_parsed() {
    require_root!();
    let (_, probe) = c_programs();
    let cfg = nsboot::wire::BootstrapConfig {
        clone_flags: nsboot::ns::NsSet::from_clone_flags((libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) as u32).unwrap(),
        oom_score_adj: Some(7),
        ..Default::default()
    };
    let bytes = nsboot::wire::encode(&cfg, nsboot::wire::Dialect::Runc11).unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(probe);
    cmd.args(["sh", "-c", "cat /proc/self/oom_score_adj"]).env("_LIBCONTAINER_INITPIPE", fd.to_string());
    cmd.stdout(Stdio::piped());
    // SAFETY: pre_exec only clears FD_CLOEXEC with fcntl (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            libc::fcntl(fd, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(theirs);
    let mut ours = ours;
    let mut zero = [9u8; 1];
    std::io::Read::read_exact(&mut ours, &mut zero).unwrap();
    assert_eq!(zero[0], 0);
    for b in &bytes {
        ours.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&ours), &mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let s1 = v["stage1_pid"].as_i64().unwrap() as i32;
    let s2 = v["stage2_pid"].as_i64().unwrap() as i32;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(s1), None);
    // stage-2 is our child too (CLONE_PARENT): its output went to the pipe.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(s2), None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
}
