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
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::error::{Op, Result};
use super::mount::{attach_bind, bind, check_target, clone_source, fs_mount, merr, merr_at, post_mount, post_mount_fd};
use super::path::{mkdir_all, rel_cstring, BENEATH_NO_SYMLINKS};
use super::plan::MountPlan;
use super::procfs::MountInfo;
use super::Ctx;
use crate::sys::fs::{fsconfig_set, fscreate_mount, fsopen, mount_setattr, move_mount, openat2};

const HOST_CGROUP: &str = "/sys/fs/cgroup";
const DEFAULT: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

pub(crate) fn mount_cgroup(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    // The host's mount table, read before step 1, already says what is
    // mounted on /sys/fs/cgroup (the last entry for a mount point is the
    // visible one); statfs only when it has no entry for it.
    let host = ctx.host_mounts.iter().rev().find(|h| h.mountpoint == Path::new(HOST_CGROUP));
    let unified = match host {
        Some(h) => h.fstype == "cgroup2",
        None => statfs(HOST_CGROUP)
            .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
            .map_err(|e| merr_at(m, Path::new(HOST_CGROUP), Op::Statfs, e))?,
    };
    if unified {
        mount_v2(ctx, m)
    } else {
        mount_v1(ctx, m)
    }
}

fn mount_v2(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?;
    check_target(ctx, m, &m.dest, target.as_fd())?;
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

/// `(hierarchy id line) controllers → path` from /proc/self/cgroup.
fn own_cgroups(text: &str) -> Vec<(Vec<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some((ctrls.split(',').map(str::to_owned).collect(), PathBuf::from(path)))
        })
        .collect()
}

/// The tmpfs is made detached (`fsopen`/`fsmount`, with its flags set at
/// `fsmount` time) and attached onto the resolved fd: its root fd is then
/// at hand for the whole step, so each hierarchy's directory is made with
/// `mkdirat` in it and opened relative to it with no symlinks allowed,
/// and nothing is resolved from the rootfs's root again.
fn mount_v1(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?;
    check_target(ctx, m, &m.dest, target.as_fd())?;
    let cg = new_tmpfs(m)?;
    move_mount(cg.as_fd(), target.as_fd()).map_err(|e| merr(m, Op::MoveMount, e))?;
    drop(target);

    let mounts = &ctx.host_mounts;
    let own = own_cgroups(&ctx.proc.read("self/cgroup")?);
    let mut seen: Vec<&Path> = Vec::new();
    // The host's hierarchies only: an earlier rbind of /sys may have copied
    // them into the rootfs already.
    let hierarchies = mounts.iter().filter(|h| h.fstype == "cgroup" && !h.mountpoint.starts_with(&ctx.plan.root));
    for h in hierarchies {
        let Some(base) = h.mountpoint.file_name() else { continue };
        if seen.contains(&h.mountpoint.as_ref()) {
            continue;
        }
        seen.push(&h.mountpoint);
        let sub = m.dest.join(base);
        let subsystems = subsystems_of(h, &own);
        if ctx.plan.cgroupns {
            let t = subdir(ctx, m, cg.as_fd(), base, &sub)?;
            let (source, data) = ("cgroup", subsystems.join(","));
            let one = MountPlan { source: PathBuf::from(source), ..m.clone() };
            fs_mount(&one, &sub, t.as_fd(), "cgroup", DEFAULT | (m.flags & MsFlags::MS_RDONLY), &data)?;
        } else {
            let own_path = own
                .iter()
                .find(|(c, _)| c.iter().any(|x| subsystems.contains(x)))
                .map(|(_, p)| p.as_path())
                .unwrap_or(Path::new("/"));
            let rel = own_path.strip_prefix(&h.root).unwrap_or(Path::new(""));
            let source = h.mountpoint.join(rel);
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC | m.flags;
            let tree = clone_source(m, &source, flags, &sub)?;
            let t = subdir(ctx, m, cg.as_fd(), base, &sub)?;
            attach_bind(ctx, m, tree.as_fd(), &source, flags, &sub, t.as_fd())?;
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

/// The detached tmpfs (`mode=755`, nosuid, nodev, noexec) that holds the
/// v1 hierarchies.
fn new_tmpfs(m: &MountPlan) -> Result<OwnedFd> {
    let fc = fsopen(c"tmpfs").map_err(|e| merr(m, Op::Fsopen, e))?;
    fsconfig_set(fc.as_fd(), c"source", Some(c"tmpfs")).map_err(|e| merr(m, Op::Fsconfig, e))?;
    fsconfig_set(fc.as_fd(), c"mode", Some(c"755")).map_err(|e| merr(m, Op::Fsconfig, e))?;
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    fscreate_mount(fc.as_fd(), attrs).map_err(|e| merr(m, Op::Fsmount, e))
}

/// `sub` (= dest/`name`) as a directory of the fresh tmpfs `cg`: made with
/// `mkdirat` and opened beneath `cg` with no symlink allowed. A directory
/// made here is empty, in a tmpfs this step made: it is neither the
/// container's `/` nor procfs, so it needs no further check. Should the
/// name already exist (a symlink of an earlier co-mounted hierarchy), the
/// general in-root path is taken, checks included.
fn subdir(ctx: &Ctx<'_>, m: &MountPlan, cg: BorrowedFd<'_>, name: &OsStr, sub: &Path) -> Result<OwnedFd> {
    match nix::sys::stat::mkdirat(cg, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {
            let c = rel_cstring(Path::new(name)).map_err(|e| merr_at(m, sub, Op::Resolve, e))?;
            let flags = (OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits();
            openat2(cg, &c, flags, 0, BENEATH_NO_SYMLINKS).map_err(|e| merr_at(m, sub, Op::Resolve, e))
        }
        Err(Errno::EEXIST) => {
            let t = mkdir_all(ctx.root(), sub, 0o755).map_err(|(op, e)| merr_at(m, sub, op, e))?;
            check_target(ctx, m, sub, t.as_fd())?;
            Ok(t)
        }
        Err(e) => Err(merr_at(m, sub, Op::Mkdir, e)),
    }
}

/// The controllers of a v1 hierarchy: its super options that name a
/// controller the process is in (`cpu`, `name=systemd`, …).
fn subsystems_of(h: &MountInfo<'_>, own: &[(Vec<String>, PathBuf)]) -> Vec<String> {
    h.super_opts
        .split(',')
        .filter(|o| own.iter().any(|(c, _)| c.iter().any(|x| x == o)))
        .map(str::to_owned)
        .collect()
}
