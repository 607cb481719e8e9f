//! Message and attribute numbers. Names follow runc's
//! `libcontainer/message_linux.go`; nsboot extensions start at 27300.

/// `nlmsg_type` of the bootstrap message.
pub const INIT_MSG: u16 = 62000;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`, the flag runc's encoder sets.
pub const NLM_F_REQUEST: u16 = 1;
/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;

pub const CLONE_FLAGS_ATTR: u16 = 27281;
pub const NS_PATHS_ATTR: u16 = 27282;
pub const UIDMAP_ATTR: u16 = 27283;
pub const GIDMAP_ATTR: u16 = 27284;
pub const SETGROUP_ATTR: u16 = 27285;
pub const OOM_SCORE_ADJ_ATTR: u16 = 27286;
pub const ROOTLESS_EUID_ATTR: u16 = 27287;
pub const UIDMAPPATH_ATTR: u16 = 27288;
pub const GIDMAPPATH_ATTR: u16 = 27289;
/// runc 1.1: MOUNT_SOURCES. runc ≥ 1.2: TIMENSOFFSET (same number).
pub const MOUNT_SOURCES_ATTR: u16 = 27290;
/// runc ≥ 1.2 name of 27290.
pub const TIMENSOFFSET_ATTR: u16 = 27290;

/// nsboot extension: OCI runtime-spec config.json (string) applied by stage-2.
pub const NSBOOT_ROOTFS_CONFIG_ATTR: u16 = 27300;
/// nsboot extension: bundle directory (string) for a relative `root.path`.
pub const NSBOOT_ROOTFS_BUNDLE_ATTR: u16 = 27301;
/// nsboot extension: rootfs flags (u32, `ROOTFS_FLAG_*`).
pub const NSBOOT_ROOTFS_FLAGS_ATTR: u16 = 27302;
/// nsboot extension, runc 1.1 dialect only: time namespace offsets (string,
/// same lines as runc ≥ 1.2's TIMENSOFFSET).
pub const NSBOOT_TIMENS_OFFSETS_ATTR: u16 = 27303;
/// nsboot extension: what the caller wants back on the init socket beyond
/// runc's protocol (u32, `CALLER_FLAG_*`). Absent (runc's callers): the
/// init socket carries exactly runc's bytes.
pub const NSBOOT_CALLER_FLAGS_ATTR: u16 = 27304;

/// `CALLER_FLAG_PIDFDS`: after the pid JSON line, stage-0 sends one byte
/// `P` carrying two pidfds (stage-1, stage-2) as SCM_RIGHTS.
pub const CALLER_FLAG_PIDFDS: u32 = 1;
/// `CALLER_FLAG_ERROR_RECORD`: a failing stage writes one JSON line
/// `{"nsboot_error":{...}}` (stage, step, syscall, errno, path, cause,
/// hint, message) on the init socket before it exits; see `crate::diag`.
pub const CALLER_FLAG_ERROR_RECORD: u32 = 2;
/// Every defined caller flag.
pub const CALLER_FLAGS_ALL: u32 = CALLER_FLAG_PIDFDS | CALLER_FLAG_ERROR_RECORD;

/// `ROOTFS_FLAG_NO_PIVOT`: chroot after `MS_MOVE` instead of pivot_root.
pub const ROOTFS_FLAG_NO_PIVOT: u32 = 1;
/// `ROOTFS_FLAG_EXEC`: after the rootfs, stage-2 does the whole process
/// setup of the config (`process`, `linux.sysctl`, `linux.seccomp`; the
/// container plugin) and execs `process.args` instead of returning.
pub const ROOTFS_FLAG_EXEC: u32 = 2;
/// Every defined rootfs flag.
pub const ROOTFS_FLAGS_ALL: u32 = ROOTFS_FLAG_NO_PIVOT | ROOTFS_FLAG_EXEC;

/// Human name of an attribute number in a dialect (for error messages).
pub fn attr_name(kind: u16, dialect: super::Dialect) -> &'static str {
    match kind {
        CLONE_FLAGS_ATTR => "CLONE_FLAGS",
        NS_PATHS_ATTR => "NS_PATHS",
        UIDMAP_ATTR => "UIDMAP",
        GIDMAP_ATTR => "GIDMAP",
        SETGROUP_ATTR => "SETGROUP",
        OOM_SCORE_ADJ_ATTR => "OOM_SCORE_ADJ",
        ROOTLESS_EUID_ATTR => "ROOTLESS_EUID",
        UIDMAPPATH_ATTR => "UIDMAPPATH",
        GIDMAPPATH_ATTR => "GIDMAPPATH",
        MOUNT_SOURCES_ATTR => match dialect {
            super::Dialect::Runc11 => "MOUNT_SOURCES",
            super::Dialect::Runc12 => "TIMENSOFFSET",
        },
        NSBOOT_ROOTFS_CONFIG_ATTR => "NSBOOT_ROOTFS_CONFIG",
        NSBOOT_ROOTFS_BUNDLE_ATTR => "NSBOOT_ROOTFS_BUNDLE",
        NSBOOT_ROOTFS_FLAGS_ATTR => "NSBOOT_ROOTFS_FLAGS",
        NSBOOT_TIMENS_OFFSETS_ATTR => "NSBOOT_TIMENS_OFFSETS",
        NSBOOT_CALLER_FLAGS_ATTR => "NSBOOT_CALLER_FLAGS",
        _ => "unknown",
    }
}
