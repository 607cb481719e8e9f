//! The `features` document (runtime-spec `features.md`, what
//! `runc features` prints): what this build and the running kernel
//! support.
//!
//! The sections this crate owns are filled here: OCI versions, hooks,
//! mount options (those the rootfs code accepts), namespaces (the kernel's
//! `/proc/self/ns` entries), capabilities (this build's names up to the
//! kernel's `cap_last_cap`), apparmor/selinux/intelRdt (not supported:
//! `enabled: false`), mount extensions (no idmapped mounts yet). The
//! seccomp and cgroup sections belong to the modules that implement them:
//! they pass theirs in [`Contributions`]; a section nobody contributes is
//! left out, which the schema reads as "unknown".

use serde_json::{json, Map, Value};

use crate::hooks::HookKind;
use crate::process::caps;

/// The lowest and highest runtime-spec versions a config may declare.
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.2.0";

/// The mount options of `mounts[].options` the rootfs code understands
/// (`nsboot_oci::rootfs` plan: its flag table, its propagation table and
/// `tmpcopyup`).
pub const MOUNT_OPTIONS: [&str; 57] = [
    "defaults",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "iversion",
    "noiversion",
    "silent",
    "loud",
    "acl",
    "noacl",
    "bind",
    "rbind",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnoatime",
    "rstrictatime",
    "rnosymfollow",
    "rsymfollow",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "tmpcopyup",
];

/// Sections other modules add (seccomp, cgroup), as JSON objects of the
/// schema's shape.
#[derive(Clone, Debug, Default)]
pub struct Contributions {
    pub seccomp: Option<Value>,
    pub cgroup: Option<Value>,
    /// Extra annotations (`org.opencontainers.*`, `io.github.nsboot.*`).
    pub annotations: Vec<(String, String)>,
}

/// The OCI namespace types the kernel has (`/proc/self/ns/<name>`).
pub fn namespaces() -> Vec<&'static str> {
    [
        ("cgroup", "cgroup"),
        ("ipc", "ipc"),
        ("mnt", "mount"),
        ("net", "network"),
        ("pid", "pid"),
        ("time", "time"),
        ("user", "user"),
        ("uts", "uts"),
    ]
    .into_iter()
    .filter(|(f, _)| std::path::Path::new("/proc/self/ns").join(f).exists())
    .map(|(_, oci)| oci)
    .collect()
}

/// The document as a JSON value.
pub fn features(extra: &Contributions) -> Value {
    let last = caps::last_cap() as usize;
    let mut linux = Map::new();
    linux.insert("namespaces".into(), json!(namespaces()));
    linux.insert("capabilities".into(), json!(caps::NAMES[..=last]));
    if let Some(c) = &extra.cgroup {
        linux.insert("cgroup".into(), c.clone());
    }
    if let Some(s) = &extra.seccomp {
        linux.insert("seccomp".into(), s.clone());
    }
    linux.insert("apparmor".into(), json!({"enabled": false}));
    linux.insert("selinux".into(), json!({"enabled": false}));
    linux.insert("intelRdt".into(), json!({"enabled": false}));
    linux.insert("mountExtensions".into(), json!({"idmap": {"enabled": false}}));
    let mut mount_options: Vec<&str> = MOUNT_OPTIONS.to_vec();
    mount_options.sort_unstable();
    mount_options.dedup();
    let mut annotations = Map::new();
    annotations.insert("io.github.nsboot.version".into(), json!(env!("CARGO_PKG_VERSION")));
    for (k, v) in &extra.annotations {
        annotations.insert(k.clone(), json!(v));
    }
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HookKind::ALL.iter().map(|k| k.key()).collect::<Vec<_>>(),
        "mountOptions": mount_options,
        "linux": linux,
        "annotations": annotations,
    })
}

/// The document as pretty-printed JSON (as `runc features` prints it).
pub fn features_json(extra: &Contributions) -> String {
    serde_json::to_string_pretty(&features(extra)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_schema_keys_and_this_kernel() {
        let v: Value = serde_json::from_str(&features_json(&Contributions::default())).unwrap();
        assert_eq!(v["ociVersionMin"], "1.0.0");
        assert_eq!(v["hooks"].as_array().unwrap().len(), 6);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.contains(&json!("mount")) && ns.contains(&json!("user")));
        let caps = v["linux"]["capabilities"].as_array().unwrap();
        let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
        assert_eq!(caps.len(), last.min(40) + 1);
        assert!(v["linux"].get("seccomp").is_none());
        let opts = v["mountOptions"].as_array().unwrap();
        assert!(opts.contains(&json!("rbind")) && opts.contains(&json!("tmpcopyup")));
        // Parses as oci-spec's Features type.
        let _: oci_spec::runtime::Features = serde_json::from_value(v).unwrap();
    }

    #[test]
    fn contributions_are_included() {
        let extra = Contributions {
            seccomp: Some(json!({"enabled": true})),
            cgroup: Some(json!({"v1": true, "v2": true})),
            annotations: vec![],
        };
        let v = features(&extra);
        assert_eq!(v["linux"]["seccomp"]["enabled"], true);
        assert_eq!(v["linux"]["cgroup"]["v2"], true);
    }
}
