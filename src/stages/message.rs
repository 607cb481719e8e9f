//! Reading the bootstrap message off the init pipe, short reads handled.

use super::error::StageError;
use crate::sys::process::read_full;
use crate::wire::{self, BootstrapConfig, Dialect, NLMSG_HDRLEN};

fn read_exact(fd: i32, buf: &mut [u8]) -> Result<(), StageError> {
    super::watch::wait_readable(fd)
        .map_err(|_| super::sync::SyncError::CallerGone { step: "reading the bootstrap message" })?;
    let got = read_full(fd, buf).map_err(StageError::ReadMessage)?;
    if got < buf.len() {
        return Err(StageError::ShortMessage { got, want: buf.len() });
    }
    Ok(())
}

/// Read exactly one message: the 16-byte header, then `len - 16` bytes
/// (after the header has been validated, so a hostile `len` cannot make us
/// allocate more than the cap).
pub fn read(fd: i32, dialect: Dialect) -> Result<BootstrapConfig, StageError> {
    let mut hdr = [0u8; NLMSG_HDRLEN];
    read_exact(fd, &mut hdr)?;
    let h = wire::decode_header(&hdr)?;
    let total = h.len as usize;
    let mut buf = vec![0u8; total];
    buf.get_mut(..NLMSG_HDRLEN).unwrap_or_default().copy_from_slice(&hdr);
    if let Some(rest) = buf.get_mut(NLMSG_HDRLEN..) {
        read_exact(fd, rest).map_err(|e| match e {
            StageError::ShortMessage { got, .. } => {
                StageError::ShortMessage { got: got + NLMSG_HDRLEN, want: total }
            }
            e => e,
        })?;
    }
    Ok(wire::decode(&buf, dialect)?)
}
