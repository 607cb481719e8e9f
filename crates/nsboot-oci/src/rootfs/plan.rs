//! From an OCI runtime spec to a validated, typed [`RootfsPlan`].
//!
//! Everything a runtime could reject is rejected here, before the first
//! mount: relative destinations, unknown mount types and options, device
//! paths outside `/dev`, device types other than c/b/u/p. Each error names
//! the JSON field it comes from.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount, Spec};

use super::error::{ConfigError, ConfigProblem, Result, RootfsError};
use super::RootfsOptions;

/// What kind of mount a `mounts[i]` entry is, after runc's rules
/// (a `bind`/`rbind` option makes any type a bind mount).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountKind {
    Proc,
    Sysfs,
    Tmpfs,
    Devpts,
    Mqueue,
    /// runc's `cgroup`: cgroup2 or v1 hierarchies, whatever the host has.
    Cgroup,
    /// An explicit `cgroup2` mount.
    Cgroup2,
    Bind,
    Overlay,
}

impl MountKind {
    /// The filesystem type passed to mount(2).
    pub(crate) fn fstype(self) -> &'static str {
        match self {
            Self::Proc => "proc",
            Self::Sysfs => "sysfs",
            Self::Tmpfs => "tmpfs",
            Self::Devpts => "devpts",
            Self::Mqueue => "mqueue",
            Self::Cgroup => "cgroup",
            Self::Cgroup2 => "cgroup2",
            Self::Bind => "bind",
            Self::Overlay => "overlay",
        }
    }

    /// The `key=value` (or bare `key`) data options this type accepts.
    fn data_keys(self) -> &'static [&'static str] {
        match self {
            Self::Tmpfs => &[
                "size", "nr_blocks", "nr_inodes", "mode", "uid", "gid", "huge", "mpol", "inode32",
                "inode64", "noswap",
            ],
            Self::Devpts => &["newinstance", "ptmxmode", "mode", "gid", "uid", "max"],
            Self::Proc => &["hidepid", "gid", "subset"],
            Self::Cgroup | Self::Cgroup2 => &[
                "nsdelegate", "memory_recursiveprot", "memory_localevents", "favordynmods",
            ],
            Self::Overlay => &[
                "lowerdir", "upperdir", "workdir", "redirect_dir", "index", "xino", "metacopy",
                "volatile", "userxattr", "nfs_export", "uuid", "verity", "default_permissions",
            ],
            Self::Sysfs | Self::Mqueue | Self::Bind => &[],
        }
    }
}

/// One validated entry of `mounts`.
#[derive(Clone, Debug)]
pub(crate) struct MountPlan {
    /// Index in the spec's `mounts`, for error messages.
    pub index: usize,
    /// Absolute, lexically clean destination inside the container.
    pub dest: PathBuf,
    pub kind: MountKind,
    /// For bind mounts an absolute host path; otherwise the source string.
    pub source: PathBuf,
    /// MS_* flags (for bind mounts including MS_BIND and maybe MS_REC).
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Comma-joined filesystem data.
    pub data: String,
    /// The `tmpcopyup` extension.
    pub copyup: bool,
    /// Recursive mount attributes (`rro`, `rnosuid`, …): MOUNT_ATTR_* to set
    /// and to clear with mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clr: u64,
}

/// One device node to create in the container's `/dev`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DevicePlan {
    /// Path relative to `/dev` (`null`, `net/tun`), clean, no `..`.
    pub rel: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits (0o7777 at most).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl DevicePlan {
    /// The host path of the same node (`/dev/` + rel), for bind mounts.
    pub(crate) fn host_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.rel)
    }
}

/// A validated, typed description of the rootfs stage. Built entirely
/// before the first mount; [`prepare`](super::prepare) only executes it.
#[derive(Clone, Debug)]
pub struct RootfsPlan {
    pub(crate) root: PathBuf,
    pub(crate) readonly: bool,
    pub(crate) propagation: MsFlags,
    pub(crate) mounts: Vec<MountPlan>,
    pub(crate) setup_dev: bool,
    pub(crate) devices: Vec<DevicePlan>,
    pub(crate) masked: Vec<PathBuf>,
    pub(crate) readonly_paths: Vec<PathBuf>,
    pub(crate) hostname: Option<String>,
    pub(crate) domainname: Option<String>,
    pub(crate) cwd: PathBuf,
    pub(crate) no_pivot: bool,
    pub(crate) userns: bool,
    pub(crate) cgroupns: bool,
    pub(crate) mount_label: Option<String>,
}

