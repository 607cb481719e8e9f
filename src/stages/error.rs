//! Errors of the stage machine: one variant per operation, with the
//! context (path, namespace, pid) and the errno.

use nix::errno::Errno;

use super::sync::SyncError;
use crate::ns::NsKind;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("environment: {var}=\"{value}\": {reason}")]
    Env { var: &'static str, value: String, reason: &'static str },
    #[error("nsboot_bootstrap_dialect = {0}, defined by the program: expected 0 (NSBOOT_DIALECT_RUNC_1_1) or 1 (NSBOOT_DIALECT_RUNC_1_2)")]
    LinkDialect(i32),
    #[error("could not inform the parent we are past initial setup: {0}")]
    InitByte(Errno),
    #[error("reading the bootstrap message from the init pipe: {0}")]
    ReadMessage(Errno),
    #[error("bootstrap message: init pipe closed after {got} of {want} bytes")]
    ShortMessage { got: usize, want: usize },
    #[error("bootstrap message: {0}")]
    Wire(#[from] WireError),
    #[error("bootstrap plan: {0}")]
    Plan(String),
    #[error("bootstrap plan: {field}: time namespace offsets given, but CLONE_FLAGS does not create a time namespace to apply them to{}", if *joins_time { " (a joined time namespace keeps the offsets it was made with)" } else { "" })]
    TimeOffsetsWithoutTimens { field: &'static str, joins_time: bool },
    #[error("write /proc/self/oom_score_adj ({value}): {source}")]
    OomScoreAdj { value: i32, source: Errno },
    #[error("{op}: {source}")]
    Sys { op: &'static str, source: Errno },
    #[error("open {kind} namespace path \"{path}\": {source}")]
    OpenNs { kind: NsKind, path: String, source: Errno },
    #[error("setns to {kind} namespace \"{path}\": {source}")]
    Setns { kind: NsKind, path: String, source: Errno },
    #[error("unshare({flags:#x}) of {what}: {source}")]
    Unshare { flags: u32, what: String, source: Errno },
    #[error("{0}")]
    Sync(#[from] SyncError),
    #[error("write {path}: {source}")]
    ProcWrite { path: String, source: Errno },
    #[error("{what} helper \"{helper}\" for pid {pid}: {reason}")]
    MapHelper { what: &'static str, helper: String, pid: i32, reason: String },
    #[error("write pid JSON to the init pipe: {0}")]
    PidJson(Errno),
    #[error("mount source \"{path}\": {source}")]
    MountSource { path: String, source: Errno },
    #[error("install mount source fd at {fd}: {source}")]
    InstallFd { fd: i32, source: Errno },
    #[error("CVE-2019-5736 defence: {op}: {source}")]
    Seal { op: &'static str, source: Errno },
    #[error("rootfs: {0}")]
    Rootfs(#[from] crate::rootfs_plugin::RootfsFailure),
}

impl StageError {
    /// The errno behind the error, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            StageError::InitByte(e)
            | StageError::ReadMessage(e)
            | StageError::PidJson(e)
            | StageError::OomScoreAdj { source: e, .. }
            | StageError::Sys { source: e, .. }
            | StageError::OpenNs { source: e, .. }
            | StageError::Setns { source: e, .. }
            | StageError::Unshare { source: e, .. }
            | StageError::ProcWrite { source: e, .. }
            | StageError::MountSource { source: e, .. }
            | StageError::InstallFd { source: e, .. }
            | StageError::Seal { source: e, .. } => Some(*e),
            StageError::Sync(SyncError::Io { source, .. }) => Some(*source),
            StageError::Rootfs(e) => e.errno,
            _ => None,
        }
    }
}

/// Shorthand for `map_err` to [`StageError::Sys`].
pub fn sys(op: &'static str) -> impl FnOnce(Errno) -> StageError {
    move |source| StageError::Sys { op, source }
}
