//! nsboot-oci: everything driven by an OCI `config.json`, over the
//! bootstrap core ([`nsboot`]): today [`rootfs`], the rootfs preparation.
//!
//! Rust programs call it directly; the C surfaces reach it through the
//! rootfs plugin (`libnsboot_rootfs.so`, crates/nsboot-oci-plugin), which
//! libnsboot loads only when a config arrives. No `unsafe` here: syscalls
//! go through [`nsboot::sys`].
#![deny(unsafe_code)]

pub mod rootfs;
