//! runc's `cgroup` mount type: cgroup2 when the host is unified, otherwise
//! a tmpfs with one entry per v1 hierarchy (mounted fresh inside a cgroup
//! namespace, bind-mounted from the host's own cgroup otherwise). Where
//! the kernel refuses cgroup2 (a user namespace without a cgroup
//! namespace), the host's /sys/fs/cgroup is bind-mounted instead.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::error::{Op, Result};
use super::mount::{
    attach_bind, bind, bind_err, check_target, clone_source, fs_mount, merr, merr_at, post_mount, post_mount_fd,
    set_bind_flags, target,
};
use super::path::{mkdir_all, rel_cstring, BENEATH_NO_SYMLINKS};
use super::plan::MountPlan;
use super::procfs::parse_mountinfo_of;
use super::Ctx;
use hierarchy::{at_host_path, conventional, from_mountinfo, v1_ascending};
use nsboot::sys::fs::{fsconfig_set, fscreate_mount, fsopen, mount_setattr, move_mount, openat2};

mod hierarchy;

const HOST_CGROUP: &str = "/sys/fs/cgroup";
const DEFAULT: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

pub(crate) fn mount_cgroup(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    if ctx.cgroup2_host {
        mount_v2(ctx, m)
    } else {
        mount_v1(ctx, m)
    }
}

/// Is the host's /sys/fs/cgroup a cgroup2 filesystem (a unified host)?
/// Asked before step 1: only a v1 (or hybrid) host needs its hierarchies
/// read from mountinfo.
pub(crate) fn host_is_unified(m: &MountPlan) -> Result<bool> {
    statfs(HOST_CGROUP)
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .map_err(|e| merr_at(m, Path::new(HOST_CGROUP), Op::Statfs, e))
}

fn mount_v2(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = target(ctx, m, &m.dest, true)?;
    let src = MountPlan { source: PathBuf::from("cgroup2"), ..m.clone() };
    match fs_mount(&src, &m.dest, target.as_fd(), "cgroup2", m.flags, &m.data) {
        Ok(()) => post_mount(ctx, m, &m.dest),
        Err(e) if matches!(e.errno(), Some(Errno::EPERM | Errno::EBUSY)) => {
            drop(target);
            bind(ctx, m, Path::new(HOST_CGROUP), m.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &m.dest)
        }
        Err(e) => Err(e),
    }
}

/// The tmpfs is made detached (`fsopen`/`fsmount`, with its flags set at
/// `fsmount` time) and attached onto the resolved fd; its root fd is then
/// the cwd for the whole step. This tmpfs is a new instance in this
/// process's own mount namespace, so no other process has a path into it:
/// each hierarchy gets a directory made here with `mkdirat` and is mounted
/// on that name (bind + remount, as runc), which cannot have changed in
/// between. Nothing is resolved from the rootfs's root again.
fn mount_v1(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = target(ctx, m, &m.dest, true)?;
    let cg = new_tmpfs(m)?;
    move_mount(cg.as_fd(), target.as_fd()).map_err(|e| merr(m, Op::MoveMount, e))?;
    drop(target);

    let mut one = One { ctx, m, cg: cg.as_fd(), cwd_cg: false };
    ctx.proc.read_with(c"self/cgroup", |own| -> Result<()> {
        if conventional(ctx, own) {
            for c in v1_ascending(own) {
                at_host_path(&c, c.path, |base, source| one.mount(OsStr::new(base), c.controllers, source))?;
            }
            return Ok(());
        }
        let read;
        let mounts = if ctx.host_mounts.is_empty() {
            read = ctx.proc.mountinfo()?;
            &parse_mountinfo_of(&read, |fstype| fstype == "cgroup")
        } else {
            &ctx.host_mounts
        };
        for h in from_mountinfo(ctx, mounts, own) {
            one.mount(&h.base, &h.subsystems, &h.source)?;
        }
        Ok(())
    })??;
    if m.flags.contains(MsFlags::MS_RDONLY) {
        mount_setattr(cg.as_fd(), false, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| merr(m, Op::SetAttr, e))?;
    }
    post_mount_fd(ctx, m, &m.dest, cg.as_fd())
}

/// Mounts one hierarchy after another into the cgroup tmpfs `cg`.
struct One<'c, 'a> {
    ctx: &'c Ctx<'a>,
    m: &'c MountPlan,
    cg: BorrowedFd<'c>,
    /// The cwd is `cg` (names are mounted relative to it).
    cwd_cg: bool,
}

