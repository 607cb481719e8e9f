//! The syscall seam: the only place (with `ffi/`) where `unsafe` is allowed.
//!
//! Each function here wraps one kernel or libc call whose safe wrapper is
//! missing from nix, and documents why its `unsafe` block is sound.

pub mod dl;
pub mod fs;
pub mod link;
pub mod probe;
pub mod process;
pub mod signal;
