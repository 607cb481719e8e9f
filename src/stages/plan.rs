//! The plan: a decoded message checked against the environment and the
//! dialect before any process is forked, so a bad request fails in stage-0
//! with nothing created.

use super::env::BootEnv;
use super::error::StageError;
use crate::ns::NsKind;
use crate::rootfs_plugin::{ExecStep, RootfsStep};
use crate::wire::{BootstrapConfig, Dialect};

/// The attribute that carries time offsets in `dialect`.
pub fn time_offsets_attr(dialect: Dialect) -> u16 {
    match dialect {
        Dialect::Runc11 => crate::wire::NSBOOT_TIMENS_OFFSETS_ATTR,
        Dialect::Runc12 => crate::wire::TIMENSOFFSET_ATTR,
    }
}

/// What the stages will do.
#[derive(Debug)]
pub struct Plan {
    pub cfg: BootstrapConfig,
    pub dialect: Dialect,
    /// Mount sources to open (non-empty entries), each with the fd number
    /// stage-1 installs it at.
    pub mount_sources: Vec<(Vec<u8>, i32)>,
    /// Rootfs preparation stage-2 performs (nsboot extension), parsed and
    /// validated here by the rootfs plugin (loaded now, inherited by the
    /// stages), before anything is forked or mounted.
    pub rootfs: Option<RootfsStep>,
    /// With `ROOTFS_FLAG_EXEC`: the process setup stage-2 applies after the
    /// rootfs before it execs `process.args` (checked here, by the
    /// plugin's container table).
    pub exec: Option<ExecStep>,
    /// Whether stage-2 calls `setsid` (runc does; the LD_PRELOAD mode keeps
    /// the program in the terminal's session and process group).
    pub new_session: bool,
}

impl Plan {
    pub fn new(cfg: BootstrapConfig, env: &BootEnv) -> Result<Plan, StageError> {
        let mut mount_sources = Vec::new();
        if let Some(sources) = &cfg.mount_sources {
            let fds = env.mount_fds.as_ref().ok_or_else(|| {
                StageError::Plan(
                    "MOUNT_SOURCES given but _LIBCONTAINER_MOUNT_FDS is not set".to_owned(),
                )
            })?;
            let wanted: Vec<&Vec<u8>> = sources.iter().filter(|s| !s.is_empty()).collect();
            let targets: Vec<i32> = fds.iter().copied().filter(|fd| *fd != -1).collect();
            if wanted.len() != targets.len() {
                return Err(StageError::Plan(format!(
                    "MOUNT_SOURCES has {} sources but _LIBCONTAINER_MOUNT_FDS has {} fds",
                    wanted.len(),
                    targets.len()
                )));
            }
            for (fd, _) in targets.iter().zip(wanted.iter()) {
                if *fd == env.init_fd || Some(*fd) == env.log_fd || *fd <= 2 {
                    return Err(StageError::Plan(format!(
                        "_LIBCONTAINER_MOUNT_FDS: fd {fd} would replace stdio, the init pipe or the log pipe"
                    )));
                }
            }
            mount_sources = wanted.into_iter().cloned().zip(targets).collect();
        }
        if !cfg.time_offsets.is_empty() && !cfg.clone_flags.contains(NsKind::Time) {
            // runc 1.2.0-1.2.5 send the offsets with `runc exec` too (fixed
            // by runc commit ad09197e4, issue #4635); their own nsexec then
            // fails writing a frozen namespace's offsets. Refuse up front.
            return Err(StageError::TimeOffsetsWithoutTimens {
                field: crate::wire::attr_name(time_offsets_attr(env.dialect), env.dialect),
                joins_time: cfg.ns_paths.iter().any(|p| p.kind == NsKind::Time),
            });
        }
        if cfg.rootfs_config.is_some() && !cfg.clone_flags.contains(NsKind::Mnt) {
            return Err(StageError::Plan(
                "NSBOOT_ROOTFS_CONFIG needs a new mount namespace (CLONE_NEWNS in CLONE_FLAGS)".to_owned(),
            ));
        }
        let rootfs = match &cfg.rootfs_config {
            None => None,
            Some(json) => Some(RootfsStep::new(json, cfg.rootfs_bundle.as_deref(), cfg.rootfs_flags)?),
        };
        let exec = match &cfg.rootfs_config {
            Some(json) if cfg.rootfs_flags & crate::wire::ROOTFS_FLAG_EXEC != 0 => Some(ExecStep::new(json)?),
            _ => None,
        };
        Ok(Plan {
            cfg,
            dialect: env.dialect,
            mount_sources,
            rootfs,
            exec,
            new_session: true,
        })
    }

