//! The plugin's container table over `nsboot_oci::container` (the ABI and
//! libnsboot's side: nsboot's `rootfs_plugin::abi` / `container`).

use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nsboot::rootfs_plugin::abi::{self, ContainerV1, ErrorSink, TextSink};
use nsboot_oci::container::{self, Container, ContainerError, CreateOptions, ExecPlan};

use crate::{guarded, report};

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn path<'a>(p: *const c_char) -> Option<&'a Path> {
    // SAFETY: per this function's contract.
    (!p.is_null()).then(|| Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes())))
}

fn fail(err: *const ErrorSink, e: &ContainerError) -> c_int {
    report(err, e.errno(), &e.to_string());
    if e.refused() {
        abi::REFUSED
    } else {
        abi::FAILED
    }
}

fn null(err: *const ErrorSink, what: &str) -> c_int {
    report(err, None, &format!("{what} is NULL"));
    abi::REFUSED
}

/// # Safety
/// As for the table's `create`.
unsafe fn options(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
) -> Option<CreateOptions> {
    // SAFETY: each is NULL or a C string (host contract).
    let (bundle, idp) = unsafe { (path(bundle)?, path(id)?) };
    let mut o = CreateOptions::new(idp.to_string_lossy().into_owned(), bundle.to_path_buf());
    // SAFETY: as above.
    o.state_dir = unsafe { path(state_dir) }.map(PathBuf::from);
    // SAFETY: as above.
    o.console_socket = unsafe { path(console_socket) }.map(PathBuf::from);
    o.no_pivot = flags & nsboot::wire::ROOTFS_FLAG_NO_PIVOT != 0;
    Some(o)
}

unsafe extern "C" fn create(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
    pid: *mut c_int,
    err: *const ErrorSink,
) -> c_int {
    guarded(err, || {
        // SAFETY: host contract (C strings or NULL).
        let Some(o) = (unsafe { options(bundle, id, state_dir, console_socket, flags) }) else {
            return null(err, "bundle or id");
        };
        match Container::create(o) {
            Ok(c) => {
                if !pid.is_null() {
                    // SAFETY: non-NULL and writable (host contract).
                    unsafe { *pid = c.pid() };
                }
                abi::OK
            }
            Err(e) => fail(err, &e),
        }
    })
}

unsafe extern "C" fn run(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
    status: *mut c_int,
    err: *const ErrorSink,
) -> c_int {
    guarded(err, || {
        // SAFETY: host contract (C strings or NULL).
        let Some(o) = (unsafe { options(bundle, id, state_dir, console_socket, flags) }) else {
            return null(err, "bundle or id");
        };
        match Container::run(o) {
            Ok(code) => {
                if !status.is_null() {
                    // SAFETY: non-NULL and writable (host contract).
                    unsafe { *status = code };
                }
                abi::OK
            }
            Err(e) => fail(err, &e),
        }
    })
}

unsafe extern "C" fn start(state_dir: *const c_char, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: host contract.
        let Some(d) = (unsafe { path(state_dir) }) else { return null(err, "state_dir") };
        container::start_by_state(d).map_or_else(|e| fail(err, &e), |()| abi::OK)
    })
}

unsafe extern "C" fn kill(state_dir: *const c_char, sig: c_int, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: host contract.
        let Some(d) = (unsafe { path(state_dir) }) else { return null(err, "state_dir") };
        let Ok(sig) = nix::sys::signal::Signal::try_from(sig) else {
            report(err, Some(nix::errno::Errno::EINVAL), &format!("kill: {sig} is not a signal"));
            return abi::REFUSED;
        };
        container::kill_by_state(d, sig).map_or_else(|e| fail(err, &e), |()| abi::OK)
    })
}

unsafe extern "C" fn delete(state_dir: *const c_char, flags: u32, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: host contract.
        let Some(d) = (unsafe { path(state_dir) }) else { return null(err, "state_dir") };
        container::delete_by_state(d, flags & 1 != 0).map_or_else(|e| fail(err, &e), |()| abi::OK)
    })
}

unsafe extern "C" fn features(out: *const TextSink, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: NULL or valid for the call (host contract).
        let Some(out) = (unsafe { out.as_ref() }) else { return null(err, "out") };
        let doc = container::features_json();
        (out.write)(out.ctx, doc.as_ptr(), doc.len());
        abi::OK
    })
}

unsafe extern "C" fn exec_plan_new(json: *const u8, len: usize, out: *mut *mut c_void, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        if json.is_null() || out.is_null() {
            return null(err, "json or out");
        }
        // SAFETY: json points to `len` readable bytes (host contract).
        let json = unsafe { std::slice::from_raw_parts(json, len) };
        match ExecPlan::from_json(json) {
            Ok(p) => {
                // SAFETY: out is non-NULL and writable (host contract).
                unsafe { *out = Box::into_raw(Box::new(p)) as *mut c_void };
                abi::OK
            }
            Err(e) => fail(err, &e),
        }
    })
}

unsafe extern "C" fn exec_plan_exec(plan: *const c_void, err: *const ErrorSink) -> c_int {
    guarded(err, || {
        // SAFETY: NULL or from exec_plan_new, not freed (host contract).
        let Some(plan) = (unsafe { (plan as *const ExecPlan).as_ref() }) else { return null(err, "plan") };
        let e = plan.exec();
        report(err, e.errno(), &e.to_string());
        abi::FAILED
    })
}

unsafe extern "C" fn exec_plan_free(plan: *mut c_void) {
    if !plan.is_null() {
        // SAFETY: from exec_plan_new's Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(plan as *mut ExecPlan) });
    }
}

static TABLE: ContainerV1 = ContainerV1 {
    abi: abi::CONTAINER_ABI,
    version: abi::VERSION.as_ptr(),
    create,
    run,
    start,
    kill,
    delete,
    features,
    exec_plan_new,
    exec_plan_exec,
    exec_plan_free,
};

/// The container table's entry (looked up by libnsboot on demand).
#[no_mangle]
pub extern "C" fn nsboot_container_plugin_v1() -> *const ContainerV1 {
    &TABLE
}
