//! Step 6, after the pivot: read-only tmpfs mounts and root, then
//! `linux.readonlyPaths` and `linux.maskedPaths`.
//!
//! Outside the `/proc` names below, no path string is used: every target
//! is an `O_PATH` fd resolved in the new root, read-only is applied with `mount_setattr` (which only
//! *adds* MOUNT_ATTR_RDONLY, so locked flags in a user namespace are kept
//! by construction), binds are made detached (`open_tree` clone) and
//! attached with `move_mount` onto the fd; the empty tmpfs over a masked
//! directory is mounted on "." after `fchdir(fd)` (`fsopen`/`fsmount` +
//! `move_mount` where fchdir is refused). The
//! `/dev/null` used for masking is opened once, in-root without any
//! symlink, checked to be the character device 1:3 and cloned *from that
//! fd* (the CVE-2025-31133 class: a /dev/null swapped for a symlink or a
//! file must not be bind-mounted over /proc files).
//!
//! Paths directly below `/proc` (most of both lists) are handled by name
//! relative to the procfs root, see [`proc_root`].

mod proc_root;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev};

use super::error::{Op, Refusal, Result, RootfsError};
use super::path::{rel_cstring, resolve, IN_ROOT};
use super::plan::{MountKind, RootfsPlan};
use nsboot::sys::fs::{clone_tree, fscreate_mount, fsopen, mount_setattr, move_mount, openat2};
use proc_root::{mask_proc, proc_child, readonly_proc, ProcRoot};

fn rerr(op: Op, path: &Path, errno: Errno) -> RootfsError {
    RootfsError::Readonly { op, path: path.to_path_buf(), errno }
}

fn merr(op: Op, path: &Path, errno: Errno) -> RootfsError {
    RootfsError::Mask { op, path: path.to_path_buf(), errno }
}

/// Returns whether the cwd was moved (masking a directory mounts its
/// tmpfs on "." after fchdir, and `/proc` names are mounted from a cwd in
/// the procfs root): the caller then sets it again.
pub(crate) fn finalize(plan: &RootfsPlan, root: BorrowedFd<'_>) -> Result<bool> {
    for m in &plan.mounts {
        let ro_later = m.kind == MountKind::Tmpfs || m.dest == Path::new("/dev");
        if ro_later && m.flags.contains(MsFlags::MS_RDONLY) {
            let fd = resolve(root, &m.dest, OFlag::O_PATH).map_err(|e| rerr(Op::Resolve, &m.dest, e))?;
            set_ro(fd.as_fd(), &m.dest)?;
        }
    }
    if plan.readonly {
        set_ro(root, Path::new("/"))?;
    }
    let mut proc = ProcRoot::open(root, plan);
    let mut moved_cwd = false;
    for p in &plan.readonly_paths {
        match (proc.as_mut(), proc_child(p)) {
            (Some(pr), Some(name)) => {
                moved_cwd = true;
                readonly_proc(pr, name, p)?;
            }
            _ => readonly_path(root, p)?,
        }
    }
    if !plan.masked.is_empty() {
        let devnull = open_dev_null(root)?;
        for p in &plan.masked {
            match (proc.as_mut(), proc_child(p)) {
                (Some(pr), Some(name)) => {
                    moved_cwd = true;
                    mask_proc(pr, devnull.as_fd(), name, p)?;
                }
                _ => {
                    if mask_path(root, devnull.as_fd(), p)? {
                        moved_cwd = true;
                        if let Some(pr) = proc.as_mut() {
                            pr.left();
                        }
                    }
                }
            }
        }
    }
    Ok(moved_cwd)
}

fn set_ro(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    mount_setattr(fd, false, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| rerr(Op::SetAttr, path, e))
}

/// Resolve in-root; `None` when (and only when) the path does not exist.
fn resolve_existing(root: BorrowedFd<'_>, path: &Path) -> std::result::Result<Option<OwnedFd>, Errno> {
    match resolve(root, path, OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// runc's readonlyPath: a recursive bind of the path onto itself whose top
/// mount is made read-only.
fn readonly_path(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let Some(target) = resolve_existing(root, path).map_err(|e| rerr(Op::Resolve, path, e))? else {
        return Ok(());
    };
    let tree = clone_tree(target.as_fd(), true).map_err(|e| rerr(Op::CloneTree, path, e))?;
    mount_setattr(tree.as_fd(), false, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| rerr(Op::SetAttr, path, e))?;
    move_mount(tree.as_fd(), target.as_fd()).map_err(|e| rerr(Op::MoveMount, path, e))
}

fn open_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let path = Path::new("/dev/null");
    let c = rel_cstring(path).map_err(|e| merr(Op::Open, path, e))?;
    let fd = openat2(root, &c, OFlag::O_PATH.bits(), 0, IN_ROOT | libc::RESOLVE_NO_SYMLINKS)
        .map_err(|e| merr(Op::Open, path, e))?;
    let st = fstat(&fd).map_err(|e| merr(Op::Stat, path, e))?;
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFCHR || st.st_rdev != makedev(1, 3) {
        let found = match fmt {
            libc::S_IFCHR => format!("character device {}:{}", libc::major(st.st_rdev), libc::minor(st.st_rdev)),
            libc::S_IFREG => "a regular file".to_owned(),
            libc::S_IFDIR => "a directory".to_owned(),
            _ => format!("file type {:o}", fmt),
        };
        return Err(RootfsError::Refused { path: path.to_path_buf(), reason: Refusal::NotDevNull(found) });
    }
    Ok(fd)
}

/// Files are covered by a clone of the checked /dev/null, directories by
/// an empty read-only tmpfs. Only ENOENT is ignored. Returns whether the
/// cwd was moved.
fn mask_path(root: BorrowedFd<'_>, devnull: BorrowedFd<'_>, path: &Path) -> Result<bool> {
    let Some(target) = resolve_existing(root, path).map_err(|e| merr(Op::Resolve, path, e))? else {
        return Ok(false);
    };
    let st = fstat(&target).map_err(|e| merr(Op::Stat, path, e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        // mount(2) on "." after fchdir(target) places the tmpfs on the fd
        // itself, as move_mount would, in 2 syscalls instead of 6
        // (fsopen, fsconfig, fsmount, move_mount and two closes).
        match nix::unistd::fchdir(&target) {
            Ok(()) => {
                let ro = MsFlags::MS_RDONLY;
                mount(Some("tmpfs"), ".", Some("tmpfs"), ro, None::<&str>).map_err(|e| merr(Op::Mount, path, e))?;
                return Ok(true);
            }
            // No search permission (a user namespace): the detached way.
            Err(Errno::EACCES) => {}
            Err(e) => return Err(merr(Op::Chdir, path, e)),
        }
        let ctx = fsopen(c"tmpfs").map_err(|e| merr(Op::Fsopen, path, e))?;
        let mnt = fscreate_mount(ctx.as_fd(), libc::MOUNT_ATTR_RDONLY).map_err(|e| merr(Op::Fsmount, path, e))?;
        move_mount(mnt.as_fd(), target.as_fd()).map_err(|e| merr(Op::MoveMount, path, e))?;
        return Ok(false);
    }
    let mnt = clone_tree(devnull, false).map_err(|e| merr(Op::CloneTree, path, e))?;
    move_mount(mnt.as_fd(), target.as_fd()).map_err(|e| merr(Op::MoveMount, path, e))?;
    Ok(false)
}
