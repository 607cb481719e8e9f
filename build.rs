//! Link settings of the shared library (nothing is generated here).
//!
//! The cdylib gets a soname, `libnsboot.so.<MAJOR>`, so `make install`
//! can install `libnsboot.so.<MAJOR>.<MINOR>.<PATCH>` with the usual
//! symlinks and programs record the soname in `DT_NEEDED`.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".to_owned());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnsboot.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
