//! Errors that name the cause (issue 19): a failing stage turns its
//! [`StageError`] into a [`StageFailure`] (stage, step, syscall, errno,
//! path) and looks at the system for the usual reasons behind it (a
//! sysctl, AppArmor, a missing or non-setuid newuidmap, no subordinate
//! ids, seccomp, a masked /proc, sysfs without a net namespace), which
//! become a [`Cause`] with a concrete hint.
//!
//! The log line keeps runc's format. The record travels only when the
//! caller asked for it (NSBOOT_CALLER_FLAGS bit `CALLER_FLAG_ERROR_RECORD`):
//! one JSON line `{"nsboot_error":{...}}` on the init socket, written by
//! the stage that failed before it exits. The caller keeps the first one
//! (the root cause: a stage that fails because its peer died writes one
//! too, later).

use std::fmt::Write as _;

use nix::errno::Errno;

use crate::stages::StageError;

/// A diagnosed reason behind a failure, each with a hint saying what to
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `kernel.unprivileged_userns_clone = 0` (Debian, older Ubuntu).
    UsernsCloneDisabled,
    /// `user.max_user_namespaces = 0` in this user namespace or above.
    UsernsMaxZero,
    /// `user.max_user_namespaces` reached (ENOSPC with a non-zero limit).
    UsernsLimitReached,
    /// AppArmor's `kernel.apparmor_restrict_unprivileged_userns = 1`.
    AppArmorUserns,
    /// The newuidmap/newgidmap path does not exist.
    MapHelperMissing,
    /// The helper exists but is neither setuid nor has file capabilities.
    MapHelperNotSetuid,
    /// The helper ran and failed, and the user has no subordinate range in
    /// /etc/subuid (or /etc/subgid).
    NoSubordinateIds,
    /// A seccomp filter of the host (the process runs under one) refused
    /// unshare/clone/clone3.
    HostSeccomp,
    /// A new procfs was refused: /proc of this mount namespace has masked
    /// (over-mounted) entries ("mount too revealing").
    ProcMasked,
    /// A new sysfs was refused: no network namespace of our own.
    SysfsWithoutNetns,
}

impl Cause {
    /// A stable name (the C and Go APIs and the JSON carry it).
    pub fn name(self) -> &'static str {
        match self {
            Cause::UsernsCloneDisabled => "userns_clone_disabled",
            Cause::UsernsMaxZero => "userns_max_zero",
            Cause::UsernsLimitReached => "userns_limit_reached",
            Cause::AppArmorUserns => "apparmor_userns",
            Cause::MapHelperMissing => "map_helper_missing",
            Cause::MapHelperNotSetuid => "map_helper_not_setuid",
            Cause::NoSubordinateIds => "no_subordinate_ids",
            Cause::HostSeccomp => "host_seccomp",
            Cause::ProcMasked => "proc_masked",
            Cause::SysfsWithoutNetns => "sysfs_without_netns",
        }
    }

    pub fn from_name(s: &str) -> Option<Cause> {
        ALL.iter().copied().find(|c| c.name() == s)
    }
}

const ALL: [Cause; 10] = [
    Cause::UsernsCloneDisabled,
    Cause::UsernsMaxZero,
    Cause::UsernsLimitReached,
    Cause::AppArmorUserns,
    Cause::MapHelperMissing,
    Cause::MapHelperNotSetuid,
    Cause::NoSubordinateIds,
    Cause::HostSeccomp,
    Cause::ProcMasked,
    Cause::SysfsWithoutNetns,
];

/// A stage's failure, as the caller receives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageFailure {
    /// 0, 1 or 2; 255 before the stage machine started.
    pub stage: u8,
    /// What the stage was doing ("clone stage-1", "write uid_map", ...).
    pub step: String,
    /// The failing system call, when there is one.
    pub syscall: Option<String>,
    pub errno: Option<i32>,
    /// The file or namespace path involved, when there is one.
    pub path: Option<String>,
    pub cause: Option<Cause>,
    /// What to change, when the cause is known.
    pub hint: Option<String>,
    /// The fatal log line's message (runc's format carries the same text).
    pub message: String,
}

