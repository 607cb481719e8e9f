//! Test driver for `nsboot_oci`: a single-threaded program that runs a
//! bundle's container the way a runtime does with this crate —
//! create (namespaces, hooks, rootfs, console, process setup, wait at the
//! start gate), start, wait, poststop.
//!
//! ```text
//! oci_process_probe [--id ID] [--console-socket PATH] [--wait-start] [--trace-steps] BUNDLE
//! ```
//!
//! `--trace-steps`: the caller steps of `ProcessPlan::apply` (privileged,
//! before_start, after_start) append `<step> <uid> <NoNewPrivs> <CapEff>`
//! to `/hooklog/steps` in the container, to show where a seccomp filter
//! would load.
//!
//! Processes: the runtime (this process) forks the namespace process,
//! which unshares what `linux.namespaces` lists (a `user` namespace maps
//! the caller to root, as `unshare -r`) and, with a `pid` namespace, forks
//! the container's init. The runtime runs `createRuntime`/`prestart` once
//! the container's pid is known, then lets it go on; the container runs
//! `createContainer`, prepares the rootfs (`nsboot_oci::rootfs`), sets up the
//! console, applies the `ProcessPlan` and waits at the start gate. With
//! `--wait-start` the runtime prints `created <pid>` on stderr and waits
//! for a line on stdin before it starts the container (end of stdin
//! instead: the container is deleted without ever running the program).
//! `poststart` runs once the program was executed, `poststop` after it
//! exited.
//!
//! Errors of the container process reach the runtime as an
//! `ErrorRecord` on the exec pipe and are printed by the runtime.
//!
//! Exit status: the program's; 2 for a rejected config (nothing was
//! created); 1 when a fatal hook failed (the container is killed); 125
//! when the rootfs could not be prepared; 127/126 when the program is
//! missing / cannot be executed; 128+N when it died of signal N.

use std::io::BufRead;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::exit;

use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use nsboot_oci::rootfs::{prepare, RootfsOptions, RootfsPlan};
use nsboot_oci::console::{connect_socket, send_master, Pty};
use nsboot_oci::hooks::{HookKind, Hooks, State, Status};
use nsboot_oci::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nsboot_oci::process::{start_gate, ExecSteps, ProcessPlan};
use nsboot_oci::{ErrorRecord, OciError};

fn die(code: i32, what: &dyn std::fmt::Display) -> ! {
    eprintln!("oci_process_probe: {what}");
    exit(code)
}

fn wait_exit(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => die(1, &format!("waitpid: {e}")),
        }
    }
}

fn fork_once() -> ForkResult {
    #[allow(unsafe_code)]
    // SAFETY: this program never starts a thread; its child is a complete
    // copy of a single-threaded process.
    match unsafe { nsboot_oci::sys::fork_single_threaded() } {
        Ok(r) => r,
        Err(e) => die(125, &format!("fork: {e}")),
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap_or_else(|e| die(125, &format!("pipe2: {e}")))
}

fn read_all(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}

struct Opts {
    id: String,
    console_socket: Option<PathBuf>,
    wait_start: bool,
    trace_steps: bool,
    bundle: PathBuf,
}

fn parse_args() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        id: "probe".into(),
        console_socket: None,
        wait_start: false,
        trace_steps: false,
        bundle: PathBuf::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--id" => o.id = args.next().unwrap_or_default(),
            "--console-socket" => o.console_socket = args.next().map(PathBuf::from),
            "--wait-start" => o.wait_start = true,
            "--trace-steps" => o.trace_steps = true,
            _ => o.bundle = PathBuf::from(a),
        }
    }
    if o.bundle.as_os_str().is_empty() {
        die(2, &"usage: oci_process_probe [--id ID] [--console-socket PATH] [--wait-start] [--trace-steps] BUNDLE");
    }
    o
}

