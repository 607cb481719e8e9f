//! Property tests of the wire codec: every valid config survives
//! encode → decode in both dialects, whatever decode accepts encode can
//! write back, and no input makes decode or decode_header panic.

use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{
    decode, decode_header, encode, encode_with, BootstrapConfig, Clock, Dialect, IdMap, IdRange,
    TimeOffset, INIT_MSG, MAX_OFFSET_SECS, MAX_ID_EXTENTS, NLM_F_REQUEST, ROOTFS_FLAG_NO_PIVOT, CALLER_FLAG_PIDFDS,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::ffi::CString;

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Runc11), Just(Dialect::Runc12)]
}

/// Bytes with no NUL (any other byte, not necessarily UTF-8).
fn no_nul(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, min..=max)
}

fn c_path() -> impl Strategy<Value = CString> {
    no_nul(1, 40).prop_map(|b| CString::new(b).unwrap())
}

fn ns_set() -> impl Strategy<Value = NsSet> {
    vec(any::<bool>(), 8).prop_map(|bits| {
        NsKind::ALL.into_iter().zip(bits).filter(|(_, on)| *on).map(|(k, _)| k).collect()
    })
}

fn ns_path() -> impl Strategy<Value = NsPath> {
    (
        prop::sample::select(NsKind::ALL.to_vec()),
        vec(prop::num::u8::ANY.prop_filter("no NUL or ','", |b| *b != 0 && *b != b','), 1..40),
    )
        .prop_map(|(kind, p)| NsPath { kind, path: CString::new(p).unwrap() })
}

fn id_range() -> impl Strategy<Value = IdRange> {
    (1u32..=u32::MAX)
        .prop_flat_map(|count| {
            let top = u32::MAX - count; // start + count <= u32::MAX
            (0..=top, 0..=top, Just(count))
        })
        .prop_map(|(inside, outside, count)| IdRange { inside, outside, count })
}

fn id_map() -> impl Strategy<Value = IdMap> {
    prop_oneof![
        8 => vec(id_range(), 1..6),
        1 => vec(id_range(), MAX_ID_EXTENTS..=MAX_ID_EXTENTS),
    ]
    .prop_map(IdMap)
}

fn time_offsets() -> impl Strategy<Value = Vec<TimeOffset>> {
    let one = |clock| {
        option::of((-MAX_OFFSET_SECS..=MAX_OFFSET_SECS, 0i64..1_000_000_000))
            .prop_map(move |o| o.map(|(secs, nsecs)| TimeOffset { clock, secs, nsecs }))
    };
    (one(Clock::Monotonic), one(Clock::Boottime), any::<bool>()).prop_map(|(m, b, swap)| {
        let mut v: Vec<TimeOffset> = [m, b].into_iter().flatten().collect();
        if swap {
            v.reverse();
        }
        v
    })
}

prop_compose! {
    fn config(d: Dialect)(
        clone_flags in ns_set(),
        ns_paths in vec(ns_path(), 0..5),
        uid_map in option::of(id_map()),
        gid_map in option::of(id_map()),
        setgroup in any::<bool>(),
        oom_score_adj in option::of(-1000i32..=1000),
        rootless_euid in any::<bool>(),
        uidmap_helper in option::of(c_path()),
        gidmap_helper in option::of(c_path()),
        mount_sources in option::of(vec(no_nul(0, 30), 0..6)),
        time_offsets in time_offsets(),
        rootfs_config in option::of(no_nul(0, 300)),
        rootfs_bundle in option::of(c_path()),
        no_pivot in any::<bool>(),
        pidfds in any::<bool>(),
    ) -> BootstrapConfig {
        BootstrapConfig {
            clone_flags,
            ns_paths,
            uid_map,
            gid_map,
            setgroup,
            oom_score_adj,
            rootless_euid,
            uidmap_helper,
            gidmap_helper,
            mount_sources: if d == Dialect::Runc11 { mount_sources } else { None },
            time_offsets,
            rootfs_config,
            rootfs_bundle,
            rootfs_flags: if no_pivot { ROOTFS_FLAG_NO_PIVOT } else { 0 },
            caller_flags: if pidfds { CALLER_FLAG_PIDFDS } else { 0 },
        }
    }
}

fn dialect_and_config() -> impl Strategy<Value = (Dialect, BootstrapConfig)> {
    dialect().prop_flat_map(|d| (Just(d), config(d)))
}

/// A header claiming `payload.len()` bytes of INIT_MSG payload, then it.
fn with_header(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + payload.len());
    m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&INIT_MSG.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    m
}

/// If decode accepts bytes, the config it gives is one encode can write,
/// and writing it back decodes to the same config.
fn accepted_is_reencodable(bytes: &[u8], d: Dialect) -> Result<(), TestCaseError> {
    let _ = decode_header(bytes);
    if let Ok(cfg) = decode(bytes, d) {
        let again = encode(&cfg, d);
        prop_assert!(again.is_ok(), "decode accepted what encode refuses: {:?}", again);
        let again = again.unwrap();
        prop_assert_eq!(decode(&again, d).unwrap(), cfg);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip((d, cfg) in dialect_and_config(), seq in any::<u32>()) {
        let bytes = encode_with(&cfg, d, seq).unwrap();
        let hdr = decode_header(&bytes).unwrap();
        prop_assert_eq!(hdr.len as usize, bytes.len());
        prop_assert_eq!(hdr.seq, seq);
        prop_assert_eq!(hdr.flags, NLM_F_REQUEST);
        prop_assert_eq!(hdr.pid, 0);
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(decode(&bytes, d).unwrap(), cfg);
    }

    #[test]
    fn runc11_mount_sources_refused_by_runc12(cfg in config(Dialect::Runc11)) {
        let r = encode(&cfg, Dialect::Runc12);
        prop_assert_eq!(r.is_err(), cfg.mount_sources.is_some());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..200), d in dialect()) {
        accepted_is_reencodable(&bytes, d)?;
    }

    #[test]
    fn arbitrary_payload_never_panics(payload in vec(any::<u8>(), 0..300), d in dialect()) {
        accepted_is_reencodable(&with_header(&payload), d)?;
    }

    /// Valid messages with a few bytes overwritten, optionally cut short
    /// (with the header length kept consistent or not).
    #[test]
    fn mutated_messages_never_panic(
        (d, cfg) in dialect_and_config(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in option::of(any::<prop::sample::Index>()),
        fix_len in any::<bool>(),
    ) {
        let mut bytes = encode(&cfg, d).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if fix_len && bytes.len() >= 4 {
            let n = bytes.len() as u32;
            bytes[..4].copy_from_slice(&n.to_ne_bytes());
        }
        accepted_is_reencodable(&bytes, d)?;
    }
}

/// Replay the fuzzer's minimized corpus (`fuzz/corpus/decode/`) under plain
/// `cargo test`, with the fuzz target's checks, so its coverage guards
/// every build without the fuzz toolchain.
#[test]
fn fuzz_corpus_replays() {
    let dir: std::path::PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", "decode"].iter().collect();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for d in [Dialect::Runc11, Dialect::Runc12] {
            if let Err(e) = accepted_is_reencodable(&bytes, d) {
                panic!("{}: {e}", path.display());
            }
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus at {}", dir.display());
}
