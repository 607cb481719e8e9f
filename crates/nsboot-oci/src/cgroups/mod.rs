//! cgroups v1, v2 and hybrid hosts: create the container's cgroup at
//! `linux.cgroupsPath`, apply `linux.resources`, put the process there
//! before it execs, remove it afterwards.
//!
//! # Host detection (as runc)
//! [`Hierarchies::detect`] reads `/proc/self/mountinfo`: every `cgroup`
//! (v1) mount with its controllers (named hierarchies such as
//! `name=systemd` included) and the `cgroup2` mount if any. The
//! [`Mode`] is what runc reports: `/sys/fs/cgroup` itself cgroup2 →
//! unified; v1 mounts plus a cgroup2 mount (`/sys/fs/cgroup/unified`) →
//! hybrid; v1 only → legacy. Each resource then goes to the hierarchy that
//! holds its controller: a v1 hierarchy if one has it, else the unified
//! hierarchy if its `cgroup.controllers` lists it — so on this hybrid host
//! memory/cpu/pids/blkio/devices are written in v1 files and hugetlb in the
//! unified hierarchy's v2 files. A resource whose controller no hierarchy
//! holds is an error naming its key.
//!
//! # Paths (as runc's fs driver)
//! `linux.cgroupsPath` absolute → that path below each hierarchy's root;
//! relative → below the caller's own cgroup in each hierarchy
//! (`/proc/self/cgroup`); absent → `<caller's cgroup>/<container id>`.
//! `..` anywhere is refused before anything is created.
//!
//! # What was proven on which host (tests/cgroups.rs)
//! Proven on this hybrid host (Linux 6.18, v1 controllers + hugetlb-only
//! unified): v1 limits enforced (pids.max stops a fork loop, a memory hog
//! is OOM-killed inside memory.limit_in_bytes with memsw limited too),
//! v1 files hold the values, hugetlb limits and `CLONE_INTO_CGROUP` on the
//! real unified hierarchy, removal leaves nothing. Not provable here: the
//! v2 files of memory/cpu/pids/io (those controllers are bound to v1, so
//! no cgroup2 view of them can exist on this host) — their writer is
//! tested against a scratch directory (file names and values only, see
//! `v2::tests`), not against a kernel.
//!
//! # Why not youki's libcgroups or cgroups-rs
//! Both pick one manager per host: libcgroups treats a hybrid host as v1
//! (hugetlb on the unified hierarchy is then unreachable) and pulls
//! systemd/dbus and BPF dependencies by feature; cgroups-rs has no
//! CLONE_INTO_CGROUP fd API and its v2 device support needs libbpf. What we
//! need is a few hundred lines of file writes, with no threads and nothing
//! run after fork except `cgroup.procs` writes in the parent.
//!
//! # Device rules
//! Where a v1 devices hierarchy exists (legacy and hybrid hosts, as runc):
//! the devices controller (`devices.deny`/`devices.allow`, in order,
//! followed by runc's default allow list). On a unified host: a generated
//! eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup2
//! directory ([`ebpf`]); rootless without CAP_BPF/CAP_SYS_ADMIN that is
//! skipped with a warning line.

pub mod ebpf;
pub mod sys;
mod v1;
mod v2;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

/// Errors of this module; each names the config key, path or syscall.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("{key}: no cgroup hierarchy on this host has the `{controller}` controller")]
    ControllerMissing { key: String, controller: String },
    #[error("{key}: {what} is not supported by this runtime")]
    Unsupported { key: String, what: &'static str },
    #[error("{key}: write {value:?} to {path}: {source}")]
    Write {
        key: String,
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {op}: {errno}{}", if log.is_empty() { String::new() } else { format!("; verifier log: {log}") })]
    Bpf {
        key: String,
        op: &'static str,
        errno: nix::errno::Errno,
        log: String,
    },
    #[error("remove {path}: processes still in the cgroup after SIGKILL and {waited_ms} ms")]
    Busy { path: PathBuf, waited_ms: u128 },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// cgroup version of one hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// The host's cgroup setup, as runc names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// v1 hierarchies only.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount beside them.
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub version: Version,
    pub mountpoint: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4).
    pub root: PathBuf,
    /// v1: the mount's controllers (`memory`, `name=systemd`, …);
    /// v2: the root's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// All cgroup hierarchies this process sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub list: Vec<Hierarchy>,
}

