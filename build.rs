//! `NSBOOT_PLUGIN_DIR`, compiled in: where the rootfs plugin
//! (`libnsboot_rootfs.so`) is looked for when it is not next to the object
//! nsboot runs from (a program that links `libnsboot.a`). Taken from the
//! environment of the build (`make install` passes `$libdir`), else cargo's
//! output directory for this profile, where `cargo build` puts the plugin.
//! (Passed to rustc as `LIBNSBOOT_PLUGIN_DIR`: cargo also exports it to
//! test processes, and `NSBOOT_*` names there would be taken for
//! LD_PRELOAD-mode variables.) The link settings of libnsboot.so are in
//! crates/nsboot-capi/build.rs.

fn main() {
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
