//! LD_PRELOAD mode: run an unmodified program inside new namespaces,
//! configured by `NSBOOT_*` variables (no init socket, no caller).
//!
//! ```sh
//! NSBOOT_NS=user,mnt,pid,uts NSBOOT_ROOTLESS=1 NSBOOT_HOSTNAME=box \
//!     LD_PRELOAD=libnsboot.so /bin/sh -c 'id -u; hostname'
//! ```
//!
//! The library's constructor parses the variables ([`parse`]), scrubs them
//! from the environment, and runs the *same* stage machine as a runc-style
//! bootstrap ([`nsboot::stages::run_config_to_stage2`]) with the config in
//! memory. The original process plays runc's part: it is the parent of all
//! three stages, reads the pid line, reaps stage-0 and stage-1, and then
//! stays as a small supervisor (like `unshare --fork`): it forwards signals
//! sent to it to the program and exits with the program's status (128+N
//! for a signal). stage-2 returns from the constructor into the program's
//! `main`, inside the namespaces.
//!
//! No `NSBOOT_*` variable set (or all empty): one pass over `environ`, no
//! allocation, nothing else — the constructor's hot path.
//!
//! A bad variable prints one line (`nsboot: NSBOOT_NS: unknown namespace
//! "foo"`) on stderr and exits 127 before the program starts; so does a
//! bootstrap failure (after its `FATAL:` line).
//!
//! A misspelt variable is an error whenever the library is preloaded
//! (`LD_PRELOAD` names `libnsboot.so*`): any `NSBOOT_*` name the library
//! does not know stops the program the same way, alone or beside known
//! ones — `NSBOOT_NSS=net` must not run the program on the host as if
//! nothing had been asked. Names beginning `NSBOOT_TEST_` are left to test
//! harnesses. A program that links libnsboot (not preloaded) is not judged
//! by its environment: there an unknown name is reported only when a
//! variable of this mode turns it on.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use nsboot::log::Level;
use nsboot::ns::{parse_ns_list, NsKind, NsSet};
use nsboot::stages::{self, BootEnv, GivenOptions, SingleThreaded};
use nsboot::sys::process::{clone_parent, exit_now, for_each_env, unsetenv, write_all_raw, Forked};
use nsboot::sys::signal::{restore_action, sigchld_default, wait_signal};
use nsboot::wire::{BootstrapConfig, Dialect, IdMap, ROOTFS_FLAG_NO_PIVOT};

/// Namespaces to create: comma-separated names (`user,mnt,pid,uts,ipc,net,cgroup,time`).
pub const NS: &str = "NSBOOT_NS";
/// Namespaces to join: runc's `type:path,type:path` (user first).
pub const JOIN: &str = "NSBOOT_JOIN";
/// uid map lines `inside outside count`, separated by `;` or newlines.
pub const UID_MAP: &str = "NSBOOT_UID_MAP";
/// gid map, same format.
pub const GID_MAP: &str = "NSBOOT_GID_MAP";
/// `1`: map the current euid/egid to 0, deny setgroups (implies `user`).
pub const ROOTLESS: &str = "NSBOOT_ROOTLESS";
/// `1`: stage-2 calls `setgroups(0, NULL)` (default: 1 unless rootless).
pub const SETGROUPS: &str = "NSBOOT_SETGROUPS";
/// Hostname set inside the new (or joined) UTS namespace.
pub const HOSTNAME: &str = "NSBOOT_HOSTNAME";
/// `oom_score_adj` (-1000..1000) of the program.
pub const OOM_SCORE_ADJ: &str = "NSBOOT_OOM_SCORE_ADJ";
/// Path of an OCI runtime-spec `config.json` whose rootfs stage-2 prepares.
pub const OCI_CONFIG: &str = "NSBOOT_OCI_CONFIG";
/// Bundle directory (a relative `root.path` is resolved against it);
/// default: the directory of `NSBOOT_OCI_CONFIG`.
pub const BUNDLE: &str = "NSBOOT_BUNDLE";
/// `1`: enter the rootfs with `MS_MOVE` + chroot instead of `pivot_root`.
pub const NO_PIVOT: &str = "NSBOOT_NO_PIVOT";

