//! Build settings of the rootfs plugin: its features, its soname, and the
//! static unwinder (as for libnsboot.so, see ../build.rs).
fn main() {
    // The crate's source with the `rootfs` (the OCI code) and `plugin` (the
    // entry table, no constructor) features.
    println!("cargo::rustc-check-cfg=cfg(feature, values(\"rootfs\", \"plugin\"))");
    println!("cargo:rustc-cfg=feature=\"rootfs\"");
    println!("cargo:rustc-cfg=feature=\"plugin\"");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnsboot_rootfs.so.0");
    println!("cargo:rustc-link-lib=static:+verbatim,-bundle=libgcc_eh.a");
    println!("cargo:rerun-if-changed=build.rs");
}
