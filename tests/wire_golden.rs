//! Golden vectors: messages written by runc's Go encoder types (see
//! `tests/golden/README.md`). Each file must decode to the expected config,
//! and the expected config must encode back to the identical bytes (except
//! the few shapes runc writes that nsboot's encoder never produces, which
//! are decode-only and say why).
//!
//! The files are host-endian as written on x86_64, so this test only runs
//! on little-endian targets.
#![cfg(target_endian = "little")]

use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{
    decode, decode_header, encode_with, BootstrapConfig, Clock, Dialect, IdMap, IdRange, TimeOffset,
};
use std::ffi::CString;
use std::path::PathBuf;

fn golden(dir: &str, name: &str) -> Vec<u8> {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", dir, name].iter().collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ns(kinds: &[NsKind]) -> NsSet {
    kinds.iter().copied().collect()
}

fn path(kind: NsKind, p: &str) -> NsPath {
    NsPath { kind, path: CString::new(p).unwrap() }
}

fn cs(s: &str) -> Option<CString> {
    Some(CString::new(s).unwrap())
}

fn two_ranges() -> IdMap {
    IdMap(vec![
        IdRange { inside: 0, outside: 1000, count: 1 },
        IdRange { inside: 1, outside: 100000, count: 65536 },
    ])
}

const ALL_NEW: [NsKind; 6] =
    [NsKind::Mnt, NsKind::Uts, NsKind::Ipc, NsKind::Pid, NsKind::Net, NsKind::Cgroup];

fn all_new_with(extra: &[NsKind]) -> NsSet {
    let mut s = ns(&ALL_NEW);
    for k in extra {
        s.insert(*k);
    }
    s
}

