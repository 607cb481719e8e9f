//! Filesystem and mount syscalls that nix does not wrap (yet): `openat2`,
//! the new mount API (`open_tree`, `move_mount`, `fsopen`, `fsconfig`,
//! `fsmount`, `mount_setattr`), `setdomainname` and fd-based xattrs.
//!
//! Every function here is a thin, safe wrapper: it takes borrowed fds and
//! `&CStr` paths, returns `OwnedFd` for anything the kernel opens (always
//! close-on-exec), and turns `-1` into [`Errno`]. Nothing here allocates
//! between the call and the errno read. The rootfs stage (crate nsboot-oci)
//! makes its syscalls through this file and has no `unsafe` of its own.
//!
//! # References
//! openat2(2), open_tree(2), move_mount(2), fsopen(2), fsconfig(2),
//! fsmount(2), mount_setattr(2), setdomainname(2), listxattr(2) — man7.org.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `AT_*` flags as the unsigned type open_tree/mount_setattr take (the
/// values are small positive constants).
const AT_EMPTY_PATH: libc::c_uint = libc::AT_EMPTY_PATH as libc::c_uint;
const AT_RECURSIVE: libc::c_uint = libc::AT_RECURSIVE as libc::c_uint;

/// Empty path for the `*_EMPTY_PATH` / `AT_EMPTY_PATH` forms.
const EMPTY: &CStr = c"";

/// `struct open_how` of openat2(2) (libc's is `#[non_exhaustive]`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `struct mount_attr` of mount_setattr(2), `MOUNT_ATTR_SIZE_VER0` bytes.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Turn a syscall's fd-returning result into an `OwnedFd`.
fn owned_fd(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    if ret < 0 {
        return Err(Errno::last());
    }
    let raw = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned `raw` as a new descriptor that nothing
    // else in this process owns; we take sole ownership of it here.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn unit(ret: libc::c_long) -> Result<(), Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `openat2(dirfd, path, &{flags | O_CLOEXEC, mode, resolve}, sizeof how)`.
///
/// `resolve` is a set of `RESOLVE_*` bits (e.g. `RESOLVE_IN_ROOT`).
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    // `O_*` bits are non-negative; a negative value is a caller bug.
    let flags = u64::try_from(flags | libc::O_CLOEXEC).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags,
        mode: u64::from(mode),
        resolve,
    };
    // With RESOLVE_IN_ROOT/RESOLVE_BENEATH the kernel answers EAGAIN when
    // a rename or mount anywhere on the system raced with a ".." step and
    // it cannot prove the step stayed inside; the documented remedy is to
    // try again (libpathrs does the same). Bounded, so that a system busy
    // mounting cannot keep us here.
    let mut tries = 0;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a fully
        // initialised `open_how` that outlives the call; the size passed is
        // its exact size. The kernel does not keep either pointer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                std::ptr::from_ref(&how),
                std::mem::size_of::<OpenHow>(),
            )
        };
        match owned_fd(ret) {
            Err(Errno::EAGAIN) if tries < OPENAT2_RETRIES => tries += 1,
            r => return r,
        }
    }
}

/// How often [`openat2`] retries an EAGAIN from a raced ".." step.
const OPENAT2_RETRIES: u32 = 64;

/// `open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH
/// [| AT_RECURSIVE])`: a detached bind mount of what `fd` refers to.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    flags |= AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `EMPTY` is a static NUL-terminated string; `fd` is a live
    // descriptor for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), EMPTY.as_ptr(), flags) };
    owned_fd(ret)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
/// [| AT_RECURSIVE])`: a detached bind mount of the host path `path`
/// (symlinks followed, as mount(2) follows a bind source).
pub fn clone_path(path: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `path` is a valid NUL-terminated string for the call; the
    // kernel does not keep the pointer.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    owned_fd(ret)
}

/// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH |
/// MOVE_MOUNT_T_EMPTY_PATH)`: attach the mount `from` on top of the
/// object `to` refers to, without any path lookup.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both fds are live; the two paths are the static empty string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            EMPTY.as_ptr(),
            to.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
        )
    };
    unit(ret)
}

/// `move_mount(from, "", dir, name, MOVE_MOUNT_F_EMPTY_PATH |
/// MOVE_MOUNT_T_SYMLINKS)`: attach the detached mount `from` at `name`
/// below `dir` (a symlink there followed, as mount(2) follows its target).
pub fn move_mount_to(from: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_SYMLINKS;
    // SAFETY: both fds are live; `name` and the static empty string are
    // valid NUL-terminated strings for the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_move_mount, from.as_raw_fd(), EMPTY.as_ptr(), dir.as_raw_fd(), name.as_ptr(), flags)
    };
    unit(ret)
}

/// `fsopen(fstype, FSOPEN_CLOEXEC)`: a filesystem context.
pub fn fsopen(fstype: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `fstype` is a valid NUL-terminated string for the call.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    owned_fd(ret)
}

