//! `ps`, `logs`, `stop`, `rm`: work on the records in the state root.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::state::{self, Record, Status};
use crate::{Fail, Result};

fn ago(secs: u64) -> String {
    since(state::now().saturating_sub(secs))
}

/// `d` seconds as docker says it: "Less than a second", "1 minute",
/// "5 minutes", "About an hour", ...
fn since(d: u64) -> String {
    let unit = |n: u64, one: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") };
    match d {
        0 => "Less than a second".to_owned(),
        1..=59 => unit(d, "second"),
        60..=3599 => unit(d / 60, "minute"),
        3600..=7199 => "About an hour".to_owned(),
        7200..=172_799 => unit(d / 3600, "hour"),
        _ => unit(d / 86400, "day"),
    }
}


fn status_text(rec: &Record) -> String {
    if state::is_running(rec) {
        return format!("Up {}", ago(rec.created));
    }
    match (rec.status, rec.exit_code) {
        (Status::Created, _) => "Created".to_owned(),
        (_, Some(c)) => format!("Exited ({c}) {} ago", ago(rec.finished.unwrap_or(rec.created))),
        // PID 1 is gone but nobody recorded how it ended (its nsrun was killed).
        _ => "Exited (unknown)".to_owned(),
    }
}

/// A container as `ps --format` sees it.
fn ps_fields(r: &Record) -> Vec<(&'static str, String)> {
    let running = state::is_running(r);
    vec![
        ("Name", r.name.clone()),
        ("Names", r.name.clone()),
        ("ID", r.id[..12].to_owned()),
        ("Image", r.image.clone()),
        ("Command", format!("{:?}", r.command.join(" "))),
        ("Status", status_text(r)),
        ("State", if running { "running" } else if r.status == Status::Created { "created" } else { "exited" }.to_owned()),
        ("Pid", if running { r.pid.to_string() } else { "-".to_owned() }),
        ("CreatedAt", r.created.to_string()),
        ("RunningFor", format!("{} ago", ago(r.created))),
    ]
}

/// `json`: one object per line; else a template where `{{.Field}}` is
/// replaced (`\t` and `\n` as docker reads them); `table ...` adds a header.
fn ps_format(rows: &[Record], fmt: &str) -> Result<()> {
    if fmt == "json" || fmt == "{{json .}}" {
        for r in rows {
            let o: serde_json::Map<String, serde_json::Value> = ps_fields(r).into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
            println!("{}", serde_json::Value::Object(o));
        }
        return Ok(());
    }
    let (table, tpl) = match fmt.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, fmt),
    };
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let render = |lookup: &dyn Fn(&str) -> Option<String>| -> Result<String> {
        let mut out = String::new();
        let mut rest = tpl.as_str();
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let j = rest[i..].find("}}").ok_or_else(|| Fail::new(125, format!("invalid --format {fmt:?}: unclosed {{{{")))? + i;
            let key = rest[i + 2..j].trim();
            let field = key.strip_prefix('.').ok_or_else(|| Fail::new(125, format!("invalid --format {fmt:?}: {key:?} is not a field")))?;
            out.push_str(&lookup(field).ok_or_else(|| Fail::new(125, format!("invalid --format {fmt:?}: no field {field:?}")))?);
            rest = &rest[j + 2..];
        }
        out.push_str(rest);
        Ok(out)
    };
    if table {
        println!("{}", render(&|f| Some(f.to_ascii_uppercase()))?);
    }
    for r in rows {
        let fields = ps_fields(r);
        println!("{}", render(&|f| fields.iter().find(|(k, _)| *k == f).map(|(_, v)| v.clone()))?);
    }
    Ok(())
}

pub fn ps(all: bool, quiet: bool, format: Option<&str>) -> Result<i32> {
    let root = state::root()?;
    let rows: Vec<Record> = state::list(&root).into_iter().map(|(_, r)| r).filter(|r| all || state::is_running(r)).collect();
    if quiet {
        for r in rows {
            println!("{}", r.name);
        }
        return Ok(0);
    }
    if let Some(f) = format {
        ps_format(&rows, f)?;
        return Ok(0);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let pid = if state::is_running(r) { r.pid.to_string() } else { "-".to_owned() };
            let mut cmd = r.command.join(" ");
            if cmd.chars().count() > 40 {
                cmd = cmd.chars().take(39).collect::<String>() + "…";
            }
            [r.name.clone(), pid, status_text(r), format!("{} ago", ago(r.created)), format!("{cmd:?}")]
        })
        .collect();
    let head = ["NAME", "PID", "STATUS", "CREATED", "COMMAND"].map(str::to_owned);
    let mut w = [0usize; 5];
    for row in std::iter::once(&head).chain(&table) {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&table) {
        println!("{:<w0$}   {:<w1$}   {:<w2$}   {:<w3$}   {}", row[0], row[1], row[2], row[3], row[4], w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3]);
    }
    Ok(0)
}

