//! Resource limits: `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
//! `--pids-limit` become the OCI `linux.resources` object and a container
//! cgroup made with `nsboot_oci::cgroups` (each controller in whichever
//! hierarchy holds it: v1, v2 or hybrid); `--ulimit` becomes
//! `process.rlimits`.
//!
//! The container's stage-0 enters the cgroup before the bootstrap creates
//! any namespace (`supervise::start` writes it into `cgroup.procs` between
//! fork and exec, as runc applies its cgroup to stage-0), so the container's
//! cgroup namespace is rooted at its own cgroup, as docker's are.

use std::os::fd::OwnedFd;
use std::path::Path;

use nsboot_oci::cgroups::{Cgroup, CgroupPlan, Hierarchies};
use serde_json::{json, Value};

use crate::{Context, Fail, Result};

#[derive(Debug, Clone, Default)]
pub struct LimitOpts {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory + swap in bytes; -1 unlimited.
    pub memory_swap: Option<i64>,
    /// CPUs, as a decimal (1.5).
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    /// `(RLIMIT_NAME, soft, hard)`.
    pub ulimits: Vec<(String, u64, u64)>,
}

impl LimitOpts {
    pub fn any_cgroup_limit(&self) -> bool {
        self.memory.is_some() || self.memory_swap.is_some() || self.cpus.is_some() || self.cpu_shares.is_some() || self.pids_limit.is_some()
    }
}

/// `512m`, `1g`, `1048576`, `64k` (docker's units: b, k, m, g, powers of 1024).
pub fn parse_bytes(v: &str) -> std::result::Result<i64, String> {
    let s = v.trim().to_ascii_lowercase();
    if s == "-1" {
        return Ok(-1);
    }
    let s = s.strip_suffix('b').filter(|r| !r.is_empty() && r.ends_with(['k', 'm', 'g', 't'])).unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('b') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size {v:?}: use a number with an optional unit b, k, m, g"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("invalid size {v:?}: must be positive"));
    }
    Ok((n * mult as f64) as i64)
}

pub fn parse_cpus(v: &str) -> std::result::Result<f64, String> {
    match v.parse::<f64>() {
        Ok(n) if n > 0.0 && n <= 1024.0 => Ok(n),
        _ => Err(format!("invalid --cpus {v:?}: a positive number of CPUs such as 0.5 or 2")),
    }
}

/// `nofile=1024[:2048]` → `("RLIMIT_NOFILE", 1024, 2048)`.
pub fn parse_ulimit(v: &str) -> std::result::Result<(String, u64, u64), String> {
    let bad = || format!("invalid --ulimit {v:?}: use NAME=SOFT[:HARD], e.g. nofile=1024:2048");
    let (name, vals) = v.split_once('=').ok_or_else(bad)?;
    let num = |s: &str| -> std::result::Result<u64, String> {
        match s {
            "-1" | "unlimited" => Ok(u64::MAX),
            _ => s.parse().map_err(|_| bad()),
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(format!("invalid --ulimit {v:?}: soft limit above the hard one"));
    }
    const NAMES: &[&str] = &[
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
        "rttime", "sigpending", "stack", "as",
    ];
    if !NAMES.contains(&name) {
        return Err(format!("invalid --ulimit {v:?}: unknown limit {name:?}"));
    }
    Ok((format!("RLIMIT_{}", name.to_ascii_uppercase()), soft, hard))
}

/// `linux.resources` for the flags, docker's way: `--memory` alone gives
/// memory+swap twice the memory; `--cpus` a CFS quota over a 100 ms period.
pub fn resources(o: &LimitOpts) -> Result<Value> {
    let mut r = json!({});
    if let Some(m) = o.memory {
        if m < 6 << 20 {
            return Err(Fail::new(125, "minimum memory limit allowed is 6MB"));
        }
        r["memory"] = json!({"limit": m});
        let swap = match o.memory_swap {
            Some(s) if s != -1 && s < m => {
                return Err(Fail::new(125, "minimum memoryswap limit should be larger than memory limit, see usage"))
            }
            Some(s) => s,
            None => m * 2,
        };
        r["memory"]["swap"] = json!(swap);
    } else if o.memory_swap.is_some_and(|s| s != -1) {
        return Err(Fail::new(125, "you should always set the memory limit when using the memoryswap limit, see usage"));
    }
    if o.cpus.is_some() || o.cpu_shares.is_some() {
        r["cpu"] = json!({});
        if let Some(c) = o.cpus {
            r["cpu"]["period"] = json!(100_000u64);
            r["cpu"]["quota"] = json!((c * 100_000.0).round() as i64);
        }
        if let Some(s) = o.cpu_shares {
            r["cpu"]["shares"] = json!(s);
        }
    }
    if let Some(p) = o.pids_limit {
        r["pids"] = json!({"limit": if p <= 0 { -1 } else { p }});
    }
    Ok(r)
}

/// `process.rlimits` for `--ulimit`.
pub fn rlimits(o: &LimitOpts) -> Value {
    Value::Array(o.ulimits.iter().map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h})).collect())
}

