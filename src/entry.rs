//! The bootstrap entry point shared by every surface: the ELF constructor,
//! the exported `nsexec()`, and the Rust API.
//!
//! Runs at most once per process: the constructor and an explicit call never
//! both run the bootstrap.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::stages::{self, SingleThreaded, StageError};

static STARTED: AtomicBool = AtomicBool::new(false);
/// Set once the bootstrap has returned in stage-2: this process (and any
/// fork of it) is inside the namespaces.
static IN_STAGE2: AtomicBool = AtomicBool::new(false);

/// What [`nsexec`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `_LIBCONTAINER_INITPIPE` is unset or empty: nothing was touched.
    NotRequested,
    /// The bootstrap is already running in this process and has not
    /// reached stage-2 (a re-entrant call): nothing more was done.
    AlreadyRan,
    /// This process is stage-2, inside the requested namespaces: the
    /// bootstrap ran in this call, or earlier in the process (the library's
    /// ELF constructor runs it before `main`, so an explicit call from
    /// `main` reports where the process is rather than `AlreadyRan`).
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
        // Stage-0 and stage-1 never return from the bootstrap, and a
        // failure exits: a process that gets here after a completed run is
        // stage-2.
        return if IN_STAGE2.load(Ordering::SeqCst) { Outcome::InContainer } else { Outcome::AlreadyRan };
    }
    let env = match stages::env::read(init_fd) {
        Ok(env) => env,
        Err(e) => stages::die(&e),
    };
    crate::log::configure(env.log_fd, env.log_level);
    if let Some(note) = stages::env::overridden_env_note(env.dialect) {
        crate::log::log(crate::log::Level::Debug, &note);
    }
    let Some(token) = SingleThreaded::check() else {
        stages::die(&StageError::Plan(
            "the process has more than one thread: the bootstrap must run before threads start".to_owned(),
        ))
    };
    stages::run_to_stage2(&env, &token);
    IN_STAGE2.store(true, Ordering::SeqCst);
    Outcome::InContainer
}
