//! runc's `cgroup` mount type: cgroup2 when the host is unified, otherwise
//! a tmpfs with one entry per v1 hierarchy (mounted fresh inside a cgroup
//! namespace, bind-mounted from the host's own cgroup otherwise). Where
//! the kernel refuses cgroup2 (a user namespace without a cgroup
//! namespace), the host's /sys/fs/cgroup is bind-mounted instead.

use std::borrow::Cow;
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
use super::procfs::{parse_mountinfo_of, MountInfo};
use super::Ctx;
use crate::sys::fs::{fsconfig_set, fscreate_mount, fsopen, mount_setattr, move_mount, openat2};

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

/// One line of /proc/self/cgroup: hierarchy id, controllers as written
/// (`cpu,cpuacct`, `name=systemd`; empty for the unified hierarchy), the
/// process's path.
struct OwnCgroup<'a> {
    id: u32,
    controllers: &'a str,
    path: &'a Path,
}

impl OwnCgroup<'_> {
    fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

fn own_cgroups(text: &str) -> Vec<OwnCgroup<'_>> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let controllers = it.next()?;
            let path = Path::new(it.next()?);
            Some(OwnCgroup { id, controllers, path })
        })
        .collect()
}

/// A host v1 hierarchy as the cgroup mount needs it. Borrowed from
/// /proc/self/cgroup where it can be: in a freshly forked child every heap
/// allocation that misses malloc's per-size cache writes to (and so
/// copies) a page of the parent's heap, which costs more than the
/// formatting here.
struct Hierarchy<'a> {
    /// The name under /sys/fs/cgroup in the container (the base name of
    /// the host's mount point, as runc).
    base: Cow<'a, OsStr>,
    /// Its controllers, comma-separated (the mount data of a fresh mount
    /// in a cgroup namespace).
    subsystems: Cow<'a, str>,
    /// The host's mount point; `None`: /sys/fs/cgroup/<base>.
    mountpoint: Option<PathBuf>,
    /// The process's own cgroup relative to the mount's root.
    rel: Cow<'a, Path>,
}

impl Hierarchy<'_> {
    /// The process's own cgroup as a host path (the bind source without a
    /// cgroup namespace), written into `buf`.
    fn source<'b>(&self, buf: &'b mut PathBuf) -> &'b Path {
        buf.clear();
        match &self.mountpoint {
            Some(mp) => buf.push(mp),
            None => {
                buf.push(HOST_CGROUP);
                buf.push(&self.base);
            }
        }
        if !self.rel.as_os_str().is_empty() {
            buf.push(&self.rel);
        }
        buf
    }
}

/// The host's v1 hierarchies.
///
/// runc reads them from mountinfo (every `cgroup` mount: mount point,
/// root, controllers). Formatting mountinfo costs the kernel more than
/// anything else in this step on a v1 host (every cgroup line takes
/// css_set_lock and formats the hierarchy's path and options), so the
/// layout every v1 host has (systemd's, cgroupfs-mount's) is checked
/// first: each hierarchy of /proc/self/cgroup mounted at
/// /sys/fs/cgroup/<its controllers> (`name=X`: X) with the hierarchy's
/// root as the mount's root — which a file that only a v1 hierarchy's
/// root directory has (`release_agent`) proves, one stat per hierarchy.
/// Where any hierarchy is not so (a nested container's bound
/// sub-hierarchies, other names), the host's mountinfo is read as runc
/// does. (Left out by the check: a hierarchy mounted a second time
/// elsewhere, which runc would also bind under that second name.)
fn hierarchies<'a>(ctx: &Ctx<'_>, own: &[OwnCgroup<'a>]) -> Result<Vec<Hierarchy<'a>>> {
    if let Some(h) = conventional(ctx, own) {
        return Ok(h);
    }
    let read;
    let mounts = if ctx.host_mounts.is_empty() {
        read = ctx.proc.mountinfo()?;
        &parse_mountinfo_of(&read, |fstype| fstype == "cgroup")
    } else {
        &ctx.host_mounts
    };
    Ok(from_mountinfo(ctx, mounts, own))
}

fn conventional<'a>(ctx: &Ctx<'_>, own: &[OwnCgroup<'a>]) -> Option<Vec<Hierarchy<'a>>> {
    if ctx.plan.root.starts_with(HOST_CGROUP) {
        return None;
    }
    let mut v1: Vec<&OwnCgroup<'a>> = own.iter().filter(|c| !c.controllers.is_empty()).collect();
    v1.sort_by_key(|c| c.id);
    let mut out = Vec::with_capacity(v1.len());
    let mut probe = PathBuf::with_capacity(64);
    for c in v1 {
        let base: Cow<'a, str> = if c.controllers.contains("name=") {
            let names: Vec<&str> = c.controllers.split(',').map(|x| x.strip_prefix("name=").unwrap_or(x)).collect();
            Cow::Owned(names.join(","))
        } else {
            Cow::Borrowed(c.controllers)
        };
        probe.clear();
        probe.push(HOST_CGROUP);
        probe.push(base.as_ref());
        probe.push("release_agent");
        match nix::sys::stat::lstat(&probe) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
            _ => return None,
        }
        out.push(Hierarchy {
            base: match base {
                Cow::Borrowed(b) => Cow::Borrowed(OsStr::new(b)),
                Cow::Owned(b) => Cow::Owned(b.into()),
            },
            subsystems: Cow::Borrowed(c.controllers),
            mountpoint: None,
            rel: Cow::Borrowed(c.path.strip_prefix("/").unwrap_or(c.path)),
        });
    }
    Some(out)
}

