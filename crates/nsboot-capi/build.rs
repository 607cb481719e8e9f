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
//! - Where the rootfs plugin is looked for is compiled into the `nsboot`
//!   crate (its build.rs, at the repository root).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".to_owned());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnsboot.so.{major}");
    // Load cost (BENCHMARKS.md §4): relative relocations packed as DT_RELR
    // (glibc >= 2.36 loads them; an older one refuses the library, naming
    // GLIBC_ABI_DT_RELR), and the code every load runs (our constructor,
    // std's argv initialiser) placed right after `.init` (cbind/early-text.ld).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    // Each segment starts on a page of its own in the file, so the RELRO
    // segment spans one page less: one copy-on-write fault less per load
    // (file padding only).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-loadable-segments");
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let early = manifest.join("../../cbind/early-text.ld");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", early.display());
    println!("cargo:rerun-if-changed={}", early.display());
    println!("cargo:rustc-link-lib=static:+verbatim,-bundle=libgcc_eh.a");
    println!("cargo:rerun-if-changed=build.rs");
}
