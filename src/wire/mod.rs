//! The bootstrap wire format: runc's `INIT_MSG` netlink message.
//!
//! This layer knows bytes and types only: no syscalls, no `unsafe`.
//! [`decode`] turns untrusted bytes into a validated [`BootstrapConfig`];
//! [`encode`] turns a config back into the bytes runc's Go encoder writes.
//! Both take the [`Dialect`] because runc ≥ 1.2 reuses attribute numbers.

mod attr;
mod decode;
mod encode;
mod idmap;
pub mod json;
mod time;

pub use attr::*;
pub use decode::{decode, decode_header, MessageHeader};
pub use encode::{encode, encode_with};
pub use idmap::{IdMap, IdMapError, IdRange, MAX_ID_EXTENTS};
pub use time::{Clock, TimeOffset, TimeOffsetError, MAX_OFFSET_SECS};

use crate::ns::{NsPath, NsSet};
use std::ffi::CString;

/// Largest message nsboot accepts (header included). runc's messages are a
/// few KiB; an OCI config carried in the rootfs extension can be larger.
pub const MAX_MESSAGE_LEN: usize = 4 << 20;

/// Which runc wrote (or will read) the message and the sync stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// runc 1.1.x: leading `\0`, attribute 27290 = MOUNT_SOURCES.
    #[default]
    Runc11,
    /// runc ≥ 1.2: no leading byte, attribute 27290 = TIMENSOFFSET.
    Runc12,
}

/// The decoded, validated content of one bootstrap message.
///
/// Field order follows the attribute table of `shared/protocol.md`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// CLONE_FLAGS: namespaces to create.
    pub clone_flags: NsSet,
    /// NS_PATHS: namespaces to join, in the order given.
    pub ns_paths: Vec<NsPath>,
    /// UIDMAP.
    pub uid_map: Option<IdMap>,
    /// GIDMAP.
    pub gid_map: Option<IdMap>,
    /// SETGROUP.
    pub setgroup: bool,
    /// OOM_SCORE_ADJ, range-checked to -1000..=1000.
    pub oom_score_adj: Option<i32>,
    /// ROOTLESS_EUID.
    pub rootless_euid: bool,
    /// UIDMAPPATH: the `newuidmap` helper.
    pub uidmap_helper: Option<CString>,
    /// GIDMAPPATH: the `newgidmap` helper.
    pub gidmap_helper: Option<CString>,
    /// MOUNT_SOURCES (runc 1.1 only): one entry per container mount, empty
    /// for mounts that need no source fd (runc sends those too).
    pub mount_sources: Option<Vec<Vec<u8>>>,
    /// TIMENSOFFSET (runc ≥ 1.2) or the nsboot extension NSBOOT_TIMENS_OFFSETS
    /// (runc 1.1 dialect).
    pub time_offsets: Vec<TimeOffset>,
    /// Extension NSBOOT_ROOTFS_CONFIG: an OCI runtime-spec config.json that
    /// stage-2 applies (rootfs preparation) before returning.
    pub rootfs_config: Option<Vec<u8>>,
    /// Extension NSBOOT_ROOTFS_BUNDLE: directory a relative `root.path`
    /// is resolved against.
    pub rootfs_bundle: Option<CString>,
    /// Extension NSBOOT_ROOTFS_FLAGS (bit set, see `ROOTFS_FLAG_*`).
    pub rootfs_flags: u32,
    /// Extension NSBOOT_CALLER_FLAGS (bit set, see `CALLER_FLAG_*`): extra
    /// answers the caller asked for (pidfds). 0 = runc's protocol exactly.
    pub caller_flags: u32,
}

/// Why a message was refused. Every variant says what was wrong and where
/// (byte offsets count from the start of the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message header: need 16 bytes, got {got}")]
    ShortHeader { got: usize },
    #[error("message header: length {len} is below the 16-byte header")]
    LengthBelowHeader { len: u32 },
    #[error("message header: length {len} exceeds the {max}-byte cap")]
    TooLarge { len: u32, max: usize },
    #[error("message header: length {len} but only {got} bytes available")]
    Truncated { len: u32, got: usize },
    #[error("message type NLMSG_ERROR (2): the sender reported an error")]
    NlmsgError,
    #[error("message type {got}: expected INIT_MSG (62000)")]
    WrongType { got: u16 },
    #[error("message header: length {len} but {got} bytes were given (extra bytes after the message)")]
    TrailingData { len: u32, got: usize },
    #[error("attribute at offset {offset}: {reason}")]
    BadAttrHeader { offset: usize, reason: String },
    #[error("attribute at offset {offset}: nla_len {nla_len} is below the 4-byte attribute header")]
    AttrLenTooSmall { offset: usize, nla_len: u16 },
    #[error("attribute at offset {offset}: nla_len {nla_len} runs past the end of the message ({available} bytes left)")]
    AttrPastEnd { offset: usize, nla_len: u16, available: usize },
    #[error("attribute {kind} at offset {offset}: unknown attribute type")]
    UnknownAttr { kind: u16, offset: usize },
    #[error("attribute {name} ({kind}) at offset {offset}: not valid in the {dialect:?} dialect")]
    WrongDialect { name: &'static str, kind: u16, offset: usize, dialect: Dialect },
    #[error("attribute {name} ({kind}) at offset {offset}: given twice")]
    Duplicate { name: &'static str, kind: u16, offset: usize },
    #[error("attribute {name} ({kind}) at offset {offset}: expected {expected} bytes of payload, got {got}")]
    BadIntSize { name: &'static str, kind: u16, offset: usize, expected: usize, got: usize },
    #[error("attribute {name} ({kind}) at offset {offset}: string is not NUL-terminated")]
    MissingNul { name: &'static str, kind: u16, offset: usize },
    #[error("attribute {name} ({kind}) at offset {offset}: string has a NUL byte inside")]
    InnerNul { name: &'static str, kind: u16, offset: usize },
    #[error("attribute {name} ({kind}) at offset {offset}: {reason}")]
    BadValue { name: &'static str, kind: u16, offset: usize, reason: String },
    #[error("attribute {name} ({kind}) at offset {offset}: {source}")]
    BadIdMap { name: &'static str, kind: u16, offset: usize, source: IdMapError },
    #[error("attribute {name} ({kind}) at offset {offset}: {source}")]
    BadNsList { name: &'static str, kind: u16, offset: usize, source: crate::ns::NsListError },
    #[error("attribute {name} ({kind}) at offset {offset}: {source}")]
    BadTimeOffset { name: &'static str, kind: u16, offset: usize, source: TimeOffsetError },
    #[error("encode: {0}")]
    Encode(String),
}
