//! nsboot: a runc-compatible namespace bootstrap and rootfs preparation,
//! as a memory-safe library with a C ABI.
//!
//! Layers, data flowing one way: [`wire`] (message codec) → [`stages::Plan`]
//! (typed, validated) → [`stages`] (the process machine) → surfaces
//! ([`entry`] for Rust, `ffi` for C and the ELF constructor, `cbind/go` for
//! Go). `unsafe` lives in `sys` (syscalls), `ffi` (the C boundary) and
//! `rootfs_plugin` (the boundary with the on-demand rootfs plugin).
#![deny(unsafe_code)]
// The rootfs plugin (`rootfs-plugin/`) compiles this crate for its
// `rootfs_plugin::export` table only; the rest is unused there.
#![cfg_attr(feature = "plugin", allow(dead_code, unused_imports))]

pub mod caller;
#[cfg(not(feature = "plugin"))]
mod ffi;
mod preload;
pub mod entry;
pub mod log;
pub mod ns;
#[cfg(feature = "rootfs")]
pub mod rootfs;
mod rootfs_plugin;
pub mod sealed;
pub mod stages;
pub mod sys;
pub mod text;
pub mod wire;

pub use entry::{nsexec, Outcome};
pub use sealed::SealedExe;