/// runc's way: every `cgroup` mount of the host (not those an earlier
/// rbind of /sys copied into the rootfs), once per mount point.
fn from_mountinfo<'a>(ctx: &Ctx<'_>, mounts: &[MountInfo<'_>], own: &[OwnCgroup<'a>]) -> Vec<Hierarchy<'a>> {
    let mut out: Vec<Hierarchy<'a>> = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for h in mounts.iter().filter(|h| h.fstype == "cgroup" && !h.mountpoint.starts_with(&ctx.plan.root)) {
        let Some(base) = h.mountpoint.file_name() else { continue };
        if seen.contains(&h.mountpoint.as_ref()) {
            continue;
        }
        seen.push(&h.mountpoint);
        let subsystems = subsystems_of(h, own);
        let own_path = own
            .iter()
            .find(|c| subsystems.iter().any(|s| c.has(s)))
            .map_or(Path::new("/"), |c| c.path);
        let rel = own_path.strip_prefix(&h.root).unwrap_or(Path::new(""));
        out.push(Hierarchy {
            base: Cow::Owned(base.to_owned()),
            subsystems: Cow::Owned(subsystems.join(",")),
            mountpoint: Some(h.mountpoint.to_path_buf()),
            rel: Cow::Owned(rel.to_path_buf()),
        });
    }
    out
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

    let own_text = ctx.proc.read("self/cgroup")?;
    let own = own_cgroups(&own_text);
    let mut cwd_cg = false;
    let mut source = PathBuf::with_capacity(128);
    // Paths for messages only: made when something fails.
    let sub = |name: &OsStr| m.dest.join(name);
    for h in hierarchies(ctx, &own)? {
        let base = h.base.as_ref();
        let made = match nix::sys::stat::mkdirat(&cg, base, Mode::from_bits_truncate(0o755)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(merr_at(m, &sub(base), Op::Mkdir, e)),
        };
        if made && !cwd_cg {
            nix::unistd::fchdir(&cg).map_err(|e| merr_at(m, &m.dest, Op::Chdir, e))?;
            cwd_cg = true;
        }
        if ctx.plan.cgroupns {
            let data = h.subsystems.as_ref();
            let flags = DEFAULT | (m.flags & MsFlags::MS_RDONLY);
            if made {
                mount(Some("cgroup"), base, Some("cgroup"), flags, Some(data))
                    .map_err(|e| merr_at(m, &sub(base), Op::Mount, e))?;
            } else {
                let t = existing(ctx, m, &sub(base))?;
                cwd_cg = false;
                let one = MountPlan { source: PathBuf::from("cgroup"), ..m.clone() };
                fs_mount(&one, &sub(base), t.as_fd(), "cgroup", flags, data)?;
            }
        } else {
            let source = h.source(&mut source);
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC | m.flags;
            if made {
                bind_named(m, cg.as_fd(), base, source, flags)?;
            } else {
                let sub = sub(base);
                let tree = clone_source(m, source, flags, &sub)?;
                let t = existing(ctx, m, &sub)?;
                attach_bind(ctx, m, tree.as_fd(), source, flags, &sub, t.as_fd())?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") get one symlink each.
        let base_s = base.to_string_lossy();
        if base_s.contains(',') {
            for part in base_s.split(',') {
                match nix::unistd::symlinkat(base, &cg, part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(merr_at(m, &m.dest.join(part), Op::Symlink, e)),
                }
            }
        }
    }
    if m.flags.contains(MsFlags::MS_RDONLY) {
        mount_setattr(cg.as_fd(), false, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| merr(m, Op::SetAttr, e))?;
    }
    post_mount_fd(ctx, m, &m.dest, cg.as_fd())
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

/// The controllers of a v1 hierarchy: its super options that name a
/// controller the process is in (`cpu`, `name=systemd`, …).
fn subsystems_of<'m>(h: &'m MountInfo<'_>, own: &[OwnCgroup<'_>]) -> Vec<&'m str> {
    h.super_opts.split(',').filter(|o| own.iter().any(|c| c.has(o))).collect()
}
