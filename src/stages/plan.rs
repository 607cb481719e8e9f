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
