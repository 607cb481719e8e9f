//! Faults at every step of the stage protocol (issue #6, item 1).
//!
//! Each case runs a real bootstrap with `NSBOOT_TEST_STOP_AT=<point>`: the
//! stage that reaches the point renames itself `nsboot-stopped` and waits
//! for SIGUSR2. The test then SIGKILLs one party (the caller, stage-0,
//! stage-1 or stage-2: whichever exist at that point), releases the stopped
//! stage if it was not the victim, and checks that
//!
//! - every surviving party exits within 1 s (no hang, no orphan: no
//!   process carrying the case's marker is left);
//! - when the caller survives: it returns an error (tests/c/spawn.c exits
//!   125 after `nsboot_spawn` fails) and the log pipe holds a
//!   `"level":"fatal"` line naming what went wrong;
//! - no host mount of the test is left (mounts under the bundle and the
//!   scratch directory, and the host root's propagation; the rootfs points
//!   included).
//!
//! The second half plays the caller in Rust and closes its end of the init
//! socket at each protocol step instead of killing anyone: stage-0 must exit
//! 1 with a `FATAL:` line while the pid JSON is still owed, and this test
//! process must hold exactly the fds it held before.

mod common;

use common::*;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The cases of this file share the host mount table and reap children of
/// this process: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long survivors may take (the bound).
const SURVIVOR_LIMIT: Duration = Duration::from_secs(1);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which stage a point belongs to.
fn stage_of_point(point: &str) -> u8 {
    match point.as_bytes()[5] {
        b'0' => 0,
        b'1' => 1,
        _ => 2, // stage2-* and rootfs-* (run by stage-2)
    }
}

/// Stage of a marked process, from its name.
fn stage_of(pid: i32, point: &str) -> Option<u8> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    match comm.trim() {
        "runc:[0:PARENT]" => Some(0),
        "runc:[1:CHILD]" => Some(1),
        "runc:[2:INIT]" => Some(2),
        "nsboot-stopped" => Some(stage_of_point(point)),
        _ => None,
    }
}

