//! `--init`: the container's PID 1 stays nsrun (already in memory, sealed:
//! nothing is added to the image), forks the command, forwards the
//! signals a docker-init (tini) forwards, reaps every orphan, and ends
//! with the command's status when the command ends.

use std::os::unix::net::UnixStream;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::{Context, Result};

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2,
    Signal::SIGWINCH, Signal::SIGCONT, Signal::SIGALRM,
];

/// Fork: the child returns (and goes on to exec the command); the parent
/// becomes the reaper and never returns. The init socket is closed in the
/// parent so that the host sees EOF when the child's exec closes its copy.
pub fn fork_reaper(sock: &UnixStream) -> Result<()> {
    let mut set = SigSet::empty();
    for s in FORWARDED.iter().copied().chain([Signal::SIGCHLD]) {
        set.add(s);
    }
    // Blocked before the fork: no signal is lost between fork and the
    // signalfd; the child empties its mask before exec.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx(|| "sigprocmask".to_owned())?;
    // SAFETY: the container's init is single-threaded (nsboot's stage-2).
    #[allow(unsafe_code)]
    let forked = unsafe { fork() }.ctx(|| "fork the command under --init".to_owned())?;
    let child = match forked {
        ForkResult::Child => return Ok(()),
        ForkResult::Parent { child } => child,
    };
    let _ = nix::sys::socket::shutdown(std::os::fd::AsRawFd::as_raw_fd(sock), nix::sys::socket::Shutdown::Both);
    let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(sock));
    let fd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(_) => std::process::exit(125),
    };
    loop {
        let Ok(Some(info)) = fd.read_signal() else { continue };
        let sig = info.ssi_signo as i32;
        if sig != Signal::SIGCHLD as i32 {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(child, s);
            }
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => std::process::exit(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