/// Every variable of this mode (any one set and non-empty turns it on),
/// space-separated. One string rather than an array of `&str`: an array is
/// a table of pointers that the loader relocates at every load of
/// libnsboot, whether or not the mode is used (BENCHMARKS.md §4). The test
/// `var_list_matches_the_constants` keeps it in step with the constants.
pub const VAR_LIST: &str = "NSBOOT_NS NSBOOT_JOIN NSBOOT_UID_MAP NSBOOT_GID_MAP NSBOOT_ROOTLESS NSBOOT_SETGROUPS \
NSBOOT_HOSTNAME NSBOOT_OOM_SCORE_ADJ NSBOOT_OCI_CONFIG NSBOOT_BUNDLE NSBOOT_NO_PIVOT";

/// `NSBOOT_*` names that belong to other parts of nsboot: accepted (and
/// scrubbed) in this mode, but they do not turn it on.
const OTHER_LIST: &str = "NSBOOT_DIALECT NSBOOT_ROOTFS_PLUGIN";

/// The variables of this mode.
pub fn mode_vars() -> impl Iterator<Item = &'static str> {
    VAR_LIST.split(' ')
}

const PREFIX: &[u8] = b"NSBOOT_";

/// Reserved for test harnesses (the library's own fault-injection hook,
/// `NSBOOT_TEST_STOP_AT`, and the test suite's settings): never unknown.
const TEST_PREFIX: &[u8] = b"NSBOOT_TEST_";

/// Whether the library knows the `NSBOOT_*` name `name`.
fn is_known(name: &[u8]) -> bool {
    name.starts_with(TEST_PREFIX) || mode_vars().chain(OTHER_LIST.split(' ')).any(|k| k.as_bytes() == name)
}

/// The refusal of an unknown `NSBOOT_*` name.
fn unknown_var(name: &[u8]) -> ConfigError {
    bad(&String::from_utf8_lossy(name), format!("unknown variable (known: {VAR_LIST})"))
}

/// Whether an `LD_PRELOAD` value names libnsboot (`libnsboot.so`, `.so.0`,
/// with or without a directory; entries separated by `:` or spaces).
pub fn preload_names_libnsboot(value: &[u8]) -> bool {
    value.split(|b| *b == b':' || *b == b' ').any(|e| {
        let base = e.rsplit(|b| *b == b'/').next().unwrap_or(e);
        base.starts_with(b"libnsboot.so")
    })
}

/// The first `NSBOOT_*` name of `vars` the library does not know, as the
/// error that stops a preloaded program.
pub fn check_names(vars: &[(&[u8], &[u8])]) -> Result<(), ConfigError> {
    match vars.iter().find(|(n, _)| !is_known(n)) {
        Some((n, _)) => Err(unknown_var(n)),
        None => Ok(()),
    }
}

/// Signals the supervisor passes on to the program.
pub const FORWARDED: [Signal; 9] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

/// Why the variables were refused: printed as `nsboot: VAR: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn bad(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_owned(), reason: reason.into() }
}

/// What the variables ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadConfig {
    /// The bootstrap, as a runc caller would have sent it.
    pub cfg: BootstrapConfig,
    /// Set by stage-2 before the program starts.
    pub hostname: Option<CString>,
    /// `NSBOOT_OCI_CONFIG`, read by [`load_files`].
    pub oci_config: Option<CString>,
}

/// The ids the current process runs as (for `NSBOOT_ROOTLESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub euid: u32,
    pub egid: u32,
}

fn flag(var: &str, v: &[u8]) -> Result<bool, ConfigError> {
    match v {
        b"" | b"0" | b"false" | b"no" => Ok(false),
        b"1" | b"true" | b"yes" => Ok(true),
        _ => Err(bad(var, format!("expected 1 or 0, got \"{}\"", nsboot::text::Raw(v)))),
    }
}

fn idmap(var: &str, v: &[u8]) -> Result<IdMap, ConfigError> {
    let text: Vec<u8> = v.iter().map(|b| if *b == b';' { b'\n' } else { *b }).collect();
    IdMap::parse(&text).map_err(|e| bad(var, e.to_string()))
}

fn cstring(var: &str, v: &[u8]) -> Result<CString, ConfigError> {
    CString::new(v.to_vec()).map_err(|_| bad(var, "contains a NUL byte"))
}

