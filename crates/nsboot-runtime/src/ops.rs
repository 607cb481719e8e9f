//! The commands on an existing container, plus `features` and `spec`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as sys_kill, Signal};
use nix::unistd::Pid;
use nsboot_oci::cgroups::{CgroupPlan, Hierarchies};
use nsboot_oci::hooks::{HookKind, Hooks, State as HookState, Status as HookStatus};
use nsboot_oci::oci_spec::runtime::{LinuxResources, Spec};

use crate::cli::{Ctx, Format, UpdateOpts};
use crate::state::{self, Dir, Saved, Status};
use crate::Error;

pub fn start(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let s = dir.load()?;
    match state::status(&dir, &s) {
        Status::Created => {}
        Status::Stopped => return Err(Error::msg(format!("cannot start container {id}: it has stopped"))),
        st => return Err(Error::msg(format!("cannot start container {id}: it is {} (not created)", st.as_str()))),
    }
    state::release_fifo(&dir.fifo())?;
    if let Ok(spec) = serde_json::from_value::<Spec>(s.config.clone()) {
        if let Ok(h) = Hooks::from_spec(&spec) {
            let st = HookState::new(&spec, id, &s.bundle.to_string_lossy(), HookStatus::Running, Some(s.pid));
            match h.run(HookKind::Poststart, &st) {
                Ok(w) => w.iter().for_each(|w| ctx.log.warn(&w.to_string())),
                Err(e) => ctx.log.warn(&e.to_string()),
            }
        }
    }
    Ok(())
}

pub fn state(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let s = dir.load()?;
    let st = state::status(&dir, &s);
    println!("{}", serde_json::to_string_pretty(&state::show(&s, st))?);
    Ok(())
}

pub fn parse_signal(s: &str) -> Result<Signal, Error> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::msg(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    Signal::from_str(&name).map_err(|_| Error::msg(format!("unknown signal {s:?}")))
}

pub fn kill(ctx: &Ctx, id: &str, signal: &str, all: bool) -> Result<(), Error> {
    let sig = parse_signal(signal)?;
    let dir = Dir::open(&ctx.root, id)?;
    let s = dir.load()?;
    let st = state::status(&dir, &s);
    if matches!(st, Status::Stopped | Status::Creating) {
        return Err(Error::msg(format!("cannot kill container {id}: it is {}", st.as_str())));
    }
    if all {
        let mut pids = s.cgroup.as_ref().map(|c| c.pids()).transpose()?.unwrap_or_default();
        // No cgroup (rootless without delegation): the init at least.
        if s.pid > 0 {
            pids.insert(s.pid);
        }
        for p in pids {
            let _ = sys_kill(Pid::from_raw(p), sig);
        }
        if st == Status::Paused {
            let _ = set_frozen(&s, false);
        }
        return Ok(());
    }
    if s.pid <= 0 {
        return Err(Error::msg(format!("cannot kill container {id}: no init process")));
    }
    sys_kill(Pid::from_raw(s.pid), sig).map_err(|e| Error::msg(format!("kill {} (container {id}): {e}", s.pid)))
}

fn wait_gone(pid: i32, start: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        match state::start_time(pid) {
            Some(x) if x == start => std::thread::sleep(Duration::from_millis(2)),
            _ => return,
        }
    }
}

pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<(), Error> {
    state::validate_id(id)?;
    if !ctx.root.join(id).exists() && force {
        return Ok(());
    }
    let dir = Dir::open(&ctx.root, id)?;
    let s = match dir.load() {
        Ok(s) => s,
        Err(_) => {
            // A create that did not finish (crashed): nothing else to find.
            dir.remove();
            return Ok(());
        }
    };
    let st = state::status(&dir, &s);
    match st {
        Status::Running | Status::Paused if !force => {
            return Err(Error::msg(format!(
                "cannot delete container {id} that is not stopped: {} (use --force)",
                st.as_str()
            )))
        }
        Status::Stopped => {}
        _ => {
            // pid 0 (a create that never got that far) must not reach
            // kill(2): it would signal our own process group.
            if s.pid > 0 {
                let _ = sys_kill(Pid::from_raw(s.pid), Signal::SIGKILL);
            }
            if st == Status::Paused {
                let _ = set_frozen(&s, false);
            }
        }
    }
    if let Some(cg) = &s.cgroup {
        cg.remove().map_err(|e| Error::msg(format!("delete {id}: cgroups: {e}")))?;
    }
    if s.pid != 0 {
        wait_gone(s.pid, s.pid_start);
    }
    if st != Status::Creating {
        if let Ok(spec) = serde_json::from_value::<Spec>(s.config.clone()) {
            if let Ok(h) = Hooks::from_spec(&spec) {
                let hs = HookState::new(&spec, id, &s.bundle.to_string_lossy(), HookStatus::Stopped, Some(s.pid));
                match h.run(HookKind::Poststop, &hs) {
                    Ok(w) => w.iter().for_each(|w| ctx.log.warn(&w.to_string())),
                    Err(e) => ctx.log.warn(&e.to_string()),
                }
            }
        }
    }
    dir.remove();
    Ok(())
}

