//! `linux.seccomp`: compile the filter in the parent, load it in the
//! container process as the last step before exec.
//!
//! [`SeccompPlan::from_spec`] (or [`SeccompPlan::from_json`], which also
//! names unknown actions/operators/flags by their JSON key) validates the
//! whole object and compiles it with libseccomp into classic BPF, exported
//! into a memfd and read back as `sock_filter` records. [`SeccompPlan::load`]
//! then only makes the `seccomp(2)` call: no allocation, no lock, no
//! libseccomp — so it can run after fork in a child of a multi-threaded
//! process. The caller sets `no_new_privs` first (the kernel refuses an
//! unprivileged filter without it).
//!
//! Why libseccomp (the `libseccomp` crate over Debian's libseccomp 2.5) and
//! not a pure-Rust compiler such as `seccompiler`: the spec needs syscall
//! name resolution for every architecture in `architectures` (x86, x32 next
//! to x86_64 in Docker's profile), `SCMP_ACT_NOTIFY`, `SCMP_ACT_TRACE` with
//! a value, and libseccomp's multiplexed-syscall handling (socketcall/ipc on
//! x86); seccompiler covers x86_64/aarch64 only and has no notify action.
//! libseccomp 2.5 lacks `seccomp_export_bpf_mem` (2.6), so the program is
//! exported to a memfd. Cost on this VM (2 shared cores, release build,
//! `nsboot-oci-helper time-seccomp`), Docker's default profile for x86_64
//! with its x86 and x32 sub-architectures (1001 BPF instructions): build
//! (libseccomp rule db + export) 10-20 ms, load (the seccomp(2) call: kernel
//! copy, check, JIT) 0.7 ms; the same profile for x86_64 alone (337
//! instructions): build 1.5 ms, load 0.29 ms. The build is the expensive
//! part and it happens in the parent, before fork;
//! [`SeccompPlan::from_spec_cached`] keeps the exported program in a cache
//! keyed by the exact profile (as crun does), which `container::create`
//! uses (see `cache.rs` and BENCHMARKS.md §7). `tests/seccomp.rs`
//! (`docker_profile_build_and_load_time`) prints the debug-build figures.
//!
//! Behaviour follows runc (`libcontainer/seccomp/seccomp_linux.go`, read
//! for behaviour only): unknown syscall names are skipped (listed in
//! [`SeccompPlan::skipped_syscalls`]); a rule whose action equals the default
//! action is dropped (libseccomp refuses it); args sharing one index become
//! separate rules (OR), otherwise one rule with all conditions (AND);
//! `errnoRet` defaults to EPERM for ERRNO and TRACE and is refused for other
//! actions; `SCMP_ACT_NOTIFY` is refused as the default action and for
//! `write` (the runtime writes after loading).

mod cache;
pub mod notify;

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use crate::sys_seccomp;

