//! nsboot: a runc-compatible namespace bootstrap and rootfs preparation.
#![deny(unsafe_code)]

pub mod ns;
pub mod rootfs;
pub(crate) mod sys;
pub mod wire;
