//! Step 2: one configured mount at a time, onto an fd resolved in-root:
//! new filesystems with mount(2) on "." after `fchdir(fd)`
//! (`/proc/self/fd/N` where fchdir is refused), binds detached with
//! `open_tree` and attached with `move_mount(tree, fd)`. The one place a
//! name is used is inside a filesystem instance this step just created in
//! its own mount namespace (the /dev tmpfs, the cgroup v1 tmpfs): a
//! directory made there with `mkdirat` is mounted on by name from a cwd
//! of that instance, since no other process can reach it to swap the name
//! (see [`Fresh::private`]).
//!
//! A target whose path crosses no symlink is its lexical path, which the
//! plan has already checked; only a target reached through a symlink, or
//! below an earlier bind/proc mount, is checked for being the root or on
//! procfs ([`target`]).

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::error::{Op, Refusal, Result, RootfsError};
use super::path::{ensure, fd_path, mkdir_all, rel_cstring, resolve, resolve_nofollow, BENEATH_NO_SYMLINKS, IN_ROOT};
use super::plan::{proc_mount_allowed, MountKind, MountPlan};
use super::Ctx;
use nsboot::sys::fs::{clone_path, mount_setattr, move_mount, openat2};

pub(crate) fn merr(m: &MountPlan, op: Op, errno: Errno) -> RootfsError {
    RootfsError::Mount { index: m.index, op, fstype: m.kind.fstype().to_owned(), path: m.dest.clone(), errno }
}

/// Merr for a sub-path of a mount (cgroup v1 hierarchies).
pub(crate) fn merr_at(m: &MountPlan, dest: &Path, op: Op, errno: Errno) -> RootfsError {
    RootfsError::Mount { index: m.index, op, fstype: m.kind.fstype().to_owned(), path: dest.to_path_buf(), errno }
}

/// The root of a filesystem just mounted at `dest`, kept for the mounts
/// directly below it that follow (`/dev/pts`, `/dev/shm`, … below `/dev`).
pub(crate) struct Fresh {
    pub dest: PathBuf,
    pub fd: OwnedFd,
    /// A new tmpfs or devpts instance that this step mounted in its own
    /// mount namespace: no other process has a path into it, so a name
    /// made in it here with `mkdirat` is that directory until it is used,
    /// and the mounts below go on it by name from a cwd of `fd`
    /// ([`mount_named`]). Other filesystems (an overlay, whose upper
    /// directory is a host path) get an fd per target.
    pub private: bool,
    /// The cwd is `fd` already.
    pub cwd_here: bool,
}

/// Mount a new filesystem (tmpfs, devpts, mqueue, overlay, cgroup2) for
/// `m`: by name in `fresh` (the root of the filesystem mounted just above,
/// taken from [`Ctx::fresh`]) when that is private, else on a target made
/// in it or resolved in-root. (The other kinds: see `rootfs::mount_one`.)
pub(crate) fn mount_fs(ctx: &Ctx<'_>, m: &MountPlan, mut fresh: Option<Fresh>) -> Result<()> {
    if let Some(f) = fresh.as_mut().filter(|f| f.private) {
        if mount_named(m, f)? {
            post_mount(ctx, m, &m.dest)?;
            *ctx.fresh.borrow_mut() = fresh;
            remember_fresh(ctx, m);
            return Ok(());
        }
        fresh = None;
    }
    let made = fresh.as_ref().map(|f| fresh_child(m, f.fd.as_fd())).transpose()?.flatten();
    let in_fresh = made.is_some();
    let target = match made {
        Some(t) => t,
        None => target(ctx, m, &m.dest, true)?,
    };
    if in_fresh {
        check_target(ctx, m, &m.dest, target.as_fd())?;
    }
    fs_mount(m, &m.dest, target.as_fd(), m.kind.fstype(), initial_flags(m), &m.data)?;
    drop(target);
    post_mount(ctx, m, &m.dest)?;
    // Keep the parent for the next sibling, unless this target was
    // resolved in-root from the root (it might have been a symlink
    // to anywhere, the parent included).
    if in_fresh {
        *ctx.fresh.borrow_mut() = fresh;
    }
    remember_fresh(ctx, m);
    Ok(())
}

