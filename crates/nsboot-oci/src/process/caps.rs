//! Capability names and sets (capabilities(7)).
//!
//! Names are runc's (`CAP_` + the kernel's name). A set is a 64-bit mask,
//! bit N for capability N, as capget/capset and `/proc/self/status` use.

use crate::error::{step, ConfigError, Result};
use crate::sys;

/// Every capability this build knows, by number (index = number).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a runc-style name (`CAP_SYS_ADMIN`).
pub fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// The highest capability the running kernel knows
/// (`/proc/sys/kernel/cap_last_cap`), at most the last one we know.
pub fn last_cap() -> u32 {
    let known = NAMES.len() as u32 - 1;
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(known, |n| n.min(known))
}

/// The five sets a process gets, as masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// The highest capability number of the running kernel (read at plan
    /// time, so that `apply` reads no file).
    pub last: u32,
}

impl CapSets {
    /// The sets of `process.capabilities`, names checked. A set that is
    /// absent is empty, as in runc. Capabilities the running kernel does
    /// not know are left out with a warning (runc does the same).
    pub fn from_spec(caps: Option<&oci_spec::runtime::LinuxCapabilities>, warnings: &mut Vec<String>) -> Result<Self> {
        let last = last_cap();
        let mut sets = CapSets { last, ..CapSets::default() };
        let Some(caps) = caps else { return Ok(sets) };
        let lists = [
            ("bounding", caps.bounding(), &mut sets.bounding),
            ("effective", caps.effective(), &mut sets.effective),
            ("permitted", caps.permitted(), &mut sets.permitted),
            ("inheritable", caps.inheritable(), &mut sets.inheritable),
            ("ambient", caps.ambient(), &mut sets.ambient),
        ];
        for (set, list, mask) in lists {
            let Some(list) = list else { continue };
            for cap in list {
                // oci-spec's Display is the kernel name without "CAP_".
                let bare = cap.to_string();
                let name = if bare.starts_with("CAP_") { bare } else { format!("CAP_{bare}") };
                let Some(n) = number(&name) else {
                    return Err(
                        ConfigError::UnknownCapability { key: format!("process.capabilities.{set}"), name }.into()
                    );
                };
                if n > last {
                    warnings
                        .push(format!("process.capabilities.{set}: {name} is not supported by this kernel, ignored"));
                    continue;
                }
                *mask |= 1u64 << n;
            }
        }
        Ok(sets)
    }

    /// Drop from the bounding set every capability it does not list
    /// (runc's `ApplyBoundingSet`; needs CAP_SETPCAP). Done before the
    /// uid change, while the process is still privileged.
    pub fn apply_bounding(&self) -> Result<()> {
        for n in 0..=self.last {
            if self.bounding & (1u64 << n) == 0
                && sys::bounding_read(n).map_err(step("prctl PR_CAPBSET_READ", NAMES[n as usize]))?
            {
                sys::bounding_drop(n).map_err(step("prctl PR_CAPBSET_DROP", NAMES[n as usize]))?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted and inheritable with capset, then the
    /// ambient set (cleared, then raised; a capability can only be ambient
    /// when it is permitted and inheritable).
    pub fn apply_sets(&self) -> Result<()> {
        sys::capset(self.effective, self.permitted, self.inheritable)
            .map_err(step("capset", "process.capabilities"))?;
        sys::ambient_clear().map_err(step("prctl PR_CAP_AMBIENT_CLEAR_ALL", "process.capabilities.ambient"))?;
        for n in 0..=self.last {
            if self.ambient & (1u64 << n) != 0 {
                sys::ambient_raise(n).map_err(step("prctl PR_CAP_AMBIENT_RAISE", NAMES[n as usize]))?;
            }
        }
        Ok(())
    }
}

/// Check the capability names of a raw config.json before oci-spec parses
/// it: oci-spec accepts lower case and a missing `CAP_` prefix, runc does
/// not, and oci-spec's own error would not name the key.
pub(crate) fn check_names(json: &serde_json::Value) -> Result<()> {
    let Some(caps) = json.pointer("/process/capabilities").and_then(|v| v.as_object()) else { return Ok(()) };
    for (set, list) in caps {
        let Some(list) = list.as_array() else { continue };
        for (i, v) in list.iter().enumerate() {
            let name = v.as_str().unwrap_or_default();
            if number(name).is_none() {
                return Err(ConfigError::UnknownCapability {
                    key: format!("process.capabilities.{set}[{i}]"),
                    name: v.to_string().trim_matches('"').to_owned(),
                }
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel_header() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_AUDIT_READ"), Some(37));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
        assert_eq!(number("chown"), None);
    }

    #[test]
    fn every_oci_spec_capability_has_a_number() {
        let caps: oci_spec::runtime::LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": NAMES.to_vec(),
        }))
        .unwrap();
        let mut w = Vec::new();
        let sets = CapSets::from_spec(Some(&caps), &mut w).unwrap();
        assert_eq!(sets.bounding.count_ones() as usize + w.len(), NAMES.len());
    }

    #[test]
    fn raw_names_are_checked_with_their_key() {
        let j = serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_FLY"]}}});
        let e = check_names(&j).unwrap_err().to_string();
        assert_eq!(e, "process.capabilities.bounding[1]: unknown capability \"CAP_FLY\"");
        let j = serde_json::json!({"process": {"capabilities": {"effective": ["chown"]}}});
        assert!(check_names(&j).is_err());
    }
}
