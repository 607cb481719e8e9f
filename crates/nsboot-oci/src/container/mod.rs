//! A whole OCI container from a bundle: `create` (everything up to, not
//! including, the user's `execve`; the container waits at the start
//! gate), `start`, `kill`, `wait`, `delete`, and a one-shot `run` — from
//! the process that created it ([`Created`]) or from any later process
//! through the state directory ([`ContainerState`], [`start_by_state`],
//! [`kill_by_state`], [`delete_by_state`]).
//!
//! # Processes (fork-based, no re-exec)
//!
//! ```text
//! runtime (the caller; must be single-threaded: it forks)
//!  ├─ namespace process: setns (user first) / unshare(CLONE_NEWUSER) →
//!  │    the runtime writes uid_map/gid_map → setresuid(0) → setns/unshare
//!  │    the rest (not cgroup) → clone3(CLONE_PARENT | CLONE_INTO_CGROUP)
//!  │    → sends the init's pid → exits
//!  └─ init (the runtime's child, pid 1 of a new PID namespace): waits for
//!       "go"; unshare(CLONE_NEWCGROUP); createContainer hooks; sysctls;
//!       rootfs prepare; console; ProcessPlan::apply (…, seccomp load,
//!       start gate, startContainer hooks, execve)
//! ```
//!
//! The runtime, between the pid and "go": moves the init into the v1
//! hierarchies (`cgroup.procs`; the unified one was joined by
//! `CLONE_INTO_CGROUP`), runs `prestart` and `createRuntime`. nsboot's
//! re-exec path (`nsboot::caller::spawn`, what nsrun and runc do) needs a
//! program whose `main` starts with `nsboot::nsexec()`; a library cannot
//! demand that of its caller, and a fork of a single-threaded runtime
//! needs no exec at all (one process image, the plans built once, no
//! config re-parsed in the child). The cost: the caller must be
//! single-threaded at `create` (checked: [`ContainerError::Sys`] with step
//! `"single-threaded check"`), which a runtime CLI is.
//!
//! # The start gate across processes
//!
//! `<state_dir>/exec.fifo` (as runc's): the runtime makes it and opens it
//! `O_RDWR` before the fork; the init reads one byte from it after it said
//! "created" on a pipe to the creating process. `start` (any process)
//! opens the FIFO `O_WRONLY|O_NONBLOCK` (`ENXIO`: nobody waits on it,
//! the container is gone), writes a byte, waits until the init took it,
//! then removes the FIFO: "created" is "init alive and FIFO present",
//! "running" is "init alive, FIFO gone".
//!
//! # Errors
//!
//! Everything is checked before anything is created (the message names the
//! key); a failure after that undoes what was done (processes killed and
//! reaped, cgroup removed, state directory removed; mounts vanish with the
//! container's mount namespace) and runs `poststop` when `prestart` /
//! `createRuntime` had started. A failure inside the container crosses
//! to the runtime as an [`ErrorRecord`] ([`ContainerError::Container`]).

mod error;
mod features;
mod state;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

pub use error::{ContainerError, Result};
pub use features::{contributions, features, features_json};
pub use state::{delete_by_state, kill_by_state, start_by_state, status_by_state, ContainerState};

use crate::cgroups::sys::{clone_parent_into_cgroup, Forked};
use crate::cgroups::{Cgroup, CgroupPlan, Hierarchies};
use crate::console::{connect_socket, send_master, Pty};
use crate::error::{ErrorRecord, OciError};
use crate::hooks::{HookKind, Hooks, State, Status};
use crate::process::{ExecSteps, ProcessPlan, StartGate};
use crate::rootfs::{RootfsOptions, RootfsPlan};
use crate::seccomp::SeccompPlan;
use error::sys;

/// `NSBOOT_OCI_TIMES=1`: print on stderr the time each runtime-side step
/// took (`nsboot-oci time <step> <µs>`), for BENCHMARKS.md §7.
pub(crate) fn mark(step: &str) {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ON: OnceLock<bool> = OnceLock::new();
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    if !*ON.get_or_init(|| std::env::var_os("NSBOOT_OCI_TIMES").is_some_and(|v| v == "1")) {
        return;
    }
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = *last {
        eprintln!("nsboot-oci time {step} {}", now.duration_since(t).as_micros());
    }
    *last = Some(now);
}