/// If the next mount of the plan goes directly below `m.dest`, keep an fd
/// of the filesystem just mounted there: resolved again in-root with no
/// symlink allowed (a destination reached through a symlink is simply not
/// remembered). Whatever it is, every target made in it is still checked
/// with [`check_target`], or mounted by name if it is private (see
/// [`Fresh::private`]).
fn remember_fresh(ctx: &Ctx<'_>, m: &MountPlan) {
    let next = ctx.plan.mounts.iter().find(|n| n.index > m.index);
    if next.and_then(|n| n.dest.parent()) != Some(m.dest.as_path()) {
        return;
    }
    let Ok(c) = rel_cstring(&m.dest) else { return };
    let flags = (OFlag::O_PATH | OFlag::O_DIRECTORY).bits();
    if let Ok(fd) = openat2(ctx.root(), &c, flags, 0, IN_ROOT | libc::RESOLVE_NO_SYMLINKS) {
        let private = matches!(m.kind, MountKind::Tmpfs | MountKind::Devpts) && !m.copyup;
        *ctx.fresh.borrow_mut() = Some(Fresh { dest: m.dest.clone(), fd, private, cwd_here: false });
    }
}

/// The destination of `m`, a direct child of the freshly mounted `parent`:
/// made with `mkdirat` and opened beneath `parent`, no symlink allowed.
/// `None` when the name already exists (the general path then resolves it
/// in-root from the root).
pub(crate) fn fresh_child(m: &MountPlan, parent: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    let Some(name) = m.dest.file_name() else { return Ok(None) };
    match nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(None),
        Err(e) => return Err(merr(m, Op::Mkdir, e)),
    }
    let c = rel_cstring(Path::new(name)).map_err(|e| merr(m, Op::Resolve, e))?;
    let flags = (OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits();
    openat2(parent, &c, flags, 0, BENEATH_NO_SYMLINKS).map(Some).map_err(|e| merr(m, Op::Resolve, e))
}

/// Mount the new filesystem `m` on a directory made for it in the private
/// fresh filesystem `f` (see [`Fresh::private`]): `mkdirat` there, then
/// mount(2) on the name from a cwd of `f`. `false` when the name exists
/// already (or the cwd cannot be set): the general path then takes it.
fn mount_named(m: &MountPlan, f: &mut Fresh) -> Result<bool> {
    let Some(name) = m.dest.file_name() else { return Ok(false) };
    match nix::sys::stat::mkdirat(&f.fd, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(false),
        Err(e) => return Err(merr(m, Op::Mkdir, e)),
    }
    if !f.cwd_here {
        if nix::unistd::fchdir(&f.fd).is_err() {
            return Ok(false);
        }
        f.cwd_here = true;
    }
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    mount(Some(m.source.as_path()), name, Some(m.kind.fstype()), initial_flags(m), data)
        .map_err(|e| merr(m, Op::Mount, e))?;
    Ok(true)
}

/// The in-root target for a mount of `m` at `dest`, made if missing (a
/// directory, or an empty file when `dir` is false) and checked with
/// [`check_target`]. A destination whose path holds no symlink at all
/// (one `openat2` with `RESOLVE_NO_SYMLINKS`) is the lexical path below
/// the root: it cannot be the root (the plan refuses "/"), and it is on
/// procfs only below /proc or below a mount that brings another tree
/// ([`foreign_below`]) — elsewhere it needs no further check.
pub(crate) fn target(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path, dir: bool) -> Result<OwnedFd> {
    if !dest.starts_with("/proc") && !foreign_below(ctx, m, dest) {
        let flags = if dir { OFlag::O_PATH | OFlag::O_DIRECTORY } else { OFlag::O_PATH };
        if let Some(fd) = resolve_plain(ctx.root(), dest, flags) {
            return Ok(fd);
        }
    }
    let t = ensure(ctx.root(), dest, dir).map_err(|(op, e)| merr_at(m, dest, op, e))?;
    check_target(ctx, m, dest, t.as_fd())?;
    Ok(t)
}

