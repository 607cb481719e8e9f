//! Step 2: one configured mount at a time, always onto an fd resolved
//! in-root (`/proc/self/fd/N` of an `O_PATH` descriptor).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::error::{Op, Refusal, Result, RootfsError};
use super::path::{ensure, fd_path, mkdir_all, resolve, resolve_nofollow};
use super::plan::{proc_mount_allowed, MountKind, MountPlan};
use super::{cgroup, copyup, Ctx};
use crate::sys::fs::mount_setattr;

pub(crate) fn merr(m: &MountPlan, op: Op, errno: Errno) -> RootfsError {
    RootfsError::Mount { index: m.index, op, fstype: m.kind.fstype().to_owned(), path: m.dest.clone(), errno }
}

/// Merr for a sub-path of a mount (cgroup v1 hierarchies).
pub(crate) fn merr_at(m: &MountPlan, dest: &Path, op: Op, errno: Errno) -> RootfsError {
    RootfsError::Mount { index: m.index, op, fstype: m.kind.fstype().to_owned(), path: dest.to_path_buf(), errno }
}

/// Mount `m` into the rootfs.
pub(crate) fn mount_one(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    match m.kind {
        MountKind::Proc | MountKind::Sysfs => mount_special(ctx, m),
        MountKind::Bind => bind(ctx, m, &m.source, m.flags, &m.dest),
        MountKind::Cgroup => cgroup::mount_cgroup(ctx, m),
        MountKind::Tmpfs if m.copyup => copyup::mount_tmpfs_copyup(ctx, m),
        MountKind::Tmpfs | MountKind::Devpts | MountKind::Mqueue | MountKind::Overlay | MountKind::Cgroup2 => {
            let target = mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?;
            check_target(ctx, m, &m.dest, target.as_fd())?;
            fs_mount(m, &m.dest, target.as_fd(), m.kind.fstype(), initial_flags(m), &m.data)?;
            post_mount(ctx, m, &m.dest)
        }
    }
}

/// tmpfs and `/dev` are mounted writable; `ro` is applied in step 6 once
/// they are populated (as runc's finalizeRootfs does).
pub(crate) fn initial_flags(m: &MountPlan) -> MsFlags {
    if m.kind == MountKind::Tmpfs || m.dest == Path::new("/dev") {
        m.flags & !MsFlags::MS_RDONLY
    } else {
        m.flags
    }
}

/// `mount(source, /proc/self/fd/N, fstype, flags, data)`.
pub(crate) fn fs_mount(
    m: &MountPlan,
    dest: &Path,
    target: BorrowedFd<'_>,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    let data = (!data.is_empty()).then_some(data);
    mount(Some(m.source.as_path()), fd_path(target).as_str(), Some(fstype), flags, data)
        .map_err(|e| merr_at(m, dest, Op::Mount, e))
}

/// Refuse destinations that resolved to the container's `/` (a symlink to
/// `/` or `../..`) or onto procfs (other than runc's lxcfs allow-list).
pub(crate) fn check_target(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path, target: BorrowedFd<'_>) -> Result<()> {
    let t = fstat(target).map_err(|e| merr_at(m, dest, Op::Stat, e))?;
    if (t.st_dev, t.st_ino) == ctx.root_id {
        return Err(RootfsError::Refused { path: dest.to_path_buf(), reason: Refusal::ResolvesToRoot });
    }
    let fs = fstatfs(target).map_err(|e| merr_at(m, dest, Op::Statfs, e))?;
    if fs.filesystem_type() == PROC_SUPER_MAGIC && !proc_mount_allowed(dest) {
        return Err(RootfsError::Refused { path: dest.to_path_buf(), reason: Refusal::InsideProc });
    }
    Ok(())
}

