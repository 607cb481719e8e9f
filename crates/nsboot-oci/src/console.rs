//! `process.terminal`: a pseudo-terminal made inside the container, its
//! slave the process's controlling terminal and stdio, its master handed
//! to the caller (runc's `setupConsole` + `--console-socket`).
//!
//! The pty comes from `/dev/pts/ptmx` of the container's devpts (the
//! rootfs code mounts devpts with `newinstance,ptmxmode=0666` and links
//! `/dev/ptmx` to `pts/ptmx`), so the slave is `/dev/pts/N` of the
//! container, whatever the host's ptys are. Call [`setup`] after the
//! rootfs is prepared (after pivot_root) and before
//! [`crate::process::ProcessPlan::apply`].

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;

use crate::error::{step, Result};
use crate::sys;

/// The name runc sends with the master fd (containerd/console opens the
/// master as `/dev/ptmx`; `utils.SendFile` sends the file's name).
pub const MASTER_NAME: &str = "/dev/ptmx";

/// A pty made in the container by [`Pty::open`].
#[derive(Debug)]
pub struct Pty {
    /// The master side, for the caller (send it with [`send_master`]).
    pub master: OwnedFd,
    slave: OwnedFd,
    /// `/dev/pts/N` in the container.
    pub slave_path: String,
}

impl Pty {
    /// Open `/dev/pts/ptmx` (the container's devpts), unlock it, open its
    /// slave through the master (TIOCGPTPEER: no path lookup) and size it
    /// (`consoleSize` as rows, columns).
    pub fn open(size: Option<(u16, u16)>) -> Result<Pty> {
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let master = open("/dev/pts/ptmx", flags, Mode::empty()).map_err(step("open", "/dev/pts/ptmx"))?;
        sys::unlock_pty(master.as_fd()).map_err(step("ioctl TIOCSPTLCK", "/dev/pts/ptmx"))?;
        let n = sys::pty_number(master.as_fd()).map_err(step("ioctl TIOCGPTN", "/dev/pts/ptmx"))?;
        let slave_path = format!("/dev/pts/{n}");
        let slave = sys::open_pty_peer(master.as_fd()).map_err(step("ioctl TIOCGPTPEER", slave_path.as_str()))?;
        if let Some((rows, cols)) = size {
            sys::set_winsize(slave.as_fd(), rows, cols).map_err(step("ioctl TIOCSWINSZ", slave_path.as_str()))?;
        }
        Ok(Pty { master, slave, slave_path })
    }

    /// Bind the slave onto `/dev/console` when that file exists (runc's
    /// `mountConsole`), make this process a session leader with the slave
    /// as its controlling terminal, and put the slave on fds 0, 1 and 2.
    /// Send the master first: after this, errors written to stderr go to
    /// the terminal.
    pub fn into_stdio(self) -> Result<()> {
        if Path::new("/dev/console").exists() {
            mount(Some(self.slave_path.as_str()), "/dev/console", None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(step("mount --bind", format!("{} /dev/console", self.slave_path)))?;
        }
        // A session leader already (a caller that did setsid) keeps its
        // session; setsid would fail with EPERM.
        let me = nix::unistd::getpid();
        if nix::unistd::getsid(None).ok() != Some(me) {
            nix::unistd::setsid().map_err(step("setsid", "process.terminal"))?;
        }
        sys::set_controlling_tty(self.slave.as_fd()).map_err(step("ioctl TIOCSCTTY", self.slave_path.as_str()))?;
        for fd in 0..=2 {
            sys::dup_onto(self.slave.as_fd(), fd).map_err(step("dup2", self.slave_path.as_str()))?;
        }
        Ok(())
    }
}

/// Connect to the console socket at `path` (in the runtime, before the
/// container process is made, as runc opens `--console-socket`: a bad
/// path fails create before anything exists). The fd is close-on-exec.
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let shown = path.to_string_lossy();
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(step("socket", "console socket"))?;
    let addr = UnixAddr::new(path).map_err(step("console socket path", shown.as_ref()))?;
    connect(sock.as_raw_fd(), &addr).map_err(step("connect", shown.as_ref()))?;
    Ok(sock)
}

/// Send `master` over the connected console socket with SCM_RIGHTS, the
/// message body being [`MASTER_NAME`] (what runc's `--console-socket`
/// peers receive).
pub fn send_master(sock: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(MASTER_NAME.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map_err(step("sendmsg SCM_RIGHTS", "console socket"))?;
    Ok(())
}