impl RootfsPlan {
    /// Validate `spec` and build the plan. Resolves `root.path` against
    /// `opts.bundle` (or the current directory) on the host.
    pub fn from_spec(spec: &Spec, opts: &RootfsOptions) -> Result<Self> {
        build(spec, opts)
    }

    /// Parse `config.json` with oci-spec, then [`from_spec`](Self::from_spec).
    /// Device types are checked on the raw JSON first so that an unknown
    /// letter is reported with its field, not as a serde error.
    pub fn from_json(config_json: &[u8], opts: &RootfsOptions) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(config_json).map_err(RootfsError::Json)?;
        precheck_device_types(&value)?;
        let spec: Spec = serde_json::from_value(value).map_err(RootfsError::Json)?;
        Self::from_spec(&spec, opts)
    }

    /// The rootfs directory on the host (absolute, symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Number of configured mounts.
    pub fn mount_count(&self) -> usize {
        self.mounts.len()
    }

    /// Whether the spec asks for a user namespace.
    pub fn wants_userns(&self) -> bool {
        self.userns
    }

    /// `/` becomes recursively slave or private in step 1: afterwards no
    /// mount of this namespace is shared.
    pub(crate) fn quiet_propagation(&self) -> bool {
        self.propagation == MsFlags::MS_SLAVE | MsFlags::MS_REC || self.propagation == MsFlags::MS_PRIVATE | MsFlags::MS_REC
    }
}

fn cfg_err(field: impl Into<String>, problem: ConfigProblem) -> RootfsError {
    RootfsError::Config(ConfigError::new(field, problem))
}

/// Reject device types serde would reject without naming the field.
fn precheck_device_types(value: &serde_json::Value) -> Result<()> {
    let Some(devices) = value.pointer("/linux/devices").and_then(|d| d.as_array()) else {
        return Ok(());
    };
    for (i, dev) in devices.iter().enumerate() {
        match dev.get("type").and_then(|t| t.as_str()) {
            Some("c" | "b" | "u" | "p") => {}
            Some(other) => {
                return Err(cfg_err(format!("linux.devices[{i}].type"), ConfigProblem::DeviceType(other.into())))
            }
            None => return Err(cfg_err(format!("linux.devices[{i}].type"), ConfigProblem::Missing)),
        }
    }
    Ok(())
}

/// Lexical clean of an absolute path (`filepath.Clean`): `.` dropped, `..`
/// pops but never above `/`. Relative paths are an error naming `field`.
pub(crate) fn clean_abs(path: &Path, field: &str) -> Result<PathBuf> {
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(cfg_err(field, ConfigProblem::Nul));
    }
    if !path.is_absolute() {
        return Err(cfg_err(field, ConfigProblem::RelativePath(path.to_path_buf())));
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

fn build(spec: &Spec, opts: &RootfsOptions) -> Result<RootfsPlan> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let has_ns = |t: LinuxNamespaceType| namespaces.is_some_and(|ns| ns.iter().any(|n| n.typ() == t));
    if !has_ns(LinuxNamespaceType::Mount) {
        return Err(cfg_err("linux.namespaces", ConfigProblem::NoMountNamespace));
    }

    let root = resolve_root(spec, opts)?;
    let readonly = spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);

    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => propagation_flag(p)
            .ok_or_else(|| cfg_err("linux.rootfsPropagation", ConfigProblem::Propagation(p.into())))?,
    };

    let bundle = bundle_dir(opts);
    let mut mounts = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mounts.push(plan_mount(i, m, &bundle)?);
    }
    let setup_dev = mounts.iter().any(|m| m.dest == Path::new("/dev"));
    let devices = plan_devices(spec)?;

    let masked = abs_list(linux.and_then(|l| l.masked_paths().as_ref()), "linux.maskedPaths")?;
    let readonly_paths = abs_list(linux.and_then(|l| l.readonly_paths().as_ref()), "linux.readonlyPaths")?;

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, value) in [("hostname", &hostname), ("domainname", &domainname)] {
        if let Some(v) = value {
            if v.as_bytes().contains(&0) {
                return Err(cfg_err(field, ConfigProblem::Nul));
            }
            if !has_ns(LinuxNamespaceType::Uts) {
                return Err(cfg_err(field, ConfigProblem::NoUtsNamespace));
            }
        }
    }

    let cwd = match spec.process() {
        Some(p) => clean_abs(p.cwd(), "process.cwd")?,
        None => PathBuf::from("/"),
    };

    Ok(RootfsPlan {
        root,
        readonly,
        propagation,
        mounts,
        setup_dev,
        devices,
        masked,
        readonly_paths,
        hostname,
        domainname,
        cwd,
        no_pivot: opts.no_pivot,
        userns: has_ns(LinuxNamespaceType::User),
        cgroupns: has_ns(LinuxNamespaceType::Cgroup),
        mount_label: linux.and_then(|l| l.mount_label().clone()).filter(|l| !l.is_empty()),
    })
}

