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
//! - `NSBOOT_PLUGIN_DIR`, compiled in: where the rootfs plugin
//!   (`libnsboot_rootfs.so`) is looked for when it is not next to the
//!   object nsboot runs from (a program that links `libnsboot.a`). Taken
//!   from the environment of the build (`make install` passes `$libdir`),
//!   else cargo's output directory for this profile, where `cargo build`
//!   puts the plugin. (Passed to rustc as `LIBNSBOOT_PLUGIN_DIR`: cargo
//!   also exports it to test processes, and `NSBOOT_*` names there would
//!   be taken for LD_PRELOAD-mode variables.)

fn main() {
    // The C artifacts (libnsboot.so, libnsboot.a) come from the capi/
    // package, which shares this script; the nsboot package is the rlib.
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("nsboot-capi") {
        c_artifacts();
    }
    let plugin_dir = std::env::var("NSBOOT_PLUGIN_DIR").ok().filter(|d| !d.is_empty()).or_else(|| {
        // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
        let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR")?);
        out.ancestors().nth(3).map(|d| d.display().to_string())
    });
    if let Some(d) = plugin_dir {
        println!("cargo:rustc-env=LIBNSBOOT_PLUGIN_DIR={d}");
    }
    println!("cargo:rerun-if-env-changed=NSBOOT_PLUGIN_DIR");
    println!("cargo:rerun-if-changed=build.rs");
}

fn c_artifacts() {
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
    let early = manifest.parent().unwrap_or(&manifest).join("cbind/early-text.ld");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", early.display());
    println!("cargo:rerun-if-changed={}", early.display());
    println!("cargo:rustc-link-lib=static:+verbatim,-bundle=libgcc_eh.a");
}