impl Hierarchies {
    /// Read `/proc/self/mountinfo` (and the unified root's
    /// `cgroup.controllers`).
    pub fn detect() -> Result<Self> {
        let p = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(p).map_err(io_err("read", p))?;
        let mut h = Self::from_mountinfo(&text);
        for x in h.list.iter_mut().filter(|x| x.version == Version::V2) {
            let f = x.mountpoint.join("cgroup.controllers");
            let c = std::fs::read_to_string(&f).map_err(io_err("read", &f))?;
            x.controllers = c.split_whitespace().map(str::to_owned).collect();
        }
        Ok(h)
    }

    /// Parse mountinfo text; the first mount of each hierarchy wins.
    pub fn from_mountinfo(text: &str) -> Self {
        let mut list: Vec<Hierarchy> = Vec::new();
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let f: Vec<&str> = pre.split(' ').collect();
            let p: Vec<&str> = post.split(' ').collect();
            if f.len() < 5 || p.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape(f[3]), unescape(f[4]));
            let h = match p[0] {
                "cgroup2" => Hierarchy {
                    version: Version::V2,
                    mountpoint,
                    root,
                    controllers: Vec::new(),
                },
                "cgroup" => {
                    let controllers: Vec<String> = p[2]
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    Hierarchy {
                        version: Version::V1,
                        mountpoint,
                        root,
                        controllers,
                    }
                }
                _ => continue,
            };
            let dup = list.iter().any(|x| {
                x.version == h.version
                    && (h.version == Version::V2 || x.controllers == h.controllers)
            });
            if !dup {
                list.push(h);
            }
        }
        Self { list }
    }

    /// Legacy, hybrid or unified.
    pub fn mode(&self) -> Mode {
        let v1 = self.list.iter().any(|h| h.version == Version::V1);
        match (v1, self.unified().is_some()) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            _ => Mode::Unified,
        }
    }

    /// The cgroup2 hierarchy, if mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.list.iter().find(|h| h.version == Version::V2)
    }

    /// The hierarchy that holds `controller`: a v1 one first, else the
    /// unified one if it lists it.
    pub fn holding(&self, controller: &str) -> Option<&Hierarchy> {
        self.list
            .iter()
            .find(|h| h.version == Version::V1 && h.controllers.iter().any(|c| c == controller))
            .or_else(|| {
                self.unified()
                    .filter(|h| h.controllers.iter().any(|c| c == controller))
            })
    }
}

/// cgroup v1 controller names as they appear in mount options.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// Where the cgroup goes, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupsPath {
    /// Below each hierarchy's root.
    Absolute(PathBuf),
    /// Below the caller's cgroup in each hierarchy.
    Relative(PathBuf),
}

