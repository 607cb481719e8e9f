//! nsboot-oci: the OCI container setup that follows nsboot's bootstrap.
//!
//! This part: `linux.seccomp` ([`seccomp`]) and cgroups v1/v2 with
//! `linux.cgroupsPath` / `linux.resources` ([`cgroups`]). `unsafe` lives only
//! in the syscall seams `sys_seccomp` and `cgroups::sys`.
#![deny(unsafe_code)]

pub mod cgroups;
pub mod seccomp;
mod sys_seccomp;

pub use oci_spec;