/// Create `/nsrun-<id>` in every hierarchy (flat: no parent shared between
/// containers, which concurrent creations and removals would race on) with the limits. Root only:
/// rootless nsrun, like docker rootless on cgroup v1, runs without a
/// cgroup (limits are refused with a clear error instead of being dropped).
pub fn create(o: &LimitOpts, id: &str) -> Result<Option<Cgroup>> {
    if !nix::unistd::geteuid().is_root() {
        if o.any_cgroup_limit() {
            return Err(Fail::new(125, "resource limits need cgroups, which rootless nsrun does not manage (run as root)"));
        }
        return Ok(None);
    }
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_value(resources(o)?).ctx(|| "resource limits".to_owned())?;
    let path = format!("/nsrun-{id}");
    let plan = CgroupPlan::new(Some(Path::new(&path)), Some(&res), id).ctx(|| "cgroup".to_owned())?;
    let hier = Hierarchies::detect().ctx(|| "find the cgroup hierarchies".to_owned())?;
    plan.create(&hier).map(Some).map_err(|e| Fail::new(125, format!("create the container cgroup: {e}")))
}

/// A bundle's `linux.resources` limits (memory, cpu, pids) in
/// `/nsrun-<id>` (root only; `None` when it sets none). Devices are left
/// to the rootfs's device nodes, as for every nsrun container.
pub fn create_from_spec(spec: &Value, id: &str) -> Result<Option<Cgroup>> {
    let mut r = json!({});
    for k in ["memory", "cpu", "pids"] {
        if let Some(v) = spec.pointer(&format!("/linux/resources/{k}")) {
            r[k] = v.clone();
        }
    }
    if r.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(None);
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let res: oci_spec::runtime::LinuxResources = serde_json::from_value(r).ctx(|| "config.json: linux.resources".to_owned())?;
    let path = format!("/nsrun-{id}");
    let plan = CgroupPlan::new(Some(Path::new(&path)), Some(&res), id).ctx(|| "cgroup".to_owned())?;
    let hier = Hierarchies::detect().ctx(|| "find the cgroup hierarchies".to_owned())?;
    plan.create(&hier).map(Some).map_err(|e| Fail::new(125, format!("create the container cgroup: {e}")))
}

/// The `cgroup.procs` files of `cg`, opened for the stage-0 to write "0"
/// into between fork and exec.
pub fn procs_files(cg: &Cgroup) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for d in &cg.dirs {
        let p = d.path.join("cgroup.procs");
        let f = std::fs::OpenOptions::new().write(true).open(&p).ctx(|| format!("open {}", p.display()))?;
        out.push(OwnedFd::from(f));
    }
    Ok(out)
}

/// Remove the container's cgroup (kills what is left in it).
pub fn remove(cg: &Cgroup) {
    if let Err(e) = cg.remove() {
        eprintln!("nsrun: remove the container cgroup: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_docker_defaults() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("512kb"), Ok(512 << 10));
        assert!(parse_bytes("lots").is_err());
        let r = resources(&LimitOpts { memory: Some(64 << 20), cpus: Some(1.5), ..Default::default() }).unwrap();
        assert_eq!(r["memory"]["swap"], json!(128 << 20));
        assert_eq!(r["cpu"]["quota"], json!(150_000));
        assert_eq!(parse_ulimit("nofile=100:200").unwrap(), ("RLIMIT_NOFILE".to_owned(), 100, 200));
        assert!(parse_ulimit("nofile=300:200").is_err());
    }
}
