//! Caller-side C API: spawn a bootstrap, seal a binary once, version.

use std::ffi::{c_char, c_int, CString, OsStr};
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;

use super::error::{nsboot_error, nsboot_status, report};
use super::msg::{dialect_from_c, nsboot_msg};
use super::{boundary, cstr};
use nsboot::caller::{self, SpawnOptions};
use nsboot::sealed::SealedExe;

use nsboot_status::*;

/// A sealed, immutable copy of a program (CVE-2019-5736 defence made once).
/// Create with `nsboot_sealed_exe_new`, free with `nsboot_sealed_exe_free`.
/// May be shared between threads for spawning (read-only use).
pub struct nsboot_sealed_exe {
    exe: SealedExe,
}

/// What a successful `nsboot_spawn` started. The caller owns all three:
/// reap `stage1_pid` (it exits 0 on its own) and `stage2_pid` (the process
/// inside the namespaces) with `waitpid`, and close `init_fd` (the caller's
/// end of the init socket, still connected to stage-2).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nsboot_spawned {
    pub stage1_pid: i32,
    pub stage2_pid: i32,
    pub init_fd: c_int,
}

/// nsboot's version as "MAJOR.MINOR.PATCH" (static string, never NULL).
///
/// - NULL: Never NULL (a static string).
/// - Ownership: Static storage: do not free.
/// - Threads: Any thread.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_version() -> *const c_char {
    static V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

/// Seal a copy of the program at `path` into a memfd (or use the file as is
/// when it is already immutable). On success `*out` receives the handle.
/// Errors: `NSBOOT_STATUS_SYSCALL` with errno (ENOENT, EACCES, ENOMEM...).
///
/// - NULL: `path` and `out` must not be NULL (`NSBOOT_STATUS_NULL_PARAMETER`); `err` may be NULL.
/// - Ownership: On success the caller owns `*out` and frees it with `nsboot_sealed_exe_free`; `*out` is untouched on failure.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_SYSCALL` with errno ENOENT/EACCES (open), ENOMEM/EMFILE (memfd_create), EIO (short copy).
#[no_mangle]
pub extern "C" fn nsboot_sealed_exe_new(
    path: *const c_char,
    out: *mut *mut nsboot_sealed_exe,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: path is NULL or a valid C string (contract).
        let Some(p) = (unsafe { cstr(path) }) else {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "path is NULL".into())) };
        };
        if out.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "out is NULL".into())) };
        }
        match SealedExe::new(std::path::Path::new(OsStr::from_bytes(p.to_bytes()))) {
            Ok(exe) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_sealed_exe { exe })) };
                NSBOOT_STATUS_OK
            }
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_SYSCALL, e.errno(), e.to_string())) },
        }
    })
}

/// Free a sealed program. NULL is a no-op.
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `exe`; it must not be used afterwards (nor freed twice).
/// - Threads: Must not race with an `nsboot_spawn` using `exe`.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_sealed_exe_free(exe: *mut nsboot_sealed_exe) {
    boundary((), || {
        if !exe.is_null() {
            // SAFETY: from Box::into_raw in nsboot_sealed_exe_new, freed once.
            drop(unsafe { Box::from_raw(exe) });
        }
    })
}

/// Collect a NULL-terminated `char *const[]`.
///
/// # Safety
/// `v` is NULL or a NULL-terminated array of valid C strings.
pub(crate) unsafe fn c_vec<'a>(v: *const *const c_char) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    if v.is_null() {
        return out;
    }
    let mut i = 0;
    loop {
        // SAFETY: the array is NULL-terminated (contract), so every index up
        // to and including the terminator is readable.
        let p = unsafe { *v.add(i) };
        if p.is_null() {
            return out;
        }
        // SAFETY: non-NULL entries are valid C strings (contract).
        out.push(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes());
        i += 1;
    }
}

