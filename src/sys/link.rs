//! Symbols the program that links nsboot may define: read through a weak
//! reference, so a program that defines nothing links and runs as before.
//!
//! `nsboot_bootstrap_dialect` (a `const int` in the program, see
//! `NSBOOT_BOOTSTRAP_DIALECT` in `nsboot.h`) fixes the wire dialect of the
//! bootstrap at build time. Why a data symbol rather than a setter called
//! from a constructor: it needs no ordering at all. The loader resolves
//! the reference while relocating, before any constructor runs, so it holds
//! in a static link (the program's definition is bound by the linker) and in
//! a dynamic one (libnsboot.so's constructor runs *before* the program's
//! constructors, too early for any setter; the reference makes the linker
//! export the program's definition to the .so).
//!
//! Stable Rust has no weak extern (`#[linkage]` is unstable), so the weak
//! reference is one pointer-sized word of assembly: `.weak` makes an
//! undefined symbol resolve to 0 instead of failing the link.
#![allow(unsafe_code)]

use std::ffi::c_int;

#[cfg(target_pointer_width = "64")]
std::arch::global_asm!(
    ".weak nsboot_bootstrap_dialect",
    ".pushsection .data.rel.ro.nsboot_link_dialect_ref,\"aw\"",
    ".p2align 3",
    // Global for Rust's extern reference, hidden from the dynamic symbol
    // table; not an `nsboot_*` name, so localize-staticlib.sh hides it too.
    ".globl __nsboot_link_dialect_ref",
    ".hidden __nsboot_link_dialect_ref",
    "__nsboot_link_dialect_ref:",
    ".quad nsboot_bootstrap_dialect",
    ".popsection",
);

#[cfg(target_pointer_width = "32")]
std::arch::global_asm!(
    ".weak nsboot_bootstrap_dialect",
    ".pushsection .data.rel.ro.nsboot_link_dialect_ref,\"aw\"",
    ".p2align 2",
    ".globl __nsboot_link_dialect_ref",
    ".hidden __nsboot_link_dialect_ref",
    "__nsboot_link_dialect_ref:",
    ".long nsboot_bootstrap_dialect",
    ".popsection",
);

extern "C" {
    /// The address of the program's `nsboot_bootstrap_dialect`, NULL when
    /// the program does not define it (see the assembly above).
    static __nsboot_link_dialect_ref: *const c_int;
}

/// The value of the program's `nsboot_bootstrap_dialect`, if it defines one.
pub fn bootstrap_dialect() -> Option<c_int> {
    // SAFETY: the word is defined above and filled in by the linker or the
    // loader before any code runs; it is never written afterwards. Read
    // volatile so the compiler makes no assumption about its value.
    let p = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(__nsboot_link_dialect_ref)) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL: the address of the program's `const int`, which
    // lives as long as the program.
    Some(unsafe { std::ptr::read_volatile(p) })
}