pub fn logs(name: &str, follow: bool, tail: Option<usize>) -> Result<i32> {
    let root = state::root()?;
    let (dir, rec) = state::load(&root, name)?;
    if !rec.detached {
        return Err(Fail::new(125, format!("container {name} has no log: its output went to the terminal (not started with -d)")));
    }
    use std::io::{Read, Seek, Write};
    let mut f = std::fs::File::open(dir.join("ctr.log")).map_err(|e| Fail::new(125, format!("open the log of {name}: {e}")))?;
    let mut out = std::io::stdout().lock();
    if let Some(n) = tail {
        let mut all = Vec::new();
        f.read_to_end(&mut all).map_err(|e| Fail::new(125, format!("read the log: {e}")))?;
        let body = all.strip_suffix(b"\n").unwrap_or(&all);
        let start = if n == 0 { body.len() } else { body.iter().enumerate().rev().filter(|(_, b)| **b == b'\n').nth(n - 1).map_or(0, |(i, _)| i + 1) };
        let _ = out.write_all(&all[start.min(all.len())..]);
    } else {
        std::io::copy(&mut f, &mut out).map_err(|e| Fail::new(125, format!("print the log: {e}")))?;
    }
    let _ = out.flush();
    if !follow {
        return Ok(0);
    }
    loop {
        // Whatever was written since, until the container has stopped
        // (then one last read for its final output).
        let alive = state::read(&dir).is_some_and(|r| state::is_running(&r));
        let pos = f.stream_position().unwrap_or(0);
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        if !buf.is_empty() {
            let _ = out.write_all(&buf);
            let _ = out.flush();
        } else {
            let _ = f.seek(std::io::SeekFrom::Start(pos));
        }
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(0)
}

/// Wait up to `limit` for the container's PID 1 to be gone (or a zombie).
fn wait_dead(rec: &Record, limit: Duration) -> bool {
    let t = Instant::now();
    loop {
        if !state::is_running(rec) {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After PID 1 died: give its supervisor a moment to record the exit, and
/// record it ourselves if the supervisor is gone too.
fn settle(dir: &Path, rec: &Record, code: i32) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        match state::read(dir) {
            Some(r) if r.status == Status::Running && r.pid == rec.pid => {}
            _ => return,
        }
        if !state::same_process(rec.supervisor, 0) && std::fs::metadata(format!("/proc/{}", rec.supervisor)).is_err() {
            let mut r = rec.clone();
            r.status = Status::Exited;
            r.exit_code = Some(code);
            r.finished = Some(state::now());
            let _ = state::save(dir, &r);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill_and_wait(dir: &Path, rec: &Record, timeout: u64) {
    let pid = Pid::from_raw(rec.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let mut code = 128 + Signal::SIGTERM as i32;
    if !wait_dead(rec, Duration::from_secs(timeout)) {
        let _ = kill(pid, Signal::SIGKILL);
        code = 128 + Signal::SIGKILL as i32;
        wait_dead(rec, Duration::from_secs(10));
    }
    settle(dir, rec, code);
}

/// `stop` without printing the names (for `restart`).
pub fn stop_quiet(timeout: u64, names: &[String]) -> Result<i32> {
    stop_inner(timeout, names, false)
}

pub fn stop(timeout: u64, names: &[String]) -> Result<i32> {
    stop_inner(timeout, names, true)
}

fn stop_inner(timeout: u64, names: &[String], print: bool) -> Result<i32> {
    let root = state::root()?;
    let mut status = 0;
    for name in names {
        match state::load(&root, name) {
            Ok((dir, rec)) => {
                if state::is_running(&rec) {
                    kill_and_wait(&dir, &rec, timeout);
                }
                if print {
                    println!("{name}");
                }
            }
            Err(e) => {
                eprintln!("nsrun: {}", e.msg);
                status = e.code;
            }
        }
    }
    Ok(status)
}

pub fn rm(force: bool, names: &[String]) -> Result<i32> {
    let root = state::root()?;
    let mut status = 0;
    for name in names {
        let r = rm_one(&root, force, name);
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("nsrun: {}", e.msg);
                status = e.code;
            }
        }
    }
    Ok(status)
}

fn rm_one(root: &Path, force: bool, name: &str) -> Result<()> {
    let (dir, rec) = state::load(root, name)?;
    if state::is_running(&rec) {
        if !force {
            return Err(Fail::new(125, format!("cannot remove running container {name}: stop it first or use rm -f")));
        }
        let _ = kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
        wait_dead(&rec, Duration::from_secs(10));
    }
    // Its supervisor removes it too; whoever is first (removal is idempotent).
    rec.cgroup.as_ref().map(crate::limits::remove);
    if let Some(a) = &rec.network {
        crate::net::release(root, a);
    }
    state::remove_dir(&dir).map_err(|e| Fail::new(125, format!("remove {}: {e}", dir.display())))
}

/// Bytes under `p` (files and symlinks, not following them).
pub fn disk_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| disk_size(&e.path())).sum()
}

fn human(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes}B"),
        1000..=999_999 => format!("{:.1}kB", bytes as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}MB", bytes as f64 / 1e6),
        _ => format!("{:.2}GB", bytes as f64 / 1e9),
    }
}

