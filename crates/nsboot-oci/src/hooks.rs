//! OCI lifecycle hooks (runtime-spec `config.md` "POSIX-platform Hooks"
//! and `runtime.md` "Lifecycle").
//!
//! Each hook is started with `posix_spawn` (safe in a multi-threaded
//! caller, allocation-free after the clone), gets the container's state
//! JSON on stdin (a socket, so that a hook that never reads cannot make
//! us block or take SIGPIPE), its stdout and stderr collected (the first
//! 4 KiB go into the error), `env` exactly as configured (empty when
//! absent: runc inherits its own environment there), `args` as argv
//! (`[path]` when absent), and is killed with SIGKILL and reaped when its
//! `timeout` passes.
//!
//! # Which failures are fatal (runtime-spec)
//! `prestart`, `createRuntime`, `createContainer`, `startContainer`: the
//! first failing hook stops the run and is an error: the runtime must
//! stop the container (nothing of it may be left). `poststart`,
//! `poststop`: a failure is a warning; the remaining hooks still run.
//!
//! # Where each kind runs (and where nsboot runs it)
//! | kind | spec: namespace / path resolved in | nsboot |
//! | --- | --- | --- |
//! | `prestart` (deprecated), `createRuntime` | runtime / runtime | the runtime process, after the container's namespaces exist, before its rootfs is prepared ([`Hooks::run`]) |
//! | `createContainer` | container / runtime | the container process, in the container's namespaces, before the rootfs is prepared (runc: after the mounts, before pivot_root; the rootfs code has no hook point there yet), so host paths resolve |
//! | `startContainer` | container / container | the container process, after start and right before execve ([`crate::process::ExecSteps::after_start`]), as runc |
//! | `poststart` | runtime / runtime | the runtime process, after the user's program was executed |
//! | `poststop` | runtime / runtime | the runtime process, after the container process exited |
//!
//! Paths of hooks that resolve in the runtime namespace are checked when
//! the plan is made (absolute, an executable regular file), so that a
//! missing hook fails before anything is created; `startContainer` paths
//! are only checked to be absolute.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{send, shutdown, socketpair, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::Serialize;

use crate::error::{ConfigError, HookError, Result};
use crate::sys;

/// The six hook kinds, in lifecycle order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The key in `hooks`.
    pub fn key(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// A failure stops the lifecycle (the container must be destroyed).
    pub fn fatal(self) -> bool {
        !matches!(self, HookKind::Poststart | HookKind::Poststop)
    }

    /// The hook's path resolves in the runtime's mount namespace.
    pub fn path_in_runtime(self) -> bool {
        self != HookKind::StartContainer
    }
}

/// One checked hook, its C strings built ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub timeout: Option<Duration>,
}

/// `status` of the state (runtime-spec "State").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

/// The container state a hook reads on its stdin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    /// A state for `spec` (its ociVersion and annotations).
    pub fn new(spec: &Spec, id: &str, bundle: &str, status: Status, pid: Option<i32>) -> Self {
        State {
            oci_version: spec.version().clone(),
            id: id.to_owned(),
            status,
            pid,
            bundle: bundle.to_owned(),
            annotations: spec.annotations().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// All hooks of a config, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    lists: [Vec<Hook>; 6],
}

fn bad(kind: HookKind, index: usize, path: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Hook { kind: kind.key(), index, path: path.to_owned(), problem: problem.into() }
}

fn to_c(kind: HookKind, index: usize, path: &str, what: &str, v: &str) -> Result<CString> {
    CString::new(v).map_err(|_| bad(kind, index, path, format!("{what} contains a NUL byte")).into())
}

impl Hooks {
    /// Check `spec.hooks`.
    #[allow(deprecated)] // prestart is deprecated in the spec, still honoured.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let mut out = Hooks::default();
        let Some(h) = spec.hooks() else { return Ok(out) };
        let lists =
            [h.prestart(), h.create_runtime(), h.create_container(), h.start_container(), h.poststart(), h.poststop()];
        for (kind, list) in HookKind::ALL.into_iter().zip(lists) {
            for (i, hook) in list.iter().flatten().enumerate() {
                let p = hook.path();
                let ps = p.to_string_lossy();
                if !p.is_absolute() {
                    return Err(bad(kind, i, &ps, "must be an absolute path").into());
                }
                let path = to_c(kind, i, &ps, "path", &ps)?;
                if kind.path_in_runtime() {
                    use std::os::unix::fs::PermissionsExt;
                    let md = std::fs::metadata(p).map_err(|e| bad(kind, i, &ps, e.to_string()))?;
                    if !md.is_file() {
                        return Err(bad(kind, i, &ps, "not a regular file").into());
                    }
                    if md.permissions().mode() & 0o111 == 0 {
                        return Err(bad(kind, i, &ps, "not executable").into());
                    }
                }
                let args = match hook.args() {
                    Some(a) if !a.is_empty() => {
                        a.iter().map(|s| to_c(kind, i, &ps, "args", s)).collect::<Result<Vec<_>>>()?
                    }
                    _ => vec![path.clone()],
                };
                let env =
                    hook.env().iter().flatten().map(|s| to_c(kind, i, &ps, "env", s)).collect::<Result<Vec<_>>>()?;
                let timeout = match hook.timeout() {
                    None => None,
                    Some(t) if t > 0 => Some(Duration::from_secs(t as u64)),
                    Some(t) => {
                        return Err(ConfigError::Invalid {
                            key: format!("hooks.{}[{i}].timeout", kind.key()),
                            value: t.to_string(),
                            problem: "must be greater than zero",
                        }
                        .into())
                    }
                };
                out.lists[kind as usize].push(Hook { path, args, env, timeout });
            }
        }
        Ok(out)
    }

    /// The hooks of one kind.
    pub fn get(&self, kind: HookKind) -> &[Hook] {
        &self.lists[kind as usize]
    }

    /// Run the hooks of `kind` in order with `state` on stdin. For a fatal
    /// kind the first failure is returned as the error (the rest do not
    /// run); for poststart/poststop every hook runs and the failures come
    /// back as warnings.
    pub fn run(&self, kind: HookKind, state: &State) -> Result<Vec<HookError>, HookError> {
        let json = serde_json::to_vec(state).unwrap_or_default();
        let mut warnings = Vec::new();
        for (i, h) in self.get(kind).iter().enumerate() {
            if let Err(e) = run_one(kind, i, h, &json) {
                if kind.fatal() {
                    return Err(e);
                }
                warnings.push(e);
            }
        }
        Ok(warnings)
    }
}

