//! stage-1 ("runc:[1:CHILD]"): joins namespaces by path, creates the user
//! namespace (maps written by stage-0), unshares the rest, receives mount
//! sources, forks stage-2 into the new PID namespace and reports its pid.

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{setresuid, Pid, Uid};

use super::error::{sys, StageError};
use super::plan::{Plan, Step};
use super::sync::{SyncChannel, SyncMsg};
use super::watch::{rearm_pdeathsig, tie_to_caller};
use super::{die, stage2, BootEnv, SingleThreaded};
use crate::log;
use crate::ns::{NsKind, NsSet};
use crate::sys::process::{clone_parent, exit_now, install_fd_at, Forked};
use crate::wire::Dialect;

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
    plan.mark(Step::CloneStage2);
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
    Ok(ch.send_pid_and_finish(pid.as_raw(), "RECVPID_PLS + stage-2 pid + CHILD_FINISH (stage-1)")?)
}

fn setup(env: &BootEnv, plan: &Plan, ch: &SyncChannel) -> Result<(), StageError> {
    let cfg = &plan.cfg;
    env.fault_point("stage1-start");
    if plan.joins() {
        plan.mark(plan.join_step());
        join_namespaces(plan)?;
    }
    let mut remaining: NsSet = cfg.clone_flags;
    if remaining.contains(NsKind::User) {
        remaining.remove(NsKind::User);
        if plan.user_at_clone() {
            // Cloned into the new user namespace: stage-0 writes the maps
            // without being asked.
            env.fault_point("stage1-before-usermap");
        } else {
            crate::nslog!(Debug, "unshare user namespace");
            plan.mark(Step::UnshareUser);
            unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| StageError::Unshare {
                flags: libc::CLONE_NEWUSER as u32,
                what: "user namespace".to_owned(),
                source,
            })?;
            // A credential change clears PR_SET_PDEATHSIG (the fallback
            // without a pidfd): re-arm it.
            rearm_pdeathsig()?;
            // Let stage-0 open our /proc/<pid>/{uid,gid}_map: a non-dumpable
            // process's /proc files belong to root of the initial namespace.
            if plan.joins() {
                nix::sys::prctl::set_dumpable(true).map_err(sys("prctl(PR_SET_DUMPABLE, 1)"))?;
            }
            crate::nslog!(Debug, "request stage-0 to map user namespace");
            env.fault_point("stage1-before-usermap");
            ch.send(SyncMsg::UsermapPls, "USERMAP_PLS")?;
        }
        ch.expect(SyncMsg::UsermapAck, "waiting for USERMAP_ACK")?;
        if plan.joins() {
            nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE, 0)"))?;
        }
        plan.mark(Step::BecomeRoot);
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
        plan.mark(Step::Unshare(plan.unshared_by_stage1().unwrap_or_default()));
        unshare(CloneFlags::from_bits_retain(remaining.clone_flags() as libc::c_int)).map_err(
            |source| StageError::Unshare {
                flags: remaining.clone_flags(),
                what: describe_unshare(remaining),
                source,
            },
        )?;
    }
    env.fault_point("stage1-after-unshare");
    if !cfg.time_offsets.is_empty() {
        // The time namespace now exists (unshared above, CLONE_NEWTIME is
        // required by the plan) and nobody is in it: stage-2, forked next,
        // is its first process. The kernel takes offsets only in this
        // window, so stage-0 writes them now, whatever the dialect (runc
        // ≥ 1.2 does the same; in the 1.1 dialect the extension attribute
        // travels with nsboot's own sync pair).
        let (pls, ack) = SyncMsg::time_offsets_pair(plan.dialect);
        crate::nslog!(Debug, "request stage-0 to write timens offsets");
        ch.send(pls, "TIMEOFFSETS_PLS")?;
        ch.expect(ack, "waiting for TIMEOFFSETS_ACK")?;
    }
    if !plan.mount_sources.is_empty() {
        crate::nslog!(Debug, "request stage-0 to send mount sources");
        plan.mark(Step::ReceiveMountSources(plan.mount_sources.len()));
        ch.send(SyncMsg::ExtraPls, "MOUNTSOURCES_PLS")?;
        for (src, target) in &plan.mount_sources {
            let fd = ch.recv_fd("receiving mount sources")?;
            super::watch::vacate(*target)?;
            install_fd_at(fd, *target).map_err(|source| StageError::InstallFd { fd: *target, source })?;
            crate::nslog!(Debug, "mount source \"{}\" installed at fd {target}", crate::text::Raw(src));
        }
        ch.expect(SyncMsg::ExtraAck, "waiting for MOUNTSOURCES_ACK")?;
    }
    Ok(())
}

/// Name the namespaces of a failed unshare, marking those this kernel lacks
/// (checked only on failure, to keep the hot path free of stats).
fn describe_unshare(set: NsSet) -> String {
    set.iter()
        .map(|k| if k.is_supported() { k.name().to_owned() } else { format!("{k} (not supported by this kernel)") })
        .collect::<Vec<_>>()
        .join(",")
}

