//! `process.args` → `execve`, with runc's PATH search (Go's
//! `exec.LookPath` over the `PATH` of `process.env`, done inside the
//! container after the rootfs is its `/`).

use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::sys::stat::{stat, SFlag};

use crate::error::{ConfigError, ExecError, OciError, Result};

/// Where the program is looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// `args[0]` has a `/`: executed as given (relative to `cwd`).
    Path(CString),
    /// `args[0]` is a bare name: `<dir>/<name>` for each `PATH` directory
    /// (an empty entry meaning `.`), in order; no `PATH`, no candidate.
    Search { name: String, candidates: Vec<CString> },
}

impl Program {
    pub(crate) fn plan(arg0: &str, env: &[String]) -> Result<Self> {
        let nul = |_| {
            OciError::from(ConfigError::Invalid {
                key: "process.args[0]".into(),
                value: arg0.into(),
                problem: "contains a NUL byte",
            })
        };
        if arg0.contains('/') {
            return Ok(Program::Path(CString::new(arg0).map_err(nul)?));
        }
        // The last PATH= wins, as with a process environment built by
        // successive setenv calls (runc's populateProcessEnvironment).
        let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH="));
        let mut candidates = Vec::new();
        for dir in path.unwrap_or("").split(':').filter(|_| path.is_some()) {
            let dir = if dir.is_empty() { "." } else { dir };
            candidates.push(CString::new(format!("{dir}/{arg0}")).map_err(nul)?);
        }
        Ok(Program::Search { name: arg0.to_owned(), candidates })
    }

    /// The file to execve: the first candidate that is a regular file with
    /// an execute bit (Go's findExecutable). A candidate that exists but
    /// cannot be executed makes "not found" a permission error (126), as
    /// a shell reports it.
    pub fn resolve(&self) -> Result<&CStr, ExecError> {
        let (name, candidates) = match self {
            Program::Path(p) => return Ok(p.as_c_str()),
            Program::Search { name, candidates } => (name, candidates),
        };
        let mut denied: Option<&CStr> = None;
        for c in candidates {
            let Ok(st) = stat(c.as_c_str()) else { continue };
            let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
            if fmt == SFlag::S_IFREG && st.st_mode & 0o111 != 0 {
                return Ok(c.as_c_str());
            }
            if denied.is_none() && fmt != SFlag::S_IFDIR {
                denied = Some(c.as_c_str());
            }
        }
        match denied {
            Some(p) => Err(ExecError::Failed { path: p.to_string_lossy().into_owned(), errno: Errno::EACCES }),
            None => Err(ExecError::NotFound { program: name.clone() }),
        }
    }
}

/// `execve(path, args, env)`; returns only on failure.
pub fn execve(path: &CStr, args: &[CString], env: &[CString]) -> ExecError {
    let errno = match nix::unistd::execve(path, args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    ExecError::Failed { path: path.to_string_lossy().into_owned(), errno }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_list_follows_path() {
        let env = vec!["PATH=/a:/b".to_owned(), "X=1".to_owned(), "PATH=/usr/bin::/bin".to_owned()];
        let Program::Search { candidates, .. } = Program::plan("sh", &env).unwrap() else { panic!() };
        let c: Vec<&str> = candidates.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(c, ["/usr/bin/sh", "./sh", "/bin/sh"]);
        assert!(matches!(Program::plan("./x", &env).unwrap(), Program::Path(_)));
        let Program::Search { candidates, .. } = Program::plan("sh", &[]).unwrap() else { panic!() };
        assert!(candidates.is_empty());
    }

    #[test]
    fn resolve_on_this_host() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_owned()];
        assert!(Program::plan("sh", &env).unwrap().resolve().is_ok());
        let e = Program::plan("no-such-program-here", &env).unwrap().resolve().unwrap_err();
        assert_eq!(e.exit_code(), 127);
        // A file that exists without an execute bit: 126.
        let dir = std::env::temp_dir().join(format!("nsboot-oci-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plain"), "").unwrap();
        let env = vec![format!("PATH={}", dir.display())];
        let e = Program::plan("plain", &env).unwrap().resolve().unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.exit_code(), 126, "{e}");
    }
}
