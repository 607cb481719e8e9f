//! The caller's side of the protocol (what runc's Go code does): start a
//! program with the init socket, send the message, read the pid JSON, check
//! stage-0's exit, and hand back the pids to reap.
//!
//! stage-1 and stage-2 are created with `CLONE_PARENT`, so they are the
//! caller's children: [`Spawned::reap_stage1`] and [`Spawned::wait_init`]
//! reap them.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::sys::process::{spawn_exec, wait_exit, ExecSetup, Exit};
use crate::wire::{self, BootstrapConfig, Dialect, WireError};

/// Why a spawn failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("encode the bootstrap message: {0}")]
    Encode(#[from] WireError),
    #[error("socketpair for the init pipe: {0}")]
    Socket(Errno),
    #[error("start {program}: {source}")]
    Start { program: String, source: std::io::Error },
    #[error("init pipe: {what}: {source}")]
    Pipe { what: &'static str, source: Errno },
    #[error("init pipe: expected the \\0 setup byte, got {0:#x}")]
    BadSetupByte(u8),
    #[error("bootstrap failed: stage-0 {status} ({detail})")]
    Failed { status: String, detail: &'static str },
    #[error("bad pid JSON from stage-0: {0:?}")]
    BadPidJson(String),
    #[error("pidfds were asked for but stage-0 sent {0}")]
    NoPidfds(String),
    /// A stage failed and said why (the caller asked for error records).
    #[error("bootstrap failed: {0}")]
    Stage(Box<crate::diag::StageFailure>),
}

impl SpawnError {
    /// The stage's structured error, when there is one.
    pub fn stage_failure(&self) -> Option<&crate::diag::StageFailure> {
        match self {
            SpawnError::Stage(f) => Some(f.as_ref()),
            _ => None,
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            SpawnError::Stage(f) => f.errno.map(Errno::from_raw),
            SpawnError::Socket(e) | SpawnError::Pipe { source: e, .. } => Some(*e),
            SpawnError::Start { source, .. } => source.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }
}

/// A bootstrapped process: stage-0 exited 0, stage-2 is running inside the
/// namespaces (and has returned into the program's `main`).
#[derive(Debug)]
pub struct Spawned {
    pub stage1: Pid,
    pub stage2: Pid,
    /// The caller's end of the init socket, still connected to stage-2.
    pub init_sock: OwnedFd,
    /// The stages' pidfds, when [`SpawnOptions::pidfds`] asked for them.
    pub pidfds: Option<StagePidfds>,
    stage1_reaped: bool,
}

/// pidfds of stage-1 and stage-2 (close-on-exec), from stage-0 over the
/// init socket: handles that cannot come to name another process when the
/// pid is reused.
#[derive(Debug)]
pub struct StagePidfds {
    pub stage1: OwnedFd,
    pub stage2: OwnedFd,
}

impl Spawned {
    /// Reap stage-1 (it has exited or is about to).
    pub fn reap_stage1(&mut self) {
        if !self.stage1_reaped {
            match &self.pidfds {
                Some(p) => {
                    let _ = crate::sys::process::waitid_pidfd(p.stage1.as_fd(), 0);
                }
                None => {
                    let _ = waitpid(self.stage1, None);
                }
            }
            self.stage1_reaped = true;
        }
    }

    /// Wait for stage-2 (the container's init) and return its status as a
    /// shell would: the exit code, or 128 + signal. By pidfd
    /// (`waitid(P_PIDFD)`) when there is one.
    pub fn wait_init(&mut self) -> Result<i32, Errno> {
        self.reap_stage1();
        let exit = match &self.pidfds {
            Some(p) => crate::sys::process::waitid_pidfd(p.stage2.as_fd(), 0)?.ok_or(Errno::ECHILD)?,
            None => wait_exit(self.stage2)?,
        };
        Ok(match exit {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig,
        })
    }

    /// Signal stage-2: by pidfd (`pidfd_send_signal`) when there is one, so
    /// a stage-2 that exited and was reaped is ESRCH even if its pid now
    /// names another process; by pid otherwise.
    pub fn signal_init(&self, sig: Signal) -> Result<(), Errno> {
        match &self.pidfds {
            Some(p) => crate::sys::process::pidfd_send_signal(p.stage2.as_fd(), sig as i32),
            None => kill(self.stage2, sig),
        }
    }

    /// stage-2's pidfd, when asked for.
    pub fn init_pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfds.as_ref().map(|p| p.stage2.as_fd())
    }
}

/// Options of [`spawn`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SpawnOptions<'a> {
    pub dialect: Dialect,
    /// Write end of a log pipe passed as `_LIBCONTAINER_LOGPIPE`.
    pub log_fd: Option<std::os::fd::BorrowedFd<'a>>,
    /// `_LIBCONTAINER_LOGLEVEL` (0..6); unset means debug.
    pub log_level: Option<u8>,
    /// Ask stage-0 for pidfds of stage-1 and stage-2 ([`Spawned::pidfds`]):
    /// adds the nsboot extension NSBOOT_CALLER_FLAGS to the message, so the
    /// program must run nsboot's bootstrap (runc's nsexec would refuse the
    /// attribute). Off: the message and the init socket are runc's, byte
    /// for byte.
    pub pidfds: bool,
    /// Ask a failing stage for a structured error record (stage, step,
    /// syscall, errno, path, cause, hint): [`SpawnError::Stage`]. Adds
    /// NSBOOT_CALLER_FLAGS like `pidfds`; the log line stays runc's.
    pub error_records: bool,
}

fn caller_flags(cfg: &BootstrapConfig, opts: &SpawnOptions<'_>) -> u32 {
    let mut f = cfg.caller_flags;
    if opts.pidfds {
        f |= wire::CALLER_FLAG_PIDFDS;
    }
    if opts.error_records {
        f |= wire::CALLER_FLAG_ERROR_RECORD;
    }
    f
}

/// The message for `cfg` with the caller flags `opts` asks for.
fn encode_for(cfg: &BootstrapConfig, opts: &SpawnOptions<'_>) -> Result<Vec<u8>, WireError> {
    let flags = caller_flags(cfg, opts);
    if flags != cfg.caller_flags {
        let mut c = cfg.clone();
        c.caller_flags = flags;
        wire::encode(&c, opts.dialect)
    } else {
        wire::encode(cfg, opts.dialect)
    }
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    crate::sys::process::read_raw(fd.as_raw_fd(), buf)
}

/// The variables a bootstrap needs: the init pipe, the dialect (said
/// explicitly, both ways: an inherited `_LIBCONTAINER_SYNCPIPE` or
/// `NSBOOT_DIALECT` must not make the bootstrap guess otherwise), the log
/// pipe and level.
fn bootstrap_env(init_fd: i32, opts: &SpawnOptions<'_>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("_LIBCONTAINER_INITPIPE", init_fd.to_string()),
        (
            "NSBOOT_DIALECT",
            match opts.dialect {
                Dialect::Runc11 => "1.1",
                Dialect::Runc12 => "1.2",
            }
            .to_owned(),
        ),
    ];
    if let Some(l) = opts.log_fd {
        env.push(("_LIBCONTAINER_LOGPIPE", l.as_raw_fd().to_string()));
    }
    if let Some(level) = opts.log_level {
        env.push(("_LIBCONTAINER_LOGLEVEL", level.to_string()));
    }
    env
}