/// Start a bootstrap: run `path` (or, when `exe` is non-NULL, the sealed
/// copy, so the bootstrap never re-executes) with `argv` (`argv[0]` is the
/// process name) and `envp` (NULL: inherit this process's environment),
/// the init socket set up, `msg` sent in `dialect` (0 = runc 1.1, 1 =
/// runc ≥ 1.2); `log_fd` (-1 for none) becomes `_LIBCONTAINER_LOGPIPE`.
/// Waits for stage-0 to finish; on success fills `*out` (see
/// `nsboot_spawned`). On failure nothing is left running and `*err`
/// (if `err` is non-NULL) says why (`NSBOOT_STATUS_BOOTSTRAP_FAILED`: the
/// child's fatal line went to its stderr or the log pipe).
///
/// Threads: safe to call from any thread; it forks and waits for its own
/// children only.
///
/// - NULL: `msg` and `out` must not be NULL; one of `exe` and `path` must be non-NULL; `argv` and `envp` may be NULL (no arguments / inherit the environment); `err` may be NULL.
/// - Ownership: Borrows every argument for the call only; on success the caller owns the two child pids (reap them) and `out->init_fd` (close it). `*out` is written only on success.
/// - Threads: Any thread; it forks and waits only for the child it started (not `waitpid(-1)`).
/// - Errors: `NSBOOT_STATUS_WIRE` (message cannot be encoded), `NSBOOT_STATUS_SYSCALL` with errno (socketpair, fork, exec: ENOENT, EACCES, EMFILE, ENOMEM), `NSBOOT_STATUS_BOOTSTRAP_FAILED` (the child's stage failed; its fatal line went to the log pipe or its stderr), `NSBOOT_STATUS_INVALID_ARGUMENT` (unknown dialect).
#[no_mangle]
pub extern "C" fn nsboot_spawn(
    exe: *const nsboot_sealed_exe,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    msg: *const nsboot_msg,
    dialect: c_int,
    log_fd: c_int,
    out: *mut nsboot_spawned,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    spawn_inner(exe, path, argv, envp, msg, dialect, log_fd, out, std::ptr::null_mut(), err)
}

/// pidfds of a bootstrap's stage-1 and stage-2 (`nsboot_spawn_pidfds`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nsboot_pidfds {
    pub stage1_pidfd: c_int,
    pub stage2_pidfd: c_int,
}

/// `nsboot_spawn` that also returns pidfds of stage-1 and stage-2, sent by
/// stage-0 over the init socket (SCM_RIGHTS, after the pid line). Opt-in:
/// it adds the nsboot extension NSBOOT_CALLER_FLAGS to the message, so the
/// program must bootstrap with nsboot (runc's nsexec refuses it);
/// `nsboot_spawn` keeps runc's protocol byte for byte. Stages are created
/// with `clone3(CLONE_PIDFD)` where the kernel has it (else clone and
/// `pidfd_open`). Kill and wait with `nsboot_pidfd_kill`/`nsboot_pidfd_wait`.
///
/// - NULL: as `nsboot_spawn`; `pidfds` must not be NULL.
/// - Ownership: as `nsboot_spawn`, and the caller owns (closes) the two pidfds (close-on-exec); `*pidfds` is written only on success.
/// - Threads: Any thread, as `nsboot_spawn`.
/// - Errors: as `nsboot_spawn`; `NSBOOT_STATUS_BOOTSTRAP_FAILED` also when stage-0 could not send the pidfds (Linux < 5.3: ENOSYS).
#[no_mangle]
pub extern "C" fn nsboot_spawn_pidfds(
    exe: *const nsboot_sealed_exe,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    msg: *const nsboot_msg,
    dialect: c_int,
    log_fd: c_int,
    out: *mut nsboot_spawned,
    pidfds: *mut nsboot_pidfds,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    if pidfds.is_null() {
        // SAFETY: err is NULL or valid (contract).
        return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "pidfds is NULL".into())) };
    }
    spawn_inner(exe, path, argv, envp, msg, dialect, log_fd, out, pidfds, err)
}

/// Send signal `sig` to the process `pidfd` names (`pidfd_send_signal`):
/// ESRCH once it has exited, even when its pid now names another process.
///
/// - NULL: `err` may be NULL.
/// - Ownership: Borrows `pidfd`.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_SYSCALL` with errno ESRCH (exited), EBADF, EINVAL (bad signal), EPERM.
#[no_mangle]
pub extern "C" fn nsboot_pidfd_kill(pidfd: c_int, sig: c_int, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if pidfd < 0 {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("pidfd {pidfd}"))) };
        }
        // SAFETY: a non-negative pidfd is an open fd of the caller for the
        // call (contract).
        let fd = unsafe { BorrowedFd::borrow_raw(pidfd) };
        match nsboot::sys::process::pidfd_send_signal(fd, sig) {
            Ok(()) => NSBOOT_STATUS_OK,
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe {
                report(err, nsboot_error::new(NSBOOT_STATUS_SYSCALL, Some(e), format!("pidfd_send_signal({pidfd}, {sig}): {e}")))
            },
        }
    })
}

