//! `kill`, `wait`, `start`, `restart`, `inspect`, `top`, `stats`, `prune`:
//! the docker lifecycle commands, over the records in the state root.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::state::{self, Record, Status};
use crate::{Fail, Result};

/// Run `f` on each container; the last failure's status (docker's rule:
/// go on with the others, report each failure on its own line).
fn each(names: &[String], mut f: impl FnMut(&Path, &Path, Record, &str) -> Result<()>) -> Result<i32> {
    let root = state::root()?;
    let mut status = 0;
    for name in names {
        let r = state::load(&root, name).and_then(|(dir, rec)| f(&root, &dir, rec, name));
        if let Err(e) = r {
            eprintln!("nsrun: {}", e.msg.replace('\n', " "));
            status = e.code;
        }
    }
    Ok(status)
}

/// `SIGTERM`, `TERM`, `term`, `15` → the signal.
pub fn parse_signal(s: &str) -> std::result::Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("invalid signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    full.parse::<Signal>().map_err(|_| format!("invalid signal {s:?}"))
}

pub fn kill_cmd(signal: Signal, names: &[String]) -> Result<i32> {
    each(names, |_, _, rec, name| {
        if !state::is_running(&rec) {
            return Err(Fail::new(125, format!("cannot kill container {name}: it is not running")));
        }
        kill(Pid::from_raw(rec.pid), signal).map_err(|e| Fail::new(125, format!("kill {name}: {e}")))?;
        println!("{name}");
        Ok(())
    })
}

/// Block until each container has stopped; print its exit code.
pub fn wait(names: &[String]) -> Result<i32> {
    each(names, |_, dir, _, name| loop {
        let rec = state::read(dir).ok_or_else(|| Fail::new(125, format!("container {name} was removed while waiting")))?;
        match rec.status {
            Status::Exited => {
                println!("{}", rec.exit_code.unwrap_or(-1));
                return Ok(());
            }
            // PID 1 and its supervisor both gone without a record.
            Status::Running if !state::is_running(&rec) && !state::same_process(rec.supervisor, 0) && std::fs::metadata(format!("/proc/{}", rec.supervisor)).is_err() => {
                println!("-1");
                return Ok(());
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    })
}

/// `start`: run a stopped container again, detached, with the command
/// line it was created with (its write layer kept).
pub fn start(names: &[String]) -> Result<i32> {
    each(names, |root, dir, rec, name| {
        if state::is_running(&rec) {
            println!("{name}");
            return Ok(());
        }
        if rec.args.is_empty() {
            return Err(Fail::new(125, format!("container {name} was made by an older nsrun: it cannot be started again")));
        }
        let crate::cli::Cmd::Run(mut o) = crate::cli::parse(&rec.args)? else {
            return Err(Fail::new(125, format!("container {name}: bad recorded command line")));
        };
        o.detach = true;
        o.interactive = false;
        o.tty = false;
        crate::run::restart(root, dir, &rec, *o)
    })
}

pub fn restart(timeout: u64, names: &[String]) -> Result<i32> {
    let s = crate::ops::stop_quiet(timeout, names)?;
    if s != 0 {
        return Ok(s);
    }
    start(names)
}

pub fn inspect(names: &[String]) -> Result<i32> {
    let mut out = Vec::new();
    let status = each(names, |_, dir, rec, _| {
        let spec: Value = std::fs::read(dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
        let running = state::is_running(&rec);
        out.push(json!({
            "Id": rec.id,
            "Name": rec.name,
            "Created": rec.created,
            "Image": rec.image,
            "ImageId": rec.image_id,
            "State": {
                "Status": if running { "running" } else { match rec.status { Status::Created => "created", _ => "exited" } },
                "Running": running,
                "Pid": if running { rec.pid } else { 0 },
                "ExitCode": rec.exit_code,
                "FinishedAt": rec.finished,
            },
            "Config": {
                "Cmd": rec.command,
                "Env": rec.env,
                "WorkingDir": rec.cwd,
                "User": spec.pointer("/process/user"),
                "Hostname": spec.get("hostname"),
            },
            "HostConfig": {
                "AutoRemove": rec.auto_remove,
                "Capabilities": spec.pointer("/process/capabilities/bounding"),
                "NoNewPrivileges": spec.pointer("/process/noNewPrivileges"),
                "Seccomp": spec.pointer("/linux/seccomp").map(|_| "default-or-file").unwrap_or("unconfined"),
                "ReadonlyRootfs": spec.pointer("/root/readonly"),
                "Rlimits": spec.pointer("/process/rlimits"),
            },
            "Mounts": spec.get("mounts"),
            "Namespaces": spec.pointer("/linux/namespaces"),
            "Cgroup": rec.cgroup.as_ref().map(|c| c.dirs.iter().map(|d| d.path.clone()).collect::<Vec<_>>()),
            "Network": if spec.pointer("/linux/namespaces").and_then(Value::as_array).is_some_and(|a| a.iter().any(|n| n["type"] == "network")) { "none" } else { "host" },
            "LogPath": if rec.detached { Some(dir.join("ctr.log")) } else { None },
        }));
        Ok(())
    })?;
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(status)
}

/// Processes whose pid namespace is the container's.
fn members(rec: &Record) -> Vec<i32> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", rec.pid)) else { return Vec::new() };
    let mut v: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == ns))
        .collect();
    v.sort();
    v
}

