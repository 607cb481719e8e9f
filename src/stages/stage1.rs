//! stage-1 ("runc:[1:CHILD]"): joins namespaces by path, creates the user
//! namespace (maps written by stage-0), unshares the rest, receives mount
//! sources, forks stage-2 into the new PID namespace and reports its pid.

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{getppid, setresuid, Pid, Uid};

use super::error::{sys, StageError};
use super::plan::Plan;
use super::sync::{SyncChannel, SyncMsg};
use super::{die, stage2, BootEnv, SingleThreaded};
use crate::log;
use crate::ns::{NsKind, NsSet};
use crate::sys::process::{clone_parent, exit_now, install_fd_at, Forked};
use crate::wire::Dialect;

/// Die with the caller (PR_SET_PDEATHSIG), closing the race where it died
/// before the prctl.
/// Set PR_SET_PDEATHSIG again: the kernel clears it whenever the
/// process's credentials change (unshare of a user namespace, setuid...).
pub(super) fn rearm_pdeathsig() -> Result<(), StageError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(sys("prctl(PR_SET_PDEATHSIG)"))
}

/// `check_parent` is false where the parent cannot be seen (stage-2 in a
/// created or joined PID namespace reads ppid 0); a caller that died just before the
/// prctl then shows up as EOF on the sync socket instead.
pub(super) fn tie_to_caller(caller: Pid, check_parent: bool) -> Result<(), StageError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
    if !check_parent {
        return Ok(());
    }
    let now = getppid();
    if now != caller {
        return Err(StageError::Plan(format!("the caller (pid {caller}) exited during the bootstrap (parent is now {now})")));
    }
    Ok(())
}

/// Returns only in stage-2.
pub fn run(
    env: &BootEnv,
    plan: &Plan,
    ch: SyncChannel,
    stage2_end: OwnedFd,
    caller: Pid,
    token: &SingleThreaded,
) {
    log::set_stage(1);
    let _ = nix::sys::prctl::set_name(c"runc:[1:CHILD]");
    if let Err(e) = tie_to_caller(caller, true).and_then(|()| setup(env, plan, &ch)) {
        die(&e)
    }
    match clone_parent(token, libc::CLONE_PARENT) {
        Err(e) => die(&sys("clone stage-2")(e)),
        Ok(Forked::Child) => {
            drop(ch);
            stage2::run(env, plan, SyncChannel::new(stage2_end, "stage-0"), caller, token)
        }
        Ok(Forked::Parent(pid)) => {
            drop(stage2_end);
            env.fault_point("stage1-after-clone");
            let r = report(&ch, pid);
            if let Err(e) = r {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                die(&e)
            }
            exit_now(0)
        }
    }
}

fn report(ch: &SyncChannel, pid: Pid) -> Result<(), StageError> {
    ch.send(SyncMsg::RecvPidPls, "RECVPID_PLS")?;
    ch.send_i32(pid.as_raw(), "sending stage-2 pid")?;
    ch.expect(SyncMsg::RecvPidAck, "waiting for RECVPID_ACK")?;
    ch.send(SyncMsg::ChildFinish, "CHILD_FINISH (stage-1)")?;
    Ok(())
}