fn is_dead(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

fn wait_dead(pid: i32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Wait for a marked process to sit at the stop point; its pid.
fn wait_stopped(mark: &str, what: &str) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(p) = processes_with(mark).into_iter().find(|p| at_stop_point(*p)) {
            return p;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{what}: no stage reached the stop point");
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// The stage processes alive at the stop point, once they have settled
/// (e.g. stage-1 exiting after its last message).
fn parties(mark: &str, caller: i32, point: &str) -> Vec<(u8, i32)> {
    let mut last = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(15));
        let mut now: Vec<(u8, i32)> = processes_with(mark)
            .into_iter()
            .filter(|p| *p != caller && !is_dead(*p))
            .filter_map(|p| stage_of(p, point).map(|s| (s, p)))
            .collect();
        now.sort();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Caller,
    Stage(u8),
}

struct Setup {
    args: Vec<String>,
    program: Vec<String>,
    /// The directories whose host mounts are the test's own.
    dirs: Vec<PathBuf>,
}

fn user_setup() -> Setup {
    Setup {
        args: ["--ns", "user,mnt,pid,uts", "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536"]
            .map(String::from)
            .to_vec(),
        program: ["sh", "-c", "true"].map(String::from).to_vec(),
        dirs: Vec::new(),
    }
}

fn rootfs_setup(dir: &Path) -> Setup {
    let mut args: Vec<String> = ["--ns", "mnt,pid,uts,ipc,net", "--rootfs"].map(String::from).to_vec();
    args.push(dir.join("config.json").to_string_lossy().into_owned());
    args.push("--bundle".into());
    args.push(dir.to_string_lossy().into_owned());
    Setup { args, program: ["/bin/sh", "-c", "true"].map(String::from).to_vec(), dirs: vec![dir.to_path_buf()] }
}

fn start_spawn(setup: &Setup, point: &str, mark: &str, log: &Path, err: &Path) -> Child {
    let (spawn, probe) = c_programs();
    Command::new(spawn)
        .env("NSBOOT_TEST_STOP_AT", point)
        .args(&setup.args)
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(probe)
        .args(&setup.program)
        .arg(mark)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(err).unwrap())
        .spawn()
        .unwrap()
}

/// One case of the kill matrix. Returns how long the survivors took.
fn kill_case(setup: &Setup, point: &str, victim: Victim, scratch: &Path) -> Duration {
    let what = format!("{point} / kill {victim:?}");
    let mark = marker("fault");
    let log = scratch.join("log.json");
    let errf = scratch.join("spawn.err");
    let mut dirs = setup.dirs.clone();
    dirs.push(scratch.to_path_buf());
    let mounts = OwnMounts::new(&dirs);
    let mut caller = start_spawn(setup, point, &mark, &log, &errf);
    let cpid = caller.id() as i32;
    let stopped = wait_stopped(&mark, &what);
    let ps = parties(&mark, cpid, point);
    let victim_pid = match victim {
        Victim::Caller => cpid,
        Victim::Stage(s) => match ps.iter().find(|(st, _)| *st == s) {
            Some((_, p)) => *p,
            None => {
                // Not alive at this point: nothing to do for this victim.
                let _ = kill(Pid::from_raw(cpid), Signal::SIGKILL);
                let _ = caller.wait();
                let _ = wait_gone(&mark, Duration::from_secs(2));
                return Duration::ZERO;
            }
        },
    };
    kill(Pid::from_raw(victim_pid), Signal::SIGKILL).unwrap();
    assert!(wait_dead(victim_pid, Duration::from_secs(2)), "{what}: victim {victim_pid} did not die");
    let t0 = Instant::now();
    // A stage stopped at the point stands for a stage busy right there:
    // let it go on and meet the dead party. The caller's death must be
    // enough on its own (PR_SET_PDEATHSIG): no release then.
    if victim != Victim::Caller && stopped != victim_pid && !is_dead(stopped) {
        let _ = kill(Pid::from_raw(stopped), Signal::SIGUSR2);
    }
    let status = loop {
        let gone = processes_with(&mark).into_iter().filter(|p| *p != cpid).all(is_dead);
        if let (true, Some(st)) = (gone, caller.try_wait().unwrap()) {
            break st;
        }
        if t0.elapsed() > SURVIVOR_LIMIT {
            let left: Vec<(i32, String)> = processes_with(&mark)
                .into_iter()
                .filter(|p| !is_dead(*p))
                .map(|p| (p, std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default().trim().to_owned()))
                .collect();
            let _ = kill(Pid::from_raw(cpid), Signal::SIGKILL);
            for (p, _) in &left {
                let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
            }
            let _ = caller.wait();
            panic!("{what}: survivors still running after {SURVIVOR_LIMIT:?}: {left:?} (parties were {ps:?})");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = t0.elapsed();
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    if victim != Victim::Caller {
        assert_eq!(status.code(), Some(125), "{what}: caller did not report an error: {err}");
        assert!(err.contains("spawn: bootstrap: "), "{what}: no error from nsboot_spawn: {err}");
        let fatal: Vec<&str> = logged.lines().filter(|l| l.contains("\"level\":\"fatal\"")).collect();
        // stage-0 killed after the pid JSON: the caller sees it die and
        // kills stage-1/2 itself; its error is then the only report.
        let caller_cleaned_up = err.contains("stage-0 killed by signal 9 (after reporting pids)");
        // With no stage left but the victim, the caller's error is the report.
        let other_stages = ps.iter().any(|(_, p)| *p != victim_pid);
        assert!(!fatal.is_empty() || caller_cleaned_up || !other_stages, "{what}: no fatal line on the log pipe:\n{logged}\ncaller: {err}");
        for l in &fatal {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not JSON {l:?}: {e}"));
            assert!(v["msg"].as_str().is_some_and(|m| m.len() > 20), "{what}: unclear fatal line {l}");
        }
    }
    mounts.assert_unchanged(&what);
    took
}

fn matrix(setup: &Setup, points: &[&str], scratch: &Path) -> Vec<(String, Duration)> {
    let mut times = Vec::new();
    for point in points {
        for victim in [Victim::Caller, Victim::Stage(0), Victim::Stage(1), Victim::Stage(2)] {
            let took = kill_case(setup, point, victim, scratch);
            if took > Duration::ZERO || victim == Victim::Caller {
                times.push((format!("{point}/{victim:?}"), took));
            }
        }
    }
    times
}

fn scratch(tag: &str) -> TestDir {
    let d = TestDir::adopt(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{tag}-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(d.path()).unwrap();
    d
}

fn report(times: &[(String, Duration)]) {
    let max = times.iter().map(|(_, d)| *d).max().unwrap_or_default();
    eprintln!("{} kill cases; slowest survivors exit after {max:?}", times.len());
}

/// Every stage point (a user namespace makes the id-mapping points exist).
const STAGE_POINTS: &[&str] = &[
    "stage0-after-message",
    "stage1-start",
    "stage1-before-usermap",
    "stage0-before-usermap",
    "stage0-after-usermap",
    "stage1-after-unshare",
    "stage1-after-clone",
    "stage2-start",
    "stage0-after-pid",
    "stage0-before-grandchild",
    "stage2-before-finish",
];

/// The points inside stage-2's rootfs preparation.
const ROOTFS_POINTS: &[&str] = &[
    "stage2-before-rootfs",
    "rootfs-after-root",
    "rootfs-between-mounts",
    "rootfs-after-mounts",
    "rootfs-after-pivot",
    "rootfs-after-mask",
    "stage2-before-finish",
];

#[test]
fn sigkill_any_party_at_every_stage_point() {
    require_root!();
    let _g = serial();
    let dir = scratch("stages");
    let times = matrix(&user_setup(), STAGE_POINTS, &dir);
    report(&times);
}

#[test]
fn sigkill_any_party_during_rootfs_preparation() {
    require_root!();
    let _g = serial();
    let Some(bundle) = busybox_bundle("faults", false) else { return };
    let dir = scratch("rootfs");
    let times = matrix(&rootfs_setup(&bundle), ROOTFS_POINTS, &dir);
    report(&times);
}

// ---- the caller closes the init socket early ------------------------------

/// Where the Rust-played caller closes its end.
#[derive(Clone, Copy, Debug)]
enum Close {
    BeforeSetupByte,
    AfterSetupByte,
    MidMessage,
    /// After the whole message, while a stage sits at this point.
    AtPoint(&'static str, Expect),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The pid JSON is still owed: stage-0 must fail.
    Fatal,
    /// The pid JSON was written already: nothing more is owed on the init
    /// socket, so closing it is no fault and the bootstrap completes.
    Completes,
}

fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let t = std::fs::read_link(e.path()).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            format!("{} -> {t}", e.file_name().to_string_lossy())
        })
        .collect();
    v.sort();
    v
}

/// Reap children this process got through CLONE_PARENT (stage-1, stage-2).
fn reap_strays() {
    while let Ok(st) = nix::sys::wait::waitpid(Pid::from_raw(-1), Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        if st == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

fn close_case(cfg: &nsboot::wire::BootstrapConfig, program: &[&str], when: Close, scratch: &Path) {
    let what = format!("close init socket {when:?}");
    let (_, probe) = c_programs();
    let bytes = nsboot::wire::encode(cfg, nsboot::wire::Dialect::Runc11).unwrap();
    let fds_before = open_fds();
    let bundle = cfg.rootfs_bundle.as_ref().map(|b| PathBuf::from(b.to_str().expect("utf-8 bundle")));
    let mounts = OwnMounts::new(&bundle.iter().map(PathBuf::as_path).chain([scratch]).collect::<Vec<_>>());
    let mark = marker("close");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    let fd = theirs.as_raw_fd();
    let errf = scratch.join("stage.err");
    let outf = scratch.join("stage.out");
    let mut cmd = Command::new(probe);
    cmd.args(program).arg(&mark).env("_LIBCONTAINER_INITPIPE", fd.to_string());
    if let Close::AtPoint(p, _) = when {
        cmd.env("NSBOOT_TEST_STOP_AT", p);
    }
    cmd.stdin(Stdio::null()).stdout(File::create(&outf).unwrap()).stderr(File::create(&errf).unwrap());
    // SAFETY: pre_exec only clears FD_CLOEXEC with fcntl (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The Command holds the stdout/stderr files until dropped.
    drop(cmd);
    drop(theirs);
    let mut ours = ours;
    let mut stopped = None;
    match when {
        Close::BeforeSetupByte => {}
        Close::AfterSetupByte | Close::MidMessage | Close::AtPoint(..) => {
            let mut b = [1u8];
            std::io::Read::read_exact(&mut ours, &mut b).unwrap();
            assert_eq!(b[0], 0, "{what}: setup byte");
            match when {
                Close::MidMessage => ours.write_all(&bytes[..bytes.len() / 2]).unwrap(),
                Close::AtPoint(..) => {
                    ours.write_all(&bytes).unwrap();
                    stopped = Some(wait_stopped(&mark, &what));
                }
                _ => {}
            }
        }
    }
    drop(ours);
    let t0 = Instant::now();
    if let Some(p) = stopped {
        kill(Pid::from_raw(p), Signal::SIGUSR2).unwrap();
    }
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{what}: stage-0 hangs");
        std::thread::sleep(Duration::from_millis(2));
    };
    let expect = match when {
        Close::AtPoint(_, e) => e,
        _ => Expect::Fatal,
    };
    // The container's program (`true`) ends at once when the bootstrap
    // completes; every stage must be gone in time either way.
    let left = wait_gone(&mark, SURVIVOR_LIMIT);
    reap_strays();
    assert!(left.is_empty(), "{what}: processes left: {left:?}");
    let took = t0.elapsed();
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    match expect {
        Expect::Fatal => {
            assert_eq!(status.code(), Some(1), "{what}: stage-0 {status:?}, stderr {err}");
            assert!(err.lines().next().is_some_and(|l| l.starts_with("FATAL: ")), "{what}: no fatal line: {err:?}");
            assert!(took <= SURVIVOR_LIMIT, "{what}: took {took:?}");
        }
        Expect::Completes => {
            assert!(status.success(), "{what}: stage-0 {status:?}, stderr {err}");
        }
    }
    mounts.assert_unchanged(&what);
    assert_eq!(fds_before, open_fds(), "{what}: the caller's fd table changed");
}

#[test]
fn caller_closes_the_init_socket_at_every_step() {
    require_root!();
    let _g = serial();
    let dir = scratch("close");
    let ns = |f: i32| nsboot::ns::NsSet::from_clone_flags(f as u32).unwrap();
    let user = nsboot::wire::BootstrapConfig {
        clone_flags: ns(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS),
        uid_map: Some(nsboot::wire::IdMap::single(0, 100000, 65536)),
        gid_map: Some(nsboot::wire::IdMap::single(0, 100000, 65536)),
        ..Default::default()
    };
    use Close::*;
    use Expect::*;
    let mut cases = vec![BeforeSetupByte, AfterSetupByte, MidMessage];
    for (p, e) in [
        ("stage0-after-message", Fatal),
        ("stage1-start", Fatal),
        ("stage1-before-usermap", Fatal),
        ("stage0-before-usermap", Fatal),
        ("stage0-after-usermap", Fatal),
        ("stage1-after-unshare", Fatal),
        ("stage1-after-clone", Fatal),
        ("stage0-after-pid", Completes),
        ("stage0-before-grandchild", Completes),
        ("stage2-before-finish", Completes),
    ] {
        cases.push(AtPoint(p, e));
    }
    for c in cases {
        close_case(&user, &["sh", "-c", "true"], c, &dir);
    }
    // The rootfs points: all after the pid JSON.
    if let Some(bundle) = busybox_bundle("close", false) {
        let rootfs = nsboot::wire::BootstrapConfig {
            clone_flags: ns(libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET),
            rootfs_config: Some(std::fs::read(bundle.join("config.json")).unwrap()),
            rootfs_bundle: Some(std::ffi::CString::new(bundle.to_str().unwrap()).unwrap()),
            ..Default::default()
        };
        for p in ["stage2-before-rootfs", "rootfs-between-mounts", "rootfs-after-pivot"] {
            close_case(&rootfs, &["/bin/sh", "-c", "true"], AtPoint(p, Completes), &dir);
        }
    }
}

// ---- a thread of the caller exits: nothing dies ---------------------------

/// Issue 14 item 1: `PR_SET_PDEATHSIG` fired when the *thread* that forked
/// exited. tests/c/threaded.c starts each bootstrap from a new pthread that
/// exits at once (after the fork, after the setup byte, or after the
/// message) and checks stage-0, -1 and -2 all exit 0. 1,000 bootstraps by
/// default (about 5 s in a debug build); `NSBOOT_THREADED_COUNT` changes it.
/// Before the fix: 265 of 300 killed (SIGKILL of stage-0).
#[test]
fn a_caller_thread_exiting_kills_no_stage() {
    require_root!();
    let _g = serial();
    let bin = c_program("threaded", &["-pthread"]);
    let count = std::env::var("NSBOOT_THREADED_COUNT").unwrap_or_else(|_| "1000".into());
    let mut cmd = Command::new(&bin);
    cmd.arg(&c_programs().1).arg(&count);
    let t = Instant::now();
    let out = run_with_timeout(cmd, Duration::from_secs(300));
    eprintln!("{} bootstraps from short-lived threads in {:?}", count, t.elapsed());
    let so = stdout(&out);
    assert!(out.status.success(), "{so}\n{}", stderr(&out));
    assert_eq!(so.trim(), format!("bootstraps {count} killed 0 failed 0"), "{}", stderr(&out));
}