/// `dest` opened in-root if no component of it is a symlink.
fn resolve_plain(root: BorrowedFd<'_>, dest: &Path, flags: OFlag) -> Option<OwnedFd> {
    let c = rel_cstring(dest).ok()?;
    openat2(root, &c, flags.bits(), 0, IN_ROOT | libc::RESOLVE_NO_SYMLINKS).ok()
}

/// Is `dest` below an earlier bind or proc mount of the plan, which may
/// bring a tree other than the image's? There a symlink-free path may
/// still lead onto procfs or back to the root, so the target is checked.
/// (Mounts the host itself left inside the rootfs directory are the
/// host's doing and trusted, as the rootfs directory itself is.)
fn foreign_below(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path) -> bool {
    ctx.plan
        .mounts
        .iter()
        .take_while(|e| e.index < m.index)
        .any(|e| matches!(e.kind, MountKind::Bind | MountKind::Proc) && dest.starts_with(&e.dest))
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

/// `mount(source, ".", fstype, flags, data)` after `fchdir(target)`: the
/// mount lands on the fd's own location, like the `/proc/self/fd/N` form,
/// without the magic-link walk through /proc (measured ~4% of the whole
/// prepare() on runc's default spec). Where fchdir is refused (EACCES: a
/// directory without search permission for us) the `/proc/self/fd/N`
/// form is used. The caller restores the cwd on error (see `prepare`).
pub(crate) fn fs_mount(
    m: &MountPlan,
    dest: &Path,
    target: BorrowedFd<'_>,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    let data = (!data.is_empty()).then_some(data);
    let r = match nix::unistd::fchdir(target) {
        Ok(()) => mount(Some(m.source.as_path()), ".", Some(fstype), flags, data),
        Err(Errno::EACCES) => mount(Some(m.source.as_path()), fd_path(target).as_str(), Some(fstype), flags, data),
        Err(e) => return Err(merr_at(m, dest, Op::Chdir, e)),
    };
    r.map_err(|e| merr_at(m, dest, Op::Mount, e))
}

/// Refuse destinations that resolved to the container's `/` (a symlink to
/// `/` or `../..`) or onto procfs (other than runc's lxcfs allow-list).
pub(crate) fn check_target(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path, target: BorrowedFd<'_>) -> Result<()> {
    let t = fstat(target).map_err(|e| merr_at(m, dest, Op::Stat, e))?;
    if (t.st_dev, t.st_ino) == ctx.root_id()? {
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
pub(crate) fn mount_special(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    // A symlink-free path to a directory (not below another tree, see
    // `foreign_below`) is an ordinary directory that is not the root.
    let plain = if foreign_below(ctx, m, &m.dest) {
        None
    } else {
        resolve_plain(ctx.root(), &m.dest, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
    };
    let target = match plain {
        Some(fd) => fd,
        None => special_target(ctx, m)?,
    };
    match fs_mount(m, &m.dest, target.as_fd(), m.kind.fstype(), m.flags, &m.data) {
        // sysfs needs a network namespace owned by our user namespace; in a
        // user namespace without one runc falls back to an rbind of /sys.
        Err(RootfsError::Mount { errno: Errno::EPERM, .. }) if m.kind == MountKind::Sysfs && ctx.in_userns()? => {
            drop(target);
            return bind(ctx, m, Path::new("/sys"), m.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &m.dest);
        }
        r => r?,
    }
    post_mount(ctx, m, &m.dest)
}

/// The target of a proc or sysfs mount whose path holds a symlink (or is
/// missing): refused unless it is a directory that is not the root.
fn special_target(ctx: &Ctx<'_>, m: &MountPlan) -> Result<OwnedFd> {
    match resolve_nofollow(ctx.root(), &m.dest) {
        Ok(fd) => {
            // One fstat for both checks: a directory, and not the root.
            let st = fstat(&fd).map_err(|e| merr(m, Op::Stat, e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(RootfsError::Refused { path: m.dest.clone(), reason: Refusal::NotOrdinaryDirectory });
            }
            if (st.st_dev, st.st_ino) == ctx.root_id()? {
                return Err(RootfsError::Refused { path: m.dest.clone(), reason: Refusal::ResolvesToRoot });
            }
            Ok(fd)
        }
        Err(Errno::ENOENT) => {
            let fd = mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?;
            check_target_root_only(ctx, m, fd.as_fd())?;
            Ok(fd)
        }
        Err(e) => Err(merr(m, Op::Resolve, e)),
    }
}

fn check_target_root_only(ctx: &Ctx<'_>, m: &MountPlan, target: BorrowedFd<'_>) -> Result<()> {
    let t = fstat(target).map_err(|e| merr(m, Op::Stat, e))?;
    if (t.st_dev, t.st_ino) == ctx.root_id()? {
        return Err(RootfsError::Refused { path: m.dest.clone(), reason: Refusal::ResolvesToRoot });
    }
    Ok(())
}

/// Bind `source` (a host path) onto `dest` in-root. The bind is made
/// detached (`open_tree` clone), given the flags a bind ignores with
/// `mount_setattr`, and attached onto the resolved fd with `move_mount`;
/// the same fd then serves for propagation, so nothing is re-resolved
/// after the mount.
pub(crate) fn bind(ctx: &Ctx<'_>, m: &MountPlan, source: &Path, flags: MsFlags, dest: &Path) -> Result<()> {
    let tree = clone_source(m, source, flags, dest)?;
    let st = fstat(&tree).map_err(|e| RootfsError::Mount {
        index: m.index,
        op: Op::Stat,
        fstype: format!("bind source {}", source.display()),
        path: dest.to_path_buf(),
        errno: e,
    })?;
    let target = target(ctx, m, dest, st.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
    attach_bind(ctx, m, tree.as_fd(), source, flags, dest, target.as_fd())
}

/// A failed bind of `source` onto `dest` for mount `m` (the error names
/// the source where other mounts name their type).
pub(crate) fn bind_err(m: &MountPlan, source: &Path, dest: &Path, errno: Errno) -> RootfsError {
    RootfsError::Mount { index: m.index, op: Op::Bind, fstype: source.display().to_string(), path: dest.to_path_buf(), errno }
}

/// The detached bind of `source` (recursive with `MS_REC`).
pub(crate) fn clone_source(m: &MountPlan, source: &Path, flags: MsFlags, dest: &Path) -> Result<OwnedFd> {
    let bind_err = |errno| bind_err(m, source, dest, errno);
    let c = CString::new(source.as_os_str().as_bytes()).map_err(|_| bind_err(Errno::EINVAL))?;
    clone_path(&c, flags.contains(MsFlags::MS_REC)).map_err(bind_err)
}

/// Apply `flags` to the detached bind `tree`, attach it onto `target` (a
/// checked in-root fd) and apply `m`'s propagation through `tree`.
pub(crate) fn attach_bind(
    ctx: &Ctx<'_>,
    m: &MountPlan,
    tree: BorrowedFd<'_>,
    source: &Path,
    flags: MsFlags,
    dest: &Path,
    target: BorrowedFd<'_>,
) -> Result<()> {
    let extra = flags & !(MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
    if !extra.is_empty() {
        set_bind_flags(tree, flags).map_err(|e| merr_at(m, dest, Op::Remount, e))?;
    }
    move_mount(tree, target).map_err(|e| bind_err(m, source, dest, e))?;
    post_mount_fd(ctx, m, dest, tree)
}

/// What `mount(NULL, fd, NULL, flags | MS_REMOUNT | MS_BIND)` does to the
/// top mount of `fd`, as `mount_setattr` (set, clear): the per-mount flags
/// become exactly those of `flags`; the atime mode is kept unless `flags`
/// names one (then relatime unless noatime/strictatime).
fn bind_attrs(flags: MsFlags) -> (u64, u64) {
    let (mut set, mut clr) = (0, 0);
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(ms) {
            set |= attr;
        } else {
            clr |= attr;
        }
    }
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_NODIRATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    if flags.intersects(atime) {
        clr |= libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME;
        // As path_mount(): strictatime wins, then noatime, else relatime (0).
        if flags.contains(MsFlags::MS_STRICTATIME) {
            set |= libc::MOUNT_ATTR_STRICTATIME;
        } else if flags.contains(MsFlags::MS_NOATIME) {
            set |= libc::MOUNT_ATTR_NOATIME;
        }
        if flags.contains(MsFlags::MS_NODIRATIME) {
            set |= libc::MOUNT_ATTR_NODIRATIME;
            clr &= !libc::MOUNT_ATTR_NODIRATIME;
        }
    }
    (set, clr)
}

/// Give the bind `fd` the flags of `flags` (see [`bind_attrs`]). In a user
/// namespace the kernel refuses (EPERM) to clear flags locked by the
/// mount's origin (nosuid, nodev, noexec, ro, the atime mode): then the
/// locked flags the mount has are kept and the change retried.
pub(crate) fn set_bind_flags(fd: BorrowedFd<'_>, flags: MsFlags) -> std::result::Result<(), Errno> {
    let (set, clr) = bind_attrs(flags);
    match mount_setattr(fd, false, set, clr) {
        Err(Errno::EPERM) => {}
        r => return r,
    }
    let cur = fstatvfs(fd)?.flags();
    let (mut set, mut clr) = (set, clr);
    for (st, attr) in [
        (FsFlags::ST_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, libc::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if cur.contains(st) {
            set |= attr;
            clr &= !attr;
        }
    }
    // Keep the current atime mode.
    set &= !(libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME);
    clr &= !(libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME);
    mount_setattr(fd, false, set, clr)
}

/// Propagation flags (each its own mount(2) call) and recursive
/// attributes (mount_setattr with AT_RECURSIVE), on a fresh in-root fd of
/// the new mount.
pub(crate) fn post_mount(ctx: &Ctx<'_>, m: &MountPlan, dest: &Path) -> Result<()> {
    if m.propagation.is_empty() && m.rec_set == 0 && m.rec_clr == 0 {
        return Ok(());
    }
    let fd = resolve(ctx.root(), dest, OFlag::O_PATH).map_err(|e| merr_at(m, dest, Op::Resolve, e))?;
    post_mount_fd(ctx, m, dest, fd.as_fd())
}

/// [`post_mount`] through `fd`, an fd of the new mount's root (a bind's
/// tree, a `fsmount` fd), without resolving `dest` again.
pub(crate) fn post_mount_fd(_ctx: &Ctx<'_>, m: &MountPlan, dest: &Path, fd: BorrowedFd<'_>) -> Result<()> {
    if m.propagation.is_empty() && m.rec_set == 0 && m.rec_clr == 0 {
        return Ok(());
    }
    let target = fd_path(fd);
    for p in &m.propagation {
        mount(None::<&str>, target.as_str(), None::<&str>, *p, None::<&str>)
            .map_err(|e| merr_at(m, dest, Op::Propagation, e))?;
    }
    if m.rec_set != 0 || m.rec_clr != 0 {
        mount_setattr(fd, true, m.rec_set, m.rec_clr).map_err(|e| merr_at(m, dest, Op::SetAttr, e))?;
    }
    Ok(())
}