/// How a golden file is checked.
enum Check {
    /// decode == cfg and encode(cfg) == bytes.
    RoundTrip,
    /// decode == cfg only; the reason nsboot's encoder writes other bytes.
    DecodeOnly(&'static str),
}

fn check(dialect: Dialect, dir: &str, name: &str, want: BootstrapConfig, how: Check) {
    let bytes = golden(dir, name);
    let hdr = decode_header(&bytes).unwrap_or_else(|e| panic!("{dir}/{name}: header: {e}"));
    assert_eq!(hdr.len as usize, bytes.len(), "{dir}/{name}: header length");
    let got = decode(&bytes, dialect).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
    assert_eq!(got, want, "{dir}/{name}: decoded config");
    match how {
        Check::RoundTrip => {
            let enc = encode_with(&want, dialect, hdr.seq).unwrap();
            assert_eq!(enc, bytes, "{dir}/{name}: re-encoded bytes differ from runc's");
        }
        Check::DecodeOnly(why) => {
            assert!(!why.is_empty());
            // Still: what we write for it decodes to the same config.
            let enc = encode_with(&want, dialect, hdr.seq).unwrap();
            assert_eq!(decode(&enc, dialect).unwrap(), want, "{dir}/{name}");
        }
    }
}

fn r11(name: &str, want: BootstrapConfig, how: Check) {
    check(Dialect::Runc11, "runc11", name, want, how)
}

fn r12(name: &str, want: BootstrapConfig, how: Check) {
    check(Dialect::Runc12, "runc12", name, want, how)
}

#[test]
fn runc11_minimal() {
    r11("minimal.bin", BootstrapConfig::default(), Check::RoundTrip);
}

#[test]
fn runc11_root_run() {
    let want =
        BootstrapConfig { clone_flags: ns(&ALL_NEW), oom_score_adj: Some(0), ..Default::default() };
    r11("root_run.bin", want, Check::RoundTrip);
}

#[test]
fn runc11_all_attrs() {
    let want = BootstrapConfig {
        clone_flags: all_new_with(&[NsKind::User]),
        ns_paths: vec![path(NsKind::Net, "/var/run/netns/ctr1")],
        uid_map: Some(IdMap::single(0, 100000, 65536)),
        gid_map: Some(IdMap::single(0, 100000, 65536)),
        setgroup: true,
        oom_score_adj: Some(-1000),
        rootless_euid: false,
        uidmap_helper: cs("/usr/bin/newuidmap"),
        gidmap_helper: cs("/usr/bin/newgidmap"),
        mount_sources: Some(vec![
            vec![],
            b"/srv/data".to_vec(),
            vec![],
            vec![],
            b"/etc/resolv.conf".to_vec(),
            vec![],
        ]),
        ..Default::default()
    };
    r11("all_attrs.bin", want, Check::RoundTrip);
}

#[test]
fn runc11_mount_sources_empty() {
    let want = BootstrapConfig {
        clone_flags: ns(&[NsKind::Mnt, NsKind::User]),
        uid_map: Some(IdMap::single(0, 0, u32::MAX)),
        gid_map: Some(IdMap::single(0, 0, u32::MAX)),
        mount_sources: Some(vec![vec![], vec![]]),
        ..Default::default()
    };
    r11("mount_sources_empty.bin", want, Check::RoundTrip);
}

#[test]
fn runc11_rootless_helpers() {
    let want = BootstrapConfig {
        clone_flags: all_new_with(&[NsKind::User]),
        uid_map: Some(two_ranges()),
        gid_map: Some(two_ranges()),
        setgroup: true,
        oom_score_adj: Some(500),
        rootless_euid: true,
        uidmap_helper: cs("/usr/bin/newuidmap"),
        gidmap_helper: cs("/usr/bin/newgidmap"),
        ..Default::default()
    };
    r11("rootless_helpers.bin", want, Check::RoundTrip);
}

#[test]
fn runc11_rootless_plain() {
    let want = BootstrapConfig {
        clone_flags: all_new_with(&[NsKind::User]),
        uid_map: Some(IdMap::single(0, 1000, 1)),
        gid_map: Some(IdMap::single(0, 1000, 1)),
        rootless_euid: true,
        ..Default::default()
    };
    r11("rootless_plain.bin", want, Check::RoundTrip);
}

#[test]
fn runc11_join_all() {
    let kinds = [
        NsKind::User,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Mnt,
        NsKind::Cgroup,
    ];
    let want = BootstrapConfig {
        ns_paths: kinds.iter().map(|k| path(*k, &format!("/proc/4242/ns/{}", k.name()))).collect(),
        oom_score_adj: Some(-17),
        ..Default::default()
    };
    r11("join_all.bin", want, Check::RoundTrip);
}

const NSENTER_TEST: &str = "runc's nsenter_test.go sends only CLONE_FLAGS and NS_PATHS; \
                            nsboot, like bootstrapData, always adds ROOTLESS_EUID";

#[test]
fn runc11_nsenter_test_messages() {
    for (file, kind, p) in [
        ("nsenter_invalid_paths.bin", NsKind::Pid, "/proc/-1/ns/pid"),
        ("nsenter_incorrect_path_type.bin", NsKind::Net, "/proc/4242/ns/pid"),
        ("nsenter_child_logging.bin", NsKind::Pid, "/proc/4242/ns/pid"),
    ] {
        let want = BootstrapConfig {
            clone_flags: ns(&[NsKind::Net]),
            ns_paths: vec![path(kind, p)],
            ..Default::default()
        };
        r11(file, want, Check::DecodeOnly(NSENTER_TEST));
    }
}

#[test]
fn runc12_minimal() {
    r12("minimal.bin", BootstrapConfig::default(), Check::RoundTrip);
}

fn off(clock: Clock, secs: i64, nsecs: i64) -> TimeOffset {
    TimeOffset { clock, secs, nsecs }
}

#[test]
fn runc12_timens() {
    let want = BootstrapConfig {
        clone_flags: all_new_with(&[NsKind::Time]),
        oom_score_adj: Some(0),
        time_offsets: vec![
            off(Clock::Monotonic, 86400, 0),
            off(Clock::Boottime, -3600, 500_000_000),
        ],
        ..Default::default()
    };
    r12("timens.bin", want, Check::RoundTrip);
}

#[test]
fn runc12_timens_boottime_first() {
    let want = BootstrapConfig {
        clone_flags: ns(&[NsKind::Time]),
        time_offsets: vec![off(Clock::Boottime, 1, 2), off(Clock::Monotonic, 3, 999_999_999)],
        ..Default::default()
    };
    r12("timens_boottime_first.bin", want, Check::RoundTrip);
}

#[test]
fn runc12_timens_empty() {
    let want = BootstrapConfig { clone_flags: ns(&[NsKind::Time]), ..Default::default() };
    r12(
        "timens_empty.bin",
        want,
        Check::DecodeOnly(
            "runc >= 1.2 sends an empty TIMENSOFFSET for a non-nil empty map; \
             nsboot's encoder omits it (same meaning)",
        ),
    );
}

#[test]
fn runc12_rootless_timens() {
    let want = BootstrapConfig {
        clone_flags: all_new_with(&[NsKind::User, NsKind::Time]),
        uid_map: Some(two_ranges()),
        gid_map: Some(two_ranges()),
        setgroup: true,
        rootless_euid: true,
        uidmap_helper: cs("/usr/bin/newuidmap"),
        gidmap_helper: cs("/usr/bin/newgidmap"),
        time_offsets: vec![off(Clock::Monotonic, -5, 1)],
        ..Default::default()
    };
    r12("rootless_timens.bin", want, Check::RoundTrip);
}

#[test]
fn runc12_join_user_net_uts() {
    let want = BootstrapConfig {
        clone_flags: ns(&[NsKind::Mnt, NsKind::Pid, NsKind::Ipc, NsKind::Cgroup]),
        ns_paths: vec![
            path(NsKind::User, "/proc/4242/ns/user"),
            path(NsKind::Uts, "/proc/4242/ns/uts"),
            path(NsKind::Net, "/var/run/netns/other"),
            path(NsKind::Time, "/proc/4242/ns/time"),
        ],
        oom_score_adj: Some(0),
        ..Default::default()
    };
    r12("join_user_net_uts.bin", want, Check::RoundTrip);
}

/// The same bytes mean different things per dialect: a runc 1.1 message with
/// mount sources is refused or misread as time offsets by a 1.2 receiver,
/// and the reverse.
#[test]
fn dialects_disagree_on_27290() {
    let b = golden("runc11", "all_attrs.bin");
    assert!(decode(&b, Dialect::Runc12).is_err());
    let b = golden("runc12", "timens.bin");
    assert!(decode(&b, Dialect::Runc11).is_err());
    // Messages without 27290 mean the same in both.
    for name in ["minimal.bin", "root_run.bin", "rootless_helpers.bin", "join_all.bin"] {
        let b = golden("runc11", name);
        assert_eq!(decode(&b, Dialect::Runc11).unwrap(), decode(&b, Dialect::Runc12).unwrap());
    }
}

/// Every file in the golden directories is covered by a test above.
#[test]
fn no_untested_golden_files() {
    let known: &[(&str, &[&str])] = &[
        (
            "runc11",
            &[
                "all_attrs.bin",
                "join_all.bin",
                "minimal.bin",
                "mount_sources_empty.bin",
                "nsenter_child_logging.bin",
                "nsenter_incorrect_path_type.bin",
                "nsenter_invalid_paths.bin",
                "root_run.bin",
                "rootless_helpers.bin",
                "rootless_plain.bin",
            ],
        ),
        (
            "runc12",
            &[
                "join_user_net_uts.bin",
                "minimal.bin",
                "rootless_timens.bin",
                "timens.bin",
                "timens_boottime_first.bin",
                "timens_empty.bin",
            ],
        ),
    ];
    for (dir, names) in known {
        let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", dir].iter().collect();
        let mut found: Vec<String> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".bin"))
            .collect();
        found.sort();
        assert_eq!(found, *names, "{dir}");
    }
}
