//! nsboot-oci: everything driven by an OCI `config.json`, over the
//! bootstrap core ([`nsboot`]): the steps between "the namespaces are
//! ready" and "the user's program runs" — the root filesystem
//! ([`rootfs`]), the `process` object ([`process`]), `linux.seccomp`
//! ([`seccomp`]), cgroups v1/v2 with `linux.cgroupsPath` /
//! `linux.resources` ([`cgroups`]), lifecycle hooks ([`hooks`]), the
//! console ([`console`]) and the `features` document ([`features`]).
//!
//! Everything is checked up front by a plan (`RootfsPlan`,
//! `ProcessPlan::from_spec`, `SeccompPlan::from_spec`,
//! `CgroupPlan::from_linux`, `Hooks::from_spec`) that names the config key
//! of any problem; the applying side runs in the container's last stage
//! (single-threaded, no thread started, no lock another thread could hold)
//! or, for the hooks that run in the runtime's namespaces, in the caller
//! (any number of threads: programs are started with posix_spawn).
//!
//! Rust programs call it directly; the C surfaces reach it through the
//! rootfs plugin (`libnsboot_rootfs.so`, crates/nsboot-oci-plugin), which
//! libnsboot loads only when a config arrives. `unsafe` lives only in the
//! syscall seams `sys`, `sys_seccomp` and `cgroups::sys` (the rootfs code
//! goes through [`nsboot::sys`]).
#![deny(unsafe_code)]

pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod sys;
mod sys_seccomp;

pub use error::{ConfigError, ErrorKind, ErrorRecord, ExecError, HookError, OciError, StepError};
pub use oci_spec;
pub use process::{ExecSteps, ProcessPlan};
