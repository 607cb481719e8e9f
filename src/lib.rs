//! nsboot: a runc-compatible namespace bootstrap and rootfs preparation,
//! as a memory-safe library with a C ABI.
//!
//! Layers, data flowing one way: [`wire`] (message codec) → [`stages::Plan`]
//! (typed, validated) → [`stages`] (the process machine) → surfaces
//! ([`entry`] for Rust, `ffi` for C and the ELF constructor, `cbind/go` for
//! Go). `unsafe` lives in `sys` (syscalls) and `ffi` (the C boundary).
#![deny(unsafe_code)]

pub mod caller;
mod ffi;
mod preload;
pub mod entry;
pub mod log;
pub mod ns;
#[cfg(feature = "rootfs")]
pub mod rootfs;
pub mod sealed;
pub mod stages;
pub mod sys;
pub mod wire;

pub use entry::{nsexec, Outcome};
pub use sealed::SealedExe;
