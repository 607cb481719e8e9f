//! pidfds end to end (issue 19): stages created with clone3(CLONE_PIDFD),
//! the caller's pidfds over the init socket (opt-in), kill and wait by
//! pidfd, and a pidfd that keeps saying "exited" after its pid is reused.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

use nsboot::caller::{spawn, SpawnOptions};
use nsboot::ns::{NsKind, NsSet};
use nsboot::wire::{self, BootstrapConfig, Dialect};

fn pidfd_helper(mode: &str) -> std::process::Output {
    let bin = c_program("pidfd", &[]);
    let (_, probe) = c_programs();
    let mut cmd = Command::new(bin);
    cmd.arg(mode).arg(probe);
    run_with_timeout(cmd, Duration::from_secs(60))
}

/// C API: SIGKILL by pidfd, then waitid(P_PIDFD): stage-2 ends by signal 9
/// (137), stage-1 exited 0, and a signal after the reap is ESRCH.
#[test]
fn c_kill_and_wait_by_pidfd() {
    require_root!();
    let o = pidfd_helper("kill");
    assert!(o.status.success(), "pidfd kill: {}\n{}", stderr(&o), stdout(&o));
    assert_eq!(stdout(&o).trim(), "stage1 0 stage2 137 after-exit ESRCH");
}

/// The stage exits and is reaped, its pid is handed to a new process
/// (ns_last_pid in a private PID namespace): kill(pid, 0) reaches the new
/// process, the pidfd still says "exited" (ESRCH, POLLIN, ECHILD).
#[test]
fn pidfd_survives_pid_reuse() {
    require_root!();
    let o = pidfd_helper("reuse");
    if o.status.code() == Some(77) {
        skip(&format!("no private PID namespace: {}", stderr(&o)));
        return;
    }
    assert!(o.status.success(), "pidfd reuse: {}\n{}", stderr(&o), stdout(&o));
    let out = stdout(&o);
    assert!(out.starts_with("reused "), "{out}");
    assert!(out.trim_end().ends_with(": pidfd ESRCH, pollin 1, waitid ECHILD, kill(pid) 0"), "{out}");
}

/// Rust API: `SpawnOptions::pidfds`; `signal_init` and `wait_init` go by
/// pidfd. The pidfds name the reported pids (/proc/self/fdinfo "Pid:").
#[test]
fn rust_api_returns_pidfds() {
    require_root!();
    let (_, probe) = c_programs();
    let cfg = BootstrapConfig { clone_flags: [NsKind::Uts].into_iter().collect::<NsSet>(), ..Default::default() };
    let mut cmd = Command::new(probe);
    cmd.args(["sleep", "1000"]);
    let opts = SpawnOptions { dialect: Dialect::Runc12, pidfds: true, ..Default::default() };
    let mut s = spawn(cmd, &cfg, opts).expect("spawn with pidfds");
    let fds = s.pidfds.as_ref().expect("pidfds returned");
    let pid_of = |fd: &std::os::fd::OwnedFd| {
        use std::os::fd::AsRawFd;
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        info.lines().find_map(|l| l.strip_prefix("Pid:")).map(|v| v.trim().parse::<i32>().unwrap())
    };
    // stage-1 may already be a zombie: fdinfo still shows its pid.
    assert_eq!(pid_of(&fds.stage2), Some(s.stage2.as_raw()));
    assert_eq!(pid_of(&fds.stage1), Some(s.stage1.as_raw()));
    s.signal_init(nix::sys::signal::Signal::SIGTERM).expect("pidfd_send_signal");
    assert_eq!(s.wait_init().expect("waitid(P_PIDFD)"), 128 + 15);
    assert_eq!(s.signal_init(nix::sys::signal::Signal::SIGTERM), Err(nix::errno::Errno::ESRCH));
}

/// Off by default: the message has no NSBOOT_CALLER_FLAGS attribute (runc's
/// bytes), and the option adds exactly that one attribute.
#[test]
fn opt_in_only() {
    let cfg = BootstrapConfig { clone_flags: [NsKind::Uts].into_iter().collect::<NsSet>(), ..Default::default() };
    let off = wire::encode(&cfg, Dialect::Runc12).unwrap();
    let on = wire::encode(&BootstrapConfig { caller_flags: wire::CALLER_FLAG_PIDFDS, ..cfg.clone() }, Dialect::Runc12).unwrap();
    assert_eq!(on.len(), off.len() + 8);
    assert_eq!(&on[16..off.len()], &off[16..]);
    let tail = &on[off.len()..];
    assert_eq!(u16::from_ne_bytes([tail[2], tail[3]]), wire::NSBOOT_CALLER_FLAGS_ATTR);
    assert_eq!(wire::decode(&on, Dialect::Runc12).unwrap().caller_flags, wire::CALLER_FLAG_PIDFDS);
}
