//! The features document next to `runc features` (runc 1.1.5 here): the
//! same schema keys, the same hooks, mount options and capabilities that
//! runc also lists, namespaces of this kernel.

use std::collections::BTreeSet;
use std::process::Command;

use nsboot_oci::features::{features_json, Contributions};
use serde_json::Value;

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

#[test]
fn features_match_runc_where_both_support_it() {
    let ours: Value = serde_json::from_str(&features_json(&Contributions::default())).unwrap();
    let Ok(out) = Command::new("runc").arg("features").output() else {
        eprintln!("SKIP features_match_runc_where_both_support_it: no runc");
        return;
    };
    let runc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&ours), keys(&runc));
    assert_eq!(ours["ociVersionMin"], runc["ociVersionMin"]);
    assert_eq!(ours["hooks"], runc["hooks"]);
    // Every option the rootfs accepts is one runc knows.
    let extra: Vec<_> = set(&ours["mountOptions"]).difference(&set(&runc["mountOptions"])).cloned().collect();
    assert!(extra.is_empty(), "mount options runc does not know: {extra:?}");
    // runc lists every capability it knows; we list the kernel's.
    let caps = set(&ours["linux"]["capabilities"]);
    assert!(caps.is_subset(&set(&runc["linux"]["capabilities"])));
    assert!(caps.contains("CAP_SYS_ADMIN") && caps.contains("CAP_BPF"));
    // runc 1.1.5 predates the time namespace; the kernel has it.
    let ns = set(&ours["linux"]["namespaces"]);
    assert!(set(&runc["linux"]["namespaces"]).is_subset(&ns), "{ns:?}");
    assert_eq!(ns.contains("time"), std::path::Path::new("/proc/self/ns/time").exists());
    // Sections we own and do not support say so.
    assert_eq!(ours["linux"]["apparmor"]["enabled"], false);
    assert_eq!(ours["linux"]["selinux"]["enabled"], false);
}