/// proc and sysfs go only on an ordinary directory: a destination that
/// is a symlink (or a file) is refused, as runc does.
fn mount_special(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = match resolve_nofollow(ctx.root(), &m.dest) {
        Ok(fd) => {
            let st = fstat(&fd).map_err(|e| merr(m, Op::Stat, e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(RootfsError::Refused { path: m.dest.clone(), reason: Refusal::NotOrdinaryDirectory });
            }
            fd
        }
        Err(Errno::ENOENT) => mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?,
        Err(e) => return Err(merr(m, Op::Resolve, e)),
    };
    check_target_root_only(ctx, m, target.as_fd())?;
    match fs_mount(m, &m.dest, target.as_fd(), m.kind.fstype(), m.flags, &m.data) {
        // sysfs needs a network namespace owned by our user namespace; in a
        // user namespace without one runc falls back to an rbind of /sys.
        Err(RootfsError::Mount { errno: Errno::EPERM, .. }) if m.kind == MountKind::Sysfs && ctx.userns => {
            drop(target);
            return bind(ctx, m, Path::new("/sys"), m.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &m.dest);
        }
        r => r?,
    }
    post_mount(ctx, m, &m.dest)
}

fn check_target_root_only(ctx: &Ctx<'_>, m: &MountPlan, target: BorrowedFd<'_>) -> Result<()> {
    let t = fstat(target).map_err(|e| merr(m, Op::Stat, e))?;
    if (t.st_dev, t.st_ino) == ctx.root_id {
        return Err(RootfsError::Refused { path: m.dest.clone(), reason: Refusal::ResolvesToRoot });
    }
    Ok(())
}

/// Bind `source` (a host path) onto `dest` in-root, then apply the flags
/// a bind ignores with the `MS_REMOUNT|MS_BIND` the kernel requires.
pub(crate) fn bind(ctx: &Ctx<'_>, m: &MountPlan, source: &Path, flags: MsFlags, dest: &Path) -> Result<()> {
    let meta = std::fs::metadata(source).map_err(|e| RootfsError::Mount {
        index: m.index,
        op: Op::Stat,
        fstype: format!("bind source {}", source.display()),
        path: dest.to_path_buf(),
        errno: e.raw_os_error().map_or(Errno::EIO, Errno::from_raw),
    })?;
    let target = ensure(ctx.root(), dest, meta.is_dir()).map_err(|(op, e)| merr_at(m, dest, op, e))?;
    check_target(ctx, m, dest, target.as_fd())?;
    let bind_flags = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
    mount(Some(source), fd_path(target.as_fd()).as_str(), None::<&str>, bind_flags, None::<&str>)
        .map_err(|e| RootfsError::Mount {
            index: m.index,
            op: Op::Bind,
            fstype: source.display().to_string(),
            path: dest.to_path_buf(),
            errno: e,
        })?;
    drop(target);
    let extra = flags & !(MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
    if !extra.is_empty() {
        let fd = resolve(ctx.root(), dest, OFlag::O_PATH).map_err(|e| merr_at(m, dest, Op::Resolve, e))?;
        remount(&fd, flags).map_err(|e| merr_at(m, dest, Op::Remount, e))?;
    }
    post_mount(ctx, m, dest)
}

/// `mount(NULL, fd, NULL, flags | MS_REMOUNT | MS_BIND)`. In a user
/// namespace the kernel refuses (EPERM) to clear flags locked by the
/// mount's origin (nosuid, nodev, noexec, ro, the atime mode): then the
/// locked flags the mount has are kept and the remount retried.
pub(crate) fn remount(fd: &OwnedFd, flags: MsFlags) -> std::result::Result<(), Errno> {
    let base = (flags & !MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let target = fd_path(fd.as_fd());
    match mount(None::<&str>, target.as_str(), None::<&str>, base, None::<&str>) {
        Err(Errno::EPERM) => {}
        r => return r,
    }
    let cur = fstatvfs(fd)?.flags();
    let mut f = base;
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if cur.contains(st) {
            f |= ms;
        }
    }
    f &= !(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_NODIRATIME);
    if cur.contains(FsFlags::ST_NOATIME) {
        f |= MsFlags::MS_NOATIME;
    } else if cur.contains(FsFlags::ST_RELATIME) {
        f |= MsFlags::MS_RELATIME;
    } else {
        f |= MsFlags::MS_STRICTATIME;
    }
    if cur.contains(FsFlags::ST_NODIRATIME) {
        f |= MsFlags::MS_NODIRATIME;
    }
    mount(None::<&str>, target.as_str(), None::<&str>, f, None::<&str>)
}

/// Propagation flags (each its own mount(2) call) and recursive
/// attributes (mount_setattr with AT_RECURSIVE), on a fresh in-root fd of
/// the new mount.
pub(crate) fn post_mount(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path) -> Result<()> {
    if m.propagation.is_empty() && m.rec_set == 0 && m.rec_clr == 0 {
        return Ok(());
    }
    let fd = resolve(ctx.root(), dest, OFlag::O_PATH).map_err(|e| merr_at(m, dest, Op::Resolve, e))?;
    let target = fd_path(fd.as_fd());
    for p in &m.propagation {
        mount(None::<&str>, target.as_str(), None::<&str>, *p, None::<&str>)
            .map_err(|e| merr_at(m, dest, Op::Propagation, e))?;
    }
    if m.rec_set != 0 || m.rec_clr != 0 {
        mount_setattr(fd.as_fd(), true, m.rec_set, m.rec_clr).map_err(|e| merr_at(m, dest, Op::SetAttr, e))?;
    }
    Ok(())
}
