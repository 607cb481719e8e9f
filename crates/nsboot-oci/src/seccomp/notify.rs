//! Hand the seccomp notify listener fd to the agent at
//! `linux.seccomp.listenerPath`.
//!
//! runtime-spec (config-linux.md, "The Container Process State"): the
//! runtime connects to the UNIX socket at `listenerPath` and sends one
//! message whose payload is the `ContainerProcessState` JSON
//! (`ociVersion`, `fds`, `pid`, `metadata`, `state`) and whose SCM_RIGHTS
//! carry the fds named in `fds` in that order — here the single listener
//! fd, named `seccompFd`. runc does this from the host side after the
//! container process passes the fd back; call this on the host side too
//! (the path is a host path).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};

/// Errors sending the listener; each names the socket path and the call.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("linux.seccomp.listenerPath {path}: {op}: {source}")]
    Socket {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("linux.seccomp.listenerPath {path}: encoding or decoding the container process state: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("linux.seccomp.listenerPath {path}: short send ({sent} of {len} bytes)")]
    Short {
        path: PathBuf,
        sent: usize,
        len: usize,
    },
}

/// The `ContainerProcessState` sent with the fd.
pub fn process_state(state: &State, pid: i32, metadata: Option<&str>) -> ContainerProcessState {
    let mut s = ContainerProcessState::default();
    s.set_version(state.version().clone());
    s.set_fds(vec![SECCOMP_FD_NAME.to_owned()]);
    s.set_pid(pid);
    s.set_metadata(metadata.map(str::to_owned));
    s.set_state(state.clone());
    s
}

/// Connect to `listener_path`, send `state` as JSON with `listener` as
/// SCM_RIGHTS in the same message, and close the connection.
pub fn send_listener(
    listener_path: &Path,
    state: &ContainerProcessState,
    listener: BorrowedFd<'_>,
) -> Result<(), NotifyError> {
    let err = |op: &'static str| {
        move |source| NotifyError::Socket {
            path: listener_path.to_owned(),
            op,
            source,
        }
    };
    let payload = serde_json::to_vec(state).map_err(|source| NotifyError::Encode {
        path: listener_path.to_owned(),
        source,
    })?;
    let sock: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err("socket"))?;
    let addr = UnixAddr::new(listener_path).map_err(err("sockaddr_un"))?;
    socket::connect(sock.as_raw_fd(), &addr).map_err(err("connect"))?;
    let fds = [listener.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&payload)];
    let sent = socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(err("sendmsg"))?;
    if sent != payload.len() {
        return Err(NotifyError::Short {
            path: listener_path.to_owned(),
            sent,
            len: payload.len(),
        });
    }
    Ok(())
}

/// The agent side: read one message from an accepted connection and return
/// the `ContainerProcessState` and the fd named `seccompFd` (received with
/// `MSG_CMSG_CLOEXEC`). Errors name `path` (the agent's socket path).
pub fn recv_listener(
    conn: BorrowedFd<'_>,
    path: &Path,
) -> Result<(ContainerProcessState, OwnedFd), NotifyError> {
    let err = |op: &'static str| {
        move |source| NotifyError::Socket {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (len, fds) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(err("recvmsg"))?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(err("recvmsg"))? {
            if let socket::ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        (msg.bytes, fds)
    };
    let mut owned = fds
        .into_iter()
        .map(crate::sys_seccomp::own_received_fd)
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("SCM_RIGHTS"))?;
    let state: ContainerProcessState =
        serde_json::from_slice(&buf[..len]).map_err(|source| NotifyError::Encode {
            path: path.to_owned(),
            source,
        })?;
    let at = state.fds().iter().position(|n| n == SECCOMP_FD_NAME);
    match at {
        Some(i) if i < owned.len() => Ok((state, owned.swap_remove(i))),
        _ => Err(NotifyError::Socket {
            path: path.to_owned(),
            op: "seccompFd in SCM_RIGHTS",
            source: nix::errno::Errno::EBADMSG,
        }),
    }
}