impl CgroupsPath {
    /// Validate `linux.cgroupsPath` (`None`: `<caller's cgroup>/<id>`).
    pub fn new(path: Option<&Path>, container_id: &str) -> Result<Self> {
        const KEY: &str = "linux.cgroupsPath";
        let (p, absolute) = match path {
            Some(p) => (p.to_owned(), p.is_absolute()),
            None => {
                if container_id.is_empty()
                    || container_id.contains('/')
                    || container_id == ".."
                    || container_id == "."
                {
                    return Err(invalid(KEY, format!("not set, and the container id {container_id:?} is not a directory name")));
                }
                (PathBuf::from(container_id), false)
            }
        };
        let mut clean = PathBuf::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir => {
                    return Err(invalid(KEY, format!("{} contains `..`", p.display())));
                }
                Component::Prefix(_) => {
                    return Err(invalid(KEY, format!("{} is not a Linux path", p.display())))
                }
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(invalid(
                KEY,
                format!("{:?} names the cgroup root itself", p.display().to_string()),
            ));
        }
        Ok(if absolute {
            Self::Absolute(clean)
        } else {
            Self::Relative(clean)
        })
    }

    /// The directory of this cgroup in `h`, for a process whose
    /// `/proc/self/cgroup` is `proc_cgroup`.
    pub fn dir_in(&self, h: &Hierarchy, proc_cgroup: &str) -> Result<PathBuf> {
        match self {
            Self::Absolute(p) => Ok(h.mountpoint.join(p)),
            Self::Relative(p) => {
                let own = own_cgroup(h, proc_cgroup).ok_or_else(|| {
                    invalid(
                        "linux.cgroupsPath",
                        format!(
                            "relative, but this process has no cgroup in {}",
                            h.mountpoint.display()
                        ),
                    )
                })?;
                let own = Path::new(&own);
                let below_root = own.strip_prefix(&h.root).map_err(|_| {
                    invalid(
                        "linux.cgroupsPath",
                        format!(
                            "relative, but this process's cgroup {} is outside the mount of {}",
                            own.display(),
                            h.mountpoint.display()
                        ),
                    )
                })?;
                Ok(h.mountpoint.join(below_root).join(p))
            }
        }
    }
}

/// This process's cgroup path in hierarchy `h` from `/proc/self/cgroup`.
fn own_cgroup(h: &Hierarchy, proc_cgroup: &str) -> Option<String> {
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = match h.version {
            Version::V2 => id == "0" && ctrls.is_empty(),
            Version::V1 => {
                let a: BTreeSet<&str> = ctrls.split(',').collect();
                let b: BTreeSet<&str> = h.controllers.iter().map(String::as_str).collect();
                !ctrls.is_empty() && a == b
            }
        };
        hit.then(|| path.to_owned())
    })
}

/// `linux.cgroupsPath` + `linux.resources`, validated up front (nothing on
/// the host is touched until [`create`](Self::create)).
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    path: CgroupsPath,
    resources: LinuxResources,
}

impl CgroupPlan {
    /// Validate. Errors name the key.
    pub fn new(
        cgroups_path: Option<&Path>,
        resources: Option<&LinuxResources>,
        container_id: &str,
    ) -> Result<Self> {
        let path = CgroupsPath::new(cgroups_path, container_id)?;
        let resources = resources.cloned().unwrap_or_default();
        validate(&resources)?;
        Ok(Self { path, resources })
    }

    /// From the spec's `linux` object (`cgroupsPath`, `resources`).
    pub fn from_linux(linux: &oci_spec::runtime::Linux, container_id: &str) -> Result<Self> {
        Self::new(
            linux.cgroups_path().as_deref(),
            linux.resources().as_ref(),
            container_id,
        )
    }

    /// The validated path.
    pub fn path(&self) -> &CgroupsPath {
        &self.path
    }

    /// Create the cgroup in every hierarchy (an existing one is joined, as
    /// runc does) and apply the resources. On error every directory this
    /// call created is removed again; pre-existing ones are left.
    ///
    /// Rootless (euid ≠ 0): a hierarchy where the directory cannot be
    /// created for lack of permission (no delegated, writable subtree) is
    /// skipped with a warning line on stderr, as runc does; the returned
    /// [`Cgroup::warnings`] lists them.
    pub fn create(&self, hier: &Hierarchies) -> Result<Cgroup> {
        let p = Path::new("/proc/self/cgroup");
        let proc_cgroup = std::fs::read_to_string(p).map_err(io_err("read", p))?;
        let rootless = !nix::unistd::geteuid().is_root();
        let mut cg = Cgroup {
            dirs: Vec::new(),
            warnings: Vec::new(),
        };
        let r = (|| {
            for h in &hier.list {
                let dir = self.path.dir_in(h, &proc_cgroup)?;
                match mkdir_all(&dir, &h.mountpoint) {
                    Ok(created_top) => cg.dirs.push(CgroupDir {
                        version: h.version,
                        controllers: h.controllers.clone(),
                        mountpoint: h.mountpoint.clone(),
                        path: dir,
                        created_top,
                    }),
                    Err(CgroupError::Io { source, path, .. })
                        if rootless
                            && matches!(
                                source.kind(),
                                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
                            ) =>
                    {
                        let w = format!(
                            "nsboot-oci: cgroups: rootless and {} is not writable ({source}); skipping the {} hierarchy",
                            path.display(),
                            h.mountpoint.display()
                        );
                        eprintln!("{w}");
                        cg.warnings.push(w);
                    }
                    Err(e) => return Err(e),
                }
            }
            v1::prepare_cpuset(&cg)?;
            let w = apply(&self.resources, hier, &cg)?;
            cg.warnings.extend(w);
            Ok(())
        })();
        match r {
            Ok(()) => Ok(cg),
            Err(e) => {
                // Roll back only what this call created (no process is in
                // it yet); a cgroup that existed before is left alone.
                for d in &cg.dirs {
                    if let Some(top) = &d.created_top {
                        let _ = remove_tree(top);
                    }
                }
                Err(e)
            }
        }
    }
}