/// What [`Container::create`] needs.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The container id (a directory name: no `/`, not `.`/`..`).
    pub id: String,
    /// The bundle: `config.json` and (usually) the root filesystem.
    pub bundle: PathBuf,
    /// Where the state lives (`state.json`, `exec.fifo`, a copy of
    /// `config.json`); created by `create`, must not exist. `None`: a
    /// private directory under `$XDG_RUNTIME_DIR` (or `/run`)
    /// `/nsboot-oci/<id>`.
    pub state_dir: Option<PathBuf>,
    /// With `process.terminal`: the unix socket the pty master is sent to
    /// (`--console-socket`). Without it the master is returned by
    /// [`Created::take_console`].
    pub console_socket: Option<PathBuf>,
    /// `MS_MOVE` + `chroot` instead of `pivot_root` (a rootfs on ramfs).
    pub no_pivot: bool,
}

impl CreateOptions {
    pub fn new(id: impl Into<String>, bundle: impl Into<PathBuf>) -> Self {
        CreateOptions { id: id.into(), bundle: bundle.into(), state_dir: None, console_socket: None, no_pivot: false }
    }
}

/// Entry points ([`Container::create`], [`Container::run`]).
pub struct Container;

/// Every plan of a config, checked in the runtime before anything exists.
struct Plans {
    spec: Spec,
    json: Vec<u8>,
    process: ProcessPlan,
    rootfs: RootfsPlan,
    seccomp: Option<SeccompPlan>,
    cgroup: Option<CgroupPlan>,
    hooks: Hooks,
    ns: Namespaces,
}

/// `linux.namespaces`: what to create, what to join (opened now).
struct Namespaces {
    new: CloneFlags,
    /// (kind, path, fd) in join order: user first, mount last.
    join: Vec<(CloneFlags, String, OwnedFd)>,
    uid_map: String,
    gid_map: String,
}

fn ns_flag(t: LinuxNamespaceType) -> Option<CloneFlags> {
    Some(match t {
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => return None,
    })
}

fn invalid(key: impl Into<String>, value: impl Into<String>, problem: &'static str) -> ContainerError {
    ContainerError::Config(OciError::Config(crate::error::ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        problem,
    }))
}

