//! Link settings of the shared library (nothing is generated here).
//!
//! - The cdylib gets a soname, `libnsboot.so.<MAJOR>`, so `make install`
//!   can install `libnsboot.so.<MAJOR>.<MINOR>.<PATCH>` with the usual
//!   symlinks and programs record the soname in `DT_NEEDED`.
//! - The unwinder (`_Unwind_*`, needed by `catch_unwind` at the C
//!   boundary) comes from gcc's static `libgcc_eh.a` instead of
//!   `libgcc_s.so.1`, as `-static-libgcc` does for C++ libraries: loading
//!   one more shared object cost ~15% of `LD_PRELOAD=libnsboot.so
//!   /bin/true` (BENCHMARKS.md §4). Its symbols stay local to the
//!   .so (the cdylib exports only `nsboot_*` and `nsexec`); panics never
//!   cross the boundary, so the two unwinders never meet. `-bundle`:
//!   `libnsboot.a` does not embed it; static consumers resolve the
//!   unwinder from `-lgcc_s` in Libs.private as before.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".to_owned());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnsboot.so.{major}");
    println!("cargo:rustc-link-lib=static:+verbatim,-bundle=libgcc_eh.a");
    println!("cargo:rerun-if-changed=build.rs");
}
