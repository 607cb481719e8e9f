//! stage-0, the original process ("runc:[0:PARENT]"): reads the message,
//! forks stage-1, serves its requests (id maps, pid, mount sources or time
//! offsets), releases stage-2 and exits 0 once stage-2 has finished.

use std::os::fd::AsRawFd;

use nix::sys::signal::{kill, Signal};
use nix::unistd::{getppid, Pid};

use super::error::{sys, StageError};
use super::plan::Plan;
use super::sync::{self, SyncChannel, SyncMsg};
use super::{die, idmap, message, stage1, BootEnv, SingleThreaded};
use crate::log;
use crate::ns::NsKind;
use crate::sys::process::{clone_parent, exit_now, write_all_raw, Forked};
use crate::wire::Dialect;

/// Everything stage-0 does before forking, for a runc-style caller: seal,
/// the setup byte, the message off the init pipe.
pub fn prepare(env: &BootEnv, token: &SingleThreaded) -> Result<Plan, StageError> {
    // Die with the caller from the first instant, not only once stage-1 is
    // forked: a caller killed while stage-0 re-executes, reads the message
    // or writes oom_score_adj must not leave stage-0 running. (The flag
    // survives the re-execution below: it is cleared only by set-id execs.)
    super::watch::tie_to_caller(getppid(), true)?;
    crate::sealed::ensure_sealed_self(token)?;
    if env.dialect == Dialect::Runc11 {
        // "Past initial setup": runc 1.1's initWaiter reads one \0.
        write_all_raw(env.init_fd, b"\0").map_err(StageError::InitByte)?;
    }
    crate::nslog!(Debug, "=> nsexec container setup");
    if env.dialect != Dialect::Runc11 && log::enabled(log::Level::Debug) {
        log_cpu_affinity();
    }
    let cfg = message::read(env.init_fd, env.dialect)?;
    env.fault_point("stage0-after-message");
    prepare_plan(Plan::new(cfg, env)?)
}

/// runc >= 1.2 logs the CPU affinity stage-0 starts with, before the
/// process can be moved into the container's cgroup (some kernels then
/// reset it to the cgroup's cpuset): "affinity: 0x%zx" of the first 64 CPUs,
/// as its nsexec.c log_cpu_affinity() does. runc's own
/// tests/integration/cpu_affinity.bats checks `execCPUAffinity.initial`
/// by this line.
fn log_cpu_affinity() {
    match nix::sched::sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => {
            let mask = (0..64usize)
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .fold(0u64, |m, i| m | (1u64 << i));
            crate::nslog!(Debug, "affinity: {mask:#x}");
        }
        Err(e) => crate::nslog!(Warning, "sched_getaffinity: {}", e.desc()),
    }
}

/// The part of [`prepare`] that follows the message: OOM score, dumpable.
pub fn prepare_plan(plan: Plan) -> Result<Plan, StageError> {
    if let Some(adj) = plan.cfg.oom_score_adj {
        // Before going non-dumpable: the file is not writable afterwards
        // without privilege.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| StageError::OomScoreAdj {
                value: adj,
                source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
    }
    if plan.joins() {
        // Joining foreign namespaces: nothing of ours may be ptraced or
        // read through /proc by their processes.
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE, 0)"))?;
    }
    Ok(plan)
}

/// Fork stage-1 and serve it. Returns only in stage-2.
pub fn fork_stages(env: &BootEnv, plan: Plan, token: &SingleThreaded) {
    log::set_stage(0);
    let _ = nix::sys::prctl::set_name(c"runc:[0:PARENT]");
    let caller = getppid();
    if let Err(e) = super::watch::tie_to_caller(caller, true) {
        die(&e)
    }
    let (s0_child, s1_end) = sync::pair().unwrap_or_else(|e| die(&sys("socketpair (stage-1)")(e)));
    let (s0_grand, s2_end) = sync::pair().unwrap_or_else(|e| die(&sys("socketpair (stage-2)")(e)));

    let flags = libc::CLONE_PARENT | if plan.user_at_clone() { libc::CLONE_NEWUSER } else { 0 };
    match clone_parent(token, flags) {
        Err(source) if plan.user_at_clone() => die(&StageError::Unshare {
            flags: libc::CLONE_NEWUSER as u32,
            what: "user namespace (clone of stage-1)".to_owned(),
            source,
        }),
        Err(e) => die(&sys("clone stage-1")(e)),
        Ok(Forked::Child) => {
            drop(s0_child);
            drop(s0_grand);
            stage1::run(env, &plan, SyncChannel::new(s1_end, "stage-0"), s2_end, caller, token)
        }
        Ok(Forked::Parent(stage1)) => {
            drop(s1_end);
            drop(s2_end);
            let ch1 = SyncChannel::new(s0_child, "stage-1");
            let ch2 = SyncChannel::new(s0_grand, "stage-2");
            let mut stage2 = None;
            match serve(env, &plan, stage1, &ch1, &ch2, &mut stage2) {
                Ok(()) => exit_now(0),
                Err(e) => {
                    // Leave nothing running: the caller only learns the pids
                    // from the JSON line, which may not have been sent.
                    let _ = kill(stage1, Signal::SIGKILL);
                    if let Some(p) = stage2 {
                        let _ = kill(p, Signal::SIGKILL);
                    }
                    die(&e)
                }
            }
        }
    }
}