fn main() {
    let opts = parse_args();
    let json =
        std::fs::read(opts.bundle.join("config.json")).unwrap_or_else(|e| die(2, &format!("read config.json: {e}")));
    // Everything is checked before anything is created.
    let plan = ProcessPlan::from_json(&json).unwrap_or_else(|e| die(2, &e));
    let spec: Spec = serde_json::from_slice(&json).unwrap_or_else(|e| die(2, &e));
    let hooks = Hooks::from_spec(&spec).unwrap_or_else(|e| die(2, &e));
    let ropts = RootfsOptions { no_pivot: false, bundle: Some(opts.bundle.clone()) };
    let rootfs = RootfsPlan::from_json(&json, &ropts).unwrap_or_else(|e| die(2, &e));
    for w in &plan.warnings {
        eprintln!("oci_process_probe: warning: {w}");
    }
    let bundle_s = opts.bundle.to_string_lossy().into_owned();
    let state = |status: Status, pid: i32| State::new(&spec, &opts.id, &bundle_s, status, Some(pid));

    let ns: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();

    // The console socket is connected before anything is created (runc
    // opens --console-socket in `create`, before its init exists).
    let console = match (plan.terminal, &opts.console_socket) {
        (true, Some(path)) => Some(connect_socket(path).unwrap_or_else(|e| die(1, &e))),
        (true, None) => die(2, &"process.terminal needs --console-socket"),
        (false, _) => None,
    };
    let (go_r, go_w) = pipe();
    let (pid_r, pid_w) = pipe();
    let (exec_r, exec_w) = pipe();
    let (gate, handle) = start_gate().unwrap_or_else(|e| die(125, &e));

    let ForkResult::Parent { child } = fork_once() else {
        drop((go_w, pid_r, exec_r, handle));
        namespace_process(&ns, pid_w);
        // Here only in the container process.
        container(go_r, exec_w, gate, &plan, &hooks, &rootfs, &spec, &opts, &bundle_s, console);
    };
    drop((go_r, pid_w, exec_w, gate, console));

    // The runtime.
    let mut pid_buf = [0u8; 4];
    if read_all(&pid_r, &mut pid_buf) != 4 {
        exit(wait_exit(child));
    }
    let pid = i32::from_ne_bytes(pid_buf);
    // A failed create: the container is destroyed, then the poststop
    // hooks run (runtime-spec lifecycle: on a failing prestart/
    // createRuntime/createContainer/startContainer hook, "continue the
    // lifecycle at step 12").
    let poststop = || {
        for w in hooks.run(HookKind::Poststop, &state(Status::Stopped, pid)).unwrap_or_default() {
            eprintln!("oci_process_probe: warning: {w}");
        }
    };
    let abort = |e: &dyn std::fmt::Display| -> ! {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = kill(child, Signal::SIGKILL);
        wait_exit(child);
        eprintln!("oci_process_probe: {e}");
        poststop();
        exit(1)
    };
    for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
        if let Err(e) = hooks.run(kind, &state(Status::Creating, pid)) {
            abort(&e);
        }
    }
    let mut go = [1u8; 5];
    go[1..].copy_from_slice(&pid.to_ne_bytes());
    if nix::unistd::write(&go_w, &go).is_err() {
        abort(&"the container went away");
    }
    drop(go_w);
    match handle.wait_created() {
        Ok(true) => {}
        // The container failed before it was created.
        _ => {
            if let Some(e) = container_error(&exec_r) {
                eprintln!("oci_process_probe: {e}");
            }
            let code = wait_exit(child);
            poststop();
            exit(code)
        }
    }
    if opts.wait_start {
        eprintln!("created {pid}");
        let mut line = String::new();
        if !matches!(std::io::stdin().lock().read_line(&mut line), Ok(n) if n > 0) {
            // End of stdin: "delete" instead of "start". The container
            // sees its gate closed and exits without exec.
            drop(handle);
            if let Some(e) = container_error(&exec_r) {
                eprintln!("oci_process_probe: {e}");
            }
            let code = wait_exit(child);
            poststop();
            exit(code);
        }
    }
    if let Err(e) = handle.start() {
        abort(&e);
    }
    // End-of-file: the program was executed; an error record: it was not.
    match container_error(&exec_r) {
        None => {
            for w in hooks.run(HookKind::Poststart, &state(Status::Running, pid)).unwrap_or_default() {
                eprintln!("oci_process_probe: warning: {w}");
            }
        }
        Some(e) => eprintln!("oci_process_probe: {e}"),
    }
    let code = wait_exit(child);
    poststop();
    exit(code);
}

/// Unshare the namespaces; with a pid namespace fork the container's init
/// and stay as its parent. Returns in the container process, after its
/// host pid was sent on `pid_w`.
fn namespace_process(ns: &[LinuxNamespaceType], pid_w: OwnedFd) {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if ns.contains(&LinuxNamespaceType::User) {
        unshare(CloneFlags::CLONE_NEWUSER).unwrap_or_else(|e| die(125, &format!("unshare user: {e}")));
        for (f, v) in [
            ("/proc/self/setgroups", "deny".to_owned()),
            ("/proc/self/uid_map", format!("0 {uid} 1")),
            ("/proc/self/gid_map", format!("0 {gid} 1")),
        ] {
            std::fs::write(f, v).unwrap_or_else(|e| die(125, &format!("write {f}: {e}")));
        }
    }
    let mut flags = CloneFlags::empty();
    for (t, f) in [
        (LinuxNamespaceType::Mount, CloneFlags::CLONE_NEWNS),
        (LinuxNamespaceType::Uts, CloneFlags::CLONE_NEWUTS),
        (LinuxNamespaceType::Ipc, CloneFlags::CLONE_NEWIPC),
        (LinuxNamespaceType::Network, CloneFlags::CLONE_NEWNET),
        (LinuxNamespaceType::Pid, CloneFlags::CLONE_NEWPID),
        (LinuxNamespaceType::Cgroup, CloneFlags::CLONE_NEWCGROUP),
    ] {
        if ns.contains(&t) {
            flags |= f;
        }
    }
    unshare(flags).unwrap_or_else(|e| die(125, &format!("unshare {flags:?}: {e}")));
    let pid = if flags.contains(CloneFlags::CLONE_NEWPID) {
        match fork_once() {
            ForkResult::Parent { child } => {
                // Only the container keeps the pipes and the gate open.
                let _ = nix::unistd::write(&pid_w, &child.as_raw().to_ne_bytes());
                drop(pid_w);
                close_all_but_stdio();
                exit(wait_exit(child));
            }
            ForkResult::Child => return,
        }
    } else {
        nix::unistd::getpid().as_raw()
    };
    let _ = nix::unistd::write(&pid_w, &pid.to_ne_bytes());
}

