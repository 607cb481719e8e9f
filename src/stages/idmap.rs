//! Writing a child's id maps from stage-0: directly into
//! `/proc/<pid>/{setgroups,uid_map,gid_map}`, falling back to the
//! newuidmap/newgidmap helper on EPERM.

use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::error::StageError;
use crate::wire::{BootstrapConfig, IdMap};

/// Write `data` to `/proc/<pid>/<file>` in one `write(2)` (the kernel
/// accepts a map only in a single write).
fn write_proc(pid: Pid, file: &str, data: &[u8]) -> Result<(), StageError> {
    let path = format!("/proc/{pid}/{file}");
    let err = |source| StageError::ProcWrite { path: path.clone(), source };
    let fd = open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(err)?;
    let n = nix::unistd::write(&fd, data).map_err(err)?;
    if n != data.len() {
        return Err(err(Errno::EIO));
    }
    Ok(())
}

fn run_helper(what: &'static str, helper: &CStr, pid: Pid, map: &IdMap) -> Result<(), StageError> {
    let shown = crate::text::raw_string(helper.to_bytes());
    let fail = |reason: String| StageError::MapHelper { what, helper: shown.clone(), pid: pid.as_raw(), reason };
    use crate::sys::process::{environ_copy, spawn_exec, wait_exit, Exit, ExecSetup};
    let mut argv = vec![helper.to_owned(), CString::new(pid.as_raw().to_string()).map_err(|_| fail("pid".to_owned()))?];
    for a in map.helper_args() {
        argv.push(CString::new(a).map_err(|_| fail("argument with a NUL byte".to_owned()))?);
    }
    // Dies with stage-0, so killing stage-0 mid-mapping leaves no helper.
    let setup = ExecSetup { inherit: &[], die_with_parent: true };
    let child = spawn_exec(helper, &argv, &environ_copy(), setup)
        .map_err(|e| fail(format!("could not run it: {}", std::io::Error::from_raw_os_error(e as i32))))?;
    match wait_exit(child).map_err(|e| fail(format!("could not wait for it: {e}")))? {
        Exit::Code(0) => Ok(()),
        other => Err(fail(other.to_string())),
    }
}

fn write_map(
    what: &'static str,
    file: &str,
    pid: Pid,
    map: &IdMap,
    helper: Option<&CStr>,
) -> Result<(), StageError> {
    match write_proc(pid, file, &map.to_proc_text()) {
        Ok(()) => Ok(()),
        Err(StageError::ProcWrite { source: Errno::EPERM, path }) => match helper {
            Some(h) => {
                crate::nslog!(Debug, "{path}: EPERM, using the {what} helper");
                run_helper(what, h, pid, map)
            }
            None => Err(StageError::ProcWrite { path, source: Errno::EPERM }),
        },
        Err(e) => Err(e),
    }
}

/// Map stage-1's user namespace.
pub fn write_maps(pid: Pid, cfg: &BootstrapConfig) -> Result<(), StageError> {
    if cfg.rootless_euid && !cfg.setgroup {
        match write_proc(pid, "setgroups", b"deny") {
            // Kernels before 3.19 have no setgroups file.
            Err(StageError::ProcWrite { source: Errno::ENOENT, .. }) => {}
            r => r?,
        }
    }
    if let Some(m) = &cfg.uid_map {
        write_map("newuidmap", "uid_map", pid, m, cfg.uidmap_helper.as_deref())?;
    }
    if let Some(m) = &cfg.gid_map {
        write_map("newgidmap", "gid_map", pid, m, cfg.gidmap_helper.as_deref())?;
    }
    Ok(())
}

/// Write `/proc/<pid>/timens_offsets` (before any process enters the new
/// time namespace).
pub fn write_time_offsets(pid: Pid, cfg: &BootstrapConfig) -> Result<(), StageError> {
    let mut text = Vec::new();
    for o in &cfg.time_offsets {
        text.extend_from_slice(&o.to_proc_text());
    }
    write_proc(pid, "timens_offsets", &text)
}
