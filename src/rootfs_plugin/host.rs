//! libnsboot's side of the plugin boundary: find and load the plugin once,
//! and wrap its plans in a safe type.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::OnceLock;

use nix::errno::Errno;

use super::abi::{self, ContainerV1, ErrorSink, Hooks, PluginV1};
use crate::sys::dl::{c_path, object_path, Library};

/// Why the rootfs step failed: what the plugin said, or why it could not be
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RootfsFailure {
    /// The config was refused before anything was done (as opposed to a
    /// failed step, or a plugin that could not be loaded).
    pub refused: bool,
    pub errno: Option<Errno>,
    pub message: String,
}

impl RootfsFailure {
    fn load(message: String) -> Self {
        RootfsFailure { refused: false, errno: None, message }
    }
}

const FILE: &str = "libnsboot_rootfs.so";

/// Candidate paths, in search order (see the module documentation).
fn candidates() -> Vec<PathBuf> {
    // libc's getenv, not std::env (whose lock and copying the library need
    // nowhere else).
    if let Some(p) = crate::sys::process::getenv(c"NSBOOT_ROOTFS_PLUGIN").filter(|p| !p.as_bytes().is_empty()) {
        use std::os::unix::ffi::OsStrExt;
        return vec![PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes()))];
    }
    let mut dirs = Vec::new();
    let here = candidates as fn() -> Vec<PathBuf> as *const c_void;
    if let Some(dir) = object_path(here).as_deref().and_then(|p| p.parent()).map(|d| d.to_path_buf()) {
        dirs.push(dir);
    }
    if let Some(d) = option_env!("LIBNSBOOT_PLUGIN_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    let mut out = Vec::new();
    for d in dirs {
        for name in [format!("{FILE}.0"), FILE.to_owned()] {
            let p = d.join(name);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.push(PathBuf::from(format!("{FILE}.0")));
    out
}

/// The loaded plugin: the rootfs table, and the container table when the
/// plugin has one (why not: the message).
#[derive(Clone)]
struct Loaded {
    rootfs: &'static PluginV1,
    container: Result<&'static ContainerV1, String>,
}

fn load() -> Result<Loaded, String> {
    let mut tried = Vec::new();
    let paths = candidates();
    let last = paths.len().saturating_sub(1);
    for (i, path) in paths.into_iter().enumerate() {
        let shown = path.display().to_string();
        // A path that does not exist: next candidate, quietly. (The last
        // candidate is a bare soname for the loader's own search.)
        if i < last && !path.exists() {
            tried.push(shown);
            continue;
        }
        let Some(c) = c_path(&path) else { continue };
        let lib = Library::open(&c).map_err(|e| {
            if i == last && i > 0 {
                format!(
                    "the rootfs plugin {FILE}.0 was not found (tried {}, then the loader's search path: {e}; set NSBOOT_ROOTFS_PLUGIN to its path)",
                    tried.join(", ")
                )
            } else {
                format!("cannot load the rootfs plugin {shown}: {e}")
            }
        })?;
        let entry = lib.symbol(abi::ENTRY_SYMBOL).map_err(|e| format!("{shown} is not an nsboot rootfs plugin: {e}"))?;
        // SAFETY: ENTRY_SYMBOL is defined by the plugin (crates/nsboot-oci-
        // plugin/src/lib.rs) with exactly this signature.
        let entry: extern "C" fn() -> *const PluginV1 = unsafe { std::mem::transmute(entry) };
        let table = entry();
        // SAFETY: the entry returns NULL or a pointer to its static table,
        // which lives as long as the (never unloaded) library.
        let Some(table) = (unsafe { table.as_ref() }) else {
            return Err(format!("{shown}: the plugin returned no entry table"));
        };
        // SAFETY: `version` points to a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(table.version) };
        if table.abi != abi::ABI || version != abi::VERSION {
            return Err(format!(
                "{shown}: plugin ABI {} version {} does not match libnsboot's ABI {} version {}",
                table.abi,
                version.to_string_lossy(),
                abi::ABI,
                abi::VERSION.to_string_lossy()
            ));
        }
        let container = container_table(&lib, &shown);
        return Ok(Loaded { rootfs: table, container });
    }
    Err("no candidate path for the rootfs plugin".to_owned())
}

/// The plugin's container table (a dlsym: the code is already mapped).
fn container_table(lib: &Library, shown: &str) -> Result<&'static ContainerV1, String> {
    let entry = lib
        .symbol(abi::CONTAINER_ENTRY_SYMBOL)
        .map_err(|e| format!("{shown} has no container entry points (an older plugin?): {e}"))?;
    // SAFETY: CONTAINER_ENTRY_SYMBOL is defined by the plugin with exactly
    // this signature (crates/nsboot-oci-plugin/src/container.rs).
    let entry: extern "C" fn() -> *const ContainerV1 = unsafe { std::mem::transmute(entry) };
    // SAFETY: NULL or a pointer to the plugin's static table.
    let table = unsafe { entry().as_ref() }.ok_or_else(|| format!("{shown}: no container table"))?;
    // SAFETY: `version` points to a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(table.version) };
    if table.abi != abi::CONTAINER_ABI || version != abi::VERSION {
        return Err(format!(
            "{shown}: container ABI {} version {} does not match libnsboot's ABI {} version {}",
            table.abi,
            version.to_string_lossy(),
            abi::CONTAINER_ABI,
            abi::VERSION.to_string_lossy()
        ));
    }
    Ok(table)
}

fn loaded() -> Result<&'static Loaded, RootfsFailure> {
    static PLUGIN: OnceLock<Result<Loaded, String>> = OnceLock::new();
    PLUGIN.get_or_init(load).as_ref().map_err(|e| RootfsFailure::load(e.clone()))
}

