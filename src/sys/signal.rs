//! Signal calls the LD_PRELOAD supervisor needs: `sigwaitinfo(2)` (nix only
//! offers `sigwait`, which loses `si_code`) and `sigaction(2)` for SIGCHLD.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};

/// A signal taken off the pending set by [`wait_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The signal number.
    pub signo: i32,
    /// `si_code`: `SI_USER` (0), `SI_QUEUE` (-1), `SI_TKILL` (-6) when a
    /// process sent it; `SI_KERNEL` (0x80) for a terminal's signals; a
    /// `CLD_*` value for SIGCHLD.
    pub code: i32,
}

impl Received {
    /// Whether a process sent the signal (`kill`, `sigqueue`, `tgkill`), as
    /// opposed to the kernel (a terminal's ^C, which already reached every
    /// process of the foreground process group).
    pub fn sent_by_process(&self) -> bool {
        self.code <= 0
    }
}

/// `sigwaitinfo(set)`: wait for one of the (blocked) signals in `set`,
/// retrying EINTR.
pub fn wait_signal(set: &SigSet) -> Result<Received, Errno> {
    loop {
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `set` is a valid sigset_t (nix's SigSet is a transparent
        // wrapper and exposes it through AsRef); `info` points to writable
        // storage for one siginfo_t.
        let r = unsafe { libc::sigwaitinfo(set.as_ref(), info.as_mut_ptr()) };
        if r < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        // SAFETY: sigwaitinfo succeeded, so it filled in `info` (and the
        // storage was zeroed before, so every byte is initialised anyway).
        let info = unsafe { info.assume_init() };
        return Ok(Received { signo: r, code: info.si_code });
    }
}

/// Set SIGCHLD to its default action (a parent may have left it at
/// SIG_IGN, which makes children reap themselves and `waitpid` fail) and
/// return the previous action, for [`restore_action`].
pub fn sigchld_default() -> Result<SigAction, Errno> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no handler code, so no handler can
    // observe inconsistent state.
    unsafe { nix::sys::signal::sigaction(Signal::SIGCHLD, &dfl) }
}

/// Put back an action saved by [`sigchld_default`].
pub fn restore_action(sig: Signal, old: &SigAction) -> Result<(), Errno> {
    // SAFETY: `old` is the action that was installed in this process before
    // (handler pointer included), so reinstalling it is exactly as sound as
    // it was then.
    unsafe { nix::sys::signal::sigaction(sig, old) }.map(drop)
}
