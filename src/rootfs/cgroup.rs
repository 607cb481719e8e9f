//! runc's `cgroup` mount type: cgroup2 when the host is unified, otherwise
//! a tmpfs with one entry per v1 hierarchy (mounted fresh inside a cgroup
//! namespace, bind-mounted from the host's own cgroup otherwise). Where
//! the kernel refuses cgroup2 (a user namespace without a cgroup
//! namespace), the host's /sys/fs/cgroup is bind-mounted instead.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
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

fn own_cgroups(text: &str) -> impl Iterator<Item = OwnCgroup<'_>> + Clone {
    text.lines().filter_map(|l| {
        let mut it = l.splitn(3, ':');
        let id = it.next()?.parse().ok()?;
        let controllers = it.next()?;
        let path = Path::new(it.next()?);
        Some(OwnCgroup { id, controllers, path })
    })
}

/// The v1 hierarchies of /proc/self/cgroup (those with controllers), by
/// ascending id (runc's order: mountinfo's), without collecting them.
fn v1_ascending(text: &str) -> impl Iterator<Item = OwnCgroup<'_>> {
    let mut last = None;
    std::iter::from_fn(move || {
        let next = own_cgroups(text)
            .filter(|c| !c.controllers.is_empty() && last.map_or(true, |l| c.id > l))
            .min_by_key(|c| c.id)?;
        last = Some(next.id);
        Some(next)
    })
}

/// Room for the host paths of the usual layout (`/sys/fs/cgroup/<name>/
/// <own cgroup>`) on the stack; a longer one takes the heap.
const PATH_ROOM: usize = 256;

/// `/sys/fs/cgroup/<base>/<tail>`: written into `buf` where it fits,
/// else on the heap.
fn host_path<'b>(buf: &'b mut [u8; PATH_ROOM], base: &str, tail: &Path) -> Cow<'b, Path> {
    let rel = tail.strip_prefix("/").unwrap_or(tail);
    let parts: [&[u8]; 5] = [HOST_CGROUP.as_bytes(), b"/", base.as_bytes(), b"/", rel.as_os_str().as_bytes()];
    let len = parts.iter().map(|p| p.len()).sum::<usize>();
    let Some(out) = buf.get_mut(..len) else {
        return Cow::Owned(Path::new(HOST_CGROUP).join(base).join(rel));
    };
    let mut at = 0;
    for p in parts {
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    Cow::Borrowed(Path::new(OsStr::from_bytes(out)))
}

/// The name of a hierarchy under /sys/fs/cgroup: its controllers with
/// every `name=` prefix dropped (`name=systemd` → `systemd`), written into
/// `buf` when a prefix must go and it fits.
fn base_name<'b>(controllers: &'b str, buf: &'b mut [u8; 64]) -> Cow<'b, str> {
    if !controllers.contains("name=") {
        return Cow::Borrowed(controllers);
    }
    let mut at = 0;
    for (i, part) in controllers.split(',').enumerate() {
        let part = part.strip_prefix("name=").unwrap_or(part).as_bytes();
        let sep = usize::from(i > 0);
        let Some(out) = buf.get_mut(at..at + sep + part.len()) else {
            let names: Vec<&str> = controllers.split(',').map(|x| x.strip_prefix("name=").unwrap_or(x)).collect();
            return Cow::Owned(names.join(","));
        };
        out[..sep].copy_from_slice(&b","[..sep]);
        out[sep..].copy_from_slice(part);
        at += sep + part.len();
    }
    // Only whole UTF-8 pieces of a `str` were copied.
    Cow::Borrowed(std::str::from_utf8(&buf[..at]).unwrap_or_default())
}

