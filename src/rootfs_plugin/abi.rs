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

/// The second table of the plugin: the whole OCI container (process setup,
/// seccomp, cgroups, hooks, console; `nsboot_oci::container`). Looked up
/// on demand, only by the `nsboot_container_*` C functions and by stage-2
/// when `NSBOOT_ROOTFS_EXEC` is set, so a bootstrap that only asks for a
/// rootfs never touches it. Versioned on its own: a plugin without this
/// symbol (an older one) still serves the rootfs table.
pub const CONTAINER_ENTRY_SYMBOL: &CStr = c"nsboot_container_plugin_v1";
/// Bumped on any change to [`ContainerV1`].
pub const CONTAINER_ABI: u32 = 1;

/// Where the plugin writes a text result (the features document).
#[repr(C)]
pub struct TextSink {
    pub ctx: *mut c_void,
    pub write: extern "C" fn(ctx: *mut c_void, text: *const u8, len: usize),
}

/// The container entry points. Every path and id is a NUL-terminated
/// string; optional ones may be NULL. Results are [`OK`], [`REFUSED`]
/// (nothing was created), [`FAILED`], [`PANICKED`]; errors go to `err`.
#[repr(C)]
pub struct ContainerV1 {
    pub abi: u32,
    pub version: *const c_char,
    /// `Container::create`: the init waits at the start gate; `*pid` is its pid.
    pub create: unsafe extern "C" fn(
        bundle: *const c_char,
        id: *const c_char,
        state_dir: *const c_char,
        console_socket: *const c_char,
        flags: u32,
        pid: *mut c_int,
        err: *const ErrorSink,
    ) -> c_int,
    /// `Container::run`: `*status` is the program's exit status (128+N after signal N).
    pub run: unsafe extern "C" fn(
        bundle: *const c_char,
        id: *const c_char,
        state_dir: *const c_char,
        console_socket: *const c_char,
        flags: u32,
        status: *mut c_int,
        err: *const ErrorSink,
    ) -> c_int,
    /// `start_by_state`.
    pub start: unsafe extern "C" fn(state_dir: *const c_char, err: *const ErrorSink) -> c_int,
    /// `kill_by_state`.
    pub kill: unsafe extern "C" fn(state_dir: *const c_char, sig: c_int, err: *const ErrorSink) -> c_int,
    /// `delete_by_state` (`flags` bit 0: force).
    pub delete: unsafe extern "C" fn(state_dir: *const c_char, flags: u32, err: *const ErrorSink) -> c_int,
    /// The `features` document (JSON) into `out`.
    pub features: unsafe extern "C" fn(out: *const TextSink, err: *const ErrorSink) -> c_int,
    /// Stage-2 of a bootstrap with `NSBOOT_ROOTFS_EXEC`: parse and check
    /// the process side of `json` (process, seccomp) into `*out`.
    pub exec_plan_new: unsafe extern "C" fn(json: *const u8, len: usize, out: *mut *mut c_void, err: *const ErrorSink) -> c_int,
    /// Apply the plan in the calling process and exec `process.args`;
    /// returns only on failure.
    pub exec_plan_exec: unsafe extern "C" fn(plan: *const c_void, err: *const ErrorSink) -> c_int,
    pub exec_plan_free: unsafe extern "C" fn(plan: *mut c_void),
}

// SAFETY: immutable static data, as PluginV1.
unsafe impl Sync for ContainerV1 {}
