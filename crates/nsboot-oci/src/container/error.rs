//! [`ContainerError`]: which step of create/start/kill/delete failed, on
//! what (config key, path, syscall), and the errno.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::cgroups::CgroupError;
use crate::error::{ErrorKind, ErrorRecord, HookError, OciError};
use crate::rootfs::RootfsError;
use crate::seccomp::SeccompError;

/// Everything [`crate::container`] returns.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The config was refused before anything was created (the message
    /// names the key).
    #[error(transparent)]
    Config(#[from] OciError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A fatal hook (`prestart`, `createRuntime`) of the runtime failed.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A runtime-side system call failed: `step` (`"fork"`, `"mkfifo"`,
    /// `"write uid_map"`, …) on `target` (a path, a pid, a namespace).
    #[error("{step} {target}: {errno}")]
    Sys { step: &'static str, target: String, errno: Errno },
    /// The container process failed (in the namespace process or the
    /// container's init): its record, sent across the stage boundary.
    #[error("container process: {}", .0.message)]
    Container(ErrorRecord),
    /// The state directory: missing, taken, unreadable.
    #[error("state {path}: {problem}")]
    State { path: PathBuf, problem: String },
    /// The operation does not fit the container's status (start of a
    /// running container, delete of a running one without force).
    #[error("container {id}: {problem}")]
    Status { id: String, problem: String },
}

impl ContainerError {
    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ContainerError::Config(e) => e.errno(),
            ContainerError::Rootfs(e) => e.errno(),
            ContainerError::Seccomp(SeccompError::Load { errno, .. }) => Some(*errno),
            ContainerError::Sys { errno, .. } => Some(*errno),
            ContainerError::Container(r) => r.errno,
            ContainerError::Hook(HookError::Spawn { errno, .. } | HookError::Io { errno, .. }) => Some(*errno),
            _ => None,
        }
    }

    /// The error as a record (what crosses the C ABI).
    pub fn record(&self) -> ErrorRecord {
        match self {
            ContainerError::Container(r) => r.clone(),
            ContainerError::Config(e) => e.record(),
            ContainerError::Hook(e) => ErrorRecord {
                kind: ErrorKind::Hook,
                errno: self.errno(),
                exit_code: 1,
                message: e.to_string(),
            },
            e => ErrorRecord::other(e, e.errno(), 1),
        }
    }

    /// Whether the config was refused before anything was done.
    pub fn refused(&self) -> bool {
        matches!(
            self,
            ContainerError::Config(OciError::Config(_))
                | ContainerError::Rootfs(RootfsError::Config(_) | RootfsError::Json(_))
                | ContainerError::Seccomp(
                    SeccompError::UnknownAction { .. }
                        | SeccompError::UnknownOperator { .. }
                        | SeccompError::UnknownFlag { .. }
                        | SeccompError::UnknownArch { .. }
                        | SeccompError::Invalid { .. }
                        | SeccompError::Json(_)
                )
                | ContainerError::Cgroup(CgroupError::Invalid { .. } | CgroupError::Unsupported { .. })
        )
    }
}

pub(crate) fn sys(step: &'static str, target: impl Into<String>) -> impl FnOnce(Errno) -> ContainerError {
    move |errno| ContainerError::Sys { step, target: target.into(), errno }
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;