fn map_lines(m: &[LinuxIdMapping]) -> String {
    m.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

impl Namespaces {
    fn from_spec(spec: &Spec) -> Result<Self> {
        let linux = spec.linux().as_ref();
        let list = linux.and_then(|l| l.namespaces().clone()).unwrap_or_default();
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        for (i, n) in list.iter().enumerate() {
            let key = format!("linux.namespaces[{i}]");
            let Some(flag) = ns_flag(n.typ()) else {
                return Err(invalid(format!("{key}.type"), "time", "time namespaces are not supported here"));
            };
            if new.contains(flag) || join.iter().any(|(f, _, _)| *f == flag) {
                return Err(invalid(format!("{key}.type"), format!("{:?}", n.typ()), "listed twice"));
            }
            match n.path() {
                None => new |= flag,
                Some(p) => {
                    let shown = p.display().to_string();
                    let fd = nix::fcntl::open(p.as_path(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .map_err(sys("open namespace", format!("{key}.path {shown}")))?;
                    join.push((flag, shown, fd));
                }
            }
        }
        // User first (its capabilities for the others), mount last (the
        // others' paths are resolved in the runtime's mount namespace).
        join.sort_by_key(|(f, _, _)| match *f {
            CloneFlags::CLONE_NEWUSER => 0,
            CloneFlags::CLONE_NEWNS => 2,
            _ => 1,
        });
        let (mut uid_map, mut gid_map) = (String::new(), String::new());
        if new.contains(CloneFlags::CLONE_NEWUSER) {
            let l = linux.expect("a namespace list implies linux");
            uid_map = map_lines(l.uid_mappings().as_deref().unwrap_or_default());
            gid_map = map_lines(l.gid_mappings().as_deref().unwrap_or_default());
            if uid_map.is_empty() || gid_map.is_empty() {
                return Err(invalid(
                    "linux.uidMappings",
                    "",
                    "a new user namespace needs linux.uidMappings and linux.gidMappings",
                ));
            }
        }
        if !new.contains(CloneFlags::CLONE_NEWNS) {
            return Err(invalid("linux.namespaces", "", "the container needs a new mount namespace"));
        }
        Ok(Namespaces { new, join, uid_map, gid_map })
    }
}

impl Plans {
    fn load(opts: &CreateOptions) -> Result<Self> {
        let cfg = opts.bundle.join("config.json");
        let json = std::fs::read(&cfg).map_err(|e| ContainerError::State {
            path: cfg.clone(),
            problem: format!("read: {e}"),
        })?;
        // First: it names the key of a bad capability or rlimit, which
        // the typed parse below would only call an unknown variant.
        let process = ProcessPlan::from_json(&json)?;
        let spec: Spec = serde_json::from_slice(&json)
            .map_err(|e| OciError::Config(crate::error::ConfigError::Parse(e.to_string())))?;
        let ropts = RootfsOptions { no_pivot: opts.no_pivot, bundle: Some(opts.bundle.clone()) };
        let rootfs = RootfsPlan::from_spec(&spec, &ropts)?;
        let linux = spec.linux().as_ref();
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(match seccomp_cache_dir() {
                Some(dir) => SeccompPlan::from_spec_cached(s, &dir)?,
                None => SeccompPlan::from_spec(s)?,
            }),
            None => None,
        };
        let cgroup = match linux {
            Some(l) if l.cgroups_path().is_some() || l.resources().is_some() => {
                Some(CgroupPlan::from_linux(l, &opts.id)?)
            }
            _ => None,
        };
        let hooks = Hooks::from_spec(&spec)?;
        let ns = Namespaces::from_spec(&spec)?;
        Ok(Plans { spec, json, process, rootfs, seccomp, cgroup, hooks, ns })
    }
}

/// A created container: its init waits at the start gate. Dropping it
/// leaves the container as it is (another process can still start or
/// delete it through the state directory); [`delete`](Self::delete) ends it.
#[derive(Debug)]
pub struct Created {
    state: ContainerState,
    spec: Spec,
    hooks: Hooks,
    /// The init's error pipe: end-of-file once the program was executed.
    exec_r: Option<OwnedFd>,
    console: Option<OwnedFd>,
    exit: Option<i32>,
}

fn single_threaded() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| ContainerError::Sys {
        step: "single-threaded check",
        target: "/proc/self/status".into(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let n = status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse::<u32>().ok());
    if n != Some(1) {
        return Err(ContainerError::Sys {
            step: "single-threaded check",
            target: format!("{} threads (create forks: call it from a single-threaded process)", n.unwrap_or(0)),
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2", "create"))
}

fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}

fn write_all(fd: BorrowedFd<'_>, mut b: &[u8]) -> nix::Result<()> {
    while !b.is_empty() {
        match nix::unistd::write(fd, b) {
            Ok(n) => b = &b[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The record the container sent on its error pipe; `None` at
/// end-of-file (the program was executed).
fn read_record(fd: BorrowedFd<'_>) -> Option<ErrorRecord> {
    let mut buf = vec![0u8; 16 + ErrorRecord::MAX_MESSAGE];
    match read_full(fd, &mut buf) {
        0 => None,
        n => Some(ErrorRecord::decode(&buf[..n]).unwrap_or_else(|e| ErrorRecord::other(&e, None, 1))),
    }
}

/// Exit status as a shell shows it: the code, or 128+N after signal N.
pub(crate) fn wait_exit(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(ContainerError::Sys { step: "waitpid", target: pid.to_string(), errno: e }),
        }
    }
}

fn default_state_dir(id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|_| !nix::unistd::geteuid().is_root())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run"));
    base.join("nsboot-oci").join(id)
}

/// Where compiled seccomp programs are cached: `seccomp-cache` beside the
/// default state directories (`/run/nsboot-oci`, or
/// `$XDG_RUNTIME_DIR/nsboot-oci` when not root); `NSBOOT_OCI_SECCOMP_CACHE`
/// names another directory, or `off`.
fn seccomp_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("NSBOOT_OCI_SECCOMP_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => default_state_dir("x").parent().map(|p| p.join("seccomp-cache")),
    }
}

/// What create has made so far, undone in reverse on failure.
struct Undo<'a> {
    state_dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    procs: Vec<Pid>,
    poststop: Option<(&'a Hooks, State)>,
}

impl Undo<'_> {
    fn run(&mut self) {
        for p in self.procs.drain(..) {
            let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
            let _ = wait_exit(p);
        }
        if let Some(c) = self.cgroup.take() {
            let _ = c.remove();
        }
        if let Some(d) = self.state_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some((hooks, mut st)) = self.poststop.take() {
            st.status = Status::Stopped;
            let _ = hooks.run(HookKind::Poststop, &st);
        }
    }
}

impl Container {
    /// Create the container of `opts.bundle` (see the module doc): on
    /// success its init waits at the start gate, the state is in
    /// `state_dir`. On error nothing is left (no process, cgroup, mount,
    /// state directory).
    pub fn create(opts: CreateOptions) -> Result<Created> {
        if opts.id.is_empty() || opts.id.contains('/') || opts.id == "." || opts.id == ".." {
            return Err(invalid("id", opts.id.clone(), "not a directory name"));
        }
        let mut opts = opts;
        // Absolute: the state is read from other working directories, and
        // hooks get the bundle's absolute path (runtime-spec).
        opts.bundle = std::fs::canonicalize(&opts.bundle)
            .map_err(|e| ContainerError::State { path: opts.bundle.clone(), problem: format!("bundle: {e}") })?;
        mark("begin");
        let plans = Plans::load(&opts)?;
        single_threaded()?;
        mark("parse+check all plans");
        let mut state_dir = opts.state_dir.clone().unwrap_or_else(|| default_state_dir(&opts.id));
        if state_dir.is_relative() {
            let cwd = std::env::current_dir()
                .map_err(|e| ContainerError::State { path: state_dir.clone(), problem: format!("getcwd: {e}") })?;
            state_dir = cwd.join(state_dir);
        }
        let mut undo = Undo { state_dir: None, cgroup: None, procs: Vec::new(), poststop: None };
        match create_inner(&opts, &plans, &state_dir, &mut undo) {
            Ok(c) => Ok(c),
            Err(e) => {
                undo.run();
                Err(e)
            }
        }
    }

    /// Create, start, wait, delete: the program's exit status (128+N after
    /// signal N).
    pub fn run(opts: CreateOptions) -> Result<i32> {
        let mut c = Container::create(opts)?;
        if let Err(e) = c.start() {
            let _ = c.delete();
            return Err(e);
        }
        let code = c.wait();
        let deleted = c.delete();
        let code = code?;
        deleted?;
        Ok(code)
    }
}

fn create_inner<'a>(
    opts: &CreateOptions,
    plans: &'a Plans,
    state_dir: &Path,
    undo: &mut Undo<'a>,
) -> Result<Created> {
    let shown = state_dir.display().to_string();
    if let Some(parent) = state_dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ContainerError::State { path: parent.to_owned(), problem: format!("mkdir: {e}") })?;
    }
    match nix::unistd::mkdir(state_dir, Mode::from_bits_truncate(0o711)) {
        Ok(()) => undo.state_dir = Some(state_dir.to_owned()),
        Err(Errno::EEXIST) => {
            return Err(ContainerError::State { path: state_dir.to_owned(), problem: "exists (id in use)".into() })
        }
        Err(e) => return Err(sys("mkdir", shown)(e)),
    }
    let fifo_path = state_dir.join(state::FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600))
        .map_err(sys("mkfifo", fifo_path.display().to_string()))?;
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open", fifo_path.display().to_string()))?;
    std::fs::write(state_dir.join(state::CONFIG), &plans.json)
        .map_err(|e| ContainerError::State { path: state_dir.join(state::CONFIG), problem: format!("write: {e}") })?;

    mark("state dir + exec.fifo + config copy");
    let cgroup = match &plans.cgroup {
        Some(p) => {
            let c = p.create(&Hierarchies::detect()?)?;
            undo.cgroup = Some(c.clone());
            Some(c)
        }
        None => None,
    };
    let unified = match &cgroup {
        Some(c) => c.unified_fd()?,
        None => None,
    };
    // The console: connected before anything runs (runc opens
    // --console-socket in create), or a socketpair whose far end is ours.
    let (console_tx, console_rx) = match (plans.process.terminal, &opts.console_socket) {
        (false, _) => (None, None),
        (true, Some(p)) => (Some(connect_socket(p)?), None),
        (true, None) => {
            let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .map_err(sys("socketpair", "console"))?;
            (Some(a), Some(b))
        }
    };
    mark("cgroup create");
    let (sync_rt, sync_ns) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(sys("socketpair", "sync"))?;
    let (go_r, go_w) = pipe()?;
    let (exec_r, exec_w) = pipe()?;
    let (created_r, created_w) = pipe()?;
    let bundle = opts.bundle.to_string_lossy().into_owned();

    #[allow(unsafe_code)]
    // SAFETY: the process is single-threaded (checked in Container::create,
    // and nothing since started a thread).
    let forked = unsafe { crate::sys::fork_single_threaded() }.map_err(sys("fork", "namespace process"))?;
    let nsproc = match forked {
        nix::unistd::ForkResult::Child => {
            drop((sync_rt, go_w, exec_r, created_r, console_rx));
            let ctx = InitCtx {
                plans,
                id: &opts.id,
                bundle: &bundle,
                go_r,
                exec_w,
                gate: StartGate::from_fds(created_w, fifo),
                console: console_tx,
            };
            namespace_process(sync_ns, unified, ctx)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop((sync_ns, go_r, exec_w, created_w, console_tx, unified));
    undo.procs.push(nsproc);

    // The namespace process: maps, then the init's pid.
    let mut msg = [0u8; 16 + ErrorRecord::MAX_MESSAGE];
    let mut init = None;
    while init.is_none() {
        let n = match nix::unistd::read(sync_rt.as_fd(), &mut msg) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("read", "sync with the namespace process")(e)),
        };
        match msg.get(..n) {
            Some([b'M']) => {
                write_maps(nsproc, &plans.ns)?;
                write_all(sync_rt.as_fd(), b"A").map_err(sys("write", "sync with the namespace process"))?;
            }
            Some([b'P', rest @ ..]) if rest.len() == 5 => {
                let pid = i32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
                init = Some((Pid::from_raw(pid), rest[4] == 1));
            }
            Some([b'E', rec @ ..]) => {
                return Err(ContainerError::Container(
                    ErrorRecord::decode(rec).unwrap_or_else(|e| ErrorRecord::other(&e, None, 1)),
                ))
            }
            _ => {
                let code = wait_exit(nsproc)?;
                undo.procs.clear();
                return Err(ContainerError::Container(ErrorRecord::other(
                    &format!("the namespace process exited ({code}) before sending the container's pid"),
                    None,
                    code,
                )));
            }
        }
    }
    let (pid, in_cgroup) = init.expect("loop ends with a pid");
    mark("fork + namespaces + clone3 init");
    undo.procs.insert(0, pid);
    let _ = wait_exit(nsproc);
    undo.procs.retain(|p| *p != nsproc);
    drop(sync_rt);

    if let Some(c) = &cgroup {
        if in_cgroup {
            c.add_pid_v1(pid)?;
        } else {
            c.add_pid(pid)?;
        }
    }
    let st = |status| State::new(&plans.spec, &opts.id, &bundle, status, Some(pid.as_raw()));
    undo.poststop = Some((&plans.hooks, st(Status::Stopped)));
    mark("reap namespace process + cgroup join (v1 cgroup.procs)");
    for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
        for w in plans.hooks.run(kind, &st(Status::Creating))? {
            eprintln!("nsboot-oci: warning: {w}");
        }
    }
    mark("prestart + createRuntime hooks");
    let mut go = [1u8; 5];
    go[1..].copy_from_slice(&pid.as_raw().to_ne_bytes());
    write_all(go_w.as_fd(), &go).map_err(sys("write", "go to the container"))?;
    drop(go_w);
    let mut b = [0u8; 1];
    if read_full(created_r.as_fd(), &mut b) != 1 {
        let rec = read_record(exec_r.as_fd()).unwrap_or_else(|| {
            ErrorRecord::other(&"the container process exited before it was created", None, 1)
        });
        return Err(ContainerError::Container(rec));
    }
    mark("container: createContainer, rootfs, process setup, seccomp load");
    let console = match console_rx {
        Some(rx) => Some(crate::sys::recv_fd(rx.as_fd()).map_err(sys("recvmsg SCM_RIGHTS", "console"))?.0),
        None => None,
    };
    let state = ContainerState::new(&opts.id, pid, &opts.bundle, state_dir, cgroup)?;
    state.save()?;
    mark("state.json");
    // Created: nothing to undo any more.
    undo.state_dir = None;
    undo.cgroup = None;
    undo.procs.clear();
    undo.poststop = None;
    Ok(Created { state, spec: plans.spec.clone(), hooks: plans.hooks.clone(), exec_r: Some(exec_r), console, exit: None })
}