/// Wait for (and reap) the child `pidfd` names (`waitid(P_PIDFD)`); on
/// success `*status` is its status as a shell shows it: the exit code, or
/// 128 + the signal. With `nohang` true and the child still running,
/// returns OK and writes -1.
///
/// - NULL: `status` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `pidfd`.
/// - Threads: Any thread (waits only for that child).
/// - Errors: `NSBOOT_STATUS_SYSCALL` with errno ECHILD (not our child, or already reaped), EBADF, EINVAL (Linux < 5.4).
#[no_mangle]
pub extern "C" fn nsboot_pidfd_wait(pidfd: c_int, nohang: bool, status: *mut c_int, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if status.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "status is NULL".into())) };
        }
        if pidfd < 0 {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("pidfd {pidfd}"))) };
        }
        // SAFETY: a non-negative pidfd is an open fd of the caller for the
        // call (contract).
        let fd = unsafe { BorrowedFd::borrow_raw(pidfd) };
        let flags = if nohang { libc::WNOHANG } else { 0 };
        match nsboot::sys::process::waitid_pidfd(fd, flags) {
            Ok(exit) => {
                let v = match exit {
                    None => -1,
                    Some(nsboot::sys::process::Exit::Code(c)) => c,
                    Some(nsboot::sys::process::Exit::Signal(s)) => 128 + s,
                };
                // SAFETY: status is non-NULL and writable (contract).
                unsafe { *status = v };
                NSBOOT_STATUS_OK
            }
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe {
                report(err, nsboot_error::new(NSBOOT_STATUS_SYSCALL, Some(e), format!("waitid(P_PIDFD, {pidfd}): {e}")))
            },
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn spawn_inner(
    exe: *const nsboot_sealed_exe,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    msg: *const nsboot_msg,
    dialect: c_int,
    log_fd: c_int,
    out: *mut nsboot_spawned,
    pidfds: *mut nsboot_pidfds,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        let fail = |status, errno, m: String| {
            // SAFETY: err is NULL or valid (contract).
            unsafe { report(err, nsboot_error::new(status, errno, m)) }
        };
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg.as_ref() }) else {
            return fail(NSBOOT_STATUS_NULL_PARAMETER, None, "msg is NULL".into());
        };
        if out.is_null() {
            return fail(NSBOOT_STATUS_NULL_PARAMETER, None, "out is NULL".into());
        }
        let Some(d) = dialect_from_c(dialect) else {
            return fail(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("unknown dialect {dialect}"));
        };
        // SAFETY: exe is NULL or live (contract).
        let sealed = unsafe { exe.as_ref() };
        // SAFETY: path is NULL or a valid C string (contract).
        let program: CString = match (sealed, unsafe { cstr(path) }) {
            (Some(s), _) => match CString::new(s.exe.exec_path().into_os_string().into_vec()) {
                Ok(p) => p,
                Err(_) => return fail(NSBOOT_STATUS_INVALID_ARGUMENT, None, "sealed exe path has a NUL byte".into()),
            },
            (None, Some(p)) => p.to_owned(),
            (None, None) => return fail(NSBOOT_STATUS_NULL_PARAMETER, None, "both exe and path are NULL".into()),
        };
        // SAFETY: argv/envp are NULL or NULL-terminated arrays (contract);
        // their strings have no interior NUL (they are C strings).
        let (args, env) = unsafe { (c_vec(argv), c_vec(envp)) };
        let owned = |v: Vec<&[u8]>| v.into_iter().filter_map(|a| CString::new(a).ok()).collect::<Vec<_>>();
        let (args, env) = (owned(args), owned(env));
        // SAFETY: a non-negative log_fd is an open fd of the caller that
        // stays open during the call (contract).
        let log = (log_fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(log_fd) });
        let opts = SpawnOptions { dialect: d, log_fd: log, log_level: None, pidfds: !pidfds.is_null(), error_records: false };
        let envp = (!envp.is_null()).then_some(env.as_slice());
        match caller::spawn_program(&program, &args, envp, &m.cfg, opts) {
            Ok(s) => {
                let spawned = nsboot_spawned {
                    stage1_pid: s.stage1.as_raw(),
                    stage2_pid: s.stage2.as_raw(),
                    init_fd: s.init_sock.into_raw_fd(),
                };
                if let Some(fds) = s.pidfds {
                    // SAFETY: pidfds is non-NULL here (it asked for them) and
                    // writable (contract).
                    unsafe {
                        *pidfds = nsboot_pidfds {
                            stage1_pidfd: fds.stage1.into_raw_fd(),
                            stage2_pidfd: fds.stage2.into_raw_fd(),
                        }
                    };
                }
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = spawned };
                NSBOOT_STATUS_OK
            }
            Err(e) => {
                let status = match e {
                    caller::SpawnError::Encode(_) => NSBOOT_STATUS_WIRE,
                    caller::SpawnError::Start { .. } | caller::SpawnError::Socket(_) => NSBOOT_STATUS_SYSCALL,
                    _ => NSBOOT_STATUS_BOOTSTRAP_FAILED,
                };
                let mut error = nsboot_error::new(status, e.errno(), e.to_string());
                if let Some(f) = e.stage_failure() {
                    error = error.with_stage(f);
                }
                // SAFETY: err is NULL or valid (contract).
                unsafe { report(err, error) }
            }
        }
    })
}

