//! libnsboot's side of the plugin's container table: safe wrappers the C
//! API (`nsboot_container_*`) and stage-2 (`NSBOOT_ROOTFS_EXEC`) call.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

use super::abi::{self, ContainerV1, ErrorSink, TextSink};
use super::host::{collect, container_plugin, failure, Collected};
use super::RootfsFailure;

fn opt(p: Option<&CStr>) -> *const c_char {
    p.map_or(std::ptr::null(), CStr::as_ptr)
}

/// Run one plugin call with an error sink; `Err` unless it returned OK.
fn call(f: impl FnOnce(*const ErrorSink) -> c_int) -> Result<(), RootfsFailure> {
    let mut got = Collected(None);
    let sink = ErrorSink { ctx: &mut got as *mut Collected as *mut c_void, report: collect };
    match f(&sink) {
        abi::OK => Ok(()),
        s => Err(failure(s, got)),
    }
}

/// The plugin's container entry points (loaded on first use).
#[derive(Clone, Copy)]
pub struct ContainerPlugin(&'static ContainerV1);

impl std::fmt::Debug for ContainerPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContainerPlugin")
    }
}

/// What create/run need.
#[derive(Debug, Clone, Copy)]
pub struct CreateArgs<'a> {
    pub bundle: &'a CStr,
    pub id: &'a CStr,
    pub state_dir: Option<&'a CStr>,
    pub console_socket: Option<&'a CStr>,
    pub flags: u32,
}

impl ContainerPlugin {
    /// Load the plugin if needed and get its container table.
    pub fn get() -> Result<Self, RootfsFailure> {
        container_plugin().map(ContainerPlugin)
    }

    /// Create the container; the init's pid.
    pub fn create(&self, a: CreateArgs<'_>) -> Result<i32, RootfsFailure> {
        let mut pid: c_int = 0;
        // SAFETY: every pointer is a live C string or NULL where the ABI
        // allows it; `pid` and the sink are valid for the call.
        call(|err| unsafe {
            (self.0.create)(a.bundle.as_ptr(), a.id.as_ptr(), opt(a.state_dir), opt(a.console_socket), a.flags, &mut pid, err)
        })?;
        Ok(pid)
    }

    /// Create, start, wait, delete; the program's exit status.
    pub fn run(&self, a: CreateArgs<'_>) -> Result<i32, RootfsFailure> {
        let mut status: c_int = 0;
        // SAFETY: as in create.
        call(|err| unsafe {
            (self.0.run)(a.bundle.as_ptr(), a.id.as_ptr(), opt(a.state_dir), opt(a.console_socket), a.flags, &mut status, err)
        })?;
        Ok(status)
    }

    pub fn start(&self, state_dir: &CStr) -> Result<(), RootfsFailure> {
        // SAFETY: a live C string and a valid sink.
        call(|err| unsafe { (self.0.start)(state_dir.as_ptr(), err) })
    }

    pub fn kill(&self, state_dir: &CStr, sig: c_int) -> Result<(), RootfsFailure> {
        // SAFETY: as in start.
        call(|err| unsafe { (self.0.kill)(state_dir.as_ptr(), sig, err) })
    }

    pub fn delete(&self, state_dir: &CStr, flags: u32) -> Result<(), RootfsFailure> {
        // SAFETY: as in start.
        call(|err| unsafe { (self.0.delete)(state_dir.as_ptr(), flags, err) })
    }

    /// The features document (JSON).
    pub fn features(&self) -> Result<String, RootfsFailure> {
        extern "C" fn write(ctx: *mut c_void, text: *const u8, len: usize) {
            // SAFETY: ctx is the String below, alive for the call; text
            // points to `len` bytes for the duration of this callback.
            let (out, b) = unsafe { (&mut *(ctx as *mut String), std::slice::from_raw_parts(text, len)) };
            out.push_str(&String::from_utf8_lossy(b));
        }
        let mut out = String::new();
        let sink = TextSink { ctx: &mut out as *mut String as *mut c_void, write };
        // SAFETY: the sinks are valid for the call.
        call(|err| unsafe { (self.0.features)(&sink, err) })?;
        Ok(out)
    }
}

/// Stage-2's process plan (`NSBOOT_ROOTFS_EXEC`): checked in stage-0,
/// executed in stage-2.
pub struct ExecStep {
    table: &'static ContainerV1,
    plan: NonNull<c_void>,
}

impl std::fmt::Debug for ExecStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecStep").field("plan", &self.plan).finish()
    }
}

impl ExecStep {
    /// Parse and check the process side (process, seccomp) of `json`.
    pub fn new(json: &[u8]) -> Result<ExecStep, RootfsFailure> {
        let table = container_plugin()?;
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: json/len describe a live slice; out and the sink are valid.
        call(|err| unsafe { (table.exec_plan_new)(json.as_ptr(), json.len(), &mut out, err) })?;
        NonNull::new(out)
            .map(|plan| ExecStep { table, plan })
            .ok_or_else(|| RootfsFailure { refused: false, errno: None, message: "the plugin returned no process plan".into() })
    }

    /// Apply the plan and exec `process.args`: returns only on failure.
    pub fn exec(&self) -> RootfsFailure {
        // SAFETY: plan came from this table's exec_plan_new, not freed.
        match call(|err| unsafe { (self.table.exec_plan_exec)(self.plan.as_ptr(), err) }) {
            Err(e) => e,
            Ok(()) => RootfsFailure { refused: false, errno: None, message: "exec returned without an error".into() },
        }
    }
}

impl Drop for ExecStep {
    fn drop(&mut self) {
        // SAFETY: plan came from exec_plan_new and is freed once.
        unsafe { (self.table.exec_plan_free)(self.plan.as_ptr()) }
    }
}
