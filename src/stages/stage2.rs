//! stage-2 ("runc:[2:INIT]"): the process handed back to the host program,
//! PID 1 of a new PID namespace. Becomes session leader and root, waits for
//! stage-0's go, unshares the cgroup namespace last (runc 1.1), prepares
//! the rootfs when the message carries an OCI config, reports completion.

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{setgid, setgroups, setsid, setuid, Gid, Pid, Uid};

use super::error::{sys, StageError};
use super::plan::{Plan, Step};
use super::sync::{SyncChannel, SyncMsg};
use super::watch::{rearm_pdeathsig, tie_to_caller};
use super::{die, BootEnv, SingleThreaded};
use crate::log;
use crate::ns::NsKind;
use crate::wire::Dialect;

/// Returns (into the host program) once stage-2 is set up.
pub fn run(env: &BootEnv, plan: &Plan, ch: SyncChannel, caller: Pid, _token: &SingleThreaded) {
    log::set_stage(2);
    let _ = nix::sys::prctl::set_name(c"runc:[2:INIT]");
    // In a PID namespace other than the caller's (created or joined), the
    // caller is outside it and getppid() reads 0.
    let pid_ns = plan.cfg.clone_flags.contains(NsKind::Pid) || plan.cfg.ns_paths.iter().any(|p| p.kind == NsKind::Pid);
    if let Err(e) = tie_to_caller(caller, !pid_ns).and_then(|()| setup(env, plan, &ch)) {
        die(&e)
    }
    drop(ch);
    // Handed back: the host program decides its own parent-death policy.
    super::watch::release();
    super::disarm_error_record();
    let _ = nix::sys::prctl::set_pdeathsig(None);
}

fn setup(env: &BootEnv, plan: &Plan, ch: &SyncChannel) -> Result<(), StageError> {
    let cfg = &plan.cfg;
    env.fault_point("stage2-start");
    // The session and credentials first, while stage-0 is still reporting
    // the pids to the caller (runc 1.1 does this after GRANDCHILD; nothing
    // outside stage-2 can tell the difference, and it takes these calls off
    // the bootstrap's critical path on a machine with more than one core).
    if plan.new_session {
        plan.mark(Step::Setsid);
        setsid().map_err(sys("setsid"))?;
    }
    plan.mark(Step::SetIds { setgroups: !cfg.rootless_euid && cfg.setgroup });
    setuid(Uid::from_raw(0)).map_err(sys("setuid(0)"))?;
    setgid(Gid::from_raw(0)).map_err(sys("setgid(0)"))?;
    if !cfg.rootless_euid && cfg.setgroup {
        setgroups(&[]).map_err(sys("setgroups(0, NULL)"))?;
    }
    rearm_pdeathsig()?;
    ch.expect(SyncMsg::Grandchild, "waiting for GRANDCHILD")?;
    if plan.dialect == Dialect::Runc11 && cfg.clone_flags.contains(NsKind::Cgroup) {
        crate::nslog!(Debug, "unshare cgroup namespace");
        plan.mark(Step::UnshareCgroup);
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|source| StageError::Unshare {
            flags: libc::CLONE_NEWCGROUP as u32,
            what: "cgroup namespace".to_owned(),
            source,
        })?;
    }
    if let Some(rootfs) = &plan.rootfs {
        env.fault_point("stage2-before-rootfs");
        crate::nslog!(Debug, "prepare rootfs");
        plan.mark(Step::PrepareRootfs);
        rootfs.prepare(&mut |w| crate::nslog!(Warning, "rootfs: {w}"), &|p| env.fault_point(p))?;
    }
    env.fault_point("stage2-before-finish");
    plan.mark(Step::ReturnToProgram);
    crate::nslog!(Debug, "signal completion to stage-0");
    ch.send(SyncMsg::ChildFinish, "CHILD_FINISH (stage-2)")?;
    if let Some(exec) = &plan.exec {
        // NSBOOT_ROOTFS_EXEC: the whole process setup, then execve of
        // process.args; only a failure comes back.
        crate::nslog!(Debug, "process setup and exec (container plugin)");
        return Err(exec.exec().into());
    }
    Ok(())
}
