//! The bootstrap server (zygote, issue 19): a host that will have threads
//! (Go, tokio, the JVM, any embedding) cannot enter namespaces itself and
//! may fork only until exec. So while it is still single-threaded (its
//! constructor, or first thing in `main`) it forks a small server that
//! stays single-threaded for ever and bootstraps on request: each request
//! carries the bootstrap message, the stdio fds and the program (an fd or
//! a path); the server forks stage-0, which runs the same stage machine as
//! any bootstrap ([`crate::stages::run_config_to_stage2`]), and stage-2
//! execs the program inside the namespaces. The answer: the pids and
//! pidfds of stage-1 and stage-2 (or the stage's structured error), then,
//! when stage-2 exits, its status. The stages are the server's children,
//! so the server reaps them.
//!
//! Trust: requests come over an abstract unix socket with a random name;
//! each connection's peer (`SO_PEERCRED`) must be the host process, or the
//! request is refused. The server dies with its host *process*: it polls a
//! pidfd of the host (src/stages/watch.rs explains why not
//! `PR_SET_PDEATHSIG`: that follows the forking thread), kills what it
//! started and exits; stages it is still bootstrapping die with it (they
//! watch the server the same way).
//!
//! Protocol on a connection (native endianness, one request each):
//! - request: 16 bytes `NSB1`, payload length u32, fd mask u32 (bit 0..2:
//!   stdin, stdout, stderr; bit 3: the program as an fd), 0 u32, with the
//!   fds (SCM_RIGHTS, in that order); then the payload: u32 message length,
//!   the bootstrap message (runc ≥ 1.2 dialect), u32 argc, u32 envc
//!   (`u32::MAX`: the server's environment), and NUL-terminated strings:
//!   the path (empty with a program fd), argv, envp.
//! - answers: `S` i32 stage-1 pid, i32 stage-2 pid, with two pidfds; or
//!   `E` u32 length, text (an error record line when a stage failed, see
//!   [`crate::diag`]); later `X` i32 status (exit code, or 128 + signal).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, connect, getsockopt, listen, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    UnixAddr,
};
use nix::unistd::Pid;

use crate::caller::StagePidfds;
use crate::stages::sync::{recv_bytes_fds, send_bytes_fds};
use crate::sys::process::{clone_pidfd, exit_now, pidfd_send_signal, waitid_pidfd, Exit, Forked, SingleThreaded};
use crate::wire::{self, BootstrapConfig, Dialect};

const MAGIC: &[u8; 4] = b"NSB1";
const FD_STDIN: u32 = 1;
const FD_STDOUT: u32 = 2;
const FD_STDERR: u32 = 4;
const FD_PROGRAM: u32 = 8;
/// No program: stage-2 calls a function of the server's image (the path
/// field holds its address) and exits with its result.
const CALLBACK: u32 = 16;
/// Cap on a request payload (the message cap plus argv/envp).
const MAX_PAYLOAD: usize = 8 << 20;

/// Why the server could not be started or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bootstrap server: {what}: {source}")]
    Sys { what: &'static str, source: Errno },
    #[error("bootstrap server: the process is not single-threaded")]
    Threads,
    #[error("bootstrap server: encode the message: {0}")]
    Encode(#[from] wire::WireError),
    #[error("bootstrap server refused the request: {0}")]
    Refused(String),
    #[error("bootstrap failed: {0}")]
    Stage(Box<crate::diag::StageFailure>),
    #[error("bootstrap server: bad answer: {0}")]
    Protocol(String),
}

impl ServerError {
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ServerError::Sys { source, .. } => Some(*source),
            ServerError::Stage(f) => f.errno.map(Errno::from_raw),
            _ => None,
        }
    }
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> ServerError {
    move |source| ServerError::Sys { what, source }
}

/// The host's handle on its server. Share it between threads (`&self`
/// methods only). Dropping it does not stop the server; the host's exit
/// does.
#[derive(Debug)]
pub struct Server {
    name: Vec<u8>,
    pid: Pid,
}

/// What to start: the program, its arguments, environment and stdio.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub cfg: &'a BootstrapConfig,
    pub program: Program<'a>,
    /// `argv[0]` included.
    pub argv: &'a [CString],
    /// `None`: the server's environment (the host's when it was started).
    pub envp: Option<&'a [CString]>,
    /// stdin, stdout, stderr of the program; `None`: /dev/null.
    pub stdio: [Option<BorrowedFd<'a>>; 3],
}

