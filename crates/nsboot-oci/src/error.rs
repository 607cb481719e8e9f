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

/// What kind of error an [`ErrorRecord`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorKind {
    Config = 1,
    Step = 2,
    Exec = 3,
    Hook = 4,
    Caller = 5,
    /// An error of another crate (the rootfs code) sent the same way.
    Other = 6,
}

impl ErrorKind {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => ErrorKind::Config,
            2 => ErrorKind::Step,
            3 => ErrorKind::Exec,
            4 => ErrorKind::Hook,
            5 => ErrorKind::Caller,
            6 => ErrorKind::Other,
            _ => return None,
        })
    }
}

/// An error as it crosses from the container process to the runtime (a
/// pipe; no serde: a fixed little-endian header, then the message):
///
/// ```text
/// u32 kind | i32 errno (0: none) | i32 exit status | u32 length | message (UTF-8, at most 4096 bytes)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRecord {
    pub kind: ErrorKind,
    pub errno: Option<Errno>,
    /// The status the container process exits with.
    pub exit_code: i32,
    /// The error's Display text (names the key, path or syscall).
    pub message: String,
}

/// Why bytes are not an [`ErrorRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("error record: {0} bytes, shorter than its header or its length field says")]
    Short(usize),
    #[error("error record: unknown kind {0}")]
    Kind(u32),
    #[error("error record: message of {0} bytes, more than 4096")]
    TooLong(u32),
    #[error("error record: {0} bytes after the message")]
    Trailing(usize),
}

impl ErrorRecord {
    pub const MAX_MESSAGE: usize = 4096;
    const HEADER: usize = 16;

    /// A record for an error of another crate.
    pub fn other(message: &dyn std::fmt::Display, errno: Option<Errno>, exit_code: i32) -> Self {
        ErrorRecord { kind: ErrorKind::Other, errno, exit_code, message: message.to_string() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut msg = self.message.as_bytes();
        if msg.len() > Self::MAX_MESSAGE {
            // Cut at a character boundary.
            let mut end = Self::MAX_MESSAGE;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            msg = &msg[..end];
        }
        let mut out = Vec::with_capacity(Self::HEADER + msg.len());
        out.extend_from_slice(&(self.kind as u32).to_le_bytes());
        out.extend_from_slice(&self.errno.map_or(0, |e| e as i32).to_le_bytes());
        out.extend_from_slice(&self.exit_code.to_le_bytes());
        out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        out.extend_from_slice(msg);
        out
    }

    /// Decode exactly one record (every length checked).
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let word = |i: usize| -> Result<[u8; 4], RecordError> {
            b.get(i..i + 4).and_then(|s| s.try_into().ok()).ok_or(RecordError::Short(b.len()))
        };
        let kind_raw = u32::from_le_bytes(word(0)?);
        let errno = i32::from_le_bytes(word(4)?);
        let exit_code = i32::from_le_bytes(word(8)?);
        let len = u32::from_le_bytes(word(12)?);
        if len as usize > Self::MAX_MESSAGE {
            return Err(RecordError::TooLong(len));
        }
        let kind = ErrorKind::from_u32(kind_raw).ok_or(RecordError::Kind(kind_raw))?;
        let end = Self::HEADER + len as usize;
        let msg = b.get(Self::HEADER..end).ok_or(RecordError::Short(b.len()))?;
        if b.len() > end {
            return Err(RecordError::Trailing(b.len() - end));
        }
        Ok(ErrorRecord {
            kind,
            errno: (errno != 0).then(|| Errno::from_raw(errno)),
            exit_code,
            message: String::from_utf8_lossy(msg).into_owned(),
        })
    }
}

impl OciError {
    /// This error as a record for the runtime.
    pub fn record(&self) -> ErrorRecord {
        let kind = match self {
            OciError::Config(_) => ErrorKind::Config,
            OciError::Step(_) => ErrorKind::Step,
            OciError::Exec(_) => ErrorKind::Exec,
            OciError::Hook(_) => ErrorKind::Hook,
            OciError::Caller { .. } => ErrorKind::Caller,
        };
        ErrorRecord { kind, errno: self.errno(), exit_code: self.exit_code(), message: self.to_string() }
    }
}

pub(crate) fn step(step: &'static str, target: impl Into<String>) -> impl FnOnce(Errno) -> OciError {
    move |errno| OciError::Step(StepError { step, target: target.into(), errno })
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let e = OciError::from(ExecError::Failed { path: "/bin/x".into(), errno: Errno::EACCES });
        let r = e.record();
        assert_eq!(r.kind, ErrorKind::Exec);
        assert_eq!(r.exit_code, 126);
        let b = r.encode();
        assert_eq!(ErrorRecord::decode(&b), Ok(r));
    }

    #[test]
    fn record_decoding_checks_every_length() {
        let r = ErrorRecord::other(&"m\u{e9}ssage", None, 125);
        let b = r.encode();
        for n in 0..b.len() {
            assert!(ErrorRecord::decode(&b[..n]).is_err(), "{n} bytes accepted");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(ErrorRecord::decode(&long), Err(RecordError::Trailing(1)));
        let mut bad = b.clone();
        bad[0] = 9;
        assert_eq!(ErrorRecord::decode(&bad), Err(RecordError::Kind(9)));
        let mut huge = b;
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ErrorRecord::decode(&huge), Err(RecordError::TooLong(u32::MAX)));
        // Cut at a character boundary.
        let big = ErrorRecord::other(&"\u{e9}".repeat(3000), None, 1).encode();
        let d = ErrorRecord::decode(&big).unwrap();
        assert_eq!(d.message.len(), 4096);
    }
}
