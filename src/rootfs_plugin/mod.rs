//! The rootfs step behind a C ABI, loaded only when a rootfs is asked for.
//!
//! The OCI code (oci-spec, serde, regex: three quarters of nsboot's code)
//! lives in a second shared object, `libnsboot_rootfs.so`, built from the
//! `nsboot-oci` crate by the `nsboot-oci-plugin` crate (crates/).
//! libnsboot's bootstrap and C API load it with `dlopen` the first time a
//! config arrives (stage-0, for
//! the `NSBOOT_ROOTFS_CONFIG` extension; `nsboot_rootfs_prepare`), so a
//! program that links libnsboot does not map or relocate any of it at
//! start-up: the constructor and the plain bootstrap stay as cheap as the
//! bootstrap alone (BENCHMARKS.md §1 and §4). Rust programs calling
//! `nsboot_oci::rootfs` directly use the code compiled into their binary.
//!
//! Where the plugin is looked for, first match wins:
//! 1. `$NSBOOT_ROOTFS_PLUGIN` (a path; nothing else is tried);
//! 2. next to the object nsboot's code was loaded from (`libnsboot.so`'s
//!    directory, `$ORIGIN`), as `libnsboot_rootfs.so.0` then `.so`;
//! 3. the directory fixed at build time (`NSBOOT_PLUGIN_DIR` when building;
//!    by default cargo's output directory; `make install` sets `$libdir`);
//! 4. `libnsboot_rootfs.so.0` through the loader's search path.
#![allow(unsafe_code)]

pub mod abi;
mod container;
mod host;

pub use container::{ContainerPlugin, CreateArgs, ExecStep};
pub use host::{load_plugin, RootfsFailure, RootfsStep};
