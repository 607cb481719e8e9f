//! The cgroup syscall seam: `clone3(CLONE_INTO_CGROUP)` with a `fork`
//! fallback. The only `unsafe` of the cgroups module; every block has a
//! SAFETY comment.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `struct clone_args` (linux/sched.h), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Which side of the fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent; the child's pid and whether the kernel already put
    /// the child into the cgroup (`false`: clone3 was unavailable, write
    /// the pid into `cgroup.procs` before letting the child exec).
    Parent { child: Pid, in_cgroup: bool },
    /// In the child.
    Child,
}

/// Fork, placing the child directly into the cgroup v2 directory `cgroup`
/// with `clone3(CLONE_INTO_CGROUP)` (Linux 5.7) — no window in which the
/// child runs outside it. Falls back to `fork(2)` when clone3 is missing
/// (`ENOSYS`) or too old for the `cgroup` field (`E2BIG`), or when `cgroup`
/// is `None`; other clone3 errors (e.g. `EBUSY`: the cgroup has child
/// cgroups with domain controllers) are returned.
///
/// # Safety
///
/// As for `fork(2)`: if the calling process has other threads, the child
/// may only call async-signal-safe functions until it execs or `_exit`s
/// (no allocation, no locks another thread could hold).
pub unsafe fn fork_into_cgroup(cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: `args` is a valid clone_args of the size passed; with no
        // CLONE_VM and no stack the child gets a copy of this address space,
        // like fork(2); the caller upholds fork's contract (see # Safety).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match ret {
            0 => return Ok(Forked::Child),
            pid if pid > 0 => {
                return Ok(Forked::Parent { child: Pid::from_raw(pid as libc::pid_t), in_cgroup: true })
            }
            _ => match Errno::last() {
                Errno::ENOSYS | Errno::E2BIG => {}
                e => return Err(e),
            },
        }
    }
    // SAFETY: plain fork(2); the caller upholds its contract (# Safety).
    match unsafe { libc::fork() } {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent { child: Pid::from_raw(pid), in_cgroup: false }),
        _ => Err(Errno::last()),
    }
}

/// Errors of [`fork_into_cgroup_single_threaded`].
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("fork into cgroup: the process has {0} threads; only a single-threaded process may use the safe wrapper")]
    MultiThreaded(usize),
    #[error("fork into cgroup: reading /proc/self/status: {0}")]
    Status(#[source] std::io::Error),
    #[error("clone3(CLONE_INTO_CGROUP) / fork: {0}")]
    Fork(#[source] Errno),
}

/// [`fork_into_cgroup`] for a process that checks it is single-threaded
/// (`Threads: 1` in /proc/self/status) — then the child may do anything.
pub fn fork_into_cgroup_single_threaded(cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, ForkError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(ForkError::Status)?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if threads != 1 {
        return Err(ForkError::MultiThreaded(threads));
    }
    // SAFETY: the process has exactly one thread (checked above, and no
    // thread can be started concurrently by a single-threaded process), so
    // the child inherits no lock held by another thread.
    unsafe { fork_into_cgroup(cgroup) }.map_err(ForkError::Fork)
}
