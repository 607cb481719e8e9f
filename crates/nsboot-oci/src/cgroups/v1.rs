//! cgroup v1 interface files.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory};

use super::{invalid, io_err, write, Cgroup, Result, Version};

/// runc's default device allow list, appended after the spec's rules:
/// mknod of any device, and use of the standard /dev nodes and ptys.
pub(crate) const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // /dev/null
    "c 1:5 rwm",   // /dev/zero
    "c 1:7 rwm",   // /dev/full
    "c 1:8 rwm",   // /dev/random
    "c 1:9 rwm",   // /dev/urandom
    "c 5:0 rwm",   // /dev/tty
    "c 5:2 rwm",   // /dev/ptmx
    "c 136:* rwm", // /dev/pts/*
];

/// A v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and no
/// task can join it until they are set: copy each created level's from its
/// parent (runc does the same).
pub(crate) fn prepare_cpuset(cg: &Cgroup) -> Result<()> {
    for d in &cg.dirs {
        if d.version != Version::V1 || !d.controllers.iter().any(|c| c == "cpuset") {
            continue;
        }
        let Some(top) = &d.created_top else { continue };
        let mut levels: Vec<&Path> = d
            .path
            .ancestors()
            .take_while(|a| a.starts_with(top))
            .collect();
        levels.reverse();
        for dir in levels {
            let parent = dir.parent().unwrap_or(dir);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let cur =
                    std::fs::read_to_string(dir.join(f)).map_err(io_err("read", &dir.join(f)))?;
                if cur.trim().is_empty() {
                    let from = std::fs::read_to_string(parent.join(f))
                        .map_err(io_err("read", &parent.join(f)))?;
                    write(dir, f, from.trim(), "linux.resources.cpu")?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const K: &str = "linux.resources.memory";
    if let Some(l) = m.limit() {
        write(dir, "memory.limit_in_bytes", l, &format!("{K}.limit"))?;
    }
    if let Some(s) = m.swap() {
        // OCI's v1 `swap` is the memory+swap limit.
        if !dir.join("memory.memsw.limit_in_bytes").exists() {
            return Err(invalid(
                format!("{K}.swap"),
                format!(
                    "{} has no memory.memsw.limit_in_bytes: swap accounting is off on this host",
                    dir.display()
                ),
            ));
        }
        write(dir, "memory.memsw.limit_in_bytes", s, &format!("{K}.swap"))?;
    }
    if let Some(r) = m.reservation() {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            r,
            &format!("{K}.reservation"),
        )?;
    }
    if let Some(s) = m.swappiness() {
        write(dir, "memory.swappiness", s, &format!("{K}.swappiness"))?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(
            dir,
            "memory.oom_control",
            1,
            &format!("{K}.disableOOMKiller"),
        )?;
    }
    if let Some(t) = m.kernel_tcp() {
        write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            t,
            &format!("{K}.kernelTCP"),
        )?;
    }
    Ok(())
}

pub(crate) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    const K: &str = "linux.resources.cpu";
    if let Some(s) = c.shares() {
        write(dir, "cpu.shares", s, &format!("{K}.shares"))?;
    }
    // Period before quota: the kernel checks quota against the period.
    if let Some(p) = c.period() {
        write(dir, "cpu.cfs_period_us", p, &format!("{K}.period"))?;
    }
    if let Some(q) = c.quota() {
        write(dir, "cpu.cfs_quota_us", q, &format!("{K}.quota"))?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", b, &format!("{K}.burst"))?;
    }
    if let Some(p) = c.realtime_period() {
        write(dir, "cpu.rt_period_us", p, &format!("{K}.realtimePeriod"))?;
    }
    if let Some(r) = c.realtime_runtime() {
        write(dir, "cpu.rt_runtime_us", r, &format!("{K}.realtimeRuntime"))?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i, &format!("{K}.idle"))?;
    }
    Ok(())
}

pub(crate) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    const K: &str = "linux.resources.blockIO";
    // CFQ's blkio.weight, else BFQ's blkio.bfq.weight (as runc).
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| dir.join(f).exists());
    if let Some(w) = b.weight() {
        let f = weight_file.ok_or_else(|| {
            invalid(
                format!("{K}.weight"),
                format!(
                    "{} has neither blkio.weight nor blkio.bfq.weight (no CFQ/BFQ scheduler)",
                    dir.display()
                ),
            )
        })?;
        write(dir, f, w, &format!("{K}.weight"))?;
    }
    if let Some(w) = b.leaf_weight() {
        write(dir, "blkio.leaf_weight", w, &format!("{K}.leafWeight"))?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let f = if weight_file == Some("blkio.bfq.weight") {
                "blkio.bfq.weight_device"
            } else {
                "blkio.weight_device"
            };
            write(
                dir,
                f,
                format!("{}:{} {w}", d.major(), d.minor()),
                &format!("{K}.weightDevice[{i}]"),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (key, file, list) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            write(
                dir,
                file,
                format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                &format!("{K}.{key}[{i}]"),
            )?;
        }
    }
    Ok(())
}

/// `devices.allow`/`devices.deny` in spec order, then [`DEFAULT_ALLOW`].
pub(crate) fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for (i, r) in rules.iter().enumerate() {
        let key = format!("linux.resources.devices[{i}]");
        let typ = r.typ().unwrap_or_default();
        // `u` (unbuffered char) is a char device to the kernel.
        let typ = match typ.as_str() {
            "u" => "c",
            t @ ("a" | "b" | "c") => t,
            t => {
                return Err(invalid(
                    format!("{key}.type"),
                    format!("{t:?}: device rules know a, b, c and u"),
                ))
            }
        };
        let num = |n: Option<i64>| {
            n.filter(|n| *n >= 0)
                .map_or("*".to_owned(), |n| n.to_string())
        };
        let access = r.access().as_deref().unwrap_or("rwm");
        let line = if typ == "a" {
            "a".to_owned()
        } else {
            format!("{typ} {}:{} {access}", num(r.major()), num(r.minor()))
        };
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(dir, file, line, &key)?;
    }
    for line in DEFAULT_ALLOW {
        write(dir, "devices.allow", line, "linux.resources.devices")?;
    }
    Ok(())
}