/// A started stage-0, as the handshake needs it.
trait Stage0 {
    fn kill(&mut self);
    fn wait(&mut self) -> Result<Exit, String>;
}

impl Stage0 for std::process::Child {
    fn kill(&mut self) {
        let _ = std::process::Child::kill(self);
    }
    fn wait(&mut self) -> Result<Exit, String> {
        let s = std::process::Child::wait(self).map_err(|e| e.to_string())?;
        Ok(match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            _ => Exit::Code(-1),
        })
    }
}

/// A stage-0 started by [`spawn_exec`].
struct RawStage0(Pid);

impl Stage0 for RawStage0 {
    fn kill(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
    }
    fn wait(&mut self) -> Result<Exit, String> {
        wait_exit(self.0).map_err(|e| e.to_string())
    }
}

/// Start `cmd` as a bootstrap: it must be a program that runs nsboot (or
/// runc's nsexec) before `main` or first thing in it. Sends `cfg`, waits for
/// stage-0, returns the pids. On failure nothing is left running.
pub fn spawn(mut cmd: Command, cfg: &BootstrapConfig, opts: SpawnOptions<'_>) -> Result<Spawned, SpawnError> {
    let msg = encode_for(cfg, &opts)?;
    let flags = caller_flags(cfg, &opts);
    let (parent, child) = crate::stages::sync::pair().map_err(SpawnError::Socket)?;
    let child_fd = child.as_raw_fd();
    for (k, v) in bootstrap_env(child_fd, &opts) {
        cmd.env(k, v);
    }
    crate::sys::process::inherit_on_exec(&mut cmd, [Some(child_fd), opts.log_fd.map(|f| f.as_raw_fd())]);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let stage0 = cmd.spawn().map_err(|source| SpawnError::Start { program, source })?;
    drop(child);
    finish(stage0, parent, &msg, opts.dialect, flags)
}

