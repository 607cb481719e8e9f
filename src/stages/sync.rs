//! The sync protocol between the stage processes: native-endian 32-bit
//! values over `SOCK_STREAM` socketpairs (runc's `enum sync_t`), plus the
//! stage-2 pid and SCM_RIGHTS fds for mount sources.

use std::io::IoSlice;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// One sync value. Numbers are runc's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMsg {
    UsermapPls,
    UsermapAck,
    RecvPidPls,
    RecvPidAck,
    Grandchild,
    ChildFinish,
    /// runc 1.1: MOUNTSOURCES_PLS; runc ≥ 1.2: TIMEOFFSETS_PLS (same value).
    ExtraPls,
    /// runc 1.1: MOUNTSOURCES_ACK; runc ≥ 1.2: TIMEOFFSETS_ACK.
    ExtraAck,
    /// nsboot, runc 1.1 dialect only (where 0x46 means mount sources): ask
    /// stage-0 to write the NSBOOT_TIMENS_OFFSETS offsets. Stage-to-stage
    /// only; no caller ever sees it.
    TimeOffsetsPls11,
    /// Answer to [`SyncMsg::TimeOffsetsPls11`].
    TimeOffsetsAck11,
}

impl SyncMsg {
    pub const fn value(self) -> u32 {
        match self {
            SyncMsg::UsermapPls => 0x40,
            SyncMsg::UsermapAck => 0x41,
            SyncMsg::RecvPidPls => 0x42,
            SyncMsg::RecvPidAck => 0x43,
            SyncMsg::Grandchild => 0x44,
            SyncMsg::ChildFinish => 0x45,
            SyncMsg::ExtraPls => 0x46,
            SyncMsg::ExtraAck => 0x47,
            SyncMsg::TimeOffsetsPls11 => 0x48,
            SyncMsg::TimeOffsetsAck11 => 0x49,
        }
    }
    /// The request/answer pair stage-1 uses for time namespace offsets:
    /// runc ≥ 1.2's TIMEOFFSETS_PLS/ACK (0x46/0x47), or nsboot's own pair in
    /// the runc 1.1 dialect, where 0x46/0x47 are MOUNTSOURCES_PLS/ACK.
    pub const fn time_offsets_pair(dialect: crate::wire::Dialect) -> (SyncMsg, SyncMsg) {
        match dialect {
            crate::wire::Dialect::Runc11 => (SyncMsg::TimeOffsetsPls11, SyncMsg::TimeOffsetsAck11),
            crate::wire::Dialect::Runc12 => (SyncMsg::ExtraPls, SyncMsg::ExtraAck),
        }
    }

    pub fn from_value(v: u32) -> Option<SyncMsg> {
        Some(match v {
            0x40 => SyncMsg::UsermapPls,
            0x41 => SyncMsg::UsermapAck,
            0x42 => SyncMsg::RecvPidPls,
            0x43 => SyncMsg::RecvPidAck,
            0x44 => SyncMsg::Grandchild,
            0x45 => SyncMsg::ChildFinish,
            0x46 => SyncMsg::ExtraPls,
            0x47 => SyncMsg::ExtraAck,
            0x48 => SyncMsg::TimeOffsetsPls11,
            0x49 => SyncMsg::TimeOffsetsAck11,
            _ => return None,
        })
    }
}

/// Why a sync exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the caller exited before {step} (its pidfd is readable)")]
    CallerGone { step: &'static str },
    #[error("{peer} exited before {step} (sync socket closed)")]
    PeerGone { peer: &'static str, step: &'static str },
    #[error("{step}: unexpected sync value {got:#x} from {peer}")]
    Unexpected { peer: &'static str, step: &'static str, got: u32 },
    #[error("{step}: sync with {peer}: {source}")]
    Io { peer: &'static str, step: &'static str, source: Errno },
    #[error("{step}: no fd in the message from {peer}")]
    NoFd { peer: &'static str, step: &'static str },
}

/// One end of a sync socketpair, and who is at the other end.
pub struct SyncChannel {
    fd: OwnedFd,
    peer: &'static str,
}

/// A fresh `SOCK_STREAM|SOCK_CLOEXEC` unix socketpair.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
}

