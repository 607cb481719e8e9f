//! Host side of one container process (`run` and `exec`): start it through
//! [`nsboot::caller::spawn`], hand it its orders over the init socket, then
//! wait for it while forwarding signals and relaying a pseudo-terminal.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use nsboot::caller::{spawn, SpawnOptions, Spawned};
use nsboot::wire::BootstrapConfig;
use nsboot::SealedExe;

use crate::init::{InitMsg, Reply};
use crate::{Context, Fail, Result};

/// Where the container's stdio goes.
pub enum Io {
    /// Our own stdout/stderr; stdin too with `-i`, else /dev/null.
    Inherit { stdin: bool },
    /// A new pseudo-terminal relayed by [`wait`]; our stdin is forwarded
    /// with `-i`.
    Tty { interactive: bool },
    /// stdin from /dev/null, stdout and stderr appended to a file.
    Log(std::fs::File),
}

/// The pty's master side and our terminal's saved mode.
pub struct Tty {
    master: OwnedFd,
    interactive: bool,
    saved: Option<Termios>,
}

impl Drop for Tty {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

/// A started container process.
pub struct Started {
    pub spawned: Spawned,
    pub tty: Option<Tty>,
    signals: SignalFd,
    /// `--net slirp4netns`: held for its `Drop`, which ends it (after the
    /// container, when `wait` returns).
    #[allow(dead_code)]
    pub slirp: Option<crate::net::slirp::Slirp>,
}

impl Started {
    pub fn pid(&self) -> Pid {
        self.spawned.stage2
    }
}

const FORWARDED: [Signal; 6] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

fn signal_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    s.add(Signal::SIGCHLD);
    s.add(Signal::SIGWINCH);
    s
}

/// Whether our stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// Start `msg.args` in the container described by `cfg`. On failure
/// nothing is left running; the error carries the exit status to use
/// (125 for nsrun, 126/127 for the command).
pub fn start(
    sealed: &SealedExe,
    cfg: &BootstrapConfig,
    msg: &InitMsg,
    io: Io,
    cgroup_procs: &[OwnedFd],
    net: Option<&(crate::net::Network, crate::net::Attachment)>,
    slirp: Option<(&std::path::Path, &[crate::net::proxy::Port])>,
) -> Result<Started> {
    let mut cmd = Command::new(sealed.exec_path());
    cmd.arg0("nsrun").arg("init").env_clear();
    if !cgroup_procs.is_empty() {
        crate::sys::join_cgroup_on_spawn(&mut cmd, cgroup_procs.iter().map(|f| f.as_raw_fd()).collect());
    }
    let mut tty = None;
    match io {
        Io::Inherit { stdin } => {
            if !stdin {
                cmd.stdin(Stdio::null());
            }
        }
        Io::Log(f) => {
            let f2 = f.try_clone().ctx(|| "log file".to_owned())?;
            cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        }
        Io::Tty { interactive } => {
            // The pty itself is made inside the container (see init.rs).
            cmd.stdin(Stdio::null());
            let saved = if interactive && stdin_is_tty() {
                let t = termios::tcgetattr(std::io::stdin()).ctx(|| "read terminal mode".to_owned())?;
                let mut raw = t.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw).ctx(|| "set terminal raw mode".to_owned())?;
                Some(t)
            } else {
                None
            };
            tty = Some((interactive, saved));
        }
    }
    // Blocked before the spawn so that a Ctrl-C during startup is
    // forwarded rather than lost; the child starts with an empty mask
    // (std resets it).
    let set = signal_set();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx(|| "sigprocmask".to_owned())?;
    let signals = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ctx(|| "signalfd".to_owned())?;

    // Fatal lines of the bootstrap come through this pipe, so the user
    // sees one line rather than the stages' raw output.
    let (log_r, log_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".to_owned())?;
    let opts = SpawnOptions { log_fd: Some(log_w.as_fd()), log_level: Some(1), ..Default::default() };
    let spawned = spawn(cmd, cfg, opts);
    drop(log_w);
    let mut spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            let detail = fatal_line(log_r).unwrap_or_else(|| e.to_string());
            return Err(Fail::new(125, format!("cannot start container: {detail}")));
        }
    };
    drop(log_r);
    spawned.reap_stage1();
    // The container waits for its orders: plug it into its network first.
    if let Some((n, a)) = net {
        if let Err(e) = crate::net::attach(spawned.stage2.as_raw(), n, a) {
            let _ = kill(spawned.stage2, Signal::SIGKILL);
            let _ = spawned.wait_init();
            return Err(e);
        }
    }
    let slirp = match slirp.map(|(dir, ports)| crate::net::slirp::start(spawned.stage2.as_raw(), dir, ports)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            let _ = kill(spawned.stage2, Signal::SIGKILL);
            let _ = spawned.wait_init();
            return Err(e);
        }
    };
    let mut msg = msg.clone();
    if tty.is_some() {
        let ws = crate::sys::get_winsize(std::io::stdin().as_fd()).or_else(|| crate::sys::get_winsize(std::io::stdout().as_fd()));
        msg.winsize = ws.map(|w| (w.ws_row, w.ws_col));
    }
    let body = serde_json::to_vec(&msg).ctx(|| "encode orders".to_owned())?;
    let mut sock = UnixStream::from(spawned.init_sock.try_clone().ctx(|| "init socket".to_owned())?);
    let mut reply = Vec::new();
    let mut master = None;
    let talk = sock
        .write_all(&body)
        .and_then(|()| sock.shutdown(std::net::Shutdown::Write))
        .and_then(|()| receive(&sock, &mut reply, &mut master));
    if let (Some(_), Some(b'T')) = (&master, reply.first()) {
        reply.remove(0);
    }
    let failure = match talk {
        Err(e) => Some(Fail::new(125, format!("container init: {e}"))),
        Ok(_) if reply.is_empty() => None,
        Ok(_) => Some(match serde_json::from_slice::<Reply>(&reply) {
            Ok(r) => Fail::new(r.code, r.msg),
            Err(_) => Fail::new(125, format!("container init: bad reply {:?}", String::from_utf8_lossy(&reply))),
        }),
    };
    if let Some(f) = failure {
        let _ = kill(spawned.stage2, Signal::SIGKILL);
        let _ = spawned.wait_init();
        return Err(f);
    }
    // The init socket is done: the exec closed the container's end.
    let tty = match (tty, master) {
        (Some((interactive, saved)), Some(master)) => Some(Tty { master, interactive, saved }),
        (Some(_), None) => {
            let _ = kill(spawned.stage2, Signal::SIGKILL);
            let _ = spawned.wait_init();
            return Err(Fail::new(125, "container init sent no terminal"));
        }
        _ => None,
    };
    Ok(Started { spawned, tty, signals, slirp })
}