/// Write the namespace process's maps (`setgroups` "deny" first when the
/// runtime is not root, as the kernel then requires); on `EPERM` try
/// `newuidmap`/`newgidmap` (shadow-utils), as runc does.
fn write_maps(pid: Pid, ns: &Namespaces) -> Result<()> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let rootless = !nix::unistd::geteuid().is_root();
    if rootless {
        let _ = std::fs::write(proc.join("setgroups"), "deny");
    }
    for (file, tool, lines) in [("uid_map", "newuidmap", &ns.uid_map), ("gid_map", "newgidmap", &ns.gid_map)] {
        let path = proc.join(file);
        match std::fs::write(&path, lines.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                let mut cmd = std::process::Command::new(tool);
                cmd.arg(pid.to_string());
                cmd.args(lines.split_whitespace());
                match cmd.status() {
                    Ok(s) if s.success() => {}
                    _ => return Err(sys("write", format!("{} (and {tool})", path.display()))(Errno::EPERM)),
                }
            }
            Err(e) => {
                return Err(sys("write", path.display().to_string())(Errno::from_raw(e.raw_os_error().unwrap_or(0))))
            }
        }
    }
    Ok(())
}

/// What the init needs, handed from the runtime through the fork.
struct InitCtx<'a> {
    plans: &'a Plans,
    id: &'a str,
    bundle: &'a str,
    go_r: OwnedFd,
    exec_w: OwnedFd,
    gate: StartGate,
    console: Option<OwnedFd>,
}

