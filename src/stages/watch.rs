//! No stage outlives a dead caller: by process, not by thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the process
//! exits, not the process: Go runs the fork on a locked OS thread that it
//! may retire at once (runc exec with `execCPUAffinity` got SIGKILLed about
//! one time in six, issue 14), and any C++ or Rust caller that spawns from a
//! short-lived thread hits it. So stage-0 takes a pidfd of the caller
//! *process* (`pidfd_open(getppid())`, checked against the expected parent
//! after the open, so a caller that died first is not mistaken for a
//! recycled pid) and every stage polls it beside the sync socket (or the
//! init socket) whenever it waits for a peer. The caller gone, the waiting
//! stage fails with "the caller exited", stage-0 kills the stages it knows
//! of (as on any failure), and a stage it does not know yet meets EOF on
//! its sync socket. A stage that is busy rather than waiting (stage-2
//! preparing a rootfs, say) is killed by stage-0, which is waiting then.
//! The fd is inherited by stage-1 and stage-2 through fork (no syscall of
//! theirs) and closed before stage-2 returns to the host program.
//!
//! Without a pidfd (Linux < 5.3, a parent outside our PID namespace, no
//! fd left): `PR_SET_PDEATHSIG` as before ([`rearm_pdeathsig`]), with its
//! per-thread limit.

use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::unistd::{getppid, Pid};

use super::error::{sys, StageError};

/// The caller's pidfd, -1 while there is none.
static PIDFD: AtomicI32 = AtomicI32::new(-1);
/// pidfd_open is missing: fall back to PR_SET_PDEATHSIG.
static FALLBACK: AtomicBool = AtomicBool::new(false);

/// Watch `caller` (stage-0's parent) from now on. Idempotent: a second call
/// in the same process only checks the parent again.
/// `check_parent` is false where the parent cannot be seen (stage-2 in a
/// created or joined PID namespace reads ppid 0); a caller that died
/// before then shows up on the pidfd anyway.
pub(super) fn tie_to_caller(caller: Pid, check_parent: bool) -> Result<(), StageError> {
    if PIDFD.load(Ordering::Relaxed) < 0 && !FALLBACK.load(Ordering::Relaxed) {
        match crate::sys::process::pidfd_open(caller) {
            Ok(fd) => PIDFD.store(fd.into_raw_fd(), Ordering::Relaxed),
            // Already gone: the parent check below says so.
            Err(Errno::ESRCH) if caller.as_raw() > 0 => {}
            // ENOSYS (Linux < 5.3); EINVAL for a parent outside our PID
            // namespace (getppid() reads 0); EMFILE...: fall back to
            // PR_SET_PDEATHSIG rather than fail a bootstrap that runc's C
            // would run.
            Err(_) => FALLBACK.store(true, Ordering::Relaxed),
        }
    }
    rearm_pdeathsig()?;
    if check_parent {
        let now = getppid();
        if now != caller {
            return Err(StageError::Plan(format!(
                "the caller (pid {caller}) exited during the bootstrap (parent is now {now})"
            )));
        }
    }
    Ok(())
}

/// Set PR_SET_PDEATHSIG, only when there is no pidfd to watch (the kernel
/// clears it on every credential change, hence "re-arm").
pub(super) fn rearm_pdeathsig() -> Result<(), StageError> {
    if !FALLBACK.load(Ordering::Relaxed) {
        return Ok(());
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(sys("prctl(PR_SET_PDEATHSIG)"))
}

/// The caller process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerGone;

/// The caller's pidfd, when it is watched.
pub fn raw_pidfd() -> Option<RawFd> {
    let fd = PIDFD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

/// Block until `fd` is readable (data, EOF or an error to read) or the
/// caller is gone, whichever comes first. Without a pidfd: returns at once
/// and the read blocks as before.
pub fn wait_readable(fd: RawFd) -> Result<(), CallerGone> {
    let Some(caller) = raw_pidfd() else { return Ok(()) };
    match crate::sys::process::poll_in([fd, caller], -1) {
        Ok([_, true]) => Err(CallerGone),
        // Readable, or a poll error the read itself will report.
        _ => Ok(()),
    }
}

/// Whether the caller is known to have exited (a zero-timeout poll).
pub fn caller_gone() -> bool {
    raw_pidfd().is_some_and(|c| matches!(crate::sys::process::poll_in([c], 0), Ok([true])))
}

/// Move the pidfd off fd number `target`, where stage-1 is about to
/// install a mount source at the caller's request (`dup3` there would
/// silently replace it).
pub(super) fn vacate(target: RawFd) -> Result<(), StageError> {
    let fd = PIDFD.load(Ordering::Relaxed);
    if fd < 0 || fd != target {
        return Ok(());
    }
    let moved = crate::sys::process::dup_cloexec_from(fd, target.saturating_add(1))
        .map_err(sys("fcntl(F_DUPFD_CLOEXEC) of the caller's pidfd"))?;
    PIDFD.store(moved, Ordering::Relaxed);
    let _ = nix::unistd::close(fd);
    Ok(())
}

/// Close the pidfd: stage-2 hands the process back to the host program,
/// which decides its own parent-death policy.
pub(super) fn release() {
    let fd = PIDFD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        let _ = nix::unistd::close(fd);
    }
}