/// `fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0)`, or
/// `FSCONFIG_SET_FLAG` when `value` is `None`.
pub fn fsconfig_set(fd: BorrowedFd<'_>, key: &CStr, value: Option<&CStr>) -> Result<(), Errno> {
    let (cmd, val) = match value {
        Some(v) => (libc::FSCONFIG_SET_STRING, v.as_ptr()),
        None => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: `key` (and `value` when given) are valid NUL-terminated
    // strings for the call; NULL is what FSCONFIG_SET_FLAG requires.
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, key.as_ptr(), val, 0) };
    unit(ret)
}

/// `fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)` then
/// `fsmount(fd, FSMOUNT_CLOEXEC, attrs)`: a detached mount of the new
/// superblock, with `MOUNT_ATTR_*` bits `attrs`.
pub fn fscreate_mount(fd: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: only integers and NULL pointers are passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    unit(ret)?;
    // SAFETY: only integers are passed.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), libc::FSMOUNT_CLOEXEC, attrs) };
    owned_fd(ret)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], &{set, clr}, size)`.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clr: u64) -> Result<(), Errno> {
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    setattr(fd, EMPTY, flags, set, clr)
}

/// `mount_setattr(dir, name, 0, &{set, clr}, size)`: the mount at `name`
/// below `dir` (the topmost one there; a symlink followed).
pub fn mount_setattr_at(dir: BorrowedFd<'_>, name: &CStr, set: u64, clr: u64) -> Result<(), Errno> {
    setattr(dir, name, 0, set, clr)
}

fn setattr(fd: BorrowedFd<'_>, path: &CStr, flags: libc::c_uint, set: u64, clr: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` is fully initialised and outlives the call; the size
    // passed is its exact size; `path` is a valid NUL-terminated string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            path.as_ptr(),
            flags,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit(ret)
}

/// `getdents64(fd, buf, len)`: as many `struct linux_dirent64` records
/// as fit into `buf`; 0 at the end of the directory. (Read them with
/// [`dirents`].)
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call;
    // the kernel writes at most that many.
    let ret = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    usize::try_from(ret).map_err(|_| Errno::last())
}

/// The (name, `d_type`) of each `struct linux_dirent64` record in `buf`
/// (what [`getdents64`] filled), bounds-checked: a malformed record ends
/// the walk.
pub fn dirents(buf: &[u8]) -> impl Iterator<Item = (&[u8], u8)> {
    // d_ino: u64, d_off: i64, d_reclen: u16, d_type: u8, d_name: NUL-terminated.
    const NAME: usize = 19;
    let mut rest = buf;
    std::iter::from_fn(move || {
        let reclen = usize::from(u16::from_ne_bytes([*rest.get(16)?, *rest.get(17)?]));
        let rec = rest.get(..reclen).filter(|_| reclen > NAME)?;
        rest = &rest[reclen..];
        let name = &rec[NAME..];
        let end = name.iter().position(|&b| b == 0)?;
        Some((&name[..end], rec[18]))
    })
}

/// `setdomainname(name, len)`.
pub fn setdomainname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is a valid buffer of `name.len()` bytes for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    unit(ret.into())
}

/// `flistxattr(fd, buf, len)`: the NUL-separated attribute names.
pub fn flistxattr(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    loop {
        // SAFETY: a NULL buffer with size 0 asks only for the needed size.
        let need = unsafe { libc::flistxattr(fd.as_raw_fd(), std::ptr::null_mut(), 0) };
        let need = usize::try_from(need).map_err(|_| Errno::last())?;
        if need == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; need];
        // SAFETY: `buf` is a writable buffer of exactly `buf.len()` bytes.
        let got = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(got) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // The list grew between the two calls: ask again.
            Err(_) if Errno::last() == Errno::ERANGE => continue,
            Err(_) => return Err(Errno::last()),
        }
    }
}

/// `fgetxattr(fd, name, buf, len)`.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    loop {
        // SAFETY: NULL buffer with size 0 queries the size; `name` is valid.
        let need = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), std::ptr::null_mut(), 0) };
        let need = usize::try_from(need).map_err(|_| Errno::last())?;
        let mut buf = vec![0u8; need];
        // SAFETY: `buf` is writable for `buf.len()` bytes; `name` is valid.
        let got = unsafe {
            libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        match usize::try_from(got) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(_) if Errno::last() == Errno::ERANGE => continue,
            Err(_) => return Err(Errno::last()),
        }
    }
}

/// `fsetxattr(fd, name, value, len, 0)`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and `value` readable for its length.
    let ret = unsafe {
        libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0)
    };
    unit(ret.into())
}

/// `getxattr(path, name, NULL, 0)`: the size of an extended attribute, or
/// `None` when it is absent or cannot be read.
pub fn getxattr_len(path: &str, name: &CStr) -> Option<usize> {
    let p = std::ffi::CString::new(path).ok()?;
    // SAFETY: both strings are NUL-terminated and live for the call; a
    // NULL buffer of size 0 asks only for the size (nothing is written).
    let r = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    usize::try_from(r).ok()
}
