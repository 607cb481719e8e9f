//! The OCI `process` object (and the `linux` keys that act on the process:
//! `sysctl`, `personality`), as the container's last stage applies them
//! before it execs the user's program.
//!
//! [`ProcessPlan::from_spec`] (or [`ProcessPlan::from_json`], which also
//! reports unknown enumerated names with their key) checks everything in
//! the runtime, before any process or namespace exists. [`ProcessPlan::apply`]
//! runs inside the container, after the rootfs is prepared and pivoted, in
//! runc's order (`standard_init_linux.go` + `finalizeNamespace`):
//!
//! 0. (separately, [`ProcessPlan::apply_sysctls`], before the rootfs is
//!    made read-only where the config says so);
//! 1. hostname, domainname;
//! 2. rlimits, `oomScoreAdj`, ioPriority, scheduler, personality,
//!    `execCPUAffinity.final`;
//! 3. [`ExecSteps::privileged`] (seccomp *without* noNewPrivileges needs
//!    CAP_SYS_ADMIN: it loads here);
//! 4. umask; the bounding set is cut; `PR_SET_KEEPCAPS`, setgroups
//!    (additionalGids), setresgid, setresuid, keepcaps off; capset of
//!    effective/permitted/inheritable; ambient raised;
//! 5. `no_new_privs`; chdir to `cwd`; the program is looked up in `PATH`;
//! 6. [`ExecSteps::before_start`] (seccomp *with* noNewPrivileges, as late
//!    as possible, as runc loads it);
//! 7. the start gate ([`StartGate`]: "created", wait for "start");
//! 8. [`ExecSteps::after_start`] (the `startContainer` hooks, which runc
//!    runs here);
//! 9. execve (with `HOME` from the container's `/etc/passwd`, or `/`,
//!    when `process.env` has none, as runc); a program not found is exit
//!    status 127, one that cannot be executed 126 ([`OciError::exit_code`]).
//!
//! # Where it may run
//! In a process with a single thread (the bootstrap's stage processes, or
//! a process forked from a single-threaded one): capabilities and
//! no_new_privs are per-thread, and it may allocate, which is only safe
//! when no other thread can hold the allocator's lock. `apply` checks the
//! thread count first and refuses to run with more than one. It never
//! starts a thread. Everything
//! that can be computed ahead (paths, C strings, masks) is computed by the
//! plan.

pub mod caps;
pub mod exec;
pub mod gate;
pub mod limits;
pub mod sysctl;

use std::ffi::CString;

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use caps::CapSets;
pub use exec::Program;
pub use gate::{start_gate, StartGate, StartHandle};
pub use limits::Rlimit;
pub use sysctl::Sysctl;

use crate::error::{step, ConfigError, OciError, Result};
use crate::sys::{self, SchedAttr};

/// A step the caller adds to [`ProcessPlan::apply`].
pub type Step<'a> = &'a mut dyn FnMut() -> Result<()>;

/// The caller's steps and the create/start gate (see the module doc for
/// where each one runs). All optional; `ExecSteps::default()` is a plain
/// one-shot run.
#[derive(Default)]
pub struct ExecSteps<'a> {
    /// Before the credentials change (full privileges).
    pub privileged: Option<Step<'a>>,
    /// After everything else, before the start gate: the seccomp filter.
    pub before_start: Option<Step<'a>>,
    /// The create/start gate (`None`: run at once).
    pub gate: Option<StartGate>,
    /// After start, right before execve: the `startContainer` hooks.
    pub after_start: Option<Step<'a>>,
}

/// `process.user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPlan {
    pub uid: Uid,
    pub gid: Gid,
    pub additional_gids: Vec<Gid>,
    pub umask: Option<Mode>,
}

/// The checked `process` of a config, ready to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub program: Program,
    pub env: Vec<CString>,
    pub cwd: CString,
    pub user: UserPlan,
    /// `None` when `process.capabilities` is absent: the capabilities are
    /// left as they are (runc does the same).
    pub caps: Option<CapSets>,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    pub io_priority: Option<(u32, u32)>,
    pub scheduler: Option<SchedAttr>,
    pub personality: Option<libc::c_ulong>,
    pub sysctls: Vec<Sysctl>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `process.terminal`: the console is set up (see [`crate::console`]).
    pub terminal: bool,
    /// `process.consoleSize` as (rows, columns).
    pub console_size: Option<(u16, u16)>,
    /// `process.execCPUAffinity.initial`: for the runtime to set on the
    /// container process before it joins its cgroup (not applied by
    /// `apply`).
    pub cpu_affinity_initial: Option<nix::sched::CpuSet>,
    /// `process.execCPUAffinity.final`: set by `apply` (sched_setaffinity)
    /// before the credentials change.
    pub cpu_affinity_final: Option<nix::sched::CpuSet>,
    /// What was accepted with a caveat (a capability the kernel lacks).
    pub warnings: Vec<String>,
}