pub fn ps(ctx: &Ctx, id: &str, format: Format, ps_args: &[String]) -> Result<(), Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let s = dir.load()?;
    let pids: Vec<i32> = s.cgroup.as_ref().map(|c| c.pids()).transpose()?.unwrap_or_default().into_iter().collect();
    if format == Format::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().map_err(|e| Error::msg(format!("ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::msg(format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::msg("ps: no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(())
}

pub fn list(ctx: &Ctx, format: Format, quiet: bool) -> Result<(), Error> {
    let mut rows: Vec<(Saved, Status)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&ctx.root) {
        // Dot entries are the runtime's own (the seccomp cache).
        let mut names: Vec<String> =
            rd.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| !n.starts_with('.')).collect();
        names.sort();
        for n in names {
            let Ok(dir) = Dir::open(&ctx.root, &n) else { continue };
            let Ok(s) = dir.load() else { continue };
            let st = state::status(&dir, &s);
            rows.push((s, st));
        }
    }
    if quiet {
        rows.iter().for_each(|(s, _)| println!("{}", s.id));
        return Ok(());
    }
    if format == Format::Json {
        let v: Vec<_> = rows.iter().map(|(s, st)| state::show(s, *st)).collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let table: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(rows.iter().map(|(s, st)| {
                let pid = if *st == Status::Stopped { 0 } else { s.pid };
                [
                    s.id.clone(),
                    pid.to_string(),
                    st.as_str().into(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
    let mut w = [0usize; 6];
    for r in &table {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    for r in &table {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(())
}

fn set_frozen(s: &Saved, on: bool) -> Result<(), Error> {
    let cg = s.cgroup.as_ref().ok_or_else(|| Error::msg("no cgroup"))?;
    if let Some(d) = cg.dir_of("freezer") {
        let f = d.join("freezer.state");
        let want = if on { "FROZEN" } else { "THAWED" };
        let t = Instant::now();
        loop {
            std::fs::write(&f, want).map_err(|e| Error::io("write", &f, e))?;
            let now = std::fs::read_to_string(&f).map_err(|e| Error::io("read", &f, e))?;
            if now.trim() == want {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(5) {
                return Err(Error::msg(format!("{}: still {} after 5 s", f.display(), now.trim())));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if let Some(d) = cg.unified_dir() {
        let f = d.join("cgroup.freeze");
        if f.exists() {
            return std::fs::write(&f, if on { "1" } else { "0" }).map_err(|e| Error::io("write", &f, e));
        }
    }
    Err(Error::msg("no freezer: neither a v1 freezer hierarchy nor cgroup.freeze on v2"))
}

pub fn freeze(ctx: &Ctx, id: &str, on: bool) -> Result<(), Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let s = dir.load()?;
    let st = state::status(&dir, &s);
    match (on, st) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, _) => return Err(Error::msg(format!("cannot pause container {id}: it is {}", st.as_str()))),
        (false, _) => {
            return Err(Error::msg(format!("cannot resume container {id}: it is {} (not paused)", st.as_str())))
        }
    }
    set_frozen(&s, on).map_err(|e| Error::msg(format!("{} {id}: {}", if on { "pause" } else { "resume" }, e.0)))
}

/// "512m", "1g", "1024" → bytes (-1 stays -1).
fn parse_bytes(s: &str) -> Result<i64, Error> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<i64>().map(|n| if n < 0 { n } else { n * mul }).map_err(|_| Error::msg(format!("invalid size {s:?}")))
}

pub fn update(ctx: &Ctx, id: &str, o: &UpdateOpts) -> Result<(), Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let mut s = dir.load()?;
    let st = state::status(&dir, &s);
    if matches!(st, Status::Stopped | Status::Creating) {
        return Err(Error::msg(format!("cannot update container {id}: it is {}", st.as_str())));
    }
    let mut res: serde_json::Value = match &o.resources {
        Some(p) => {
            let b = if p == Path::new("-") {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                    .map_err(|e| Error::msg(format!("stdin: {e}")))?;
                v
            } else {
                std::fs::read(p).map_err(|e| Error::io("read", p, e))?
            };
            serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: malformed JSON: {e}", p.display())))?
        }
        None => serde_json::json!({}),
    };
    let set = |res: &mut serde_json::Value, a: &str, b: &str, v: serde_json::Value| {
        if !res[a].is_object() {
            res[a] = serde_json::json!({});
        }
        res[a][b] = v;
    };
    if let Some(m) = &o.memory {
        set(&mut res, "memory", "limit", parse_bytes(m)?.into());
    }
    if let Some(m) = &o.memory_reservation {
        set(&mut res, "memory", "reservation", parse_bytes(m)?.into());
    }
    if let Some(m) = &o.memory_swap {
        set(&mut res, "memory", "swap", parse_bytes(m)?.into());
    }
    if let Some(p) = o.pids_limit {
        set(&mut res, "pids", "limit", p.into());
    }
    if let Some(v) = o.cpu_shares {
        set(&mut res, "cpu", "shares", v.into());
    }
    if let Some(v) = o.cpu_quota {
        set(&mut res, "cpu", "quota", v.into());
    }
    if let Some(v) = o.cpu_period {
        set(&mut res, "cpu", "period", v.into());
    }
    if let Some(v) = &o.cpuset_cpus {
        set(&mut res, "cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &o.cpuset_mems {
        set(&mut res, "cpu", "mems", v.clone().into());
    }
    if let Some(v) = o.blkio_weight {
        set(&mut res, "blockIO", "weight", v.into());
    }
    let resources: LinuxResources =
        serde_json::from_value(res.clone()).map_err(|e| Error::msg(format!("resources: {e}")))?;
    let cg = s.cgroup.as_ref().ok_or_else(|| Error::msg(format!("update {id}: the container has no cgroup")))?;
    // The container's cgroup as one path below every hierarchy's root.
    let mut rel: Option<PathBuf> = None;
    for d in &cg.dirs {
        let r = PathBuf::from("/").join(d.path.strip_prefix(&d.mountpoint).unwrap_or(&d.path));
        match &rel {
            None => rel = Some(r),
            Some(x) if *x == r => {}
            Some(x) => {
                return Err(Error::msg(format!(
                    "update {id}: the cgroup is at different paths per hierarchy ({} and {}); not supported",
                    x.display(),
                    r.display()
                )))
            }
        }
    }
    let rel = rel.ok_or_else(|| Error::msg(format!("update {id}: the container has no cgroup")))?;
    let hier = Hierarchies::detect().map_err(|e| Error::msg(format!("cgroups: {e}")))?;
    CgroupPlan::new(Some(&rel), Some(&resources), id)
        .and_then(|p| p.create(&hier))
        .map_err(|e| Error::msg(format!("update {id}: {e}")))?;
    // Keep the config in step (a later exec reads it).
    if let Some(l) = s.config.get_mut("linux") {
        let mut merged = l.get("resources").cloned().unwrap_or_else(|| serde_json::json!({}));
        if let (Some(m), Some(n)) = (merged.as_object_mut(), res.as_object()) {
            for (k, v) in n {
                match (m.get_mut(k).and_then(|x| x.as_object_mut()), v.as_object()) {
                    (Some(mo), Some(vo)) => vo.iter().for_each(|(a, b)| {
                        mo.insert(a.clone(), b.clone());
                    }),
                    _ => {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        l["resources"] = merged;
    }
    dir.save(&s)?;
    Ok(())
}

pub fn features() -> Result<(), Error> {
    let extra = nsboot_oci::features::Contributions {
        seccomp: Some(serde_json::json!({
            "enabled": true,
            "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                        "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
            "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
            "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
            "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
        })),
        cgroup: Some(
            serde_json::json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false}),
        ),
        annotations: vec![("org.opencontainers.runc.checkpoint.enabled".into(), "false".into())],
    };
    println!("{}", nsboot_oci::features::features_json(&extra));
    Ok(())
}

pub fn spec(bundle: &Path, rootless: bool) -> Result<(), Error> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::msg(format!("{} exists: remove it first", path.display())));
    }
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        serde_json::json!({"type": "pid"}),
        serde_json::json!({"type": "ipc"}),
        serde_json::json!({"type": "uts"}),
        serde_json::json!({"type": "mount"}),
        serde_json::json!({"type": "cgroup"}),
    ];
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut linux = serde_json::json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if rootless {
        namespaces.retain(|n| n["type"] != "cgroup");
        namespaces.push(serde_json::json!({"type": "user"}));
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux.as_object_mut().map(|l| l.remove("resources"));
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/sys");
        mounts.push(serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
        for m in &mut mounts {
            if let Some(o) = m["options"].as_array_mut() {
                o.retain(|x| x != "gid=5");
            }
        }
    } else {
        namespaces.insert(1, serde_json::json!({"type": "network"}));
    }
    linux["namespaces"] = serde_json::json!(namespaces);
    let doc = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": mounts,
        "linux": linux
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n").map_err(|e| Error::io("write", &path, e))
}