/// Parse the `NSBOOT_*` entries (`name`, `value` pairs of the environment
/// with the prefix). `Ok(None)`: none of [`VAR_LIST`] is set to a non-empty
/// value, so the mode is off. Pure: touches no file and no process state.
pub fn parse(vars: &[(&[u8], &[u8])], ids: Ids) -> Result<Option<PreloadConfig>, ConfigError> {
    let mut get = std::collections::BTreeMap::<&str, &[u8]>::new();
    let mut on = false;
    check_names(vars)?;
    for (name, value) in vars {
        let Some(known) = mode_vars().chain(OTHER_LIST.split(' ')).find(|k| k.as_bytes() == *name) else {
            continue; // NSBOOT_TEST_*
        };
        if mode_vars().any(|v| v == known) && !value.is_empty() {
            on = true;
        }
        get.insert(known, value);
    }
    if !on {
        return Ok(None);
    }
    let val = |k: &str| get.get(k).copied().filter(|v| !v.is_empty());

    let mut cfg = BootstrapConfig::default();
    if let Some(list) = val(NS) {
        let mut set = NsSet::EMPTY;
        for name in list.split(|b| *b == b',') {
            let name = String::from_utf8_lossy(name);
            let kind = NsKind::from_name(&name).ok_or_else(|| {
                bad(NS, format!("unknown namespace \"{name}\" (known: user mnt pid uts ipc net cgroup time)"))
            })?;
            set.insert(kind);
        }
        cfg.clone_flags = set;
    }
    if let Some(list) = val(JOIN) {
        cfg.ns_paths = parse_ns_list(list).map_err(|e| bad(JOIN, e.to_string()))?;
        // Joining the user namespace first, as runc does (its setns gives
        // the rights the later joins need).
        cfg.ns_paths.sort_by_key(|p| p.kind != NsKind::User);
    }
    let rootless = val(ROOTLESS).map(|v| flag(ROOTLESS, v)).transpose()?.unwrap_or(false);
    cfg.uid_map = val(UID_MAP).map(|v| idmap(UID_MAP, v)).transpose()?;
    cfg.gid_map = val(GID_MAP).map(|v| idmap(GID_MAP, v)).transpose()?;
    if rootless {
        cfg.clone_flags.insert(NsKind::User);
        cfg.rootless_euid = true;
        cfg.uid_map.get_or_insert_with(|| IdMap::single(0, ids.euid, 1));
        cfg.gid_map.get_or_insert_with(|| IdMap::single(0, ids.egid, 1));
    }
    let creates_user = cfg.clone_flags.contains(NsKind::User);
    for (var, map) in [(UID_MAP, &cfg.uid_map), (GID_MAP, &cfg.gid_map)] {
        if map.is_some() && !creates_user {
            return Err(bad(var, format!("an id map needs \"user\" in {NS}")));
        }
    }
    if creates_user && (cfg.uid_map.is_none() || cfg.gid_map.is_none()) {
        return Err(bad(
            NS,
            format!("a new user namespace needs {UID_MAP} and {GID_MAP}, or {ROOTLESS}=1"),
        ));
    }
    cfg.setgroup = val(SETGROUPS).map(|v| flag(SETGROUPS, v)).transpose()?.unwrap_or(!rootless);
    if let Some(v) = val(OOM_SCORE_ADJ) {
        let n: i32 = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|n| (-1000..=1000).contains(n))
            .ok_or_else(|| bad(OOM_SCORE_ADJ, "expected an integer in -1000..1000"))?;
        cfg.oom_score_adj = Some(n);
    }
    let hostname = val(HOSTNAME).map(|v| cstring(HOSTNAME, v)).transpose()?;
    if let Some(h) = &hostname {
        if h.as_bytes().len() > 64 {
            return Err(bad(HOSTNAME, "longer than 64 bytes"));
        }
        let joins_uts = cfg.ns_paths.iter().any(|p| p.kind == NsKind::Uts);
        if !cfg.clone_flags.contains(NsKind::Uts) && !joins_uts {
            return Err(bad(HOSTNAME, format!("needs \"uts\" in {NS} or {JOIN} (it would rename the host)")));
        }
    }
    let oci_config = val(OCI_CONFIG).map(|v| cstring(OCI_CONFIG, v)).transpose()?;
    if let Some(b) = val(BUNDLE) {
        if oci_config.is_none() {
            return Err(bad(BUNDLE, format!("only meaningful with {OCI_CONFIG}")));
        }
        cfg.rootfs_bundle = Some(cstring(BUNDLE, b)?);
    }
    if val(NO_PIVOT).map(|v| flag(NO_PIVOT, v)).transpose()?.unwrap_or(false) {
        if oci_config.is_none() {
            return Err(bad(NO_PIVOT, format!("only meaningful with {OCI_CONFIG}")));
        }
        cfg.rootfs_flags |= ROOTFS_FLAG_NO_PIVOT;
    }
    if cfg.clone_flags.is_empty() && cfg.ns_paths.is_empty() && oci_config.is_none() {
        return Err(bad(NS, format!("nothing to do: set {NS}, {JOIN} or {OCI_CONFIG}")));
    }
    Ok(Some(PreloadConfig { cfg, hostname, oci_config }))
}

