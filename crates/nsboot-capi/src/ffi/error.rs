//! Status codes and the owned error object of the C API.

use std::ffi::{c_char, c_int, CString};

/// Result of every fallible C API call. 0 is success.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nsboot_status {
    /// Success.
    NSBOOT_STATUS_OK = 0,
    /// A required pointer argument was NULL.
    NSBOOT_STATUS_NULL_PARAMETER = 1,
    /// An argument was malformed (bad map text, unknown namespace, ...).
    NSBOOT_STATUS_INVALID_ARGUMENT = 2,
    /// A bootstrap message could not be encoded or decoded.
    NSBOOT_STATUS_WIRE = 3,
    /// A system call failed (see the errno).
    NSBOOT_STATUS_SYSCALL = 4,
    /// The bootstrap (stage-0/1/2) reported a failure.
    NSBOOT_STATUS_BOOTSTRAP_FAILED = 5,
    /// Rootfs preparation failed.
    NSBOOT_STATUS_ROOTFS = 6,
    /// An output buffer was too small (the needed size is reported).
    NSBOOT_STATUS_BUFFER_TOO_SMALL = 7,
    /// A container operation (`nsboot_container_*`) failed: the message
    /// names the step, the key, path or syscall.
    NSBOOT_STATUS_CONTAINER = 8,
    /// nsboot panicked (a bug); the call had no effect beyond what the
    /// message says.
    NSBOOT_STATUS_PANIC = 99,
}

/// An error: status, errno (0 if none) and a message with context.
/// Owned by the caller; free with `nsboot_error_free`.
pub struct nsboot_error {
    status: nsboot_status,
    errno: c_int,
    message: CString,
    /// A stage's structured error (NSBOOT_CALLER_ERROR_RECORD).
    stage: Option<StageRecord>,
}

/// `StageFailure` with its strings as C strings.
struct StageRecord {
    stage: c_int,
    step: CString,
    syscall: Option<CString>,
    path: Option<CString>,
    cause: Option<CString>,
    hint: Option<CString>,
}

fn c_text(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl nsboot_error {
    pub(crate) fn new(status: nsboot_status, errno: Option<nix::errno::Errno>, message: String) -> Self {
        let message = c_text(&message);
        nsboot_error { status, errno: errno.map(|e| e as c_int).unwrap_or(0), message, stage: None }
    }

    /// Attach a stage's structured error.
    pub(crate) fn with_stage(mut self, f: &nsboot::diag::StageFailure) -> Self {
        self.stage = Some(StageRecord {
            stage: c_int::from(f.stage),
            step: c_text(&f.step),
            syscall: f.syscall.as_deref().map(c_text),
            path: f.path.as_deref().map(c_text),
            cause: f.cause.map(|c| c_text(c.name())),
            hint: f.hint.as_deref().map(c_text),
        });
        self
    }
}

/// The stage (0, 1, 2) whose failure `err` reports, or -1 when `err` is
/// not a stage's structured error (see `NSBOOT_CALLER_ERROR_RECORD`).
///
/// - NULL: NULL `err` gives -1.
/// - Ownership: Borrows `err`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_stage(err: *const nsboot_error) -> c_int {
    super::boundary(-1, || {
        // SAFETY: NULL or returned by nsboot and not yet freed (contract).
        unsafe { err.as_ref() }.and_then(|e| e.stage.as_ref()).map_or(-1, |s| s.stage)
    })
}

