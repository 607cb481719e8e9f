//! The whole `features` document: [`crate::features`] with the seccomp and
//! cgroup sections this crate supports merged in through its
//! [`Contributions`].

use serde_json::{json, Value};

use crate::features::{self, Contributions};

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let rel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}

/// What [`crate::seccomp`] and [`crate::cgroups`] contribute.
pub fn contributions() -> Contributions {
    let mut supported = vec!["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"];
    if kernel_at_least(5, 19) {
        supported.push("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }
    let lib = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    Contributions {
        seccomp: Some(json!({
            "enabled": true,
            "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                        "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
            "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                          "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
            "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
                      "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                      "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32",
                      "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
            "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG",
                           "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "supportedFlags": supported,
        })),
        cgroup: Some(json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false})),
        annotations: vec![
            ("io.github.seccomp.libseccomp.version".into(), lib),
            ("org.opencontainers.runc.checkpoint.enabled".into(), "false".into()),
        ],
    }
}

/// The document as a JSON value.
pub fn features() -> Value {
    features::features(&contributions())
}

/// The document as pretty-printed JSON (as `runc features` prints it).
pub fn features_json() -> String {
    features::features_json(&contributions())
}
