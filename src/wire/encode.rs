//! Encoding a [`BootstrapConfig`] into the bytes runc's Go encoder writes.
//!
//! Behaviour matched (not code): `nl.NewNetlinkRequest(InitMsg, 0)` gives a
//! header with `NLM_F_REQUEST` and pid 0; `Int32msg` and `Boolmsg` are
//! 8-byte attributes (a bool is a u32 0/1); `Bytemsg` has
//! `nla_len = 4 + len + 1` (its NUL) and is zero-padded to 4 bytes. The
//! attribute order is runc 1.1's `bootstrapData`, then nsboot extensions in
//! number order. Everything is host-endian.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use super::attr::*;
use super::{BootstrapConfig, Dialect, TimeOffset, WireError, MAX_MESSAGE_LEN};
use crate::ns::format_ns_list;

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn int32(&mut self, kind: u16, value: u32) {
        self.buf.extend_from_slice(&8u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&value.to_ne_bytes());
    }

    fn boolean(&mut self, kind: u16, value: bool) {
        self.int32(kind, u32::from(value));
    }

    /// runc's Bytemsg: value, one NUL, zero padding to 4 bytes.
    fn bytes(&mut self, kind: u16, value: &[u8]) -> Result<(), WireError> {
        let len = NLA_HDRLEN + value.len() + 1;
        let nla_len = u16::try_from(len).map_err(|_| {
            WireError::Encode(format!(
                "attribute {} ({kind}) would be {len} bytes, above the 65535 nla_len limit",
                attr_name(kind, Dialect::Runc11)
            ))
        })?;
        self.buf.extend_from_slice(&nla_len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.push(0);
        let padded = (len + 3) & !3;
        self.buf.resize(self.buf.len() + (padded - len), 0);
        Ok(())
    }

    /// A string attribute that must not hold a NUL of its own.
    fn string(&mut self, kind: u16, dialect: Dialect, value: &[u8]) -> Result<(), WireError> {
        if value.contains(&0) {
            return Err(WireError::Encode(format!(
                "{} contains a NUL byte",
                attr_name(kind, dialect)
            )));
        }
        self.bytes(kind, value)
    }

    /// A path attribute: non-empty (the decoder refuses empty paths).
    fn path(&mut self, kind: u16, dialect: Dialect, value: &[u8]) -> Result<(), WireError> {
        if value.is_empty() {
            return Err(WireError::Encode(format!("{} is empty", attr_name(kind, dialect))));
        }
        self.string(kind, dialect, value)
    }
}

/// Largest NSBOOT_ROOTFS_CONFIG chunk: 4 (header) + 65530 + 1 (NUL) = 65535.
const ROOTFS_CONFIG_CHUNK: usize = 65530;

/// Encode with sequence number 1, the first request runc sends.
pub fn encode(cfg: &BootstrapConfig, dialect: Dialect) -> Result<Vec<u8>, WireError> {
    encode_with(cfg, dialect, 1)
}

