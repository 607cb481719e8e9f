//! nsboot: a runc-compatible namespace bootstrap, as a memory-safe library.
//!
//! This crate is the bootstrap core, with no OCI code. Layers, data flowing
//! one way: [`wire`] (message codec) → [`stages::Plan`] (typed, validated)
//! → [`stages`] (the process machine) → [`entry`] (the Rust entry point)
//! and [`caller`] (the parent's side). `unsafe` lives in [`sys`]
//! (syscalls) and [`rootfs_plugin`] (the host side of the boundary with
//! the on-demand rootfs plugin).
//!
//! The other layers are crates of their own (crates/), each depending on
//! this one: `nsboot-oci` (everything driven by an OCI `config.json`),
//! `nsboot-oci-plugin` (it as `libnsboot_rootfs.so`), `nsboot-capi` (the C
//! ABI, the ELF constructor and the LD_PRELOAD mode: `libnsboot.so`,
//! `libnsboot.a`).
#![deny(unsafe_code)]

pub mod caller;
pub mod diag;
pub mod entry;
pub mod features;
pub mod log;
pub mod ns;
pub mod rootfs_plugin;
pub mod sealed;
pub mod server;
pub mod stages;
pub mod sys;
pub mod text;
pub mod wire;

pub use entry::{nsexec, Outcome};
pub use sealed::SealedExe;