fn invalid(key: impl Into<String>, value: impl Into<String>, problem: &'static str) -> OciError {
    ConfigError::Invalid { key: key.into(), value: value.into(), problem }.into()
}

fn cstring(key: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(key, s, "contains a NUL byte"))
}

impl ProcessPlan {
    /// Parse and check a config.json. Unlike [`Self::from_spec`], names
    /// the typed spec cannot hold (an unknown capability, rlimit, I/O
    /// class, scheduler policy or personality domain) are reported with
    /// their key.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| ConfigError::Parse(e.to_string()))?;
        caps::check_names(&value)?;
        limits::check_names(&value)?;
        let spec: Spec = serde_json::from_value(value).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_spec(&spec)
    }

    /// Check the `process` of `spec` (and `linux.sysctl`,
    /// `linux.personality`, `hostname`, `domainname`).
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let Some(p) = spec.process() else {
            return Err(invalid("process", "null", "a container needs a process"));
        };
        let linux = spec.linux().as_ref();
        let namespaces = linux.and_then(|l| l.namespaces().clone()).unwrap_or_default();

        let args_s = p.args().clone().unwrap_or_default();
        let Some(arg0) = args_s.first() else {
            return Err(invalid("process.args", "[]", "must not be empty"));
        };
        if arg0.is_empty() {
            return Err(invalid("process.args[0]", "", "must not be empty"));
        }
        let args = args_s
            .iter()
            .enumerate()
            .map(|(i, a)| cstring(&format!("process.args[{i}]"), a))
            .collect::<Result<Vec<_>>>()?;
        let env_s = p.env().clone().unwrap_or_default();
        let mut env = Vec::with_capacity(env_s.len());
        for (i, e) in env_s.iter().enumerate() {
            let key = format!("process.env[{i}]");
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() => env.push(cstring(&key, e)?),
                _ => return Err(invalid(key, e.clone(), "not NAME=value")),
            }
        }
        let program = Program::plan(arg0, &env_s)?;

        let cwd_s = p.cwd().to_string_lossy().into_owned();
        if !p.cwd().is_absolute() {
            return Err(invalid("process.cwd", cwd_s, "must be an absolute path"));
        }
        let cwd = cstring("process.cwd", &cwd_s)?;

        let u = p.user();
        let user = UserPlan {
            uid: Uid::from_raw(u.uid()),
            gid: Gid::from_raw(u.gid()),
            additional_gids: u.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect(),
            umask: match u.umask() {
                Some(m) if m > 0o777 => {
                    return Err(invalid("process.user.umask", format!("{m:#o}"), "must be at most 0777"))
                }
                Some(m) => Some(Mode::from_bits_truncate(m)),
                None => None,
            },
        };

        let mut warnings = Vec::new();
        let caps = match p.capabilities() {
            Some(c) => Some(CapSets::from_spec(Some(c), &mut warnings)?),
            None => None,
        };

        if let Some(adj) = p.oom_score_adj() {
            if !(-1000..=1000).contains(&adj) {
                return Err(invalid("process.oomScoreAdj", adj.to_string(), "must be -1000..1000"));
            }
        }

        let has_uts = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Uts);
        let name_key = |key: &'static str, v: &Option<String>| -> Result<Option<String>> {
            match v {
                Some(h) if !has_uts => Err(invalid(key, h.clone(), "needs a \"uts\" namespace")),
                Some(h) if h.len() > 64 || h.contains('\0') => {
                    Err(invalid(key, h.clone(), "longer than 64 bytes or contains NUL"))
                }
                other => Ok(other.clone()),
            }
        };
        let hostname = name_key("hostname", spec.hostname())?;
        let domainname = name_key("domainname", spec.domainname())?;

        let console_size = match (p.terminal().unwrap_or(false), p.console_size()) {
            (true, Some(b)) => {
                let fit = |k: &'static str, v: u64| {
                    u16::try_from(v).map_err(|_| invalid(k, v.to_string(), "must fit in 16 bits"))
                };
                Some((fit("process.consoleSize.height", b.height())?, fit("process.consoleSize.width", b.width())?))
            }
            _ => None,
        };

        // Refused rather than ignored: this build has no LSM support.
        if let Some(p) = p.apparmor_profile().as_ref().filter(|s| !s.is_empty()) {
            return Err(invalid("process.apparmorProfile", p.clone(), "AppArmor is not supported by this build"));
        }
        if let Some(l) = p.selinux_label().as_ref().filter(|s| !s.is_empty()) {
            return Err(invalid("process.selinuxLabel", l.clone(), "SELinux is not supported by this build"));
        }
        let (cpu_affinity_initial, cpu_affinity_final) = limits::exec_cpu_affinity(p)?;

        Ok(ProcessPlan {
            args,
            program,
            env,
            cwd,
            user,
            caps,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            rlimits: limits::rlimits(p)?,
            oom_score_adj: p.oom_score_adj(),
            io_priority: limits::io_priority(p)?,
            scheduler: limits::scheduler(p)?,
            personality: limits::personality(linux)?,
            sysctls: sysctl::plan(linux.and_then(|l| l.sysctl().as_ref()), &namespaces)?,
            hostname,
            domainname,
            terminal: p.terminal().unwrap_or(false),
            console_size,
            cpu_affinity_initial,
            cpu_affinity_final,
            warnings,
        })
    }

    /// Apply the plan and exec the program (see the module doc for the
    /// order). Returns only on failure; the caller then exits with
    /// [`OciError::exit_code`].
    pub fn apply(&self, steps: ExecSteps<'_>) -> OciError {
        match self.apply_inner(steps) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    /// Write `linux.sysctl`. Call it in the container process once its
    /// namespaces exist and before the rootfs code makes `/proc/sys`
    /// read-only (runc's default `readonlyPaths` lists it; runc writes the
    /// sysctls after pivot_root, before `readonlyPaths`). With
    /// `nsboot_oci::rootfs`, whose `prepare` does the read-only paths itself,
    /// that is before `prepare`: the runtime's `/proc/sys` then shows the
    /// namespaces of the caller, which are the container's (ipc and uts
    /// sysctls follow the writer's namespaces, net sysctls the opener's).
    pub fn apply_sysctls(&self) -> Result<()> {
        for s in &self.sysctls {
            sysctl::write(s)?;
        }
        Ok(())
    }

    fn apply_inner(&self, mut steps: ExecSteps<'_>) -> Result<std::convert::Infallible> {
        single_threaded()?;
        // Read while still root (the user may not be able to read it).
        let home = self.home_env();
        if let Some(h) = &self.hostname {
            nix::unistd::sethostname(h).map_err(step("sethostname", "hostname"))?;
        }
        if let Some(d) = &self.domainname {
            sys::setdomainname(d.as_bytes()).map_err(step("setdomainname", "domainname"))?;
        }
        for r in &self.rlimits {
            limits::apply_rlimit(r)?;
        }
        if let Some(adj) = self.oom_score_adj {
            write_oom_score_adj(adj)?;
        }
        if let Some((class, level)) = self.io_priority {
            limits::apply_io_priority(class, level)?;
        }
        if let Some(attr) = &self.scheduler {
            sys::sched_setattr(attr).map_err(step("sched_setattr", "process.scheduler"))?;
        }
        if let Some(p) = self.personality {
            sys::personality(p).map_err(step("personality", "linux.personality"))?;
        }
        if let Some(set) = &self.cpu_affinity_final {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
                .map_err(step("sched_setaffinity", "process.execCPUAffinity.final"))?;
        }
        if let Some(s) = steps.privileged.as_mut() {
            s()?;
        }
        if let Some(m) = self.user.umask {
            nix::sys::stat::umask(m);
        }
        self.switch_user()?;
        if self.no_new_privileges {
            sys::set_no_new_privs().map_err(step("prctl PR_SET_NO_NEW_PRIVS", "process.noNewPrivileges"))?;
        }
        nix::unistd::chdir(self.cwd.as_c_str()).map_err(step("chdir", self.cwd.to_string_lossy()))?;
        let path = self.program.resolve()?;
        if let Some(s) = steps.before_start.as_mut() {
            s()?;
        }
        if let Some(g) = steps.gate.take() {
            g.created_then_wait()?;
        }
        if let Some(s) = steps.after_start.as_mut() {
            s()?;
        }
        match home {
            None => Err(exec::execve(path, &self.args, &self.env).into()),
            Some(home) => {
                let mut env = self.env.clone();
                env.push(home);
                Err(exec::execve(path, &self.args, &env).into())
            }
        }
    }

    /// `HOME=<dir>` when `process.env` has no HOME, as runc sets it: the
    /// home field of the container's `/etc/passwd` entry for the uid, `/`
    /// when there is none.
    fn home_env(&self) -> Option<CString> {
        if self.env.iter().any(|e| e.as_bytes().starts_with(b"HOME=")) {
            return None;
        }
        let uid = self.user.uid.as_raw().to_string();
        let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
        let home = passwd
            .split(|b| *b == b'\n')
            .map(|l| l.split(|b| *b == b':').collect::<Vec<_>>())
            .find(|f| f.len() >= 7 && f[2] == uid.as_bytes())
            .map(|f| f[5].to_vec())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| b"/".to_vec());
        let mut v = b"HOME=".to_vec();
        v.extend_from_slice(&home);
        CString::new(v).ok()
    }

    /// Capabilities and credentials, as runc's finalizeNamespace: cut the
    /// bounding set while still privileged, keep the permitted set across
    /// the uid change (PR_SET_KEEPCAPS), change groups and ids, then set
    /// the capability sets.
    fn switch_user(&self) -> Result<()> {
        if let Some(c) = &self.caps {
            c.apply_bounding()?;
            sys::set_keepcaps(true).map_err(step("prctl PR_SET_KEEPCAPS", "1"))?;
        }
        if !self.user.additional_gids.is_empty() || !setgroups_denied() {
            nix::unistd::setgroups(&self.user.additional_gids)
                .map_err(step("setgroups", "process.user.additionalGids"))?;
        }
        let (u, g) = (self.user.uid, self.user.gid);
        nix::unistd::setresgid(g, g, g).map_err(step("setresgid", "process.user.gid"))?;
        nix::unistd::setresuid(u, u, u).map_err(step("setresuid", "process.user.uid"))?;
        if let Some(c) = &self.caps {
            sys::set_keepcaps(false).map_err(step("prctl PR_SET_KEEPCAPS", "0"))?;
            c.apply_sets()?;
        }
        Ok(())
    }
}