/// The program stage-2 executes.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// A path, resolved by stage-2 inside the namespaces.
    Path(&'a CStr),
    /// An open file (`execveat(AT_EMPTY_PATH)`), e.g. a sealed copy.
    Fd(BorrowedFd<'a>),
    /// A function of the host's image (the server is a fork of it, so the
    /// same address names it there): stage-2 calls it inside the
    /// namespaces and exits with its result, with no exec at all.
    Callback(extern "C" fn() -> libc::c_int),
}

/// A program started by the server.
#[derive(Debug)]
pub struct Served {
    pub stage1: Pid,
    pub stage2: Pid,
    /// pidfds of stage-1 and stage-2: signal them (`pidfd_send_signal`) or
    /// poll them; the server, their parent, reaps them.
    pub pidfds: StagePidfds,
    conn: OwnedFd,
    status: Option<i32>,
}

impl Served {
    /// Signal stage-2 by pidfd.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> Result<(), Errno> {
        pidfd_send_signal(self.pidfds.stage2.as_fd(), sig as i32)
    }

    /// Wait for stage-2's status, as a shell shows it (the exit code, or
    /// 128 + signal), which the server sends once it reaped it.
    pub fn wait(&mut self) -> Result<i32, ServerError> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let mut b = [0u8; 5];
        let n = crate::sys::process::read_full(self.conn.as_raw_fd(), &mut b).map_err(sys("read exit status"))?;
        match (n, b) {
            (5, [b'X', a, c, d, e]) => {
                let s = i32::from_ne_bytes([a, c, d, e]);
                self.status = Some(s);
                Ok(s)
            }
            (0, _) => Err(ServerError::Protocol("the server closed the connection (it exited?)".into())),
            _ => Err(ServerError::Protocol(format!("{:?}", b.get(..n)))),
        }
    }
}

impl Server {
    /// Fork the server. Call while the process is single-threaded (the
    /// token proves it); the host may start threads afterwards.
    pub fn start(token: &SingleThreaded) -> Result<Server, ServerError> {
        let host = Pid::this();
        let mut rnd = [0u8; 8];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").map_err(|e| ServerError::Sys {
            what: "open /dev/urandom",
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?, &mut rnd)
        .map_err(|e| ServerError::Sys { what: "read /dev/urandom", source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) })?;
        let name = format!("nsboot-server-{host}-{:016x}", u64::from_ne_bytes(rnd)).into_bytes();
        let addr = UnixAddr::new_abstract(&name).map_err(sys("socket address"))?;
        let listener =
            socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
                .map_err(sys("socket"))?;
        bind(listener.as_raw_fd(), &addr).map_err(sys("bind"))?;
        listen(&listener, Backlog::new(256).unwrap_or(Backlog::MAXCONN)).map_err(sys("listen"))?;
        let host_fd = crate::sys::process::pidfd_open(host).ok();
        match clone_pidfd(token, 0).map_err(sys("fork the server"))? {
            (Forked::Child, _, _) => serve(listener, host, host_fd, token),
            (Forked::Parent(pid), _, _) => Ok(Server { name, pid }),
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The abstract socket name (without the leading NUL).
    pub fn address(&self) -> &[u8] {
        &self.name
    }

    /// Start `req` inside its namespaces; thread-safe. Returns once
    /// stage-0 has finished (stage-2 runs or has exec'd the program).
    pub fn run(&self, req: &Request<'_>) -> Result<Served, ServerError> {
        let payload = encode_request(req)?;
        let conn = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys("socket"))?;
        let addr = UnixAddr::new_abstract(&self.name).map_err(sys("socket address"))?;
        connect(conn.as_raw_fd(), &addr).map_err(sys("connect to the server"))?;
        let mut mask = 0;
        let mut fds: Vec<RawFd> = Vec::new();
        for (i, fd) in req.stdio.iter().enumerate() {
            if let Some(fd) = fd {
                mask |= 1 << i;
                fds.push(fd.as_raw_fd());
            }
        }
        if let Program::Fd(fd) = req.program {
            mask |= FD_PROGRAM;
            fds.push(fd.as_raw_fd());
        }
        if let Program::Callback(_) = req.program {
            mask |= CALLBACK;
        }
        let mut head = Vec::with_capacity(16 + payload.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(payload.len() as u32).to_ne_bytes());
        head.extend_from_slice(&mask.to_ne_bytes());
        head.extend_from_slice(&0u32.to_ne_bytes());
        head.extend_from_slice(&payload);
        send_bytes_fds(conn.as_raw_fd(), &head, &fds).map_err(sys("send the request"))?;
        read_started(conn)
    }
}