impl std::fmt::Display for StageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage-{}: {}", self.stage, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl StageFailure {
    /// Describe `e` failing in `stage`, diagnosing the cause.
    pub fn from_error(stage: u8, e: &StageError) -> StageFailure {
        let (step, syscall, path) = fields(e);
        let mut f = StageFailure {
            stage,
            step,
            syscall: syscall.map(str::to_owned),
            errno: e.errno().map(|e| e as i32),
            path,
            cause: None,
            hint: None,
            message: e.to_string(),
        };
        if let Some((cause, hint)) = diagnose(e) {
            f.cause = Some(cause);
            f.hint = Some(hint);
        }
        f
    }

    /// The record line: `{"nsboot_error":{...}}\n`.
    pub fn to_json_line(&self) -> String {
        let mut s = String::from("{\"nsboot_error\":{");
        let _ = write!(s, "\"stage\":{}", self.stage);
        let mut field = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                let _ = write!(s, ",\"{k}\":\"");
                crate::log::json_escape(&mut s, v);
                s.push('"');
            }
        };
        field("step", Some(&self.step));
        field("syscall", self.syscall.as_deref());
        field("path", self.path.as_deref());
        field("cause", self.cause.map(Cause::name));
        field("hint", self.hint.as_deref());
        field("message", Some(&self.message));
        if let Some(e) = self.errno {
            let _ = write!(s, ",\"errno\":{e}");
        }
        s.push_str("}}\n");
        s
    }

    /// Parse a record line (without the newline); `None` if `line` is not
    /// one.
    pub fn parse(line: &[u8]) -> Option<StageFailure> {
        crate::wire::json::error_record(line)
    }
}

/// Step, syscall and path of each error kind.
fn fields(e: &StageError) -> (String, Option<&'static str>, Option<String>) {
    match e {
        StageError::Sys { op, .. } => {
            let call = op.split(['(', ' ']).next().filter(|s| !s.is_empty());
            ((*op).to_owned(), call, None)
        }
        StageError::OpenNs { kind, path, .. } => (format!("open {kind} namespace"), Some("open"), Some(path.clone())),
        StageError::Setns { kind, path, .. } => (format!("join {kind} namespace"), Some("setns"), Some(path.clone())),
        StageError::Unshare { what, .. } => {
            let call = if what.contains("clone") { "clone" } else { "unshare" };
            (what.clone(), Some(call), None)
        }
        StageError::ProcWrite { path, .. } => {
            let file = path.rsplit('/').next().unwrap_or(path);
            (format!("write {file}"), Some("write"), Some(path.clone()))
        }
        StageError::MapHelper { what, helper, .. } => (format!("run {what}"), Some("execve"), Some(helper.clone())),
        StageError::OomScoreAdj { .. } => ("write oom_score_adj".into(), Some("write"), Some("/proc/self/oom_score_adj".into())),
        StageError::MountSource { path, .. } => ("open mount source".into(), Some("open"), Some(path.clone())),
        StageError::InstallFd { .. } => ("install mount source fd".into(), Some("dup3"), None),
        StageError::Seal { op, .. } => (format!("seal: {op}"), None, None),
        StageError::PidJson(_) => ("write pid JSON".into(), Some("write"), None),
        StageError::InitByte(_) => ("write setup byte".into(), Some("write"), None),
        StageError::ReadMessage(_) => ("read bootstrap message".into(), Some("read"), None),
        StageError::Rootfs(_) => ("prepare rootfs".into(), None, None),
        StageError::Sync(_) => ("sync with a peer stage".into(), None, None),
        StageError::Wire(_) | StageError::ShortMessage { .. } => ("decode bootstrap message".into(), None, None),
        _ => ("plan".into(), None, None),
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The process runs under a seccomp filter (`Seccomp: 2`).
fn under_seccomp() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim() == "2")))
        .unwrap_or(false)
}

