//! JSON log lines on runc's log pipe (`_LIBCONTAINER_LOGPIPE`).
//!
//! One object per line, exactly the keys `level` and `msg` (runc's Go side
//! decodes with `DisallowUnknownFields`), written with one `write(2)` and
//! best effort: a failed write is ignored. State is per process and set up
//! before any thread exists; stage children inherit it through fork.

use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

/// logrus levels, in runc's numbering (`_LIBCONTAINER_LOGLEVEL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Panic = 0,
    Fatal = 1,
    Error = 2,
    Warning = 3,
    Info = 4,
    Debug = 5,
    Trace = 6,
}

impl Level {
    pub fn from_number(n: u32) -> Option<Level> {
        Some(match n {
            0 => Level::Panic,
            1 => Level::Fatal,
            2 => Level::Error,
            3 => Level::Warning,
            4 => Level::Info,
            5 => Level::Debug,
            6 => Level::Trace,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::Panic => "panic",
            Level::Fatal => "fatal",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

static LOG_FD: AtomicI32 = AtomicI32::new(-1);
static LOG_LEVEL: AtomicU8 = AtomicU8::new(Level::Debug as u8);
/// 255 = setup (before the stages), else the stage number.
static STAGE: AtomicU8 = AtomicU8::new(255);

/// Direct log lines to `fd` (`None`: no log pipe, fatal errors go to stderr).
pub fn configure(fd: Option<RawFd>, level: Level) {
    LOG_FD.store(fd.unwrap_or(-1), Ordering::Relaxed);
    LOG_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The log fd, if one is configured.
pub fn log_fd() -> Option<RawFd> {
    let fd = LOG_FD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

/// Record which stage this process is (for the `nsexec-N[pid]` prefix).
pub fn set_stage(stage: u8) {
    STAGE.store(stage, Ordering::Relaxed);
}

/// The stage this process runs (255 before the stage machine started).
pub fn stage() -> u8 {
    STAGE.load(Ordering::Relaxed)
}

/// Append `s` to `out` as JSON string content.
pub fn json_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Build one log line (with trailing newline).
pub fn format_line(level: Level, stage: u8, pid: i32, msg: &str) -> String {
    let mut line = String::with_capacity(msg.len() + 64);
    line.push_str("{\"level\":\"");
    line.push_str(level.name());
    line.push_str("\", \"msg\": \"");
    let prefix = if stage == 255 {
        format!("nsexec[{pid}]: ")
    } else {
        format!("nsexec-{stage}[{pid}]: ")
    };
    json_escape(&mut line, &prefix);
    json_escape(&mut line, msg);
    line.push_str("\"}\n");
    line
}

/// Whether a line at `level` would be written (a log pipe is set and the
/// level passes): `nslog!` checks this before formatting anything.
pub fn enabled(level: Level) -> bool {
    log_fd().is_some() && level as u8 <= LOG_LEVEL.load(Ordering::Relaxed)
}

/// Log `msg` at `level` if a log pipe is set and the level passes.
pub fn log(level: Level, msg: &str) {
    let Some(fd) = log_fd() else { return };
    if level as u8 > LOG_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let line = format_line(level, STAGE.load(Ordering::Relaxed), std::process::id() as i32, msg);
    write_best_effort(fd, line.as_bytes());
}

/// Report a fatal error: a `fatal` JSON line on the log pipe, or
/// `FATAL: msg` on stderr when there is none (runc's `bail`).
pub fn fatal(msg: &str) {
    match log_fd() {
        Some(fd) => {
            let line =
                format_line(Level::Fatal, STAGE.load(Ordering::Relaxed), std::process::id() as i32, msg);
            write_best_effort(fd, line.as_bytes());
        }
        None => {
            let line = format!("FATAL: {msg}\n");
            write_best_effort(2, line.as_bytes());
        }
    }
}

fn write_best_effort(fd: RawFd, bytes: &[u8]) {
    let _ = crate::sys::process::write_all_raw(fd, bytes);
}

#[macro_export]
#[doc(hidden)]
macro_rules! nslog {
    ($lvl:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$lvl) {
            $crate::log::log($crate::log::Level::$lvl, &format!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_two_keys() {
        let l = format_line(Level::Debug, 1, 42, "say \"hi\"\n\u{1}");
        assert_eq!(
            l,
            "{\"level\":\"debug\", \"msg\": \"nsexec-1[42]: say \\\"hi\\\"\\n\\u0001\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 2);
        assert_eq!(obj["msg"], "nsexec-1[42]: say \"hi\"\n\u{1}");
    }

    #[test]
    fn setup_stage_has_no_number() {
        assert!(format_line(Level::Info, 255, 7, "x").contains("nsexec[7]: x"));
    }
}
