//! The cgroup syscall seam: `clone3(CLONE_INTO_CGROUP)` with a `fork`
//! fallback. The only `unsafe` of the cgroups module; every block has a
//! SAFETY comment.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
                return Ok(Forked::Parent {
                    child: Pid::from_raw(pid as libc::pid_t),
                    in_cgroup: true,
                })
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
        pid if pid > 0 => Ok(Forked::Parent {
            child: Pid::from_raw(pid),
            in_cgroup: false,
        }),
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
pub fn fork_into_cgroup_single_threaded(
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Forked, ForkError> {
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

/// `bpf(BPF_PROG_LOAD)` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program
/// (`insns`: eBPF instructions, 8 bytes each). On failure, retries once
/// with the verifier log and returns it with the errno. The fd is
/// `O_CLOEXEC` (the kernel creates every BPF fd so).
pub(crate) fn bpf_load_cgroup_device(insns: &[u64]) -> Result<OwnedFd, (Errno, String)> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    /// The prefix of `union bpf_attr` for BPF_PROG_LOAD, up to prog_flags.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
    }
    let license = c"Apache-2.0";
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| (Errno::E2BIG, String::new()))?;
    let mut log = vec![0u8; 0];
    for with_log in [false, true] {
        if with_log {
            log = vec![0u8; 64 * 1024];
        }
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(with_log),
            log_size: log.len() as u32,
            log_buf: if with_log { log.as_mut_ptr() as u64 } else { 0 },
            kern_version: 0,
            prog_flags: 0,
        };
        // SAFETY: `attr` is a valid BPF_PROG_LOAD prefix of the size
        // passed; `insns`, `license` and `log` outlive the call, the kernel
        // reads `insn_cnt` instructions and writes at most `log_size` bytes.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &attr as *const ProgLoad,
                std::mem::size_of::<ProgLoad>(),
            )
        };
        if ret >= 0 {
            // SAFETY: a successful BPF_PROG_LOAD returns a new fd owned by
            // nothing else in this process.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) });
        }
        let e = Errno::last();
        if with_log || !matches!(e, Errno::EINVAL | Errno::EACCES) {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            return Err((e, String::from_utf8_lossy(&log[..end]).into_owned()));
        }
    }
    Err((Errno::EINVAL, String::new()))
}

/// `bpf(BPF_PROG_ATTACH)` of `prog` to the cgroup2 directory `cgroup` as
/// `BPF_CGROUP_DEVICE` with `BPF_F_ALLOW_MULTI` (programs of ancestors and
/// of nested cgroups all apply; a device must pass every one).
pub(crate) fn bpf_attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
) -> Result<(), Errno> {
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }
    let attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is a valid BPF_PROG_ATTACH attribute of the size
    // passed, read by the kernel during the call only; both fds are
    // borrowed and open for its duration.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

const CLONE_PARENT: u64 = libc::CLONE_PARENT as u64;

/// Like [`fork_into_cgroup`], with `CLONE_PARENT`: the child is a child
/// of the caller's parent (runc's stage-1 forks its init so), which lets
/// an intermediate process that unshared a PID namespace create the
/// container's init as a child of the runtime and exit. The child's exit
/// signal is the caller's own (the kernel takes it with CLONE_PARENT).
/// Without clone3 (`ENOSYS`/`E2BIG`) or without `cgroup`: `clone(2)` with
/// `CLONE_PARENT` and no stack (a fork), `in_cgroup: false`.
///
/// # Safety
///
/// As for [`fork_into_cgroup`].
pub unsafe fn clone_parent_into_cgroup(cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP | CLONE_PARENT,
            exit_signal: 0,
            cgroup: fd.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: as in fork_into_cgroup: a valid clone_args of the size
        // passed, no CLONE_VM, no stack: a copy of this address space.
        let ret = unsafe {
            libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
        };
        match ret {
            0 => return Ok(Forked::Child),
            pid if pid > 0 => return Ok(Forked::Parent { child: Pid::from_raw(pid as libc::pid_t), in_cgroup: true }),
            _ => match Errno::last() {
                Errno::ENOSYS | Errno::E2BIG => {}
                e => return Err(e),
            },
        }
    }
    // SAFETY: the raw clone syscall with CLONE_PARENT and a NULL stack
    // behaves as fork(2) (the child continues on a copy of this stack);
    // x86_64/aarch64 argument order (flags, stack, parent_tid, child_tid,
    // tls); the caller upholds fork's contract (# Safety).
    let ret = unsafe {
        libc::syscall(libc::SYS_clone, libc::CLONE_PARENT as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    match ret {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent { child: Pid::from_raw(pid as libc::pid_t), in_cgroup: false }),
        _ => Err(Errno::last()),
    }
}