/// The plugin's table, loaded on first use.
fn plugin() -> Result<&'static PluginV1, RootfsFailure> {
    loaded().map(|l| l.rootfs)
}

/// The plugin's container table (loads the plugin on first use).
pub(crate) fn container_plugin() -> Result<&'static ContainerV1, RootfsFailure> {
    loaded()?.container.clone().map_err(RootfsFailure::load)
}

/// Load the plugin now (it is otherwise loaded by the first
/// [`RootfsStep::new`]); later calls return the same result.
pub fn load_plugin() -> Result<(), RootfsFailure> {
    plugin().map(|_| ())
}

/// Collects what the plugin reports through an [`ErrorSink`].
pub(crate) struct Collected(pub(crate) Option<(c_int, String)>);

pub(crate) extern "C" fn collect(ctx: *mut c_void, errno: c_int, msg: *const u8, len: usize) {
    // SAFETY: ctx is the `Collected` passed with this sink, alive for the
    // plugin call; msg points to `len` bytes for the duration of this call.
    let (out, bytes) = unsafe { (&mut *(ctx as *mut Collected), std::slice::from_raw_parts(msg, len)) };
    out.0 = Some((errno, String::from_utf8_lossy(bytes).into_owned()));
}

pub(crate) fn failure(status: c_int, got: Collected) -> RootfsFailure {
    let (errno, message) = got.0.unwrap_or((0, format!("the rootfs plugin failed (status {status}) without a message")));
    let message = if status == abi::PANICKED { format!("internal error in the rootfs plugin: {message}") } else { message };
    RootfsFailure {
        refused: status == abi::REFUSED,
        errno: (errno != 0).then(|| Errno::from_raw(errno)),
        message,
    }
}

/// A validated rootfs plan, held by the plugin.
pub struct RootfsStep {
    table: &'static PluginV1,
    plan: NonNull<c_void>,
}

impl std::fmt::Debug for RootfsStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootfsStep").field("plan", &self.plan).finish()
    }
}

impl RootfsStep {
    /// Load the plugin if needed and have it parse and validate `json`.
    /// `flags` are `NSBOOT_ROOTFS_*` (already checked by the caller).
    pub fn new(json: &[u8], bundle: Option<&CStr>, flags: u32) -> Result<RootfsStep, RootfsFailure> {
        let table = plugin()?;
        let mut got = Collected(None);
        let sink = ErrorSink { ctx: &mut got as *mut Collected as *mut c_void, report: collect };
        let mut out: *mut c_void = std::ptr::null_mut();
        let bundle: *const c_char = bundle.map_or(std::ptr::null(), |b| b.as_ptr());
        // SAFETY: json/len describe a live slice, bundle is NULL or a live C
        // string, `out` and `sink` are valid for the call.
        let status = unsafe { (table.plan_new)(json.as_ptr(), json.len(), bundle, flags, &mut out, &sink) };
        match (status, NonNull::new(out)) {
            (abi::OK, Some(plan)) => Ok(RootfsStep { table, plan }),
            (abi::OK, None) => Err(RootfsFailure::load("the rootfs plugin returned no plan".to_owned())),
            (s, _) => Err(failure(s, got)),
        }
    }

    /// Execute the plan in this process. `warn` gets non-fatal warnings,
    /// `at` each step boundary's name.
    pub fn prepare(&self, warn: &mut dyn FnMut(&str), at: &dyn Fn(&str)) -> Result<(), RootfsFailure> {
        struct Ctx<'a> {
            warn: &'a mut dyn FnMut(&str),
            at: &'a dyn Fn(&str),
        }
        extern "C" fn on_warn(ctx: *mut c_void, msg: *const u8, len: usize) {
            // SAFETY: ctx is the `Ctx` below, alive for the prepare call;
            // msg points to `len` bytes for the duration of this call.
            let (ctx, bytes) = unsafe { (&mut *(ctx as *mut Ctx), std::slice::from_raw_parts(msg, len)) };
            (ctx.warn)(&String::from_utf8_lossy(bytes));
        }
        extern "C" fn on_at(ctx: *mut c_void, name: *const u8, len: usize) {
            // SAFETY: as in on_warn.
            let (ctx, bytes) = unsafe { (&mut *(ctx as *mut Ctx), std::slice::from_raw_parts(name, len)) };
            (ctx.at)(&String::from_utf8_lossy(bytes));
        }
        let mut ctx = Ctx { warn, at };
        let hooks = Hooks { ctx: &mut ctx as *mut Ctx as *mut c_void, warn: on_warn, at: on_at };
        let mut got = Collected(None);
        let sink = ErrorSink { ctx: &mut got as *mut Collected as *mut c_void, report: collect };
        // SAFETY: `plan` came from this table's plan_new and is not freed
        // yet; hooks and sink are valid for the call.
        let status = unsafe { (self.table.prepare)(self.plan.as_ptr(), &hooks, &sink) };
        if status == abi::OK {
            Ok(())
        } else {
            Err(failure(status, got))
        }
    }
}

impl Drop for RootfsStep {
    fn drop(&mut self) {
        // SAFETY: `plan` came from this table's plan_new and is freed once.
        unsafe { (self.table.plan_free)(self.plan.as_ptr()) }
    }
}