/// Create `dir` and missing parents (never above `mountpoint`). Returns the
/// topmost directory created (`None`: it all existed).
fn mkdir_all(dir: &Path, mountpoint: &Path) -> Result<Option<PathBuf>> {
    let mut missing = Vec::new();
    let mut d = dir;
    while d != mountpoint && !d.is_dir() {
        missing.push(d.to_owned());
        d = match d.parent() {
            Some(p) => p,
            None => break,
        };
    }
    let mut top = None;
    for m in missing.iter().rev() {
        match std::fs::create_dir(m) {
            Ok(()) => {
                top.get_or_insert_with(|| m.clone());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                if let Some(t) = &top {
                    let _ = remove_tree(t);
                }
                return Err(io_err("mkdir", m)(e));
            }
        }
    }
    Ok(top)
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    pub version: Version,
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    pub path: PathBuf,
    /// The topmost directory we created (removed with it); `None` if the
    /// whole path already existed.
    pub created_top: Option<PathBuf>,
}

/// A created container cgroup. Serializable so that a caller (or a test
/// helper) in another process can enter or remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<CgroupDir>,
    /// Rootless hierarchies skipped (each also printed on stderr).
    pub warnings: Vec<String>,
}

impl Cgroup {
    /// The directory in the hierarchy holding `controller`.
    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.controllers.iter().any(|c| c == controller))
            .or_else(|| self.dirs.iter().find(|d| d.version == Version::V2))
            .map(|d| d.path.as_path())
    }

    /// The cgroup2 directory, if any.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.version == Version::V2)
            .map(|d| d.path.as_path())
    }

    /// An `O_RDONLY|O_DIRECTORY|O_CLOEXEC` fd of the cgroup2 directory, for
    /// `clone3(CLONE_INTO_CGROUP)` ([`sys::fork_into_cgroup`]). `None` on a
    /// host (or rootless setup) without a unified directory.
    pub fn unified_fd(&self) -> Result<Option<OwnedFd>> {
        let Some(dir) = self.unified_dir() else {
            return Ok(None);
        };
        nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(Some)
        .map_err(|e| io_err("open", dir)(e.into()))
    }

    /// Move `pid` into the cgroup in every hierarchy (`cgroup.procs`).
    pub fn add_pid(&self, pid: nix::unistd::Pid) -> Result<()> {
        self.add_pid_where(pid, |_| true)
    }

    /// Move `pid` into the v1 hierarchies only: after
    /// `clone3(CLONE_INTO_CGROUP)` put it into the unified one.
    pub fn add_pid_v1(&self, pid: nix::unistd::Pid) -> Result<()> {
        self.add_pid_where(pid, |d| d.version == Version::V1)
    }

    fn add_pid_where(&self, pid: nix::unistd::Pid, f: impl Fn(&CgroupDir) -> bool) -> Result<()> {
        for d in self.dirs.iter().filter(|d| f(d)) {
            let path = d.path.join("cgroup.procs");
            std::fs::write(&path, pid.to_string()).map_err(|source| CgroupError::Write {
                key: "cgroup.procs".into(),
                path: path.clone(),
                value: pid.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Pids in the cgroup (the union over hierarchies).
    pub fn pids(&self) -> Result<BTreeSet<i32>> {
        let mut all = BTreeSet::new();
        for d in &self.dirs {
            all.extend(procs_tree(&d.path)?);
        }
        Ok(all)
    }

    /// Kill every process left (freezing first where a freezer exists, so
    /// a fork loop cannot outrun the kill; `cgroup.kill` on v2 where the
    /// kernel has it), wait until they are gone and remove every directory
    /// created, innermost first. Idempotent.
    pub fn remove(&self) -> Result<()> {
        // Empty already (the usual delete, after the container's init was
        // reaped): nothing to freeze or kill, only the directories to
        // remove. No process can enter an empty cgroup but by being moved
        // there, which only its owner does.
        if self.pids()?.is_empty() {
            return self.rmdirs();
        }
        let freezer = self
            .dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.controllers.iter().any(|c| c == "freezer"))
            .map(|d| d.path.join("freezer.state"))
            .filter(|p| p.exists());
        if let Some(f) = &freezer {
            let _ = std::fs::write(f, "FROZEN");
        }
        for d in self.dirs.iter().filter(|d| d.version == Version::V2) {
            let _ = std::fs::write(d.path.join("cgroup.kill"), "1");
        }
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(f) = &freezer {
            let _ = std::fs::write(f, "THAWED");
        }
        let start = Instant::now();
        loop {
            let left = self.pids()?;
            if left.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                let path = self
                    .dirs
                    .first()
                    .map(|d| d.path.clone())
                    .unwrap_or_default();
                return Err(CgroupError::Busy {
                    path,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.rmdirs()
    }

    /// rmdir every directory (child cgroups first) and the parents this
    /// cgroup created.
    fn rmdirs(&self) -> Result<()> {
        for d in &self.dirs {
            remove_tree(&d.path)?;
            if let Some(top) = &d.created_top {
                let mut p = d.path.parent();
                while let Some(dir) = p {
                    if !dir.starts_with(top) {
                        break;
                    }
                    remove_dir(dir)?;
                    p = dir.parent();
                }
            }
        }
        Ok(())
    }
}

/// Pids in `dir`'s `cgroup.procs` and in its child cgroups'.
fn procs_tree(dir: &Path) -> Result<BTreeSet<i32>> {
    let mut all = BTreeSet::new();
    let procs = dir.join("cgroup.procs");
    match std::fs::read_to_string(&procs) {
        Ok(s) => all.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(all),
        Err(e) => return Err(io_err("read", &procs)(e)),
    }
    for e in std::fs::read_dir(dir).map_err(io_err("readdir", dir))? {
        let e = e.map_err(io_err("readdir", dir))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            all.extend(procs_tree(&e.path())?);
        }
    }
    Ok(all)
}

/// rmdir `dir` and its child cgroups, innermost first (cgroupfs dirs are
/// removed with rmdir even though they hold control files).
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("readdir", dir)(e)),
    };
    for e in entries {
        let e = e.map_err(io_err("readdir", dir))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    remove_dir(dir)
}

/// rmdir, retrying EBUSY briefly (a killed task may still be exiting).
fn remove_dir(dir: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && start.elapsed() < Duration::from_secs(2) =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("rmdir", dir)(e)),
        }
    }
}