    /// Whether stage-1 is cloned straight into its new user namespace (a
    /// user namespace is created and nothing is joined): stage-0 then writes
    /// the id maps as soon as the clone returns, without stage-1 asking —
    /// one round trip less than runc 1.1's unshare + USERMAP_PLS. With
    /// joins, stage-1 must join first and unshare after, as runc does.
    pub fn user_at_clone(&self) -> bool {
        self.cfg.clone_flags.contains(NsKind::User) && !self.joins()
    }

    /// Whether any namespace is joined by path (runc's `config.namespaces`).
    pub fn joins(&self) -> bool {
        !self.cfg.ns_paths.is_empty()
    }
}

/// One step of the bootstrap, as [`Plan::steps`] lists them and the stages
/// log them at debug level (`step: ...`) as they take them: the dry run
/// (`nsboot_plan_explain`) and the real run print the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// stage-0: create stage-1 (clone3 with CLONE_PIDFD where the kernel
    /// has it), into its new user namespace when nothing is joined.
    CloneStage1 { new_user: bool },
    /// stage-0: write stage-1's uid/gid maps (newuidmap/newgidmap on EPERM).
    WriteIdMaps { setgroups_deny: bool, uid_helper: bool, gid_helper: bool },
    /// stage-0: write stage-1's time namespace offsets.
    WriteTimeOffsets,
    /// stage-0: open the mount sources in stage-1's mount namespace.
    SendMountSources(usize),
    /// stage-0: the pid JSON line (and pidfds when asked) to the caller.
    ReportPids { pidfds: bool },
    /// stage-0: let stage-2 go on (GRANDCHILD).
    ReleaseStage2,
    /// stage-1: open and join the namespace paths.
    JoinNamespaces { order: &'static str, paths: Vec<String> },
    /// stage-1: unshare the user namespace and ask stage-0 for maps.
    UnshareUser,
    /// stage-1: setresuid(0, 0, 0) in the new user namespace.
    BecomeRoot,
    /// stage-1: unshare the other namespaces.
    Unshare(String),
    /// stage-1: install the mount source fds.
    ReceiveMountSources(usize),
    /// stage-1: create stage-2 (CLONE_PARENT).
    CloneStage2,
    /// stage-2: setsid.
    Setsid,
    /// stage-2: setuid(0), setgid(0), and setgroups(0) when asked.
    SetIds { setgroups: bool },
    /// stage-2: unshare the cgroup namespace (runc 1.1 does it last).
    UnshareCgroup,
    /// stage-2: prepare the rootfs from the OCI config.
    PrepareRootfs,
    /// stage-2: return to the program inside the namespaces.
    ReturnToProgram,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::CloneStage1 { new_user } => write!(
                f,
                "clone stage-1 (clone3 CLONE_PIDFD|CLONE_PARENT{}; fallback clone + pidfd_open)",
                if *new_user { "|CLONE_NEWUSER" } else { "" }
            ),
            Step::WriteIdMaps { setgroups_deny, uid_helper, gid_helper } => write!(
                f,
                "write stage-1's {}uid_map, gid_map{}",
                if *setgroups_deny { "setgroups (deny), " } else { "" },
                match (uid_helper, gid_helper) {
                    (false, false) => String::new(),
                    (u, g) => format!(
                        " (on EPERM: {})",
                        [(*u, "newuidmap"), (*g, "newgidmap")].iter().filter(|x| x.0).map(|x| x.1).collect::<Vec<_>>().join(", ")
                    ),
                }
            ),
            Step::WriteTimeOffsets => write!(f, "write stage-1's timens_offsets"),
            Step::SendMountSources(n) => write!(f, "open {n} mount source(s) in stage-1's mount namespace and send them"),
            Step::ReportPids { pidfds } => {
                write!(f, "write the pid JSON to the init pipe{}", if *pidfds { " and send the pidfds" } else { "" })
            }
            Step::ReleaseStage2 => write!(f, "release stage-2 (GRANDCHILD) and wait for it to finish"),
            Step::JoinNamespaces { order, paths } => write!(f, "join namespaces ({order}): {}", paths.join(", ")),
            Step::UnshareUser => write!(f, "unshare user namespace and request id maps from stage-0"),
            Step::BecomeRoot => write!(f, "setresuid(0, 0, 0) in the new user namespace"),
            Step::Unshare(what) => write!(f, "unshare {what}"),
            Step::ReceiveMountSources(n) => write!(f, "install {n} mount source fd(s)"),
            Step::CloneStage2 => write!(f, "clone stage-2 (CLONE_PARENT)"),
            Step::Setsid => write!(f, "setsid"),
            Step::SetIds { setgroups } => {
                write!(f, "setuid(0), setgid(0){}", if *setgroups { ", setgroups(0, NULL)" } else { "" })
            }
            Step::UnshareCgroup => write!(f, "unshare cgroup namespace"),
            Step::PrepareRootfs => write!(f, "prepare the rootfs (OCI config, rootfs plugin)"),
            Step::ReturnToProgram => write!(f, "return to the program"),
        }
    }
}

