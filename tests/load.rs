//! Load (issue #6, item 5): many bootstraps with rootfs preparation, in
//! sequence and concurrently, with zero failures and nothing left behind
//! (processes, mounts, fds of the caller, its children, state entries), and
//! a caller whose memory stays flat.
//!
//! Two drivers:
//! - `c_api_in_one_process`: tests/c/load.c, ONE long-lived process calling
//!   `nsboot_spawn` over and over from 1..N threads (a runtime daemon's
//!   situation): its failures, open fds before/after, unreaped children,
//!   VmRSS after the first tenth of the runs and at half;
//! - `command_per_container`: any command that runs one container, started
//!   N times in sequence and at concurrency 1, 2, 8 (and 100 at once). The
//!   default command is the C caller (tests/c/spawn.c --rootfs); plug in
//!   another runtime, e.g. nsrun, with
//!   `NSBOOT_LOAD_CMD='target/debug/examples/nsrun run ... true'`
//!   (run through `sh -c`; `$NSBOOT_TEST_LOAD_MARK` is set in its environment
//!   and should end up in the container's command line or environment),
//!   and `NSBOOT_LOAD_STATE_DIR=<dir>` to require that directory (e.g.
//!   nsrun's state root) to hold the same entries before and after.
//!
//! Sizes (defaults keep `make test` short): `NSBOOT_LOAD_SEQ` (100),
//! `NSBOOT_LOAD_SCALE` (48 containers per concurrency level),
//! `NSBOOT_LOAD_CONC` (100 at once). The long run is
//! `NSBOOT_LOAD_SEQ=1000 cargo test --release --test load -- --nocapture
//! --test-threads=1` (`make load`); results in BENCHMARKS.md §5.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Processes carrying `mark` in their command line or environment.
fn marked(mark: &str) -> Vec<i32> {
    let mut out = processes_with(mark);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 || out.contains(&pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == format!("NSBOOT_TEST_LOAD_MARK={mark}").as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

fn state_entries() -> Option<(PathBuf, Vec<String>)> {
    let dir = PathBuf::from(std::env::var_os("NSBOOT_LOAD_STATE_DIR")?);
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    Some((dir, v))
}

fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bundle() -> Option<TestDir> {
    busybox_bundle("load", false)
}

// ---- C API, one long-lived caller -----------------------------------------

fn run_load_c(dir: &Path, runs: usize, threads: usize, mark: &str) -> serde_json::Value {
    let load = c_program("load", &["-pthread"]);
    let (_, probe) = c_programs();
    let mut cmd = Command::new(load);
    cmd.args(["-n", &runs.to_string(), "-c", &threads.to_string(), "--ns", "mnt,pid,uts,ipc,net", "--rootfs"])
        .arg(dir.join("config.json"))
        .arg("--bundle")
        .arg(dir)
        .arg("--")
        .arg(probe)
        .args(["/bin/sh", "-c", "true", mark]);
    let o = run_with_timeout(cmd, Duration::from_secs(600));
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("load.c output {out:?} ({e}); stderr {}", stderr(&o)));
    assert!(o.status.success(), "load.c: {v}\n{}", stderr(&o));
    v
}

#[test]
fn c_api_in_one_process() {
    require_root!();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(dir) = bundle() else { return };
    let mark = marker("load-c");
    let mounts = OwnMounts::new(&[dir.path()]);
    let seq = env_usize("NSBOOT_LOAD_SEQ", 100);
    let scale = env_usize("NSBOOT_LOAD_SCALE", 48);
    let conc = env_usize("NSBOOT_LOAD_CONC", 100);
    let mut rows = Vec::new();
    let mut check = |v: serde_json::Value, what: &str| {
        assert_eq!(v["failures"], 0, "{what}: {v}");
        assert_eq!(v["fds_before"], v["fds_after"], "{what}: the caller leaked fds: {v}");
        assert_eq!(v["unreaped_children"], 0, "{what}: {v}");
        assert!(wait_gone(&mark, Duration::from_secs(2)).is_empty(), "{what}: processes left");
        mounts.assert_unchanged(what);
        eprintln!("load.c {what}: {v}");
        rows.push(v);
    };
    let v = run_load_c(&dir, seq, 1, &mark);
    // Memory flat: between the first tenth and half of the runs the
    // caller's RSS may not grow by more than 256 kB.
    let growth = v["rss_kb_half"].as_i64().unwrap() - v["rss_kb_tenth"].as_i64().unwrap();
    assert!(growth <= 256, "caller RSS grew by {growth} kB over {} runs: {v}", seq * 4 / 10);
    check(v, &format!("{seq} sequential"));
    for threads in [1, 2, 8] {
        let v = run_load_c(&dir, scale, threads, &mark);
        check(v, &format!("{scale} at concurrency {threads}"));
    }
    let v = run_load_c(&dir, conc, conc, &mark);
    check(v, &format!("{conc} at once"));
}

// ---- any command, one process per container -------------------------------

struct Driver {
    cmd: String,
    mark: String,
}

impl Driver {
    /// Run the command `n` times with `k` workers; (failures, seconds, the
    /// first failure's output).
    fn run(&self, n: usize, k: usize) -> (usize, f64, Option<String>) {
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let first = Arc::new(Mutex::new(None));
        let t = Instant::now();
        let workers: Vec<_> = (0..k)
            .map(|_| {
                let (next, failures, first) = (next.clone(), failures.clone(), first.clone());
                let (cmd, mark) = (self.cmd.clone(), self.mark.clone());
                std::thread::spawn(move || {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let mut c = Command::new("sh");
                        c.args(["-c", &cmd]).env("NSBOOT_TEST_LOAD_MARK", &mark);
                        // This suite's settings are not the command's: a
                        // command preloading libnsboot would refuse them as
                        // unknown NSBOOT_* names (NSBOOT_TEST_* are allowed).
                        for (k, _) in std::env::vars_os() {
                            if k.to_string_lossy().starts_with("NSBOOT_LOAD_") {
                                c.env_remove(k);
                            }
                        }
                        let o = run_with_timeout(c, Duration::from_secs(120));
                        if !o.status.success() {
                            failures.fetch_add(1, Ordering::Relaxed);
                            let mut f = first.lock().unwrap();
                            if f.is_none() {
                                *f = Some(format!("{:?}: {}{}", o.status, stdout(&o), stderr(&o)));
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let f = first.lock().unwrap().take();
        (failures.load(Ordering::Relaxed), secs, f)
    }
}

fn default_command(dir: &Path) -> String {
    let (spawn, probe) = c_programs();
    format!(
        "exec {} --ns mnt,pid,uts,ipc,net --rootfs {} --bundle {} -- {} /bin/sh -c true \"$NSBOOT_TEST_LOAD_MARK\"",
        spawn.display(),
        dir.join("config.json").display(),
        dir.display(),
        probe.display()
    )
}

#[test]
fn command_per_container() {
    require_root!();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let custom = std::env::var("NSBOOT_LOAD_CMD").ok();
    let dir = if custom.is_none() { bundle() } else { None };
    let cmd = match (&custom, &dir) {
        (Some(c), _) => c.clone(),
        (None, Some(d)) => default_command(d),
        (None, None) => return,
    };
    let drv = Driver { cmd, mark: marker("load-cmd") };
    let mounts = OwnMounts::new(&dir.as_deref().into_iter().collect::<Vec<_>>());
    let state = state_entries();
    let fds = inheritable_fds();
    let mem0 = mem_available_kb();
    let rss0 = vm_rss_kb(std::process::id());
    let seq = env_usize("NSBOOT_LOAD_SEQ", 100);
    let scale = env_usize("NSBOOT_LOAD_SCALE", 48);
    let conc = env_usize("NSBOOT_LOAD_CONC", 100);
    let leaks = |what: &str| {
        let left = {
            let t = Instant::now();
            loop {
                let l = marked(&drv.mark);
                if l.is_empty() || t.elapsed() > Duration::from_secs(2) {
                    break l;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(left.is_empty(), "{what}: processes left: {left:?}");
        mounts.assert_unchanged(what);
        if let Some((d, before)) = &state {
            assert_eq!(Some((d.clone(), before.clone())), state_entries(), "{what}: state entries left in {d:?}");
        }
        assert_eq!(fds, inheritable_fds(), "{what}: the driver's fds changed");
    };
    let mut table = vec![format!("command: {}", drv.cmd)];
    let (f, secs, first) = drv.run(seq, 1);
    assert_eq!(f, 0, "{seq} sequential: {f} failures; first: {first:?}");
    leaks("sequential");
    table.push(format!("{seq} sequential: {secs:.2} s, {:.1} containers/s", seq as f64 / secs));
    for k in [1, 2, 8] {
        let (f, secs, first) = drv.run(scale, k);
        assert_eq!(f, 0, "concurrency {k}: {f} failures; first: {first:?}");
        leaks(&format!("concurrency {k}"));
        table.push(format!("concurrency {k}: {scale} in {secs:.2} s, {:.1} containers/s", scale as f64 / secs));
    }
    let (f, secs, first) = drv.run(conc, conc);
    assert_eq!(f, 0, "{conc} at once: {f} failures; first: {first:?}");
    leaks("all at once");
    table.push(format!("{conc} at once: {secs:.2} s, {:.1} containers/s", conc as f64 / secs));
    table.push(format!(
        "driver VmRSS {rss0} -> {} kB; host MemAvailable {mem0} -> {} kB",
        vm_rss_kb(std::process::id()),
        mem_available_kb()
    ));
    eprintln!("{}", table.join("\n"));
}