const OUTPUT_KEPT: usize = 4096;

/// Spawn one hook, feed it `input`, collect its output, wait (with the
/// timeout) and judge its exit status.
fn run_one(kind: HookKind, index: usize, hook: &Hook, input: &[u8]) -> Result<(), HookError> {
    let path = || hook.path.to_string_lossy().into_owned();
    let io_err =
        |step: &'static str| move |errno: Errno| HookError::Io { kind: kind.key(), index, path: path(), step, errno };

    let (feed, hook_stdin) =
        socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)
            .map_err(io_err("socketpair"))?;
    // The hook's end must block (it is its stdin).
    fcntl(&hook_stdin, FcntlArg::F_SETFL(OFlag::empty())).map_err(io_err("fcntl"))?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(io_err("pipe2"))?;
    fcntl(&out_w, FcntlArg::F_SETFL(OFlag::empty())).map_err(io_err("fcntl"))?;

    let mut argv: Vec<*const libc::c_char> = hook.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = hook.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let pid = sys::spawn(&hook.path, &argv, &envp, &sys::SpawnIo { stdin: hook_stdin.as_fd(), out: out_w.as_fd() })
        .map_err(|errno| HookError::Spawn { kind: kind.key(), index, path: path(), errno })?;
    drop(hook_stdin);
    drop(out_w);

    let mut child = Child { pid, reaped: false };
    let pidfd = sys::pidfd_open(pid).map_err(io_err("pidfd_open"))?;
    let deadline = hook.timeout.map(|t| Instant::now() + t);
    let mut feed: Option<OwnedFd> = Some(feed);
    let mut sent = 0usize;
    let mut out_open = true;
    let mut output: Vec<u8> = Vec::with_capacity(256);

    loop {
        let wait_ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    child.kill_and_reap();
                    return Err(HookError::Timeout {
                        kind: kind.key(),
                        index,
                        path: path(),
                        seconds: hook.timeout.map_or(0, |t| t.as_secs() as i64),
                    });
                }
                PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let out_i = out_open.then(|| {
            fds.push(PollFd::new(out_r.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let feed_i = feed.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        match poll(&mut fds, wait_ms) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                child.kill_and_reap();
                return Err(io_err("poll")(e));
            }
        }
        let ready = |i: Option<usize>| i.and_then(|i| fds[i].revents()).is_some_and(|r| !r.is_empty());
        let exited = ready(Some(0));
        let (out_ready, feed_ready) = (ready(out_i), ready(feed_i));
        drop(fds);
        if feed_ready {
            if let Some(f) = &feed {
                match send(f.as_raw_fd(), &input[sent..], MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT) {
                    Ok(n) => sent += n,
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    // The hook closed its stdin or exited: it does not want
                    // (the rest of) the state.
                    Err(_) => sent = input.len(),
                }
            }
            if sent >= input.len() {
                if let Some(f) = feed.take() {
                    let _ = shutdown(f.as_raw_fd(), Shutdown::Write);
                }
            }
        }
        if out_ready {
            out_open = read_some(&out_r, &mut output);
        }
        if exited {
            break;
        }
    }
    drop(feed);
    // What the hook wrote just before it exited (a child it left behind
    // may keep the pipe open: read only what is there).
    while out_open && read_some(&out_r, &mut output) {}
    let status = child.reap().map_err(io_err("waitpid"))?;
    let out = String::from_utf8_lossy(&output).trim_end().to_owned();
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => {
            Err(HookError::Exit { kind: kind.key(), index, path: path(), code, output: out })
        }
        WaitStatus::Signaled(_, sig, _) => {
            Err(HookError::Signaled { kind: kind.key(), index, path: path(), signal: sig as i32, output: out })
        }
        _ => Err(io_err("waitpid")(Errno::ECHILD)),
    }
}

/// Read what is available into `out` (keeping the first OUTPUT_KEPT
/// bytes); false at end-of-file or when nothing more is there now.
fn read_some(fd: &OwnedFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 1024];
    match nix::unistd::read(fd.as_fd(), &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let room = OUTPUT_KEPT.saturating_sub(out.len());
            out.extend_from_slice(&buf[..n.min(room)]);
            true
        }
        Err(Errno::EINTR) => true,
        Err(_) => false,
    }
}

/// A spawned hook that is reaped however `run_one` ends.
struct Child {
    pid: Pid,
    reaped: bool,
}

impl Child {
    fn reap(&mut self) -> nix::Result<WaitStatus> {
        loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.reaped = true;
                    return Ok(s);
                }
                Ok(_) => continue,
                Err(e) => {
                    self.reaped = true;
                    return Err(e);
                }
            }
        }
    }

    fn kill_and_reap(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = self.reap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_and_reap();
        }
    }
}