/// Checks that need no host: value ranges and key shapes.
fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid(
                    "linux.resources.memory.swappiness",
                    format!("{s} is above 100"),
                ));
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!("memory+swap limit {s} is below the memory limit {l}"),
                ));
            }
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight() {
            if !(10..=1000).contains(&w) {
                return Err(invalid(
                    "linux.resources.blockIO.weight",
                    format!("{w} is outside 10-1000"),
                ));
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let s = h.page_size();
        let ok = s.len() > 2
            && (s.ends_with("KB") || s.ends_with("MB") || s.ends_with("GB"))
            && s[..s.len() - 2].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(invalid(
                format!("linux.resources.hugepageLimits[{i}].pageSize"),
                format!("{s:?} is not like 2MB or 1GB"),
            ));
        }
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(invalid(
                format!("linux.resources.unified[{k:?}]"),
                "not a cgroup interface file name",
            ));
        }
    }
    if let Some(d) = r.devices() {
        for (i, rule) in d.iter().enumerate() {
            if let Some(a) = rule.access() {
                if a.is_empty() || !a.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                    return Err(invalid(
                        format!("linux.resources.devices[{i}].access"),
                        format!("{a:?} is not a subset of rwm"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Write one interface file, naming `key` on failure.
fn write(dir: &Path, file: &str, value: impl ToString, key: &str) -> Result<()> {
    let path = dir.join(file);
    let value = value.to_string();
    std::fs::write(&path, &value).map_err(|source| CgroupError::Write {
        key: key.to_owned(),
        path,
        value,
        source,
    })
}

/// One resource's destination: the directory and its version.
fn target<'a>(
    hier: &Hierarchies,
    cg: &'a Cgroup,
    controller: &str,
    key: &str,
) -> Result<Option<(&'a Path, Version)>> {
    let h = hier
        .holding(controller)
        .ok_or_else(|| CgroupError::ControllerMissing {
            key: key.to_owned(),
            controller: controller.to_owned(),
        })?;
    // Rootless-skipped hierarchies have no directory: nothing to write.
    Ok(cg
        .dirs
        .iter()
        .find(|d| d.mountpoint == h.mountpoint)
        .map(|d| (d.path.as_path(), d.version)))
}

/// Apply every resource to the hierarchy holding its controller.
fn apply(r: &LinuxResources, hier: &Hierarchies, cg: &Cgroup) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    // v2 controllers must be enabled in every ancestor's subtree_control.
    if let (Some(u), Some(dir)) = (hier.unified(), cg.unified_dir()) {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for c in v2::controllers_used(r) {
            if hier.holding(&c).map(|h| h.version) == Some(Version::V2) {
                wanted.insert(c);
            }
        }
        v2::enable_controllers(&u.mountpoint, dir, &wanted)?;
    }
    if let Some(m) = r.memory() {
        if let Some((dir, v)) = target(hier, cg, "memory", "linux.resources.memory")? {
            match v {
                Version::V1 => v1::memory(dir, m)?,
                Version::V2 => v2::memory(dir, m)?,
            }
        }
    }
    if let Some(c) = r.cpu() {
        let cpu_set = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some();
        if cpu_set {
            if let Some((dir, v)) = target(hier, cg, "cpu", "linux.resources.cpu")? {
                match v {
                    Version::V1 => v1::cpu(dir, c)?,
                    Version::V2 => v2::cpu(dir, c)?,
                }
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            if let Some((dir, _)) = target(hier, cg, "cpuset", "linux.resources.cpu.cpus")? {
                // Same file names in v1 and v2.
                if let Some(s) = c.cpus() {
                    write(dir, "cpuset.cpus", s, "linux.resources.cpu.cpus")?;
                }
                if let Some(s) = c.mems() {
                    write(dir, "cpuset.mems", s, "linux.resources.cpu.mems")?;
                }
            }
        }
    }
    if let Some(p) = r.pids() {
        if let Some((dir, _)) = target(hier, cg, "pids", "linux.resources.pids.limit")? {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write(dir, "pids.max", v, "linux.resources.pids.limit")?;
        }
    }
    if let Some(b) = r.block_io() {
        let (ctrl, is_v1) = if hier
            .holding("blkio")
            .is_some_and(|h| h.version == Version::V1)
        {
            ("blkio", true)
        } else {
            ("io", false)
        };
        if let Some((dir, _)) = target(hier, cg, ctrl, "linux.resources.blockIO")? {
            if is_v1 {
                v1::blkio(dir, b)?;
            } else {
                v2::io(dir, b)?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let key = format!("linux.resources.hugepageLimits[{i}]");
        if let Some((dir, v)) = target(hier, cg, "hugetlb", &key)? {
            let file = match v {
                Version::V1 => format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                Version::V2 => format!("hugetlb.{}.max", h.page_size()),
            };
            if !dir.join(&file).exists() {
                return Err(invalid(
                    format!("{key}.pageSize"),
                    format!(
                        "{} has no {file}: page size not supported by this host",
                        dir.display()
                    ),
                ));
            }
            write(dir, &file, h.limit(), &format!("{key}.limit"))?;
        }
    }
    if let Some(rules) = r.devices() {
        let key = "linux.resources.devices";
        let h = hier.holding("devices");
        match h.map(|h| h.version) {
            Some(Version::V1) => {
                if let Some((dir, _)) = target(hier, cg, "devices", key)? {
                    v1::devices(dir, rules)?;
                }
            }
            _ if hier.unified().is_some() => {
                if let Some(fd) = cg.unified_fd()? {
                    match ebpf::attach_device_filter(std::os::fd::AsFd::as_fd(&fd), rules) {
                        Ok(()) => {}
                        Err(CgroupError::Bpf {
                            errno: nix::errno::Errno::EPERM,
                            ..
                        }) if !nix::unistd::geteuid().is_root() => {
                            let w = format!(
                                "nsboot-oci: cgroups: rootless: cannot attach the device filter to {} (EPERM); device rules not enforced by the cgroup",
                                cg.unified_dir().unwrap_or(Path::new("")).display()
                            );
                            eprintln!("{w}");
                            warnings.push(w);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {
                return Err(CgroupError::ControllerMissing {
                    key: key.into(),
                    controller: "devices".into(),
                })
            }
        }
    }
    if let Some(u) = r.unified() {
        if !u.is_empty() {
            let dir = cg
                .unified_dir()
                .ok_or_else(|| CgroupError::ControllerMissing {
                    key: "linux.resources.unified".into(),
                    controller: "cgroup2".into(),
                })?;
            let available = &hier
                .unified()
                .map(|h| h.controllers.clone())
                .unwrap_or_default();
            v2::unified(dir, u, available)?;
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 31 0:32 /sub /mnt/again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hybrid_is_detected_per_controller() {
        let h = Hierarchies::from_mountinfo(HYBRID);
        assert_eq!(h.mode(), Mode::Hybrid);
        assert_eq!(h.list.len(), 4, "{h:?}");
        assert_eq!(
            h.holding("memory").unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(h.list[2].controllers, ["name=systemd"]);
        assert!(
            h.holding("hugetlb").is_none(),
            "unified controllers not read from mountinfo"
        );
        let only_v2 =
            Hierarchies::from_mountinfo("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw");
        assert_eq!(only_v2.mode(), Mode::Unified);
    }

    #[test]
    fn cgroups_path_semantics() {
        let e = CgroupsPath::new(Some(Path::new("/a/../../etc")), "c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.cgroupsPath: /a/../../etc contains `..`"
        );
        assert!(CgroupsPath::new(Some(Path::new("/")), "c").is_err());
        assert!(CgroupsPath::new(None, "../x").is_err());
        let h = Hierarchy {
            version: Version::V1,
            mountpoint: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
            controllers: vec!["memory".into()],
        };
        let proc = "4:memory:/user/42\n0::/\n";
        let abs = CgroupsPath::new(Some(Path::new("/ns/c1")), "c").unwrap();
        assert_eq!(
            abs.dir_in(&h, proc).unwrap(),
            Path::new("/sys/fs/cgroup/memory/ns/c1")
        );
        let rel = CgroupsPath::new(Some(Path::new("ns/c1")), "c").unwrap();
        assert_eq!(
            rel.dir_in(&h, proc).unwrap(),
            Path::new("/sys/fs/cgroup/memory/user/42/ns/c1")
        );
        let none = CgroupsPath::new(None, "ctr").unwrap();
        assert_eq!(
            none.dir_in(&h, proc).unwrap(),
            Path::new("/sys/fs/cgroup/memory/user/42/ctr")
        );
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        assert_eq!(unescape(r"/a\040b"), Path::new("/a b"));
    }
}
