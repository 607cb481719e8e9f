//! Link settings of the rootfs plugin: its soname, and the static unwinder
//! (as for libnsboot.so, see crates/nsboot-capi/build.rs).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnsboot_rootfs.so.0");
    println!("cargo:rustc-link-lib=static:+verbatim,-bundle=libgcc_eh.a");
    println!("cargo:rerun-if-changed=build.rs");
}