impl SyncChannel {
    pub fn new(fd: OwnedFd, peer: &'static str) -> Self {
        SyncChannel { fd, peer }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn write_bytes(&self, b: &[u8], step: &'static str) -> Result<(), SyncError> {
        crate::sys::process::write_all_raw(self.fd.as_raw_fd(), b).map_err(|e| match e {
            Errno::EPIPE | Errno::ECONNRESET => SyncError::PeerGone { peer: self.peer, step },
            source => SyncError::Io { peer: self.peer, step, source },
        })
    }

    /// Wait for the peer, or fail when the caller process is gone.
    fn wait_peer(&self, step: &'static str) -> Result<(), SyncError> {
        super::watch::wait_readable(self.fd.as_raw_fd()).map_err(|_| SyncError::CallerGone { step })
    }

    fn read_exact(&self, b: &mut [u8], step: &'static str) -> Result<(), SyncError> {
        self.wait_peer(step)?;
        match crate::sys::process::read_full(self.fd.as_raw_fd(), b) {
            Ok(n) if n == b.len() => Ok(()),
            Ok(_) | Err(Errno::ECONNRESET) => Err(SyncError::PeerGone { peer: self.peer, step }),
            Err(source) => Err(SyncError::Io { peer: self.peer, step, source }),
        }
    }

    pub fn send(&self, m: SyncMsg, step: &'static str) -> Result<(), SyncError> {
        self.write_bytes(&m.value().to_ne_bytes(), step)
    }

    /// Read one raw sync value.
    pub fn recv_raw(&self, step: &'static str) -> Result<u32, SyncError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, step)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// Read one sync value; anything but `want` is an error.
    pub fn expect(&self, want: SyncMsg, step: &'static str) -> Result<(), SyncError> {
        let got = self.recv_raw(step)?;
        if got == want.value() {
            Ok(())
        } else {
            Err(SyncError::Unexpected { peer: self.peer, step, got })
        }
    }

    /// Stage-1's last words in one write: RECVPID_PLS, the stage-2 pid and
    /// CHILD_FINISH. Nothing in stage-1's report needs an answer, so it does
    /// not wait for RECVPID_ACK (runc 1.1 does: one more round trip between
    /// two processes on the bootstrap's critical path).
    pub fn send_pid_and_finish(&self, pid: i32, step: &'static str) -> Result<(), SyncError> {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&SyncMsg::RecvPidPls.value().to_ne_bytes());
        b[4..8].copy_from_slice(&pid.to_ne_bytes());
        b[8..].copy_from_slice(&SyncMsg::ChildFinish.value().to_ne_bytes());
        self.write_bytes(&b, step)
    }

    pub fn send_i32(&self, v: i32, step: &'static str) -> Result<(), SyncError> {
        self.write_bytes(&v.to_ne_bytes(), step)
    }

    pub fn recv_i32(&self, step: &'static str) -> Result<i32, SyncError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, step)?;
        Ok(i32::from_ne_bytes(b))
    }

    /// Send one fd with one data byte (SCM_RIGHTS).
    pub fn send_fd(&self, fd: RawFd, step: &'static str) -> Result<(), SyncError> {
        let data = [0u8; 1];
        let iov = [IoSlice::new(&data)];
        let fds = [fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) => return Err(SyncError::PeerGone { peer: self.peer, step }),
                Err(source) => return Err(SyncError::Io { peer: self.peer, step, source }),
            }
        }
    }

    /// Receive one fd sent by [`send_fd`](Self::send_fd) (close-on-exec).
    pub fn recv_fd(&self, step: &'static str) -> Result<OwnedFd, SyncError> {
        let mut data = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        self.wait_peer(step)?;
        let msg = loop {
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => break m,
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(SyncError::Io { peer: self.peer, step, source }),
            }
        };
        if msg.bytes == 0 {
            return Err(SyncError::PeerGone { peer: self.peer, step });
        }
        let mut got: Option<OwnedFd> = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for fd in fds {
                        // Wrap every received fd so extras get closed.
                        let owned = crate::sys::process::own_received_fd(fd);
                        if got.is_none() {
                            got = Some(owned);
                        }
                    }
                }
            }
        }
        got.ok_or(SyncError::NoFd { peer: self.peer, step })
    }
}

