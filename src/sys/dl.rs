//! The dynamic loader: `dlopen`/`dlsym`/`dladdr`, for the rootfs plugin
//! (see `crate::rootfs_plugin`).
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr, CString};
use std::path::PathBuf;

/// A `dlopen`ed object. Never `dlclose`d: code from it may still be on a
/// stack or referenced by a plan when the handle goes away, and the plugin
/// is loaded at most once per process anyway.
#[derive(Debug)]
pub struct Library {
    handle: *mut c_void,
}

/// The last `dlerror()` text (or a placeholder when there is none).
fn last_error() -> String {
    // SAFETY: dlerror takes no arguments and returns NULL or a NUL-terminated
    // string owned by the loader, valid until the next dl* call in this
    // thread; it is copied at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown dynamic loader error".to_owned()
    } else {
        // SAFETY: non-NULL and NUL-terminated (see above).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Library {
    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`: the object's symbols stay out
    /// of the global scope (they cannot interpose on the host program's).
    pub fn open(path: &CStr) -> Result<Library, String> {
        // SAFETY: `path` is a valid NUL-terminated string for the call;
        // dlopen runs the object's constructors, which for our plugin do
        // not start threads or touch global state of this library.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            Err(last_error())
        } else {
            Ok(Library { handle })
        }
    }

    /// The address of `name` in this object.
    pub fn symbol(&self, name: &CStr) -> Result<*mut c_void, String> {
        // SAFETY: `handle` came from a successful dlopen and is never
        // closed; `name` is NUL-terminated.
        let p = unsafe { libc::dlsym(self.handle, name.as_ptr()) };
        if p.is_null() {
            Err(format!("{}: {}", name.to_string_lossy(), last_error()))
        } else {
            Ok(p)
        }
    }
}

/// The file the code at `addr` was loaded from (`dladdr`): libnsboot.so
/// itself, or the program it is statically linked into.
// `addr` is never dereferenced: dladdr compares it with the loaded
// objects' address ranges, so any value is safe to pass.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn object_path(addr: *const c_void) -> Option<PathBuf> {
    // SAFETY: Dl_info is plain data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable for the call; dladdr only reads `addr` as
    // a number.
    let ok = unsafe { libc::dladdr(addr, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: non-NULL dli_fname is a NUL-terminated string owned by the
    // loader for as long as the object stays loaded (ours always is).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}

/// `CString` of a path, or `None` if it holds a NUL byte.
pub fn c_path(p: &std::path::Path) -> Option<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).ok()
}