impl Plan {
    /// The ordered steps of each stage: `(stage, step)`, stage by stage.
    /// The stages log each one (`step: {step}`) as they take it, so this
    /// list is what a debug log of the real run shows, stage by stage.
    pub fn steps(&self) -> Vec<(u8, Step)> {
        let cfg = &self.cfg;
        let user = cfg.clone_flags.contains(NsKind::User);
        let mut v = vec![(0, Step::CloneStage1 { new_user: self.user_at_clone() })];
        if user {
            v.push((0, self.id_maps_step()));
        }
        if !cfg.time_offsets.is_empty() {
            v.push((0, Step::WriteTimeOffsets));
        }
        if !self.mount_sources.is_empty() {
            v.push((0, Step::SendMountSources(self.mount_sources.len())));
        }
        v.push((0, Step::ReportPids { pidfds: cfg.caller_flags & crate::wire::CALLER_FLAG_PIDFDS != 0 }));
        v.push((0, Step::ReleaseStage2));
        if self.joins() {
            v.push((1, self.join_step()));
        }
        if user && !self.user_at_clone() {
            v.push((1, Step::UnshareUser));
        }
        if user {
            v.push((1, Step::BecomeRoot));
        }
        if let Some(rest) = self.unshared_by_stage1() {
            v.push((1, Step::Unshare(rest)));
        }
        if !self.mount_sources.is_empty() {
            v.push((1, Step::ReceiveMountSources(self.mount_sources.len())));
        }
        v.push((1, Step::CloneStage2));
        if self.new_session {
            v.push((2, Step::Setsid));
        }
        v.push((2, Step::SetIds { setgroups: !cfg.rootless_euid && cfg.setgroup }));
        if self.dialect == Dialect::Runc11 && cfg.clone_flags.contains(NsKind::Cgroup) {
            v.push((2, Step::UnshareCgroup));
        }
        if self.rootfs.is_some() {
            v.push((2, Step::PrepareRootfs));
        }
        v.push((2, Step::ReturnToProgram));
        v
    }

    pub(crate) fn id_maps_step(&self) -> Step {
        let cfg = &self.cfg;
        Step::WriteIdMaps {
            setgroups_deny: cfg.rootless_euid && !cfg.setgroup,
            uid_helper: cfg.uidmap_helper.is_some() && cfg.uid_map.is_some(),
            gid_helper: cfg.gidmap_helper.is_some() && cfg.gid_map.is_some(),
        }
    }

    pub(crate) fn join_step(&self) -> Step {
        let order = match self.dialect {
            Dialect::Runc11 => "as given",
            Dialect::Runc12 => "passes: non-user, user, the rest",
        };
        let paths =
            self.cfg.ns_paths.iter().map(|p| format!("{}:{}", p.kind, crate::text::Raw(p.path.to_bytes()))).collect();
        Step::JoinNamespaces { order, paths }
    }

    /// The namespaces stage-1 unshares after the user namespace, named.
    pub(crate) fn unshared_by_stage1(&self) -> Option<String> {
        let mut rest = self.cfg.clone_flags;
        rest.remove(NsKind::User);
        if self.dialect == Dialect::Runc11 {
            rest.remove(NsKind::Cgroup);
        }
        (!rest.is_empty()).then(|| {
            let names: Vec<&str> = rest.iter().map(|k| k.name()).collect();
            format!("{} (flags {:#x})", names.join(","), rest.clone_flags())
        })
    }

    /// Log that the stage takes `step` (debug level).
    pub(crate) fn mark(&self, step: Step) {
        crate::nslog!(Debug, "step: {step}");
    }

    /// The steps as text, one `stage-N: step` line each.
    pub fn explain(&self) -> String {
        self.steps().into_iter().map(|(s, st)| format!("stage-{s}: {st}\n")).collect()
    }
}

/// Decode `msg` in `dialect` and explain, without doing anything, the
/// steps each stage would take (the dry run).
pub fn explain_message(msg: &[u8], dialect: Dialect) -> Result<String, StageError> {
    let cfg = crate::wire::decode(msg, dialect)?;
    let env = BootEnv { init_fd: -1, log_fd: None, log_level: crate::log::Level::Error, dialect, mount_fds: None, stop_at: None };
    Ok(Plan::new(cfg, &env)?.explain())
}
