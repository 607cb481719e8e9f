//! The container side: the process that returns from `nsboot::nsexec()` in
//! stage-2, PID 1 of the new PID namespace (or a member of a joined one,
//! for `exec`). It reads one [`InitMsg`] from the init socket, mounts the
//! overlay inside its own mount namespace, prepares the rootfs, brings `lo`
//! up and execs the command. The socket is close-on-exec: the host sees
//! EOF when the exec succeeded, or one [`Reply`] saying why not.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::mount::{mount, MsFlags};
use nix::errno::Errno;
use nsboot_oci::process::ExecSteps;
use nsboot_oci::rootfs::{prepare, RootfsOptions, RootfsPlan};
use nsboot_oci::seccomp::SeccompPlan;
use nsboot_oci::{ExecError, OciError, ProcessPlan};
use serde::{Deserialize, Serialize};

use crate::image::Overlay;
use crate::{Context, Fail, Result};

/// Orders from the host side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitMsg {
    /// The OCI config: its `process` (args, env, cwd, user, capabilities,
    /// noNewPrivileges, rlimits), `hostname` and `linux.seccomp` are
    /// applied; the rootfs too when `rootfs` is set (`run`; `exec` joins
    /// the container's).
    pub spec: String,
    pub rootfs: bool,
    /// Base of a relative `root.path` and bind sources.
    pub bundle: Option<PathBuf>,
    pub overlay: Option<Overlay>,
    /// Allocate a pseudo-terminal from the container's own /dev/ptmx, send
    /// its master to the host, make it the command's stdio and
    /// controlling terminal.
    pub tty: bool,
    /// Its initial size (rows, columns), set before the command starts.
    pub winsize: Option<(u16, u16)>,
    pub lo_up: bool,
    /// The compiled `linux.seccomp` (see `security::compiled`); `None`:
    /// compile it here, if the spec has one.
    #[serde(default)]
    pub seccomp_bpf: Option<String>,
    /// `--init`: stay PID 1 as a reaper that forwards signals to the command.
    #[serde(default)]
    pub init: bool,
    /// Die when the host-side nsrun dies (foreground runs and exec).
    pub die_with_parent: bool,
}

/// Why the command was not started.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub code: i32,
    pub msg: String,
}

fn env_fd(name: &str) -> Option<RawFd> {
    std::env::var(name).ok()?.parse().ok()
}

pub fn main() -> ! {
    let Some(fd) = env_fd("_LIBCONTAINER_INITPIPE") else {
        eprintln!("nsrun init: no init socket");
        std::process::exit(125)
    };
    // The log pipe (if any) must not reach the command.
    if let Some(l) = env_fd("_LIBCONTAINER_LOGPIPE") {
        let _ = nix::unistd::close(l);
    }
    // SAFETY: the fd number comes from the bootstrap environment: nsboot
    // checked it is open and it is ours alone (stage-0/1 have exited).
    #[allow(unsafe_code)]
    let mut sock = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = fcntl(&sock, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let err = match setup_and_exec(&mut sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let body = serde_json::to_vec(&Reply { code: err.code, msg: err.msg.clone() }).unwrap_or_default();
    if sock.write_all(&body).is_err() {
        eprintln!("nsrun: {}", err.msg);
    }
    std::process::exit(err.code)
}

enum Never {}

fn setup_and_exec(sock: &mut UnixStream) -> Result<Never> {
    // Room for a typical spec up front: one read instead of a growing series.
    let mut raw = Vec::with_capacity(64 << 10);
    sock.read_to_end(&mut raw).ctx(|| "init: read orders".to_owned())?;
    let msg: InitMsg = serde_json::from_slice(&raw).ctx(|| "init: parse orders".to_owned())?;
    if msg.die_with_parent {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).ctx(|| "prctl(PR_SET_PDEATHSIG)".to_owned())?;
    }
    if let Some(o) = &msg.overlay {
        mount_overlay(o)?;
    }
    // Checked by the host already (a bad config is 125 there); compiled
    // here, in the single-threaded container process, before any change.
    let process = ProcessPlan::from_json(msg.spec.as_bytes()).map_err(|e| Fail::new(125, format!("config: {e}")))?;
    let seccomp = match &msg.seccomp_bpf {
        Some(hex) => Some(crate::security::from_hex(hex)?),
        None => seccomp_of(&msg.spec)?,
    };
    if msg.rootfs {
        process.apply_sysctls().map_err(|e| Fail::new(125, e.to_string()))?;
        let opts = RootfsOptions { no_pivot: false, bundle: msg.bundle.clone() };
        let plan = RootfsPlan::from_json(msg.spec.as_bytes(), &opts).ctx(|| "rootfs config".to_owned())?;
        prepare(&plan, &mut |_| {}).ctx(|| "prepare rootfs".to_owned())?;
        // docker makes a missing working directory (as root, before the
        // user switch); a read-only root refuses, and the chdir names it.
        let _ = std::fs::create_dir_all(std::ffi::OsStr::from_bytes(process.cwd.as_bytes()));
    }
    if msg.lo_up {
        crate::sys::loopback_up().ctx(|| "bring lo up".to_owned())?;
    }
    if msg.tty {
        console(sock, msg.winsize)?;
    }
    if msg.init {
        crate::reaper::fork_reaper(sock)?;
    }
    // The host side blocks the signals it forwards, and the mask is
    // inherited through the bootstrap: the command starts with none.
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&nix::sys::signal::SigSet::empty()), None)
        .ctx(|| "sigprocmask".to_owned())?;
    // Seccomp loads as runc loads it: as late as possible with
    // no_new_privs (after the user switch), before the capabilities drop
    // without it (it then needs CAP_SYS_ADMIN).
    let nnp = process.no_new_privileges;
    let mut load = || -> std::result::Result<(), OciError> {
        match &seccomp {
            Some(s) => s.load().map(drop).map_err(|e| OciError::Caller { step: "seccomp", message: e.to_string() }),
            None => Ok(()),
        }
    };
    let mut steps = ExecSteps::default();
    if nnp {
        steps.before_start = Some(&mut load);
    } else {
        steps.privileged = Some(&mut load);
    }
    Err(exec_failure(process.apply(steps)))
}

