//! Resolution and creation of paths *inside* the rootfs.
//!
//! Every lookup goes through `openat2(root, path, RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`: symlinks (absolute ones and `..` chains alike)
//! are resolved as if `root` were `/`, and magic links (`/proc/self/root`)
//! are refused. Missing directories and files are created one component
//! at a time relative to a parent fd that was itself resolved in-root, with
//! `mkdirat` / `O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing is created outside.
//! The resulting `O_PATH` fd is what a mount is placed on (`move_mount`
//! onto it, mount(2) on "." after `fchdir` to it, or `/proc/self/fd/N`),
//! never a path string of the image (names inside a fresh private
//! filesystem instance are the exception, see `mount::Fresh`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::error::Op;
use nsboot::sys::fs::openat2;

/// Scoped resolution: `root` is `/`, no magic links.
pub(crate) const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// Strict resolution below a directory: no symlinks at all, no escape.
pub(crate) const BENEATH_NO_SYMLINKS: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// A failed in-root operation: which one, and the errno.
pub(crate) type PathResult<T> = std::result::Result<T, (Op, Errno)>;

/// `path` as a C string relative to the root ("/a/b" → "a/b", "/" → ".").
pub(crate) fn rel_cstring(path: &Path) -> Result<CString, Errno> {
    let bytes = path.as_os_str().as_bytes();
    let trimmed: &[u8] = match bytes.iter().position(|&b| b != b'/') {
        Some(i) => &bytes[i..],
        None => b".",
    };
    CString::new(trimmed).map_err(|_| Errno::EINVAL)
}

/// `"/proc/self/fd/N"` for a descriptor, the target form of mount(2).
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Open `path` in-root with `flags` (e.g. `O_PATH`), following symlinks
/// inside the root.
pub(crate) fn resolve(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let c = rel_cstring(path)?;
    openat2(root, &c, flags.bits(), 0, IN_ROOT)
}

/// Like [`resolve`] with `O_PATH`, but a final symlink is returned as the
/// link itself (for callers that refuse symlinked destinations).
pub(crate) fn resolve_nofollow(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    resolve(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
}

/// `mkdir -p` inside the root; returns an `O_PATH|O_DIRECTORY` fd of the
/// final directory. The deepest existing ancestor is found by resolving
/// upwards from the full path (usually one openat2); each missing
/// component is then created with `mkdirat` in its parent's in-root fd. A
/// component that exists but does not resolve to a directory (a dangling
/// symlink, a file) is an error.
pub(crate) fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> PathResult<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match resolve(root, path, dir_flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err((Op::Resolve, e)),
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err((Op::Resolve, Errno::ENOENT));
    };
    let parent_fd = mkdir_all(root, parent, mode)?;
    match nix::sys::stat::mkdirat(&parent_fd, name, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err((Op::Mkdir, e)),
    }
    resolve(root, path, dir_flags).map_err(|e| (Op::Resolve, e))
}

/// Make sure `path` exists in-root as a directory (`dir`) or a file, and
/// return an `O_PATH` fd of it (symlinks followed in-root).
pub(crate) fn ensure(root: BorrowedFd<'_>, path: &Path, dir: bool) -> PathResult<OwnedFd> {
    if dir {
        return mkdir_all(root, path, 0o755);
    }
    match resolve(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err((Op::Resolve, e)),
    }
    let parent = mkdir_all(root, path.parent().unwrap_or(Path::new("/")), 0o755)?;
    let Some(name) = path.file_name() else {
        return Err((Op::Create, Errno::EINVAL));
    };
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(&parent, name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => drop(fd),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err((Op::Create, e)),
    }
    resolve(root, path, OFlag::O_PATH).map_err(|e| (Op::Resolve, e))
}
