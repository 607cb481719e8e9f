//! The container side: the process that returns from `nsboot::nsexec()` in
//! stage-2, PID 1 of the new PID namespace (or a member of a joined one,
//! for `exec`). It reads one [`InitMsg`] from the init socket, mounts the
//! overlay inside its own mount namespace, prepares the rootfs, brings `lo`
//! up and execs the command. The socket is close-on-exec: the host sees
//! EOF when the exec succeeded, or one [`Reply`] saying why not.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::mount::{mount, MsFlags};
use nsboot_oci::rootfs::{prepare, RootfsOptions, RootfsPlan};
use serde::{Deserialize, Serialize};

use crate::image::Overlay;
use crate::{Context, Fail, Result};

/// Orders from the host side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitMsg {
    /// `run`: the OCI config to prepare the rootfs from. `None` for `exec`.
    pub spec: Option<String>,
    /// Base of a relative `root.path` and bind sources.
    pub bundle: Option<PathBuf>,
    pub overlay: Option<Overlay>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Working directory (`exec` only: `run` takes `process.cwd`).
    pub cwd: String,
    /// Allocate a pseudo-terminal from the container's own /dev/ptmx, send
    /// its master to the host, make it the command's stdio and
    /// controlling terminal.
    pub tty: bool,
    /// Its initial size (rows, columns), set before the command starts.
    pub winsize: Option<(u16, u16)>,
    pub lo_up: bool,
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
    match &msg.spec {
        Some(spec) => {
            let opts = RootfsOptions { no_pivot: false, bundle: msg.bundle.clone() };
            let plan = RootfsPlan::from_json(spec.as_bytes(), &opts).ctx(|| "rootfs config".to_owned())?;
            prepare(&plan, &mut |_| {}).ctx(|| "prepare rootfs".to_owned())?;
        }
        None => nix::unistd::chdir(msg.cwd.as_str()).ctx(|| format!("chdir to {}", msg.cwd))?,
    }
    if msg.lo_up {
        crate::sys::loopback_up().ctx(|| "bring lo up".to_owned())?;
    }
    if msg.tty {
        console(sock, msg.winsize)?;
    }
    // The host side blocks the signals it forwards, and the mask is
    // inherited through the bootstrap: the command starts with none.
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&nix::sys::signal::SigSet::empty()), None)
        .ctx(|| "sigprocmask".to_owned())?;
    let Some((prog, args)) = msg.args.split_first() else {
        return Err(Fail::new(125, "no command given"));
    };
    let mut cmd = Command::new(prog);
    cmd.args(args).env_clear();
    for e in &msg.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let e = cmd.exec();
    Err(match e.kind() {
        std::io::ErrorKind::NotFound if !prog.contains('/') => {
            Fail::new(127, format!("exec: {prog:?}: executable file not found in $PATH"))
        }
        std::io::ErrorKind::NotFound => Fail::new(127, format!("exec: {prog:?}: no such file or directory")),
        std::io::ErrorKind::PermissionDenied => Fail::new(126, format!("exec: {prog:?}: permission denied")),
        _ => Fail::new(126, format!("exec: {prog:?}: {e}")),
    })
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
        let paths = [&l.lower, &l.upper, &l.work];
        if paths.iter().any(|p| p.to_string_lossy().contains([',', ':'])) {
            return Err(Fail::new(125, format!("overlay path with ',' or ':' is not supported: {}", l.upper.display())));
        }
        let mut data = format!("lowerdir={},upperdir={},workdir={}", l.lower.display(), l.upper.display(), l.work.display());
        if o.userxattr {
            data.push_str(",userxattr");
        }
        mount(Some("overlay"), &l.target, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
            .ctx(|| format!("mount overlay on {} ({data})", l.target.display()))?;
    }
    Ok(())
}
