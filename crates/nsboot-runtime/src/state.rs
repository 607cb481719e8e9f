//! Container state under `--root/<id>/`: `state.json` (ours, with what
//! later commands need: pid and its start time, cgroup directories, the
//! config), `exec.fifo` while the container is *created*, and an flock
//! on the directory around every command.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use nsboot_oci::cgroups::Cgroup;
use serde::{Deserialize, Serialize};

use crate::Error;

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// The container's init on the host; 0 while it is being created.
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat: a pid reused by another process is
    /// not ours.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub oci_version: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub cgroup: Option<Cgroup>,
    /// The config.json as created (exec and the hooks of delete use it).
    pub config: serde_json::Value,
}

/// runc's `state` output.
#[derive(Debug, Serialize)]
pub struct Shown<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// runc's rule: `^[\w+-\.]+$`, and not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "invalid container id {id:?}: only [A-Za-z0-9_+.-] allowed, not empty, \".\" or \"..\""
        )))
    }
}

/// The container's directory, locked (flock LOCK_EX) while this value lives.
pub struct Dir {
    pub path: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl Dir {
    /// Make a new container directory (mode 0700); an existing one is a
    /// duplicate id.
    pub fn create(root: &Path, id: &str) -> Result<Dir, Error> {
        validate_id(id)?;
        std::fs::create_dir_all(root).map_err(|e| Error::io("mkdir", root, e))?;
        let path = root.join(id);
        match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => {
                return Err(Error::msg(format!("container with id {id} exists: {}", path.display())))
            }
            Err(e) => return Err(Error::io("mkdir", &path, e.into())),
        }
        Self::lock(path)
    }

    /// Open and lock an existing container.
    pub fn open(root: &Path, id: &str) -> Result<Dir, Error> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::msg(format!("container {id} does not exist (no {})", path.display())));
        }
        Self::lock(path)
    }

    fn lock(path: PathBuf) -> Result<Dir, Error> {
        let f = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::io("flock", &path, e.into()))?;
        Ok(Dir { path, _lock: lock })
    }

    pub fn load(&self) -> Result<Saved, Error> {
        let p = self.path.join(STATE_FILE);
        let b = std::fs::read(&p).map_err(|e| Error::io("read", &p, e))?;
        serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: {e}", p.display())))
    }

    /// Atomically (temp file + rename).
    pub fn save(&self, s: &Saved) -> Result<(), Error> {
        let p = self.path.join(STATE_FILE);
        let tmp = self.path.join(".state.json.tmp");
        let b = serde_json::to_vec(s).map_err(|e| Error::msg(format!("state: {e}")))?;
        std::fs::write(&tmp, b).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io("rename", &p, e))
    }

    /// The locked fd: a forked child closes it (flock locks belong to the
    /// open file, which a child would otherwise keep until its exec).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._lock.as_raw_fd()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    /// Remove the directory (the lock goes with the fd).
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Start time (clock ticks since boot) of a live, non-zombie process.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); starttime is field 22.
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    f.get(19)?.parse().ok()
}

pub fn status(dir: &Dir, s: &Saved) -> Status {
    if s.pid == 0 {
        return Status::Creating;
    }
    match start_time(s.pid) {
        Some(t) if t == s.pid_start => {}
        _ => return Status::Stopped,
    }
    if dir.fifo().exists() {
        return Status::Created;
    }
    if frozen(s) {
        return Status::Paused;
    }
    Status::Running
}

pub fn frozen(s: &Saved) -> bool {
    let Some(cg) = &s.cgroup else { return false };
    if let Some(d) = cg.dir_of("freezer") {
        if let Ok(v) = std::fs::read_to_string(d.join("freezer.state")) {
            return v.trim() != "THAWED";
        }
    }
    if let Some(d) = cg.unified_dir() {
        if let Ok(v) = std::fs::read_to_string(d.join("cgroup.freeze")) {
            return v.trim() == "1";
        }
    }
    false
}

pub fn show<'a>(s: &'a Saved, st: Status) -> Shown<'a> {
    Shown {
        oci_version: &s.oci_version,
        id: &s.id,
        pid: if st == Status::Stopped { 0 } else { s.pid },
        status: st.as_str(),
        bundle: &s.bundle,
        rootfs: &s.rootfs,
        created: &s.created,
        owner: &s.owner,
        annotations: &s.annotations,
    }
}

/// Open the FIFO for the container side: O_RDWR so that opening does not
/// block and a read blocks until `start` writes.
pub fn make_fifo(path: &Path) -> Result<OwnedFd, Error> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622)).map_err(|e| Error::io("mkfifo", path, e.into()))?;
    nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", path, e.into()))
}

/// `start`: one byte into the FIFO, then remove it (the container is running).
pub fn release_fifo(path: &Path) -> Result<(), Error> {
    let fd = nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", path, e.into()))?;
    nix::unistd::write(fd.as_fd(), b"0").map_err(|e| Error::io("write", path, e.into()))?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// RFC 3339 UTC with nanoseconds, as Go's time.RFC3339Nano.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}
