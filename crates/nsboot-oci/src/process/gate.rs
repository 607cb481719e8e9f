//! The create/start split of the OCI lifecycle: the container process
//! does everything up to (not including) the execve of the user's
//! program, tells the runtime it is *created*, and waits until *start*.
//!
//! Two pipes (`O_CLOEXEC`), made before the container process is forked:
//! the container writes one byte on `created` and then blocks reading
//! `start`; the runtime reads the `created` byte (end-of-file instead
//! means the container failed before it was created) and, on `start`,
//! writes one byte. runc does the same with its `exec.fifo` (a FIFO so
//! that `runc start` can be another process; here the runtime side is an
//! fd, which a caller can pass to another process the same way).

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::{step, OciError, Result};

/// The container's side.
#[derive(Debug)]
pub struct StartGate {
    created: OwnedFd,
    start: OwnedFd,
}

/// The runtime's side.
#[derive(Debug)]
pub struct StartHandle {
    created: OwnedFd,
    start: OwnedFd,
}

/// A connected pair (make it before forking the container process; drop
/// the side a process does not use right after the fork).
pub fn start_gate() -> Result<(StartGate, StartHandle)> {
    let (created_r, created_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(step("pipe2", "start gate"))?;
    let (start_r, start_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(step("pipe2", "start gate"))?;
    Ok((StartGate { created: created_w, start: start_r }, StartHandle { created: created_r, start: start_w }))
}

fn read_byte(fd: &OwnedFd) -> nix::Result<bool> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut b) {
            Ok(n) => return Ok(n == 1),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn write_byte(fd: &OwnedFd) -> nix::Result<()> {
    loop {
        match nix::unistd::write(fd, b"0") {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

impl StartGate {
    /// The container's side from fds it inherited: `created` is written
    /// once, `start` is read (e.g. the read end of a FIFO, as runc's
    /// exec.fifo, opened by the runtime).
    pub fn from_fds(created: OwnedFd, start: OwnedFd) -> Self {
        StartGate { created, start }
    }

    /// Say "created", then block until the runtime says "start". An
    /// end-of-file (the runtime closed its side without starting: delete)
    /// is an error; the container must then exit without exec.
    pub fn created_then_wait(self) -> Result<()> {
        write_byte(&self.created).map_err(step("write", "start gate (created)"))?;
        drop(self.created);
        match read_byte(&self.start).map_err(step("read", "start gate (start)"))? {
            true => {
                // The start fd stays open until execve closes it (it is
                // O_CLOEXEC): a starter waiting for the FIFO's last reader
                // to go (`container::start_by_state`) thereby knows that
                // the startContainer hooks ran and the program was exec'd,
                // and runs poststart only then.
                let _ = std::os::fd::IntoRawFd::into_raw_fd(self.start);
                Ok(())
            }
            false => {
                Err(OciError::Caller { step: "start gate", message: "closed without start (container deleted)".into() })
            }
        }
    }
}

impl StartHandle {
    /// The runtime's side from fds (the read end of `created`, the write
    /// end of `start`), e.g. kept by another process than the one that
    /// made the pair.
    pub fn from_fds(created: OwnedFd, start: OwnedFd) -> Self {
        StartHandle { created, start }
    }

    /// Block until the container is created (true) or has failed before
    /// that (false: its side was closed, the process exited).
    pub fn wait_created(&self) -> Result<bool> {
        read_byte(&self.created).map_err(step("read", "start gate (created)"))
    }

    /// Release the container: it execs the user's program.
    pub fn start(self) -> Result<()> {
        write_byte(&self.start).map_err(step("write", "start gate (start)"))
    }

    /// The fd `start` writes to, for passing to another process.
    pub fn start_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.start.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_then_start() {
        let (gate, handle) = start_gate().unwrap();
        let container = std::thread::spawn(move || gate.created_then_wait());
        assert!(handle.wait_created().unwrap());
        handle.start().unwrap();
        assert!(container.join().unwrap().is_ok());
    }

    #[test]
    fn delete_releases_the_container_with_an_error() {
        let (gate, handle) = start_gate().unwrap();
        let container = std::thread::spawn(move || gate.created_then_wait());
        assert!(handle.wait_created().unwrap());
        drop(handle);
        let e = container.join().unwrap().unwrap_err();
        assert_eq!(e.to_string(), "start gate: closed without start (container deleted)");
    }

    #[test]
    fn a_container_gone_before_created_reads_as_false() {
        let (gate, handle) = start_gate().unwrap();
        drop(gate);
        assert!(!handle.wait_created().unwrap());
    }

    #[test]
    fn from_fds_is_the_same_protocol() {
        let (created_r, created_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (start_r, start_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let gate = StartGate::from_fds(created_w, start_r);
        let handle = StartHandle::from_fds(created_r, start_w);
        let container = std::thread::spawn(move || gate.created_then_wait());
        assert!(handle.wait_created().unwrap());
        handle.start().unwrap();
        assert!(container.join().unwrap().is_ok());
    }
}