fn bundle_dir(opts: &RootfsOptions) -> PathBuf {
    match &opts.bundle {
        Some(b) if b.is_absolute() => b.clone(),
        Some(b) => std::env::current_dir().map(|c| c.join(b)).unwrap_or_else(|_| b.clone()),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    }
}

fn resolve_root(spec: &Spec, opts: &RootfsOptions) -> Result<PathBuf> {
    let Some(root) = spec.root().as_ref() else {
        return Err(cfg_err("root", ConfigProblem::Missing));
    };
    let path = root.path();
    if path.as_os_str().is_empty() {
        return Err(cfg_err("root.path", ConfigProblem::Missing));
    }
    let joined = bundle_dir(opts).join(path);
    let real = std::fs::canonicalize(&joined).map_err(|e| {
        let errno = e.raw_os_error().map_or(Errno::EINVAL, Errno::from_raw);
        cfg_err("root.path", ConfigProblem::Root(errno))
    })?;
    if !real.is_dir() {
        return Err(cfg_err("root.path", ConfigProblem::RootNotDirectory));
    }
    Ok(real)
}

fn propagation_flag(p: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// A flag option: (set?, flags). `false` means the option clears them.
fn flag_option(o: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match o {
        "defaults" => (true, F::empty()),
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "nosuid" => (true, F::MS_NOSUID),
        "suid" => (false, F::MS_NOSUID),
        "nodev" => (true, F::MS_NODEV),
        "dev" => (false, F::MS_NODEV),
        "noexec" => (true, F::MS_NOEXEC),
        "exec" => (false, F::MS_NOEXEC),
        "sync" => (true, F::MS_SYNCHRONOUS),
        "async" => (false, F::MS_SYNCHRONOUS),
        "dirsync" => (true, F::MS_DIRSYNC),
        "remount" => (true, F::MS_REMOUNT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "atime" => (false, F::MS_NOATIME),
        "noatime" => (true, F::MS_NOATIME),
        "diratime" => (false, F::MS_NODIRATIME),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "relatime" => (true, F::MS_RELATIME),
        "norelatime" => (false, F::MS_RELATIME),
        "strictatime" => (true, F::MS_STRICTATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "iversion" => (true, F::MS_I_VERSION),
        "noiversion" => (false, F::MS_I_VERSION),
        "silent" => (true, F::MS_SILENT),
        "loud" => (false, F::MS_SILENT),
        "acl" => (true, F::MS_POSIXACL),
        "noacl" => (false, F::MS_POSIXACL),
        "bind" => (true, F::MS_BIND),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        _ => return None,
    })
}

/// A recursive attribute option (`rro`, …): (set, clear) MOUNT_ATTR_* bits.
fn rec_option(o: &str) -> Option<(u64, u64)> {
    let atime = libc::MOUNT_ATTR__ATIME;
    Some(match o {
        "rro" => (libc::MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => (libc::MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => (libc::MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => (libc::MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (libc::MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, libc::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (libc::MOUNT_ATTR_RELATIME, atime),
        "rnoatime" => (libc::MOUNT_ATTR_NOATIME, atime),
        "rstrictatime" => (libc::MOUNT_ATTR_STRICTATIME, atime),
        "rnosymfollow" => (libc::MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, libc::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Mount points below /proc that runc lets through (lxcfs emulation).
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

pub(crate) fn proc_mount_allowed(dest: &Path) -> bool {
    PROC_ALLOWED.iter().any(|a| Path::new(a) == dest)
}

fn plan_mount(i: usize, m: &Mount, bundle: &Path) -> Result<MountPlan> {
    let dest = clean_abs(m.destination(), &format!("mounts[{i}].destination"))?;
    if dest == Path::new("/") {
        return Err(cfg_err(format!("mounts[{i}].destination"), ConfigProblem::MountOnRoot));
    }
    let options: &[String] = m.options().as_deref().unwrap_or(&[]);
    let is_bind = options.iter().any(|o| o == "bind" || o == "rbind");
    let typ = m.typ().as_deref().unwrap_or("");
    let kind = if is_bind {
        MountKind::Bind
    } else {
        match typ {
            "proc" => MountKind::Proc,
            "sysfs" => MountKind::Sysfs,
            "tmpfs" => MountKind::Tmpfs,
            "devpts" => MountKind::Devpts,
            "mqueue" => MountKind::Mqueue,
            "cgroup" => MountKind::Cgroup,
            "cgroup2" => MountKind::Cgroup2,
            "bind" => MountKind::Bind,
            "overlay" => MountKind::Overlay,
            other => {
                return Err(cfg_err(format!("mounts[{i}].type"), ConfigProblem::UnknownType(other.into())))
            }
        }
    };

    let mut flags = if kind == MountKind::Bind { MsFlags::MS_BIND } else { MsFlags::empty() };
    let mut propagation = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    let (mut copyup, mut rec_set, mut rec_clr) = (false, 0u64, 0u64);
    for (j, o) in options.iter().enumerate() {
        if let Some((set, f)) = flag_option(o) {
            if set {
                flags |= f;
            } else {
                flags &= !f;
            }
        } else if let Some(p) = propagation_flag(o) {
            propagation.push(p);
        } else if let Some((s, c)) = rec_option(o) {
            rec_set = (rec_set & !c) | s;
            rec_clr = (rec_clr & !s) | c;
        } else if o == "tmpcopyup" && kind == MountKind::Tmpfs {
            copyup = true;
        } else {
            let key = o.split('=').next().unwrap_or(o);
            if !kind.data_keys().contains(&key) || o.contains(',') || o.as_bytes().contains(&0) {
                return Err(cfg_err(format!("mounts[{i}].options[{j}]"), ConfigProblem::UnknownOption(o.clone())));
            }
            data.push(o);
        }
    }

    let source = match (kind, m.source()) {
        (MountKind::Bind, None) => {
            return Err(cfg_err(format!("mounts[{i}].source"), ConfigProblem::NoSource));
        }
        (MountKind::Bind, Some(s)) if s.as_os_str().is_empty() => {
            return Err(cfg_err(format!("mounts[{i}].source"), ConfigProblem::NoSource));
        }
        (MountKind::Bind, Some(s)) => bundle.join(s),
        (_, Some(s)) if !s.as_os_str().is_empty() => s.clone(),
        (k, _) => PathBuf::from(k.fstype()),
    };
    if source.as_os_str().as_bytes().contains(&0) {
        return Err(cfg_err(format!("mounts[{i}].source"), ConfigProblem::Nul));
    }

    if kind != MountKind::Proc {
        let under_proc = dest.starts_with("/proc");
        if under_proc && !proc_mount_allowed(&dest) {
            return Err(cfg_err(format!("mounts[{i}].destination"), ConfigProblem::InsideProc(dest)));
        }
    }

    Ok(MountPlan {
        index: i,
        dest,
        kind,
        source,
        flags,
        propagation,
        data: data.join(","),
        copyup,
        rec_set,
        rec_clr,
    })
}

/// runc's default device nodes (all 0666, root-owned).
fn default_devices() -> Vec<DevicePlan> {
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        .into_iter()
        .map(|(name, major, minor)| DevicePlan {
            rel: PathBuf::from(name),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect()
}

fn plan_devices(spec: &Spec) -> Result<Vec<DevicePlan>> {
    let mut out = default_devices();
    let devs = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (i, d) in devs.into_iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path();
        let clean = clean_abs(path, &format!("{field}.path"))?;
        let has_dotdot = path.components().any(|c| c == Component::ParentDir);
        let rel = match clean.strip_prefix("/dev") {
            Ok(r) if !has_dotdot && !r.as_os_str().is_empty() => r.to_path_buf(),
            _ => return Err(cfg_err(format!("{field}.path"), ConfigProblem::DeviceOutsideDev(path.clone()))),
        };
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(cfg_err(format!("{field}.type"), ConfigProblem::DeviceType("a".into())))
            }
        };
        let number = |n: i64, f: &str| {
            u32::try_from(n)
                .map(u64::from)
                .map_err(|_| cfg_err(format!("{field}.{f}"), ConfigProblem::DeviceNumber(n)))
        };
        let (major, minor) = if kind == SFlag::S_IFIFO {
            (0, 0)
        } else {
            (number(d.major(), "major")?, number(d.minor(), "minor")?)
        };
        let dev = DevicePlan {
            rel,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        // A configured device replaces a default one of the same path;
        // /dev/ptmx is always the pts/ptmx symlink (as in runc).
        out.retain(|o| o.rel != dev.rel);
        if dev.rel != Path::new("ptmx") {
            out.push(dev);
        }
    }
    Ok(out)
}

fn abs_list(list: Option<&Vec<String>>, field: &str) -> Result<Vec<PathBuf>> {
    list.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| clean_abs(Path::new(OsStr::new(p)), &format!("{field}[{i}]")))
        .collect()
}
