//! The OCI runtime spec (config.json) of a container, built from the
//! command line after runc's `runc spec` defaults (mounts, masked and
//! read-only paths), or read from a bundle; and the bootstrap namespaces it
//! implies.

use std::ffi::CString;
use std::path::Path;

use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{IdMap, IdRange};
use serde_json::{json, Value};

use crate::cli::{Net, Volume};
use crate::{Context, Fail, Result};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// runc's default masked paths.
const MASKED: &[&str] = &[
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
];
const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub struct Input<'a> {
    pub root: &'a Path,
    pub hostname: &'a str,
    pub env: &'a [String],
    pub cmd: &'a [String],
    pub tty: bool,
    pub userns: bool,
    pub net: &'a Net,
    pub volumes: &'a [Volume],
    /// The host's `/` is the image: hide its /tmp and /run.
    pub host_image: bool,
}

/// The environment of the container's process: defaults, then `-e`.
pub fn environment(hostname: &str, tty: bool, extra: &[String]) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_owned(), format!("HOSTNAME={hostname}"), "HOME=/root".to_owned()];
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    for e in extra {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    env
}

pub fn build(i: &Input<'_>) -> Value {
    let mut devpts = vec!["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
    if !i.userns {
        devpts.push("gid=5");
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    if !i.userns {
        mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    }
    if i.host_image {
        for d in ["/tmp", "/run"] {
            mounts.push(json!({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
        }
    }
    for v in i.volumes {
        let rw = if v.readonly { "ro" } else { "rw" };
        mounts.push(json!({"destination": v.ctr, "type": "bind", "source": v.host, "options": ["rbind", rw]}));
    }
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"}), json!({"type": "cgroup"})];
    if *i.net != Net::Host {
        namespaces.push(json!({"type": "network"}));
    }
    if i.userns {
        namespaces.push(json!({"type": "user"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": i.tty,
            "user": {"uid": 0, "gid": 0},
            "args": i.cmd,
            "env": environment(i.hostname, i.tty, i.env),
            "cwd": "/",
        },
        "root": {"path": i.root, "readonly": false},
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    })
}

/// What the bootstrap needs from a spec: namespaces to create and to join,
/// and the id maps of a user namespace.
pub struct Namespaces {
    pub create: NsSet,
    pub join: Vec<NsPath>,
    pub uid_map: Option<IdMap>,
    pub gid_map: Option<IdMap>,
}

fn kind_of(oci: &str) -> Option<NsKind> {
    Some(match oci {
        "pid" => NsKind::Pid,
        "network" => NsKind::Net,
        "mount" => NsKind::Mnt,
        "ipc" => NsKind::Ipc,
        "uts" => NsKind::Uts,
        "user" => NsKind::User,
        "cgroup" => NsKind::Cgroup,
        "time" => NsKind::Time,
        _ => return None,
    })
}

fn id_map(v: &Value, field: &str) -> Result<Option<IdMap>> {
    let Some(list) = v.pointer(&format!("/linux/{field}")).and_then(Value::as_array) else { return Ok(None) };
    if list.is_empty() {
        return Ok(None);
    }
    let num = |m: &Value, k: &str| -> Result<u32> {
        m.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Fail::new(125, format!("config.json: linux.{field}: missing or bad {k}")))
    };
    let mut ranges = Vec::new();
    for m in list {
        ranges.push(IdRange { inside: num(m, "containerID")?, outside: num(m, "hostID")?, count: num(m, "size")? });
    }
    Ok(Some(IdMap(ranges)))
}

/// The namespaces listed in `linux.namespaces` (entries with a `path` are
/// joined) and `linux.uidMappings`/`gidMappings`.
pub fn namespaces(spec: &Value) -> Result<Namespaces> {
    let mut ns = Namespaces { create: NsSet::EMPTY, join: Vec::new(), uid_map: id_map(spec, "uidMappings")?, gid_map: id_map(spec, "gidMappings")? };
    for n in spec.pointer("/linux/namespaces").and_then(Value::as_array).into_iter().flatten() {
        let t = n.get("type").and_then(Value::as_str).unwrap_or("");
        let kind = kind_of(t).ok_or_else(|| Fail::new(125, format!("config.json: unknown namespace type {t:?}")))?;
        match n.get("path").and_then(Value::as_str).filter(|p| !p.is_empty()) {
            Some(p) => ns.join.push(NsPath { kind, path: CString::new(p).ctx(|| "config.json: namespace path".to_owned())? }),
            None => ns.create.insert(kind),
        }
    }
    Ok(ns)
}

/// A bundle's config.json with `process.args` replaced by `cmd` when one is
/// given, and `process.terminal` following `-t`.
pub fn from_bundle(bundle: &Path, cmd: &[String], tty: bool) -> Result<Value> {
    let p = bundle.join("config.json");
    let raw = std::fs::read(&p).ctx(|| format!("read {}", p.display()))?;
    let mut v: Value = serde_json::from_slice(&raw).ctx(|| format!("parse {}", p.display()))?;
    let Some(process) = v.get_mut("process").and_then(Value::as_object_mut) else {
        return Err(Fail::new(125, format!("{}: no process section", p.display())));
    };
    if !cmd.is_empty() {
        process.insert("args".into(), json!(cmd));
    }
    process.insert("terminal".into(), json!(tty));
    Ok(v)
}

/// `process.args`, `process.env`, `process.cwd` of a spec.
pub fn process_of(spec: &Value) -> (Vec<String>, Vec<String>, String) {
    let strings = |p: &str| -> Vec<String> {
        spec.pointer(p).and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let cwd = spec.pointer("/process/cwd").and_then(Value::as_str).unwrap_or("/").to_owned();
    (strings("/process/args"), strings("/process/env"), cwd)
}