fn serve(
    env: &BootEnv,
    plan: &Plan,
    stage1: Pid,
    ch1: &SyncChannel,
    ch2: &SyncChannel,
    stage2: &mut Option<Pid>,
) -> Result<(), StageError> {
    if plan.user_at_clone() {
        // Stage-1 was born in its user namespace: map it now, unasked.
        crate::nslog!(Debug, "map stage-1's new user namespace");
        map_stage1(env, plan, stage1, ch1)?;
    }
    loop {
        let v = ch1.recv_raw("finishing its work")?;
        match SyncMsg::from_value(v) {
            Some(SyncMsg::UsermapPls) => {
                crate::nslog!(Debug, "stage-1 requested userns mappings");
                map_stage1(env, plan, stage1, ch1)?;
            }
            Some(SyncMsg::RecvPidPls) => {
                let pid = ch1.recv_i32("reading stage-2 pid")?;
                if pid <= 0 {
                    return Err(StageError::Plan(format!("stage-1 sent a bad stage-2 pid {pid}")));
                }
                *stage2 = Some(Pid::from_raw(pid));
                crate::nslog!(Debug, "stage-1 reports stage-2 pid {pid}");
                // No RECVPID_ACK: stage-1 does not wait for one (it sends
                // CHILD_FINISH with the pid and exits).
                let line = format!("{{\"stage1_pid\":{stage1},\"stage2_pid\":{pid}}}\n");
                write_all_raw(env.init_fd, line.as_bytes()).map_err(StageError::PidJson)?;
                env.fault_point("stage0-after-pid");
            }
            Some(m) if m == SyncMsg::time_offsets_pair(plan.dialect).0 => {
                // stage-1 has unshared the time namespace and no process
                // is in it yet: the only window in which the kernel takes
                // offsets. Written from here (privileged, in the caller's
                // namespaces) in both dialects.
                crate::nslog!(Debug, "stage-1 requested timens offsets");
                env.fault_point("stage0-before-timens-offsets");
                idmap::write_time_offsets(stage1, &plan.cfg)?;
                let (_, ack) = SyncMsg::time_offsets_pair(plan.dialect);
                ch1.send(ack, "TIMEOFFSETS_ACK")?;
            }
            Some(SyncMsg::ExtraPls) if plan.dialect == Dialect::Runc11 => {
                send_mount_sources(plan, stage1, ch1)?;
                ch1.send(SyncMsg::ExtraAck, "MOUNTSOURCES_ACK")?;
            }
            Some(SyncMsg::ChildFinish) => break,
            _ => {
                return Err(super::sync::SyncError::Unexpected {
                    peer: "stage-1",
                    step: "waiting for stage-1",
                    got: v,
                }
                .into())
            }
        }
    }
    crate::nslog!(Debug, "stage-1 complete");
    if stage2.is_none() {
        return Err(StageError::Plan("stage-1 finished without reporting stage-2's pid".to_owned()));
    }
    env.fault_point("stage0-before-grandchild");
    ch2.send(SyncMsg::Grandchild, "GRANDCHILD")?;
    ch2.expect(SyncMsg::ChildFinish, "finishing its work")?;
    crate::nslog!(Debug, "<~ nsexec stage-0");
    Ok(())
}

/// Write stage-1's id maps and tell it so (USERMAP_ACK).
fn map_stage1(env: &BootEnv, plan: &Plan, stage1: Pid, ch1: &SyncChannel) -> Result<(), StageError> {
    env.fault_point("stage0-before-usermap");
    idmap::write_maps(stage1, &plan.cfg)?;
    env.fault_point("stage0-after-usermap");
    Ok(ch1.send(SyncMsg::UsermapAck, "USERMAP_ACK")?)
}

/// Open each mount source `O_PATH` inside stage-1's mount namespace and
/// send the fds, one per message.
fn send_mount_sources(plan: &Plan, stage1: Pid, ch: &SyncChannel) -> Result<(), StageError> {
    use nix::fcntl::{open, OFlag};
    use nix::sched::{setns, CloneFlags};
    use nix::sys::stat::Mode;
    let host = open("/proc/self/ns/mnt", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open /proc/self/ns/mnt"))?;
    let theirs = format!("/proc/{stage1}/ns/mnt");
    let container = open(theirs.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open stage-1 mount namespace"))?;
    setns(&container, CloneFlags::CLONE_NEWNS).map_err(|source| StageError::Setns {
        kind: NsKind::Mnt,
        path: theirs.clone(),
        source,
    })?;
    let mut result = Ok(());
    for (src, _) in &plan.mount_sources {
        let shown = crate::text::raw_string(src);
        let fd = match open(src.as_slice(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(source) => {
                result = Err(StageError::MountSource { path: shown, source });
                break;
            }
        };
        if let Err(e) = ch.send_fd(fd.as_raw_fd(), "sending mount sources") {
            result = Err(e.into());
            break;
        }
    }
    setns(&host, CloneFlags::CLONE_NEWNS).map_err(|source| StageError::Setns {
        kind: NsKind::Mnt,
        path: "/proc/self/ns/mnt (back to the host)".to_owned(),
        source,
    })?;
    result
}
