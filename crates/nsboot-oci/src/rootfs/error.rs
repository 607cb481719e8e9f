//! Errors of the rootfs stage: one variant per step, each naming the
//! operation, the path (as the container sees it) and the kernel's errno.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;

/// The operation that failed inside a step (the syscall, mostly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    Open,
    Resolve,
    Mkdir,
    Create,
    Mount,
    Bind,
    Remount,
    Propagation,
    Unmount,
    Stat,
    Statfs,
    Mknod,
    Chown,
    Chmod,
    Unlink,
    Symlink,
    Readlink,
    Read,
    Copy,
    Xattr,
    Readdir,
    Utimes,
    Chdir,
    Chroot,
    PivotRoot,
    MoveMount,
    CloneTree,
    SetAttr,
    Fsopen,
    Fsconfig,
    Fsmount,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::Open => "open",
            Op::Resolve => "resolve",
            Op::Mkdir => "mkdir",
            Op::Create => "create",
            Op::Mount => "mount",
            Op::Bind => "bind",
            Op::Remount => "remount",
            Op::Propagation => "set propagation of",
            Op::Unmount => "umount",
            Op::Stat => "stat",
            Op::Statfs => "statfs",
            Op::Mknod => "mknod",
            Op::Chown => "chown",
            Op::Chmod => "chmod",
            Op::Unlink => "unlink",
            Op::Symlink => "symlink",
            Op::Readlink => "readlink",
            Op::Read => "read",
            Op::Copy => "copy",
            Op::Xattr => "copy xattrs of",
            Op::Readdir => "readdir",
            Op::Utimes => "set times of",
            Op::Chdir => "chdir",
            Op::Chroot => "chroot",
            Op::PivotRoot => "pivot_root",
            Op::MoveMount => "move_mount",
            Op::CloneTree => "open_tree",
            Op::SetAttr => "mount_setattr",
            Op::Fsopen => "fsopen",
            Op::Fsconfig => "fsconfig",
            Op::Fsmount => "fsmount",
        };
        f.write_str(s)
    }
}

/// Why a configuration was rejected (before any mount).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// A required field is absent.
    Missing,
    /// A path that must be absolute is not.
    RelativePath(PathBuf),
    /// A string contains a NUL byte.
    Nul,
    /// A mount over the container's `/` itself.
    MountOnRoot,
    /// `mounts[i].type` is not one nsboot knows how to mount.
    UnknownType(String),
    /// `mounts[i].options[j]` is neither a flag nor a data key of that type.
    UnknownOption(String),
    /// A bind mount without a source.
    NoSource,
    /// A mount below `/proc` other than the lxcfs-style files runc allows,
    /// or a non-proc mount on `/proc` itself.
    InsideProc(PathBuf),
    /// A device path that is not below `/dev` (or contains `..`).
    DeviceOutsideDev(PathBuf),
    /// A device type other than c, b, u, p.
    DeviceType(String),
    /// A negative or too large major/minor.
    DeviceNumber(i64),
    /// `linux.rootfsPropagation` is not a propagation mode.
    Propagation(String),
    /// The spec asks for no new mount namespace.
    NoMountNamespace,
    /// hostname/domainname without a UTS namespace.
    NoUtsNamespace,
    /// `root.path` could not be resolved on the host.
    Root(Errno),
    /// `root.path` is not a directory.
    RootNotDirectory,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::RelativePath(p) => write!(f, "relative path \"{}\"", nsboot::text::Raw(p.as_os_str().as_bytes())),
            Self::Nul => f.write_str("contains a NUL byte"),
            Self::MountOnRoot => f.write_str("cannot mount over the container's /"),
            Self::UnknownType(t) => write!(f, "unknown mount type \"{t}\""),
            Self::UnknownOption(o) => write!(f, "unknown mount option \"{o}\""),
            Self::NoSource => f.write_str("bind mount without a source"),
            Self::InsideProc(p) => write!(f, "\"{}\" cannot be mounted over or inside /proc", nsboot::text::Raw(p.as_os_str().as_bytes())),
            Self::DeviceOutsideDev(p) => write!(f, "device path \"{}\" is not below /dev", nsboot::text::Raw(p.as_os_str().as_bytes())),
            Self::DeviceType(t) => write!(f, "device type \"{t}\" is not one of c, b, u, p"),
            Self::DeviceNumber(n) => write!(f, "device number {n} out of range"),
            Self::Propagation(p) => write!(f, "unknown propagation \"{p}\""),
            Self::NoMountNamespace => {
                f.write_str("no mount namespace: the rootfs stage only runs in a new mount namespace")
            }
            Self::NoUtsNamespace => f.write_str("set, but linux.namespaces has no uts namespace"),
            Self::Root(e) => write!(f, "cannot resolve: {e}"),
            Self::RootNotDirectory => f.write_str("not a directory"),
        }
    }
}