/// The namespace process keeps no end of the runtime/container pipes (it
/// only waits): close every fd above 2.
fn close_all_but_stdio() {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect())
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        let _ = nix::unistd::close(fd);
    }
}

#[allow(clippy::too_many_arguments)]
fn container(
    go_r: OwnedFd,
    exec_w: OwnedFd,
    gate: nsboot_oci::process::StartGate,
    plan: &ProcessPlan,
    hooks: &Hooks,
    rootfs: &RootfsPlan,
    spec: &Spec,
    opts: &Opts,
    bundle: &str,
    console: Option<OwnedFd>,
) -> ! {
    let mut go = [0u8; 5];
    if read_all(&go_r, &mut go) != 5 {
        // The runtime gave up (a createRuntime hook failed).
        exit(1);
    }
    drop(go_r);
    let pid = i32::from_ne_bytes([go[1], go[2], go[3], go[4]]);
    let fail = |e: OciError| -> ! { fail(&exec_w, e.record()) };
    if let Err(e) =
        hooks.run(HookKind::CreateContainer, &State::new(spec, &opts.id, bundle, Status::Creating, Some(pid)))
    {
        fail(e.into());
    }
    // Before prepare, which makes readonlyPaths (/proc/sys) read-only.
    if let Err(e) = plan.apply_sysctls() {
        fail(e);
    }
    let mut warn = |w: &str| eprintln!("oci_process_probe: warning: {w}");
    if let Err(e) = prepare(rootfs, &mut warn) {
        self::fail(&exec_w, ErrorRecord::other(&e, e.errno(), 125));
    }
    if let Some(sock) = console {
        let pty = Pty::open(plan.console_size).unwrap_or_else(|e| fail(e));
        send_master(sock.as_fd(), pty.master.as_fd()).unwrap_or_else(|e| fail(e));
        drop(sock);
        pty.into_stdio().unwrap_or_else(|e| fail(e));
    }
    let start_state = State::new(spec, &opts.id, bundle, Status::Created, Some(pid));
    let trace = opts.trace_steps;
    let mut privileged = || trace_step(trace, "privileged");
    let mut before_start = || trace_step(trace, "before_start");
    let mut start_hooks = || {
        trace_step(trace, "after_start")?;
        hooks.run(HookKind::StartContainer, &start_state).map(drop).map_err(OciError::from)
    };
    let steps = ExecSteps {
        privileged: Some(&mut privileged),
        before_start: Some(&mut before_start),
        gate: Some(gate),
        after_start: Some(&mut start_hooks),
    };
    fail(plan.apply(steps))
}

/// The container failed: send the error to the runtime on the exec pipe
/// (bytes instead of the end-of-file an exec gives: the program was not
/// executed) and exit with its status. The runtime reports it (the
/// container's stderr may be a terminal by now).
fn fail(exec_w: &OwnedFd, r: ErrorRecord) -> ! {
    if nix::unistd::write(exec_w, &r.encode()).is_err() {
        eprintln!("oci_process_probe: {}", r.message);
    }
    exit(r.exit_code)
}

/// What the container sent on the exec pipe: None at end-of-file (the
/// program was executed), else its error.
fn container_error(exec_r: &OwnedFd) -> Option<String> {
    let mut buf = vec![0u8; 16 + ErrorRecord::MAX_MESSAGE];
    match read_all(exec_r, &mut buf) {
        0 => None,
        n => Some(match ErrorRecord::decode(&buf[..n]) {
            Ok(r) => r.message,
            Err(e) => e.to_string(),
        }),
    }
}

/// With --trace-steps: append "<step> <uid> <NoNewPrivs> <CapEff>" to
/// /hooklog/steps (after pivot_root: the container's /hooklog; before
/// it is never called).
fn trace_step(on: bool, step: &str) -> Result<(), OciError> {
    if !on {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).unwrap_or("?").trim().to_owned();
    let line = format!("{step} {} {} {}\n", nix::unistd::getuid(), field("NoNewPrivs:"), field("CapEff:"));
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open("/hooklog/steps")
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| OciError::Caller { step: "trace-steps", message: format!("/hooklog/steps: {e}") })
}