/// Errors of this module; each names the config key (or syscall) at fault.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{key}: unknown seccomp action `{name}`")]
    UnknownAction { key: String, name: String },
    #[error("{key}: unknown seccomp operator `{name}`")]
    UnknownOperator { key: String, name: String },
    #[error("{key}: unknown seccomp flag `{name}`")]
    UnknownFlag { key: String, name: String },
    #[error("{key}: unknown seccomp architecture `{name}`")]
    UnknownArch { key: String, name: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: &'static str },
    #[error("linux.seccomp: not a valid seccomp object: {0}")]
    Json(#[source] serde_json::Error),
    #[error("{key}: libseccomp {op} `{what}`: {source}")]
    Libseccomp {
        key: String,
        op: &'static str,
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: exporting the BPF program: {op}: {source}")]
    Export {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {errno}")]
    Load { flags: libc::c_ulong, errno: Errno },
}

pub type Result<T> = std::result::Result<T, SeccompError>;

/// A validated, compiled `linux.seccomp`: the BPF program and the
/// `seccomp(2)` flags, ready to load after fork.
#[derive(Debug, Clone)]
pub struct SeccompPlan {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
    skipped: Vec<String>,
}

const MAX_ARG_INDEX: usize = 5;

impl SeccompPlan {
    /// Parse `linux.seccomp` from JSON, naming unknown actions, operators,
    /// flags and architectures by their key (serde alone would report a
    /// line/column), then [`from_spec`](Self::from_spec).
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(SeccompError::Json)?;
        check_names(&value)?;
        let spec: LinuxSeccomp = serde_json::from_value(value).map_err(SeccompError::Json)?;
        Self::from_spec(&spec)
    }

    /// Validate and compile. Runs libseccomp (allocates): call it in the
    /// parent, before fork.
    pub fn from_spec(spec: &LinuxSeccomp) -> Result<Self> {
        let key = "linux.seccomp.defaultAction";
        if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
            return Err(invalid(key, "SCMP_ACT_NOTIFY cannot be the default action"));
        }
        let default = action(spec.default_action(), spec.default_errno_ret(), key)?;
        let mut ctx = ScmpFilterContext::new(default)
            .map_err(|e| lib_err(key, "init", "default action", e))?;
        for (i, arch) in spec.architectures().iter().flatten().enumerate() {
            let key = format!("linux.seccomp.architectures[{i}]");
            let name = enum_name(arch);
            let scmp: ScmpArch = name.parse().map_err(|_| SeccompError::UnknownArch {
                key: key.clone(),
                name: name.clone(),
            })?;
            if *arch != Arch::ScmpArchNative {
                ctx.add_arch(scmp)
                    .map_err(|e| lib_err(&key, "add_arch", &name, e))?;
            }
        }
        let mut uses_notify = false;
        let mut skipped = Vec::new();
        for (i, call) in spec.syscalls().iter().flatten().enumerate() {
            let key = format!("linux.seccomp.syscalls[{i}]");
            let act = action(call.action(), call.errno_ret(), &format!("{key}.action"))?;
            if call.action() == LinuxSeccompAction::ScmpActNotify {
                uses_notify = true;
                if call.names().iter().any(|n| n == "write") {
                    return Err(invalid(
                        &format!("{key}.names"),
                        "SCMP_ACT_NOTIFY cannot be used for `write`",
                    ));
                }
            }
            let conditions = call
                .args()
                .iter()
                .flatten()
                .enumerate()
                .map(|(j, a)| condition(a, &format!("{key}.args[{j}]")))
                .collect::<Result<Vec<_>>>()?;
            if act == default {
                // libseccomp refuses a rule with the default action, and the
                // default action handles the call anyway (runc does the same).
                continue;
            }
            let mut seen = [0u8; MAX_ARG_INDEX + 1];
            let mut shared_index = false;
            for a in call.args().iter().flatten() {
                seen[a.index()] += 1;
                shared_index |= seen[a.index()] > 1;
            }
            for name in call.names() {
                let Ok(nr) = ScmpSyscall::from_name(name) else {
                    skipped.push(name.clone());
                    continue;
                };
                let added = if conditions.is_empty() {
                    ctx.add_rule(act, nr)
                } else if shared_index {
                    conditions
                        .iter()
                        .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(drop))
                        .map(|()| &mut ctx)
                } else {
                    ctx.add_rule_conditional(act, nr, &conditions)
                };
                added.map_err(|e| lib_err(&key, "add_rule", name, e))?;
            }
        }
        if uses_notify && spec.listener_path().is_none() {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                "required when a rule uses SCMP_ACT_NOTIFY",
            ));
        }
        let mut flags: libc::c_ulong = 0;
        for (i, flag) in spec.flags().iter().flatten().enumerate() {
            flags |= match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    if !uses_notify {
                        return Err(invalid(
                            &format!("linux.seccomp.flags[{i}]"),
                            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule",
                        ));
                    }
                    libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                }
            };
        }
        if uses_notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
                // TSYNC and NEW_LISTENER both use the return value; the
                // kernel needs TSYNC_ESRCH to accept the pair.
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
            }
        }
        let program = export(&ctx)?;
        Ok(Self {
            program,
            flags,
            listener_path: spec.listener_path().clone(),
            listener_metadata: spec.listener_metadata().clone(),
            skipped,
        })
    }

    /// Load the filter into the calling thread (all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Async-signal-safe: one system call on
    /// memory built by [`from_spec`](Self::from_spec); fine after fork.
    ///
    /// Returns the notify listener fd (`O_CLOEXEC`) when a rule uses
    /// `SCMP_ACT_NOTIFY`; hand it to the host side, which gives it to the
    /// agent with [`notify::send_listener`].
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        sys_seccomp::set_mode_filter(&self.program, self.flags).map_err(|errno| {
            SeccompError::Load {
                flags: self.flags,
                errno,
            }
        })
    }

    /// Number of BPF instructions.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// The `seccomp(2)` flags `load` passes.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Whether `load` returns a listener fd.
    pub fn needs_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// `linux.seccomp.listenerPath`.
    pub fn listener_path(&self) -> Option<&std::path::Path> {
        self.listener_path.as_deref()
    }

    /// `linux.seccomp.listenerMetadata`.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// Syscall names this libseccomp does not know, skipped as runc does.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// The compiled program as bytes (`struct sock_filter`s in native
    /// order), for a caller that caches compiled filters (they depend on
    /// the profile, the libseccomp version and the architecture only).
    pub fn program_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.program.len() * 8);
        for f in &self.program {
            out.extend_from_slice(&f.code.to_ne_bytes());
            out.push(f.jt);
            out.push(f.jf);
            out.extend_from_slice(&f.k.to_ne_bytes());
        }
        out
    }

    /// A plan from bytes [`program_bytes`](Self::program_bytes) gave, with
    /// `flags` ([`flags`](Self::flags)). Not for a notify profile (no
    /// listener path is kept).
    pub fn from_program_bytes(bytes: &[u8], flags: libc::c_ulong) -> Result<Self> {
        if bytes.is_empty() || bytes.len() % 8 != 0 || flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
            return Err(invalid("linux.seccomp", "not a cached program of a profile without notify"));
        }
        let program = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Self { program, flags, listener_path: None, listener_metadata: None, skipped: Vec::new() })
    }
}