/// Copy `text` and a NUL into `buf` (`len` bytes), `*out_len` = the size
/// needed (NUL included); `NSBOOT_STATUS_BUFFER_TOO_SMALL` when it does
/// not fit (buf untouched).
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `out_len` is non-NULL and
/// writable; `err` is NULL or valid.
unsafe fn give_text(text: &str, buf: *mut c_char, len: usize, out_len: *mut usize, err: *mut *mut nsboot_error) -> nsboot_status {
    let need = text.len() + 1;
    // SAFETY: out_len is non-NULL and writable (contract).
    unsafe { *out_len = need };
    if buf.is_null() || len < need {
        // SAFETY: err is NULL or valid (contract).
        return unsafe {
            report(err, nsboot_error::new(NSBOOT_STATUS_BUFFER_TOO_SMALL, None, format!("{need} bytes needed")))
        };
    }
    // SAFETY: buf has room for `need` bytes (checked above); the source is
    // a distinct Rust string.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    NSBOOT_STATUS_OK
}

/// What this kernel and build support, as a JSON object: openat2,
/// mount_setattr, open_tree, clone3, clone_into_cgroup, pidfd_open,
/// pidfd_send_signal, waitid_pidfd, time_namespace, idmapped_mounts,
/// namespaces, userns_allowed (probed by a child cloned into a user
/// namespace), the userns sysctls, newuidmap/newgidmap (path and whether
/// setuid or with file capabilities), dialects, caller_flags. Each item is
/// probed now. Written NUL-terminated into `buf`; `*out_len` is the size
/// needed (call with NULL/0 to ask).
///
/// - NULL: `out_len` must not be NULL; `buf` may be NULL with `len` 0; `err` may be NULL.
/// - Ownership: Writes into the caller's buffer.
/// - Threads: Any thread (the userns probe forks a child that only exits).
/// - Errors: `NSBOOT_STATUS_BUFFER_TOO_SMALL` (with `*out_len` set).
#[no_mangle]
pub extern "C" fn nsboot_features(buf: *mut c_char, len: usize, out_len: *mut usize, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if out_len.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "out_len is NULL".into())) };
        }
        let text = nsboot::features::features_json();
        // SAFETY: buf/len/out_len/err as documented (contract).
        unsafe { give_text(&text, buf, len, out_len, err) }
    })
}

/// The dry run: decode the bootstrap message `msg` (`msg_len` bytes,
/// `dialect` 0 = runc 1.1, 1 = runc ≥ 1.2) and write, without doing
/// anything, the ordered steps each stage would take, one
/// "stage-N: step" line each: the list the stages derive from the same
/// plan and log (`step: ...`, debug level) as they take them.
///
/// - NULL: `msg` and `out_len` must not be NULL; `buf` may be NULL with `len` 0; `err` may be NULL.
/// - Ownership: Borrows `msg`; writes into the caller's buffer.
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_WIRE` (bad message or plan), `NSBOOT_STATUS_INVALID_ARGUMENT` (dialect), `NSBOOT_STATUS_BUFFER_TOO_SMALL`.
#[no_mangle]
pub extern "C" fn nsboot_plan_explain(
    msg: *const u8,
    msg_len: usize,
    dialect: c_int,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if msg.is_null() || out_len.is_null() {
            // SAFETY: err is NULL or valid (contract).
            return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, "msg or out_len is NULL".into())) };
        }
        let Some(d) = dialect_from_c(dialect) else {
            // SAFETY: err is NULL or valid (contract).
            return unsafe {
                report(err, nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, format!("unknown dialect {dialect}")))
            };
        };
        // SAFETY: msg points to msg_len readable bytes (contract).
        let bytes = unsafe { std::slice::from_raw_parts(msg, msg_len) };
        match nsboot::stages::explain_message(bytes, d) {
            // SAFETY: buf/len/out_len/err as documented (contract).
            Ok(text) => unsafe { give_text(&text, buf, len, out_len, err) },
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_WIRE, e.errno(), e.to_string())) },
        }
    })
}
