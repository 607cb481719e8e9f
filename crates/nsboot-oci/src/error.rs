//! The crate's error: one variant per kind of failure, each naming the
//! config key, path or syscall it is about.

use nix::errno::Errno;

/// What went wrong in a config, before anything was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// config.json is not JSON or not an OCI runtime spec.
    #[error("config.json: {0}")]
    Parse(String),
    /// A capability name runc does not know (`process.capabilities.*`).
    #[error("{key}: unknown capability {name:?}")]
    UnknownCapability { key: String, name: String },
    /// A value outside what the key allows.
    #[error("{key}: {value:?}: {problem}")]
    Invalid { key: String, value: String, problem: &'static str },
    /// A sysctl refused as runc refuses it.
    #[error("linux.sysctl {name:?}: {problem}")]
    Sysctl { name: String, problem: &'static str },
    /// A hook that cannot run (`hooks.<kind>[i].path`).
    #[error("hooks.{kind}[{index}].path {path:?}: {problem}")]
    Hook { kind: &'static str, index: usize, path: String, problem: String },
}

/// A step of [`crate::process::ProcessPlan::apply`] (or of the console
/// and hook code) that failed: which step, on what, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} {target}: {errno}")]
pub struct StepError {
    /// The operation (`"setrlimit"`, `"capset"`, `"write"`, …).
    pub step: &'static str,
    /// What it was applied to (a key, a path, a value).
    pub target: String,
    pub errno: Errno,
}

/// `execve` of the container's program failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// No such program: `args[0]` is not in any `PATH` directory (or the
    /// path given does not exist). Exit status 127.
    #[error("exec {program:?}: executable file not found in $PATH")]
    NotFound { program: String },
    /// execve itself failed. Exit status 126 for "found but cannot run"
    /// (EACCES, ENOEXEC, EPERM, …), 127 for ENOENT (a missing interpreter).
    #[error("exec {path:?}: {errno}")]
    Failed { path: String, errno: Errno },
}

impl ExecError {
    /// The exit status a shell (and runc's init) uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::Failed { errno: Errno::ENOENT | Errno::ENOTDIR, .. } => 127,
            ExecError::Failed { .. } => 126,
        }
    }
}

/// A hook failed (see [`crate::hooks`] for which kinds are fatal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("hooks.{kind}[{index}] {path:?}: spawn: {errno}")]
    Spawn { kind: &'static str, index: usize, path: String, errno: Errno },
    #[error("hooks.{kind}[{index}] {path:?}: {step}: {errno}")]
    Io { kind: &'static str, index: usize, path: String, step: &'static str, errno: Errno },
    #[error("hooks.{kind}[{index}] {path:?}: exit status {code}: {output}")]
    Exit { kind: &'static str, index: usize, path: String, code: i32, output: String },
    #[error("hooks.{kind}[{index}] {path:?}: killed by signal {signal}: {output}")]
    Signaled { kind: &'static str, index: usize, path: String, signal: i32, output: String },
    #[error("hooks.{kind}[{index}] {path:?}: timed out after {seconds}s (killed)")]
    Timeout { kind: &'static str, index: usize, path: String, seconds: i64 },
}

/// Everything this crate returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A caller-supplied step of the apply (seccomp, a sync) failed.
    #[error("{step}: {message}")]
    Caller { step: &'static str, message: String },
}

impl OciError {
    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            OciError::Step(s) => Some(s.errno),
            OciError::Exec(ExecError::Failed { errno, .. }) => Some(*errno),
            OciError::Hook(HookError::Spawn { errno, .. } | HookError::Io { errno, .. }) => Some(*errno),
            _ => None,
        }
    }

    /// The exit status a container process should end with for this
    /// error: 127/126 for exec failures (as shells and runc), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            OciError::Exec(e) => e.exit_code(),
            _ => 1,
        }
    }
}

pub(crate) fn step(step: &'static str, target: impl Into<String>) -> impl FnOnce(Errno) -> OciError {
    move |errno| OciError::Step(StepError { step, target: target.into(), errno })
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;
