//! The ELF constructor and runc's `nsexec` symbol.
//!
//! Loading the library (linking it, or `LD_PRELOAD`) places [`CTOR`] in
//! `.init_array`: it runs before `main` and before any thread exists. With
//! `_LIBCONTAINER_INITPIPE` unset and no `NSBOOT_*` variable of the
//! LD_PRELOAD mode set it returns after one `getenv` and one pass over
//! `environ`, touching nothing.

use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run the bootstrap entry; a panic inside it ends the process with a fatal
/// line instead of unwinding into C or returning into the host program from
/// a stage child.
fn guarded(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        nsboot::log::fatal("nsboot: internal error (panic) during the bootstrap");
        nsboot::sys::process::exit_now(1);
    }
}

// `.text.startup`: linkers place it at the start of the text, on the page
// of `_init` that every load faults in anyway, so the common case (nothing
// requested) costs no page fault of its own (BENCHMARKS.md §4).
#[link_section = ".text.startup.nsboot_ctor"]
extern "C" fn nsboot_ctor(_argc: c_int, _argv: *const *const c_char, _envp: *const *const c_char) {
    // Nothing can be requested without one of these entries: return before
    // calling into the rest of the library.
    if !nsboot::sys::process::env_has_prefix(&[b"_LIBCONTAINER_INITPIPE=", b"NSBOOT_"]) {
        return;
    }
    guarded(|| {
        // A runc-style bootstrap (init pipe) wins; the LD_PRELOAD mode
        // (`NSBOOT_*` variables) runs only when none was requested.
        if nsboot::entry::nsexec() == nsboot::entry::Outcome::NotRequested {
            crate::preload::run_from_ctor();
        }
    });
}

/// The constructor entry, placed in `.init_array` (glibc passes argc, argv
/// and envp to these).
#[used]
#[link_section = ".init_array"]
static CTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = nsboot_ctor;

/// runc's `nsexec()`: run the bootstrap if `_LIBCONTAINER_INITPIPE` is set.
///
/// For programs that call it from their own constructor, as runc's Go
/// `nsenter` package does. Returns at once when the variable is unset or
/// empty, or when the bootstrap already ran in this process (the library's
/// own constructor and an explicit call never both run it). Otherwise
/// returns only in stage-2, inside the namespaces; stage-0 and stage-1 exit
/// in it, and any failure exits 1 after a fatal log line.
///
/// The caller's wire dialect is chosen before anything is written: the
/// program's `nsboot_bootstrap_dialect` if it defines one
/// (`NSBOOT_BOOTSTRAP_DIALECT`), else `NSBOOT_DIALECT` ("1.1" or "1.2") if
/// set, else runc ≥ 1.2 when
/// `_LIBCONTAINER_SYNCPIPE` is set (runc ≥ 1.2's libcontainer always sets
/// it, runc 1.1 never does), else runc 1.1.
///
/// Threads: must be called before the process starts any thread.
///
/// - NULL: No arguments.
/// - Ownership: Nothing to free; the init pipe and log fds stay the caller's.
/// - Threads: Must run before the process creates any thread (a constructor, or first in `main`); a multi-threaded caller gets a fatal error and exit 1 instead of undefined behaviour.
/// - Errors: On any failure: a fatal log line and `_exit(1)` (the function does not return).
#[no_mangle]
pub extern "C" fn nsexec() {
    guarded(|| {
        nsboot::entry::nsexec();
    });
}

/// Same as `nsexec`, with nsboot's naming; returns 0 when no bootstrap was
/// requested and 1 in stage-2 inside the namespaces (also when the
/// library's constructor already ran the bootstrap before `main`).
///
/// - NULL: No arguments.
/// - Ownership: As `nsexec`.
/// - Threads: As `nsexec`.
/// - Errors: As `nsexec`; returns only 0 (nothing to do) or 1 (in stage-2).
#[no_mangle]
pub extern "C" fn nsboot_nsexec() -> c_int {
    let mut out = 0;
    guarded(|| {
        out = match nsboot::entry::nsexec() {
            nsboot::entry::Outcome::InContainer => 1,
            _ => 0,
        };
    });
    out
}
