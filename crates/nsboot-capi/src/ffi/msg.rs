//! Building and encoding a bootstrap message from C, so a C caller needs no
//! netlink code of its own.

use std::ffi::{c_char, c_int};

use super::error::{nsboot_error, nsboot_status, report};
use super::{boundary, cstr};
use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{self, BootstrapConfig, Dialect, IdMap, TimeOffset};

use nsboot_status::*;

/// A bootstrap message under construction. Create with `nsboot_msg_new`,
/// free with `nsboot_msg_free`. Not thread-safe: use one from one thread
/// at a time.
pub struct nsboot_msg {
    pub(crate) cfg: BootstrapConfig,
}

/// Which runc's wire dialect to speak. The bootstrap side picks its own
/// dialect from the environment (`NSBOOT_DIALECT`, else
/// `_LIBCONTAINER_SYNCPIPE` set = runc ≥ 1.2, else runc 1.1);
/// `nsboot_spawn` sets `NSBOOT_DIALECT` to match the one given here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nsboot_dialect {
    /// runc 1.1 (leading `\0`, 27290 = MOUNT_SOURCES). The default.
    NSBOOT_DIALECT_RUNC_1_1 = 0,
    /// runc ≥ 1.2 (no leading byte, 27290 = TIMENSOFFSET).
    NSBOOT_DIALECT_RUNC_1_2 = 1,
}

impl From<nsboot_dialect> for Dialect {
    fn from(d: nsboot_dialect) -> Dialect {
        match d {
            nsboot_dialect::NSBOOT_DIALECT_RUNC_1_1 => Dialect::Runc11,
            nsboot_dialect::NSBOOT_DIALECT_RUNC_1_2 => Dialect::Runc12,
        }
    }
}

/// Convert a C int to a dialect without transmuting.
pub(crate) fn dialect_from_c(d: c_int) -> Option<Dialect> {
    match d {
        0 => Some(Dialect::Runc11),
        1 => Some(Dialect::Runc12),
        _ => None,
    }
}

fn invalid(err: *mut *mut nsboot_error, msg: String) -> nsboot_status {
    // SAFETY: err is NULL or valid per every export's contract.
    unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_INVALID_ARGUMENT, None, msg)) }
}

fn null(err: *mut *mut nsboot_error, what: &str) -> nsboot_status {
    // SAFETY: err is NULL or valid per every export's contract.
    unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_NULL_PARAMETER, None, format!("{what} is NULL"))) }
}

/// Borrow the message mutably.
///
/// # Safety
/// `m` is NULL or a live message from `nsboot_msg_new`.
unsafe fn msg_mut<'a>(m: *mut nsboot_msg) -> Option<&'a mut nsboot_msg> {
    // SAFETY: per the contract.
    unsafe { m.as_mut() }
}

/// A new, empty message (no namespaces, runc's defaults). Never NULL except
/// on allocation failure. Free with `nsboot_msg_free`.
///
/// - NULL: Returns NULL only if allocation fails (or on an internal panic).
/// - Ownership: The caller owns the message and frees it with `nsboot_msg_free`.
/// - Threads: Any thread.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_msg_new() -> *mut nsboot_msg {
    boundary(std::ptr::null_mut(), || Box::into_raw(Box::new(nsboot_msg { cfg: BootstrapConfig::default() })))
}

/// Free a message. NULL is a no-op.
///
/// - NULL: NULL is a no-op.
/// - Ownership: Frees `msg` (once).
/// - Threads: Not concurrently with other uses of `msg`.
/// - Errors: None.
#[no_mangle]
pub extern "C" fn nsboot_msg_free(msg: *mut nsboot_msg) {
    boundary((), || {
        if !msg.is_null() {
            // SAFETY: from Box::into_raw in nsboot_msg_new, freed once.
            drop(unsafe { Box::from_raw(msg) });
        }
    })
}

/// Set the namespaces to create: an OR of `CLONE_NEW*` flags (including
/// `CLONE_NEWTIME`, 0x80). Other bits → `NSBOOT_STATUS_INVALID_ARGUMENT`.
/// `err` may be NULL; on failure `*err` receives an error to free.
///
/// - NULL: `msg` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `msg`.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` for bits that name no namespace (errno 0).
#[no_mangle]
pub extern "C" fn nsboot_msg_set_clone_flags(msg: *mut nsboot_msg, flags: u32, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return null(err, "msg") };
        match NsSet::from_clone_flags(flags) {
            Ok(s) => {
                m.cfg.clone_flags = s;
                NSBOOT_STATUS_OK
            }
            Err(extra) => invalid(err, format!("clone flags {extra:#x} name no namespace")),
        }
    })
}