/// The namespace process: never returns.
fn namespace_process(sync: OwnedFd, unified: Option<OwnedFd>, ctx: InitCtx<'_>) -> ! {
    let fail = |r: ErrorRecord| -> ! {
        let mut b = vec![b'E'];
        b.extend(r.encode());
        let _ = write_all(sync.as_fd(), &b);
        nix_exit(1)
    };
    let step_err = |step: &'static str, target: String| {
        move |errno: Errno| OciError::from(crate::error::StepError { step, target, errno }).record()
    };
    let ns = &ctx.plans.ns;
    let mut joined = CloneFlags::empty();
    for (flag, path, fd) in &ns.join {
        if *flag == CloneFlags::CLONE_NEWCGROUP {
            continue; // joined by the init, after it is in its cgroup
        }
        nix::sched::setns(fd, *flag).unwrap_or_else(|e| fail(step_err("setns", path.clone())(e)));
        joined |= *flag;
    }
    if ns.new.contains(CloneFlags::CLONE_NEWUSER) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
            .unwrap_or_else(|e| fail(step_err("unshare", "user namespace".into())(e)));
        let mut ack = [0u8; 1];
        if write_all(sync.as_fd(), b"M").is_err() || read_full(sync.as_fd(), &mut ack) != 1 {
            nix_exit(1);
        }
    }
    if ns.new.contains(CloneFlags::CLONE_NEWUSER) || joined.contains(CloneFlags::CLONE_NEWUSER) {
        // Root of the new user namespace (the maps must map 0).
        let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
        nix::unistd::setresgid(root.0, root.0, root.0)
            .unwrap_or_else(|e| fail(step_err("setresgid", "0 in the user namespace".into())(e)));
        nix::unistd::setresuid(root.1, root.1, root.1)
            .unwrap_or_else(|e| fail(step_err("setresuid", "0 in the user namespace".into())(e)));
    }
    let rest = ns.new & !(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWCGROUP);
    nix::sched::unshare(rest).unwrap_or_else(|e| fail(step_err("unshare", format!("{rest:?}"))(e)));
    #[allow(unsafe_code)]
    // SAFETY: this process is a fork of a single-threaded runtime and
    // started no thread.
    let forked = unsafe { clone_parent_into_cgroup(unified.as_ref().map(|f| f.as_fd())) };
    match forked {
        Ok(Forked::Child) => {
            drop(sync);
            drop(unified);
            init(ctx)
        }
        Ok(Forked::Parent { child, in_cgroup }) => {
            let mut b = vec![b'P'];
            b.extend(child.as_raw().to_ne_bytes());
            b.push(u8::from(in_cgroup));
            let _ = write_all(sync.as_fd(), &b);
            nix_exit(0)
        }
        Err(e) => fail(step_err("clone3", "CLONE_PARENT|CLONE_INTO_CGROUP".into())(e)),
    }
}