/// Containers (by name) whose write layer sits on image `id`.
fn image_users(root: &Path, id: &str) -> Vec<String> {
    state::list(root).into_iter().filter(|(_, r)| r.image_id.as_deref() == Some(id)).map(|(_, r)| r.name).collect()
}

pub fn images() -> Result<i32> {
    let root = state::root()?;
    let store = crate::images::Store::open(&root);
    let mut rows: Vec<[String; 5]> = Vec::new();
    for img in store.all() {
        let size = human(store.size(&img));
        let users = image_users(&root, &img.id).len().to_string();
        let names = store.names_of(&img.id);
        let names = if names.is_empty() { vec!["<none>:<none>".to_owned()] } else { names };
        for n in names {
            let (repo, tag) = n.rsplit_once(':').unwrap_or((&n, ""));
            rows.push([repo.to_owned(), tag.to_owned(), img.id[..12].to_owned(), size.clone(), users.clone()]);
        }
    }
    // The archives `run --image TAR` unpacked.
    for (id, dir) in crate::image::cached(&root) {
        let source = std::fs::read_to_string(crate::image::source_file(&dir)).unwrap_or_else(|_| "?".to_owned());
        rows.push([source, "<archive>".to_owned(), id.clone(), human(disk_size(&dir)), image_users(&root, &id).len().to_string()]);
    }
    let head = ["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CONTAINERS"].map(str::to_owned);
    let mut w = [0usize; 4];
    for row in std::iter::once(&head).chain(&rows) {
        for (i, c) in row.iter().take(4).enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&rows) {
        println!("{:<w0$}   {:<w1$}   {:<w2$}   {:<w3$}   {}", row[0], row[1], row[2], row[3], row[4], w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3]);
    }
    Ok(0)
}

pub fn rmi(names: &[String]) -> Result<i32> {
    let root = state::root()?;
    let mut status = 0;
    for name in names {
        match rmi_one(&root, name) {
            Ok(id) => println!("{id}"),
            Err(e) => {
                eprintln!("nsrun: {}", e.msg);
                status = e.code;
            }
        }
    }
    Ok(status)
}

fn rmi_one(root: &Path, name: &str) -> Result<String> {
    let store = crate::images::Store::open(root);
    if store.lookup(name).is_some() {
        return store.remove(name, |id| image_users(root, id));
    }
    let by_path = std::fs::canonicalize(name).ok().map(|p| p.into_os_string());
    let (id, dir) = crate::image::cached(root)
        .into_iter()
        .find(|(id, dir)| {
            id == name
                || by_path.as_ref().is_some_and(|p| {
                    std::fs::read(crate::image::source_file(dir)).is_ok_and(|s| s == p.as_encoded_bytes())
                })
        })
        .ok_or_else(|| Fail::new(125, format!("no such image: {name}")))?;
    let users = image_users(root, &id);
    if !users.is_empty() {
        return Err(Fail::new(125, format!("image {id} is used by container {}: remove it first (nsrun rm)", users.join(", "))));
    }
    state::remove_dir(&dir).map_err(|e| Fail::new(125, format!("remove {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(crate::image::source_file(&dir));
    Ok(id)
}