/// Read the init socket to its end: the bytes, and the pty master if one
/// came with them (SCM_RIGHTS).
fn receive(sock: &UnixStream, bytes: &mut Vec<u8>, master: &mut Option<OwnedFd>) -> std::io::Result<()> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    loop {
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let n = msg.bytes;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    #[allow(unsafe_code)]
                    // SAFETY: the kernel just installed this fd in our table
                    // for us (SCM_RIGHTS); nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    *master = Some(owned);
                }
            }
        }
        if n == 0 {
            return Ok(());
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// The `msg` of the first fatal JSON line on the bootstrap's log pipe.
fn fatal_line(r: OwnedFd) -> Option<String> {
    let _ = fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = Vec::new();
    let _ = std::fs::File::from(r).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let m = v.get("msg")?.as_str()?;
        // "nsexec-0[1234]: what failed" → "what failed"
        Some(m.split_once("]: ").map_or(m, |(_, rest)| rest).to_owned())
    })
}

/// Wait for the container process; forward signals to it, relay the pty.
/// Returns its status as a shell would (128+N for signal N).
pub fn wait(mut s: Started) -> i32 {
    let pid = s.pid();
    let stdin = std::io::stdin();
    let mut stdin_open = s.tty.as_ref().is_some_and(|t| t.interactive);
    let mut master_open = s.tty.is_some();
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Err(Errno::ECHILD) => break s.spawned.wait_init().unwrap_or(125),
            _ => {}
        }
        let mut fds = vec![PollFd::new(s.signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(t), true) = (&s.tty, master_open) {
            fds.push(PollFd::new(t.master.as_fd(), PollFlags::POLLIN));
        }
        let stdin_slot = fds.len();
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Ok(_) => {}
        }
        let ready = |i: usize| fds.get(i).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        let (sig_ready, master_ready, stdin_ready) = (ready(0), master_open && ready(1), stdin_open && ready(stdin_slot));
        drop(fds);
        if sig_ready {
            while let Ok(Some(info)) = s.signals.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else { continue };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let (Some(t), Some(ws)) = (&s.tty, crate::sys::get_winsize(std::io::stdin().as_fd())) {
                            crate::sys::set_winsize(t.master.as_fd(), &ws);
                        }
                    }
                    other => {
                        let _ = kill(pid, other);
                    }
                }
            }
        }
        if let (true, Some(t)) = (master_ready, &s.tty) {
            master_open = copy_once(t.master.as_raw_fd(), 1);
        }
        if let (true, Some(t)) = (stdin_ready, &s.tty) {
            if !copy_once(0, t.master.as_raw_fd()) {
                stdin_open = false;
                if !stdin_is_tty() {
                    // End of piped input: end-of-file for the program too.
                    let _ = nix::unistd::write(&t.master, &[4]);
                }
            }
        }
    };
    if let (true, Some(t)) = (master_open, &s.tty) {
        // What the command wrote just before it exited.
        let _ = fcntl(&t.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        while copy_once(t.master.as_raw_fd(), 1) {}
    }
    drop(s.tty.take());
    code
}

/// One read from `from` written in full to `to`; false at end of file or
/// on an error (EIO on a pty master whose slave is closed).
fn copy_once(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(borrow(from), &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(borrow(to), &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
                    Err(_) => return true,
                }
            }
            true
        }
        Err(Errno::EINTR) => true,
        Err(_) => false,
    }
}

fn borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: used only for fds 0, 1 and the pty master, all open for the
    // whole life of `wait`.
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}
