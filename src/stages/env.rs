//! The environment a bootstrap reads: `_LIBCONTAINER_*` variables (runc's
//! names) and nsboot's own `NSBOOT_DIALECT` override.
//!
//! # Which runc is calling
//!
//! The dialect must be known before the first byte is written (runc 1.1
//! expects a leading `\0`, runc ≥ 1.2 chokes on it), so it cannot come from
//! the message. The rule ([`dialect_from`]), first match wins:
//!
//! 1. The program fixed it when it was built: it defines
//!    `const int nsboot_bootstrap_dialect` (`NSBOOT_DIALECT_RUNC_1_1` = 0 or
//!    `NSBOOT_DIALECT_RUNC_1_2` = 1; any other value is a fatal error),
//!    read through a weak reference ([`crate::sys::link`]). A runc ≥ 1.2
//!    drop-in does this, so it needs no variable from anyone. The build
//!    wins over `NSBOOT_DIALECT` without an error: the binary knows which
//!    runc it is, while an environment variable is inherited down a whole
//!    process tree and may have been meant for another runc; a bootstrap
//!    that disagrees with it logs one debug line saying so.
//! 2. `NSBOOT_DIALECT` set and non-empty: `1.1`/`runc-1.1` or
//!    `1.2`/`runc-1.2`; anything else is a fatal error.
//! 3. `_LIBCONTAINER_SYNCPIPE` set and non-empty: runc ≥ 1.2. libcontainer's
//!    `newParentProcess` (`libcontainer/container_linux.go`) sets it for
//!    every `runc init` (standard and setns) in every release from v1.2.0 to
//!    v1.5.1, next to `_LIBCONTAINER_INITPIPE`; no runc 1.1.x release sets
//!    it (it came with commit 8da42aaec "sync: split init config (stream)
//!    and synchronisation (seqpacket) pipes"). nsboot never reads or touches
//!    that fd: it belongs to the Go side of `runc init`.
//! 4. Otherwise runc 1.1 (Debian 12's runc, nsboot's default).

use std::ffi::CStr;

use super::error::StageError;
use crate::log::Level;
use crate::sys::process::getenv;
use crate::wire::Dialect;

pub const INITPIPE: &CStr = c"_LIBCONTAINER_INITPIPE";
pub const LOGPIPE: &CStr = c"_LIBCONTAINER_LOGPIPE";
pub const LOGLEVEL: &CStr = c"_LIBCONTAINER_LOGLEVEL";
pub const MOUNT_FDS: &CStr = c"_LIBCONTAINER_MOUNT_FDS";
/// Test hook: stop at the named point of the stage protocol until SIGUSR2.
pub const STOP_AT: &CStr = c"NSBOOT_TEST_STOP_AT";
/// Explicit dialect override: `1.1` or `1.2` (also `runc-1.1`, `runc-1.2`).
pub const DIALECT: &CStr = c"NSBOOT_DIALECT";
/// Set by runc ≥ 1.2's Go side (never by runc 1.1): the dialect signal.
pub const SYNCPIPE: &CStr = c"_LIBCONTAINER_SYNCPIPE";

/// What the caller told us through the environment.
#[derive(Debug, Clone)]
pub struct BootEnv {
    pub init_fd: i32,
    pub log_fd: Option<i32>,
    pub log_level: Level,
    pub dialect: Dialect,
    /// `_LIBCONTAINER_MOUNT_FDS`, parsed (`-1` = no fd for that mount).
    pub mount_fds: Option<Vec<i32>>,
    /// `NSBOOT_TEST_STOP_AT`: a fault-injection point where the stage waits
    /// for SIGUSR2 (tests kill parties there). Unset in production.
    pub stop_at: Option<Vec<u8>>,
}

fn shown(v: &CStr) -> String {
    crate::text::raw_string(v.to_bytes())
}

/// Parse a non-negative decimal int like runc's `getenv_int`: `Ok(None)` when
/// unset or empty.
fn env_int(var: &'static CStr, name: &'static str) -> Result<Option<i32>, StageError> {
    let Some(v) = getenv(var) else { return Ok(None) };
    if v.is_empty() {
        return Ok(None);
    }
    let s = std::str::from_utf8(v.to_bytes()).map_err(|_| StageError::Env {
        var: name,
        value: shown(&v),
        reason: "not a number",
    })?;
    let n: i64 = s.parse().map_err(|_| StageError::Env {
        var: name,
        value: s.to_owned(),
        reason: "not a number",
    })?;
    if !(0..=i64::from(i32::MAX)).contains(&n) {
        return Err(StageError::Env { var: name, value: s.to_owned(), reason: "out of range" });
    }
    Ok(Some(n as i32))
}

