//! The syscall seam of the OCI process code: every `unsafe` block of this
//! crate is in this file, each with its `// SAFETY:` reason. Callers get
//! safe functions taking `BorrowedFd`/`&CStr` and returning `OwnedFd` or
//! `nix::Result`.
//!
//! nix covers most of what the process setup needs (setresuid, setgroups,
//! sethostname, umask, setrlimit, execve, sendmsg); what it lacks is here:
//! capget/capset and the capability prctls, ioprio_set, sched_setattr,
//! personality, setdomainname, the pty ioctls, posix_spawn, pidfd_open.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

fn ret(r: libc::c_long) -> nix::Result<libc::c_long> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn ret_int(r: libc::c_int) -> nix::Result<libc::c_int> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's (effective, permitted, inheritable) sets as 64-bit
/// masks: `capget(2)` with `_LINUX_CAPABILITY_VERSION_3`.
pub fn capget() -> nix::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader { version: CAP_V3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: hdr and data are valid for the kernel to read and write;
    // version 3 writes exactly two CapData records.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
    ret(r)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// `capset(2)` of the calling thread's three sets.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    let mut hdr = CapHeader { version: CAP_V3, pid: 0 };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        CapData { effective: e0, permitted: p0, inheritable: i0 },
        CapData { effective: e1, permitted: p1, inheritable: i1 },
    ];
    // SAFETY: hdr is valid for writing (the kernel may update version),
    // data holds the two records version 3 reads.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    ret(r).map(drop)
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> nix::Result<libc::c_int> {
    // SAFETY: every caller passes an integer-argument prctl operation
    // (no pointers), with the unused arguments zero as the kernel requires.
    ret_int(unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}

/// `prctl(PR_CAPBSET_DROP, cap)`.
pub fn bounding_drop(cap: u32) -> nix::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, cap.into(), 0).map(drop)
}

/// `prctl(PR_CAPBSET_READ, cap)`: is `cap` in the bounding set?
/// `EINVAL` means the kernel does not know `cap`.
pub fn bounding_read(cap: u32) -> nix::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, cap.into(), 0).map(|r| r == 1)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`.
pub fn ambient_raise(cap: u32) -> nix::Result<()> {
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, cap.into()).map(drop)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
pub fn ambient_clear() -> nix::Result<()> {
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, on)`.
pub fn set_keepcaps(on: bool) -> nix::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, on.into(), 0).map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> nix::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)`.
pub fn ioprio_set(class: u32, level: u32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | level;
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio as libc::c_int) };
    ret(r).map(drop)
}

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1, with the util-clamp fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a complete sched_attr whose size field says how much
    // the kernel may read.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    ret(r).map(drop)
}

/// `personality(persona)`.
pub fn personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: personality takes an integer and changes only this process.
    let r = unsafe { libc::personality(persona) };
    ret_int(r).map(drop)
}

/// `setdomainname(name, len)`.
pub fn setdomainname(name: &[u8]) -> nix::Result<()> {
    // SAFETY: name is valid for name.len() bytes, which is what we pass.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    ret_int(r).map(drop)
}

/// `dup2(old, new)`, clearing `FD_CLOEXEC` on `new` also when
/// `old == new` (where dup2 itself does nothing).
pub fn dup_onto(old: BorrowedFd<'_>, new: RawFd) -> nix::Result<()> {
    if old.as_raw_fd() == new {
        // SAFETY: fcntl(F_SETFD) on a fd we borrow; no memory involved.
        return ret_int(unsafe { libc::fcntl(new, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: dup2 on a borrowed, open fd; `new` is one of the standard
    // descriptors the caller means to replace.
    ret_int(unsafe { libc::dup2(old.as_raw_fd(), new) }).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal `fd` the controlling
/// terminal of this (session leader) process.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    ret_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// `ioctl(fd, TIOCSWINSZ, {rows, cols})`.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one struct winsize, which ws is.
    ret_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) }).map(drop)
}

/// `ioctl(master, TIOCSPTLCK, &0)`: unlock the pty's slave (unlockpt).
pub fn unlock_pty(master: BorrowedFd<'_>) -> nix::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    ret_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero as *const libc::c_int) }).map(drop)
}

/// `ioctl(master, TIOCGPTN, &n)`: the pty's number in its devpts.
pub fn pty_number(master: BorrowedFd<'_>) -> nix::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to n.
    ret_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n as *mut libc::c_uint) })?;
    Ok(n)
}

/// `ioctl(master, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC)`: the slave,
/// opened through the master (no path lookup in /dev/pts).
pub fn open_pty_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new fd.
    let fd = ret_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(pid, 0)`; the fd is close-on-exec.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, returns a new fd.
    let fd = ret(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What a spawned child gets: `stdin` on 0, `out` on 1 and 2.
pub struct SpawnIo<'a> {
    pub stdin: BorrowedFd<'a>,
    pub out: BorrowedFd<'a>,
}