/// Append a namespace to join: `type` is one of cgroup ipc mnt net pid user
/// uts time; `path` a file such as `/proc/PID/ns/net`. Joined in the order
/// added (add `user` first, as runc does).
///
/// - NULL: `msg`, `ns_type`, `path` must not be NULL; `err` may be NULL.
/// - Ownership: Copies both strings.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` for an unknown type, an empty path or one containing ','.
#[no_mangle]
pub extern "C" fn nsboot_msg_add_ns_path(
    msg: *mut nsboot_msg,
    ns_type: *const c_char,
    path: *const c_char,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: pointers are NULL or valid (contract).
        let (Some(m), Some(t), Some(p)) = (unsafe { msg_mut(msg) }, unsafe { cstr(ns_type) }, unsafe { cstr(path) })
        else {
            return null(err, "msg, type or path");
        };
        let Some(kind) = NsKind::from_name(&t.to_string_lossy()) else {
            return invalid(err, format!("unknown namespace type \"{}\"", nsboot::text::Raw(t.to_bytes())));
        };
        if p.is_empty() || p.to_bytes().contains(&b',') {
            return invalid(err, "namespace path is empty or contains ','".to_owned());
        }
        m.cfg.ns_paths.push(NsPath { kind, path: p.to_owned() });
        NSBOOT_STATUS_OK
    })
}

fn set_map(msg: *mut nsboot_msg, text: *const c_char, err: *mut *mut nsboot_error, gid: bool) -> nsboot_status {
    // SAFETY: pointers are NULL or valid (contract).
    let (Some(m), Some(t)) = (unsafe { msg_mut(msg) }, unsafe { cstr(text) }) else {
        return null(err, "msg or map");
    };
    match IdMap::parse(t.to_bytes()) {
        Ok(map) => {
            if gid {
                m.cfg.gid_map = Some(map);
            } else {
                m.cfg.uid_map = Some(map);
            }
            NSBOOT_STATUS_OK
        }
        Err(e) => invalid(err, format!("{} map: {e}", if gid { "gid" } else { "uid" })),
    }
}

/// Set the uid map: `/proc/PID/uid_map` text, lines `inside outside count`.
///
/// - NULL: `msg` and `map` must not be NULL; `err` may be NULL.
/// - Ownership: Copies the text.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` naming the bad line (not 3 numbers, count 0, overflow, more than 340 lines).
#[no_mangle]
pub extern "C" fn nsboot_msg_set_uid_map(msg: *mut nsboot_msg, map: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || set_map(msg, map, err, false))
}

/// Set the gid map (same format as the uid map).
///
/// - NULL: As `nsboot_msg_set_uid_map`.
/// - Ownership: Copies the text.
/// - Threads: One thread at a time per message.
/// - Errors: As `nsboot_msg_set_uid_map`.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_gid_map(msg: *mut nsboot_msg, map: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || set_map(msg, map, err, true))
}

fn set_helper(msg: *mut nsboot_msg, path: *const c_char, err: *mut *mut nsboot_error, gid: bool) -> nsboot_status {
    // SAFETY: pointers are NULL or valid (contract).
    let (Some(m), Some(p)) = (unsafe { msg_mut(msg) }, unsafe { cstr(path) }) else {
        return null(err, "msg or path");
    };
    if p.is_empty() {
        return invalid(err, "helper path is empty".to_owned());
    }
    if gid {
        m.cfg.gidmap_helper = Some(p.to_owned());
    } else {
        m.cfg.uidmap_helper = Some(p.to_owned());
    }
    NSBOOT_STATUS_OK
}

/// Path of a `newuidmap` helper used when writing the uid map directly
/// fails with EPERM.
///
/// - NULL: `msg` and `path` must not be NULL; `err` may be NULL.
/// - Ownership: Copies the path.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` for an empty path.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_uidmap_helper(msg: *mut nsboot_msg, path: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || set_helper(msg, path, err, false))
}

/// Path of a `newgidmap` helper (see `nsboot_msg_set_uidmap_helper`).
///
/// - NULL: As `nsboot_msg_set_uidmap_helper`.
/// - Ownership: Copies the path.
/// - Threads: One thread at a time per message.
/// - Errors: As `nsboot_msg_set_uidmap_helper`.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_gidmap_helper(msg: *mut nsboot_msg, path: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || set_helper(msg, path, err, true))
}

/// SETGROUP: when true, stage-2 calls `setgroups(0, NULL)` (unless
/// rootless) and stage-0 does not write `deny` to `setgroups`.
///
/// - NULL: NULL `msg` returns `NSBOOT_STATUS_NULL_PARAMETER`.
/// - Ownership: Borrows `msg`.
/// - Threads: One thread at a time per message.
/// - Errors: None otherwise.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_setgroup(msg: *mut nsboot_msg, value: bool) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return NSBOOT_STATUS_NULL_PARAMETER };
        m.cfg.setgroup = value;
        NSBOOT_STATUS_OK
    })
}