/// `_LIBCONTAINER_INITPIPE` alone: `Ok(None)` means "not a bootstrap".
pub fn init_pipe() -> Result<Option<i32>, StageError> {
    env_int(INITPIPE, "_LIBCONTAINER_INITPIPE")
}

/// Read the rest of the environment (after the init pipe said "bootstrap").
pub fn read(init_fd: i32) -> Result<BootEnv, StageError> {
    if !crate::sys::process::fd_is_open(init_fd) {
        return Err(StageError::Env {
            var: "_LIBCONTAINER_INITPIPE",
            value: init_fd.to_string(),
            reason: "not an open file descriptor",
        });
    }
    let log_fd = env_int(LOGPIPE, "_LIBCONTAINER_LOGPIPE")?;
    let log_level = match env_int(LOGLEVEL, "_LIBCONTAINER_LOGLEVEL")? {
        None => Level::Debug,
        Some(n) => Level::from_number(n as u32).ok_or(StageError::Env {
            var: "_LIBCONTAINER_LOGLEVEL",
            value: n.to_string(),
            reason: "not a level 0..6",
        })?,
    };
    let dialect = detect_dialect()?;
    let mount_fds = match getenv(MOUNT_FDS) {
        None => None,
        Some(v) => Some(parse_mount_fds(v.to_bytes()).map_err(|reason| StageError::Env {
            var: "_LIBCONTAINER_MOUNT_FDS",
            value: shown(&v),
            reason,
        })?),
    };
    let stop_at = getenv(STOP_AT).map(|v| v.to_bytes().to_vec());
    Ok(BootEnv { init_fd, log_fd, log_level, dialect, mount_fds, stop_at })
}

/// Which runc speaks to us, from the program's build and the environment
/// (see the module docs).
pub fn detect_dialect() -> Result<Dialect, StageError> {
    let over = getenv(DIALECT);
    let sync = getenv(SYNCPIPE);
    dialect_from(
        crate::sys::link::bootstrap_dialect(),
        over.as_deref().map(CStr::to_bytes),
        sync.as_deref().map(CStr::to_bytes),
    )
}

/// The debug line owed when the program's build overrode a non-empty
/// `NSBOOT_DIALECT` that says otherwise (see the module docs).
pub fn overridden_env_note(chosen: Dialect) -> Option<String> {
    crate::sys::link::bootstrap_dialect()?;
    let over = getenv(DIALECT)?;
    let said = dialect_from(None, Some(over.to_bytes()), None).ok();
    (said != Some(chosen)).then(|| {
        format!(
            "the program was built for the {} dialect (nsboot_bootstrap_dialect); NSBOOT_DIALECT={} ignored",
            if chosen == Dialect::Runc11 { "runc 1.1" } else { "runc >= 1.2" },
            String::from_utf8_lossy(over.to_bytes())
        )
    })
}

/// The detection rule on the value of the program's
/// `nsboot_bootstrap_dialect` (`None` = not defined) and the raw values of
/// `NSBOOT_DIALECT` and `_LIBCONTAINER_SYNCPIPE` (`None` = unset). An empty
/// value counts as unset.
pub fn dialect_from(built: Option<i32>, over: Option<&[u8]>, syncpipe: Option<&[u8]>) -> Result<Dialect, StageError> {
    match built {
        None => {}
        Some(0) => return Ok(Dialect::Runc11),
        Some(1) => return Ok(Dialect::Runc12),
        Some(v) => return Err(StageError::LinkDialect(v)),
    }
    match over {
        None | Some(b"") => {}
        Some(b"1.1" | b"runc-1.1") => return Ok(Dialect::Runc11),
        Some(b"1.2" | b"runc-1.2") => return Ok(Dialect::Runc12),
        Some(v) => {
            return Err(StageError::Env {
                var: "NSBOOT_DIALECT",
                value: crate::text::raw_string(v),
                reason: "expected 1.1 or 1.2",
            })
        }
    }
    match syncpipe {
        Some(v) if !v.is_empty() => Ok(Dialect::Runc12),
        _ => Ok(Dialect::Runc11),
    }
}

/// Parse a JSON array of ints (`[3,-1,5]`), strictly.
pub fn parse_mount_fds(s: &[u8]) -> Result<Vec<i32>, &'static str> {
    let v = crate::wire::json::int_array(s).map_err(|_| "not a JSON array of integers")?;
    v.into_iter()
        .map(|n| {
            if n == -1 || (0..=i64::from(i32::MAX)).contains(&n) {
                Ok(n as i32)
            } else {
                Err("fd out of range")
            }
        })
        .collect()
}

