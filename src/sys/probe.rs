//! Probes of what this kernel supports (`nsboot_features`): each calls a
//! system call with arguments it must refuse, and tells "refused for the
//! arguments" (the call exists) from ENOSYS or EINVAL for an unknown flag.
//! Nothing is created, except by [`userns_allowed`], whose child exits at
//! once.
#![allow(unsafe_code)]

use nix::errno::Errno;

/// An fd number no process has open (above any RLIMIT_NOFILE).
const NO_FD: i64 = 0x7fff_fff0;

fn raw(r: libc::c_long) -> Result<libc::c_long, Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// openat2(2) (Linux 5.6): a bad fd is EBADF where it exists.
pub fn openat2() -> bool {
    // struct open_how { u64 flags, mode, resolve }
    let how = [0u64; 3];
    // SAFETY: dirfd is not open (EBADF before any path lookup); the path
    // is a valid C string and `how` a live 24-byte struct.
    let r = raw(unsafe { libc::syscall(libc::SYS_openat2, NO_FD as libc::c_int, c"x".as_ptr(), how.as_ptr(), 24usize) });
    !matches!(r, Err(Errno::ENOSYS))
}

/// open_tree(2) (Linux 5.2).
pub fn open_tree() -> bool {
    // SAFETY: a dirfd that is not open and an empty path: EBADF or ENOENT,
    // nothing is opened.
    let r = raw(unsafe { libc::syscall(libc::SYS_open_tree, NO_FD as libc::c_int, c"".as_ptr(), 0) });
    if let Ok(fd) = r {
        // SAFETY: the kernel gave us this fd; nothing else owns it.
        unsafe { libc::close(fd as libc::c_int) };
    }
    !matches!(r, Err(Errno::ENOSYS))
}

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr_with(attr_set: u64) -> Result<libc::c_long, Errno> {
    let a = MountAttr { attr_set, attr_clr: 0, propagation: 0, userns_fd: NO_FD as u64 };
    // SAFETY: `a` is a live 32-byte struct; the dirfd is not open, so no
    // mount is changed (EBADF), unless the attributes are refused first
    // (EINVAL).
    raw(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            NO_FD as libc::c_int,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            std::ptr::addr_of!(a),
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// mount_setattr(2) (Linux 5.12).
pub fn mount_setattr() -> bool {
    !matches!(mount_setattr_with(0), Err(Errno::ENOSYS))
}

/// MOUNT_ATTR_IDMAP is known (idmapped mounts, Linux 5.12): the user
/// namespace fd is looked up (EBADF) instead of the flag refused (EINVAL).
/// Whether a given filesystem supports them is only known by trying.
pub fn idmapped_mounts() -> bool {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    matches!(mount_setattr_with(MOUNT_ATTR_IDMAP), Err(Errno::EBADF))
}

/// `struct clone_args` up to CLONE_ARGS_SIZE_VER2.
#[repr(C)]
#[derive(Default)]
struct CloneArgsV2 {
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

/// clone3(2) (Linux 5.3): a size below VER0 is EINVAL where it exists.
pub fn clone3() -> bool {
    let a = CloneArgsV2::default();
    // SAFETY: size 1 is refused (EINVAL) before any process is created.
    let r = raw(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::addr_of!(a), 1usize) });
    matches!(r, Err(Errno::EINVAL) | Err(Errno::E2BIG))
}

/// CLONE_INTO_CGROUP (Linux 5.7): with a cgroup fd that is not open the
/// fork fails with EBADF; an older kernel refuses the flag (EINVAL).
pub fn clone_into_cgroup() -> bool {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let a = CloneArgsV2 { flags: CLONE_INTO_CGROUP, exit_signal: libc::SIGCHLD as u64, cgroup: NO_FD as u64, ..Default::default() };
    // SAFETY: the cgroup fd is not open, so copy_process fails (EBADF)
    // before a child exists. Were one created anyway, it exits at once
    // (only _exit, async-signal-safe) and is reaped below.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::addr_of!(a), std::mem::size_of::<CloneArgsV2>()) };
    match r {
        // SAFETY: in the child: _exit only.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            true
        }
        _ => Errno::last() == Errno::EBADF,
    }
}

/// pidfd_open, pidfd_send_signal and waitid(P_PIDFD) (Linux 5.4).
pub fn pidfd() -> (bool, bool) {
    let Ok(fd) = super::process::pidfd_open(nix::unistd::Pid::this()) else { return (false, false) };
    use std::os::fd::AsFd;
    let signal = super::process::pidfd_send_signal(fd.as_fd(), 0).is_ok();
    // Ourselves are not our child: ECHILD where P_PIDFD is known, EINVAL
    // before 5.4.
    let wait = matches!(super::process::waitid_pidfd(fd.as_fd(), libc::WNOHANG), Err(Errno::ECHILD));
    (signal, wait)
}

/// Whether this process may create a user namespace: a child cloned into
/// one, which exits at once. Safe from a threaded process (the child
/// calls only `_exit`).
pub fn userns_allowed() -> Result<(), Errno> {
    // SAFETY: fork semantics (no stack given); the child runs only _exit,
    // which is async-signal-safe, so locks held by other threads of ours
    // do not matter.
    let r = unsafe { libc::syscall(libc::SYS_clone, (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong, 0, 0, 0, 0) };
    match r {
        // SAFETY: in the child: _exit only.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            Ok(())
        }
        _ => Err(Errno::last()),
    }
}