/// Which string field of a stage record.
fn record_field(err: *const nsboot_error, pick: fn(&StageRecord) -> Option<&CString>) -> *const c_char {
    super::boundary(std::ptr::null(), || {
        // SAFETY: NULL or returned by nsboot and not yet freed (contract).
        unsafe { err.as_ref() }.and_then(|e| e.stage.as_ref()).and_then(pick).map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// What the failing stage was doing ("clone stage-1", "write uid_map",
/// "join net namespace", ...); NULL when `err` has no stage record.
///
/// - NULL: NULL `err` (or no record) gives NULL.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_step(err: *const nsboot_error) -> *const c_char {
    record_field(err, |r| Some(&r.step))
}

/// The failing system call ("clone", "unshare", "setns", "write",
/// "execve", ...); NULL when unknown or no record.
///
/// - NULL: NULL `err` (or none) gives NULL.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_syscall(err: *const nsboot_error) -> *const c_char {
    record_field(err, |r| r.syscall.as_ref())
}

/// The path involved (a namespace path, /proc/PID/uid_map, the helper);
/// NULL when none.
///
/// - NULL: NULL `err` (or none) gives NULL.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_path(err: *const nsboot_error) -> *const c_char {
    record_field(err, |r| r.path.as_ref())
}

/// The diagnosed cause, a stable name ("userns_max_zero",
/// "map_helper_missing", "map_helper_not_setuid", "no_subordinate_ids",
/// "host_seccomp", "userns_clone_disabled", "apparmor_userns",
/// "userns_limit_reached", "proc_masked", "sysfs_without_netns"); NULL
/// when not diagnosed.
///
/// - NULL: NULL `err` (or none) gives NULL.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_cause(err: *const nsboot_error) -> *const c_char {
    record_field(err, |r| r.cause.as_ref())
}

/// What to change to fix the diagnosed cause; NULL when not diagnosed.
///
/// - NULL: NULL `err` (or none) gives NULL.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_hint(err: *const nsboot_error) -> *const c_char {
    record_field(err, |r| r.hint.as_ref())
}

/// Store `e` into `*err` when `err` is non-NULL; return its status.
///
/// # Safety
/// `err` is NULL or a valid pointer to writable `*mut nsboot_error` storage.
pub(crate) unsafe fn report(err: *mut *mut nsboot_error, e: nsboot_error) -> nsboot_status {
    let status = e.status;
    if !err.is_null() {
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *err = Box::into_raw(Box::new(e)) };
    }
    status
}

/// The message of `err` (NUL-terminated, valid until `nsboot_error_free`).
///
/// NULL `err` returns a static empty string. Thread-safe.
///
/// - NULL: NULL `err` gives a static empty string.
/// - Ownership: The string belongs to `err`: valid until `nsboot_error_free(err)`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_message(err: *const nsboot_error) -> *const c_char {
    super::boundary(c"".as_ptr(), || {
        if err.is_null() {
            return c"".as_ptr();
        }
        // SAFETY: a non-NULL err was returned by nsboot and not yet freed.
        unsafe { (*err).message.as_ptr() }
    })
}

/// The errno behind `err`, or 0 when the failure had none (or `err` is NULL).
///
/// - NULL: NULL `err` gives 0.
/// - Ownership: Borrows `err`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_errno(err: *const nsboot_error) -> c_int {
    super::boundary(0, || {
        if err.is_null() {
            return 0;
        }
        // SAFETY: a non-NULL err was returned by nsboot and not yet freed.
        unsafe { (*err).errno }
    })
}

/// The status of `err` (`NSBOOT_STATUS_NULL_PARAMETER` for NULL).
///
/// - NULL: NULL `err` gives `NSBOOT_STATUS_NULL_PARAMETER`.
/// - Ownership: Borrows `err`.
/// - Threads: Any thread (read-only).
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_status(err: *const nsboot_error) -> nsboot_status {
    super::boundary(nsboot_status::NSBOOT_STATUS_PANIC, || {
        if err.is_null() {
            return nsboot_status::NSBOOT_STATUS_NULL_PARAMETER;
        }
        // SAFETY: a non-NULL err was returned by nsboot and not yet freed.
        unsafe { (*err).status }
    })
}

/// Free an error. NULL is a no-op.
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `err` (once).
/// - Threads: Any thread, not concurrently with other uses of `err`.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_error_free(err: *mut nsboot_error) {
    super::boundary((), || {
        if !err.is_null() {
            // SAFETY: err came from Box::into_raw in `report` and is freed once.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}