fn nix_exit(code: i32) -> ! {
    // The forked copies of the runtime end without running its atexit
    // handlers or flushing its stdio buffers twice.
    nsboot::sys::process::exit_now(code)
}

/// The container's init: never returns (execs or exits).
fn init(ctx: InitCtx<'_>) -> ! {
    let InitCtx { plans, id, bundle, go_r, exec_w, gate, console } = ctx;
    let fail = |r: ErrorRecord| -> ! {
        let _ = write_all(exec_w.as_fd(), &r.encode());
        nix_exit(r.exit_code)
    };
    let mut go = [0u8; 5];
    if read_full(go_r.as_fd(), &mut go) != 5 {
        nix_exit(1); // the runtime gave up (a hook failed) or died
    }
    drop(go_r);
    let pid = i32::from_ne_bytes([go[1], go[2], go[3], go[4]]);
    let ns = &plans.ns;
    if let Some((_, path, fd)) = ns.join.iter().find(|(f, _, _)| *f == CloneFlags::CLONE_NEWCGROUP) {
        if let Err(e) = nix::sched::setns(fd, CloneFlags::CLONE_NEWCGROUP) {
            fail(OciError::from(crate::error::StepError { step: "setns", target: path.clone(), errno: e }).record());
        }
    } else if ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
            fail(OciError::from(crate::error::StepError { step: "unshare", target: "cgroup namespace".into(), errno: e })
                .record());
        }
    }
    let state = |status| State::new(&plans.spec, id, bundle, status, Some(pid));
    if let Err(e) = plans.hooks.run(HookKind::CreateContainer, &state(Status::Creating)) {
        fail(OciError::from(e).record());
    }
    if let Err(e) = plans.process.apply_sysctls() {
        fail(e.record());
    }
    let mut warn = |w: &str| eprintln!("nsboot-oci: warning: {w}");
    if let Err(e) = crate::rootfs::prepare(&plans.rootfs, &mut warn) {
        fail(ErrorRecord::other(&e, e.errno(), 125));
    }
    if let Some(sock) = console {
        let pty = Pty::open(plans.process.console_size).unwrap_or_else(|e| fail(e.record()));
        send_master(sock.as_fd(), pty.master.as_fd()).unwrap_or_else(|e| fail(e.record()));
        drop(sock);
        pty.into_stdio().unwrap_or_else(|e| fail(e.record()));
    }
    // Nothing of the runtime's fds reaches the program but stdio (the
    // gate and error pipes are O_CLOEXEC already).
    if let Err(e) = crate::sys::cloexec_from(3) {
        fail(OciError::from(crate::error::StepError { step: "close_range", target: "fds 3..".into(), errno: e }).record());
    }
    let start_state = state(Status::Created);
    let mut load_seccomp = || -> std::result::Result<(), OciError> {
        let Some(sc) = &plans.seccomp else { return Ok(()) };
        let listener = sc.load().map_err(|e| OciError::Caller { step: "seccomp load", message: e.to_string() })?;
        if let (Some(fd), Some(path)) = (listener, sc.listener_path()) {
            let st = serde_json::to_value(&start_state)
                .and_then(serde_json::from_value::<oci_spec::runtime::State>)
                .map_err(|e| OciError::Caller { step: "seccomp notify state", message: e.to_string() })?;
            let ps = crate::seccomp::notify::process_state(&st, pid, sc.listener_metadata());
            crate::seccomp::notify::send_listener(path, &ps, fd.as_fd())
                .map_err(|e| OciError::Caller { step: "seccomp notify", message: e.to_string() })?;
        }
        Ok(())
    };
    let mut start_hooks = || {
        plans.hooks.run(HookKind::StartContainer, &start_state).map(drop).map_err(OciError::from)
    };
    let steps = ExecSteps {
        privileged: None,
        before_start: Some(&mut load_seccomp),
        gate: Some(gate),
        after_start: Some(&mut start_hooks),
    };
    let e = plans.process.apply(steps);
    fail(e.record())
}

