//! LD_PRELOAD mode: run an unmodified program inside new namespaces,
//! configured by `NSBOOT_*` variables (no init socket).

/// Called by the constructor after the init-pipe check.
pub fn run_from_ctor() {}
