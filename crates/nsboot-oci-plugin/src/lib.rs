//! libnsboot_rootfs.so: the plugin's side of the boundary, the entry table
//! over [`nsboot_oci::rootfs`] (the ABI and the host side are in nsboot's
//! `rootfs_plugin` module).

use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nsboot::rootfs_plugin::abi::{self, ErrorSink, Hooks, PluginV1};
use nsboot_oci::rootfs::{RootfsOptions, RootfsPlan};

mod container;

pub(crate) fn report(err: *const ErrorSink, errno: Option<nix::errno::Errno>, msg: &str) {
    // SAFETY: `err` is NULL or a valid sink for the duration of the call
    // (the host's contract).
    if let Some(sink) = unsafe { err.as_ref() } {
        (sink.report)(sink.ctx, errno.map_or(0, |e| e as c_int), msg.as_ptr(), msg.len());
    }
}

pub(crate) fn guarded(err: *const ErrorSink, f: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => {
            let what = p.downcast_ref::<&str>().copied().or(p.downcast_ref::<String>().map(|s| s.as_str())).unwrap_or("panic");
            report(err, None, what);
            abi::PANICKED
        }
    }
}

unsafe extern "C" fn plan_new(
    json: *const u8,
    len: usize,
    bundle: *const c_char,
    flags: u32,
    out: *mut *mut c_void,
    err: *const ErrorSink,
) -> c_int {
    guarded(err, || {
        if json.is_null() || out.is_null() {
            report(err, None, "plan_new: NULL argument");
            return abi::REFUSED;
        }
        // SAFETY: json points to `len` readable bytes (host contract).
        let json = unsafe { std::slice::from_raw_parts(json, len) };
        // SAFETY: bundle is NULL or a NUL-terminated string (host contract).
        let bundle = (!bundle.is_null()).then(|| unsafe { CStr::from_ptr(bundle) });
        let opts = RootfsOptions {
            no_pivot: flags & nsboot::wire::ROOTFS_FLAG_NO_PIVOT != 0,
            bundle: bundle.map(|b| std::path::PathBuf::from(OsStr::from_bytes(b.to_bytes()))),
        };
        match RootfsPlan::from_json(json, &opts) {
            Ok(plan) => {
                // SAFETY: out is non-NULL and writable (host contract).
                unsafe { *out = Box::into_raw(Box::new(plan)) as *mut c_void };
                abi::OK
            }
            Err(e) => {
                report(err, e.errno(), &e.to_string());
                abi::REFUSED
            }
        }
    })
}

unsafe extern "C" fn prepare(plan: *const c_void, hooks: *const Hooks, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: plan is NULL or came from plan_new and is not yet freed;
        // hooks is NULL or valid for the call (host contract).
        let (Some(plan), Some(hooks)) = (unsafe { (plan as *const RootfsPlan).as_ref() }, unsafe { hooks.as_ref() }) else {
            report(err, None, "prepare: NULL argument");
            return abi::REFUSED;
        };
        let mut warn = |w: &str| (hooks.warn)(hooks.ctx, w.as_ptr(), w.len());
        let at = |p: &str| (hooks.at)(hooks.ctx, p.as_ptr(), p.len());
        match nsboot_oci::rootfs::prepare_traced(plan, &mut warn, &at) {
            Ok(()) => abi::OK,
            Err(e) => {
                report(err, e.errno(), &e.to_string());
                abi::FAILED
            }
        }
    })
}

unsafe extern "C" fn plan_free(plan: *mut c_void) {
    if !plan.is_null() {
        // SAFETY: plan came from plan_new's Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(plan as *mut RootfsPlan) });
    }
}

static TABLE: PluginV1 = PluginV1 { abi: abi::ABI, version: abi::VERSION.as_ptr(), plan_new, prepare, plan_free };

/// The plugin's only export: its entry table.
#[no_mangle]
pub extern "C" fn nsboot_rootfs_plugin_v1() -> *const PluginV1 {
    &TABLE
}