/// Send `bytes` (all of them) with `fds` attached to the first byte.
pub fn send_bytes_fds(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    let n = loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    crate::sys::process::write_all_raw(sock, bytes.get(n..).unwrap_or_default())
}

/// Receive exactly `buf.len()` bytes (or fewer at EOF: the count says)
/// and the fds attached to them (close-on-exec, at most `N`).
pub fn recv_bytes_fds<const N: usize>(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut got = 0;
    let mut fds = Vec::new();
    while got < buf.len() {
        let mut space = nix::cmsg_space!([RawFd; N]);
        let mut iov = [IoSliceMut::new(buf.get_mut(got..).unwrap_or_default())];
        let (n, mut new) = loop {
            match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(m) => {
                    let mut f = Vec::new();
                    if let Ok(cmsgs) = m.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(r) = c {
                                f.extend(r.into_iter().map(crate::sys::process::own_received_fd));
                            }
                        }
                    }
                    break (m.bytes, f);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        };
        fds.append(&mut new);
        if n == 0 {
            break;
        }
        got += n;
    }
    fds.truncate(N);
    Ok((got, fds))
}

/// Send one byte `tag` with `fds` attached (SCM_RIGHTS) on the socket
/// `sock` (the init socket: the caller's pidfds).
pub fn send_tagged_fds(sock: RawFd, tag: u8, fds: &[RawFd]) -> Result<(), Errno> {
    let data = [tag];
    let iov = [IoSlice::new(&data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receive what [`send_tagged_fds`] sent: the tag byte (None at EOF) and
/// the fds (close-on-exec), at most `N` of them (extras are closed).
pub fn recv_tagged_fds<const N: usize>(sock: RawFd) -> Result<(Option<u8>, Vec<OwnedFd>), Errno> {
    let mut data = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; N]);
    let (bytes, fds) = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = m.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(got) = c {
                            fds.extend(got.into_iter().map(crate::sys::process::own_received_fd));
                        }
                    }
                }
                break (m.bytes, fds);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    Ok(((bytes > 0).then_some(data[0]), fds.into_iter().take(N).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in 0x40..=0x49 {
            assert_eq!(SyncMsg::from_value(v).unwrap().value(), v);
        }
        assert_eq!(SyncMsg::from_value(0x4a), None);
        assert_eq!(SyncMsg::from_value(0x3f), None);
        let (p, a) = SyncMsg::time_offsets_pair(crate::wire::Dialect::Runc12);
        assert_eq!((p.value(), a.value()), (0x46, 0x47));
        let (p, a) = SyncMsg::time_offsets_pair(crate::wire::Dialect::Runc11);
        assert_eq!((p.value(), a.value()), (0x48, 0x49));
    }

    #[test]
    fn exchange_and_eof() {
        let (a, b) = pair().unwrap();
        let a = SyncChannel::new(a, "a");
        let b = SyncChannel::new(b, "b");
        a.send(SyncMsg::RecvPidPls, "t").unwrap();
        a.send_i32(1234, "t").unwrap();
        b.expect(SyncMsg::RecvPidPls, "t").unwrap();
        assert_eq!(b.recv_i32("t").unwrap(), 1234);
        a.send_pid_and_finish(77, "t").unwrap();
        b.expect(SyncMsg::RecvPidPls, "t").unwrap();
        assert_eq!(b.recv_i32("t").unwrap(), 77);
        b.expect(SyncMsg::ChildFinish, "t").unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        a.send_fd(devnull.as_raw_fd(), "t").unwrap();
        let fd = b.recv_fd("t").unwrap();
        assert!(fd.as_raw_fd() >= 0);
        a.send(SyncMsg::Grandchild, "t").unwrap();
        assert!(matches!(b.expect(SyncMsg::ChildFinish, "t"), Err(SyncError::Unexpected { got: 0x44, .. })));
        drop(a);
        assert!(matches!(b.recv_raw("t"), Err(SyncError::PeerGone { peer: "b", .. })));
    }
}
