//! A whole OCI container from C: create / start / kill / delete / run and
//! the features document. A thin layer: each call goes to the container
//! table of the plugin (`libnsboot_rootfs.so`, loaded on the first call),
//! which runs `nsboot_oci::container`; libnsboot links none of it. The
//! container is named by its state directory between calls, so `start`,
//! `kill` and `delete` may come from another process than `create`.

use std::ffi::{c_char, c_int};

use nsboot::rootfs_plugin::{ContainerPlugin, CreateArgs, RootfsFailure};

use super::error::{nsboot_error, nsboot_status, report};
use super::{boundary, cstr};

use nsboot_status::*;

fn failed(e: RootfsFailure) -> nsboot_error {
    let status = if e.refused { NSBOOT_STATUS_INVALID_ARGUMENT } else { NSBOOT_STATUS_CONTAINER };
    nsboot_error::new(status, e.errno, e.message)
}

fn null(what: &str) -> nsboot_error {
    nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, format!("{what} is NULL"))
}

/// Run `f` on the plugin; errors into `*err`.
///
/// # Safety
/// `err` is NULL or valid (the exported functions' contract).
unsafe fn with_plugin(
    err: *mut *mut nsboot_error,
    f: impl FnOnce(ContainerPlugin) -> Result<(), nsboot_error>,
) -> nsboot_status {
    let r = ContainerPlugin::get().map_err(failed).and_then(f);
    match r {
        Ok(()) => NSBOOT_STATUS_OK,
        // SAFETY: err is NULL or valid (contract).
        Err(e) => unsafe { report(err, e) },
    }
}

/// # Safety
/// Each pointer is NULL or a NUL-terminated string valid for the call.
unsafe fn args<'a>(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
) -> Result<CreateArgs<'a>, nsboot_error> {
    // SAFETY: per this function's contract.
    let (b, i) = unsafe { (cstr(bundle), cstr(id)) };
    let (Some(bundle), Some(id)) = (b, i) else { return Err(null("bundle or id")) };
    if flags & !nsboot::wire::ROOTFS_FLAG_NO_PIVOT != 0 {
        return Err(nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("unknown container flags {flags:#x}")));
    }
    // SAFETY: per this function's contract.
    let (state_dir, console_socket) = unsafe { (cstr(state_dir), cstr(console_socket)) };
    Ok(CreateArgs { bundle, id, state_dir, console_socket, flags })
}

/// Create the container of the OCI bundle `bundle` (its `config.json`)
/// with the id `id`: cgroup, namespaces from `linux.namespaces`, id maps,
/// hooks `prestart`/`createRuntime`/`createContainer`, rootfs, console,
/// process setup with the seccomp filter last; the container process then
/// waits at the start gate and `*pid` is its pid. State in `state_dir`
/// (NULL: `/run/nsboot-oci/<id>`, or `$XDG_RUNTIME_DIR/nsboot-oci/<id>`
/// when not root), which must not exist. `console_socket`: with
/// `process.terminal`, where the pty master is sent (required then:
/// from C there is no other way to get the master). `flags`: `NSBOOT_ROOTFS_NO_PIVOT`.
/// On failure nothing is left (no process, cgroup, mount, state).
///
/// - NULL: `bundle` and `id` must not be NULL; `state_dir`, `console_socket`, `pid` and `err` may be NULL.
/// - Ownership: Borrows its arguments. The container process is a child of the caller (reap it with waitpid, or let `nsboot_container_delete` do it).
/// - Threads: The calling process must be single-threaded (it forks); refused otherwise.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` (config refused, naming the key: nothing was created), `NSBOOT_STATUS_CONTAINER` (the failing step, syscall, path or key; an error inside the container process is reported the same way), `NSBOOT_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn nsboot_container_create(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
    pid: *mut c_int,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: err is NULL or valid; the strings carry this function's contract.
        unsafe {
            with_plugin(err, |p| {
                let a = args(bundle, id, state_dir, console_socket, flags)?;
                let got = p.create(a).map_err(failed)?;
                if !pid.is_null() {
                    *pid = got;
                }
                Ok(())
            })
        }
    })
}

