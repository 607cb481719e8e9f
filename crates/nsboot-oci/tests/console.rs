//! `process.terminal`: the pty is made in the container's devpts, its
//! master reaches the caller over a console socket (SCM_RIGHTS, as runc's
//! --console-socket), and the program's stdio is the slave.

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{config, probe, text, Bundle, TempDir};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

/// Accept one connection (or give up after 20 s) and receive the fd and
/// the message body.
fn receive_master(listener: &UnixListener) -> (OwnedFd, String) {
    use std::os::fd::AsRawFd;
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("no connection on the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg =
        recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    let fd = fd.expect("an fd with SCM_RIGHTS");
    // SAFETY: the fd was just received with SCM_RIGHTS; nothing else owns it.
    #[allow(unsafe_code)]
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    (owned, text(&buf[..n]))
}

/// Everything the program wrote to the pty, until its slave closes (EIO).
fn read_master(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read master: {e}"),
        }
    }
    text(&out)
}

fn check_console(rootless: bool) {
    let mut ns = vec!["mount", "pid"];
    if rootless {
        ns.insert(0, "user");
    }
    let mut c = config("tty; stty size; ls /dev/pts; echo end", &ns);
    c["process"]["terminal"] = json!(true);
    c["process"]["consoleSize"] = json!({"height": 31, "width": 101});
    let b = Bundle::new("console", &c);
    let sockdir = TempDir::new("consock");
    common::chmod(sockdir.path(), 0o777);
    let sock = sockdir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    common::chmod(&sock, 0o777);

    let mut cmd = if rootless {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(probe());
        c
    } else {
        Command::new(probe())
    };
    let child = cmd
        .arg("--console-socket")
        .arg(&sock)
        .arg(b.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (master, name) = receive_master(&listener);
    assert_eq!(name, "/dev/ptmx", "the name runc sends with the master");
    let seen = read_master(master);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "pty: {seen:?}\nstderr: {}", text(&out.stderr));
    let lines: Vec<&str> = seen.lines().map(|l| l.trim_end_matches('\r')).collect();
    // A fresh devpts instance: the container's first pty, whatever the
    // host has open.
    assert_eq!(lines.first(), Some(&"/dev/pts/0"), "{seen:?}");
    assert_eq!(lines.get(1), Some(&"31 101"), "consoleSize: {seen:?}");
    assert_eq!(lines.get(2).map(|l| l.split_whitespace().collect::<Vec<_>>()), Some(vec!["0", "ptmx"]), "{seen:?}");
    assert_eq!(lines.last(), Some(&"end"));
    assert!(text(&out.stdout).is_empty(), "the program wrote to the runtime's stdout, not the pty");
}

#[test]
fn console_master_reaches_the_caller_and_tty_is_a_container_pts() {
    require_root!();
    check_console(false);
}

#[test]
fn console_rootless() {
    require_rootless!();
    check_console(true);
}

#[test]
fn terminal_without_a_reachable_socket_fails_create() {
    require_root!();
    let mut c = config("echo ran > /hooklog/ran", &["mount", "pid"]);
    c["process"]["terminal"] = json!(true);
    let b = Bundle::new("nosock", &c);
    let out = b.run(false, &["--console-socket", "/nonexistent/console.sock"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("connect /nonexistent/console.sock: ENOENT"), "{err}");
    assert!(!b.rootfs().join("hooklog/ran").exists());
}

#[test]
fn an_error_after_the_terminal_took_stderr_reaches_the_runtime() {
    require_root!();
    let mut c = config("", &["mount", "pid"]);
    c["process"]["terminal"] = json!(true);
    c["process"]["args"] = json!(["no-such-program"]);
    let b = Bundle::new("ttyerr", &c);
    let sockdir = TempDir::new("ttyerrsock");
    let sock = sockdir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let child =
        Command::new(probe()).arg("--console-socket").arg(&sock).arg(b.path()).stderr(Stdio::piped()).spawn().unwrap();
    let (master, _) = receive_master(&listener);
    let on_tty = read_master(master);
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    // The container's stderr was the pty; the runtime got the error as a
    // record and printed it.
    assert!(err.contains("exec \"no-such-program\": executable file not found in $PATH"), "{err}");
    assert!(!on_tty.contains("no-such-program"), "{on_tty:?}");
}
