//! The plan: a decoded message checked against the environment and the
//! dialect before any process is forked, so a bad request fails in stage-0
//! with nothing created.

use super::env::BootEnv;
use super::error::StageError;
use crate::ns::NsKind;
use crate::wire::{BootstrapConfig, Dialect};

/// What the stages will do.
#[derive(Debug)]
pub struct Plan {
    pub cfg: BootstrapConfig,
    pub dialect: Dialect,
    /// Mount sources to open (non-empty entries), each with the fd number
    /// stage-1 installs it at.
    pub mount_sources: Vec<(Vec<u8>, i32)>,
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
            return Err(StageError::Plan(
                "time namespace offsets given, but CLONE_FLAGS does not create a time namespace"
                    .to_owned(),
            ));
        }
        for kind in cfg.clone_flags.iter() {
            if !kind.is_supported() {
                return Err(StageError::Plan(format!(
                    "CLONE_FLAGS asks for a {kind} namespace, which this kernel does not support"
                )));
            }
        }
        Ok(Plan { cfg, dialect: env.dialect, mount_sources, new_session: true })
    }

    /// Whether any namespace is joined by path (runc's `config.namespaces`).
    pub fn joins(&self) -> bool {
        !self.cfg.ns_paths.is_empty()
    }
}