impl Created {
    /// The init's pid (in the runtime's PID namespace).
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// The persisted state (what `*_by_state` read back).
    pub fn state(&self) -> &ContainerState {
        &self.state
    }

    /// The pty master, when `process.terminal` was set without a console
    /// socket (once).
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Release the container: it runs `startContainer` and execs. Returns
    /// once the program was executed (then `poststart` ran) or with the
    /// container's error (startContainer hook, exec).
    pub fn start(&mut self) -> Result<()> {
        state::release_gate(&self.state)?;
        mark("start: gate, startContainer, exec");
        if let Some(r) = self.exec_r.take().and_then(|fd| read_record(fd.as_fd())) {
            return Err(ContainerError::Container(r));
        }
        let st = State::new(&self.spec, &self.state.id, &self.state.bundle_str(), Status::Running, Some(self.pid()));
        for w in self.hooks.run(HookKind::Poststart, &st).unwrap_or_else(|e| vec![e]) {
            eprintln!("nsboot-oci: warning: {w}");
        }
        mark("poststart hooks");
        Ok(())
    }

    /// Send `sig` to the init.
    pub fn kill(&self, sig: Signal) -> Result<()> {
        if self.exit.is_some() {
            return Err(ContainerError::Status { id: self.state.id.clone(), problem: "has exited".into() });
        }
        nix::sys::signal::kill(Pid::from_raw(self.pid()), sig).map_err(sys("kill", format!("pid {}", self.pid())))
    }