/// [`spawn`] for a program given as C strings (the C API): `prog` is run
/// with exactly `argv` (`argv[0]` included), and `envp` (or this process's
/// environment when `None`) plus the bootstrap's variables. Uses
/// [`spawn_exec`] rather than `std::process::Command`, so the C library
/// does not carry Command's code.
pub fn spawn_program(
    prog: &CStr,
    argv: &[CString],
    envp: Option<&[CString]>,
    cfg: &BootstrapConfig,
    opts: SpawnOptions<'_>,
) -> Result<Spawned, SpawnError> {
    let shown = || String::from_utf8_lossy(prog.to_bytes()).into_owned();
    let start = |e: Errno| SpawnError::Start { program: shown(), source: std::io::Error::from_raw_os_error(e as i32) };
    let msg = encode_for(cfg, &opts)?;
    let flags = caller_flags(cfg, &opts);
    let (parent, child) = crate::stages::sync::pair().map_err(SpawnError::Socket)?;
    let child_fd = child.as_raw_fd();
    let ours = bootstrap_env(child_fd, &opts);
    let base = match envp {
        Some(e) => e.to_vec(),
        None => crate::sys::process::environ_copy(),
    };
    let mut env: Vec<CString> = base
        .into_iter()
        .filter(|kv| !ours.iter().any(|(k, _)| kv.as_bytes().strip_prefix(k.as_bytes()).is_some_and(|r| r.first() == Some(&b'='))))
        .collect();
    for (k, v) in &ours {
        env.push(CString::new(format!("{k}={v}")).map_err(|_| start(Errno::EINVAL))?);
    }
    let argv: Vec<CString> = if argv.is_empty() { vec![prog.to_owned()] } else { argv.to_vec() };
    let inherit: Vec<i32> = std::iter::once(child_fd).chain(opts.log_fd.map(|f| f.as_raw_fd())).collect();
    let pid = spawn_exec(prog, &argv, &env, ExecSetup { inherit: &inherit, die_with_parent: false }).map_err(start)?;
    drop(child);
    finish(RawStage0(pid), parent, &msg, opts.dialect, flags)
}

/// The caller's side after stage-0 started: the handshake, then stage-0's
/// exit; on any failure the stages it reported are killed and reaped.
fn finish(mut stage0: impl Stage0, parent: OwnedFd, msg: &[u8], dialect: Dialect, flags: u32) -> Result<Spawned, SpawnError> {
    let result = handshake(&parent, msg, dialect, flags & wire::CALLER_FLAG_PIDFDS != 0);
    if result.is_err() {
        // Stage-0 may still be blocked on us: end it. Its children see the
        // sync sockets close and exit too.
        stage0.kill();
    }
    let status = stage0.wait();
    let (pids, fds) = result?;
    let (s1, s2) = pids;
    if status != Ok(Exit::Code(0)) {
        let _ = kill(s2, Signal::SIGKILL);
        let _ = kill(s1, Signal::SIGKILL);
        let _ = waitpid(s1, None);
        let _ = waitpid(s2, None);
        if flags & wire::CALLER_FLAG_ERROR_RECORD != 0 {
            // Every stage is gone: what they wrote is followed by EOF.
            if let Some(f) = read_error_record(&parent) {
                return Err(SpawnError::Stage(Box::new(f)));
            }
        }
        let shown = match status {
            Ok(e) => e.to_string(),
            Err(e) => format!("could not be waited for: {e}"),
        };
        return Err(SpawnError::Failed { status: shown, detail: "after reporting pids" });
    }
    Ok(Spawned { stage1: s1, stage2: s2, init_sock: parent, pidfds: fds, stage1_reaped: false })
}