/// Read the files the variables name: the OCI config (and its bundle
/// directory, by default the config's directory).
pub fn load_files(pc: &mut PreloadConfig) -> Result<(), ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    let Some(path) = &pc.oci_config else { return Ok(()) };
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    let bytes = std::fs::read(p).map_err(|e| bad(OCI_CONFIG, format!("{}: {e}", p.display())))?;
    if bytes.contains(&0) {
        return Err(bad(OCI_CONFIG, format!("{}: contains a NUL byte", p.display())));
    }
    if pc.cfg.rootfs_bundle.is_none() {
        let dir = std::fs::canonicalize(p)
            .ok()
            .and_then(|c| c.parent().map(|d| d.as_os_str().as_bytes().to_vec()))
            .ok_or_else(|| bad(BUNDLE, format!("cannot find the directory of {}", p.display())))?;
        pc.cfg.rootfs_bundle = Some(cstring(BUNDLE, &dir)?);
    }
    pc.cfg.rootfs_config = Some(bytes);
    Ok(())
}

fn is_ours(name: &[u8]) -> bool {
    mode_vars().any(|v| v.as_bytes() == name)
}

/// What the environment asks of this mode.
#[derive(PartialEq)]
enum Request {
    Off,
    /// A variable of this mode is set to a non-empty value.
    On,
    /// None is, but the library is preloaded and an `NSBOOT_*` name it
    /// does not know is set (a misspelling).
    Unknown,
}

/// The hot path: one pass over `environ`, no allocation.
fn requested() -> Request {
    let (mut on, mut unknown, mut preloaded) = (false, false, false);
    for_each_env(|entry| {
        if entry.starts_with(PREFIX) {
            let eq = entry.iter().position(|b| *b == b'=').unwrap_or(entry.len());
            let (name, value) = entry.split_at(eq);
            if is_ours(name) {
                on |= value.len() > 1;
            } else if !is_known(name) {
                unknown = true;
            }
        } else if let Some(v) = entry.strip_prefix(b"LD_PRELOAD=") {
            preloaded = preload_names_libnsboot(v);
        }
    });
    if on {
        Request::On
    } else if unknown && preloaded {
        Request::Unknown
    } else {
        Request::Off
    }
}

/// Every `NSBOOT_*` entry of the environment, copied.
fn collect() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for_each_env(|entry| {
        if entry.starts_with(PREFIX) {
            let eq = entry.iter().position(|b| *b == b'=').unwrap_or(entry.len());
            let (name, value) = entry.split_at(eq);
            out.push((name.to_vec(), value.get(1..).unwrap_or_default().to_vec()));
        }
    });
    out
}

/// One line on stderr, exit 127: the program never starts.
fn refuse(msg: &str) -> ! {
    let _ = write_all_raw(2, format!("nsboot: {msg}\n").as_bytes());
    exit_now(127)
}

