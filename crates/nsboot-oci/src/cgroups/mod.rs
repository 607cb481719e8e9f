//! cgroups (in progress)
