//! nsboot-capi: the C surfaces of nsboot, built as `libnsboot.so` and
//! `libnsboot.a` (header: include/nsboot.h, generated from this crate by
//! cbind/gen-header.sh).
//!
//! - `ffi`: the C ABI (`nsboot_*`, `nsexec`) and the ELF constructor;
//! - `preload`: the LD_PRELOAD mode (`NSBOOT_*` variables), run by the
//!   constructor.
//!
//! Both are thin layers over the `nsboot` crate. `unsafe` lives in `ffi`.
#![deny(unsafe_code)]

mod ffi;
mod preload;