/// Called by the constructor when no init-pipe bootstrap ran. Returns at
/// once when the mode is off; otherwise returns only in stage-2 (inside
/// the namespaces), the original process never returns (it supervises and
/// exits with the program's status).
pub fn run_from_ctor() {
    let request = requested();
    if request == Request::Off {
        return;
    }
    let vars = collect();
    let pairs: Vec<(&[u8], &[u8])> = vars.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
    if request == Request::Unknown {
        if let Err(e) = check_names(&pairs) {
            refuse(&e.to_string())
        }
        return;
    }
    let ids = Ids { euid: nix::unistd::geteuid().as_raw(), egid: nix::unistd::getegid().as_raw() };
    let mut pc = match parse(&pairs, ids) {
        Ok(Some(pc)) => pc,
        Ok(None) => return,
        Err(e) => refuse(&e.to_string()),
    };
    if let Err(e) = load_files(&mut pc) {
        refuse(&e.to_string())
    }
    if pc.cfg.rootless_euid {
        // Several ranges need the setuid helpers (used only when writing
        // the map directly fails with EPERM).
        for (helper, slot) in
            [("/usr/bin/newuidmap", &mut pc.cfg.uidmap_helper), ("/usr/bin/newgidmap", &mut pc.cfg.gidmap_helper)]
        {
            if std::path::Path::new(helper).exists() {
                *slot = CString::new(helper).ok();
            }
        }
    }
    let Some(token) = SingleThreaded::check() else {
        refuse("the process already has threads before main: LD_PRELOAD mode cannot start")
    };
    if !pc.cfg.ns_paths.is_empty() {
        // Joining foreign namespaces: CVE-2019-5736 defence, before the
        // variables are scrubbed (it re-executes the program, whose
        // constructor must find them again).
        if let Err(e) = nsboot::sealed::ensure_sealed_self(&token) {
            refuse(&e.to_string())
        }
    }
    if pc.cfg.rootfs_config.is_some() {
        // Load the rootfs plugin while NSBOOT_ROOTFS_PLUGIN is still set.
        if let Err(e) = nsboot::rootfs_plugin::load_plugin() {
            refuse(&format!("{OCI_CONFIG}: {e}"))
        }
    }
    for (name, _) in &vars {
        if let Ok(n) = CString::new(name.clone()) {
            unsetenv(&n);
        }
    }
    supervise(pc, &token)
}

/// State stage-2 puts back before the program starts.
struct Saved {
    mask: SigSet,
    sigchld: nix::sys::signal::SigAction,
    /// The program's thread name (the stages rename themselves `runc:[N:...]`).
    name: Option<CString>,
}

fn supervise(pc: PreloadConfig, token: &SingleThreaded) {
    let mut waited = SigSet::empty();
    for s in FORWARDED {
        waited.add(s);
    }
    waited.add(Signal::SIGCHLD);
    let mut mask = SigSet::empty();
    // Block first so that no signal sent during the bootstrap is lost: it
    // stays pending and is forwarded once stage-2's pid is known.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), Some(&mut mask)) {
        refuse(&format!("sigprocmask: {e}"))
    }
    let sigchld = sigchld_default().unwrap_or_else(|e| refuse(&format!("sigaction(SIGCHLD): {e}")));
    let saved = Saved { mask, sigchld, name: nix::sys::prctl::get_name().ok() };
    let (ours, theirs) = stages::sync::pair().unwrap_or_else(|e| refuse(&format!("socketpair: {e}")));
    match clone_parent(token, 0) {
        Err(e) => refuse(&format!("fork: {e}")),
        Ok(Forked::Child) => {
            drop(ours);
            let env = BootEnv {
                init_fd: theirs.as_raw_fd(),
                log_fd: None,
                log_level: Level::Debug,
                dialect: Dialect::Runc11,
                mount_fds: None,
                stop_at: None,
            };
            stages::run_config_to_stage2(&env, pc.cfg.clone(), GivenOptions { new_session: false }, token);
            // stage-2, inside the namespaces.
            drop(theirs);
            enter_program(&pc, &saved);
        }
        Ok(Forked::Parent(stage0)) => {
            drop(theirs);
            supervisor(stage0, ours, &waited)
        }
    }
}

