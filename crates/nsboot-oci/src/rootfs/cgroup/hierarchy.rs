//! Which v1 hierarchies the host has and where: the process's own
//! cgroups (/proc/self/cgroup), the usual layout checked without mountinfo,
//! and runc's way from mountinfo where it is not.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::super::procfs::MountInfo;
use super::super::Ctx;
use super::HOST_CGROUP;

/// One line of /proc/self/cgroup: hierarchy id, controllers as written
/// (`cpu,cpuacct`, `name=systemd`; empty for the unified hierarchy), the
/// process's path.
pub(super) struct OwnCgroup<'a> {
    pub(super) id: u32,
    pub(super) controllers: &'a str,
    pub(super) path: &'a Path,
}

impl OwnCgroup<'_> {
    fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

pub(super) fn own_cgroups(text: &str) -> impl Iterator<Item = OwnCgroup<'_>> + Clone {
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
pub(super) fn v1_ascending(text: &str) -> impl Iterator<Item = OwnCgroup<'_>> {
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

/// `f(name, path)` for the hierarchy `c`: its name under /sys/fs/cgroup
/// ([`base_name`]) and `/sys/fs/cgroup/<name>/<tail>` ([`host_path`]),
/// both built on the stack where they fit.
pub(super) fn at_host_path<R>(c: &OwnCgroup<'_>, tail: &Path, f: impl FnOnce(&str, &Path) -> R) -> R {
    let mut name = [0u8; 64];
    let mut buf = [0u8; PATH_ROOM];
    let base = base_name(c.controllers, &mut name);
    let path = host_path(&mut buf, &base, tail);
    f(&base, &path)
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
pub(super) fn conventional(ctx: &Ctx<'_>, own: &str) -> bool {
    if ctx.plan.root.starts_with(HOST_CGROUP) {
        return false;
    }
    own_cgroups(own).filter(|c| !c.controllers.is_empty()).all(|c| {
        at_host_path(&c, Path::new("release_agent"), |_, probe| {
            nix::sys::stat::lstat(probe).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        })
    })
}

/// A host v1 hierarchy as found in mountinfo (runc's way).
pub(super) struct Hierarchy {
    /// The base name of the host's mount point: the name under
    /// /sys/fs/cgroup in the container.
    pub(super) base: OsString,
    /// Its controllers, comma-separated (the mount data of a fresh mount
    /// in a cgroup namespace).
    pub(super) subsystems: String,
    /// The process's own cgroup in it as a host path (the bind source
    /// without a cgroup namespace).
    pub(super) source: PathBuf,
}

/// runc's way: every `cgroup` mount of the host (not those an earlier
/// rbind of /sys copied into the rootfs), once per mount point.
pub(super) fn from_mountinfo(ctx: &Ctx<'_>, mounts: &[MountInfo<'_>], own: &str) -> Vec<Hierarchy> {
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