/// Refuse to run with more than one thread: capset, the bounding set,
/// keepcaps and no_new_privs are per-thread, so another thread would keep
/// the runtime's privileges (and could exec with them). procfs gives
/// `/proc/self/task` a link count of 2 + the number of threads. Without a
/// procfs at /proc the check cannot be made and is skipped.
fn single_threaded() -> Result<()> {
    match nix::sys::stat::stat("/proc/self/task") {
        Ok(st) if st.st_nlink > 3 => Err(OciError::Caller {
            step: "apply",
            message: format!("the process has {} threads; it must have one", st.st_nlink - 2),
        }),
        _ => Ok(()),
    }
}

/// `/proc/self/setgroups` says "deny" (an unprivileged user namespace):
/// setgroups would fail with EPERM, so runc skips it.
fn setgroups_denied() -> bool {
    use nix::fcntl::{open, OFlag};
    let Ok(fd) = open("/proc/self/setgroups", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) else { return false };
    let mut buf = [0u8; 16];
    matches!(nix::unistd::read(&fd, &mut buf), Ok(n) if buf[..n].starts_with(b"deny"))
}

/// Write `/proc/self/oom_score_adj`. The bootstrap writes it in stage-0
/// when its config carries the value; writing the same value again here
/// is harmless and covers callers that do not use the bootstrap.
fn write_oom_score_adj(adj: i32) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use std::io::Write;
    let mut buf = [0u8; 12];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{adj}");
    let n = cur.position() as usize;
    let fd = open("/proc/self/oom_score_adj", OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(step("open", "/proc/self/oom_score_adj"))?;
    nix::unistd::write(&fd, &buf[..n]).map_err(step("write", "/proc/self/oom_score_adj")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_refuses_a_multi_threaded_process_before_doing_anything() {
        // The test harness has several threads: apply must stop at its
        // first check. The plan is harmless to this process should the
        // check be broken (same ids, no capabilities key, no NNP) and
        // fails visibly at its chdir instead of exec'ing.
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"cwd": "/nonexistent-cwd", "user": {"uid": uid, "gid": gid}, "args": ["/nonexistent/x"]},
        }))
        .unwrap();
        let plan = ProcessPlan::from_spec(&spec).unwrap();
        let e = plan.apply(ExecSteps::default());
        assert!(e.to_string().starts_with("apply: the process has "), "{e}");
    }
}
