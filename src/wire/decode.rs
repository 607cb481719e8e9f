//! Decoding the bootstrap message: untrusted bytes in, a validated
//! [`BootstrapConfig`] or a [`WireError`] naming the attribute and its byte
//! offset out.
//!
//! Unlike runc's C `nl_parse`, nothing here trusts `nla_len`: an attribute
//! shorter than its own header, or one running past the message, is an
//! error, integers must have their exact size, and strings must carry their
//! NUL. Integers are host-endian (runc's Go encoder uses `nl.NativeEndian`).
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::attr::*;
use super::{BootstrapConfig, Dialect, IdMap, TimeOffset, WireError, MAX_MESSAGE_LEN};
use crate::ns::{parse_ns_list, NsSet};
use netlink_packet_core::{NetlinkBuffer, NlaBuffer};
use std::ffi::CString;

/// The fixed 16-byte `nlmsghdr` of a bootstrap message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Whole message length, header included.
    pub len: u32,
    /// `nlmsg_type` (always [`INIT_MSG`] once validated).
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

impl MessageHeader {
    /// Bytes still to read after the 16-byte header.
    pub fn payload_len(&self) -> usize {
        (self.len as usize).saturating_sub(NLMSG_HDRLEN)
    }
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// Validate the first 16 bytes of a message. Bytes past the 16th are
/// ignored, so the whole message may be passed as well.
///
/// Checks, in order: 16 bytes present; type is not `NLMSG_ERROR` and is
/// [`INIT_MSG`]; `16 <= len <= MAX_MESSAGE_LEN`.
pub fn decode_header(first16: &[u8]) -> Result<MessageHeader, WireError> {
    let short = || WireError::ShortHeader { got: first16.len() };
    let hdr = first16.get(..NLMSG_HDRLEN).ok_or_else(short)?;
    let h = MessageHeader {
        len: ne_u32(hdr, 0).ok_or_else(short)?,
        kind: ne_u16(hdr, 4).ok_or_else(short)?,
        flags: ne_u16(hdr, 6).ok_or_else(short)?,
        seq: ne_u32(hdr, 8).ok_or_else(short)?,
        pid: ne_u32(hdr, 12).ok_or_else(short)?,
    };
    if h.kind == NLMSG_ERROR {
        return Err(WireError::NlmsgError);
    }
    if h.kind != INIT_MSG {
        return Err(WireError::WrongType { got: h.kind });
    }
    if (h.len as usize) < NLMSG_HDRLEN {
        return Err(WireError::LengthBelowHeader { len: h.len });
    }
    if h.len as usize > MAX_MESSAGE_LEN {
        return Err(WireError::TooLarge { len: h.len, max: MAX_MESSAGE_LEN });
    }
    Ok(h)
}

/// Bit of an attribute in the "seen" set (attributes are 27281..=27303).
fn seen_bit(kind: u16) -> u64 {
    1u64 << (kind.wrapping_sub(CLONE_FLAGS_ATTR) & 63)
}

/// The attribute being decoded, for error context.
#[derive(Clone, Copy)]
struct At {
    name: &'static str,
    kind: u16,
    offset: usize,
}

impl At {
    fn bad_value(self, reason: impl Into<String>) -> WireError {
        WireError::BadValue {
            name: self.name,
            kind: self.kind,
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// A u32 of exactly 4 bytes.
    fn u32(self, v: &[u8]) -> Result<u32, WireError> {
        match <[u8; 4]>::try_from(v) {
            Ok(b) => Ok(u32::from_ne_bytes(b)),
            Err(_) => Err(WireError::BadIntSize {
                name: self.name,
                kind: self.kind,
                offset: self.offset,
                expected: 4,
                got: v.len(),
            }),
        }
    }

    /// A bool: 4 bytes (what runc's Boolmsg writes) or 1 byte (old
    /// senders); any non-zero value is true.
    fn bool(self, v: &[u8]) -> Result<bool, WireError> {
        match v.len() {
            1 | 4 => Ok(v.iter().any(|b| *b != 0)),
            got => Err(WireError::BadIntSize {
                name: self.name,
                kind: self.kind,
                offset: self.offset,
                expected: 4,
                got,
            }),
        }
    }

    /// The NUL-terminated payload without its final NUL; inner NULs are
    /// left to the caller.
    fn strip_nul(self, v: &[u8]) -> Result<&[u8], WireError> {
        match v.split_last() {
            Some((0, body)) => Ok(body),
            _ => {
                Err(WireError::MissingNul { name: self.name, kind: self.kind, offset: self.offset })
            }
        }
    }

    /// A NUL-terminated string with no inner NUL, without its NUL.
    fn string(self, v: &[u8]) -> Result<&[u8], WireError> {
        let body = self.strip_nul(v)?;
        if body.contains(&0) {
            return Err(WireError::InnerNul {
                name: self.name,
                kind: self.kind,
                offset: self.offset,
            });
        }
        Ok(body)
    }

    /// A non-empty path string.
    fn path(self, v: &[u8]) -> Result<CString, WireError> {
        let body = self.string(v)?;
        if body.is_empty() {
            return Err(self.bad_value("empty path"));
        }
        CString::new(body).map_err(|_| WireError::InnerNul {
            name: self.name,
            kind: self.kind,
            offset: self.offset,
        })
    }

    fn id_map(self, v: &[u8]) -> Result<IdMap, WireError> {
        IdMap::parse(self.string(v)?).map_err(|source| WireError::BadIdMap {
            name: self.name,
            kind: self.kind,
            offset: self.offset,
            source,
        })
    }

    fn time_offsets(self, v: &[u8]) -> Result<Vec<TimeOffset>, WireError> {
        TimeOffset::parse_list(self.string(v)?).map_err(|source| WireError::BadTimeOffset {
            name: self.name,
            kind: self.kind,
            offset: self.offset,
            source,
        })
    }
}

/// Parse OOM_SCORE_ADJ text: optional `-`, decimal digits, -1000..=1000.
fn parse_oom(at: At, text: &[u8]) -> Result<i32, WireError> {
    let shown = crate::text::Raw(text);
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(at.bad_value(format!("\"{shown}\" is not a decimal integer")));
    }
    let n = std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|n| (-1000..=1000).contains(n))
        .ok_or_else(|| at.bad_value(format!("\"{shown}\" is outside -1000..=1000")))?;
    Ok(n)
}

/// Split MOUNT_SOURCES as runc 1.1's C does (`send_mountsources` in
/// nsexec.c): it walks the whole payload, the attribute's own terminating
/// NUL included, skips every NUL and opens each non-empty string. runc's
/// Go side writes each entry followed by `\0` (an empty entry for a mount
/// that is not a bind mount, which gets no fd: `-1` in
/// `_LIBCONTAINER_MOUNT_FDS`), then Bytemsg appends one more `\0`; so the
/// last entry may be terminated by that final NUL alone (Go value
/// `"/etc\x00\x00/usr"`: `/etc`, an empty entry, `/usr`). Unlike runc we
/// require the attribute's final NUL (a string without it is read past
/// the buffer there). Empty entries are kept in place; only the non-empty
/// ones are opened, in order.
fn parse_mount_sources(at: At, v: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let list = at.strip_nul(v)?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    // The last entry's own terminator, when the sender wrote one.
    let body = list.strip_suffix(&[0]).unwrap_or(list);
    Ok(body.split(|b| *b == 0).map(<[u8]>::to_vec).collect())
}

fn apply(cfg: &mut BootstrapConfig, at: At, v: &[u8], dialect: Dialect) -> Result<(), WireError> {
    match at.kind {
        CLONE_FLAGS_ATTR => {
            let flags = at.u32(v)?;
            cfg.clone_flags = NsSet::from_clone_flags(flags).map_err(|extra| {
                at.bad_value(format!("flags {flags:#x} have non-namespace bits {extra:#x}"))
            })?;
        }
        NS_PATHS_ATTR => {
            cfg.ns_paths = parse_ns_list(at.string(v)?).map_err(|source| WireError::BadNsList {
                name: at.name,
                kind: at.kind,
                offset: at.offset,
                source,
            })?;
        }
        UIDMAP_ATTR => cfg.uid_map = Some(at.id_map(v)?),
        GIDMAP_ATTR => cfg.gid_map = Some(at.id_map(v)?),
        SETGROUP_ATTR => cfg.setgroup = at.bool(v)?,
        OOM_SCORE_ADJ_ATTR => cfg.oom_score_adj = Some(parse_oom(at, at.string(v)?)?),
        ROOTLESS_EUID_ATTR => cfg.rootless_euid = at.bool(v)?,
        UIDMAPPATH_ATTR => cfg.uidmap_helper = Some(at.path(v)?),
        GIDMAPPATH_ATTR => cfg.gidmap_helper = Some(at.path(v)?),
        MOUNT_SOURCES_ATTR => match dialect {
            Dialect::Runc11 => {
                // A runc >= 1.2 caller's TIMENSOFFSET reaching a bootstrap
                // that took it for runc 1.1: say so (no mount source is a
                // list of "monotonic|boottime SECS NSECS" lines).
                if let Some(Ok(list)) = at.string(v).ok().map(TimeOffset::parse_list) {
                    if !list.is_empty() {
                        return Err(at.bad_value(
                            "not a MOUNT_SOURCES list: it reads as runc >= 1.2 TIMENSOFFSET lines, \
                             so the caller speaks the runc >= 1.2 dialect (set NSBOOT_DIALECT=1.2)",
                        ));
                    }
                }
                cfg.mount_sources = Some(parse_mount_sources(at, v)?)
            }
            Dialect::Runc12 => cfg.time_offsets = at.time_offsets(v)?,
        },
        // May repeat: an OCI config larger than one attribute (65530 bytes)
        // is sent in consecutive chunks, concatenated in order.
        NSBOOT_ROOTFS_CONFIG_ATTR => cfg.rootfs_config.get_or_insert_with(Vec::new).extend_from_slice(at.string(v)?),
        NSBOOT_ROOTFS_BUNDLE_ATTR => cfg.rootfs_bundle = Some(at.path(v)?),
        NSBOOT_ROOTFS_FLAGS_ATTR => {
            let flags = at.u32(v)?;
            if flags & !ROOTFS_FLAGS_ALL != 0 {
                return Err(at.bad_value(format!(
                    "flags {flags:#x} have unknown bits {:#x}",
                    flags & !ROOTFS_FLAGS_ALL
                )));
            }
            cfg.rootfs_flags = flags;
        }
        NSBOOT_CALLER_FLAGS_ATTR => {
            let flags = at.u32(v)?;
            if flags & !CALLER_FLAGS_ALL != 0 {
                return Err(at.bad_value(format!(
                    "flags {flags:#x} have unknown bits {:#x}",
                    flags & !CALLER_FLAGS_ALL
                )));
            }
            cfg.caller_flags = flags;
        }
        NSBOOT_TIMENS_OFFSETS_ATTR => match dialect {
            Dialect::Runc11 => cfg.time_offsets = at.time_offsets(v)?,
            Dialect::Runc12 => {
                return Err(WireError::WrongDialect {
                    name: at.name,
                    kind: at.kind,
                    offset: at.offset,
                    dialect,
                })
            }
        },
        kind => return Err(WireError::UnknownAttr { kind, offset: at.offset }),
    }
    Ok(())
}

/// Decode one whole message: `buf` is exactly the bytes read (the header
/// and `len - 16` more). Attributes may come in any order; each may appear
/// once; absent ones keep their [`Default`] value.
pub fn decode(buf: &[u8], dialect: Dialect) -> Result<BootstrapConfig, WireError> {
    let hdr = decode_header(buf)?;
    let len = hdr.len as usize;
    if buf.len() < len {
        return Err(WireError::Truncated { len: hdr.len, got: buf.len() });
    }
    if buf.len() > len {
        return Err(WireError::TrailingData { len: hdr.len, got: buf.len() });
    }
    let msg = NetlinkBuffer::new_checked(buf)
        .map_err(|_| WireError::Truncated { len: hdr.len, got: buf.len() })?;
    let payload: &[u8] = msg.payload();

    let mut cfg = BootstrapConfig::default();
    let mut seen = 0u64;
    let mut pos = 0usize;
    while pos < payload.len() {
        let offset = NLMSG_HDRLEN + pos;
        let rest = payload.get(pos..).unwrap_or_default();
        let (Some(nla_len), Some(kind)) = (ne_u16(rest, 0), ne_u16(rest, 2)) else {
            return Err(WireError::BadAttrHeader {
                offset,
                reason: format!(
                    "{} trailing bytes, too few for a 4-byte attribute header",
                    rest.len()
                ),
            });
        };
        if (nla_len as usize) < NLA_HDRLEN {
            return Err(WireError::AttrLenTooSmall { offset, nla_len });
        }
        if nla_len as usize > rest.len() {
            return Err(WireError::AttrPastEnd { offset, nla_len, available: rest.len() });
        }
        // Checked above, so this cannot fail; the checked constructor keeps
        // `value()` from ever indexing out of bounds.
        let nla = NlaBuffer::new_checked(rest)
            .map_err(|e| WireError::BadAttrHeader { offset, reason: e.to_string() })?;
        // The raw type, not `nla.kind()`: that masks NLA_F_NET_BYTEORDER
        // (0x4000), which every runc attribute number has set.
        let name = attr_name(kind, dialect);
        let at = At { name, kind, offset };
        let known = name != "unknown";
        if !known {
            return Err(WireError::UnknownAttr { kind, offset });
        }
        if seen & seen_bit(kind) != 0 && kind != NSBOOT_ROOTFS_CONFIG_ATTR {
            return Err(WireError::Duplicate { name, kind, offset });
        }
        seen |= seen_bit(kind);
        apply(&mut cfg, at, nla.value(), dialect)?;
        // Attributes are padded to 4 bytes; a missing pad after the last
        // one is tolerated (the loop simply ends).
        pos = pos.saturating_add((nla_len as usize).saturating_add(3) & !3);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NsKind;
    use crate::wire::{Clock, IdMapError, TimeOffsetError};

    /// Build a message by hand: header + raw attribute bytes.
    fn msg_with(kind: u16, attrs: &[u8]) -> Vec<u8> {
        let len = (16 + attrs.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(attrs);
        m
    }

    fn msg(attrs: &[u8]) -> Vec<u8> {
        msg_with(INIT_MSG, attrs)
    }

    /// One attribute with the given nla_len (not necessarily the payload's).
    fn raw_attr(nla_len: u16, kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&nla_len.to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        raw_attr((4 + payload.len()) as u16, kind, payload)
    }

    fn str_attr(kind: u16, s: &[u8]) -> Vec<u8> {
        let mut p = s.to_vec();
        p.push(0);
        attr(kind, &p)
    }

    fn u32_attr(kind: u16, v: u32) -> Vec<u8> {
        attr(kind, &v.to_ne_bytes())
    }

    fn d11(attrs: &[u8]) -> Result<BootstrapConfig, WireError> {
        decode(&msg(attrs), Dialect::Runc11)
    }

    #[test]
    fn header_ok() {
        let m = msg(&[]);
        let h = decode_header(&m).unwrap();
        assert_eq!(h, MessageHeader { len: 16, kind: INIT_MSG, flags: 1, seq: 1, pid: 0 });
        assert_eq!(h.payload_len(), 0);
        assert_eq!(decode(&m, Dialect::Runc11).unwrap(), BootstrapConfig::default());
    }

    #[test]
    fn short_header() {
        let m = msg(&[]);
        for n in 0..16 {
            assert_eq!(decode_header(&m[..n]), Err(WireError::ShortHeader { got: n }));
            assert_eq!(decode(&m[..n], Dialect::Runc11), Err(WireError::ShortHeader { got: n }));
        }
    }

    #[test]
    fn wrong_type_and_nlmsg_error() {
        assert_eq!(decode_header(&msg_with(NLMSG_ERROR, &[])), Err(WireError::NlmsgError));
        assert_eq!(
            decode(&msg_with(NLMSG_ERROR, &[0; 20]), Dialect::Runc12),
            Err(WireError::NlmsgError)
        );
        assert_eq!(decode_header(&msg_with(16, &[])), Err(WireError::WrongType { got: 16 }));
    }

    #[test]
    fn length_checks() {
        let mut m = msg(&[]);
        m[..4].copy_from_slice(&15u32.to_ne_bytes());
        assert_eq!(decode_header(&m), Err(WireError::LengthBelowHeader { len: 15 }));
        m[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(decode_header(&m), Err(WireError::LengthBelowHeader { len: 0 }));

        let too_big = (MAX_MESSAGE_LEN + 1) as u32;
        m[..4].copy_from_slice(&too_big.to_ne_bytes());
        assert_eq!(
            decode_header(&m),
            Err(WireError::TooLarge { len: too_big, max: MAX_MESSAGE_LEN })
        );
        m[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(matches!(decode_header(&m), Err(WireError::TooLarge { .. })));
        // Exactly the cap is fine for the header.
        m[..4].copy_from_slice(&(MAX_MESSAGE_LEN as u32).to_ne_bytes());
        assert!(decode_header(&m).is_ok());
        assert_eq!(
            decode(&m, Dialect::Runc11),
            Err(WireError::Truncated { len: MAX_MESSAGE_LEN as u32, got: 16 })
        );
    }

    #[test]
    fn truncated_and_trailing() {
        let m = msg(&u32_attr(CLONE_FLAGS_ATTR, 0));
        assert_eq!(
            decode(&m[..20], Dialect::Runc11),
            Err(WireError::Truncated { len: 24, got: 20 })
        );
        let mut long = m.clone();
        long.extend_from_slice(&[0; 4]);
        assert_eq!(
            decode(&long, Dialect::Runc11),
            Err(WireError::TrailingData { len: 24, got: 28 })
        );
    }

    #[test]
    fn nla_len_zero_and_three() {
        for n in [0u16, 1, 3] {
            let a = raw_attr(n, CLONE_FLAGS_ATTR, &[0; 4]);
            assert_eq!(d11(&a), Err(WireError::AttrLenTooSmall { offset: 16, nla_len: n }));
        }
        // After a good attribute the offset moves on.
        let mut a = u32_attr(CLONE_FLAGS_ATTR, 0);
        a.extend(raw_attr(0, ROOTLESS_EUID_ATTR, &[]));
        assert_eq!(d11(&a), Err(WireError::AttrLenTooSmall { offset: 24, nla_len: 0 }));
    }

    #[test]
    fn nla_len_past_end() {
        let a = raw_attr(12, CLONE_FLAGS_ATTR, &[0; 4]);
        assert_eq!(d11(&a), Err(WireError::AttrPastEnd { offset: 16, nla_len: 12, available: 8 }));
        let a = raw_attr(u16::MAX, NS_PATHS_ATTR, b"abc\0");
        assert_eq!(
            d11(&a),
            Err(WireError::AttrPastEnd { offset: 16, nla_len: u16::MAX, available: 8 })
        );
    }

    #[test]
    fn partial_attr_header() {
        let mut a = u32_attr(CLONE_FLAGS_ATTR, 0);
        a.extend_from_slice(&[8, 0]);
        assert!(matches!(d11(&a), Err(WireError::BadAttrHeader { offset: 24, .. })));
    }

    #[test]
    fn missing_final_padding_tolerated() {
        // nla_len 5 ("a\0" would be 6; here a 1-char value without padding).
        let mut m = msg(&raw_attr(6, OOM_SCORE_ADJ_ATTR, b"5\0"));
        m.truncate(22);
        m[..4].copy_from_slice(&22u32.to_ne_bytes());
        assert_eq!(decode(&m, Dialect::Runc11).unwrap().oom_score_adj, Some(5));
    }

    #[test]
    fn clone_flags() {
        let f = (libc::CLONE_NEWNS | libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as u32;
        let c = d11(&u32_attr(CLONE_FLAGS_ATTR, f)).unwrap();
        assert_eq!(c.clone_flags.clone_flags(), f);
        assert!(c.clone_flags.contains(NsKind::User));
        // Non-namespace bits.
        let e = d11(&u32_attr(CLONE_FLAGS_ATTR, f | libc::CLONE_VM as u32)).unwrap_err();
        assert!(matches!(e, WireError::BadValue { name: "CLONE_FLAGS", offset: 16, .. }), "{e}");
    }

    #[test]
    fn int_of_wrong_size() {
        for n in [0usize, 1, 3, 5, 8] {
            let e = d11(&attr(CLONE_FLAGS_ATTR, &vec![0; n])).unwrap_err();
            assert_eq!(
                e,
                WireError::BadIntSize {
                    name: "CLONE_FLAGS",
                    kind: CLONE_FLAGS_ATTR,
                    offset: 16,
                    expected: 4,
                    got: n
                }
            );
        }
        let e = d11(&attr(NSBOOT_ROOTFS_FLAGS_ATTR, &[1, 0])).unwrap_err();
        assert!(matches!(e, WireError::BadIntSize { name: "NSBOOT_ROOTFS_FLAGS", got: 2, .. }));
    }

    #[test]
    fn bools() {
        let on = |v: &[u8]| d11(&attr(SETGROUP_ATTR, v)).map(|c| c.setgroup);
        assert_eq!(on(&1u32.to_ne_bytes()), Ok(true));
        assert_eq!(on(&0u32.to_ne_bytes()), Ok(false));
        assert_eq!(on(&0x0100_0000u32.to_ne_bytes()), Ok(true));
        assert_eq!(on(&[1]), Ok(true));
        assert_eq!(on(&[0]), Ok(false));
        for bad in [&[][..], &[1, 0], &[1, 0, 0], &[1, 0, 0, 0, 0]] {
            assert!(matches!(on(bad), Err(WireError::BadIntSize { name: "SETGROUP", .. })));
        }
        let c = d11(&attr(ROOTLESS_EUID_ATTR, &7u32.to_ne_bytes())).unwrap();
        assert!(c.rootless_euid);
        assert!(matches!(
            d11(&attr(ROOTLESS_EUID_ATTR, &[1, 0])),
            Err(WireError::BadIntSize { name: "ROOTLESS_EUID", .. })
        ));
    }

    #[test]
    fn string_without_nul() {
        let e = d11(&attr(NS_PATHS_ATTR, b"net:/x")).unwrap_err();
        assert_eq!(e, WireError::MissingNul { name: "NS_PATHS", kind: NS_PATHS_ATTR, offset: 16 });
        // Empty payload: no NUL either.
        let e = d11(&attr(UIDMAPPATH_ATTR, b"")).unwrap_err();
        assert!(matches!(e, WireError::MissingNul { name: "UIDMAPPATH", .. }));
        let e = d11(&attr(MOUNT_SOURCES_ATTR, b"/a\0/b")).unwrap_err();
        assert!(matches!(e, WireError::MissingNul { name: "MOUNT_SOURCES", .. }));
    }

    #[test]
    fn string_with_inner_nul() {
        let e = d11(&attr(OOM_SCORE_ADJ_ATTR, b"1\x002\0")).unwrap_err();
        assert!(matches!(e, WireError::InnerNul { name: "OOM_SCORE_ADJ", offset: 16, .. }));
        let e = d11(&attr(GIDMAPPATH_ATTR, b"/usr\0/bin\0")).unwrap_err();
        assert!(matches!(e, WireError::InnerNul { name: "GIDMAPPATH", .. }));
    }

    #[test]
    fn ns_paths() {
        let c = d11(&str_attr(NS_PATHS_ATTR, b"user:/proc/1/ns/user,net:/proc/1/ns/net")).unwrap();
        assert_eq!(c.ns_paths.len(), 2);
        assert_eq!(c.ns_paths[0].kind, NsKind::User);
        assert_eq!(c.ns_paths[1].path.as_bytes(), b"/proc/1/ns/net");
        let e = d11(&str_attr(NS_PATHS_ATTR, b"bogus:/x")).unwrap_err();
        assert!(matches!(e, WireError::BadNsList { name: "NS_PATHS", offset: 16, .. }), "{e}");
        let e = d11(&str_attr(NS_PATHS_ATTR, b"")).unwrap_err();
        assert!(matches!(e, WireError::BadNsList { .. }));
    }

    #[test]
    fn id_maps() {
        let mut a = str_attr(UIDMAP_ATTR, b"0 1000 1\n");
        a.extend(str_attr(GIDMAP_ATTR, b"0 1000 1\n1 100000 65536\n"));
        let c = d11(&a).unwrap();
        assert_eq!(c.uid_map, Some(IdMap::single(0, 1000, 1)));
        assert_eq!(c.gid_map.unwrap().0.len(), 2);
        let e = d11(&str_attr(GIDMAP_ATTR, b"0 0 0\n")).unwrap_err();
        assert_eq!(
            e,
            WireError::BadIdMap {
                name: "GIDMAP",
                kind: GIDMAP_ATTR,
                offset: 16,
                source: IdMapError::ZeroCount { line: 1 }
            }
        );
        let e = d11(&str_attr(UIDMAP_ATTR, b"")).unwrap_err();
        assert!(matches!(e, WireError::BadIdMap { source: IdMapError::Empty, .. }));
    }

    #[test]
    fn id_map_with_341_lines() {
        let text: String = (0..341).map(|i| format!("{i} {} 1\n", 1000 + i)).collect();
        let e = d11(&str_attr(UIDMAP_ATTR, text.as_bytes())).unwrap_err();
        assert!(matches!(
            e,
            WireError::BadIdMap {
                name: "UIDMAP",
                source: IdMapError::TooManyExtents { lines: 341, .. },
                ..
            }
        ));
        let text: String = (0..340).map(|i| format!("{i} {} 1\n", 1000 + i)).collect();
        assert_eq!(
            d11(&str_attr(UIDMAP_ATTR, text.as_bytes())).unwrap().uid_map.unwrap().0.len(),
            340
        );
    }

    #[test]
    fn oom_score_adj() {
        let oom = |s: &[u8]| d11(&str_attr(OOM_SCORE_ADJ_ATTR, s)).map(|c| c.oom_score_adj);
        assert_eq!(oom(b"0"), Ok(Some(0)));
        assert_eq!(oom(b"-1000"), Ok(Some(-1000)));
        assert_eq!(oom(b"1000"), Ok(Some(1000)));
        assert_eq!(oom(b"007"), Ok(Some(7)));
        for bad in [&b"1001"[..], b"-1001", b"", b"-", b"+5", b" 5", b"5x", b"99999999999"] {
            assert!(
                matches!(oom(bad), Err(WireError::BadValue { name: "OOM_SCORE_ADJ", .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn helpers_paths() {
        let mut a = str_attr(UIDMAPPATH_ATTR, b"/usr/bin/newuidmap");
        a.extend(str_attr(GIDMAPPATH_ATTR, b"/usr/bin/newgidmap"));
        let c = d11(&a).unwrap();
        assert_eq!(c.uidmap_helper.unwrap().as_bytes(), b"/usr/bin/newuidmap");
        assert_eq!(c.gidmap_helper.unwrap().as_bytes(), b"/usr/bin/newgidmap");
        let e = d11(&str_attr(UIDMAPPATH_ATTR, b"")).unwrap_err();
        assert!(matches!(e, WireError::BadValue { name: "UIDMAPPATH", .. }));
    }

    #[test]
    fn mount_sources() {
        // runc: each entry + NUL, then Bytemsg's NUL.
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"/a\0\0/b\0\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![b"/a".to_vec(), vec![], b"/b".to_vec()]));
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"\0\0\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![vec![], vec![]]));
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![]));
        // The last entry terminated only by the attribute's own NUL, as
        // runc's Go writes "/etc\x00\x00/usr" through Bytemsg: runc's C
        // opens /etc and /usr (issue 14 item 3).
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"/etc\0\0/usr\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![b"/etc".to_vec(), vec![], b"/usr".to_vec()]));
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"/a\0/b\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![b"/a".to_vec(), b"/b".to_vec()]));
        let c = d11(&attr(MOUNT_SOURCES_ATTR, b"/a\0")).unwrap();
        assert_eq!(c.mount_sources, Some(vec![b"/a".to_vec()]));
        // Without the attribute's final NUL: refused (runc reads past it).
        let e = d11(&attr(MOUNT_SOURCES_ATTR, b"/a\0/b")).unwrap_err();
        assert!(matches!(e, WireError::MissingNul { name: "MOUNT_SOURCES", .. }), "{e:?}");
    }

    #[test]
    fn attr_27290_depends_on_dialect() {
        let a = str_attr(TIMENSOFFSET_ATTR, b"monotonic 1 2\nboottime 3 4\n");
        let c = decode(&msg(&a), Dialect::Runc12).unwrap();
        assert_eq!(c.time_offsets.len(), 2);
        assert_eq!(c.time_offsets[1].clock, Clock::Boottime);
        assert_eq!(c.mount_sources, None);
        // The same bytes in runc 1.1 would be one mount source; the error
        // says which dialect they belong to.
        let c = decode(&msg(&a), Dialect::Runc11).unwrap_err();
        assert!(matches!(c, WireError::BadValue { name: "MOUNT_SOURCES", .. }));
        assert!(c.to_string().contains("NSBOOT_DIALECT=1.2"), "{c}");
        // A real mount source list is no such hint (the last entry may
        // end with the attribute's NUL alone, as runc's C accepts).
        let c = decode(&msg(&str_attr(TIMENSOFFSET_ATTR, b"/a")), Dialect::Runc11).unwrap();
        assert_eq!(c.mount_sources, Some(vec![b"/a".to_vec()]));
        let e = decode(&msg(&str_attr(TIMENSOFFSET_ATTR, b"realtime 1 2")), Dialect::Runc12)
            .unwrap_err();
        assert!(matches!(
            e,
            WireError::BadTimeOffset {
                name: "TIMENSOFFSET",
                source: TimeOffsetError::UnknownClock { line: 1, .. },
                ..
            }
        ));
    }

    #[test]
    fn wrong_dialect() {
        let a = str_attr(NSBOOT_TIMENS_OFFSETS_ATTR, b"boottime 5 0\n");
        let c = decode(&msg(&a), Dialect::Runc11).unwrap();
        assert_eq!(c.time_offsets.len(), 1);
        assert_eq!(
            decode(&msg(&a), Dialect::Runc12),
            Err(WireError::WrongDialect {
                name: "NSBOOT_TIMENS_OFFSETS",
                kind: NSBOOT_TIMENS_OFFSETS_ATTR,
                offset: 16,
                dialect: Dialect::Runc12
            })
        );
    }

    #[test]
    fn caller_flags() {
        let c = d11(&u32_attr(NSBOOT_CALLER_FLAGS_ATTR, CALLER_FLAG_PIDFDS)).unwrap();
        assert_eq!(c.caller_flags, CALLER_FLAG_PIDFDS);
        let e = d11(&u32_attr(NSBOOT_CALLER_FLAGS_ATTR, 0x80)).unwrap_err();
        assert!(matches!(e, WireError::BadValue { name: "NSBOOT_CALLER_FLAGS", .. }));
    }

    #[test]
    fn unknown_attr() {
        for kind in [0u16, 27280, 27291, 27299, 27305, 0x2A91 /* 27281 & ~0x4000 */] {
            let mut a = u32_attr(CLONE_FLAGS_ATTR, 0);
            a.extend(u32_attr(kind, 0));
            assert_eq!(d11(&a), Err(WireError::UnknownAttr { kind, offset: 24 }));
        }
    }

    #[test]
    fn duplicate() {
        let mut a = u32_attr(CLONE_FLAGS_ATTR, 0);
        a.extend(attr(ROOTLESS_EUID_ATTR, &0u32.to_ne_bytes()));
        a.extend(u32_attr(CLONE_FLAGS_ATTR, 0));
        assert_eq!(
            d11(&a),
            Err(WireError::Duplicate { name: "CLONE_FLAGS", kind: CLONE_FLAGS_ATTR, offset: 32 })
        );
        let mut a = str_attr(UIDMAP_ATTR, b"0 0 1");
        a.extend(str_attr(UIDMAP_ATTR, b"0 0 1"));
        assert!(matches!(d11(&a), Err(WireError::Duplicate { name: "UIDMAP", offset: 28, .. })));
    }

    #[test]
    fn extensions() {
        let mut a = str_attr(NSBOOT_ROOTFS_CONFIG_ATTR, br#"{"ociVersion":"1.0.2"}"#);
        a.extend(str_attr(NSBOOT_ROOTFS_BUNDLE_ATTR, b"/run/bundle"));
        a.extend(u32_attr(NSBOOT_ROOTFS_FLAGS_ATTR, ROOTFS_FLAG_NO_PIVOT));
        let c = decode(&msg(&a), Dialect::Runc12).unwrap();
        assert_eq!(c.rootfs_config.as_deref(), Some(&br#"{"ociVersion":"1.0.2"}"#[..]));
        assert_eq!(c.rootfs_bundle.unwrap().as_bytes(), b"/run/bundle");
        assert_eq!(c.rootfs_flags, ROOTFS_FLAG_NO_PIVOT);
        // A config in chunks is concatenated.
        let mut a = str_attr(NSBOOT_ROOTFS_CONFIG_ATTR, br#"{"ociVersion":"#);
        a.extend(str_attr(NSBOOT_ROOTFS_CONFIG_ATTR, br#""1.0.2"}"#));
        let c = d11(&a).unwrap();
        assert_eq!(c.rootfs_config.as_deref(), Some(&br#"{"ociVersion":"1.0.2"}"#[..]));
        let e = d11(&u32_attr(NSBOOT_ROOTFS_FLAGS_ATTR, 4)).unwrap_err();
        assert!(matches!(e, WireError::BadValue { name: "NSBOOT_ROOTFS_FLAGS", .. }));
    }

    #[test]
    fn errors_are_human() {
        let e = d11(&raw_attr(0, CLONE_FLAGS_ATTR, &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute at offset 16: nla_len 0 is below the 4-byte attribute header"
        );
        let e = d11(&attr(CLONE_FLAGS_ATTR, &[0; 3])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute CLONE_FLAGS (27281) at offset 16: expected 4 bytes of payload, got 3"
        );
    }
}
