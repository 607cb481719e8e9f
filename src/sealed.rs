//! CVE-2019-5736 defence: never join a container while executing a file a
//! container process could overwrite through `/proc/self/exe`.
//!
//! Bootstrap side ([`ensure_sealed_self`]): if `/proc/self/exe` is already a
//! sealed memfd, or lives on a read-only mount, proceed (a few µs). Else
//! re-execute from an immutable view of the binary: a detached read-only
//! bind mount of it when we may mount (no copy, no mount visible anywhere:
//! `open_tree` + `mount_setattr`), otherwise a sealed memfd copy (rootless).
//! runc 1.1 does the same pair (its `try_bindfd`, then the memfd copy), so a
//! runc-1.1-style caller stays safe.
//!
//! Caller side ([`SealedExe`]): seal a binary once and spawn every bootstrap
//! from that fd, so the bootstrap's check passes and no start pays for a copy
//! (runc ≥ 1.2's approach, with the copy made once and reused).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::stages::error::StageError;
use crate::sys::process::SingleThreaded;

/// The seals that make a memfd immutable.
fn full_seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Whether the file behind `fd` cannot be modified by anyone: a memfd with
/// all write seals, or a file on a read-only mount.
pub fn is_immutable(fd: BorrowedFd<'_>) -> bool {
    if let Ok(bits) = fcntl(fd, FcntlArg::F_GET_SEALS) {
        if SealFlag::from_bits_truncate(bits).contains(full_seals()) {
            return true;
        }
    }
    matches!(fstatvfs(fd), Ok(st) if st.flags().contains(FsFlags::ST_RDONLY))
}

/// Copy the file behind `src` into a new sealed memfd (close-on-exec).
pub fn seal_copy(src: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<OwnedFd, StageError> {
    let err = |op| move |source| StageError::Seal { op, source };
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(err("memfd_create"))?;
    let size = nix::sys::stat::fstat(src).map_err(err("fstat of the binary"))?.st_size;
    // Size the memfd once: the copy then never grows it page by page.
    nix::unistd::ftruncate(&memfd, size).map_err(err("ftruncate the memfd"))?;
    let mut off: i64 = 0;
    while off < size {
        let want = (size - off).min(1 << 30) as usize;
        let n = nix::sys::sendfile::sendfile(&memfd, src, Some(&mut off), want)
            .map_err(err("sendfile into the memfd"))?;
        if n == 0 {
            return Err(StageError::Seal { op: "sendfile into the memfd (short copy)", source: Errno::EIO });
        }
    }
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(full_seals())).map_err(err("F_ADD_SEALS"))?;
    Ok(memfd)
}

/// A detached, read-only bind mount of the file behind `fd` (an `O_PATH`
/// fd of it): `open_tree(OPEN_TREE_CLONE)` + `mount_setattr(RDONLY)`. It is
/// attached nowhere, so no namespace sees it; exec'ing it makes
/// `/proc/self/exe` a read-only path. Needs CAP_SYS_ADMIN.
pub fn read_only_view(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let tree = crate::sys::fs::clone_tree(fd, false)?;
    crate::sys::fs::mount_setattr(tree.as_fd(), false, MOUNT_ATTR_RDONLY, 0)?;
    if !is_immutable(tree.as_fd()) {
        return Err(Errno::EROFS);
    }
    Ok(tree)
}

/// Bootstrap side: proceed if `/proc/self/exe` is immutable, otherwise
/// re-execute from a sealed copy (does not return on success).
pub fn ensure_sealed_self(_token: &SingleThreaded) -> Result<(), StageError> {
    let exe = open("/proc/self/exe", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|source| StageError::Seal { op: "open /proc/self/exe", source })?;
    if is_immutable(exe.as_fd()) {
        return Ok(());
    }
    let immutable = match read_only_view(exe.as_fd()) {
        Ok(fd) => {
            crate::nslog!(Debug, "binary is writable: re-executing from a read-only bind mount of it");
            fd
        }
        Err(e) => {
            crate::nslog!(Debug, "binary is writable, no read-only mount ({e}): re-executing from a sealed copy");
            seal_copy(exe.as_fd(), c"nsboot-sealed-exe")?
        }
    };
    drop(exe);
    let argv = read_cmdline()?;
    let envp = crate::sys::process::environ_copy();
    let e = crate::sys::process::exec_fd(immutable.as_fd(), &argv, &envp);
    Err(StageError::Seal { op: "execveat of the immutable binary", source: e })
}

fn read_cmdline() -> Result<Vec<CString>, StageError> {
    let raw = std::fs::read("/proc/self/cmdline").map_err(|e| StageError::Seal {
        op: "read /proc/self/cmdline",
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let body = raw.strip_suffix(&[0]).unwrap_or(&raw);
    Ok(body.split(|b| *b == 0).filter_map(|a| CString::new(a.to_vec()).ok()).collect())
}

/// A sealed, immutable copy of a program, made once and used for every
/// spawn (`execve("/proc/self/fd/N")`): the bootstrap's check then passes
/// without a per-start copy.
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
}

impl SealedExe {
    /// An immutable view of the program at `path`: the file itself if it is
    /// already immutable (sealed memfd, read-only mount); else a detached
    /// read-only bind mount of it when the caller may mount (no copy);
    /// else a sealed memfd copy.
    pub fn new(path: &Path) -> Result<SealedExe, StageError> {
        let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| StageError::Seal { op: "open the program to seal", source })?;
        if is_immutable(fd.as_fd()) {
            return Ok(SealedExe { fd });
        }
        if let Ok(view) = read_only_view(fd.as_fd()) {
            return Ok(SealedExe { fd: view });
        }
        Ok(SealedExe { fd: seal_copy(fd.as_fd(), c"nsboot-sealed")? })
    }

    /// Seal a copy of the running program.
    pub fn current() -> Result<SealedExe, StageError> {
        SealedExe::new(Path::new("/proc/self/exe"))
    }

    /// The path to exec: `/proc/self/fd/N` (valid in this process; the fd
    /// is close-on-exec, and execve resolves the path before closing it).
    pub fn exec_path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
