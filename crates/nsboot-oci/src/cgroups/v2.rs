//! cgroup v2 interface files.
//!
//! On this (hybrid) host only hugetlb exists on cgroup v2, so only the
//! hugetlb writes and `cgroup.subtree_control` are exercised against a
//! kernel (tests/cgroups.rs); the memory/cpu/io/pids writers below are
//! tested against a scratch directory in `tests` (names and values only).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{invalid, io_err, write, CgroupError, Result};

/// Controllers `r` needs on v2 (its v1 names mapped to v2: blkio → io).
pub(crate) fn controllers_used(r: &LinuxResources) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    let mut add = |c: &str| {
        s.insert(c.to_owned());
    };
    if r.memory().is_some() {
        add("memory");
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
        {
            add("cpu");
        }
        if c.cpus().is_some() || c.mems().is_some() {
            add("cpuset");
        }
    }
    if r.pids().is_some() {
        add("pids");
    }
    if r.block_io().is_some() {
        add("io");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        add("hugetlb");
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if let Some((c, _)) = k.split_once('.') {
            if c != "cgroup" {
                add(c);
            }
        }
    }
    s
}

/// Write `+controller` into `cgroup.subtree_control` of every directory
/// from `mountpoint` down to `dir`'s parent, where not already enabled.
pub(crate) fn enable_controllers(
    mountpoint: &Path,
    dir: &Path,
    wanted: &BTreeSet<String>,
) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut levels: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(mountpoint))
        .collect();
    levels.reverse();
    for level in levels {
        let f = level.join("cgroup.subtree_control");
        let cur = std::fs::read_to_string(&f).map_err(io_err("read", &f))?;
        let on: BTreeSet<&str> = cur.split_whitespace().collect();
        for c in wanted.iter().filter(|c| !on.contains(c.as_str())) {
            write(
                level,
                "cgroup.subtree_control",
                format!("+{c}"),
                &format!("linux.resources ({c} controller)"),
            )?;
        }
    }
    Ok(())
}

pub(crate) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const K: &str = "linux.resources.memory";
    let max = |v: i64| {
        if v < 0 {
            "max".to_owned()
        } else {
            v.to_string()
        }
    };
    if let Some(l) = m.limit() {
        write(dir, "memory.max", max(l), &format!("{K}.limit"))?;
    }
    if let Some(s) = m.swap() {
        // OCI `swap` is memory+swap; v2's memory.swap.max is swap alone.
        let v = match (s, m.limit()) {
            (s, _) if s < 0 => "max".to_owned(),
            (0, _) => "0".to_owned(),
            (_, None) | (_, Some(-1)) => {
                return Err(invalid(
                    format!("{K}.swap"),
                    "a swap limit on cgroup v2 needs a memory limit",
                ));
            }
            (s, Some(l)) => (s - l).to_string(),
        };
        write(dir, "memory.swap.max", v, &format!("{K}.swap"))?;
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.low", max(r), &format!("{K}.reservation"))?;
    }
    if m.swappiness().is_some() {
        return Err(CgroupError::Unsupported {
            key: format!("{K}.swappiness"),
            what: "swappiness on cgroup v2",
        });
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(CgroupError::Unsupported {
            key: format!("{K}.disableOOMKiller"),
            what: "disabling the OOM killer on cgroup v2",
        });
    }
    Ok(())
}

/// runc's cpu.shares (2-262144) → cpu.weight (1-10000) conversion.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

pub(crate) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    const K: &str = "linux.resources.cpu";
    if let Some(s) = c.shares() {
        write(
            dir,
            "cpu.weight",
            shares_to_weight(s),
            &format!("{K}.shares"),
        )?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        let period = c.period().unwrap_or(100_000);
        write(
            dir,
            "cpu.max",
            format!("{quota} {period}"),
            &format!("{K}.quota"),
        )?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", b, &format!("{K}.burst"))?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i, &format!("{K}.idle"))?;
    }
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        return Err(CgroupError::Unsupported {
            key: format!("{K}.realtimeRuntime"),
            what: "realtime CPU limits on cgroup v2",
        });
    }
    Ok(())
}

/// runc's blkio weight (10-1000) → io.weight (1-10000) conversion.
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

pub(crate) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    const K: &str = "linux.resources.blockIO";
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight() {
        if bfq {
            write(dir, "io.bfq.weight", w, &format!("{K}.weight"))?;
        } else {
            write(
                dir,
                "io.weight",
                format!("default {}", blkio_to_io_weight(w)),
                &format!("{K}.weight"),
            )?;
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let (f, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_to_io_weight(w))
            };
            write(
                dir,
                f,
                format!("{}:{} {v}", d.major(), d.minor()),
                &format!("{K}.weightDevice[{i}]"),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (key, field, list) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            let rate = if t.rate() == 0 {
                "max".to_owned()
            } else {
                t.rate().to_string()
            };
            write(
                dir,
                "io.max",
                format!("{}:{} {field}={rate}", t.major(), t.minor()),
                &format!("{K}.{key}[{i}]"),
            )?;
        }
    }
    Ok(())
}

/// `linux.resources.unified`: each key is an interface file of the
/// container's cgroup; its controller must be available.
pub(crate) fn unified(dir: &Path, u: &HashMap<String, String>, available: &[String]) -> Result<()> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        let key = format!("linux.resources.unified[{k:?}]");
        let ctrl = k.split_once('.').map_or("", |(c, _)| c);
        if ctrl != "cgroup" && !available.iter().any(|a| a == ctrl) {
            return Err(CgroupError::ControllerMissing {
                key,
                controller: ctrl.to_owned(),
            });
        }
        write(dir, k, &u[k], &key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxThrottleDeviceBuilder,
    };

    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nsboot-oci-v2-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }

    /// A scratch directory stands in for a cgroup2 directory: this checks
    /// the file names and the converted values, not kernel acceptance.
    #[test]
    fn memory_cpu_io_files_and_conversions() {
        let d = scratch("files");
        let m = LinuxMemoryBuilder::default()
            .limit(64 << 20)
            .swap(96i64 << 20)
            .reservation(32 << 20)
            .build()
            .unwrap();
        memory(&d, &m).unwrap();
        assert_eq!(read(&d, "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read(&d, "memory.swap.max"), (32u64 << 20).to_string());
        assert_eq!(read(&d, "memory.low"), (32u64 << 20).to_string());
        let c = LinuxCpuBuilder::default()
            .shares(1024u64)
            .quota(50_000i64)
            .period(100_000u64)
            .build()
            .unwrap();
        cpu(&d, &c).unwrap();
        assert_eq!(read(&d, "cpu.weight"), "39");
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        let b = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(1_048_576u64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        io(&d, &b).unwrap();
        assert_eq!(read(&d, "io.weight"), "default 4950");
        assert_eq!(read(&d, "io.max"), "8:0 rbps=1048576");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn unsupported_v2_keys_are_named() {
        let d = scratch("unsupported");
        let m = LinuxMemoryBuilder::default()
            .swappiness(10u64)
            .build()
            .unwrap();
        assert!(memory(&d, &m)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.memory.swappiness:"));
        let m = LinuxMemoryBuilder::default().swap(10i64).build().unwrap();
        assert!(memory(&d, &m)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.memory.swap:"));
        let u = HashMap::from([("memory.high".to_owned(), "1M".to_owned())]);
        let e = unified(&d, &u, &["hugetlb".to_owned()]).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.unified[\"memory.high\"]: no cgroup hierarchy on this host has the `memory` controller");
        let _ = std::fs::remove_dir_all(d);
    }
}