impl BootEnv {
    /// Fault-injection point: if `NSBOOT_TEST_STOP_AT` names `point`, this
    /// process renames itself `nsboot-stopped` and waits for SIGUSR2, so a
    /// test can kill any party exactly here, then release this one (SIGUSR2)
    /// to see how it copes with what the kill left behind. A process never
    /// released stays here until it is killed. (Not SIGSTOP: PID 1 of a new
    /// PID namespace ignores signals it sends itself; a *blocked* SIGUSR2 is
    /// queued even for such a PID 1, which drops unhandled default-action
    /// signals.) Costs one comparison when the variable is unset.
    pub fn fault_point(&self, point: &str) {
        if self.stop_at.as_deref() == Some(point.as_bytes()) {
            stop_here();
        }
    }
}

#[cold]
fn stop_here() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let old_name = nix::sys::prctl::get_name().ok();
    let mut usr2 = SigSet::empty();
    usr2.add(Signal::SIGUSR2);
    let mut old_mask = SigSet::empty();
    let blocked = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr2), Some(&mut old_mask)).is_ok();
    let _ = nix::sys::prctl::set_name(c"nsboot-stopped");
    if blocked {
        // Also released by the caller's death (a stopped stage stands for
        // one busy right here: it goes on and meets the dead caller at its
        // next wait, as it would without the stop).
        match (super::watch::raw_pidfd(), nix::sys::signalfd::SignalFd::with_flags(&usr2, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)) {
            (Some(caller), Ok(sfd)) => {
                use std::os::fd::AsRawFd;
                if let Ok([true, _]) = crate::sys::process::poll_in([sfd.as_raw_fd(), caller], -1) {
                    let _ = sfd.read_signal();
                }
            }
            _ => {
                let _ = crate::sys::signal::wait_signal(&usr2);
            }
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    } else {
        loop {
            nix::unistd::pause();
        }
    }
    if let Some(n) = old_name {
        let _ = nix::sys::prctl::set_name(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_rule() {
        use Dialect::*;
        let dialect_from = |over, sync| dialect_from(None, over, sync);
        // Nothing said: runc 1.1.
        assert_eq!(dialect_from(None, None).unwrap(), Runc11);
        // runc >= 1.2's libcontainer sets _LIBCONTAINER_SYNCPIPE.
        assert_eq!(dialect_from(None, Some(b"4")).unwrap(), Runc12);
        assert_eq!(dialect_from(Some(b""), Some(b"4")).unwrap(), Runc12);
        assert_eq!(dialect_from(None, Some(b"")).unwrap(), Runc11);
        // The override wins both ways.
        assert_eq!(dialect_from(Some(b"1.1"), Some(b"4")).unwrap(), Runc11);
        assert_eq!(dialect_from(Some(b"runc-1.1"), None).unwrap(), Runc11);
        assert_eq!(dialect_from(Some(b"1.2"), None).unwrap(), Runc12);
        assert_eq!(dialect_from(Some(b"runc-1.2"), Some(b"4")).unwrap(), Runc12);
        for bad in [&b"1.3"[..], b"2", b"runc", b" 1.2"] {
            let e = dialect_from(Some(bad), Some(b"4")).unwrap_err();
            assert!(e.to_string().contains("NSBOOT_DIALECT"), "{e}");
        }
    }

    #[test]
    fn the_build_wins_over_the_environment() {
        use Dialect::*;
        for (over, sync) in [(None, None), (Some(&b"1.1"[..]), None), (Some(b"bogus"), None), (None, Some(&b"4"[..]))] {
            assert_eq!(dialect_from(Some(1), over, sync).unwrap(), Runc12);
        }
        for (over, sync) in [(None, None), (Some(&b"1.2"[..]), Some(&b"4"[..])), (None, Some(b"4"))] {
            assert_eq!(dialect_from(Some(0), over, sync).unwrap(), Runc11);
        }
        for bad in [2, -1, 12] {
            let e = dialect_from(Some(bad), None, None).unwrap_err().to_string();
            assert!(e.contains("nsboot_bootstrap_dialect") && e.contains(&bad.to_string()), "{e}");
        }
    }

    #[test]
    fn mount_fds() {
        assert_eq!(parse_mount_fds(b"[3,-1, 5]").unwrap(), vec![3, -1, 5]);
        assert_eq!(parse_mount_fds(b"[]").unwrap(), Vec::<i32>::new());
        assert!(parse_mount_fds(b"[3").is_err());
        assert!(parse_mount_fds(b"3").is_err());
        assert!(parse_mount_fds(b"[-2]").is_err());
        assert!(parse_mount_fds(b"[\"a\"]").is_err());
    }
}
