//! The C ABI between libnsboot and its rootfs plugin
//! (`libnsboot_rootfs.so`): one exported function returning a table of
//! entry points. Both sides are built from this crate in one `cargo build`;
//! the table carries the crate version and an ABI number, checked on load.

use std::ffi::{c_char, c_int, c_void, CStr};

/// The symbol the plugin exports: `extern "C" fn() -> *const PluginV1`.
pub const ENTRY_SYMBOL: &CStr = c"nsboot_rootfs_plugin_v1";
/// Bumped on any change to the structs below.
pub const ABI: u32 = 1;
/// NUL-terminated crate version, compared on load.
pub const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("version"),
};

/// `plan_new`/`prepare` results.
pub const OK: c_int = 0;
/// The config was refused (nothing was done).
pub const REFUSED: c_int = 1;
/// A preparation step failed.
#[allow(dead_code)] // only the plugin side returns it
pub const FAILED: c_int = 2;
/// The plugin panicked (a bug).
pub const PANICKED: c_int = 3;

/// Where the plugin reports an error: `errno` (0 if none) and the message.
#[repr(C)]
pub struct ErrorSink {
    pub ctx: *mut c_void,
    pub report: extern "C" fn(ctx: *mut c_void, errno: c_int, msg: *const u8, len: usize),
}

/// Callbacks `prepare` makes while it works.
#[repr(C)]
pub struct Hooks {
    pub ctx: *mut c_void,
    /// A non-fatal warning (UTF-8 text).
    pub warn: extern "C" fn(ctx: *mut c_void, msg: *const u8, len: usize),
    /// A step boundary (fault-injection point name).
    pub at: extern "C" fn(ctx: *mut c_void, name: *const u8, len: usize),
}

/// The plugin's entry points.
#[repr(C)]
pub struct PluginV1 {
    pub abi: u32,
    pub version: *const c_char,
    /// Parse and validate `json` (`len` bytes); `bundle` is NULL or a
    /// NUL-terminated base directory; `flags` are `NSBOOT_ROOTFS_*`. On
    /// [`OK`] stores an opaque plan in `*out`.
    pub plan_new: unsafe extern "C" fn(
        json: *const u8,
        len: usize,
        bundle: *const c_char,
        flags: u32,
        out: *mut *mut c_void,
        err: *const ErrorSink,
    ) -> c_int,
    /// Execute a plan in the calling process.
    pub prepare: unsafe extern "C" fn(plan: *const c_void, hooks: *const Hooks, err: *const ErrorSink) -> c_int,
    /// Free a plan from `plan_new`.
    pub plan_free: unsafe extern "C" fn(plan: *mut c_void),
}

// SAFETY: the table is immutable static data (function pointers and a
// pointer to a static string).
unsafe impl Sync for PluginV1 {}
