//! The persisted state of a container (`<state_dir>/state.json`) and the
//! operations another process runs from it: status, start, kill, delete.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::error::{sys, ContainerError, Result};
use crate::cgroups::Cgroup;
use crate::hooks::{HookKind, Hooks, State, Status};

/// The start gate (runc's name).
pub(crate) const FIFO: &str = "exec.fifo";
/// The config as it was at create (hooks of start/delete read it).
pub(crate) const CONFIG: &str = "config.json";
const STATE: &str = "state.json";

/// What a runtime persists about a container; `state.json` in its state
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub id: String,
    /// The init's pid in the runtime's PID namespace.
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks after
    /// boot): tells the init from a later process that got its pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    /// The cgroup directories (`None`: the config asked for none).
    pub cgroup: Option<Cgroup>,
    /// RFC 3339, UTC.
    pub created: String,
}

fn io_state(path: &Path, op: &str) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_owned();
    let op = op.to_owned();
    move |e| ContainerError::State { path, problem: format!("{op}: {e}") }
}

fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: field 3 onwards.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() == Some(&"Z") || f.first() == Some(&"X") {
        return None; // exited, not reaped yet
    }
    f.get(19)?.parse().ok()
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

impl ContainerState {
    pub(crate) fn new(id: &str, pid: Pid, bundle: &Path, state_dir: &Path, cgroup: Option<Cgroup>) -> Result<Self> {
        let pid_start = start_time(pid.as_raw()).ok_or_else(|| ContainerError::Status {
            id: id.to_owned(),
            problem: format!("the init (pid {pid}) exited during create"),
        })?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(ContainerState {
            id: id.to_owned(),
            pid: pid.as_raw(),
            pid_start,
            bundle: bundle.to_owned(),
            state_dir: state_dir.to_owned(),
            cgroup,
            created: rfc3339(now),
        })
    }

    /// Write `state.json` (atomically: a temporary file renamed).
    pub fn save(&self) -> Result<()> {
        let path = self.state_dir.join(STATE);
        let tmp = self.state_dir.join(".state.json.tmp");
        let json = serde_json::to_vec(self).map_err(|e| ContainerError::State { path: path.clone(), problem: e.to_string() })?;
        std::fs::write(&tmp, json).map_err(io_state(&tmp, "write"))?;
        std::fs::rename(&tmp, &path).map_err(io_state(&path, "rename"))
    }

    /// Read `<state_dir>/state.json`.
    pub fn load(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join(STATE);
        let b = std::fs::read(&path).map_err(io_state(&path, "read"))?;
        serde_json::from_slice(&b).map_err(|e| ContainerError::State { path, problem: e.to_string() })
    }

    pub(crate) fn bundle_str(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    /// Whether the init still runs (same pid, same start time).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.pid_start)
    }

    /// `created` (init alive, at the gate), `running` (alive, started) or
    /// `stopped`.
    pub fn status(&self) -> Status {
        match (self.alive(), self.state_dir.join(FIFO).exists()) {
            (true, true) => Status::Created,
            (true, false) => Status::Running,
            (false, _) => Status::Stopped,
        }
    }

    /// The config saved at create.
    pub fn spec(&self) -> Result<Spec> {
        let path = self.state_dir.join(CONFIG);
        let b = std::fs::read(&path).map_err(io_state(&path, "read"))?;
        serde_json::from_slice(&b).map_err(|e| ContainerError::State { path, problem: e.to_string() })
    }

    /// The hook state of this container with `status`.
    pub fn hook_state(&self, spec: &Spec, status: Status) -> State {
        State::new(spec, &self.id, &self.bundle_str(), status, Some(self.pid))
    }
}