/// Open every path first (after joining a mount namespace the later paths
/// could resolve elsewhere), then join: in the order given (runc 1.1), or
/// in runc ≥ 1.3's passes (see [`join_passes`]).
fn join_namespaces(plan: &Plan) -> Result<(), StageError> {
    let mut fds = Vec::with_capacity(plan.cfg.ns_paths.len());
    for p in &plan.cfg.ns_paths {
        let shown = crate::text::raw_string(p.path.to_bytes());
        let fd = open(p.path.as_c_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| StageError::OpenNs { kind: p.kind, path: shown, source })?;
        fds.push((p, fd));
    }
    let kinds: Vec<NsKind> = fds.iter().map(|(p, _)| p.kind).collect();
    let enter = |i: usize| -> Result<(), nix::errno::Errno> {
        let Some((p, fd)) = fds.get(i) else { return Err(nix::errno::Errno::EBADF) };
        let r = setns(fd, CloneFlags::from_bits_retain(p.kind.clone_flag() as libc::c_int));
        crate::nslog!(
            Debug,
            "setns({:#x}) into {} namespace (with path \"{}\"): {}",
            p.kind.clone_flag(),
            p.kind,
            crate::text::Raw(p.path.to_bytes()),
            match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.desc().to_owned(),
            }
        );
        r
    };
    let became_user = || -> Result<(), StageError> {
        match plan.dialect {
            // runc 1.1 leaves the ids alone; stage-2's setuid(0) comes later.
            Dialect::Runc11 => Ok(()),
            // runc ≥ 1.2.1: become root in the joined user namespace at once
            // (runc issue #4466), before joining anything else.
            Dialect::Runc12 => {
                crate::nslog!(Debug, "setresuid(0, 0, 0) in the joined user namespace");
                setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                    .map_err(sys("setresuid(0, 0, 0) after joining a user namespace"))
            }
        }
        // Joining a user namespace changed our credentials, which cleared
        // PR_SET_PDEATHSIG.
        .and_then(|()| rearm_pdeathsig())
    };
    let order = match plan.dialect {
        Dialect::Runc11 => JoinOrder::AsGiven,
        Dialect::Runc12 => JoinOrder::Passes,
    };
    join_passes(&kinds, order, enter, became_user).map_err(|e| match e {
        JoinFailure::Setns { index, source } => {
            let (kind, path) = fds
                .get(index)
                .map(|(p, _)| (p.kind, crate::text::raw_string(p.path.to_bytes())))
                .unwrap_or((NsKind::User, String::new()));
            StageError::Setns { kind, path, source }
        }
        JoinFailure::Stage(e) => e,
    })
}

/// How NS_PATHS entries are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinOrder {
    /// runc 1.1 and 1.2: one pass in the order given (runc puts user first).
    AsGiven,
    /// runc ≥ 1.3: every non-user namespace that can be joined (EPERM is
    /// put off, other errors are fatal), then the user namespace(s), then
    /// the non-user namespaces put off, which must now succeed.
    Passes,
}

/// Why [`join_passes`] stopped.
#[derive(Debug)]
pub(crate) enum JoinFailure {
    /// `setns` of entry `index` failed for good.
    Setns { index: usize, source: nix::errno::Errno },
    /// The after-user step failed.
    Stage(StageError),
}