    /// Wait for the init to exit: its status (128+N after signal N).
    pub fn wait(&mut self) -> Result<i32> {
        if let Some(c) = self.exit {
            return Ok(c);
        }
        let c = wait_exit(Pid::from_raw(self.pid()))?;
        mark("program (until exit)");
        self.exit = Some(c);
        Ok(c)
    }

    /// End the container (SIGKILL if it still runs, or was never
    /// started), remove its cgroup and state, run `poststop`.
    pub fn delete(mut self) -> Result<()> {
        if self.exit.is_none() {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
            self.wait()?;
        }
        state::finish_delete(&self.state, &self.spec, &self.hooks)
    }
}

/// The process side of a config for a process that is already in its
/// namespaces with its rootfs prepared (nsboot's stage-2 with
/// `NSBOOT_ROOTFS_EXEC`): `process` and `linux.seccomp`, applied with the
/// filter loaded last, then `execve` of `process.args`. No hooks, no
/// cgroup, no start gate: those are the bootstrap caller's.
#[derive(Debug)]
pub struct ExecPlan {
    process: ProcessPlan,
    seccomp: Option<SeccompPlan>,
}

impl ExecPlan {
    /// Check `process` and `linux.seccomp` of `json` (the seccomp program
    /// is compiled here).
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let process = ProcessPlan::from_json(json)?;
        let spec: Spec = serde_json::from_slice(json)
            .map_err(|e| OciError::Config(crate::error::ConfigError::Parse(e.to_string())))?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(SeccompPlan::from_spec(s)?),
            None => None,
        };
        if seccomp.as_ref().is_some_and(SeccompPlan::needs_listener) {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                "",
                "SCMP_ACT_NOTIFY needs the runtime's state (use Container::create)",
            ));
        }
        Ok(ExecPlan { process, seccomp })
    }

    /// sysctls, then [`ProcessPlan::apply`] with the seccomp filter; returns
    /// only on failure.
    pub fn exec(&self) -> OciError {
        if let Err(e) = self.process.apply_sysctls() {
            return e;
        }
        let mut load = || -> std::result::Result<(), OciError> {
            if let Some(sc) = &self.seccomp {
                sc.load().map_err(|e| OciError::Caller { step: "seccomp load", message: e.to_string() })?;
            }
            Ok(())
        };
        self.process.apply(ExecSteps { privileged: None, before_start: Some(&mut load), gate: None, after_start: None })
    }
}
