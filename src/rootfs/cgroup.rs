//! runc's `cgroup` mount type: cgroup2 when the host is unified, otherwise
//! a tmpfs with one entry per v1 hierarchy (mounted fresh inside a cgroup
//! namespace, bind-mounted from the host's own cgroup otherwise). Where
//! the kernel refuses cgroup2 (a user namespace without a cgroup
//! namespace), the host's /sys/fs/cgroup is bind-mounted instead.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::error::{Op, Result};
use super::mount::{bind, check_target, fs_mount, merr, merr_at, post_mount};
use super::path::{mkdir_all, resolve};
use super::plan::MountPlan;
use super::procfs::MountInfo;
use super::Ctx;
use crate::sys::fs::mount_setattr;

const HOST_CGROUP: &str = "/sys/fs/cgroup";
const DEFAULT: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

pub(crate) fn mount_cgroup(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let unified = statfs(HOST_CGROUP)
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .map_err(|e| merr_at(m, Path::new(HOST_CGROUP), Op::Statfs, e))?;
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

fn mount_v1(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = mkdir_all(ctx.root(), &m.dest, 0o755).map_err(|(op, e)| merr(m, op, e))?;
    check_target(ctx, m, &m.dest, target.as_fd())?;
    let tmpfs = MountPlan { source: PathBuf::from("tmpfs"), ..m.clone() };
    fs_mount(&tmpfs, &m.dest, target.as_fd(), "tmpfs", DEFAULT, "mode=755")?;
    drop(target);

    let mounts = &ctx.host_mounts;
    let own = own_cgroups(&ctx.proc.read("self/cgroup")?);
    let mut seen: Vec<&Path> = Vec::new();
    // The host's hierarchies only: an earlier rbind of /sys may have copied
    // them into the rootfs already.
    let hierarchies = mounts.iter().filter(|h| h.fstype == "cgroup" && !h.mountpoint.starts_with(&ctx.plan.root));
    for h in hierarchies {
        let Some(base) = h.mountpoint.file_name() else { continue };
        if seen.contains(&h.mountpoint.as_path()) {
            continue;
        }
        seen.push(&h.mountpoint);
        let sub = m.dest.join(base);
        let subsystems = subsystems_of(h, &own);
        if ctx.plan.cgroupns {
            let t = mkdir_all(ctx.root(), &sub, 0o755).map_err(|(op, e)| merr_at(m, &sub, op, e))?;
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
            bind(ctx, m, &source, MsFlags::MS_BIND | MsFlags::MS_REC | m.flags, &sub)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") get one symlink each.
        let base_s = base.to_string_lossy();
        if base_s.contains(',') {
            let dir = resolve(ctx.root(), &m.dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(|e| merr(m, Op::Resolve, e))?;
            for part in base_s.split(',') {
                match nix::unistd::symlinkat(base, &dir, part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(merr_at(m, &m.dest.join(part), Op::Symlink, e)),
                }
            }
        }
    }
    if m.flags.contains(MsFlags::MS_RDONLY) {
        let fd = resolve(ctx.root(), &m.dest, OFlag::O_PATH).map_err(|e| merr(m, Op::Resolve, e))?;
        mount_setattr(fd.as_fd(), false, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| merr(m, Op::SetAttr, e))?;
    }
    post_mount(ctx, m, &m.dest)
}

/// The controllers of a v1 hierarchy: its super options that name a
/// controller the process is in (`cpu`, `name=systemd`, …).
fn subsystems_of(h: &MountInfo, own: &[(Vec<String>, PathBuf)]) -> Vec<String> {
    h.super_opts
        .split(',')
        .filter(|o| own.iter().any(|(c, _)| c.iter().any(|x| x == o)))
        .map(str::to_owned)
        .collect()
}