/// ROOTLESS_EUID: the caller is unprivileged (stage-0 writes `deny` to
/// `setgroups` unless SETGROUP is set; stage-2 skips `setgroups`).
///
/// - NULL: NULL `msg` returns `NSBOOT_STATUS_NULL_PARAMETER`.
/// - Ownership: Borrows `msg`.
/// - Threads: One thread at a time per message.
/// - Errors: None otherwise.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_rootless(msg: *mut nsboot_msg, value: bool) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return NSBOOT_STATUS_NULL_PARAMETER };
        m.cfg.rootless_euid = value;
        NSBOOT_STATUS_OK
    })
}

/// OOM_SCORE_ADJ, -1000..=1000, written by stage-0 to its own
/// `/proc/self/oom_score_adj` (inherited by the stages).
///
/// - NULL: `msg` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `msg`.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` outside -1000..1000.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_oom_score_adj(msg: *mut nsboot_msg, value: c_int, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return null(err, "msg") };
        if !(-1000..=1000).contains(&value) {
            return invalid(err, format!("oom_score_adj {value} is outside -1000..1000"));
        }
        m.cfg.oom_score_adj = Some(value);
        NSBOOT_STATUS_OK
    })
}

/// Time namespace offsets, lines `monotonic|boottime SECS NSECS` (each
/// clock at most once, |SECS| <= 4611686018, 0 <= NSECS < 1000000000).
/// Needs `CLONE_NEWTIME` in the clone flags when the message is used: the
/// offsets apply to the namespace the bootstrap creates (a joined one keeps
/// its own). Sent as TIMENSOFFSET (27290) in the runc >= 1.2 dialect and as
/// the nsboot extension NSBOOT_TIMENS_OFFSETS (27303) in the runc 1.1
/// dialect; either way stage-0 writes them to `/proc/<stage-1>/timens_offsets`
/// after stage-1 has unshared the time namespace and before stage-2, its
/// first process, exists.
///
/// - NULL: `msg` and `text` must not be NULL; `err` may be NULL.
/// - Ownership: Copies the text.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` naming the line (unknown clock, not numeric, nsecs outside 0..999999999, secs beyond the kernel's range, a clock given twice).
#[no_mangle]
pub extern "C" fn nsboot_msg_set_time_offsets(msg: *mut nsboot_msg, text: *const c_char, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: pointers are NULL or valid (contract).
        let (Some(m), Some(t)) = (unsafe { msg_mut(msg) }, unsafe { cstr(text) }) else {
            return null(err, "msg or text");
        };
        match TimeOffset::parse_list(t.to_bytes()) {
            Ok(list) => {
                m.cfg.time_offsets = list;
                NSBOOT_STATUS_OK
            }
            Err(e) => invalid(err, format!("time offsets: {e}")),
        }
    })
}

/// nsboot extension: an OCI runtime-spec `config.json` (`len` bytes) that
/// stage-2 applies (rootfs preparation) before returning. `bundle` (may be
/// NULL) is the directory a relative `root.path` is resolved against;
/// `flags` is an OR of `NSBOOT_ROOTFS_*`.
///
/// - NULL: `msg` and `config_json` must not be NULL; `bundle` and `err` may be NULL.
/// - Ownership: Copies the bytes and the bundle path.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` for a NUL byte in the config or unknown flags (the config itself is validated by the bootstrap, before any mount).
#[no_mangle]
pub extern "C" fn nsboot_msg_set_rootfs_config(
    msg: *mut nsboot_msg,
    config_json: *const u8,
    len: usize,
    bundle: *const c_char,
    flags: u32,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return null(err, "msg") };
        if config_json.is_null() {
            return null(err, "config_json");
        }
        // SAFETY: config_json points to `len` readable bytes (contract).
        let bytes = unsafe { std::slice::from_raw_parts(config_json, len) };
        if bytes.contains(&0) {
            return invalid(err, "config_json contains a NUL byte".to_owned());
        }
        if flags & !wire::ROOTFS_FLAGS_ALL != 0 {
            return invalid(err, format!("unknown rootfs flags {:#x}", flags & !wire::ROOTFS_FLAGS_ALL));
        }
        m.cfg.rootfs_config = Some(bytes.to_vec());
        // SAFETY: bundle is NULL or a valid C string (contract).
        m.cfg.rootfs_bundle = unsafe { cstr(bundle) }.map(|b| b.to_owned());
        m.cfg.rootfs_flags = flags;
        NSBOOT_STATUS_OK
    })
}