fn read_started(conn: OwnedFd) -> Result<Served, ServerError> {
    let mut tag = [0u8; 1];
    let (n, mut fds) = recv_bytes_fds::<2>(conn.as_raw_fd(), &mut tag).map_err(sys("read the answer"))?;
    match (n, tag[0]) {
        (0, _) => Err(ServerError::Protocol("the server closed the connection".into())),
        (_, b'S') => {
            let mut b = [0u8; 8];
            let (m, more) = recv_bytes_fds::<2>(conn.as_raw_fd(), &mut b).map_err(sys("read the answer"))?;
            fds.extend(more);
            if m != 8 || fds.len() != 2 {
                return Err(ServerError::Protocol(format!("started: {m} bytes, {} fds", fds.len())));
            }
            let stage2 = fds.pop().ok_or_else(|| ServerError::Protocol("no pidfd".into()))?;
            let stage1 = fds.pop().ok_or_else(|| ServerError::Protocol("no pidfd".into()))?;
            Ok(Served {
                stage1: Pid::from_raw(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
                stage2: Pid::from_raw(i32::from_ne_bytes([b[4], b[5], b[6], b[7]])),
                pidfds: StagePidfds { stage1, stage2 },
                conn,
                status: None,
            })
        }
        (_, t @ (b'E' | b'R')) => {
            let mut l = [0u8; 4];
            crate::sys::process::read_full(conn.as_raw_fd(), &mut l).map_err(sys("read the answer"))?;
            let len = (u32::from_ne_bytes(l) as usize).min(1 << 20);
            let mut text = vec![0u8; len];
            let got = crate::sys::process::read_full(conn.as_raw_fd(), &mut text).map_err(sys("read the answer"))?;
            text.truncate(got);
            if let Some(f) = crate::diag::StageFailure::parse(text.trim_ascii_end()) {
                return Err(ServerError::Stage(Box::new(f)));
            }
            let shown = String::from_utf8_lossy(&text).into_owned();
            Err(if t == b'R' { ServerError::Refused(shown) } else { ServerError::Protocol(shown) })
        }
        (_, t) => Err(ServerError::Protocol(format!("answer {t:#x}"))),
    }
}

fn put_u32(v: &mut Vec<u8>, n: usize) -> Result<(), ServerError> {
    let n = u32::try_from(n).map_err(|_| ServerError::Protocol("request too large".into()))?;
    v.extend_from_slice(&n.to_ne_bytes());
    Ok(())
}

fn encode_request(req: &Request<'_>) -> Result<Vec<u8>, ServerError> {
    let msg = wire::encode(req.cfg, Dialect::Runc12)?;
    let mut p = Vec::with_capacity(msg.len() + 256);
    put_u32(&mut p, msg.len())?;
    p.extend_from_slice(&msg);
    put_u32(&mut p, req.argv.len())?;
    match req.envp {
        Some(e) => put_u32(&mut p, e.len())?,
        None => p.extend_from_slice(&u32::MAX.to_ne_bytes()),
    }
    match req.program {
        Program::Path(path) => p.extend_from_slice(path.to_bytes()),
        Program::Callback(f) => p.extend_from_slice((f as usize).to_string().as_bytes()),
        Program::Fd(_) => {}
    }
    p.push(0);
    for s in req.argv.iter().chain(req.envp.unwrap_or_default()) {
        p.extend_from_slice(s.as_bytes_with_nul());
    }
    if p.len() > MAX_PAYLOAD {
        return Err(ServerError::Protocol("request too large".into()));
    }
    Ok(p)
}

/// A request as the server decoded it.
struct Decoded {
    cfg: BootstrapConfig,
    path: Option<CString>,
    argv: Vec<CString>,
    envp: Option<Vec<CString>>,
    stdio: [Option<OwnedFd>; 3],
    program_fd: Option<OwnedFd>,
    callback: Option<usize>,
}

fn take_u32(p: &[u8], at: &mut usize) -> Option<u32> {
    let b = p.get(*at..*at + 4)?;
    *at += 4;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_str(p: &[u8], at: &mut usize) -> Option<CString> {
    let rest = p.get(*at..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    *at += end + 1;
    CString::new(rest.get(..end)?).ok()
}

fn decode_request(mask: u32, payload: &[u8], fds: Vec<OwnedFd>) -> Result<Decoded, String> {
    let mut fds = fds.into_iter();
    let mut stdio: [Option<OwnedFd>; 3] = [None, None, None];
    for (i, bit) in [FD_STDIN, FD_STDOUT, FD_STDERR].into_iter().enumerate() {
        if mask & bit != 0 {
            stdio[i] = Some(fds.next().ok_or("missing stdio fd")?);
        }
    }
    let program_fd = if mask & FD_PROGRAM != 0 { Some(fds.next().ok_or("missing program fd")?) } else { None };
    let bad = || "malformed request".to_string();
    let mut at = 0;
    let mlen = take_u32(payload, &mut at).ok_or_else(bad)? as usize;
    let msg = payload.get(at..at + mlen).ok_or_else(bad)?;
    at += mlen;
    let mut cfg = wire::decode(msg, Dialect::Runc12).map_err(|e| format!("bootstrap message: {e}"))?;
    cfg.caller_flags |= wire::CALLER_FLAG_PIDFDS | wire::CALLER_FLAG_ERROR_RECORD;
    let argc = take_u32(payload, &mut at).ok_or_else(bad)?;
    let envc = take_u32(payload, &mut at).ok_or_else(bad)?;
    let path = take_str(payload, &mut at).ok_or_else(bad)?;
    let callback = if mask & CALLBACK != 0 {
        Some(path.to_str().ok().and_then(|t| t.parse::<usize>().ok()).filter(|a| *a != 0).ok_or_else(bad)?)
    } else {
        None
    };
    let path = if program_fd.is_some() || callback.is_some() { None } else { Some(path) };
    if path.as_ref().is_some_and(|p| p.is_empty()) {
        return Err("no program".into());
    }
    let mut argv = Vec::new();
    for _ in 0..argc {
        argv.push(take_str(payload, &mut at).ok_or_else(bad)?);
    }
    let envp = if envc == u32::MAX {
        None
    } else {
        let mut e = Vec::new();
        for _ in 0..envc {
            e.push(take_str(payload, &mut at).ok_or_else(bad)?);
        }
        Some(e)
    };
    if at != payload.len() {
        return Err(bad());
    }
    Ok(Decoded { cfg, path, argv, envp, stdio, program_fd, callback })
}

/// A started program the server waits for.
struct Live {
    conn: OwnedFd,
    stage1: OwnedFd,
    stage2: OwnedFd,
}

/// The server's main loop; never returns.
fn serve(listener: OwnedFd, host: Pid, host_fd: Option<OwnedFd>, token: &SingleThreaded) -> ! {
    let _ = nix::sys::prctl::set_name(c"nsboot-server");
    if host_fd.is_none() {
        // No pidfd (Linux < 5.3): the thread-bound fallback.
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    }
    if nix::unistd::getppid() != host {
        exit_now(0);
    }
    // Our own stdin/stdout are the host's: let go of them (stderr stays
    // for the stages' fatal lines).
    if let Ok(null) = nix::fcntl::open(c"/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let mut live: Vec<Live> = Vec::new();
    let mut starting: Vec<Starting> = Vec::new();
    loop {
        let mut watch: Vec<RawFd> = vec![listener.as_raw_fd(), host_fd.as_ref().map_or(-1, |f| f.as_raw_fd())];
        watch.extend(live.iter().map(|l| l.stage2.as_raw_fd()));
        let first_starting = watch.len();
        watch.extend(starting.iter().map(|s| s.stage0_fd.as_ref().map_or(-1, |f| f.as_raw_fd())));
        let ready = match crate::sys::process::poll_many(&watch, -1) {
            Ok(r) => r,
            Err(_) => exit_now(1),
        };
        if ready.get(1).copied().unwrap_or(false) {
            // The host is gone: nothing we started outlives it.
            for l in &live {
                let _ = pidfd_send_signal(l.stage2.as_fd(), libc::SIGKILL);
            }
            // Stages being bootstrapped watch us (a pidfd of the server):
            // they end themselves when we exit.
            for st in &starting {
                if let Some(fd) = &st.stage0_fd {
                    let _ = pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                }
            }
            for l in &live {
                let _ = waitid_pidfd(l.stage2.as_fd(), 0);
                let _ = waitid_pidfd(l.stage1.as_fd(), libc::WNOHANG);
            }
            exit_now(0);
        }
        // Exits first (they free slots), in reverse so removal is safe.
        for i in (0..live.len()).rev() {
            if ready.get(2 + i).copied().unwrap_or(false) {
                let l = live.swap_remove(i);
                let status = match waitid_pidfd(l.stage2.as_fd(), 0) {
                    Ok(Some(Exit::Code(c))) => c,
                    Ok(Some(Exit::Signal(s))) => 128 + s,
                    _ => -1,
                };
                let _ = waitid_pidfd(l.stage1.as_fd(), libc::WNOHANG);
                let mut b = vec![b'X'];
                b.extend_from_slice(&status.to_ne_bytes());
                let _ = send_bytes_fds(l.conn.as_raw_fd(), &b, &[]);
            }
        }
        // Bootstraps whose stage-0 has exited: answer them.
        for i in (0..starting.len()).rev() {
            if ready.get(first_starting + i).copied().unwrap_or(false) {
                let st = starting.swap_remove(i);
                if let Some(l) = answer_started(st) {
                    live.push(l);
                }
            }
        }
        if ready.first().copied().unwrap_or(false) {
            // Every pending connection.
            while let Ok(fd) = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                let conn = crate::sys::process::own_received_fd(fd);
                if let Some(st) = handle(conn, host, token) {
                    if st.stage0_fd.is_some() {
                        starting.push(st);
                    } else if let Some(l) = answer_started(st) {
                        // No pidfd to poll (Linux < 5.3): wait here.
                        live.push(l);
                    }
                }
            }
        }
    }
}

fn answer_error(conn: &OwnedFd, tag: u8, text: &str) {
    let mut b = vec![tag];
    b.extend_from_slice(&(text.len() as u32).to_ne_bytes());
    b.extend_from_slice(text.as_bytes());
    let _ = send_bytes_fds(conn.as_raw_fd(), &b, &[]);
}

/// Read one connection's request and fork its stage-0.
fn handle(conn: OwnedFd, host: Pid, token: &SingleThreaded) -> Option<Starting> {
    // A stuck client must not stall the server.
    let _ = nix::sys::socket::setsockopt(&conn, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(5, 0));
    match getsockopt(&conn, sockopt::PeerCredentials) {
        Ok(c) if c.pid() == host.as_raw() => {}
        Ok(c) => {
            answer_error(&conn, b'R', &format!("peer pid {} is not the host (pid {host})", c.pid()));
            return None;
        }
        Err(e) => {
            answer_error(&conn, b'R', &format!("SO_PEERCRED: {e}"));
            return None;
        }
    }
    let mut head = [0u8; 16];
    let (n, fds) = recv_bytes_fds::<4>(conn.as_raw_fd(), &mut head).ok()?;
    let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    if n != 16 || head.get(..4) != Some(MAGIC.as_slice()) || word(4) as usize > MAX_PAYLOAD {
        answer_error(&conn, b'E', "malformed request header");
        return None;
    }
    let mut payload = vec![0u8; word(4) as usize];
    match crate::sys::process::read_full(conn.as_raw_fd(), &mut payload) {
        Ok(k) if k == payload.len() => {}
        _ => {
            answer_error(&conn, b'E', "short request");
            return None;
        }
    }
    let req = match decode_request(word(8), &payload, fds) {
        Ok(r) => r,
        Err(e) => {
            answer_error(&conn, b'E', &e);
            return None;
        }
    };
    match start_bootstrap(req, token) {
        Ok((ours, stage0, stage0_fd)) => Some(Starting { conn, ours, stage0, stage0_fd }),
        Err(text) => {
            answer_error(&conn, b'E', &text);
            None
        }
    }
}

/// A bootstrap under way: stage-0 forked, its exit not seen yet.
struct Starting {
    conn: OwnedFd,
    ours: OwnedFd,
    stage0: Pid,
    stage0_fd: Option<OwnedFd>,
}

/// Fork stage-0 for `req` (it runs in parallel with the server, which
/// goes on serving; [`finish_bootstrap`] once stage-0 has exited).
fn start_bootstrap(req: Decoded, token: &SingleThreaded) -> Result<(OwnedFd, Pid, Option<OwnedFd>), String> {
    let (ours, theirs) = crate::stages::sync::pair().map_err(|e| format!("socketpair: {e}"))?;
    match clone_pidfd(token, 0) {
        Err(e) => Err(format!("fork stage-0: {e}")),
        Ok((Forked::Child, _, _)) => {
            drop(ours);
            let env = crate::stages::BootEnv {
                init_fd: theirs.as_raw_fd(),
                log_fd: None,
                log_level: crate::log::Level::Error,
                dialect: Dialect::Runc12,
                mount_fds: None,
                stop_at: None,
            };
            let cfg = req.cfg.clone();
            crate::stages::run_config_to_stage2(&env, cfg, crate::stages::GivenOptions { new_session: true }, token);
            // stage-2, inside the namespaces.
            drop(theirs);
            exec_program(req)
        }
        Ok((Forked::Parent(stage0), stage0_fd, _)) => Ok((ours, stage0, stage0_fd)),
    }
}

/// After stage-0's exit (everything it wrote is on `ours`): the pids and
/// pidfds, or the error text (a record line when a stage failed).
fn finish_bootstrap(ours: &OwnedFd, stage0: Pid, stage0_fd: Option<&OwnedFd>) -> Result<(Pid, Pid, StagePidfds), String> {
    let status = match stage0_fd {
        Some(fd) => waitid_pidfd(fd.as_fd(), 0).ok().flatten(),
        None => crate::sys::process::wait_exit(stage0).ok(),
    };
    let started = crate::caller::read_pids(ours).and_then(|p| Ok((p, crate::caller::read_pidfds(ours)?)));
    match (started, status) {
        (Ok(((s1, s2), fds)), Some(Exit::Code(0))) => {
            // stage-1 has exited (or is about to): reap it now.
            let _ = waitid_pidfd(fds.stage1.as_fd(), 0);
            Ok((s1, s2, fds))
        }
        (Ok((_, fds)), st) => {
            let _ = pidfd_send_signal(fds.stage2.as_fd(), libc::SIGKILL);
            let _ = waitid_pidfd(fds.stage1.as_fd(), 0);
            let _ = waitid_pidfd(fds.stage2.as_fd(), 0);
            Err(leftover_record(ours).unwrap_or_else(|| format!("stage-0 ended with {st:?}")))
        }
        (Err(crate::caller::SpawnError::Stage(f)), _) => Err(f.to_json_line()),
        (Err(e), _) => Err(e.to_string()),
    }
}

/// Answer a finished bootstrap: `S` with the pidfds (then wait for the
/// program), or `E`.
fn answer_started(st: Starting) -> Option<Live> {
    match finish_bootstrap(&st.ours, st.stage0, st.stage0_fd.as_ref()) {
        Ok((s1, s2, pidfds)) => {
            let mut b = vec![b'S'];
            b.extend_from_slice(&s1.as_raw().to_ne_bytes());
            b.extend_from_slice(&s2.as_raw().to_ne_bytes());
            let fds = [pidfds.stage1.as_raw_fd(), pidfds.stage2.as_raw_fd()];
            if send_bytes_fds(st.conn.as_raw_fd(), &b, &fds).is_err() {
                // The client is gone: its program is not wanted.
                let _ = pidfd_send_signal(pidfds.stage2.as_fd(), libc::SIGKILL);
            }
            Some(Live { conn: st.conn, stage1: pidfds.stage1, stage2: pidfds.stage2 })
        }
        Err(text) => {
            answer_error(&st.conn, b'E', &text);
            None
        }
    }
}

fn leftover_record(sock: &OwnedFd) -> Option<String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.len() < 65536 {
        match crate::sys::process::read_raw(sock.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    all.split(|b| *b == b'\n')
        .find_map(crate::diag::StageFailure::parse)
        .map(|f| f.to_json_line())
}

/// In stage-2: stdio in place, then exec. Never returns.
fn exec_program(req: Decoded) -> ! {
    for (i, fd) in req.stdio.iter().enumerate() {
        let target = i as RawFd;
        let r = match fd {
            Some(fd) => crate::sys::process::dup2_raw(fd.as_raw_fd(), target),
            None => nix::fcntl::open(c"/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty())
                .and_then(|n| crate::sys::process::dup2_raw(n.as_raw_fd(), target)),
        };
        if r.is_err() {
            exit_now(126);
        }
    }
    if let Some(addr) = req.callback {
        exit_now(crate::sys::process::call_host_fn(addr));
    }
    let env = req.envp.unwrap_or_else(crate::sys::process::environ_copy);
    let argv = if req.argv.is_empty() {
        vec![req.path.clone().unwrap_or_else(|| CString::from(c"program"))]
    } else {
        req.argv
    };
    match (&req.program_fd, &req.path) {
        (Some(fd), _) => {
            let _ = crate::sys::process::exec_fd(fd.as_fd(), &argv, &env);
        }
        (None, Some(p)) => {
            let _ = nix::unistd::execve(p, &argv, &env);
        }
        _ => {}
    }
    exit_now(127)
}
