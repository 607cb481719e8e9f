//! The C boundary: the only place with `extern "C"` and raw pointers.
//!
//! Every export runs inside [`boundary`], which catches unwinds (a panic
//! becomes `NSBOOT_STATUS_PANIC`, never an abort or unwind into C). Code
//! here converts and checks arguments, then calls the safe Rust API.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod api;
pub mod container;
pub mod ctor;
pub mod error;
pub mod msg;
pub mod rootfs;
pub mod server;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};



/// Run `f`, turning a panic into `on_panic`.
pub(crate) fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Borrow a C string argument; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-NULL, NUL-terminated per the caller's contract.
        Some(unsafe { CStr::from_ptr(p) })
    }
}