/// Is every v1 hierarchy of /proc/self/cgroup mounted where every v1 host
/// has it (systemd's layout, cgroupfs-mount's)?
///
/// runc reads the hierarchies from mountinfo (every `cgroup` mount: mount
/// point, root, controllers). Formatting mountinfo costs the kernel more
/// than anything else in this step on a v1 host (every cgroup line takes
/// css_set_lock and formats the hierarchy's path and options), so this
/// layout is checked first: each hierarchy at /sys/fs/cgroup/<its
/// controllers> (`name=X`: X) with the hierarchy's root as the mount's
/// root — which a file that only a v1 hierarchy's root directory has
/// (`release_agent`) proves, one stat per hierarchy. Where any hierarchy
/// is not so (a nested container's bound sub-hierarchies, other names),
/// the host's mountinfo is read as runc does. (Left out by the check: a
/// hierarchy mounted a second time elsewhere, which runc would also bind
/// under that second name.) No heap is used on this path: in a freshly
/// forked child every allocation that misses malloc's per-size cache
/// writes to (and so copies) pages of the parent's heap, which costs more
/// than the work here.
fn conventional(ctx: &Ctx<'_>, own: &str) -> bool {
    if ctx.plan.root.starts_with(HOST_CGROUP) {
        return false;
    }
    own_cgroups(own).filter(|c| !c.controllers.is_empty()).all(|c| {
        let mut name = [0u8; 64];
        let mut buf = [0u8; PATH_ROOM];
        let base = base_name(c.controllers, &mut name);
        let probe = host_path(&mut buf, &base, Path::new("release_agent"));
        nix::sys::stat::lstat(probe.as_ref()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
    })
}

/// A host v1 hierarchy as found in mountinfo (runc's way).
struct Hierarchy {
    /// The base name of the host's mount point: the name under
    /// /sys/fs/cgroup in the container.
    base: OsString,
    /// Its controllers, comma-separated (the mount data of a fresh mount
    /// in a cgroup namespace).
    subsystems: String,
    /// The process's own cgroup in it as a host path (the bind source
    /// without a cgroup namespace).
    source: PathBuf,
}

/// runc's way: every `cgroup` mount of the host (not those an earlier
/// rbind of /sys copied into the rootfs), once per mount point.
fn from_mountinfo(ctx: &Ctx<'_>, mounts: &[MountInfo<'_>], own: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for h in mounts.iter().filter(|h| h.fstype == "cgroup" && !h.mountpoint.starts_with(&ctx.plan.root)) {
        let Some(base) = h.mountpoint.file_name() else { continue };
        if seen.contains(&h.mountpoint.as_ref()) {
            continue;
        }
        seen.push(&h.mountpoint);
        let subsystems = subsystems_of(h, own);
        let own_path = own_cgroups(own)
            .find(|c| subsystems.iter().any(|s| c.has(s)))
            .map_or(Path::new("/"), |c| c.path);
        let rel = own_path.strip_prefix(&h.root).unwrap_or(Path::new(""));
        out.push(Hierarchy {
            base: base.to_owned(),
            subsystems: subsystems.join(","),
            source: h.mountpoint.join(rel),
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

    let mut one = One { ctx, m, cg: cg.as_fd(), cwd_cg: false };
    ctx.proc.read_with(c"self/cgroup", |own| -> Result<()> {
        if conventional(ctx, own) {
            for c in v1_ascending(own) {
                let mut name = [0u8; 64];
                let mut buf = [0u8; PATH_ROOM];
                let base = base_name(c.controllers, &mut name);
                let source = host_path(&mut buf, &base, c.path);
                one.mount(OsStr::new(base.as_ref()), c.controllers, &source)?;
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

/// The controllers of a v1 hierarchy: its super options that name a
/// controller the process is in (`cpu`, `name=systemd`, …).
fn subsystems_of<'m>(h: &'m MountInfo<'_>, own: &str) -> Vec<&'m str> {
    h.super_opts.split(',').filter(|o| own_cgroups(own).any(|c| c.has(o))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "12:pids:/user.slice\n3:name=systemd:/user.slice/session-1.scope\n0::/user.slice\n\
                       7:cpu,cpuacct:/\n";

    #[test]
    fn v1_hierarchies_come_by_ascending_id_without_the_unified_one() {
        let ids: Vec<(u32, &str)> = v1_ascending(OWN).map(|c| (c.id, c.controllers)).collect();
        assert_eq!(ids, [(3, "name=systemd"), (7, "cpu,cpuacct"), (12, "pids")]);
        assert_eq!(v1_ascending("0::/\n").count(), 0);
    }

    #[test]
    fn base_names_drop_name_prefixes() {
        let mut buf = [0u8; 64];
        assert!(matches!(base_name("cpu,cpuacct", &mut buf), Cow::Borrowed("cpu,cpuacct")));
        assert_eq!(base_name("name=systemd", &mut [0u8; 64]), "systemd");
        assert_eq!(base_name("name=a,cpu", &mut [0u8; 64]), "a,cpu");
        let long = format!("name={}", "x".repeat(70));
        let got = base_name(&long, &mut buf);
        assert!(matches!(got, Cow::Owned(_)));
        assert_eq!(got, "x".repeat(70));
    }

    #[test]
    fn host_paths_on_the_stack_and_past_it() {
        let mut buf = [0u8; PATH_ROOM];
        let p = host_path(&mut buf, "cpu,cpuacct", Path::new("/user.slice/a"));
        assert!(matches!(p, Cow::Borrowed(_)));
        assert_eq!(p, Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice/a"));
        assert_eq!(host_path(&mut [0u8; PATH_ROOM], "pids", Path::new("/")), Path::new("/sys/fs/cgroup/pids/"));
        let deep = format!("/{}", "d/".repeat(200));
        let p = host_path(&mut buf, "memory", Path::new(&deep));
        assert!(matches!(p, Cow::Owned(_)));
        assert_eq!(p, Path::new("/sys/fs/cgroup/memory").join(&deep[1..]));
    }
}