/// Look for the cause of `e` on this system.
pub fn diagnose(e: &StageError) -> Option<(Cause, String)> {
    match e {
        StageError::Unshare { flags, source, what } => {
            let user = flags & libc::CLONE_NEWUSER as u32 != 0;
            namespace_cause(user, *source, what)
        }
        StageError::Sys { op, source } if op.starts_with("clone") || op.starts_with("unshare") => {
            namespace_cause(false, *source, op)
        }
        StageError::MapHelper { what, helper, reason, .. } => helper_cause(what, helper, reason),
        StageError::Rootfs(r) => {
            let m = r.message.to_ascii_lowercase();
            if r.errno == Some(Errno::EPERM) && m.contains("proc") {
                Some((
                    Cause::ProcMasked,
                    "the kernel refuses a new procfs where the current /proc has masked (over-mounted) entries \
                     (\"mount too revealing\"): run in a mount namespace whose /proc is not masked, or bind-mount /proc"
                        .into(),
                ))
            } else if r.errno == Some(Errno::EPERM) && m.contains("sysfs") {
                Some((
                    Cause::SysfsWithoutNetns,
                    "a new sysfs needs a network namespace of its own (add \"network\" to linux.namespaces), \
                     or bind-mount /sys instead"
                        .into(),
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn namespace_cause(user: bool, errno: Errno, what: &str) -> Option<(Cause, String)> {
    if user || what.contains("user namespace") {
        if let Some(v) = read_trim("/proc/sys/user/max_user_namespaces") {
            if v == "0" {
                return Some((
                    Cause::UsernsMaxZero,
                    "user namespaces are disabled: user.max_user_namespaces is 0 (per user namespace: \
                     sysctl -w user.max_user_namespaces=15000 where it was set to 0)"
                        .into(),
                ));
            }
            if errno == Errno::ENOSPC {
                return Some((
                    Cause::UsernsLimitReached,
                    format!("the user namespace limit is reached: user.max_user_namespaces = {v}; raise it"),
                ));
            }
        }
        if errno == Errno::EPERM {
            if read_trim("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
                return Some((
                    Cause::UsernsCloneDisabled,
                    "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1".into(),
                ));
            }
            if read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
                return Some((
                    Cause::AppArmorUserns,
                    "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): \
                     give the program an AppArmor profile with \"userns,\" or set the sysctl to 0"
                        .into(),
                ));
            }
        }
    }
    if matches!(errno, Errno::EPERM | Errno::ENOSYS | Errno::EACCES) && under_seccomp() {
        return Some((
            Cause::HostSeccomp,
            format!(
                "this process runs under a seccomp filter that refused the call ({errno}): the host's \
                 container or sandbox profile blocks unshare/clone/clone3; allow them, or run unconfined"
            ),
        ));
    }
    None
}

fn helper_cause(what: &str, helper: &str, reason: &str) -> Option<(Cause, String)> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(helper) {
        Ok(m) => m,
        Err(_) => {
            return Some((
                Cause::MapHelperMissing,
                format!("{helper} does not exist: install {what} (package uidmap or shadow-utils), or point the config at it"),
            ))
        }
    };
    let setuid = meta.permissions().mode() & 0o4000 != 0;
    let caps = nix::sys::stat::lstat(helper).is_ok() && has_file_caps(helper);
    if !setuid && !caps {
        return Some((
            Cause::MapHelperNotSetuid,
            format!("{helper} is neither setuid root nor has file capabilities: chmod u+s {helper} (owner root), or setcap cap_setuid+ep"),
        ));
    }
    if reason.contains("could not run") {
        return None;
    }
    let (file, id, name) = if what.contains("gid") {
        let g = nix::unistd::getegid();
        let name = nix::unistd::Group::from_gid(g).ok().flatten().map(|g| g.name);
        ("/etc/subgid", g.as_raw(), name)
    } else {
        let u = nix::unistd::geteuid();
        let name = nix::unistd::User::from_uid(u).ok().flatten().map(|u| u.name);
        ("/etc/subuid", u.as_raw(), name)
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let listed = text.lines().any(|l| {
        let owner = l.split(':').next().unwrap_or("");
        owner == id.to_string() || Some(owner) == name.as_deref()
    });
    if !listed {
        let who = name.unwrap_or_else(|| id.to_string());
        return Some((
            Cause::NoSubordinateIds,
            format!("{file} gives {who} no subordinate range: add a line such as {who}:100000:65536 (usermod --add-subuids/--add-subgids)"),
        ));
    }
    None
}

fn has_file_caps(path: &str) -> bool {
    crate::sys::fs::getxattr_len(path, c"security.capability").is_some_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let f = StageFailure {
            stage: 1,
            step: "user namespace (clone of stage-1)".into(),
            syscall: Some("clone".into()),
            errno: Some(28),
            path: Some("/a \"b\"\n".into()),
            cause: Some(Cause::UsernsMaxZero),
            hint: Some("h".into()),
            message: "m".into(),
        };
        let line = f.to_json_line();
        assert!(line.ends_with('\n'));
        assert_eq!(StageFailure::parse(line.trim_end().as_bytes()), Some(f));
        assert_eq!(StageFailure::parse(b"{\"stage1_pid\":1,\"stage2_pid\":2}"), None);
        for c in ALL {
            assert_eq!(Cause::from_name(c.name()), Some(c));
        }
    }
}