/// `linux.seccomp` of the config, compiled.
fn seccomp_of(spec: &str) -> Result<Option<SeccompPlan>> {
    let v: serde_json::Value = serde_json::from_str(spec).ctx(|| "config".to_owned())?;
    match v.pointer("/linux/seccomp") {
        Some(s) if !s.is_null() => {
            let raw = serde_json::to_vec(s).unwrap_or_default();
            SeccompPlan::from_json(&raw).map(Some).map_err(|e| Fail::new(125, e.to_string()))
        }
        _ => Ok(None),
    }
}

/// Docker's wording and status for a command that could not be started.
fn exec_failure(e: OciError) -> Fail {
    match &e {
        OciError::Exec(ExecError::NotFound { program }) if !program.contains('/') => {
            Fail::new(127, format!("exec: {program:?}: executable file not found in $PATH"))
        }
        OciError::Exec(ExecError::NotFound { program }) => Fail::new(127, format!("exec: {program:?}: no such file or directory")),
        OciError::Exec(ExecError::Failed { path, errno: Errno::ENOENT | Errno::ENOTDIR }) => {
            Fail::new(127, format!("exec: {path:?}: no such file or directory"))
        }
        OciError::Exec(ExecError::Failed { path, errno: Errno::EACCES }) => Fail::new(126, format!("exec: {path:?}: permission denied")),
        OciError::Exec(ExecError::Failed { path, errno }) => Fail::new(126, format!("exec: {path:?}: {errno}")),
        _ => Fail::new(125, e.to_string()),
    }
}

/// The container's terminal: a pty of the container's devpts instance (so
/// `ttyname()` works inside), its master sent to the host (one byte `T`
/// with SCM_RIGHTS), its slave as stdin/stdout/stderr and controlling tty.
fn console(sock: &UnixStream, winsize: Option<(u16, u16)>) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::{AsFd, AsRawFd};
    let err = |what: &'static str| move |e: nix::errno::Errno| Fail::new(125, format!("allocate a terminal: {what}: {e}"));
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(err("open /dev/ptmx"))?;
    grantpt(&master).map_err(err("grantpt"))?;
    unlockpt(&master).map_err(err("unlockpt"))?;
    let name = ptsname_r(&master).map_err(err("ptsname"))?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(err("open the pty slave"))?;
    if let Some((rows, cols)) = winsize {
        crate::sys::set_winsize(slave.as_fd(), &libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 });
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &[std::io::IoSlice::new(b"T")], &cmsg, MsgFlags::empty(), None)
        .map_err(err("send the terminal to nsrun"))?;
    drop(master);
    nix::unistd::dup2_stdin(&slave).map_err(err("dup2"))?;
    nix::unistd::dup2_stdout(&slave).map_err(err("dup2"))?;
    nix::unistd::dup2_stderr(&slave).map_err(err("dup2"))?;
    drop(slave);
    crate::sys::set_controlling_tty(0).map_err(err("TIOCSCTTY"))
}

/// Mount the overlays, in this (new) mount namespace only: `/` is made
/// recursively slave first so nothing propagates back to the host.
fn mount_overlay(o: &Overlay) -> Result<()> {
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none).ctx(|| "make / rslave".to_owned())?;
    for l in &o.layers {
        let paths = [&l.lower, &l.upper, &l.work].into_iter().chain(&l.lowers);
        if let Some(bad) = paths.into_iter().find(|p| p.to_string_lossy().contains([',', ':'])) {
            return Err(Fail::new(125, format!("overlay path with ',' or ':' is not supported: {}", bad.display())));
        }
        let mut lower = l.lower.display().to_string();
        for more in &l.lowers {
            lower.push(':');
            lower.push_str(&more.to_string_lossy());
        }
        let mut data = format!("lowerdir={lower},upperdir={},workdir={}", l.upper.display(), l.work.display());
        if o.userxattr {
            data.push_str(",userxattr");
        }
        mount(Some("overlay"), &l.target, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
            .ctx(|| format!("mount overlay on {} ({data})", l.target.display()))?;
    }
    Ok(())
}
