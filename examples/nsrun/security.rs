//! A container's privileges, as docker gives them: Docker's default
//! capability set, Docker's default seccomp profile (moby's format, turned
//! into the OCI `linux.seccomp` object for the capabilities the container
//! has, as docker does), and `no_new_privs`. `--privileged` lifts all
//! three; `--cap-add`/`--cap-drop` and `--security-opt` adjust them.
//!
//! The result is OCI config keys (`process.capabilities`,
//! `process.noNewPrivileges`, `linux.seccomp`): the container side applies
//! them with `nsboot_oci::ProcessPlan` and `nsboot_oci::seccomp::SeccompPlan`.

use std::path::PathBuf;

use nsboot_oci::process::caps;
use serde_json::{json, Value};

use crate::{Context, Fail, Result};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default seccomp profile (moby/profiles `seccomp/default.json`;
/// provenance in the fixture's README).
const DOCKER_PROFILE: &str = include_str!("../../crates/nsboot-oci/tests/fixtures/docker-default-seccomp.json");

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompOpt {
    /// Docker's default profile.
    #[default]
    Default,
    Unconfined,
    /// A profile file: moby's format (with `archMap`/`includes`) or an OCI
    /// `linux.seccomp` object.
    File(PathBuf),
}

/// The security flags of `nsrun run`.
#[derive(Debug, Clone, Default)]
pub struct SecurityOpts {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges[=true|false]`; `None`: the default (on).
    pub no_new_privs: Option<bool>,
    pub seccomp: SeccompOpt,
}

impl SecurityOpts {
    /// Apply one `--security-opt` value.
    pub fn security_opt(&mut self, v: &str) -> Result<()> {
        let bad = || Fail::new(125, format!("invalid --security-opt {v:?}: use no-new-privileges[=true|false], seccomp=unconfined or seccomp=FILE"));
        let (k, val) = v.split_once(['=', ':']).unwrap_or((v, ""));
        match k {
            "no-new-privileges" => {
                self.no_new_privs = Some(match val {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(bad()),
                })
            }
            "seccomp" if val == "unconfined" => self.seccomp = SeccompOpt::Unconfined,
            "seccomp" if !val.is_empty() => self.seccomp = SeccompOpt::File(PathBuf::from(val)),
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` → `CAP_NET_ADMIN`, checked
/// against the capabilities nsboot knows; `ALL` stays `ALL`.
fn cap_name(flag: &str, n: &str) -> Result<String> {
    let up = n.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    match caps::number(&full) {
        Some(_) => Ok(full),
        None => Err(Fail::new(125, format!("invalid {flag} {n:?}: unknown capability"))),
    }
}

/// The capabilities of the container, in docker's order of evaluation:
/// `--cap-drop ALL` empties the default set, `--cap-add ALL` fills it,
/// otherwise the defaults plus the added minus the dropped.
pub fn capabilities(o: &SecurityOpts) -> Result<Vec<String>> {
    let bnd = own_bounding_set();
    let all: Vec<String> = caps::NAMES
        .iter()
        .enumerate()
        .take(caps::last_cap() as usize + 1)
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, s)| (*s).to_owned())
        .collect();
    if o.privileged {
        return Ok(all);
    }
    let add = o.cap_add.iter().map(|c| cap_name("--cap-add", c)).collect::<Result<Vec<_>>>()?;
    let drop = o.cap_drop.iter().map(|c| cap_name("--cap-drop", c)).collect::<Result<Vec<_>>>()?;
    let mut set: Vec<String> = if add.iter().any(|c| c == "ALL") {
        all.clone()
    } else if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DOCKER_CAPS.iter().map(|s| (*s).to_owned()).collect()
    };
    for c in add.iter().filter(|c| *c != "ALL") {
        if !set.contains(c) {
            set.push(c.clone());
        }
    }
    if !add.iter().any(|c| c == "ALL") {
        set.retain(|c| !drop.contains(c));
    } else {
        set.retain(|c| !drop.contains(c) || add.contains(c));
    }
    Ok(set)
}

/// nsrun's own bounding set: "all capabilities" means those nsrun can
/// give (docker's `GetAllCapabilities` filters by it the same way).
fn own_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX)
}

/// `process.capabilities` for `caps`: all sets for root; for another user
/// only the bounding set (docker ≥ 23 gives a non-root user no effective
/// capabilities).
pub fn process_caps(caps: &[String], root_user: bool) -> Value {
    let none: [&str; 0] = [];
    if root_user {
        json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": none, "ambient": none})
    } else {
        json!({"bounding": caps, "effective": none, "permitted": none, "inheritable": none, "ambient": none})
    }
}

