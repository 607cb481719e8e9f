//! Rootfs preparation from C: apply an OCI config.json in the current
//! process (which must already be in a new mount namespace).

use std::ffi::c_char;

use super::error::{nsboot_error, nsboot_status, report};
use super::{boundary, cstr};
use crate::rootfs_plugin::RootfsStep;

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
        let fail = |status, errno, m: String| {
            // SAFETY: err is NULL or valid (contract).
            unsafe { report(err, nsboot_error::new(status, errno, m)) }
        };
        if config_json.is_null() {
            return fail(NSBOOT_STATUS_NULL_PARAMETER, None, "config_json is NULL".into());
        }
        if flags & !crate::wire::ROOTFS_FLAGS_ALL != 0 {
            return fail(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("unknown rootfs flags {flags:#x}"));
        }
        // SAFETY: config_json points to `len` readable bytes (contract).
        let json = unsafe { std::slice::from_raw_parts(config_json, len) };
        // SAFETY: bundle is NULL or a valid C string (contract).
        let bundle = unsafe { cstr(bundle) };
        let step = match RootfsStep::new(json, bundle, flags) {
            Ok(s) => s,
            Err(e) if e.refused => return fail(NSBOOT_STATUS_INVALID_ARGUMENT, e.errno, e.message),
            Err(e) => return fail(NSBOOT_STATUS_ROOTFS, e.errno, e.message),
        };
        match step.prepare(&mut |w| eprintln!("nsboot: warning: {w}"), &|_| {}) {
            Ok(()) => NSBOOT_STATUS_OK,
            Err(e) => fail(NSBOOT_STATUS_ROOTFS, e.errno, e.message),
        }
    })
}
