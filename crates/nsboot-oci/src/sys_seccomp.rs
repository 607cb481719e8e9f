//! The seccomp(2) seam: the only place in this crate's seccomp code with
//! `unsafe`. One function per intent; every block has a SAFETY comment.
//!
//! [`set_mode_filter`] is what runs in the container process after fork:
//! it makes one system call on memory the caller already owns, allocates
//! nothing and takes no lock, so it is safe to call between fork and exec of
//! a multi-threaded parent.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog)`.
///
/// Returns the listener fd when `flags` holds
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` (the kernel creates it with
/// `O_CLOEXEC`), `None` otherwise.
///
/// The kernel requires `no_new_privs` or `CAP_SYS_ADMIN` in the caller's
/// user namespace (`EACCES` otherwise).
pub(crate) fn set_mode_filter(
    program: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which is borrowed for the whole
    // call and holds `len` initialised sock_filter records; the kernel copies
    // the program before returning and keeps no pointer to it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2)
    // returns a new listener fd that nothing else in this process owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Take ownership of an fd received as SCM_RIGHTS.
///
/// Errors with `EBADF` unless `fd` is open (checked with `F_GETFD`).
pub(crate) fn own_received_fd(fd: std::os::fd::RawFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(
        // SAFETY: only used for the F_GETFD probe below, during which `fd`
        // (just installed in this process by recvmsg) stays open.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )?;
    // SAFETY: recvmsg installed `fd` in this process for the receiver (with
    // MSG_CMSG_CLOEXEC); nothing else owns it, and the caller hands it over
    // exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