/// `linux.seccomp` for the container, or `None` (unconfined, privileged).
pub fn seccomp(o: &SecurityOpts, caps: &[String]) -> Result<Option<Value>> {
    if o.privileged {
        return Ok(None);
    }
    let profile: Value = match &o.seccomp {
        SeccompOpt::Unconfined => return Ok(None),
        SeccompOpt::Default => serde_json::from_str(DOCKER_PROFILE).ctx(|| "the built-in seccomp profile".to_owned())?,
        SeccompOpt::File(p) => {
            let raw = std::fs::read(p).ctx(|| format!("seccomp profile {}", p.display()))?;
            serde_json::from_slice(&raw).ctx(|| format!("seccomp profile {}", p.display()))?
        }
    };
    if !profile.is_object() {
        return Err(Fail::new(125, "seccomp profile: not a JSON object"));
    }
    let oci = if profile.get("archMap").is_some() || profile.get("defaultAction").is_some() && uses_moby_keys(&profile) {
        moby_to_oci(&profile, caps)?
    } else {
        profile
    };
    Ok(Some(oci))
}

/// The BPF program of `spec`'s `linux.seccomp` and its flags, as hex for
/// the container's orders: compiled by libseccomp (through
/// `SeccompPlan`) once per profile, kernel and nsrun binary, and kept in
/// `<state>/seccomp/`; the container only loads it. `None` without a
/// filter, or for a notify profile (compiled in the container then).
pub fn compiled(root: &std::path::Path, spec: &Value) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let Some(s) = spec.pointer("/linux/seccomp").filter(|s| !s.is_null()) else { return Ok(None) };
    let raw = serde_json::to_vec(s).unwrap_or_default();
    let exe = std::fs::metadata("/proc/self/exe").map(|m| (m.ino(), m.mtime(), m.size())).unwrap_or_default();
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let key = crate::images::sha256_hex(format!("{}\n{release}\n{exe:?}\n", String::from_utf8_lossy(&raw)).as_bytes());
    let dir = root.join("seccomp");
    let path = dir.join(&key);
    if let Ok(hex) = std::fs::read_to_string(&path) {
        return Ok(Some(hex));
    }
    check(&raw)?;
    let plan = nsboot_oci::seccomp::SeccompPlan::from_json(&raw).map_err(|e| Fail::new(125, format!("seccomp profile: {e}")))?;
    if plan.needs_listener() {
        return Ok(None);
    }
    let mut bytes = (plan.flags() as u64).to_le_bytes().to_vec();
    bytes.extend(plan.program_bytes());
    let hex = crate::images::hex(&bytes);
    // Written aside and renamed: a reader sees a whole program or none.
    if crate::state::mkdir_p(&dir).is_ok() {
        let tmp = dir.join(format!(".{key}.{}", std::process::id()));
        if std::fs::write(&tmp, &hex).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(Some(hex))
}

/// A cached program (hex of flags then `struct sock_filter`s) as a plan.
pub fn from_hex(hex: &str) -> Result<nsboot_oci::seccomp::SeccompPlan> {
    let bytes: Vec<u8> = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    if bytes.len() < 8 {
        return Err(Fail::new(125, "seccomp: bad compiled program"));
    }
    let flags = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    nsboot_oci::seccomp::SeccompPlan::from_program_bytes(&bytes[8..], flags as libc::c_ulong).map_err(|e| Fail::new(125, format!("seccomp: {e}")))
}

fn check(oci: &[u8]) -> Result<()> {
    nsboot_oci::seccomp::SeccompPlan::from_json(oci)
        .map(|_| ())
        .or_else(|e| match e {
            // Only the compile needs the container's arch: report config errors.
            e @ (nsboot_oci::seccomp::SeccompError::Json(_)
            | nsboot_oci::seccomp::SeccompError::UnknownAction { .. }
            | nsboot_oci::seccomp::SeccompError::UnknownOperator { .. }
            | nsboot_oci::seccomp::SeccompError::UnknownFlag { .. }
            | nsboot_oci::seccomp::SeccompError::UnknownArch { .. }
            | nsboot_oci::seccomp::SeccompError::Invalid { .. }) => Err(Fail::new(125, format!("seccomp profile: {e}"))),
            _ => Ok(()),
        })
}

/// Set `process.capabilities`, `process.noNewPrivileges` and
/// `linux.seccomp` of `spec` from the flags (the user must be set first:
/// a non-root user gets bounding capabilities only).
pub fn apply_to(spec: &mut Value, o: &SecurityOpts) -> Result<()> {
    let caps = capabilities(o)?;
    let root_user = spec.pointer("/process/user/uid").and_then(Value::as_u64).unwrap_or(0) == 0;
    spec["process"]["capabilities"] = process_caps(&caps, root_user);
    spec["process"]["noNewPrivileges"] = json!(!o.privileged && o.no_new_privs.unwrap_or(true));
    match seccomp(o, &caps)? {
        Some(s) => spec["linux"]["seccomp"] = s,
        None => {
            if let Some(l) = spec.get_mut("linux").and_then(Value::as_object_mut) {
                l.remove("seccomp");
            }
        }
    }
    Ok(())
}

