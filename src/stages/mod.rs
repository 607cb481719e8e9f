//! The staged bootstrap: stage-0 (parent), stage-1 (child), stage-2 (init),
//! as runc's `nsexec.c` runs them and `shared/protocol.md` describes.
//!
//! [`run`] returns only in stage-2, inside the namespaces; stage-0 and
//! stage-1 end with `_exit`. Every failure is logged as one fatal line (log
//! pipe, or `FATAL: ...` on stderr) and exits 1 after stage-0 has killed the
//! stages it knows of. No stage outlives the caller *process* (a pidfd of
//! it polled beside every wait, see [`watch`]; a thread of the caller
//! exiting does nothing) or a sibling (a closed sync socket reads as EOF).

pub mod env;
pub mod error;
mod idmap;
mod message;
mod plan;
mod stage0;
mod stage1;
mod stage2;
pub mod sync;
pub mod watch;

pub use env::BootEnv;
pub use error::StageError;
pub use plan::{explain_message, Plan, Step};

use std::sync::atomic::{AtomicI32, Ordering};

use crate::log;

pub use crate::sys::process::SingleThreaded;

/// Run the whole bootstrap described by `env` and the message on its init
/// pipe. Returns only in stage-2 (the process handed back to the host
/// program); every other path ends the process.
pub fn run(env: &BootEnv, token: &SingleThreaded) -> ! {
    // A `!` function cannot return to the host; see `run_to_stage2`.
    run_to_stage2(env, token);
    crate::sys::process::exit_now(1)
}

/// Like [`run`], but returns `()` in stage-2.
pub fn run_to_stage2(env: &BootEnv, token: &SingleThreaded) {
    log::configure(env.log_fd, env.log_level);
    match stage0::prepare(env, token) {
        Ok(prepared) => stage0::fork_stages(env, prepared, token),
        Err(e) => die(&e),
    }
}

/// How a bootstrap whose config is already in memory differs from runc's.
#[derive(Debug, Clone, Copy)]
pub struct GivenOptions {
    /// stage-2 calls `setsid` (runc's behaviour). The LD_PRELOAD mode turns
    /// it off so the program keeps its terminal and process group.
    pub new_session: bool,
}

/// Run the stage machine on a config that is already decoded (the
/// LD_PRELOAD mode): no setup byte, no message on the init pipe; stage-0
/// still writes the pid JSON line to `env.init_fd` and everything else is
/// the same machine as [`run_to_stage2`]. Returns only in stage-2.
///
/// Unlike [`run_to_stage2`], this does not apply the CVE-2019-5736
/// defence: the caller decides (it must call
/// [`crate::sealed::ensure_sealed_self`] itself before anything that cannot
/// be repeated, since that re-executes the program).
pub fn run_config_to_stage2(env: &BootEnv, cfg: crate::wire::BootstrapConfig, opts: GivenOptions, token: &SingleThreaded) {
    log::configure(env.log_fd, env.log_level);
    arm_error_record(env.init_fd, &cfg);
    let prepared = Plan::new(cfg, env).and_then(|mut plan| {
        plan.new_session = opts.new_session;
        stage0::prepare_plan(plan)
    });
    match prepared {
        Ok(plan) => stage0::fork_stages(env, plan, token),
        Err(e) => die(&e),
    }
}

/// Where a failing stage writes its error record (the init socket, when
/// the caller set CALLER_FLAG_ERROR_RECORD); -1: nowhere. Set by stage-0
/// once the message is read, inherited by stage-1 and stage-2 through
/// fork, cleared before stage-2 returns to the host program.
static ERROR_RECORD_FD: AtomicI32 = AtomicI32::new(-1);

/// Send error records to `fd` from now on, if `cfg` asks for them.
pub(crate) fn arm_error_record(fd: i32, cfg: &crate::wire::BootstrapConfig) {
    if cfg.caller_flags & crate::wire::CALLER_FLAG_ERROR_RECORD != 0 {
        ERROR_RECORD_FD.store(fd, Ordering::Relaxed);
    }
}

/// Stop sending error records (stage-2 hands the init socket to the host).
pub(crate) fn disarm_error_record() {
    ERROR_RECORD_FD.store(-1, Ordering::Relaxed);
}

/// Log `e` as fatal (runc's log line) and, when the caller asked for it,
/// write the structured record with its diagnosis on the init socket;
/// then exit 1 (no unwinding, no atexit handlers).
pub(crate) fn die(e: &StageError) -> ! {
    log::fatal(&e.to_string());
    let fd = ERROR_RECORD_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let stage = match log::stage() {
            255 => 0,
            s => s,
        };
        let rec = crate::diag::StageFailure::from_error(stage, e);
        if let Some(h) = &rec.hint {
            crate::nslog!(Debug, "diagnosis: {h}");
        }
        let _ = crate::sys::process::write_all_raw(fd, rec.to_json_line().as_bytes());
    }
    crate::sys::process::exit_now(1)
}
