//! C API of the bootstrap server (zygote): start it while single-threaded,
//! then start programs in namespaces from any thread.

use std::ffi::{c_char, c_int, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::api::c_vec;
use super::error::{nsboot_error, nsboot_status, report};
use super::msg::nsboot_msg;
use super::{boundary, cstr};
use nsboot::server::{Program, Request, Served, Server, ServerError};

use nsboot_status::*;

/// The host's handle on its bootstrap server. Thread-safe; freeing it does
/// not stop the server (the host's exit does).
pub struct nsboot_server {
    server: Server,
}

/// A program started by the server: pids, pidfds, and its exit status
/// (`nsboot_served_wait`). Use from one thread at a time.
pub struct nsboot_served {
    served: Served,
}

fn server_error(err: *mut *mut nsboot_error, e: ServerError) -> nsboot_status {
    let status = match &e {
        ServerError::Sys { .. } => NSBOOT_STATUS_SYSCALL,
        ServerError::Encode(_) => NSBOOT_STATUS_WIRE,
        ServerError::Threads => NSBOOT_STATUS_INVALID_ARGUMENT,
        _ => NSBOOT_STATUS_BOOTSTRAP_FAILED,
    };
    let mut error = nsboot_error::new(status, e.errno(), e.to_string());
    if let ServerError::Stage(f) = &e {
        error = error.with_stage(f);
    }
    // SAFETY: err is NULL or valid (the callers' contract).
    unsafe { report(err, error) }
}

/// Fork the bootstrap server. Call while the process has one thread (from
/// a constructor or first thing in `main`); afterwards any thread may call
/// `nsboot_server_run`. The server stays single-threaded, dies with this
/// process (a pidfd of it, not the forking thread) and refuses requests
/// from any other process (SO_PEERCRED).
///
/// - NULL: `out` must not be NULL; `err` may be NULL.
/// - Ownership: On success the caller owns `*out` (free with `nsboot_server_free`).
/// - Threads: Only while the process is single-threaded (`NSBOOT_STATUS_INVALID_ARGUMENT` otherwise).
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` (threads), `NSBOOT_STATUS_SYSCALL` (socket, bind, fork).
#[no_mangle]
pub extern "C" fn nsboot_server_start(out: *mut *mut nsboot_server, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if out.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "out is NULL".into())) };
        }
        let Some(token) = nsboot::sys::process::SingleThreaded::check() else {
            return server_error(err, ServerError::Threads);
        };
        match Server::start(&token) {
            Ok(server) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_server { server })) };
                NSBOOT_STATUS_OK
            }
            Err(e) => server_error(err, e),
        }
    })
}

/// The server's pid (-1 for NULL).
///
/// - NULL: NULL gives -1.
/// - Ownership: Borrows `server`.
/// - Threads: Any thread.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_server_pid(server: *const nsboot_server) -> i32 {
    boundary(-1, || {
        // SAFETY: NULL or live (contract).
        unsafe { server.as_ref() }.map_or(-1, |s| s.server.pid().as_raw())
    })
}

/// Free the handle (the server keeps running until the host exits).
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `server`; no `nsboot_server_run` may use it any more.
/// - Threads: Not concurrently with a `nsboot_server_run` on it.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_server_free(server: *mut nsboot_server) {
    boundary((), || {
        if !server.is_null() {
            // SAFETY: from Box::into_raw in nsboot_server_start, freed once.
            drop(unsafe { Box::from_raw(server) });
        }
    })
}

/// Start a program inside the namespaces `msg` describes, through the
/// server: `path` (resolved by stage-2 inside the namespaces) or, when
/// `program_fd` >= 0, that open file (execveat); `argv` (NULL-terminated,
/// `argv[0]` included); `envp` (NULL: the server's environment, the
/// host's when it started); stdio fds (-1: /dev/null). Returns once the
/// program runs (stage-2 execs it); `*out` then gives pids and pidfds and
/// waits for its status. A failing stage's structured error comes back in
/// `*err` (`nsboot_error_stage`, `_cause`, `_hint`, ...).
///
/// - NULL: `server`, `msg`, `out` must not be NULL; one of `path` and `program_fd` >= 0; `argv`, `envp`, `err` may be NULL.
/// - Ownership: Borrows everything for the call; the fds stay the caller's. On success the caller owns `*out` (free with `nsboot_served_free`).
/// - Threads: Any thread, concurrently.
/// - Errors: `NSBOOT_STATUS_SYSCALL` (connect, send), `NSBOOT_STATUS_WIRE`, `NSBOOT_STATUS_BOOTSTRAP_FAILED` (a stage failed, or the server refused or is gone).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn nsboot_server_run(
    server: *const nsboot_server,
    msg: *const nsboot_msg,
    path: *const c_char,
    program_fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
    stdin_fd: c_int,
    stdout_fd: c_int,
    stderr_fd: c_int,
    out: *mut *mut nsboot_served,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        let null = |what: &str| {
            // SAFETY: err is NULL or valid (contract).
            unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, format!("{what} is NULL"))) }
        };
        // SAFETY: NULL or live (contract).
        let (Some(s), Some(m)) = (unsafe { server.as_ref() }, unsafe { msg.as_ref() }) else {
            return null("server or msg");
        };
        if out.is_null() {
            return null("out");
        }
        // SAFETY: NULL or a valid C string (contract).
        let path = unsafe { cstr(path) };
        let program = if program_fd >= 0 {
            // SAFETY: an open fd of the caller for the call (contract).
            Program::Fd(unsafe { BorrowedFd::borrow_raw(program_fd) })
        } else {
            match path {
                Some(p) => Program::Path(p),
                None => return null("path (and no program_fd)"),
            }
        };
        // SAFETY: NULL or NULL-terminated arrays of C strings (contract).
        let (args, env) = unsafe { (c_vec(argv), c_vec(envp)) };
        let owned = |v: Vec<&[u8]>| v.into_iter().filter_map(|a| CString::new(a).ok()).collect::<Vec<_>>();
        let (args, env) = (owned(args), owned(env));
        // SAFETY: non-negative fds are open fds of the caller for the call.
        let fd = |f: c_int| (f >= 0).then(|| unsafe { BorrowedFd::borrow_raw(f) });
        let req = Request {
            cfg: &m.cfg,
            program,
            argv: &args,
            envp: (!envp.is_null()).then_some(env.as_slice()),
            stdio: [fd(stdin_fd), fd(stdout_fd), fd(stderr_fd)],
        };
        match s.server.run(&req) {
            Ok(served) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_served { served })) };
                NSBOOT_STATUS_OK
            }
            Err(e) => server_error(err, e),
        }
    })
}

/// `nsboot_server_run` without a program: stage-2 calls `entry` (a
/// function of this program; the server, a fork of it, has it at the same
/// address) inside the namespaces and exits with its result. No exec: the
/// cheapest way to run code in new namespaces from a threaded host.
///
/// - NULL: `server`, `msg`, `entry`, `out` must not be NULL; `err` may be NULL.
/// - Ownership: As `nsboot_server_run`.
/// - Threads: Any thread, concurrently.
/// - Errors: As `nsboot_server_run`.
#[no_mangle]
pub extern "C" fn nsboot_server_call(
    server: *const nsboot_server,
    msg: *const nsboot_msg,
    entry: Option<extern "C" fn() -> c_int>,
    out: *mut *mut nsboot_served,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: NULL or live (contract).
        let (Some(s), Some(m), Some(f)) = (unsafe { server.as_ref() }, unsafe { msg.as_ref() }, entry) else {
            // SAFETY: err is NULL or valid (contract).
            return unsafe {
                report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "server, msg or entry is NULL".into()))
            };
        };
        if out.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "out is NULL".into())) };
        }
        let req = Request { cfg: &m.cfg, program: Program::Callback(f), argv: &[], envp: None, stdio: [None, None, None] };
        match s.server.run(&req) {
            Ok(served) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_served { served })) };
                NSBOOT_STATUS_OK
            }
            Err(e) => server_error(err, e),
        }
    })
}

/// stage-2's pid (the program), -1 for NULL.
///
/// - NULL: NULL gives -1.
/// - Ownership: Borrows `served`.
/// - Threads: Any thread.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_served_pid(served: *const nsboot_served) -> i32 {
    boundary(-1, || {
        // SAFETY: NULL or live (contract).
        unsafe { served.as_ref() }.map_or(-1, |s| s.served.stage2.as_raw())
    })
}

/// A pidfd of stage-2 (the program), owned by `served` (valid until
/// `nsboot_served_free`): signal it with `nsboot_pidfd_kill`, poll it. The
/// server is its parent and reaps it; `nsboot_served_wait` gives the
/// status. -1 for NULL.
///
/// - NULL: NULL gives -1.
/// - Ownership: The fd belongs to `served`; do not close it.
/// - Threads: Any thread.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_served_pidfd(served: *const nsboot_served) -> c_int {
    boundary(-1, || {
        // SAFETY: NULL or live (contract).
        unsafe { served.as_ref() }.map_or(-1, |s| s.served.pidfds.stage2.as_raw_fd())
    })
}

/// Wait until the program exits; `*status` = its exit code, or 128 +
/// the signal.
///
/// - NULL: `served` and `status` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `served`.
/// - Threads: One thread at a time per `served`.
/// - Errors: `NSBOOT_STATUS_SYSCALL` (read), `NSBOOT_STATUS_BOOTSTRAP_FAILED` (the server is gone).
#[no_mangle]
pub extern "C" fn nsboot_served_wait(served: *mut nsboot_served, status: *mut c_int, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: NULL or live, used by one thread (contract).
        let Some(s) = (unsafe { served.as_mut() }) else {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "served is NULL".into())) };
        };
        if status.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "status is NULL".into())) };
        }
        match s.served.wait() {
            Ok(v) => {
                // SAFETY: status is non-NULL and writable (contract).
                unsafe { *status = v };
                NSBOOT_STATUS_OK
            }
            Err(e) => server_error(err, e),
        }
    })
}

/// Free `served` (closes its pidfds and connection; the program keeps
/// running, the server still reaps it).
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `served` once.
/// - Threads: Not concurrently with other uses of `served`.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_served_free(served: *mut nsboot_served) {
    boundary((), || {
        if !served.is_null() {
            // SAFETY: from Box::into_raw in nsboot_server_run, freed once.
            drop(unsafe { Box::from_raw(served) });
        }
    })
}