fn invalid(key: &str, reason: &'static str) -> SeccompError {
    SeccompError::Invalid {
        key: key.to_owned(),
        reason,
    }
}

fn lib_err(
    key: &str,
    op: &'static str,
    what: &str,
    source: libseccomp::error::SeccompError,
) -> SeccompError {
    SeccompError::Libseccomp {
        key: key.to_owned(),
        op,
        what: what.to_owned(),
        source,
    }
}

/// The spec's name of an oci-spec enum value (its serde form).
fn enum_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn action(act: LinuxSeccompAction, errno_ret: Option<u32>, key: &str) -> Result<ScmpAction> {
    let ret = |default: u32| -> Result<u32> {
        let v = errno_ret.unwrap_or(default);
        if v > u32::from(u16::MAX) {
            return Err(invalid(key, "errnoRet does not fit in 16 bits"));
        }
        Ok(v)
    };
    let eperm = Errno::EPERM as u32;
    let scmp = match act {
        LinuxSeccompAction::ScmpActErrno => return Ok(ScmpAction::Errno(ret(eperm)? as i32)),
        LinuxSeccompAction::ScmpActTrace => return Ok(ScmpAction::Trace(ret(eperm)? as u16)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    };
    if errno_ret.is_some() {
        return Err(invalid(
            key,
            "errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ));
    }
    Ok(scmp)
}

fn condition(arg: &LinuxSeccompArg, key: &str) -> Result<ScmpArgCompare> {
    if arg.index() > MAX_ARG_INDEX {
        return Err(invalid(
            &format!("{key}.index"),
            "a syscall has 6 arguments (index 0-5)",
        ));
    }
    let index = arg.index() as u32;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // runtime-spec: value is the mask, valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

/// Export the compiled program into a memfd and read it back as
/// `sock_filter` records (libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let io = |op: &'static str| move |source: std::io::Error| SeccompError::Export { op, source };
    let fd: OwnedFd = nix::sys::memfd::memfd_create(
        c"nsboot-seccomp-bpf",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|e| io("memfd_create")(e.into()))?;
    ctx.export_bpf(&fd)
        .map_err(|e| lib_err("linux.seccomp", "export_bpf", "memfd", e))?;
    let mut file = std::fs::File::from(fd);
    file.seek(SeekFrom::Start(0)).map_err(io("lseek"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read"))?;
    const REC: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % REC != 0 {
        return Err(io("read")(std::io::Error::other(format!(
            "{} bytes is not a BPF program",
            bytes.len()
        ))));
    }
    Ok(bytes
        .chunks_exact(REC)
        .map(|r| libc::sock_filter {
            code: u16::from_ne_bytes([r[0], r[1]]),
            jt: r[2],
            jf: r[3],
            k: u32::from_ne_bytes([r[4], r[5], r[6], r[7]]),
        })
        .collect())
}

/// Walk the raw JSON and name the first unknown action/operator/flag/arch
/// by its key.
fn check_names(v: &serde_json::Value) -> Result<()> {
    fn known<T: serde::de::DeserializeOwned>(s: &serde_json::Value) -> bool {
        serde_json::from_value::<T>(s.clone()).is_ok()
    }
    let text = |s: &serde_json::Value| s.as_str().map_or_else(|| s.to_string(), str::to_owned);
    if let Some(a) = v.get("defaultAction") {
        if !known::<LinuxSeccompAction>(a) {
            return Err(SeccompError::UnknownAction {
                key: "linux.seccomp.defaultAction".into(),
                name: text(a),
            });
        }
    }
    for (i, f) in v
        .get("flags")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !known::<LinuxSeccompFilterFlag>(f) {
            return Err(SeccompError::UnknownFlag {
                key: format!("linux.seccomp.flags[{i}]"),
                name: text(f),
            });
        }
    }
    for (i, a) in v
        .get("architectures")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !known::<Arch>(a) {
            return Err(SeccompError::UnknownArch {
                key: format!("linux.seccomp.architectures[{i}]"),
                name: text(a),
            });
        }
    }
    for (i, call) in v
        .get("syscalls")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(a) = call.get("action") {
            if !known::<LinuxSeccompAction>(a) {
                return Err(SeccompError::UnknownAction {
                    key: format!("linux.seccomp.syscalls[{i}].action"),
                    name: text(a),
                });
            }
        }
        for (j, arg) in call
            .get("args")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(op) = arg.get("op") {
                if !known::<LinuxSeccompOperator>(op) {
                    return Err(SeccompError::UnknownOperator {
                        key: format!("linux.seccomp.syscalls[{i}].args[{j}].op"),
                        name: text(op),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<SeccompPlan> {
        SeccompPlan::from_json(json.as_bytes())
    }

    #[test]
    fn unknown_action_is_named_with_its_key() {
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},{"names":["kill"],"action":"SCMP_ACT_EXPLODE"}]}"#)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.seccomp.syscalls[1].action: unknown seccomp action `SCMP_ACT_EXPLODE`"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(
            matches!(e, SeccompError::UnknownAction { ref key, ref name } if key == "linux.seccomp.defaultAction" && name == "SCMP_ACT_NOPE"),
            "{e}"
        );
    }

    #[test]
    fn unknown_operator_flag_arch_are_named() {
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator `SCMP_CMP_ABOUT`"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_X"]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.flags[1]: unknown seccomp flag"),
            "{e}"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.architectures[0]: unknown"),
            "{e}"
        );
    }

    #[test]
    fn unknown_syscall_names_are_skipped_and_listed() {
        let p = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid","no_such_syscall_xyz"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        assert_eq!(p.skipped_syscalls(), ["no_such_syscall_xyz"]);
        assert!(p.instructions() > 4);
        assert!(!p.needs_listener());
    }

    #[test]
    fn notify_rules_need_a_listener_path_and_set_new_listener() {
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.seccomp.listenerPath:"),
            "{e}"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.seccomp.defaultAction:"),
            "{e}"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.syscalls[0].names:"),
            "{e}"
        );
        let p = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","flags":["SECCOMP_FILTER_FLAG_TSYNC"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#).unwrap();
        assert!(p.needs_listener());
        assert_eq!(
            p.flags(),
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
                | libc::SECCOMP_FILTER_FLAG_TSYNC
                | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        );
    }

    #[test]
    fn bad_errno_ret_and_arg_index_are_refused() {
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_KILL","errnoRet":3}]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.syscalls[0].action: errnoRet"),
            "{e}"
        );
        let e = plan(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.seccomp.syscalls[0].args[0].index:"),
            "{e}"
        );
    }
}
