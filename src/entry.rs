//! The bootstrap entry point shared by every surface: the ELF constructor,
//! the exported `nsexec()`, and the Rust API.
//!
//! Runs at most once per process: the constructor and an explicit call never
//! both run the bootstrap.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::stages::{self, SingleThreaded, StageError};

static STARTED: AtomicBool = AtomicBool::new(false);

/// What [`nsexec`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `_LIBCONTAINER_INITPIPE` is unset or empty: nothing was touched.
    NotRequested,
    /// This process is stage-2, inside the requested namespaces (the
    /// bootstrap ran in this call, or already in the library's constructor:
    /// a second call reports the same and does nothing).
    InContainer,
}

/// runc's `nsexec()`: if the environment asks for a bootstrap, run it.
///
/// Returns only when there is nothing to do or in stage-2; stage-0 and
/// stage-1 exit inside, and any failure exits 1 after a fatal log line.
/// Must be called before the process starts threads (first thing in
/// `main`, or from a constructor); a multi-threaded caller gets a fatal
/// error instead of undefined behaviour.
pub fn nsexec() -> Outcome {
    let init_fd = match stages::env::init_pipe() {
        Ok(None) => return Outcome::NotRequested,
        Ok(Some(fd)) => fd,
        Err(e) => stages::die(&e),
    };
    if STARTED.swap(true, Ordering::SeqCst) {
        // Only stage-2 returns from a bootstrap, so a process that gets here
        // again is the container process.
        return Outcome::InContainer;
    }
    let env = match stages::env::read(init_fd) {
        Ok(env) => env,
        Err(e) => stages::die(&e),
    };
    crate::log::configure(env.log_fd, env.log_level);
    let Some(token) = SingleThreaded::check() else {
        stages::die(&StageError::Plan(
            "the process has more than one thread: the bootstrap must run before threads start".to_owned(),
        ))
    };
    stages::run_to_stage2(&env, &token);
    Outcome::InContainer
}