impl One<'_, '_> {
    /// The hierarchy `base` with controllers `subsystems`: a fresh cgroup
    /// mount in a cgroup namespace, else a bind of `source` (the process's
    /// own cgroup on the host).
    fn mount(&mut self, base: &OsStr, subsystems: &str, source: &Path) -> Result<()> {
        let (ctx, m, cg) = (self.ctx, self.m, self.cg);
        // Paths for messages only: made when something fails.
        let sub = || m.dest.join(base);
        let made = match nix::sys::stat::mkdirat(cg, base, Mode::from_bits_truncate(0o755)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(merr_at(m, &sub(), Op::Mkdir, e)),
        };
        if made && !self.cwd_cg {
            nix::unistd::fchdir(cg).map_err(|e| merr_at(m, &m.dest, Op::Chdir, e))?;
            self.cwd_cg = true;
        }
        if ctx.plan.cgroupns {
            let flags = DEFAULT | (m.flags & MsFlags::MS_RDONLY);
            if made {
                mount(Some("cgroup"), base, Some("cgroup"), flags, Some(subsystems))
                    .map_err(|e| merr_at(m, &sub(), Op::Mount, e))?;
            } else {
                let t = existing(ctx, m, &sub())?;
                self.cwd_cg = false;
                let one = MountPlan { source: PathBuf::from("cgroup"), ..m.clone() };
                fs_mount(&one, &sub(), t.as_fd(), "cgroup", flags, subsystems)?;
            }
        } else {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC | m.flags;
            if made {
                bind_named(m, cg, base, source, flags)?;
            } else {
                let sub = sub();
                let tree = clone_source(m, source, flags, &sub)?;
                let t = existing(ctx, m, &sub)?;
                attach_bind(ctx, m, tree.as_fd(), source, flags, &sub, t.as_fd())?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") get one symlink each.
        let base_s = base.to_string_lossy();
        if base_s.contains(',') {
            for part in base_s.split(',') {
                match nix::unistd::symlinkat(base, cg, part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(merr_at(m, &m.dest.join(part), Op::Symlink, e)),
                }
            }
        }
        Ok(())
    }
}

/// Bind `source` (a host hierarchy) onto `name`, a directory just made in
/// the cgroup tmpfs (the cwd), and give it `flags` with a remount, as
/// runc does. Where a user namespace refuses the remount (flags locked by
/// the host's mount), the bind's locked flags are kept (see
/// [`set_bind_flags`]), through an fd of it opened with no symlinks.
fn bind_named(m: &MountPlan, cg: BorrowedFd<'_>, name: &OsStr, source: &Path, flags: MsFlags) -> Result<()> {
    let none = None::<&str>;
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    let sub = || m.dest.join(name);
    mount(Some(source), name, none, bind, none).map_err(|e| bind_err(m, source, &sub(), e))?;
    let extra = flags & !(MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
    if extra.is_empty() {
        return Ok(());
    }
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    match mount(none, name, none, remount, none) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let c = rel_cstring(Path::new(name)).map_err(|e| merr_at(m, &sub(), Op::Resolve, e))?;
            let o = (OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits();
            let fd = openat2(cg, &c, o, 0, BENEATH_NO_SYMLINKS).map_err(|e| merr_at(m, &sub(), Op::Resolve, e))?;
            set_bind_flags(fd.as_fd(), flags).map_err(|e| merr_at(m, &sub(), Op::Remount, e))
        }
        Err(e) => Err(merr_at(m, &sub(), Op::Remount, e)),
    }
}

/// `sub` when its name already exists in the cgroup tmpfs (a symlink of an
/// earlier co-mounted hierarchy): resolved in-root from the root, checks
/// included.
fn existing(ctx: &Ctx<'_>, m: &MountPlan, sub: &Path) -> Result<OwnedFd> {
    let t = mkdir_all(ctx.root(), sub, 0o755).map_err(|(op, e)| merr_at(m, sub, op, e))?;
    check_target(ctx, m, sub, t.as_fd())?;
    Ok(t)
}

/// The detached tmpfs (`mode=755`, nosuid, nodev, noexec) that holds the
/// v1 hierarchies.
fn new_tmpfs(m: &MountPlan) -> Result<OwnedFd> {
    let fc = fsopen(c"tmpfs").map_err(|e| merr(m, Op::Fsopen, e))?;
    fsconfig_set(fc.as_fd(), c"source", Some(c"tmpfs")).map_err(|e| merr(m, Op::Fsconfig, e))?;
    fsconfig_set(fc.as_fd(), c"mode", Some(c"755")).map_err(|e| merr(m, Op::Fsconfig, e))?;
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    fscreate_mount(fc.as_fd(), attrs).map_err(|e| merr(m, Op::Fsmount, e))
}