/// Encode with a given sequence number.
///
/// Refuses (with [`WireError::Encode`]) what [`super::decode`] would refuse
/// or what the dialect cannot carry: mount sources in runc ≥ 1.2, invalid
/// id maps or time offsets, an out-of-range OOM score, NUL bytes or commas
/// where the format cannot hold them, an attribute above 65535 bytes, a
/// message above [`MAX_MESSAGE_LEN`].
pub fn encode_with(
    cfg: &BootstrapConfig,
    dialect: Dialect,
    seq: u32,
) -> Result<Vec<u8>, WireError> {
    let mut w = Writer { buf: Vec::with_capacity(256) };
    // Header placeholder; the length is patched in at the end.
    w.buf.extend_from_slice(&0u32.to_ne_bytes());
    w.buf.extend_from_slice(&INIT_MSG.to_ne_bytes());
    w.buf.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    w.buf.extend_from_slice(&seq.to_ne_bytes());
    w.buf.extend_from_slice(&0u32.to_ne_bytes());

    w.int32(CLONE_FLAGS_ATTR, cfg.clone_flags.clone_flags());

    if !cfg.ns_paths.is_empty() {
        for (i, p) in cfg.ns_paths.iter().enumerate() {
            if p.path.as_bytes().is_empty() || p.path.as_bytes().contains(&b',') {
                return Err(WireError::Encode(format!(
                    "NS_PATHS entry {i}: path \"{}\" is empty or contains ','",
                    crate::text::Raw(p.path.as_bytes())
                )));
            }
        }
        w.bytes(NS_PATHS_ATTR, &format_ns_list(&cfg.ns_paths))?;
    }

    if let Some(helper) = &cfg.uidmap_helper {
        w.path(UIDMAPPATH_ATTR, dialect, helper.as_bytes())?;
    }
    if let Some(map) = &cfg.uid_map {
        map.validate().map_err(|e| WireError::Encode(format!("UIDMAP: {e}")))?;
        w.bytes(UIDMAP_ATTR, &map.to_proc_text())?;
    }
    if let Some(map) = &cfg.gid_map {
        map.validate().map_err(|e| WireError::Encode(format!("GIDMAP: {e}")))?;
        w.bytes(GIDMAP_ATTR, &map.to_proc_text())?;
    }
    if let Some(helper) = &cfg.gidmap_helper {
        w.path(GIDMAPPATH_ATTR, dialect, helper.as_bytes())?;
    }
    if cfg.setgroup {
        w.boolean(SETGROUP_ATTR, true);
    }
    if let Some(oom) = cfg.oom_score_adj {
        if !(-1000..=1000).contains(&oom) {
            return Err(WireError::Encode(format!("OOM_SCORE_ADJ {oom} is outside -1000..=1000")));
        }
        w.bytes(OOM_SCORE_ADJ_ATTR, oom.to_string().as_bytes())?;
    }
    w.boolean(ROOTLESS_EUID_ATTR, cfg.rootless_euid);

    TimeOffset::validate_list(&cfg.time_offsets)
        .map_err(|e| WireError::Encode(format!("time offsets: {e}")))?;
    match dialect {
        Dialect::Runc11 => {
            if let Some(sources) = &cfg.mount_sources {
                let mut list = Vec::new();
                for (i, s) in sources.iter().enumerate() {
                    if s.contains(&0) {
                        return Err(WireError::Encode(format!(
                            "MOUNT_SOURCES entry {i} contains a NUL byte"
                        )));
                    }
                    list.extend_from_slice(s);
                    list.push(0);
                }
                w.bytes(MOUNT_SOURCES_ATTR, &list)?;
            }
        }
        Dialect::Runc12 => {
            if cfg.mount_sources.is_some() {
                return Err(WireError::Encode(
                    "mount sources cannot be sent in the runc >= 1.2 dialect \
                     (attribute 27290 is TIMENSOFFSET there)"
                        .into(),
                ));
            }
            if !cfg.time_offsets.is_empty() {
                w.bytes(TIMENSOFFSET_ATTR, &TimeOffset::list_to_proc_text(&cfg.time_offsets))?;
            }
        }
    }

    if let Some(config) = &cfg.rootfs_config {
        // One attribute holds at most 65530 bytes of string: a larger
        // config goes in consecutive chunks, which the decoder concatenates.
        if config.is_empty() {
            w.string(NSBOOT_ROOTFS_CONFIG_ATTR, dialect, config)?;
        }
        for chunk in config.chunks(ROOTFS_CONFIG_CHUNK) {
            w.string(NSBOOT_ROOTFS_CONFIG_ATTR, dialect, chunk)?;
        }
    }
    if let Some(bundle) = &cfg.rootfs_bundle {
        w.path(NSBOOT_ROOTFS_BUNDLE_ATTR, dialect, bundle.as_bytes())?;
    }
    if cfg.rootfs_flags != 0 {
        let unknown = cfg.rootfs_flags & !ROOTFS_FLAGS_ALL;
        if unknown != 0 {
            return Err(WireError::Encode(format!(
                "NSBOOT_ROOTFS_FLAGS: unknown bits {unknown:#x}"
            )));
        }
        w.int32(NSBOOT_ROOTFS_FLAGS_ATTR, cfg.rootfs_flags);
    }
    if cfg.caller_flags != 0 {
        let unknown = cfg.caller_flags & !CALLER_FLAGS_ALL;
        if unknown != 0 {
            return Err(WireError::Encode(format!("NSBOOT_CALLER_FLAGS: unknown bits {unknown:#x}")));
        }
        w.int32(NSBOOT_CALLER_FLAGS_ATTR, cfg.caller_flags);
    }
    if dialect == Dialect::Runc11 && !cfg.time_offsets.is_empty() {
        w.bytes(NSBOOT_TIMENS_OFFSETS_ATTR, &TimeOffset::list_to_proc_text(&cfg.time_offsets))?;
    }

    let total = w.buf.len();
    if total > MAX_MESSAGE_LEN {
        return Err(WireError::Encode(format!(
            "message would be {total} bytes, above the {MAX_MESSAGE_LEN}-byte cap"
        )));
    }
    let len = u32::try_from(total)
        .map_err(|_| WireError::Encode(format!("message of {total} bytes overflows u32")))?;
    if let Some(head) = w.buf.get_mut(..4) {
        head.copy_from_slice(&len.to_ne_bytes());
    }
    Ok(w.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::{NsKind, NsPath, NsSet};
    use crate::wire::{decode, Clock, IdMap};
    use std::ffi::CString;

    fn ne16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }

    #[test]
    fn minimal_matches_runc_layout() {
        let cfg = BootstrapConfig::default();
        let b = encode(&cfg, Dialect::Runc11).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&32u32.to_ne_bytes());
        want.extend_from_slice(&ne16(INIT_MSG));
        want.extend_from_slice(&ne16(1));
        want.extend_from_slice(&1u32.to_ne_bytes());
        want.extend_from_slice(&0u32.to_ne_bytes());
        want.extend_from_slice(&ne16(8));
        want.extend_from_slice(&ne16(CLONE_FLAGS_ATTR));
        want.extend_from_slice(&0u32.to_ne_bytes());
        want.extend_from_slice(&ne16(8));
        want.extend_from_slice(&ne16(ROOTLESS_EUID_ATTR));
        want.extend_from_slice(&0u32.to_ne_bytes());
        assert_eq!(b, want);
        assert_eq!(encode_with(&cfg, Dialect::Runc11, 7).unwrap()[8..12], 7u32.to_ne_bytes());
        assert_eq!(decode(&b, Dialect::Runc11).unwrap(), cfg);
    }

    #[test]
    fn bytemsg_padding() {
        // "0" → nla_len 4+1+1 = 6, padded to 8.
        let cfg = BootstrapConfig { oom_score_adj: Some(0), ..Default::default() };
        let b = encode(&cfg, Dialect::Runc11).unwrap();
        let oom = &b[24..32];
        assert_eq!(&oom[..2], &ne16(6));
        assert_eq!(&oom[2..4], &ne16(OOM_SCORE_ADJ_ATTR));
        assert_eq!(&oom[4..], b"0\0\0\0");
        // "-100" → 4+4+1 = 9, padded to 12.
        let cfg = BootstrapConfig { oom_score_adj: Some(-100), ..Default::default() };
        let b = encode(&cfg, Dialect::Runc11).unwrap();
        assert_eq!(&b[24..26], &ne16(9));
        assert_eq!(&b[28..36], b"-100\0\0\0\0");
        assert_eq!(b.len(), 16 + 8 + 12 + 8);
    }

    fn full() -> BootstrapConfig {
        BootstrapConfig {
            clone_flags: NsSet::EMPTY.with(NsKind::User).with(NsKind::Mnt),
            ns_paths: vec![NsPath {
                kind: NsKind::Net,
                path: CString::new("/proc/1/ns/net").unwrap(),
            }],
            uid_map: Some(IdMap::single(0, 1000, 1)),
            gid_map: Some(IdMap::single(0, 1000, 1)),
            setgroup: true,
            oom_score_adj: Some(-999),
            rootless_euid: true,
            uidmap_helper: Some(CString::new("/usr/bin/newuidmap").unwrap()),
            gidmap_helper: Some(CString::new("/usr/bin/newgidmap").unwrap()),
            mount_sources: None,
            time_offsets: vec![crate::wire::TimeOffset {
                clock: Clock::Boottime,
                secs: -3,
                nsecs: 5,
            }],
            rootfs_config: Some(b"{}".to_vec()),
            rootfs_bundle: Some(CString::new("/b").unwrap()),
            rootfs_flags: ROOTFS_FLAG_NO_PIVOT,
            caller_flags: 0,
        }
    }

    fn kinds(b: &[u8]) -> Vec<u16> {
        let mut out = Vec::new();
        let mut pos = 16;
        while pos < b.len() {
            let len = u16::from_ne_bytes([b[pos], b[pos + 1]]) as usize;
            out.push(u16::from_ne_bytes([b[pos + 2], b[pos + 3]]));
            pos += (len + 3) & !3;
        }
        out
    }

    #[test]
    fn order_is_runcs() {
        let mut cfg = full();
        let b12 = encode(&cfg, Dialect::Runc12).unwrap();
        assert_eq!(
            kinds(&b12),
            [
                CLONE_FLAGS_ATTR,
                NS_PATHS_ATTR,
                UIDMAPPATH_ATTR,
                UIDMAP_ATTR,
                GIDMAP_ATTR,
                GIDMAPPATH_ATTR,
                SETGROUP_ATTR,
                OOM_SCORE_ADJ_ATTR,
                ROOTLESS_EUID_ATTR,
                TIMENSOFFSET_ATTR,
                NSBOOT_ROOTFS_CONFIG_ATTR,
                NSBOOT_ROOTFS_BUNDLE_ATTR,
                NSBOOT_ROOTFS_FLAGS_ATTR,
            ]
        );
        assert_eq!(decode(&b12, Dialect::Runc12).unwrap(), cfg);

        cfg.mount_sources = Some(vec![b"/src".to_vec(), vec![]]);
        let b11 = encode(&cfg, Dialect::Runc11).unwrap();
        assert_eq!(
            kinds(&b11)[9..],
            [
                MOUNT_SOURCES_ATTR,
                NSBOOT_ROOTFS_CONFIG_ATTR,
                NSBOOT_ROOTFS_BUNDLE_ATTR,
                NSBOOT_ROOTFS_FLAGS_ATTR,
                NSBOOT_TIMENS_OFFSETS_ATTR,
            ]
        );
        assert_eq!(decode(&b11, Dialect::Runc11).unwrap(), cfg);
    }

    #[test]
    fn mount_sources_format() {
        let cfg = BootstrapConfig {
            mount_sources: Some(vec![b"/a".to_vec(), vec![], vec![]]),
            ..Default::default()
        };
        let b = encode(&cfg, Dialect::Runc11).unwrap();
        // After CLONE_FLAGS and ROOTLESS_EUID.
        let a = &b[32..];
        assert_eq!(&a[..2], &ne16(4 + 5 + 1));
        assert_eq!(&a[4..], b"/a\0\0\0\0\0\0");
        assert_eq!(decode(&b, Dialect::Runc11).unwrap(), cfg);
    }

    #[test]
    fn refuses_what_the_dialect_cannot_carry() {
        let cfg = BootstrapConfig { mount_sources: Some(vec![]), ..Default::default() };
        assert!(matches!(encode(&cfg, Dialect::Runc12), Err(WireError::Encode(_))));
    }

    #[test]
    fn refuses_invalid_values() {
        let bad = [
            BootstrapConfig { oom_score_adj: Some(1001), ..Default::default() },
            BootstrapConfig { uid_map: Some(IdMap::default()), ..Default::default() },
            BootstrapConfig { gid_map: Some(IdMap::single(0, 0, 0)), ..Default::default() },
            BootstrapConfig { mount_sources: Some(vec![b"a\0b".to_vec()]), ..Default::default() },
            BootstrapConfig { rootfs_config: Some(b"\0".to_vec()), ..Default::default() },
            BootstrapConfig { rootfs_flags: 4, ..Default::default() },
            BootstrapConfig { uidmap_helper: Some(CString::default()), ..Default::default() },
            BootstrapConfig {
                ns_paths: vec![NsPath { kind: NsKind::Net, path: CString::new("/a,b").unwrap() }],
                ..Default::default()
            },
            BootstrapConfig {
                time_offsets: vec![crate::wire::TimeOffset {
                    clock: Clock::Monotonic,
                    secs: 0,
                    nsecs: 1_000_000_000,
                }],
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(matches!(encode(&cfg, Dialect::Runc11), Err(WireError::Encode(_))), "{cfg:?}");
        }
        // The largest single chunk (4 + 65530 + 1 = 65535), and a config
        // of several chunks, round-trip.
        for len in [65530, 65531, 200_000] {
            let cfg = BootstrapConfig { rootfs_config: Some(vec![b'x'; len]), ..Default::default() };
            let b = encode(&cfg, Dialect::Runc11).unwrap();
            assert_eq!(decode(&b, Dialect::Runc11).unwrap(), cfg, "{len}");
        }
    }
}