/// stage-2's last steps before returning into the program's `main`.
fn enter_program(pc: &PreloadConfig, saved: &Saved) {
    if let Some(h) = &pc.hostname {
        if let Err(e) = nix::unistd::sethostname(std::ffi::OsStr::new(&*String::from_utf8_lossy(h.as_bytes()))) {
            refuse(&format!("{HOSTNAME}: sethostname: {e}"))
        }
    }
    // The supervisor is the program as far as the outside is concerned: if
    // it is killed outright, the program goes with it.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Some(name) = &saved.name {
        let _ = nix::sys::prctl::set_name(name);
    }
    let _ = restore_action(Signal::SIGCHLD, &saved.sigchld);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&saved.mask), None);
}

/// Reap every child (the bootstrap failed: stage-0 killed what it started).
fn reap_all_and_fail() -> ! {
    while !matches!(waitpid(None, None), Err(Errno::ECHILD)) {}
    exit_now(127)
}

/// The original process after the bootstrap: forward signals, exit with
/// the program's status.
fn supervisor(stage0: Pid, sock: OwnedFd, waited: &SigSet) -> ! {
    let pids = nsboot::caller::read_pids(&sock).ok();
    drop(sock);
    let ok0 = loop {
        match waitpid(stage0, None) {
            Ok(WaitStatus::Exited(_, 0)) => break true,
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => break false,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break false,
        }
    };
    let Some((stage1, stage2)) = pids.filter(|_| ok0) else { reap_all_and_fail() };
    let _ = waitpid(stage1, None);
    loop {
        let Ok(got) = wait_signal(waited) else { continue };
        if got.signo == libc::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == stage2 => exit_now(code),
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == stage2 => exit_now(128 + sig as i32),
                    Ok(WaitStatus::StillAlive) => break,
                    Err(Errno::ECHILD) => exit_now(127),
                    Err(Errno::EINTR) | Ok(_) => continue,
                    Err(_) => break,
                }
            }
        } else if got.sent_by_process() {
            // A terminal's signals (si_code SI_KERNEL) already reached the
            // program: it shares our process group.
            if let Ok(sig) = Signal::try_from(got.signo) {
                let _ = kill(stage2, sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: Ids = Ids { euid: 1000, egid: 100 };

    fn p(vars: &[(&str, &str)]) -> Result<Option<PreloadConfig>, ConfigError> {
        let v: Vec<(&[u8], &[u8])> = vars.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())).collect();
        parse(&v, IDS)
    }

    fn err(vars: &[(&str, &str)]) -> String {
        format!("nsboot: {}", p(vars).unwrap_err())
    }

    #[test]
    fn off_when_unset_or_empty() {
        assert_eq!(p(&[]).unwrap(), None);
        assert_eq!(p(&[("NSBOOT_NS", "")]).unwrap(), None);
        assert_eq!(p(&[("NSBOOT_DIALECT", "1.2")]).unwrap(), None);
    }

    #[test]
    fn namespaces_and_rootless() {
        let c = p(&[("NSBOOT_NS", "mnt,pid,uts"), ("NSBOOT_ROOTLESS", "1"), ("NSBOOT_HOSTNAME", "box")])
            .unwrap()
            .unwrap();
        let want: NsSet = [NsKind::Mnt, NsKind::Pid, NsKind::Uts, NsKind::User].into_iter().collect();
        assert_eq!(c.cfg.clone_flags, want);
        assert_eq!(c.cfg.uid_map, Some(IdMap::single(0, 1000, 1)));
        assert_eq!(c.cfg.gid_map, Some(IdMap::single(0, 100, 1)));
        assert!(c.cfg.rootless_euid);
        assert!(!c.cfg.setgroup);
        assert_eq!(c.hostname.as_deref(), Some(c"box"));
    }

    #[test]
    fn preloaded_is_told_from_ld_preload() {
        for v in ["libnsboot.so", "/usr/local/lib/libnsboot.so.0", "/a/libx.so:/b/libnsboot.so.0.1.0", "libx.so libnsboot.so"] {
            assert!(preload_names_libnsboot(v.as_bytes()), "{v}");
        }
        for v in ["", "libx.so", "/usr/lib/libnsboot_rootfs.so.0", "/libnsboot.so.d/libx.so"] {
            assert!(!preload_names_libnsboot(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn var_list_matches_the_constants() {
        let consts = [NS, JOIN, UID_MAP, GID_MAP, ROOTLESS, SETGROUPS, HOSTNAME, OOM_SCORE_ADJ, OCI_CONFIG, BUNDLE, NO_PIVOT];
        assert_eq!(mode_vars().collect::<Vec<_>>(), consts);
        assert!(OTHER_LIST.split(' ').all(|v| v.starts_with("NSBOOT_") && !consts.contains(&v)));
    }

    #[test]
    fn maps_joins_and_rootfs() {
        let c = p(&[
            ("NSBOOT_NS", "user,net"),
            ("NSBOOT_UID_MAP", "0 100000 1000;1000 1000 1"),
            ("NSBOOT_GID_MAP", "0 100000 65536\n"),
            ("NSBOOT_JOIN", "ipc:/proc/1/ns/ipc,user:/proc/1/ns/user"),
            ("NSBOOT_OCI_CONFIG", "/b/config.json"),
            ("NSBOOT_NO_PIVOT", "1"),
            ("NSBOOT_OOM_SCORE_ADJ", "-5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.cfg.uid_map.unwrap().ranges().len(), 2);
        assert_eq!(c.cfg.ns_paths[0].kind, NsKind::User);
        assert_eq!(c.cfg.ns_paths[1].kind, NsKind::Ipc);
        assert_eq!(c.cfg.rootfs_flags, ROOTFS_FLAG_NO_PIVOT);
        assert_eq!(c.cfg.oom_score_adj, Some(-5));
        assert!(c.cfg.setgroup);
        assert_eq!(c.oci_config.as_deref(), Some(c"/b/config.json"));
    }

    #[test]
    fn refusals_name_the_variable() {
        assert_eq!(
            err(&[("NSBOOT_NS", "user,foo")]),
            "nsboot: NSBOOT_NS: unknown namespace \"foo\" (known: user mnt pid uts ipc net cgroup time)"
        );
        assert!(err(&[("NSBOOT_NS", "net"), ("NSBOOT_NSS", "x")]).starts_with("nsboot: NSBOOT_NSS: unknown variable"));
        assert!(err(&[("NSBOOT_NS", "user")]).contains("needs NSBOOT_UID_MAP"));
        assert!(err(&[("NSBOOT_NS", "net"), ("NSBOOT_UID_MAP", "0 0 1")]).starts_with("nsboot: NSBOOT_UID_MAP:"));
        assert!(err(&[("NSBOOT_NS", "user"), ("NSBOOT_ROOTLESS", "1"), ("NSBOOT_UID_MAP", "0 0")])
            .starts_with("nsboot: NSBOOT_UID_MAP: id map line 1"));
        assert!(err(&[("NSBOOT_NS", "net"), ("NSBOOT_HOSTNAME", "x")]).starts_with("nsboot: NSBOOT_HOSTNAME: needs"));
        assert!(err(&[("NSBOOT_ROOTLESS", "maybe")]).starts_with("nsboot: NSBOOT_ROOTLESS: expected 1 or 0"));
        assert!(err(&[("NSBOOT_JOIN", "net")]).starts_with("nsboot: NSBOOT_JOIN: namespace entry 0"));
        assert!(err(&[("NSBOOT_NS", "net"), ("NSBOOT_OOM_SCORE_ADJ", "2000")]).starts_with("nsboot: NSBOOT_OOM_SCORE_ADJ"));
        assert!(err(&[("NSBOOT_HOSTNAME", "x"), ("NSBOOT_NS", "")]).contains("NSBOOT_HOSTNAME"));
        assert!(err(&[("NSBOOT_SETGROUPS", "1")]).starts_with("nsboot: NSBOOT_NS: nothing to do"));
        // An unknown name is refused even when no variable of the mode is
        // set (the constructor asks only when the library is preloaded).
        assert!(err(&[("NSBOOT_NSS", "net")]).starts_with("nsboot: NSBOOT_NSS: unknown variable"));
        assert_eq!(p(&[("NSBOOT_NS", "net"), ("NSBOOT_TEST_STOP_AT", "x"), ("NSBOOT_TEST_SKIP_DIR", "/d")]).unwrap().map(|c| c.cfg.clone_flags.contains(NsKind::Net)), Some(true));
        for e in [err(&[("NSBOOT_NS", "bad")]), err(&[("NSBOOT_JOIN", "x:/y")])] {
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
