//! The two caller dialects, end to end, with real processes.
//!
//! The Rust test itself plays runc's Go side exactly (`Player`): the
//! environment `runc init` gets from libcontainer's `newParentProcess`
//! (runc ≥ 1.2: `_LIBCONTAINER_SYNCPIPE` included, no `NSBOOT_DIALECT`) or
//! `commandTemplate` (runc 1.1.5), the fds at the numbers runc gives them,
//! the message written at once (≥ 1.2) or after the `\0` (1.1), the pid JSON
//! read straight off the socket by a strict decoder (`deny_unknown_fields`,
//! like runc's `json.NewDecoder(...).Decode`, which a stray byte breaks),
//! every log line decoded strictly too. The host program is
//! `tests/c/probe.c` (libnsboot's constructor runs the stages).

mod common;

use common::*;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{self, BootstrapConfig, Clock, Dialect, TimeOffset};

// ---------------------------------------------------------------------------
// The caller player.

/// Which runc's Go side to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// runc 1.1.5: `\0` first; env without `_LIBCONTAINER_SYNCPIPE`.
    Runc11,
    /// runc 1.2–1.5: no leading byte; `_LIBCONTAINER_SYNCPIPE` set.
    Runc12,
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Pids {
    stage1_pid: i32,
    stage2_pid: i32,
}

#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct LogLine {
    level: String,
    msg: String,
}

#[derive(Debug)]
struct Played {
    /// stage-0's exit code (None: killed).
    stage0: Option<i32>,
    /// The first byte on the init socket, when the caller is runc 1.1.
    setup_byte: Option<u8>,
    /// The pid JSON, decoded strictly; `Err` = what the decoder said.
    pids: Result<(i32, i32), String>,
    /// stage-2's (the program's) exit status.
    init_status: Option<i32>,
    stdout: String,
    stderr: String,
    log: Vec<LogLine>,
}

impl Played {
    fn ok(&self) -> &Self {
        assert_eq!(self.stage0, Some(0), "stage-0 failed: {self:#?}");
        assert!(self.pids.is_ok(), "no pid JSON: {self:#?}");
        assert_eq!(self.init_status, Some(0), "the program inside failed: {self:#?}");
        self
    }

    fn fatal(&self) -> String {
        self.log.iter().filter(|l| l.level == "fatal").map(|l| l.msg.clone()).collect::<Vec<_>>().join("\n")
    }

    fn has_log(&self, needle: &str) -> bool {
        self.log.iter().any(|l| l.msg.contains(needle))
    }

    /// A refused bootstrap: exit 1, no pid JSON, a fatal line with `needles`.
    fn refused(&self, needles: &[&str]) {
        assert_eq!(self.stage0, Some(1), "stage-0 should exit 1: {self:#?}");
        assert!(self.pids.is_err(), "no pid JSON expected: {self:#?}");
        let f = self.fatal();
        for n in needles {
            assert!(f.contains(n), "fatal line lacks {n:?}: {f:?}\n{self:#?}");
        }
    }
}

fn cloexec_pair(ty: SockType) -> (OwnedFd, OwnedFd) {
    socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC).expect("socketpair")
}

fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

fn read_all_thread(fd: OwnedFd) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut v = Vec::new();
        let _ = f.read_to_end(&mut v);
        v
    })
}

/// Reap `pid`; its status as a shell would say it.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Some(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Some(128 + s as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Play `caller`: start `probe ARGS` the way runc starts `runc init`, send
/// `msg`, read the pids, wait for everything. `extra_env` is added after
/// runc's own variables.
fn play(caller: Caller, extra_env: &[(&str, &str)], msg: &[u8], args: &[&str]) -> Played {
    play_program(&c_programs().1, caller, extra_env, msg, args)
}