/// `posix_spawn(path, argv, envp)` with `io` on 0/1/2, an empty signal
/// mask and default signal dispositions. Every other fd of ours is
/// `O_CLOEXEC`, so the child gets exactly these three.
///
/// posix_spawn is the multi-thread-safe way to start a program (glibc
/// clones with CLONE_VM|CLONE_VFORK and runs only async-signal-safe code
/// in the child), and it allocates nothing after the clone.
pub fn spawn(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    io: &SpawnIo<'_>,
) -> nix::Result<Pid> {
    // Callers build argv and envp NULL-terminated; check, since the C
    // call depends on it.
    if argv.last() != Some(&std::ptr::null()) || envp.last() != Some(&std::ptr::null()) {
        return Err(Errno::EINVAL);
    }
    let mut fa = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
    let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
    // SAFETY: init writes the object fa points to.
    Errno::result(unsafe { libc::posix_spawn_file_actions_init(fa.as_mut_ptr()) }).map_err(|_| Errno::ENOMEM)?;
    // SAFETY: as above, for attr.
    if unsafe { libc::posix_spawnattr_init(attr.as_mut_ptr()) } != 0 {
        // SAFETY: fa was initialised just above.
        unsafe { libc::posix_spawn_file_actions_destroy(fa.as_mut_ptr()) };
        return Err(Errno::ENOMEM);
    }
    let result = (|| {
        let actions = [(io.stdin.as_raw_fd(), 0), (io.out.as_raw_fd(), 1), (io.out.as_raw_fd(), 2)];
        for (from, to) in actions {
            // SAFETY: fa is initialised; adddup2 records two integers.
            let r = unsafe { libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), from, to) };
            if r != 0 {
                return Err(Errno::from_raw(r));
            }
        }
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset/sigfillset initialise the sets they are given.
        unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigfillset(all.as_mut_ptr());
        }
        // SAFETY: attr is initialised; the sets were initialised above.
        let r = unsafe {
            libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), empty.as_ptr());
            libc::posix_spawnattr_setsigdefault(attr.as_mut_ptr(), all.as_ptr());
            libc::posix_spawnattr_setflags(
                attr.as_mut_ptr(),
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            )
        };
        if r != 0 {
            return Err(Errno::from_raw(r));
        }
        let mut pid: libc::pid_t = 0;
        // SAFETY: path is a C string; argv and envp are NULL-terminated
        // arrays of C strings that outlive the call (checked above); fa
        // and attr are initialised.
        let r = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                fa.as_ptr(),
                attr.as_ptr(),
                argv.as_ptr().cast(),
                envp.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(Errno::from_raw(r));
        }
        Ok(Pid::from_raw(pid))
    })();
    // SAFETY: both objects were initialised above and are destroyed once.
    unsafe {
        libc::posix_spawn_file_actions_destroy(fa.as_mut_ptr());
        libc::posix_spawnattr_destroy(attr.as_mut_ptr());
    }
    result
}

/// `fork()` for a program that has only one thread.
///
/// # Safety
/// The calling process must be single-threaded (the child is a complete
/// copy then, with no lock held by a thread that does not exist in it).
pub unsafe fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller guarantees a single-threaded process.
    unsafe { nix::unistd::fork() }
}

/// `access(path, X_OK)` relative to the current root.
pub fn executable(path: &CStr) -> nix::Result<()> {
    // SAFETY: path is a NUL-terminated string.
    ret_int(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(drop)
}

/// Receive one fd sent with `SCM_RIGHTS` on `sock` (`MSG_CMSG_CLOEXEC`);
/// the message body is returned with it (at most 256 bytes).
pub fn recv_fd(sock: BorrowedFd<'_>) -> nix::Result<(OwnedFd, Vec<u8>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fds) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        (msg.bytes, fds)
    };
    let mut owned: Vec<OwnedFd> = fds
        .into_iter()
        // SAFETY: recvmsg just installed these fds in this process (with
        // MSG_CMSG_CLOEXEC); nothing else owns them.
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        .collect();
    if owned.len() != 1 {
        return Err(Errno::EBADMSG);
    }
    Ok((owned.remove(0), buf[..n].to_vec()))
}

nix::ioctl_read_bad!(fionread, libc::FIONREAD, libc::c_int);

/// Bytes waiting in a pipe or FIFO (`ioctl(FIONREAD)`), from either end.
pub fn pipe_pending(fd: BorrowedFd<'_>) -> nix::Result<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer, valid for the call.
    unsafe { fionread(fd.as_raw_fd(), &mut n) }?;
    Ok(n)
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: every fd from `first` up
/// is closed by the next execve (runc's init does the same: a container
/// gets stdio and nothing else of its runtime).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes integers only and changes fd flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
