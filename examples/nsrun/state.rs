//! Container records: one directory per container under the state root,
//! named after the container (its creation is the name lock), holding
//! `state.json` (replaced atomically: write a temporary file, rename it),
//! the write layer and the log.
//!
//! The state root lives on /run (tmpfs) or `$XDG_RUNTIME_DIR`, which do not
//! survive a reboot, so rename-atomicity is what matters: a killed nsrun
//! leaves either the old record or the new one, never half of one. Records
//! are not fsync'ed for that reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Context, Fail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Directory made, container not started yet (or start failed midway).
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// Host pid of the container's PID 1 (0 before it exists).
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), to detect pid reuse.
    pub pid_start: u64,
    /// The nsrun process that waits for PID 1 and records its exit.
    pub supervisor: i32,
    pub exit_code: Option<i32>,
    /// Unix seconds.
    pub created: u64,
    pub finished: Option<u64>,
    pub command: Vec<String>,
    /// The container's environment and working directory (for exec).
    pub env: Vec<String>,
    pub cwd: String,
    /// Whether the container has its own user namespace (rootless).
    pub userns: bool,
    pub detached: bool,
    pub auto_remove: bool,
    pub image: String,
    /// The unpacked `--image` its write layer sits on (`nsrun images`).
    #[serde(default)]
    pub image_id: Option<String>,
    /// The user, capabilities, no_new_privs and seccomp of the container's
    /// process, which `exec` applies too.
    #[serde(default)]
    pub security: Option<serde_json::Value>,
    /// The container's cgroup (root only), removed when it ends.
    #[serde(default)]
    pub cgroup: Option<nsboot_oci::cgroups::Cgroup>,
    /// The `nsrun` arguments it was created with (for `start`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its place on a bridge network.
    #[serde(default)]
    pub network: Option<crate::net::Attachment>,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `$NSRUN_ROOT`, else `/run/nsrun` for root and `$XDG_RUNTIME_DIR/nsrun`
/// for others.
pub fn root() -> Result<PathBuf> {
    if let Some(r) = std::env::var_os("NSRUN_ROOT").filter(|r| !r.is_empty()) {
        return Ok(PathBuf::from(r));
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/run/nsrun"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        Some(x) => Ok(Path::new(&x).join("nsrun")),
        None => Err(Fail::new(125, "XDG_RUNTIME_DIR is not set: nsrun needs it (or NSRUN_ROOT) for its state when not run as root")),
    }
}

pub fn containers(root: &Path) -> PathBuf {
    root.join("containers")
}

/// Reserve `name`: create its directory. EEXIST means the name is taken.
pub fn create(root: &Path, name: &str) -> Result<PathBuf> {
    let base = containers(root);
    mkdir_p(&base)?;
    let dir = base.join(name);
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Fail::new(
            125,
            format!("the container name {name:?} is already in use: remove it (nsrun rm {name}) or use another name"),
        )),
        Err(e) => Err(Fail::new(125, format!("create {}: {e}", dir.display()))),
    }
}

pub fn mkdir_p(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).ctx(|| format!("create {}", p.display()))?;
    Ok(())
}

/// Replace `dir/state.json` atomically.
pub fn save(dir: &Path, rec: &Record) -> std::io::Result<()> {
    let tmp = dir.join(format!(".state.json.{}", std::process::id()));
    let body = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(&body)?;
    drop(f);
    std::fs::rename(&tmp, dir.join("state.json")).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

pub fn read(dir: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()
}

/// The record of container `name` ("no such container", 125 like every
/// error of nsrun itself: 126/127 and the command's own status are the
/// command's).
pub fn load(root: &Path, name: &str) -> Result<(PathBuf, Record)> {
    let dir = containers(root).join(name);
    if name.contains('/') || name.starts_with('.') {
        return Err(Fail::new(125, format!("no such container: {name}")));
    }
    match read(&dir) {
        Some(r) => Ok((dir, r)),
        None => Err(Fail::new(125, format!("no such container: {name}"))),
    }
}

/// Every container with a readable record, oldest first.
pub fn list(root: &Path) -> Vec<(PathBuf, Record)> {
    let mut v: Vec<(PathBuf, Record)> = std::fs::read_dir(containers(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read(&e.path()).map(|r| (e.path(), r)))
        .collect();
    v.sort_by(|a, b| (a.1.created, &a.1.name).cmp(&(b.1.created, &b.1.name)));
    v
}

/// (state letter, start time) from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ")" field 0 is the state (field 3 of the line); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the container's PID 1 is alive: same pid, same start time, not
/// a zombie.
pub fn is_running(rec: &Record) -> bool {
    rec.status == Status::Running
        && rec.pid > 0
        && matches!(proc_stat(rec.pid), Some((st, start)) if start == rec.pid_start && st != 'Z' && st != 'X')
}

/// Whether process `pid` is alive and still the one started at `start`.
pub fn same_process(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((_, s)) if s == start)
}

/// Remove a container directory. The overlay's `work/work` is mode 000
/// when made in a user namespace, so unreadable directories are opened up
/// first.
pub fn remove_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for _ in 0..3 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                fn open_up(p: &Path) {
                    if let Ok(md) = std::fs::symlink_metadata(p) {
                        if md.is_dir() {
                            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                                open_up(&e.path());
                            }
                        }
                    }
                }
                open_up(dir);
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    std::fs::remove_dir_all(dir)
}

/// 32 random hex digits (getrandom).
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_err() {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        b[..16].copy_from_slice(&(t.as_nanos() ^ u128::from(std::process::id())).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