/// Ask for more than runc's answers on the init socket (nsboot extension
/// NSBOOT_CALLER_FLAGS): an OR of `NSBOOT_CALLER_PIDFDS` (pidfds after the
/// pid line; `nsboot_spawn_pidfds` sets it itself) and
/// `NSBOOT_CALLER_ERROR_RECORD` (a failing stage sends a structured error:
/// `nsboot_spawn`'s error then has `nsboot_error_stage`, `_step`,
/// `_syscall`, `_path`, `_cause`, `_hint`). 0 (the default) keeps runc's
/// protocol byte for byte.
///
/// - NULL: `msg` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `msg`.
/// - Threads: One thread at a time per message.
/// - Errors: `NSBOOT_STATUS_INVALID_ARGUMENT` for unknown bits.
#[no_mangle]
pub extern "C" fn nsboot_msg_set_caller_flags(msg: *mut nsboot_msg, flags: u32, err: *mut *mut nsboot_error) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg_mut(msg) }) else { return null(err, "msg") };
        if flags & !wire::CALLER_FLAGS_ALL != 0 {
            return invalid(err, format!("unknown caller flags {:#x}", flags & !wire::CALLER_FLAGS_ALL));
        }
        m.cfg.caller_flags = flags;
        NSBOOT_STATUS_OK
    })
}

/// Encode the message in `dialect` (0 = runc 1.1, 1 = runc ≥ 1.2) into
/// `buf` (`len` bytes). `*out_len` receives the encoded size; when `buf` is
/// too small (or NULL with `len` 0, to ask the size) the call returns
/// `NSBOOT_STATUS_BUFFER_TOO_SMALL` with `*out_len` set and `buf` untouched.
///
/// - NULL: `msg` and `out_len` must not be NULL; `buf` may be NULL with `len` 0 to ask the size; `err` may be NULL.
/// - Ownership: Writes into the caller's `buf`; nothing to free.
/// - Threads: Any thread for distinct messages; a message may be encoded from several threads at once (read-only).
/// - Errors: `NSBOOT_STATUS_BUFFER_TOO_SMALL` (with `*out_len` set), `NSBOOT_STATUS_WIRE` (the message cannot be represented, e.g. mount sources in the runc >= 1.2 dialect), `NSBOOT_STATUS_INVALID_ARGUMENT` (unknown dialect).
#[no_mangle]
pub extern "C" fn nsboot_msg_encode(
    msg: *const nsboot_msg,
    dialect: c_int,
    buf: *mut u8,
    len: usize,
    out_len: *mut usize,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        // SAFETY: msg is NULL or live (contract).
        let Some(m) = (unsafe { msg.as_ref() }) else { return null(err, "msg") };
        if out_len.is_null() {
            return null(err, "out_len");
        }
        let Some(d) = dialect_from_c(dialect) else {
            return invalid(err, format!("unknown dialect {dialect}"));
        };
        let bytes = match wire::encode(&m.cfg, d) {
            Ok(b) => b,
            // SAFETY: err is NULL or valid (contract).
            Err(e) => return unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_WIRE, None, e.to_string())) },
        };
        // SAFETY: out_len is non-NULL and writable (contract).
        unsafe { *out_len = bytes.len() };
        if buf.is_null() || len < bytes.len() {
            return NSBOOT_STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: buf has room for `len` >= bytes.len() bytes (contract).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
        NSBOOT_STATUS_OK
    })
}

/// Decode `len` bytes of a message in `dialect`; on success `*out` receives
/// a new message (free with `nsboot_msg_free`). Bad bytes →
/// `NSBOOT_STATUS_WIRE` with a message naming the fault and its offset.
///
/// - NULL: `buf` and `out` must not be NULL; `err` may be NULL.
/// - Ownership: Borrows `buf`; on success the caller owns `*out` (free with `nsboot_msg_free`).
/// - Threads: Any thread.
/// - Errors: `NSBOOT_STATUS_WIRE` with a message naming the fault and its byte offset.
#[no_mangle]
pub extern "C" fn nsboot_msg_decode(
    buf: *const u8,
    len: usize,
    dialect: c_int,
    out: *mut *mut nsboot_msg,
    err: *mut *mut nsboot_error,
) -> nsboot_status {
    boundary(NSBOOT_STATUS_PANIC, || {
        if buf.is_null() || out.is_null() {
            return null(err, "buf or out");
        }
        let Some(d) = dialect_from_c(dialect) else {
            return invalid(err, format!("unknown dialect {dialect}"));
        };
        // SAFETY: buf points to `len` readable bytes (contract).
        let bytes = unsafe { std::slice::from_raw_parts(buf, len) };
        match wire::decode(bytes, d) {
            Ok(cfg) => {
                // SAFETY: out is non-NULL and writable (contract).
                unsafe { *out = Box::into_raw(Box::new(nsboot_msg { cfg })) };
                NSBOOT_STATUS_OK
            }
            // SAFETY: err is NULL or valid (contract).
            Err(e) => unsafe { report(err, nsboot_error::new(NSBOOT_STATUS_WIRE, None, e.to_string())) },
        }
    })
}

