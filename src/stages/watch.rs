//! Tying a stage to the caller's lifetime (`PR_SET_PDEATHSIG`), shared by
//! every stage.

use nix::unistd::{getppid, Pid};

use super::error::{sys, StageError};

/// Set PR_SET_PDEATHSIG again: the kernel clears it whenever the
/// process's credentials change (unshare of a user namespace, setuid...).
pub(super) fn rearm_pdeathsig() -> Result<(), StageError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(sys("prctl(PR_SET_PDEATHSIG)"))
}

/// Die with the caller (PR_SET_PDEATHSIG), closing the race where it died
/// before the prctl.
/// `check_parent` is false where the parent cannot be seen (stage-2 in a
/// created or joined PID namespace reads ppid 0); a caller that died just before the
/// prctl then shows up as EOF on the sync socket instead.
pub(super) fn tie_to_caller(caller: Pid, check_parent: bool) -> Result<(), StageError> {
    rearm_pdeathsig()?;
    if !check_parent {
        return Ok(());
    }
    let now = getppid();
    if now != caller {
        return Err(StageError::Plan(format!("the caller (pid {caller}) exited during the bootstrap (parent is now {now})")));
    }
    Ok(())
}