type Handshake = ((Pid, Pid), Option<StagePidfds>);

fn handshake(sock: &OwnedFd, msg: &[u8], dialect: Dialect, pidfds: bool) -> Result<Handshake, SpawnError> {
    if dialect == Dialect::Runc11 {
        let mut b = [0u8; 1];
        match read_some(sock, &mut b) {
            Ok(1) if b[0] == 0 => {}
            Ok(1) => return Err(SpawnError::BadSetupByte(b[0])),
            Ok(_) => return Err(SpawnError::Failed { status: "closed the init pipe".into(), detail: "before the setup byte" }),
            Err(source) => return Err(SpawnError::Pipe { what: "read setup byte", source }),
        }
    }
    crate::sys::process::write_all_raw(sock.as_raw_fd(), msg)
        .map_err(|source| SpawnError::Pipe { what: "write message", source })?;
    let pids = read_pids(sock)?;
    if !pidfds {
        return Ok((pids, None));
    }
    match read_pidfds(sock) {
        Ok(fds) => Ok((pids, Some(fds))),
        Err(e) => {
            // The pids are known: stage-0 killed them when it failed; reap.
            for p in [pids.0, pids.1] {
                let _ = kill(p, Signal::SIGKILL);
                let _ = waitpid(p, None);
            }
            Err(e)
        }
    }
}

/// Read the opt-in pidfds that follow the pid JSON line: one byte `P` with
/// two fds (stage-1, stage-2) as SCM_RIGHTS.
pub fn read_pidfds(sock: &OwnedFd) -> Result<StagePidfds, SpawnError> {
    let (tag, fds) = crate::stages::sync::recv_tagged_fds::<2>(sock.as_raw_fd())
        .map_err(|source| SpawnError::Pipe { what: "read pidfds", source })?;
    let mut fds = fds.into_iter();
    match (tag, fds.next(), fds.next()) {
        (Some(b'P'), Some(stage1), Some(stage2)) => Ok(StagePidfds { stage1, stage2 }),
        (None, ..) => Err(SpawnError::NoPidfds("EOF (it failed: see its log)".into())),
        (Some(t), a, b) => Err(SpawnError::NoPidfds(format!(
            "byte {t:#x} with {} fds",
            a.is_some() as usize + b.is_some() as usize
        ))),
    }
}

/// Read and parse the pid line stage-0 writes on the init socket:
/// `{"stage1_pid":N,"stage2_pid":M}\n` (at most 256 bytes).
pub fn read_pids(sock: &OwnedFd) -> Result<(Pid, Pid), SpawnError> {
    let mut line = Vec::with_capacity(64);
    let mut b = [0u8; 1];
    loop {
        match read_some(sock, &mut b) {
            Ok(0) => {
                return Err(SpawnError::Failed { status: "closed the init pipe".into(), detail: "before the pid JSON" })
            }
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => {
                line.push(b[0]);
                // An error record (CALLER_FLAG_ERROR_RECORD) is longer.
                if line.len() > 65536 || (line.len() > 256 && !line.starts_with(b"{\"nsboot_error\"")) {
                    return Err(SpawnError::BadPidJson(String::from_utf8_lossy(&line).into_owned()));
                }
            }
            Err(source) => return Err(SpawnError::Pipe { what: "read pid JSON", source }),
        }
    }
    if let Some(f) = crate::diag::StageFailure::parse(&line) {
        return Err(SpawnError::Stage(Box::new(f)));
    }
    parse_pid_json(&line)
}

/// The first error record among the lines left on the init socket (at
/// most 64 KiB are read), once every stage has exited.
fn read_error_record(sock: &OwnedFd) -> Option<crate::diag::StageFailure> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.len() < 65536 {
        match read_some(sock, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    all.split(|b| *b == b'\n').find_map(crate::diag::StageFailure::parse)
}

/// Parse `{"stage1_pid":N,"stage2_pid":M}` strictly (no other keys).
pub fn parse_pid_json(line: &[u8]) -> Result<(Pid, Pid), SpawnError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let (one, two) = crate::wire::json::pid_pair(line).map_err(|_| SpawnError::BadPidJson(shown()))?;
    if one <= 0 || two <= 0 {
        return Err(SpawnError::BadPidJson(shown()));
    }
    Ok((Pid::from_raw(one), Pid::from_raw(two)))
}