/// Create, start, wait for and delete the container (see
/// `nsboot_container_create` for the arguments); `*status` is the
/// program's exit status, 128+N after signal N.
///
/// - NULL: `bundle` and `id` must not be NULL; `state_dir`, `console_socket`, `status` and `err` may be NULL.
/// - Ownership: Borrows its arguments; nothing of the container is left when it returns.
/// - Threads: The calling process must be single-threaded (it forks).
/// - Errors: as `nsboot_container_create`; a program that cannot be executed is `NSBOOT_STATUS_CONTAINER` with the exec errno.
#[no_mangle]
pub extern "C" fn nsboot_container_run(
    bundle: *const c_char,
    id: *const c_char,
    state_dir: *const c_char,
    console_socket: *const c_char,
    flags: u32,
    status: *mut c_int,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: err is NULL or valid; the strings carry this function's contract.
        unsafe {
            with_plugin(err, |p| {
                let a = args(bundle, id, state_dir, console_socket, flags)?;
                let code = p.run(a).map_err(failed)?;
                if !status.is_null() {
                    *status = code;
                }
                Ok(())
            })
        }
    })
}

/// Start the created container whose state is in `state_dir`: it runs
/// `startContainer` and execs its program; `poststart` runs before this
/// returns.
///
/// - NULL: `state_dir` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows its arguments.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_CONTAINER` (not created, already started, state unreadable), `NSBOOT_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn nsboot_container_start(state_dir: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: err is NULL or valid; state_dir is NULL or a C string (contract).
        unsafe {
            with_plugin(err, |p| {
                let d = cstr(state_dir).ok_or_else(|| null("state_dir"))?;
                p.start(d).map_err(failed)
            })
        }
    })
}

/// Send signal `sig` to the container's process.
///
/// - NULL: `state_dir` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows its arguments.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_CONTAINER` (not running; ESRCH), `NSBOOT_STATUS_INVALID_ARGUMENT` (not a signal), `NSBOOT_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn nsboot_container_kill(state_dir: *const c_char, sig: c_int, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: as in nsboot_container_start.
        unsafe {
            with_plugin(err, |p| {
                let d = cstr(state_dir).ok_or_else(|| null("state_dir"))?;
                p.kill(d, sig).map_err(failed)
            })
        }
    })
}

/// Delete the container: a created one is killed, a running one only with
/// `NSBOOT_CONTAINER_DELETE_FORCE` in `flags` (SIGKILL); its cgroup and
/// state directory are removed, `poststop` runs.
///
/// - NULL: `state_dir` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows its arguments.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_CONTAINER` (running without force, cgroup busy, state unreadable), `NSBOOT_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn nsboot_container_delete(state_dir: *const c_char, flags: u32, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: as in nsboot_container_start.
        unsafe {
            with_plugin(err, |p| {
                let d = cstr(state_dir).ok_or_else(|| null("state_dir"))?;
                p.delete(d, flags).map_err(failed)
            })
        }
    })
}

/// The OCI `features` document (JSON, as `runc features` prints it) of
/// this build and kernel, seccomp and cgroup sections included, written
/// NUL-terminated into `buf` (`len` bytes). `*needed` (if not NULL) gets
/// the size it needs, NUL included; `NSBOOT_STATUS_BUFFER_TOO_SMALL` when
/// `len` is smaller (call again with a bigger buffer; `buf` may then be NULL).
///
/// - NULL: `buf` may be NULL when `len` is 0; `needed` and `err` may be NULL.
/// - Ownership: Writes into the caller's buffer only on success.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_BUFFER_TOO_SMALL`, `NSBOOT_STATUS_CONTAINER` (the plugin could not be loaded).
#[no_mangle]
pub extern "C" fn nsboot_container_features(
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: err is NULL or valid; buf holds `len` bytes (contract).
        unsafe {
            with_plugin(err, |p| {
                let doc = p.features().map_err(failed)?;
                let n = doc.len() + 1;
                if !needed.is_null() {
                    *needed = n;
                }
                if buf.is_null() || len < n {
                    return Err(nsboot_error::new(
                        NSBOOT_STATUS_BUFFER_TOO_SMALL,
                        None,
                        format!("features: {n} bytes needed, {len} given"),
                    ));
                }
                std::ptr::copy_nonoverlapping(doc.as_ptr(), buf as *mut u8, doc.len());
                *buf.add(doc.len()) = 0;
                Ok(())
            })
        }
    })
}
