//! nsboot-runtime: an OCI runtime with runc's command line, over nsboot's
//! OCI crate. Each command is a separate process; the state lives under
//! `--root/<id>/` (see `state.rs`), and every command on a container holds
//! an flock on its directory.
//!
//! Errors: one line naming what and where, exit status 1. With `--log`
//! they also go to the log file, in `--log-format json` as runc's logrus
//! JSON (`{"level":"error","msg":...,"time":...}`), which conmon and
//! containerd-shim read.
#![deny(unsafe_code)]

mod cli;
mod container;
mod ops;
mod state;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

/// An error of a command: the one line that is printed.
#[derive(Debug)]
pub struct Error(pub String);

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error(s.into())
    }
    pub fn io(op: &str, path: &Path, e: std::io::Error) -> Error {
        Error(format!("{op} {}: {e}", path.display()))
    }
}

impl<E: std::fmt::Display> From<E> for Error {
    fn from(e: E) -> Error {
        Error(e.to_string())
    }
}

/// Where log lines go, and in which format.
pub struct Log {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

impl Log {
    pub fn write(&self, level: &str, msg: &str) {
        if level == "debug" && !self.debug {
            return;
        }
        let line = if self.json {
            format!("{}\n", serde_json::json!({"level": level, "msg": msg, "time": state::now_rfc3339()}))
        } else {
            format!("time=\"{}\" level={level} msg={:?}\n", state::now_rfc3339(), msg)
        };
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(f) {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None if level != "error" => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            None => {}
        }
    }
    /// Only into `--log` (for lines already printed on stderr).
    pub fn to_file(&self, level: &str, msg: &str) {
        if self.file.is_some() {
            self.write(level, msg)
        }
    }
    pub fn warn(&self, msg: &str) {
        self.write("warning", msg)
    }
    pub fn debug(&self, msg: &str) {
        self.write("debug", msg)
    }
}

fn main() {
    let args = cli::Cli::parse();
    let log = Log { file: args.log.clone(), json: args.log_format == cli::LogFormat::Json, debug: args.debug };
    match cli::dispatch(&args, &log) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let line = e.0.replace('\n', " ");
            log.write("error", &line);
            eprintln!("nsboot-runtime: {line}");
            std::process::exit(1)
        }
    }
}
