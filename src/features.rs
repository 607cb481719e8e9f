//! What this kernel and build support, as JSON (`nsboot_features`): each
//! item probed on the spot (src/sys/probe.rs), nothing assumed from the
//! kernel version.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;

use crate::ns::NsKind;
use crate::sys::probe;

fn helper(name: &str) -> Option<(String, bool)> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).map(|p| {
        let shown = p.display().to_string();
        let setuid = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o4000 != 0).unwrap_or(false);
        let caps = crate::sys::fs::getxattr_len(&shown, c"security.capability").is_some_and(|n| n > 0);
        (shown, setuid || caps)
    })
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The features document (one JSON object, keys in a fixed order).
pub fn features_json() -> String {
    let mut s = String::from("{");
    let _ = write!(s, "\"version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    let mut b = |k: &str, v: bool| {
        let _ = write!(s, ",\"{k}\":{v}");
    };
    b("openat2", probe::openat2());
    b("mount_setattr", probe::mount_setattr());
    b("open_tree", probe::open_tree());
    b("clone3", probe::clone3());
    b("clone_into_cgroup", probe::clone_into_cgroup());
    let (signal, wait) = probe::pidfd();
    b("pidfd_open", crate::sys::process::pidfd_open(nix::unistd::Pid::this()).is_ok());
    b("pidfd_send_signal", signal);
    b("waitid_pidfd", wait);
    b("time_namespace", NsKind::Time.is_supported());
    b("idmapped_mounts", probe::idmapped_mounts());
    s.push_str(",\"idmapped_mounts_per_filesystem\":\"not probed (needs a mount of each filesystem)\"");
    s.push_str(",\"namespaces\":[");
    let kinds: Vec<String> =
        NsKind::ALL.iter().filter(|k| k.is_supported()).map(|k| format!("\"{}\"", k.name())).collect();
    s.push_str(&kinds.join(","));
    s.push(']');
    match probe::userns_allowed() {
        Ok(()) => s.push_str(",\"userns_allowed\":true"),
        Err(e) => {
            let _ = write!(s, ",\"userns_allowed\":false,\"userns_error\":\"{e}\"");
        }
    }
    for (k, path) in [
        ("max_user_namespaces", "/proc/sys/user/max_user_namespaces"),
        ("unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone"),
        ("apparmor_restrict_unprivileged_userns", "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
    ] {
        if let Some(v) = read_trim(path).and_then(|v| v.parse::<i64>().ok()) {
            let _ = write!(s, ",\"{k}\":{v}");
        }
    }
    for (k, name) in [("newuidmap", "newuidmap"), ("newgidmap", "newgidmap")] {
        match helper(name) {
            Some((p, privileged)) => {
                let _ = write!(s, ",\"{k}\":{{\"path\":\"");
                crate::log::json_escape(&mut s, &p);
                let _ = write!(s, "\",\"setuid_or_caps\":{privileged}}}");
            }
            None => {
                let _ = write!(s, ",\"{k}\":null");
            }
        }
    }
    s.push_str(",\"dialects\":[\"runc-1.1\",\"runc-1.2\"]");
    s.push_str(",\"caller_flags\":[\"pidfds\",\"error_record\"]");
    s.push_str(",\"bootstrap_server\":true");
    s.push('}');
    s
}
