//! Rootfs preparation from C: apply an OCI config.json in the current
//! process (which must already be in a new mount namespace).

use std::ffi::c_char;

use super::error::{nsboot_error, nsboot_status, report};
use super::{boundary, cstr};
use nsboot::rootfs_plugin::RootfsStep;

use nsboot_status::*;

/// Prepare the root filesystem described by the OCI runtime-spec
/// `config_json` (`len` bytes): mounts, /dev, pivot_root (or MS_MOVE +
/// chroot with `NSBOOT_ROOTFS_NO_PIVOT` in `flags`), masked and read-only
/// paths, hostname. `bundle` (may be NULL: current directory) is the base
/// of a relative `root.path`. The config is validated before the first
/// mount (`NSBOOT_STATUS_INVALID_ARGUMENT`, message naming the field); a
/// failing step gives `NSBOOT_STATUS_ROOTFS` with the step, path and errno.
///
/// The work is done by the rootfs plugin, `libnsboot_rootfs.so.0`, loaded
/// on the first call from libnsboot's own directory (or
/// `$NSBOOT_ROOTFS_PLUGIN`); if it cannot be loaded the call fails with
/// `NSBOOT_STATUS_ROOTFS` and a message naming the paths tried.
///
/// Threads: the calling process must be single-threaded and already in a
/// new mount namespace (and a new UTS namespace if the config sets a
/// hostname); it changes the process's root and working directory.
///
/// - NULL: `config_json` must not be NULL; `bundle` and `err` may be NULL.
/// - Ownership: Borrows its arguments; mounts made belong to the current mount namespace.
/// - Threads: The process must be single-threaded (it changes root and cwd of the process).
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` (config refused, naming the field), `NSBOOT_STATUS_ROOTFS` with the errno of the failing step (EPERM, ENOENT, ELOOP for a symlink escape, ...).
#[no_mangle]
pub extern "C" fn nsboot_rootfs_prepare(
    config_json: *const u8,
    len: usize,
    bundle: *const c_char,
    flags: u32,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: the arguments carry this function's contract.
        let done = unsafe { new_step(config_json, len, bundle, flags) }.and_then(|step| run_step(&step));
        done.unwrap_or_else(|e| {
            // SAFETY: err is NULL or valid (contract).
            unsafe { report(err, e) }
        })
    })
}

/// A validated rootfs plan (see `nsboot_rootfs_plan_new`). Opaque.
pub struct nsboot_rootfs_plan {
    step: RootfsStep,
}

/// Parse and validate `config_json` (`len` bytes) as
/// `nsboot_rootfs_prepare` does, loading the rootfs plugin, and keep the
/// result for `nsboot_rootfs_plan_prepare`. A runtime that starts many
/// containers builds the plan once, before `fork`, and each child only
/// executes it: the plugin load (~0.2-0.3 ms) and the JSON parsing (~0.08 ms)
/// then happen once, not in every child. Nothing is mounted here; the
/// caller may be multi-threaded.
///
/// - NULL: `config_json` and `out` must not be NULL; `bundle` and `err` may be NULL.
/// - Ownership: Borrows its arguments; on success `*out` is a new plan owned by the caller (free with `nsboot_rootfs_plan_free`; a forked child may use its copy).
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_NULL_PARAMETER`, `NSBOOT_STATUS_INVALID_ARGUMENT` (config refused, naming the field; unknown flags), `NSBOOT_STATUS_ROOTFS` (the plugin could not be loaded).
#[no_mangle]
pub extern "C" fn nsboot_rootfs_plan_new(
    config_json: *const u8,
    len: usize,
    bundle: *const c_char,
    flags: u32,
    out: *mut *mut nsboot_rootfs_plan,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if out.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "out is NULL".into())) };
        }
        // SAFETY: the arguments carry this function's contract.
        match unsafe { new_step(config_json, len, bundle, flags) } {
            Ok(step) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_rootfs_plan { step })) };
                NSBOOT_STATUS_OK
            }
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe { report(err, e) },
        }
    })
}

/// Execute `plan` in the calling process: exactly what
/// `nsboot_rootfs_prepare` does after validating its config.
///
/// - NULL: `plan` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `plan` (it stays valid and may be executed again in another process).
/// - Threads: The process must be single-threaded and in a new mount namespace (it changes root and cwd of the process).
/// - Errors: `NSBOOT_STATUS_NULL_PARAMETER`, `NSBOOT_STATUS_ROOTFS` with the step, path and errno of the failing step.
#[no_mangle]
pub extern "C" fn nsboot_rootfs_plan_prepare(plan: *const nsboot_rootfs_plan, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: plan is NULL or from nsboot_rootfs_plan_new, not freed (contract).
        let Some(plan) = (unsafe { plan.as_ref() }) else {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "plan is NULL".into())) };
        };
        run_step(&plan.step).unwrap_or_else(|e| {
            // SAFETY: err is NULL or valid (contract).
            unsafe { report(err, e) }
        })
    })
}

/// Free a plan. NULL is a no-op.
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `plan`; it must not be used afterwards (nor freed twice).
/// - Threads: Must not race with an `nsboot_rootfs_plan_prepare` using `plan`.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_rootfs_plan_free(plan: *mut nsboot_rootfs_plan) {
    boundary((), || {
        if !plan.is_null() {
            // SAFETY: from Box::into_raw in nsboot_rootfs_plan_new, freed once.
            drop(unsafe { Box::from_raw(plan) });
        }
    })
}

/// The plugin's plan for a config, or the error to report.
///
/// # Safety
/// `config_json` is NULL or points to `len` readable bytes; `bundle` is
/// NULL or a NUL-terminated string.
unsafe fn new_step(config_json: *const u8, len: usize, bundle: *const c_char, flags: u32) -> Result<RootfsStep, nsboot_error> {
    if config_json.is_null() {
        return Err(nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "config_json is NULL".into()));
    }
    if flags & !nsboot::wire::ROOTFS_FLAGS_ALL != 0 {
        return Err(nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("unknown rootfs flags {flags:#x}")));
    }
    // SAFETY: config_json points to `len` readable bytes (contract).
    let json = unsafe { std::slice::from_raw_parts(config_json, len) };
    // SAFETY: bundle is NULL or a valid C string (contract).
    let bundle = unsafe { cstr(bundle) };
    RootfsStep::new(json, bundle, flags).map_err(|e| {
        let status = if e.refused { NSBOOT_STATUS_INVALID_ARGUMENT } else { NSBOOT_STATUS_ROOTFS };
        nsboot_error::new(status, e.errno, e.message)
    })
}

/// Execute a plan; warnings go to stderr.
fn run_step(step: &RootfsStep) -> Result<nsboot_status, nsboot_error> {
    step.prepare(&mut |w| eprintln!("nsboot: warning: {w}"), &|_| {})
        .map(|()| NSBOOT_STATUS_OK)
        .map_err(|e| nsboot_error::new(NSBOOT_STATUS_ROOTFS, e.errno, e.message))
}