pub fn top(name: &str) -> Result<i32> {
    let root = state::root()?;
    let (_, rec) = state::load(&root, name)?;
    if !state::is_running(&rec) {
        return Err(Fail::new(125, format!("container {name} is not running")));
    }
    println!("{:<8} {:<8} {:<6} CMD", "PID", "UID", "STAT");
    for p in members(&rec) {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().to_owned();
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()).unwrap_or("?").to_owned();
        let st = state::proc_stat(p).map(|(s, _)| s).unwrap_or('?');
        println!("{:<8} {:<8} {:<6} {}", p, uid, st, cmd);
    }
    Ok(0)
}

fn read_num(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `stats`: CPU time, memory use and limit, pids from the cgroup files.
pub fn stats(no_stream: bool, names: &[String]) -> Result<i32> {
    let root = state::root()?;
    loop {
        let recs: Vec<Record> = if names.is_empty() {
            state::list(&root).into_iter().map(|(_, r)| r).filter(state::is_running).collect()
        } else {
            names.iter().map(|n| state::load(&root, n).map(|(_, r)| r)).collect::<Result<_>>()?
        };
        println!("{:<20} {:>12} {:>22} {:>6}", "NAME", "CPU TIME", "MEM USAGE / LIMIT", "PIDS");
        for r in recs {
            let cg = r.cgroup.as_ref();
            let dir = |c: &str| cg.and_then(|g| g.dir_of(c)).map(Path::to_path_buf);
            let cpu = dir("cpuacct").and_then(|d| read_num(&d.join("cpuacct.usage")));
            let mem = dir("memory").and_then(|d| read_num(&d.join("memory.usage_in_bytes")).or_else(|| read_num(&d.join("memory.current"))));
            let lim = dir("memory").and_then(|d| read_num(&d.join("memory.limit_in_bytes")).or_else(|| read_num(&d.join("memory.max"))));
            let pids = dir("pids").and_then(|d| read_num(&d.join("pids.current")));
            let mb = |b: Option<u64>| b.map(|b| if b > 1 << 50 { "unlimited".to_owned() } else { format!("{:.1}MiB", b as f64 / 1048576.0) }).unwrap_or("-".into());
            println!(
                "{:<20} {:>12} {:>22} {:>6}",
                r.name,
                cpu.map(|n| format!("{:.3}s", n as f64 / 1e9)).unwrap_or("-".into()),
                format!("{} / {}", mb(mem), mb(lim)),
                pids.map(|n| n.to_string()).unwrap_or("-".into())
            );
        }
        if no_stream {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Remove every stopped container.
pub fn prune() -> Result<i32> {
    let root = state::root()?;
    for (dir, rec) in state::list(&root) {
        if state::is_running(&rec) || (rec.status == Status::Running && state::same_process(rec.supervisor, 0)) {
            continue;
        }
        rec.cgroup.as_ref().map(crate::limits::remove);
        if let Some(a) = &rec.network {
            crate::net::release(&root, a);
        }
        if state::remove_dir(&dir).is_ok() {
            println!("{}", rec.name);
        }
    }
    Ok(0)
}