/// [`play`] with another host program than the probe.
fn play_program(probe: &std::path::Path, caller: Caller, extra_env: &[(&str, &str)], msg: &[u8], args: &[&str]) -> Played {
    let (init_parent, init_child) = cloexec_pair(SockType::Stream);
    // runc >= 1.2's sync socket is SOCK_SEQPACKET; nsexec never touches it.
    let (_sync_parent, sync_child) = cloexec_pair(SockType::SeqPacket);
    let (log_r, log_w) = cloexec_pipe();

    let mut cmd = Command::new(probe);
    cmd.args(args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // The child's fds, in runc's order (ExtraFiles start at 3).
    let (wanted, env): (Vec<RawFd>, Vec<(&str, String)>) = match caller {
        Caller::Runc11 => (
            vec![init_child.as_raw_fd(), log_w.as_raw_fd()],
            vec![
                ("GOMAXPROCS", String::new()),
                ("_LIBCONTAINER_INITPIPE", "3".into()),
                ("_LIBCONTAINER_STATEDIR", "/run/runc/nsboot-test".into()),
                ("_LIBCONTAINER_LOGPIPE", "4".into()),
                ("_LIBCONTAINER_LOGLEVEL", "5".into()),
                ("_LIBCONTAINER_INITTYPE", "standard".into()),
            ],
        ),
        Caller::Runc12 => (
            vec![init_child.as_raw_fd(), sync_child.as_raw_fd(), log_w.as_raw_fd()],
            vec![
                ("GOMAXPROCS", String::new()),
                ("_LIBCONTAINER_INITPIPE", "3".into()),
                ("_LIBCONTAINER_SYNCPIPE", "4".into()),
                ("_LIBCONTAINER_LOGPIPE", "5".into()),
                ("_LIBCONTAINER_LOGLEVEL", "5".into()),
                ("_LIBCONTAINER_INITTYPE", "standard".into()),
            ],
        ),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    // SAFETY: between fork and exec only fcntl/dup2 (async-signal-safe), no
    // allocation: `wanted` is moved in and only read.
    unsafe {
        cmd.pre_exec(move || {
            // First out of the way (above 100), then to 3, 4, 5 without
            // close-on-exec, so no target clobbers a source.
            let mut high = [0 as RawFd; 3];
            for (i, fd) in wanted.iter().enumerate() {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high[i] = h;
            }
            for (i, h) in high.iter().take(wanted.len()).enumerate() {
                if libc::dup2(*h, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut stage0 = cmd.spawn().expect("start probe");
    drop(init_child);
    drop(sync_child);
    drop(log_w);
    let out_t = read_all_thread(OwnedFd::from(stage0.stdout.take().unwrap()));
    let err_t = read_all_thread(OwnedFd::from(stage0.stderr.take().unwrap()));
    let log_t = read_all_thread(log_r);

    // Watchdog: a hung bootstrap fails the test instead of hanging it.
    let s0 = stage0.id() as i32;
    let known = std::sync::Arc::new(std::sync::Mutex::new(vec![s0]));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (known, done) = (known.clone(), done.clone());
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            for p in known.lock().unwrap().iter() {
                let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
            }
        });
    }

    let mut sock = std::fs::File::from(init_parent);
    let setup_byte = match caller {
        Caller::Runc11 => {
            let mut b = [0u8; 1];
            sock.read_exact(&mut b).ok().map(|()| b[0])
        }
        Caller::Runc12 => None,
    };
    let write = std::io::Write::write_all(&mut sock, msg);
    let pids = match write {
        Err(e) => Err(format!("write message: {e}")),
        Ok(()) => {
            let mut de = serde_json::Deserializer::from_reader(&sock);
            serde::Deserialize::deserialize(&mut de)
                .map(|p: Pids| (p.stage1_pid, p.stage2_pid))
                .map_err(|e| e.to_string())
        }
    };
    if let Ok((a, b)) = pids {
        known.lock().unwrap().extend([a, b]);
    }
    let st = stage0.wait().expect("wait stage-0");
    let mut init_status = None;
    if let Ok((s1, s2)) = pids {
        reap(s1);
        init_status = reap(s2);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(sock);
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    let log_bytes = log_t.join().unwrap();
    let log = String::from_utf8_lossy(&log_bytes)
        .lines()
        .map(|l| serde_json::from_str::<LogLine>(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    Played { stage0: st.code(), setup_byte, pids, init_status, stdout, stderr, log }
}

// ---------------------------------------------------------------------------
// Messages.

fn ns(kinds: &[NsKind]) -> NsSet {
    kinds.iter().copied().collect()
}

fn join(kind: NsKind, path: &str) -> NsPath {
    NsPath { kind, path: std::ffi::CString::new(path).unwrap() }
}

fn off(clock: Clock, secs: i64, nsecs: i64) -> TimeOffset {
    TimeOffset { clock, secs, nsecs }
}

fn dialect_of(c: Caller) -> Dialect {
    match c {
        Caller::Runc11 => Dialect::Runc11,
        Caller::Runc12 => Dialect::Runc12,
    }
}

/// A message built by hand (for what the encoders refuse to write).
fn raw_msg(attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, payload) in attrs {
        body.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&kind.to_ne_bytes());
        body.extend_from_slice(payload);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&wire::INIT_MSG.to_ne_bytes());
    m.extend_from_slice(&wire::NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend(body);
    m
}

fn u32_attr(kind: u16, v: u32) -> (u16, Vec<u8>) {
    (kind, v.to_ne_bytes().to_vec())
}

fn str_attr(kind: u16, s: &str) -> (u16, Vec<u8>) {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    (kind, v)
}

// ---------------------------------------------------------------------------
// Clocks.

fn host_clocks() -> (f64, f64) {
    let t = |c| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid out-pointer.
        assert_eq!(unsafe { libc::clock_gettime(c, &mut ts) }, 0);
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    (t(libc::CLOCK_MONOTONIC), t(libc::CLOCK_BOOTTIME))
}

/// Script printing: time ns link, "MONO BOOT" from the clocks helper,
/// /proc/uptime's first field.
fn clock_script() -> String {
    format!(
        "readlink /proc/self/ns/time; {}; read up _ < /proc/uptime; echo $up",
        c_helper("clocks").display()
    )
}

/// Check the clock lines against host readings taken before and after.
fn check_clocks(out: &str, before: (f64, f64), after: (f64, f64), mono_off: f64, boot_off: f64) {
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 3, "{out}");
    let (m, b) = l[1].split_once(' ').unwrap();
    let (m, b): (f64, f64) = (m.parse().unwrap(), b.parse().unwrap());
    let up: f64 = l[2].parse().unwrap();
    let within = |v: f64, lo: f64, hi: f64, what: &str| {
        assert!(v >= lo - 0.02 && v <= hi + 0.02, "{what} {v} not in [{lo}, {hi}]:\n{out}");
    };
    within(m, before.0 + mono_off, after.0 + mono_off, "CLOCK_MONOTONIC");
    within(b, before.1 + boot_off, after.1 + boot_off, "CLOCK_BOOTTIME");
    // /proc/uptime is boottime, shown with 2 decimals.
    within(up, before.1 + boot_off - 0.01, after.1 + boot_off, "/proc/uptime");
}

// ---------------------------------------------------------------------------
// Background namespace holders.

/// A process killed and reaped on drop, with other pids to kill too (a
/// bootstrapped stage-2 is the caller's child, not ours).
struct Holder(std::process::Child, Vec<i32>);

impl Drop for Holder {
    fn drop(&mut self) {
        for p in &self.1 {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` (which execs into `sleep`), once `/proc/PID/ns/<kind>` differs
/// from ours for every kind in `changed`.
fn hold(mut cmd: Command, changed: &[&str]) -> (Holder, i32) {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let child = cmd.spawn().expect("start holder");
    let pid = child.id() as i32;
    let h = Holder(child, Vec::new());
    let t = std::time::Instant::now();
    loop {
        let ready = changed.iter().all(|k| {
            std::fs::read_link(format!("/proc/{pid}/ns/{k}"))
                .map(|l| l.to_string_lossy() != host_ns(k))
                .unwrap_or(false)
        });
        if ready {
            return (h, pid);
        }
        assert!(t.elapsed() < Duration::from_secs(10), "holder {cmd:?} never unshared {changed:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ns_of(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap().to_string_lossy().into_owned()
}

/// A time namespace with offsets, held by a bootstrapped `sleep` (C caller,
/// runc >= 1.2 dialect): (holder, stage-2 pid).
fn time_holder(mono: i64, boot: i64) -> (Holder, i32) {
    let (spawn, probe) = c_programs();
    let time = format!("monotonic {mono} 0;boottime {boot} 0");
    let mut child = Command::new(spawn)
        .args(["--dialect", "1.2", "--ns", "time,mnt", "--time", &time, "--"])
        .arg(probe)
        .args(["sh", "-c", "exec sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while err.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let pid: i32 = line
        .split("stage2_pid=")
        .nth(1)
        .unwrap_or_else(|| panic!("time holder failed: {line}"))
        .trim()
        .parse()
        .unwrap();
    (Holder(child, vec![pid]), pid)
}

// ---------------------------------------------------------------------------
// Detection and the leading byte.

fn simple_msg(d: Dialect) -> Vec<u8> {
    let cfg = BootstrapConfig { clone_flags: ns(&[NsKind::Mnt, NsKind::Uts, NsKind::Ipc, NsKind::Pid]), ..Default::default() };
    wire::encode(&cfg, d).unwrap()
}

#[test]
fn runc12_caller_reads_pid_json_straight_off_the_socket() {
    require_root!();
    let p = play(Caller::Runc12, &[], &simple_msg(Dialect::Runc12), &["sh", "-c", "echo $$; readlink /proc/self/ns/uts"]);
    p.ok();
    let (s1, s2) = p.pids.clone().unwrap();
    assert!(s1 > 0 && s2 > 0);
    let l: Vec<&str> = p.stdout.lines().collect();
    assert_eq!(l[0], "1", "PID 1 of the new PID namespace");
    assert_ne!(l[1], host_ns("uts"));
    assert!(p.log.iter().any(|l| l.msg.contains("nsexec-1[")), "{:?}", p.log);
}

#[test]
fn runc11_caller_gets_the_setup_byte_first_as_before() {
    require_root!();
    let p = play(Caller::Runc11, &[], &simple_msg(Dialect::Runc11), &["sh", "-c", "echo $$"]);
    p.ok();
    assert_eq!(p.setup_byte, Some(0));
    assert_eq!(p.stdout.trim(), "1");
}

#[test]
fn nsboot_dialect_overrides_the_signal_both_ways() {
    require_root!();
    // runc >= 1.2 environment, but told 1.1: the \0 comes first.
    let p = play(Caller::Runc11, &[("_LIBCONTAINER_SYNCPIPE", "9"), ("NSBOOT_DIALECT", "1.1")], &simple_msg(Dialect::Runc11), &["true"]);
    p.ok();
    assert_eq!(p.setup_byte, Some(0));
    // runc 1.1-like environment, but told 1.2: no leading byte.
    let p = play(Caller::Runc12, &[("_LIBCONTAINER_SYNCPIPE", ""), ("NSBOOT_DIALECT", "1.2")], &simple_msg(Dialect::Runc12), &["true"]);
    p.ok();
    // A bad override is fatal before anything is written.
    let mark = marker("bad-override");
    let p = play(Caller::Runc12, &[("NSBOOT_DIALECT", "1.3")], &simple_msg(Dialect::Runc12), &["true", &mark]);
    assert_eq!(p.stage0, Some(1));
    assert!(p.stderr.contains("NSBOOT_DIALECT"), "{p:#?}");
    assert!(wait_gone(&mark, Duration::from_secs(2)).is_empty());
}

#[test]
fn without_signal_or_override_a_runc12_decoder_chokes_on_the_setup_byte() {
    require_root!();
    // Why the signal matters: a hand-written >= 1.2 caller that sets
    // neither variable gets the 1.1 dialect, and runc's decoder fails on
    // the leading \0 (the stages themselves finish).
    let p = play(Caller::Runc12, &[("_LIBCONTAINER_SYNCPIPE", "")], &simple_msg(Dialect::Runc12), &["true"]);
    let e = p.pids.unwrap_err();
    assert!(e.contains("line 1 column 1"), "{e}");
}

// ---------------------------------------------------------------------------
// The dialect fixed by the program's build (`NSBOOT_BOOTSTRAP_DIALECT`).

/// tests/c/probe_fixed.c (the probe defining `nsboot_bootstrap_dialect`
/// = `value`), linked with libnsboot.so or, when `static_link`, with
/// libnsboot.a (whose constructor then sits in the program itself).
fn fixed_probe(value: &str, static_link: bool) -> std::path::PathBuf {
    let (probe, _) = c_programs();
    let dir = probe.parent().unwrap();
    let bin = dir.join(format!("probe_fixed_{}_{}", value.replace('-', "m"), if static_link { "a" } else { "so" }));
    if bin.exists() {
        return bin;
    }
    let lib = lib_dir();
    let mut cc = Command::new("cc");
    cc.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(format!("-DPROBE_DIALECT={value}"))
        .arg("-I")
        .arg(root_dir().join("include"))
        .arg(root_dir().join("tests/c/probe_fixed.c"))
        .arg("-o")
        .arg(&bin);
    if static_link {
        cc.arg(lib.join("libnsboot.a")).args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
    } else {
        cc.arg(format!("-L{}", lib.display())).arg("-lnsboot").arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    assert!(cc.status().expect("cc").success(), "compiling probe_fixed.c failed");
    bin
}

#[test]
fn a_program_built_for_runc12_speaks_it_without_any_variable() {
    require_root!();
    for static_link in [false, true] {
        let probe = fixed_probe("NSBOOT_DIALECT_RUNC_1_2", static_link);
        // runc >= 1.2's own nsenter tests: no _LIBCONTAINER_SYNCPIPE, no
        // NSBOOT_DIALECT, the pid JSON read straight off the socket.
        let p = play_program(&probe, Caller::Runc12, &[("_LIBCONTAINER_SYNCPIPE", "")], &simple_msg(Dialect::Runc12), &["sh", "-c", "echo $$"]);
        p.ok();
        assert_eq!(p.stdout.trim(), "1", "static={static_link}: {p:#?}");
        // The build wins over a variable that says otherwise (meant for
        // another runc, say), with a debug line saying so.
        let p = play_program(&probe, Caller::Runc12, &[("NSBOOT_DIALECT", "1.1")], &simple_msg(Dialect::Runc12), &["true"]);
        p.ok();
        assert!(p.has_log("NSBOOT_DIALECT=1.1 ignored"), "static={static_link}: {:?}", p.log);
    }
}

#[test]
fn a_program_built_for_runc11_keeps_the_setup_byte_whatever_the_environment() {
    require_root!();
    let probe = fixed_probe("NSBOOT_DIALECT_RUNC_1_1", false);
    let p = play_program(&probe, Caller::Runc11, &[("_LIBCONTAINER_SYNCPIPE", "9"), ("NSBOOT_DIALECT", "1.2")], &simple_msg(Dialect::Runc11), &["true"]);
    p.ok();
    assert_eq!(p.setup_byte, Some(0));
}

#[test]
fn a_bad_built_in_dialect_is_a_fatal_error_naming_the_symbol() {
    require_root!();
    let probe = fixed_probe("7", true);
    let mark = marker("bad-built-dialect");
    let p = play_program(&probe, Caller::Runc12, &[], &simple_msg(Dialect::Runc12), &["true", &mark]);
    // Decided with the environment, before the log pipe is set up (as a
    // bad NSBOOT_DIALECT is): the fatal line goes to stderr.
    assert_eq!(p.stage0, Some(1), "{p:#?}");
    assert!(p.pids.is_err(), "{p:#?}");
    assert!(p.stderr.contains("nsboot_bootstrap_dialect = 7") && p.stderr.contains("NSBOOT_DIALECT_RUNC_1_2"), "{p:#?}");
    assert!(wait_gone(&mark, Duration::from_secs(2)).is_empty());
}

// ---------------------------------------------------------------------------
// Time namespaces.

const MONO: i64 = 3 * 86400;
const BOOT: i64 = 7 * 86400;

fn time_cfg(extra: &[NsKind]) -> BootstrapConfig {
    let mut kinds = vec![NsKind::Time, NsKind::Mnt];
    kinds.extend_from_slice(extra);
    BootstrapConfig {
        clone_flags: ns(&kinds),
        time_offsets: vec![off(Clock::Monotonic, MONO, 0), off(Clock::Boottime, BOOT, 500_000_000)],
        ..Default::default()
    }
}

fn check_new_timens(p: &Played, before: (f64, f64), after: (f64, f64)) {
    p.ok();
    let first = p.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("time:["), "{}", p.stdout);
    assert_ne!(first, host_ns("time"), "time namespace unchanged");
    check_clocks(&p.stdout, before, after, MONO as f64, BOOT as f64 + 0.5);
    assert!(p.has_log("stage-1 requested timens offsets"), "stage-0 writes the offsets: {:?}", p.log);
}

#[test]
fn new_time_namespace_with_offsets_in_both_dialects() {
    require_root!();
    for caller in [Caller::Runc12, Caller::Runc11] {
        let d = dialect_of(caller);
        let msg = wire::encode(&time_cfg(&[]), d).unwrap();
        let before = host_clocks();
        let p = play(caller, &[], &msg, &["sh", "-c", &clock_script()]);
        let after = host_clocks();
        check_new_timens(&p, before, after);
    }
}

#[test]
fn time_offsets_with_a_user_namespace_and_a_join() {
    require_root!();
    // A join makes the stages non-dumpable, and the user namespace makes
    // stage-1's /proc files belong to the host's root: only stage-0 can
    // write its timens_offsets then. Both dialects.
    for caller in [Caller::Runc12, Caller::Runc11] {
        let d = dialect_of(caller);
        let mut cfg = time_cfg(&[NsKind::User, NsKind::Pid]);
        cfg.uid_map = Some(wire::IdMap::single(0, 100000, 65536));
        cfg.gid_map = Some(wire::IdMap::single(0, 100000, 65536));
        cfg.ns_paths = vec![join(NsKind::Uts, "/proc/self/ns/uts")];
        let msg = wire::encode(&cfg, d).unwrap();
        let before = host_clocks();
        let p = play(caller, &[], &msg, &["sh", "-c", &clock_script()]);
        let after = host_clocks();
        check_new_timens(&p, before, after);
    }
}

#[test]
fn c_caller_time_offsets_in_both_dialects() {
    require_root!();
    // tests/c/spawn.c: the C encoder (27303 in 1.1, 27290 in 1.2).
    for dialect in ["1.1", "1.2"] {
        let before = host_clocks();
        let o = spawn_probe(
            &["--dialect", dialect, "--ns", "time,mnt,pid", "--time", &format!("monotonic {MONO} 0;boottime {BOOT} 500000000")],
            &["sh", "-c", &clock_script()],
        );
        let after = host_clocks();
        assert!(o.status.success(), "{dialect}: {}", stderr(&o));
        let out = stdout(&o);
        assert_ne!(out.lines().next().unwrap(), host_ns("time"));
        check_clocks(&out, before, after, MONO as f64, BOOT as f64 + 0.5);
    }
}

#[test]
fn join_a_time_namespace_by_path_in_both_dialects() {
    require_root!();
    let (mono, boot) = (5000, 6000);
    let (_holder, pid) = time_holder(mono, boot);
    let want = ns_of(pid, "time");
    assert_ne!(want, host_ns("time"));
    for caller in [Caller::Runc12, Caller::Runc11] {
        let d = dialect_of(caller);
        let cfg = BootstrapConfig {
            clone_flags: ns(&[NsKind::Mnt]),
            ns_paths: vec![join(NsKind::Time, &format!("/proc/{pid}/ns/time"))],
            ..Default::default()
        };
        let before = host_clocks();
        let p = play(caller, &[], &wire::encode(&cfg, d).unwrap(), &["sh", "-c", &clock_script()]);
        let after = host_clocks();
        p.ok();
        assert_eq!(p.stdout.lines().next().unwrap(), want, "{caller:?}");
        check_clocks(&p.stdout, before, after, mono as f64, boot as f64);
    }
}

// ---------------------------------------------------------------------------
// Joining namespaces another tool made.

fn as_nobody(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).args(args);
    c
}

fn have_tools() -> bool {
    if !have("setpriv") || !have("unshare") {
        common::skip("setpriv/unshare (util-linux) missing");
        return false;
    }
    true
}

const JOINED_SCRIPT: &str = "readlink /proc/self/ns/user /proc/self/ns/uts /proc/self/ns/net; id -u; id -g";

#[test]
fn runc12_joins_a_user_namespace_and_others_made_by_unshare() {
    require_root!();
    if !have_tools() {
        return;
    }
    // The case: `unshare --user --map-root-user --net --uts` run by
    // an unprivileged user, joined whole by a runc >= 1.2 caller.
    let (_h, pid) = hold(
        as_nobody(&["unshare", "--user", "--map-root-user", "--net", "--uts", "sleep", "60"]),
        &["user", "net", "uts"],
    );
    let cfg = BootstrapConfig {
        ns_paths: ["user", "uts", "net"]
            .iter()
            .map(|k| join(NsKind::from_name(k).unwrap(), &format!("/proc/{pid}/ns/{k}")))
            .collect(),
        ..Default::default()
    };
    let p = play(Caller::Runc12, &[], &wire::encode(&cfg, Dialect::Runc12).unwrap(), &["sh", "-c", JOINED_SCRIPT]);
    p.ok();
    let l: Vec<&str> = p.stdout.lines().collect();
    assert_eq!(l[..3], [ns_of(pid, "user"), ns_of(pid, "uts"), ns_of(pid, "net")]);
    assert_eq!(l[3..], ["0", "0"]);
    assert!(p.has_log("setresuid(0, 0, 0) in the joined user namespace"), "{:?}", p.log);
}

#[test]
fn runc12_two_pass_join_of_a_user_namespace_and_a_host_owned_net_namespace() {
    require_root!();
    if !have_tools() {
        return;
    }
    // uts owned by an unprivileged user's namespace; net made by root
    // (owned by the host's user namespace, like `ip netns add`). runc puts
    // user first; after joining it, a single pass has no privilege left
    // over the host-owned net namespace.
    let (_a, a) = hold(as_nobody(&["unshare", "--user", "--map-root-user", "--uts", "sleep", "60"]), &["user", "uts"]);
    let mut c = Command::new("unshare");
    c.args(["--net", "sleep", "60"]);
    let (_b, b) = hold(c, &["net"]);
    let cfg = BootstrapConfig {
        ns_paths: vec![
            join(NsKind::User, &format!("/proc/{a}/ns/user")),
            join(NsKind::Uts, &format!("/proc/{a}/ns/uts")),
            join(NsKind::Net, &format!("/proc/{b}/ns/net")),
        ],
        ..Default::default()
    };
    let p = play(Caller::Runc12, &[], &wire::encode(&cfg, Dialect::Runc12).unwrap(), &["sh", "-c", JOINED_SCRIPT]);
    p.ok();
    let l: Vec<&str> = p.stdout.lines().collect();
    assert_eq!(l[..3], [ns_of(a, "user"), ns_of(a, "uts"), ns_of(b, "net")]);
    assert_eq!(l[3..], ["0", "0"]);
    // Order: the others first, then user (and root in it).
    let order: Vec<&str> = p
        .log
        .iter()
        .filter_map(|l| {
            ["net namespace", "uts namespace", "user namespace (", "setresuid"].into_iter().find(|n| l.msg.contains(n))
        })
        .collect();
    assert_eq!(order, ["uts namespace", "net namespace", "user namespace (", "setresuid"], "{:?}", p.log);

    // runc 1.1's single pass, same message: refused, typed, nothing left.
    let mark = marker("join11");
    let p = play(Caller::Runc11, &[], &wire::encode(&cfg, Dialect::Runc11).unwrap(), &["true", &mark]);
    p.refused(&["setns to net namespace", &format!("/proc/{b}/ns/net"), "EPERM"]);
    assert!(wait_gone(&mark, Duration::from_secs(2)).is_empty(), "stages left running");
}

// ---------------------------------------------------------------------------
// Bad input: typed error naming the field, exit 1, nothing left running.

fn refused(caller: Caller, msg: &[u8], needles: &[&str]) {
    let mark = marker("bad");
    let p = play(caller, &[], msg, &["true", &mark]);
    p.refused(needles);
    let left = wait_gone(&mark, Duration::from_secs(2));
    assert!(left.is_empty(), "stages left running: {left:?}");
}

fn time_flags() -> (u16, Vec<u8>) {
    u32_attr(wire::CLONE_FLAGS_ATTR, (NsKind::Time.clone_flag()) | libc::CLONE_NEWNS as u32)
}

#[test]
fn malformed_time_offsets_are_refused_naming_the_field() {
    require_root!();
    let cases: &[(&str, &[&str])] = &[
        ("realtime 1 0\n", &["unknown clock \"realtime\""]),
        ("monotonic x 0\n", &["seconds \"x\" is not a decimal"]),
        ("monotonic 1 1e9\n", &["nanoseconds \"1e9\" is not a decimal"]),
        ("monotonic 1 1000000000\n", &["nanoseconds 1000000000 outside"]),
        ("boottime 9999999999 0\n", &["seconds 9999999999 outside"]),
        ("monotonic 1\n", &["expected 3 fields"]),
        ("monotonic 1 0\nmonotonic 2 0\n", &["clock monotonic given twice"]),
    ];
    for (text, needles) in cases {
        // runc >= 1.2: TIMENSOFFSET.
        let msg = raw_msg(&[time_flags(), str_attr(wire::TIMENSOFFSET_ATTR, text)]);
        let mut n = vec!["TIMENSOFFSET (27290)"];
        n.extend_from_slice(needles);
        refused(Caller::Runc12, &msg, &n);
        // runc 1.1 dialect: the nsboot extension.
        let msg = raw_msg(&[time_flags(), str_attr(wire::NSBOOT_TIMENS_OFFSETS_ATTR, text)]);
        let mut n = vec!["NSBOOT_TIMENS_OFFSETS (27303)"];
        n.extend_from_slice(needles);
        refused(Caller::Runc11, &msg, &n);
    }
}

#[test]
fn dialect_specific_attributes_in_the_wrong_dialect_are_refused() {
    require_root!();
    // The 1.1-dialect extension from a runc >= 1.2 caller.
    let msg = raw_msg(&[time_flags(), str_attr(wire::NSBOOT_TIMENS_OFFSETS_ATTR, "monotonic 1 0\n")]);
    refused(Caller::Runc12, &msg, &["NSBOOT_TIMENS_OFFSETS (27303)", "not valid in the Runc12 dialect"]);
    // runc >= 1.2's TIMENSOFFSET reaching a bootstrap that speaks 1.1.
    let msg = raw_msg(&[time_flags(), str_attr(wire::TIMENSOFFSET_ATTR, "monotonic 1 0\n")]);
    refused(Caller::Runc11, &msg, &["MOUNT_SOURCES (27290)", "TIMENSOFFSET", "NSBOOT_DIALECT=1.2"]);
    // runc 1.1's MOUNT_SOURCES reaching a runc >= 1.2 bootstrap.
    let msg = raw_msg(&[u32_attr(wire::CLONE_FLAGS_ATTR, libc::CLONE_NEWNS as u32), (wire::MOUNT_SOURCES_ATTR, b"/tmp\0\0".to_vec())]);
    refused(Caller::Runc12, &msg, &["TIMENSOFFSET (27290)"]);
}

#[test]
fn offsets_without_a_new_time_namespace_are_refused() {
    require_root!();
    let flags = u32_attr(wire::CLONE_FLAGS_ATTR, libc::CLONE_NEWNS as u32);
    let msg = raw_msg(&[flags.clone(), str_attr(wire::TIMENSOFFSET_ATTR, "monotonic 1 0\n")]);
    refused(Caller::Runc12, &msg, &["TIMENSOFFSET", "does not create a time namespace"]);
    let msg = raw_msg(&[flags.clone(), str_attr(wire::NSBOOT_TIMENS_OFFSETS_ATTR, "boottime 1 0\n")]);
    refused(Caller::Runc11, &msg, &["NSBOOT_TIMENS_OFFSETS", "does not create a time namespace"]);
    // What runc 1.2.0-1.2.5's `runc exec` sends (runc issue #4635): offsets
    // with a joined time namespace.
    let msg = raw_msg(&[
        u32_attr(wire::CLONE_FLAGS_ATTR, 0),
        str_attr(wire::NS_PATHS_ATTR, "time:/proc/self/ns/time"),
        str_attr(wire::TIMENSOFFSET_ATTR, "monotonic 1 0\n"),
    ]);
    refused(Caller::Runc12, &msg, &["TIMENSOFFSET", "a joined time namespace keeps"]);
}

#[test]
fn offsets_the_kernel_refuses_fail_in_stage0_and_kill_stage1() {
    require_root!();
    // In range for the codec, but it would take boottime below zero: the
    // kernel says ERANGE when stage-0 writes it, stage-1 already exists.
    let msg = raw_msg(&[time_flags(), str_attr(wire::TIMENSOFFSET_ATTR, "boottime -4000000000 0\n")]);
    refused(Caller::Runc12, &msg, &["timens_offsets", "ERANGE"]);
}

#[test]
fn runc13_refuses_unknown_namespace_names_and_so_do_we() {
    require_root!();
    for caller in [Caller::Runc12, Caller::Runc11] {
        let msg = raw_msg(&[u32_attr(wire::CLONE_FLAGS_ATTR, 0), str_attr(wire::NS_PATHS_ATTR, "bogus:/proc/self/ns/net")]);
        refused(caller, &msg, &["NS_PATHS", "unknown namespace type \"bogus\""]);
    }
}

// ---------------------------------------------------------------------------
// Wire corners of runc 1.1's C receiver (issue 14 item 3).

#[test]
fn mount_sources_whose_last_entry_ends_with_the_attribute_nul_are_opened() {
    require_root!();
    // runc's Go encoding of the value "/etc\x00\x00/usr" through Bytemsg:
    // the value, then one NUL. runc's C opens /etc and /usr (the empty
    // entry in the middle is a mount without a source: -1 in MOUNT_FDS).
    let msg = raw_msg(&[
        u32_attr(wire::CLONE_FLAGS_ATTR, (libc::CLONE_NEWNS | libc::CLONE_NEWUTS) as u32),
        (wire::MOUNT_SOURCES_ATTR, b"/etc\0\0/usr\0".to_vec()),
    ]);
    let p = play(Caller::Runc11, &[("_LIBCONTAINER_MOUNT_FDS", "[20,-1,21]"), ("NSBOOT_PROBE_FDS", "1")], &msg, &["true"]);
    p.ok();
    assert!(p.stdout.contains("fd 20 -> /etc"), "{p:#?}");
    assert!(p.stdout.contains("fd 21 -> /usr"), "{p:#?}");
}

/// Issue 14 item 3: a path in a fatal line comes out of the JSON `msg`
/// byte for byte (JSON escaping only, as runc's bail() gives it), never in
/// Rust's debug syntax (`\u{1}`, `\"`). Invalid UTF-8 bytes: one U+FFFD
/// each (what Go's JSON decoder makes of runc's raw bytes).
#[test]
fn fatal_lines_carry_paths_byte_for_byte() {
    require_root!();
    let odd = "/nonexistent/a\"q\\b\tc\u{1}d\u{1f}e\u{7f}f\ng h'ü";
    let cases: Vec<(Vec<u8>, String)> = vec![
        (odd.as_bytes().to_vec(), odd.to_owned()),
        (b"/nonexistent/bad\xffname\xe2\x82".to_vec(), "/nonexistent/bad\u{FFFD}name\u{FFFD}\u{FFFD}".to_owned()),
    ];
    for (path, want) in cases {
        // A namespace path to join.
        let mut ns = b"net:".to_vec();
        ns.extend_from_slice(&path);
        ns.push(0);
        let msg = raw_msg(&[(wire::NS_PATHS_ATTR, ns)]);
        let p = play(Caller::Runc11, &[], &msg, &["true"]);
        let f = p.fatal();
        assert!(f.contains(&format!("open net namespace path \"{want}\": ENOENT")), "fatal {f:?}\n{p:#?}");
        // A mount source.
        let mut src = path.clone();
        src.extend_from_slice(b"\0\0");
        let msg = raw_msg(&[
            u32_attr(wire::CLONE_FLAGS_ATTR, libc::CLONE_NEWNS as u32),
            (wire::MOUNT_SOURCES_ATTR, src),
        ]);
        let p = play(Caller::Runc11, &[("_LIBCONTAINER_MOUNT_FDS", "[20]")], &msg, &["true"]);
        let f = p.fatal();
        assert!(f.contains(&format!("mount source \"{want}\": ENOENT")), "fatal {f:?}\n{p:#?}");
    }
}

/// The caller pidfd that every stage polls (issue 14 item 1) takes the
/// lowest free fd number in stage-0: 5 here (stdio, init socket 3, log
/// pipe 4), before the sync sockets. runc reserves the numbers in
/// `_LIBCONTAINER_MOUNT_FDS` as open placeholders, but a caller may name a
/// free one: installing a mount source there must not clobber the pidfd
/// (before the fix: "the caller exited before receiving mount sources", the
/// O_PATH fd polled in its place reads as ready), and the pidfd must not
/// reach the program.
#[test]
fn a_mount_source_installed_where_the_caller_pidfd_was_keeps_both() {
    require_root!();
    let msg = raw_msg(&[
        u32_attr(wire::CLONE_FLAGS_ATTR, (libc::CLONE_NEWNS | libc::CLONE_NEWUTS) as u32),
        (wire::MOUNT_SOURCES_ATTR, b"/etc\0\0".to_vec()),
    ]);
    let p = play(Caller::Runc11, &[("_LIBCONTAINER_MOUNT_FDS", "[5]"), ("NSBOOT_PROBE_FDS", "1")], &msg, &["true"]);
    p.ok();
    assert!(p.stdout.contains("fd 5 -> /etc"), "{p:#?}");
    assert!(!p.stdout.contains("pidfd"), "pidfd leaked into the program: {}", p.stdout);
}