fn setup(env: &BootEnv, plan: &Plan, ch: &SyncChannel) -> Result<(), StageError> {
    let cfg = &plan.cfg;
    env.fault_point("stage1-start");
    if plan.joins() {
        join_namespaces(plan)?;
    }
    let mut remaining: NsSet = cfg.clone_flags;
    if remaining.contains(NsKind::User) {
        crate::nslog!(Debug, "unshare user namespace");
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| StageError::Unshare {
            flags: libc::CLONE_NEWUSER as u32,
            what: "user namespace".to_owned(),
            source,
        })?;
        remaining.remove(NsKind::User);
        // A credential change clears PR_SET_PDEATHSIG: re-arm it.
        rearm_pdeathsig()?;
        // Let stage-0 open our /proc/<pid>/{uid,gid}_map: a non-dumpable
        // process's /proc files belong to root of the initial namespace.
        if plan.joins() {
            nix::sys::prctl::set_dumpable(true).map_err(sys("prctl(PR_SET_DUMPABLE, 1)"))?;
        }
        crate::nslog!(Debug, "request stage-0 to map user namespace");
        env.fault_point("stage1-before-usermap");
        ch.send(SyncMsg::UsermapPls, "USERMAP_PLS")?;
        ch.expect(SyncMsg::UsermapAck, "waiting for USERMAP_ACK")?;
        if plan.joins() {
            nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE, 0)"))?;
        }
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("setresuid(0, 0, 0) in the new user namespace"))?;
        rearm_pdeathsig()?;
    }
    if plan.dialect == Dialect::Runc11 {
        // runc 1.1 unshares the cgroup namespace last, in stage-2.
        remaining.remove(NsKind::Cgroup);
    }
    if !remaining.is_empty() {
        crate::nslog!(Debug, "unshare remaining namespaces (flags {:#x})", remaining.clone_flags());
        unshare(CloneFlags::from_bits_retain(remaining.clone_flags() as libc::c_int)).map_err(
            |source| StageError::Unshare {
                flags: remaining.clone_flags(),
                what: remaining.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
                source,
            },
        )?;
    }
    env.fault_point("stage1-after-unshare");
    match plan.dialect {
        Dialect::Runc12 if !cfg.time_offsets.is_empty() => {
            crate::nslog!(Debug, "request stage-0 to write timens offsets");
            ch.send(SyncMsg::ExtraPls, "TIMEOFFSETS_PLS")?;
            ch.expect(SyncMsg::ExtraAck, "waiting for TIMEOFFSETS_ACK")?;
        }
        Dialect::Runc11 if !cfg.time_offsets.is_empty() => {
            // nsboot extension in the 1.1 dialect: same exchange, but the
            // 0x46 value means MOUNTSOURCES_PLS here, so stage-1 writes the
            // offsets itself (it owns its /proc/self/timens_offsets).
            super::idmap::write_time_offsets(nix::unistd::getpid(), cfg)?;
        }
        _ => {}
    }
    if !plan.mount_sources.is_empty() {
        crate::nslog!(Debug, "request stage-0 to send mount sources");
        ch.send(SyncMsg::ExtraPls, "MOUNTSOURCES_PLS")?;
        for (src, target) in &plan.mount_sources {
            let fd = ch.recv_fd("receiving mount sources")?;
            install_fd_at(fd, *target).map_err(|source| StageError::InstallFd { fd: *target, source })?;
            crate::nslog!(Debug, "mount source {:?} installed at fd {target}", String::from_utf8_lossy(src));
        }
        ch.expect(SyncMsg::ExtraAck, "waiting for MOUNTSOURCES_ACK")?;
    }
    Ok(())
}

/// Open every path first, then `setns` each in the order given: after
/// joining a mount namespace the later paths could resolve elsewhere.
fn join_namespaces(plan: &Plan) -> Result<(), StageError> {
    let mut fds = Vec::with_capacity(plan.cfg.ns_paths.len());
    for p in &plan.cfg.ns_paths {
        let shown = String::from_utf8_lossy(p.path.to_bytes()).into_owned();
        let fd = open(p.path.as_c_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| StageError::OpenNs { kind: p.kind, path: shown, source })?;
        fds.push((p, fd));
    }
    let mut joined_user = false;
    for (p, fd) in &fds {
        crate::nslog!(Debug, "setns({:#x}) into {} namespace (with path {:?})", p.kind.clone_flag(), p.kind, p.path);
        setns(fd, CloneFlags::from_bits_retain(p.kind.clone_flag() as libc::c_int)).map_err(|source| {
            StageError::Setns {
                kind: p.kind,
                path: String::from_utf8_lossy(p.path.to_bytes()).into_owned(),
                source,
            }
        })?;
        joined_user |= p.kind == NsKind::User;
    }
    if joined_user {
        rearm_pdeathsig()?;
    }
    Ok(())
}
