//! `ps`, `logs`, `stop`, `rm`: work on the records in the state root.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::state::{self, Record, Status};
use crate::{Fail, Result};

fn ago(secs: u64) -> String {
    let d = state::now().saturating_sub(secs);
    match d {
        0..=1 => "Less than a second".to_owned(),
        2..=59 => format!("{d} seconds"),
        60..=3599 => format!("{} minutes", d / 60),
        3600..=172_799 => format!("{} hours", d / 3600),
        _ => format!("{} days", d / 86400),
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

pub fn ps(all: bool, quiet: bool) -> Result<i32> {
    let root = state::root()?;
    let rows: Vec<Record> = state::list(&root).into_iter().map(|(_, r)| r).filter(|r| all || state::is_running(r)).collect();
    if quiet {
        for r in rows {
            println!("{}", r.name);
        }
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

pub fn logs(name: &str) -> Result<i32> {
    let root = state::root()?;
    let (dir, rec) = state::load(&root, name)?;
    if !rec.detached {
        return Err(Fail::new(1, format!("container {name} has no log: its output went to the terminal (not started with -d)")));
    }
    let mut f = std::fs::File::open(dir.join("ctr.log")).map_err(|e| Fail::new(1, format!("open the log of {name}: {e}")))?;
    std::io::copy(&mut f, &mut std::io::stdout().lock()).map_err(|e| Fail::new(1, format!("print the log: {e}")))?;
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

pub fn stop(timeout: u64, names: &[String]) -> Result<i32> {
    let root = state::root()?;
    let mut status = 0;
    for name in names {
        match state::load(&root, name) {
            Ok((dir, rec)) => {
                if state::is_running(&rec) {
                    kill_and_wait(&dir, &rec, timeout);
                }
                println!("{name}");
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
            return Err(Fail::new(1, format!("cannot remove running container {name}: stop it first or use rm -f")));
        }
        let _ = kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
        wait_dead(&rec, Duration::from_secs(10));
    }
    state::remove_dir(&dir).map_err(|e| Fail::new(1, format!("remove {}: {e}", dir.display())))
}