/// Write the start byte into exec.fifo and wait until the init took it.
pub(crate) fn release_gate(st: &ContainerState) -> Result<()> {
    let path = st.state_dir.join(FIFO);
    let shown = path.display().to_string();
    let not_created = |problem: &str| ContainerError::Status { id: st.id.clone(), problem: problem.to_owned() };
    if !st.alive() {
        return Err(not_created("is not running (start of a stopped container)"));
    }
    let fd = match nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(not_created("was already started")),
        Err(Errno::ENXIO) => return Err(not_created("is not waiting at its start gate")),
        Err(e) => return Err(sys("open", shown)(e)),
    };
    // Only one starter wins: the FIFO is unlinked first.
    std::fs::remove_file(&path).map_err(|_| not_created("was already started"))?;
    loop {
        match nix::unistd::write(fd.as_fd(), b"0") {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("write", shown)(e)),
        }
    }
    // The init took the byte: it passed the gate.
    let t0 = Instant::now();
    loop {
        match crate::sys::pipe_pending(fd.as_fd()) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(sys("ioctl FIONREAD", shown)(e)),
        }
        // Dead with the byte still in the FIFO: it never passed the gate
        // (dead after taking it: it ran, and may have exited already).
        if !st.alive() && crate::sys::pipe_pending(fd.as_fd()).is_ok_and(|n| n > 0) {
            return Err(not_created("exited at its start gate"));
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(sys("start gate", shown)(Errno::ETIMEDOUT));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    // Then wait until its FIFO fd (O_CLOEXEC) is gone: it ran
    // startContainer and exec'd (or exited). The write end of a FIFO polls
    // POLLERR once it has no reader left.
    loop {
        let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLOUT)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
            Ok(_) if fds[0].revents().is_some_and(|r| r.contains(nix::poll::PollFlags::POLLERR)) => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys("poll", shown)(e)),
        }
        if !st.alive() {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(sys("start (waiting for the exec)", shown)(Errno::ETIMEDOUT));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Remove the cgroup, run `poststop`, remove the state directory.
pub(crate) fn finish_delete(st: &ContainerState, spec: &Spec, hooks: &Hooks) -> Result<()> {
    if let Some(c) = &st.cgroup {
        c.remove()?;
    }
    super::mark("delete: cgroup remove");
    for w in hooks.run(HookKind::Poststop, &st.hook_state(spec, Status::Stopped)).unwrap_or_else(|e| vec![e]) {
        eprintln!("nsboot-oci: warning: {w}");
    }
    let removed = std::fs::remove_dir_all(&st.state_dir);
    super::mark("delete: poststop + state dir");
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_state(&st.state_dir, "remove")(e)),
    }
}

/// The status of the container whose state is in `state_dir`.
pub fn status_by_state(state_dir: &Path) -> Result<(ContainerState, Status)> {
    let st = ContainerState::load(state_dir)?;
    let s = st.status();
    Ok((st, s))
}

/// `start` from another process than the creator: release the gate, wait
/// until the init ran `startContainer` and exec'd (its exec.fifo fd, which
/// is `O_CLOEXEC`, closed), then run `poststart`. An init that exits there
/// instead (a failing `startContainer` hook, a failed exec) cannot be told
/// from a program that exited at once by a process that is not its
/// parent: both return Ok, the failure is the container's exit status
/// (as with runc's `start`); [`super::Created::start`] tells them apart.
pub fn start_by_state(state_dir: &Path) -> Result<()> {
    let st = ContainerState::load(state_dir)?;
    let spec = st.spec()?;
    let hooks = Hooks::from_spec(&spec)?;
    release_gate(&st)?;
    for w in hooks.run(HookKind::Poststart, &st.hook_state(&spec, Status::Running)).unwrap_or_else(|e| vec![e]) {
        eprintln!("nsboot-oci: warning: {w}");
    }
    Ok(())
}

/// Send `sig` to the container's init.
pub fn kill_by_state(state_dir: &Path, sig: Signal) -> Result<()> {
    let st = ContainerState::load(state_dir)?;
    if !st.alive() {
        return Err(ContainerError::Status { id: st.id, problem: "is not running".into() });
    }
    nix::sys::signal::kill(Pid::from_raw(st.pid), sig).map_err(sys("kill", format!("pid {}", st.pid)))
}

/// Delete the container: refused while it runs unless `force` (then
/// SIGKILL); a created container is killed (as runc). Removes the
/// cgroup and the state directory, runs `poststop`.
pub fn delete_by_state(state_dir: &Path, force: bool) -> Result<()> {
    let st = ContainerState::load(state_dir)?;
    let spec = st.spec()?;
    let hooks = Hooks::from_spec(&spec)?;
    match st.status() {
        Status::Running if !force => {
            return Err(ContainerError::Status { id: st.id, problem: "is running (stop it, or delete with force)".into() })
        }
        Status::Stopped => {}
        _ => {
            let pid = Pid::from_raw(st.pid);
            let pidfd = crate::sys::pidfd_open(pid).map_err(sys("pidfd_open", format!("pid {pid}")))?;
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16));
        }
    }
    // Reap it when it is this process's child (create and delete in one
    // process); ECHILD otherwise.
    let _ = nix::sys::wait::waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    finish_delete(&st, &spec, &hooks)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_522_461), "2026-12-06T02:01:01Z");
    }
}