/// The keys of `spec` that `nsrun exec` applies to its process too (as
/// `docker exec`): user, capabilities, no_new_privs, seccomp.
pub fn exec_part(spec: &Value) -> Value {
    let p = |k: &str| spec.pointer(&format!("/process/{k}")).cloned().unwrap_or(Value::Null);
    let mut v = json!({"process": {"user": p("user"), "capabilities": p("capabilities"), "noNewPrivileges": p("noNewPrivileges")}});
    if let Some(s) = spec.pointer("/linux/seccomp") {
        v["linux"] = json!({"seccomp": s});
    }
    v
}

fn uses_moby_keys(p: &Value) -> bool {
    p.get("syscalls").and_then(Value::as_array).into_iter().flatten().any(|s| s.get("includes").is_some() || s.get("excludes").is_some())
}

/// Docker's arch name and libseccomp's for this machine.
fn native_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

fn kernel_at_least(want: &str) -> bool {
    let rel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let nums = |s: &str| -> (u32, u32) {
        let mut it = s.split(|c: char| !c.is_ascii_digit()).filter(|x| !x.is_empty()).map(|x| x.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    nums(&rel) >= nums(want)
}

/// moby's profile format → the OCI object, as docker builds it
/// (`profiles/seccomp/seccomp_linux.go`): a rule is kept when the
/// container has every capability of its `includes.caps`, the native arch
/// is in `includes.arches` (when listed), the kernel is at least
/// `includes.minKernel`, and no `excludes` matches.
fn moby_to_oci(raw: &Value, caps: &[String]) -> Result<Value> {
    let (arch, scmp_arch) = native_arch();
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    let has = |c: &String| caps.contains(c);
    let mut out = Vec::new();
    for call in raw.get("syscalls").and_then(Value::as_array).into_iter().flatten() {
        let (inc, exc) = (call.get("includes"), call.get("excludes"));
        let field = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).cloned();
        if !strs(field(inc, "caps").as_ref()).iter().all(has) {
            continue;
        }
        let arches = strs(field(inc, "arches").as_ref());
        if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
            continue;
        }
        if let Some(k) = field(inc, "minKernel").as_ref().and_then(Value::as_str) {
            if !kernel_at_least(k) {
                continue;
            }
        }
        if strs(field(exc, "caps").as_ref()).iter().any(has) || strs(field(exc, "arches").as_ref()).iter().any(|a| a == arch) {
            continue;
        }
        let mut c = json!({"names": call["names"], "action": call["action"]});
        for k in ["args", "errnoRet"] {
            if let Some(v) = call.get(k).filter(|v| !v.is_null()) {
                c[k] = v.clone();
            }
        }
        out.push(c);
    }
    let mut architectures = vec![json!(scmp_arch)];
    if let Some(m) = raw.get("archMap").and_then(Value::as_array).into_iter().flatten().find(|m| m["architecture"] == scmp_arch) {
        architectures.extend(m["subArchitectures"].as_array().into_iter().flatten().cloned());
    }
    let mut oci = json!({"defaultAction": raw["defaultAction"], "architectures": architectures, "syscalls": out});
    if let Some(e) = raw.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        oci["defaultErrnoRet"] = e.clone();
    }
    Ok(oci)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(add: &[&str], drop: &[&str]) -> SecurityOpts {
        SecurityOpts {
            cap_add: add.iter().map(|s| (*s).to_owned()).collect(),
            cap_drop: drop.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn capability_arithmetic_follows_docker() {
        let c = capabilities(&opts(&["net_admin"], &["CAP_CHOWN", "kill"])).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_owned()) && !c.contains(&"CAP_CHOWN".to_owned()) && !c.contains(&"CAP_KILL".to_owned()));
        assert_eq!(c.len(), DOCKER_CAPS.len() - 1);
        assert_eq!(capabilities(&opts(&["SYS_ADMIN"], &["ALL"])).unwrap(), vec!["CAP_SYS_ADMIN".to_owned()]);
        assert!(capabilities(&opts(&["CAP_FLY"], &[])).unwrap_err().msg.contains("unknown capability"));
    }

    #[test]
    fn default_profile_gates_rules_on_capabilities() {
        let default: Vec<String> = DOCKER_CAPS.iter().map(|s| (*s).to_owned()).collect();
        let names = |v: &Value| -> Vec<String> {
            v["syscalls"].as_array().unwrap().iter().flat_map(|s| s["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned())).collect()
        };
        let plain = seccomp(&SecurityOpts::default(), &default).unwrap().unwrap();
        assert!(!names(&plain).contains(&"unshare".to_owned()));
        assert!(names(&plain).contains(&"chroot".to_owned()));
        let mut admin = default.clone();
        admin.push("CAP_SYS_ADMIN".to_owned());
        assert!(names(&seccomp(&SecurityOpts::default(), &admin).unwrap().unwrap()).contains(&"unshare".to_owned()));
    }
}