/// A rejected configuration: the JSON field (`mounts[3].destination`) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: ConfigProblem,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, problem: ConfigProblem) -> Self {
        Self { field: field.into(), problem }
    }
}

/// A safety check that refused to go on (there is no kernel errno).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// proc/sysfs may only be mounted on an ordinary directory.
    NotOrdinaryDirectory,
    /// The resolved destination sits on procfs but is not an allowed file.
    InsideProc,
    /// `/dev/null` in the container is not the character device 1:3.
    NotDevNull(String),
    /// `/proc` is not a procfs.
    NotProcfs,
    /// The caller shares its mount namespace with PID 1.
    NotNewMountNamespace,
    /// The destination resolved to the container's `/` itself.
    ResolvesToRoot,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOrdinaryDirectory => f.write_str("must be mounted on an ordinary directory"),
            Self::InsideProc => f.write_str("destination resolves inside /proc"),
            Self::NotDevNull(found) => write!(f, "not the character device 1:3 but {found}"),
            Self::NotProcfs => f.write_str("not a procfs"),
            Self::NotNewMountNamespace => {
                f.write_str("caller is in PID 1's mount namespace; prepare() needs a new one")
            }
            Self::ResolvesToRoot => f.write_str("destination resolves to the container's /"),
        }
    }
}

/// Everything `RootfsPlan::from_*` and [`prepare`](super::prepare) can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// The spec was rejected before the first mount.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// config.json is not a valid runtime spec.
    #[error("config.json: {0}")]
    Json(#[source] serde_json::Error),
    /// procfs handle and namespace checks, before step 1.
    #[error("procfs {path}: {op}: {errno}")]
    Proc { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 1: propagation of `/` and the rbind of the rootfs onto itself.
    #[error("prepare root: {op} {path}: {errno}")]
    Root { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 2: one of `mounts` (its index in the spec).
    #[error("mounts[{index}]: {op} {fstype} on {path}: {errno}")]
    Mount { index: usize, op: Op, fstype: String, path: PathBuf, #[source] errno: Errno },
    /// Step 3: resolving or creating a path inside the rootfs.
    #[error("{op} {path} in rootfs: {errno}")]
    Path { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 2 (tmpcopyup): copying the image's content into the tmpfs.
    #[error("tmpcopyup {path}: {op} {entry}: {errno}")]
    CopyUp { path: PathBuf, op: Op, entry: PathBuf, #[source] errno: Errno },
    /// Step 4: a device node or a /dev symlink.
    #[error("device {path}: {op}: {errno}")]
    Device { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 5: pivot_root / MS_MOVE + chroot.
    #[error("pivot: {op} {path}: {errno}")]
    Pivot { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 5: process.cwd.
    #[error("process.cwd: {op} {path}: {errno}")]
    Cwd { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 6: root.readonly, a read-only tmpfs, or linux.readonlyPaths.
    #[error("readonly: {op} {path}: {errno}")]
    Readonly { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 6: linux.maskedPaths.
    #[error("maskedPaths: {op} {path}: {errno}")]
    Mask { op: Op, path: PathBuf, #[source] errno: Errno },
    /// Step 7: sethostname.
    #[error("sethostname \"{name}\": {errno}")]
    Hostname { name: String, #[source] errno: Errno },
    /// Step 7: setdomainname.
    #[error("setdomainname \"{name}\": {errno}")]
    Domainname { name: String, #[source] errno: Errno },
    /// A safety check refused the operation (no errno from the kernel).
    #[error("{path}: refused: {reason}")]
    Refused { path: PathBuf, reason: Refusal },
}

impl RootfsError {
    /// The kernel errno behind this error, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Proc { errno, .. }
            | Self::Root { errno, .. }
            | Self::Mount { errno, .. }
            | Self::Path { errno, .. }
            | Self::CopyUp { errno, .. }
            | Self::Device { errno, .. }
            | Self::Pivot { errno, .. }
            | Self::Cwd { errno, .. }
            | Self::Readonly { errno, .. }
            | Self::Mask { errno, .. }
            | Self::Hostname { errno, .. }
            | Self::Domainname { errno, .. } => Some(*errno),
            Self::Config(ConfigError { problem: ConfigProblem::Root(e), .. }) => Some(*e),
            Self::Config(_) | Self::Json(_) | Self::Refused { .. } => None,
        }
    }
}

/// Result alias of the rootfs module.
pub type Result<T> = std::result::Result<T, RootfsError>;
