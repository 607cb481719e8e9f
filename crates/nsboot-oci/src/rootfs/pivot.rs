//! Step 5: make the prepared rootfs the process's `/`.
//!
//! `pivot_root(".", ".")` stacks the old root *on top of* the new one at
//! the same place; it is detached with `umount2(".", MNT_DETACH)`, once it
//! is known to be rslave (or private) so that the unmount cannot propagate
//! to the host (runc#1500). Without pivot_root
//! (an initramfs cannot be pivoted away from) the rootfs is moved onto `/`
//! with MS_MOVE and the process chroots into it.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root as sys_pivot_root};

use super::error::{Op, Result, RootfsError};
use super::Ctx;

fn perr(op: Op, path: &Path, errno: Errno) -> RootfsError {
    RootfsError::Pivot { op, path: path.to_path_buf(), errno }
}

pub(crate) fn pivot_root(ctx: &Ctx<'_>) -> Result<()> {
    let rootfs = ctx.plan.root.as_path();
    // Step 1 made every mount of the old root a slave (or private) already
    // when `/` got a recursive slave/private propagation: the unmount below
    // cannot propagate, and the old root needs no fd of its own. After
    // `pivot_root(".", ".")` the cwd is still the new root's directory; the
    // old root is the mount stacked on it, which is what umount2(".")
    // looks up (LOOKUP_MOUNTPOINT follows the stack), and the cwd is "/"
    // once it is gone. Any other propagation (rshared, a non-recursive
    // one) takes runc's sequence: rslave the old root through an fd of it.
    let old = if ctx.plan.quiet_propagation() {
        None
    } else {
        let fd = nix::fcntl::open("/", OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| perr(Op::Open, Path::new("/"), e))?;
        Some(fd)
    };
    fchdir(ctx.root()).map_err(|e| perr(Op::Chdir, rootfs, e))?;
    sys_pivot_root(".", ".").map_err(|e| perr(Op::PivotRoot, rootfs, e))?;
    if let Some(old) = &old {
        fchdir(old).map_err(|e| perr(Op::Chdir, Path::new("old root"), e))?;
        mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| perr(Op::Propagation, Path::new("old root"), e))?;
    }
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| perr(Op::Unmount, Path::new("old root"), e))?;
    if old.is_some() {
        chdir("/").map_err(|e| perr(Op::Chdir, Path::new("/"), e))?;
    }
    Ok(())
}

/// runc's msMoveRoot: first hide every full procfs/sysfs mount outside the
/// rootfs (the kernel lets a chrooted process mount a new procfs only if
/// none is fully visible, but chroot leaves the host's reachable), then
/// MS_MOVE the rootfs onto `/` and chroot.
pub(crate) fn move_root(ctx: &Ctx<'_>) -> Result<()> {
    let rootfs = ctx.plan.root.as_path();
    let text = ctx.proc.mountinfo()?;
    for info in super::procfs::parse_mountinfo(&text) {
        let full_pseudo = info.root == Path::new("/") && (info.fstype == "proc" || info.fstype == "sysfs");
        if !full_pseudo || info.mountpoint.starts_with(rootfs) {
            continue;
        }
        let p: &Path = &info.mountpoint;
        match mount(None::<&str>, p, None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {}
            // A parent was already detached.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(perr(Op::Propagation, p, e)),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            // Not allowed to unmount (locked in a user namespace): cover it.
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::empty(), None::<&str>)
                    .map_err(|e| perr(Op::Mount, p, e))?;
            }
            Err(e) => return Err(perr(Op::Unmount, p, e)),
        }
    }
    fchdir(ctx.root()).map_err(|e| perr(Op::Chdir, rootfs, e))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|e| perr(Op::MoveMount, rootfs, e))?;
    chroot(".").map_err(|e| perr(Op::Chroot, rootfs, e))?;
    chdir("/").map_err(|e| perr(Op::Chdir, Path::new("/"), e))?;
    // Keep the root fd referring to the moved mount usable afterwards.
    let _ = ctx.root().as_fd();
    Ok(())
}