/// Join every entry of `kinds` (the NS_PATHS entries, in message order)
/// through `enter(index)`, calling `became_user` right after each user
/// namespace is joined. Pure control flow, so it is tested without
/// privileges.
///
/// The passes make a runc ≥ 1.2 caller work in every case runc 1.2 or 1.3+
/// accepts: a caller that lists user first (all runc versions) gets
/// namespaces owned by that user namespace joined in pass 3, where they
/// would have been in runc 1.2's single pass, and namespaces the user
/// namespace has no power over (made by another tool, owned by the host)
/// joined in pass 1, while we still have the caller's privileges.
pub(crate) fn join_passes(
    kinds: &[NsKind],
    order: JoinOrder,
    mut enter: impl FnMut(usize) -> Result<(), nix::errno::Errno>,
    mut became_user: impl FnMut() -> Result<(), StageError>,
) -> Result<(), JoinFailure> {
    use nix::errno::Errno;
    let mut done = vec![false; kinds.len()];
    let mut step = |i: usize, put_off_eperm: bool, done: &mut [bool]| -> Result<(), JoinFailure> {
        match enter(i) {
            Ok(()) => {
                if let Some(d) = done.get_mut(i) {
                    *d = true;
                }
                if kinds.get(i) == Some(&NsKind::User) {
                    became_user().map_err(JoinFailure::Stage)?;
                }
                Ok(())
            }
            Err(Errno::EPERM) if put_off_eperm => Ok(()),
            Err(source) => Err(JoinFailure::Setns { index: i, source }),
        }
    };
    match order {
        JoinOrder::AsGiven => {
            for i in 0..kinds.len() {
                step(i, false, &mut done)?;
            }
        }
        JoinOrder::Passes => {
            let user = |i: &usize| kinds.get(*i) == Some(&NsKind::User);
            for i in (0..kinds.len()).filter(|i| !user(i)) {
                step(i, true, &mut done)?;
            }
            for i in (0..kinds.len()).filter(user) {
                step(i, false, &mut done)?;
            }
            for i in (0..kinds.len()).filter(|i| !user(i)) {
                if !done.get(i).copied().unwrap_or(true) {
                    step(i, false, &mut done)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use NsKind::*;

    /// Run `join_passes` against a fake kernel: `deny(kind, in_user)` says
    /// whether setns of `kind` fails (with its errno) before/after the user
    /// namespace is joined. Returns the joined kinds in order (`*` marks
    /// the after-user step).
    fn run(
        kinds: &[NsKind],
        order: JoinOrder,
        deny: impl Fn(NsKind, bool) -> Option<Errno>,
    ) -> (Result<(), String>, Vec<String>) {
        let log = std::cell::RefCell::new(Vec::new());
        let in_user = std::cell::Cell::new(false);
        let r = join_passes(
            kinds,
            order,
            |i| {
                let k = kinds[i];
                if let Some(e) = deny(k, in_user.get()) {
                    return Err(e);
                }
                if k == User {
                    in_user.set(true);
                }
                log.borrow_mut().push(k.name().to_owned());
                Ok(())
            },
            || {
                log.borrow_mut().push("*".to_owned());
                Ok(())
            },
        );
        let r = r.map_err(|e| match e {
            JoinFailure::Setns { index, source } => format!("{}:{source:?}", kinds[index]),
            JoinFailure::Stage(e) => e.to_string(),
        });
        (r, log.into_inner())
    }

    #[test]
    fn as_given_keeps_order_and_stops_at_first_error() {
        let (r, log) = run(&[User, Net, Uts], JoinOrder::AsGiven, |_, _| None);
        assert_eq!(r, Ok(()));
        assert_eq!(log, ["user", "*", "net", "uts"]);
        // A host-owned net namespace after the user namespace: EPERM, fatal.
        let (r, log) = run(&[User, Net, Uts], JoinOrder::AsGiven, |k, u| (k == Net && u).then_some(Errno::EPERM));
        assert_eq!(r, Err("net:EPERM".to_owned()));
        assert_eq!(log, ["user", "*"]);
    }

    #[test]
    fn passes_join_others_first_then_user_then_the_rest() {
        // Host-owned net (only joinable before the user namespace) and a uts
        // namespace owned by that user namespace (only joinable inside it).
        let deny = |k, u| match (k, u) {
            (Net, true) => Some(Errno::EPERM),
            (Uts, false) => Some(Errno::EPERM),
            _ => None,
        };
        let (r, log) = run(&[User, Net, Uts], JoinOrder::Passes, deny);
        assert_eq!(r, Ok(()));
        assert_eq!(log, ["net", "user", "*", "uts"]);
        // runc 1.1/1.2's single pass fails on the same input.
        assert!(run(&[User, Net, Uts], JoinOrder::AsGiven, deny).0.is_err());
    }

    #[test]
    fn passes_fail_on_non_eperm_at_once_and_on_eperm_at_the_end() {
        let (r, log) = run(&[User, Net, Mnt], JoinOrder::Passes, |k, _| (k == Net).then_some(Errno::EINVAL));
        assert_eq!(r, Err("net:EINVAL".to_owned()));
        assert!(log.is_empty(), "{log:?}");
        let (r, log) = run(&[User, Net, Mnt], JoinOrder::Passes, |k, _| (k == Mnt).then_some(Errno::EPERM));
        assert_eq!(r, Err("mnt:EPERM".to_owned()));
        assert_eq!(log, ["net", "user", "*"]);
        let (r, log) = run(&[Net, User], JoinOrder::Passes, |k, _| (k == User).then_some(Errno::EPERM));
        assert_eq!(r, Err("user:EPERM".to_owned()));
        assert_eq!(log, ["net"]);
    }

    #[test]
    fn passes_without_user_namespace() {
        let (r, log) = run(&[Mnt, Net, Time], JoinOrder::Passes, |_, _| None);
        assert_eq!(r, Ok(()));
        assert_eq!(log, ["mnt", "net", "time"]);
        let (r, _) = run(&[Mnt, Net], JoinOrder::Passes, |k, _| (k == Net).then_some(Errno::EPERM));
        assert_eq!(r, Err("net:EPERM".to_owned()));
    }

    #[test]
    fn after_user_failure_stops() {
        let kinds = [User, Net];
        let mut entered = Vec::new();
        let r = join_passes(
            &kinds,
            JoinOrder::Passes,
            |i| {
                entered.push(kinds[i]);
                Ok(())
            },
            || Err(StageError::Plan("no root".into())),
        );
        assert!(matches!(r, Err(JoinFailure::Stage(_))));
        assert_eq!(entered, [Net, User]);
    }
}
