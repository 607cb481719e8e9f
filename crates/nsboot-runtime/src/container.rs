//! `create`, `run` and `exec`: the processes of a container.
//!
//! ```text
//! runtime ──fork──▶ P1: setns(paths), unshare(user) [runtime writes the
//!                       id maps], unshare(the rest) ──fork──▶ P2 (pid 1 of
//!                       a new pid namespace) ; P1 sends P2's pid, exits
//! runtime: P2 into the cgroup, prestart + createRuntime hooks, "go"
//! P2: unshare(cgroup), createContainer hooks, sysctls, rootfs, console,
//!     ProcessPlan::apply (caps, user, no_new_privs, seccomp), "created",
//!     then blocks reading exec.fifo (opened O_RDWR before the fork) until
//!     `start` writes a byte into it; startContainer hooks; execve.
//! ```
//!
//! P1 exits right away, so P2 is re-parented to the nearest subreaper
//! (conmon, containerd-shim; `run` and `exec` make the runtime one, to
//! wait for it). Every error before the end of `create` kills what was
//! forked and removes the cgroup and the state directory (`Guard`).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use nsboot_oci::cgroups::{Cgroup, CgroupPlan, Hierarchies};
use nsboot_oci::console::{connect_socket, send_master, Pty};
use nsboot_oci::hooks::{HookKind, Hooks, State as HookState, Status as HookStatus};
use nsboot_oci::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nsboot_oci::process::{ExecSteps, ProcessPlan, StartGate};
use nsboot_oci::rootfs::{prepare, RootfsOptions, RootfsPlan};
use nsboot_oci::seccomp::SeccompPlan;
use nsboot_oci::{ErrorRecord, OciError};

use crate::cli::{CreateOpts, Ctx, ExecOpts};
use crate::state::{self, Dir, Saved};
use crate::Error;

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Create,
    RunDetached,
    Run { keep: bool },
}

/// The bundle's config, checked: everything that can be refused is
/// refused here, before anything exists.
pub struct Config {
    pub bundle: PathBuf,
    pub json: Vec<u8>,
    pub value: serde_json::Value,
    pub spec: Spec,
}

pub fn load_config(bundle: &Path) -> Result<Config, Error> {
    let bundle = std::fs::canonicalize(bundle).map_err(|e| Error::io("bundle", bundle, e))?;
    let path = bundle.join("config.json");
    let json = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| Error::msg(format!("{}: malformed JSON: {e}", path.display())))?;
    let version = value.get("ociVersion").and_then(|v| v.as_str()).unwrap_or("");
    if !version.starts_with("1.") {
        return Err(Error::msg(format!(
            "{}: unsupported ociVersion {version:?} (supported: {} to {})",
            path.display(),
            nsboot_oci::features::OCI_VERSION_MIN,
            nsboot_oci::features::OCI_VERSION_MAX
        )));
    }
    let spec: Spec =
        serde_json::from_value(value.clone()).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    let json = match bind_data_dropped(&value) {
        Some(v) => serde_json::to_vec(&v)?,
        None => json,
    };
    Ok(Config { bundle, json, value, spec })
}

/// A bind mount's filesystem data options (`mode=755`, `size=1k`) mean
/// nothing to the kernel (mount(2) ignores data with MS_BIND; runc passes
/// them and they vanish); nsboot-oci's rootfs plan refuses them as
/// unknown, so they are dropped here. `None`: nothing to drop.
fn bind_data_dropped(v: &serde_json::Value) -> Option<serde_json::Value> {
    let mounts = v.get("mounts")?.as_array()?;
    let is_bind = |m: &serde_json::Value| {
        m.get("type").and_then(|t| t.as_str()) == Some("bind")
            || m.get("options")
                .and_then(|o| o.as_array())
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
    };
    let has_data = |m: &serde_json::Value| {
        m.get("options")
            .and_then(|o| o.as_array())
            .is_some_and(|o| o.iter().any(|x| x.as_str().is_some_and(|x| x.contains('='))))
    };
    if !mounts.iter().any(|m| is_bind(m) && has_data(m)) {
        return None;
    }
    let mut v = v.clone();
    for m in v["mounts"].as_array_mut()? {
        if is_bind(m) {
            if let Some(o) = m.get_mut("options").and_then(|o| o.as_array_mut()) {
                o.retain(|x| !x.as_str().is_some_and(|x| x.contains('=')));
            }
        }
    }
    Some(v)
}

/// `--systemd-cgroup`: "slice:prefix:name" → "/slice/prefix-name.scope"
/// on cgroupfs (no systemd unit is made).
fn cgroups_path(ctx: &Ctx, spec: &Spec) -> Result<Option<PathBuf>, Error> {
    let p = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let Some(p) = p else { return Ok(None) };
    let s = p.to_string_lossy();
    if ctx.systemd_cgroup || (s.split(':').count() == 3 && !s.starts_with('/')) {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 3 {
            return Err(Error::msg(format!("linux.cgroupsPath {s:?}: --systemd-cgroup expects \"slice:prefix:name\"")));
        }
        let slice = if parts[0].is_empty() { "system.slice" } else { parts[0] };
        let unit = if parts[1].is_empty() {
            format!("{}.scope", parts[2])
        } else {
            format!("{}-{}.scope", parts[1], parts[2])
        };
        return Ok(Some(PathBuf::from("/").join(slice).join(unit)));
    }
    Ok(Some(p))
}

/// Compiled seccomp programs (nsboot-oci's cache: 0700, owned by us,
/// keyed by the exact profile), under `--root`.
fn seccomp_cache(ctx: &Ctx) -> PathBuf {
    ctx.root.join(".seccomp-cache")
}

fn fork() -> Result<ForkResult, Error> {
    // SAFETY: nsboot-runtime never starts a thread (clap, serde and the
    // nsboot-oci planning code run on the main thread only).
    unsafe { nsboot_oci::sys::fork_single_threaded() }.map_err(|e| Error::msg(format!("fork: {e}")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::msg(format!("pipe2: {e}")))
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

fn write_all(fd: &OwnedFd, buf: &[u8]) -> bool {
    let mut off = 0;
    while off < buf.len() {
        match nix::unistd::write(fd, &buf[off..]) {
            Ok(n) => off += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

pub fn wait_exit(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// What the container sent on the exec pipe: None at end-of-file (the
/// program was executed), else its error.
fn container_error(exec_r: &OwnedFd) -> Option<ErrorRecord> {
    let mut buf = vec![0u8; 16 + ErrorRecord::MAX_MESSAGE];
    match read_all(exec_r, &mut buf) {
        0 => None,
        n => Some(ErrorRecord::decode(&buf[..n]).unwrap_or_else(|e| ErrorRecord::other(&e, None, 1))),
    }
}

fn child_fail(exec_w: &OwnedFd, r: ErrorRecord) -> ! {
    if !write_all(exec_w, &r.encode()) {
        eprintln!("nsboot-runtime: {}", r.message);
    }
    std::process::exit(r.exit_code)
}

/// Removes what a failed create made.
struct Guard {
    dir: Option<Dir>,
    cgroup: Option<Cgroup>,
    pids: Vec<Pid>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for p in &self.pids {
            let _ = kill(*p, Signal::SIGKILL);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.remove();
        }
        if let Some(d) = self.dir.take() {
            d.remove();
        }
    }
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Time => "time",
    }
}

/// The id-map lines of `linux.uidMappings`/`gidMappings` (default: the
/// caller as root).
fn id_map(spec: &Spec, uid: bool) -> String {
    let linux = spec.linux().as_ref();
    let maps =
        if uid { linux.and_then(|l| l.uid_mappings().clone()) } else { linux.and_then(|l| l.gid_mappings().clone()) };
    match maps {
        Some(m) if !m.is_empty() => {
            m.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
        }
        _ => {
            let id = if uid { nix::unistd::geteuid().as_raw() } else { nix::unistd::getegid().as_raw() };
            format!("0 {id} 1\n")
        }
    }
}

pub fn create(ctx: &Ctx, id: &str, o: &CreateOpts, mode: Mode) -> Result<i32, Error> {
    state::validate_id(id)?;
    let cfg = load_config(&o.bundle)?;
    let spec = &cfg.spec;
    let plan = ProcessPlan::from_json(&cfg.json)
        .map_err(|e| Error::msg(format!("{}/config.json: {e}", cfg.bundle.display())))?;
    let hooks = Hooks::from_spec(spec).map_err(|e| Error::msg(format!("{}/config.json: {e}", cfg.bundle.display())))?;
    let ropts = RootfsOptions { no_pivot: o.no_pivot, bundle: Some(cfg.bundle.clone()) };
    // Without a mount namespace nothing is mounted (it would be the
    // host's mount table): the container only gets chroot(root.path).
    let has_mountns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    let rootfs = if has_mountns {
        Rootfs::Plan(Box::new(
            RootfsPlan::from_json(&cfg.json, &ropts)
                .map_err(|e| Error::msg(format!("{}/config.json: {e}", cfg.bundle.display())))?,
        ))
    } else {
        let r = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_else(|| PathBuf::from("rootfs"));
        Rootfs::Chroot(cfg.bundle.join(r))
    };
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(
            SeccompPlan::from_spec_cached(s, &seccomp_cache(ctx))
                .map_err(|e| Error::msg(format!("{}/config.json: {e}", cfg.bundle.display())))?,
        ),
        None => None,
    };
    let cg_plan = CgroupPlan::new(
        cgroups_path(ctx, spec)?.as_deref(),
        spec.linux().as_ref().and_then(|l| l.resources().as_ref()),
        id,
    )
    .map_err(|e| Error::msg(format!("{}/config.json: {e}", cfg.bundle.display())))?;
    for w in &plan.warnings {
        ctx.log.warn(w);
    }
    let rootfs_path = {
        let r = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_else(|| PathBuf::from("rootfs"));
        let p = cfg.bundle.join(r);
        std::fs::canonicalize(&p).map_err(|e| Error::io("root.path", &p, e))?
    };
    let namespaces: Vec<(LinuxNamespaceType, Option<PathBuf>)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect();
    let mut joins = Vec::new();
    for (t, p) in &namespaces {
        if let Some(p) = p {
            let fd = nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .map_err(|e| Error::io(&format!("linux.namespaces ({}) open", ns_file(*t)), p, e.into()))?;
            joins.push((*t, fd));
        }
    }
    // User namespace first.
    joins.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    let new_user = namespaces.iter().any(|(t, p)| *t == LinuxNamespaceType::User && p.is_none());
    let mut unshare_flags = CloneFlags::empty();
    let mut new_cgroupns = false;
    for (t, p) in &namespaces {
        if p.is_none() && *t != LinuxNamespaceType::User {
            if *t == LinuxNamespaceType::Cgroup {
                new_cgroupns = true;
            } else {
                unshare_flags |= ns_flag(*t);
            }
        }
    }
    let console = match (plan.terminal, &o.console_socket) {
        (true, Some(path)) => {
            Some(connect_socket(path).map_err(|e| Error::msg(format!("--console-socket {}: {e}", path.display())))?)
        }
        (true, None) => return Err(Error::msg("process.terminal is true: --console-socket is required")),
        (false, Some(p)) => {
            // runc refuses a socket it would not use.
            return Err(Error::msg(format!("--console-socket {}: process.terminal is false", p.display())));
        }
        (false, None) => None,
    };

    // From here on things exist: the guard removes them on any error.
    let dir = Dir::create(&ctx.root, id)?;
    let mut g = Guard { dir: None, cgroup: None, pids: Vec::new() };
    let dir_path = dir.path.clone();
    g.dir = Some(dir);
    let fifo = state::make_fifo(&dir_path.join(state::FIFO))?;
    let hier = Hierarchies::detect().map_err(|e| Error::msg(format!("cgroups: {e}")))?;
    let cg = match cg_plan.create(&hier) {
        Ok(cg) => {
            // nsboot-oci printed them on stderr already; the log file gets them too.
            for w in &cg.warnings {
                ctx.log.to_file("warning", w);
            }
            Some(cg)
        }
        // Rootless engines run the runtime as root of their own user
        // namespace: without a delegated cgroup it runs without one, with
        // a warning, as runc's rootless mode does on cgroup v1.
        Err(e) if crate::cli::in_user_namespace() && e.to_string().contains("Permission denied") => {
            ctx.log.warn(&format!("rootless: no cgroup ({e})"));
            None
        }
        Err(e) => return Err(Error::msg(format!("cgroups: {e}"))),
    };
    g.cgroup = cg.clone();
    let annotations = spec.annotations().clone().unwrap_or_default().into_iter().collect();
    let mut saved = Saved {
        id: id.to_owned(),
        pid: 0,
        pid_start: 0,
        bundle: cfg.bundle.clone(),
        rootfs: rootfs_path,
        created: state::now_rfc3339(),
        owner: String::new(),
        oci_version: spec.version().clone(),
        annotations,
        cgroup: cg.clone(),
        config: cfg.value.clone(),
    };
    g.dir.as_ref().map(|d| d.save(&saved)).transpose()?;

    let (go_r, go_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let (exec_r, exec_w) = pipe()?;
    let (created_r, created_w) = pipe()?;
    // "in the cgroup": the runtime joins the container's cgroups after
    // "go", while the container prepares its rootfs; the first v1
    // cgroup.procs write waits for an RCU grace period (~10 ms here).
    let (joined_r, joined_w) = pipe()?;
    let (map_r, map_w) = pipe()?; // P1 → runtime: "user namespace made"
    let (mapped_r, mapped_w) = pipe()?; // runtime → P1: "maps written"
    if matches!(mode, Mode::Run { .. }) {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::msg(format!("prctl PR_SET_CHILD_SUBREAPER: {e}")))?;
        // Forwarded to the container by `forward_until_exit` (the
        // children unblock them first thing).
        forwarded().thread_block().map_err(|e| Error::msg(format!("sigprocmask: {e}")))?;
    }
    let bundle_s = cfg.bundle.to_string_lossy().into_owned();
    let lock_fd = g.dir.as_ref().map(|d| d.lock_fd());

    let ForkResult::Parent { child: p1 } = fork()? else {
        let _ = forwarded().thread_unblock();
        drop((go_w, pid_r, exec_r, created_r, map_r, mapped_w, joined_w));
        if let Some(fd) = lock_fd {
            let _ = nix::unistd::close(fd);
        }
        // P1.
        let die = |what: String| -> ! {
            let _ = write_all(&exec_w, &ErrorRecord::other(&what, None, 1).encode());
            std::process::exit(1)
        };
        for (t, fd) in &joins {
            if let Err(e) = nix::sched::setns(fd.as_fd(), ns_flag(*t)) {
                die(format!("setns {}: {e}", ns_file(*t)));
            }
        }
        if new_user {
            if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
                die(format!("unshare user: {e}"));
            }
            let _ = write_all(&map_w, b"u");
            let mut b = [0u8; 1];
            if read_all(&mapped_r, &mut b) != 1 {
                std::process::exit(1);
            }
            let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
            let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
        }
        drop((map_w, mapped_r));
        if let Err(e) = nix::sched::unshare(unshare_flags) {
            die(format!("unshare {unshare_flags:?}: {e}"));
        }
        match fork() {
            Ok(ForkResult::Parent { child }) => {
                let _ = write_all(&pid_w, &child.as_raw().to_ne_bytes());
                std::process::exit(0);
            }
            Ok(ForkResult::Child) => {}
            Err(e) => die(e.0),
        }
        drop(pid_w);
        let join_early = new_cgroupns || needs_cgroup_early(spec);
        container_main(
            Pipes { go_r, exec_w, created_w, joined_r, join_early },
            fifo,
            console,
            new_cgroupns,
            &plan,
            &hooks,
            &rootfs,
            seccomp.as_ref(),
            spec,
            id,
            &bundle_s,
            o.preserve_fds,
        )
    };
    drop((go_r, pid_w, exec_w, created_w, map_w, mapped_r, fifo, console, joined_r));
    g.pids.push(p1);
    if new_user {
        let mut b = [0u8; 1];
        if read_all(&map_r, &mut b) == 1 {
            let pd = PathBuf::from(format!("/proc/{p1}"));
            for (f, v) in [
                ("setgroups", if nix::unistd::geteuid().is_root() { None } else { Some("deny".to_owned()) }),
                ("uid_map", Some(id_map(spec, true))),
                ("gid_map", Some(id_map(spec, false))),
            ] {
                if let Some(v) = v {
                    std::fs::write(pd.join(f), v).map_err(|e| Error::io("write", &pd.join(f), e))?;
                }
            }
            let _ = write_all(&mapped_w, b"m");
        }
    }
    drop((map_r, mapped_w));
    let mut pid_buf = [0u8; 4];
    let got = read_all(&pid_r, &mut pid_buf);
    wait_exit(p1);
    if got != 4 {
        return Err(match container_error(&exec_r) {
            Some(r) => Error::msg(r.message),
            None => Error::msg("the namespace process failed"),
        });
    }
    let pid = i32::from_ne_bytes(pid_buf);
    g.pids.push(Pid::from_raw(pid));
    let hstate = |status: HookStatus| HookState::new(spec, id, &bundle_s, status, Some(pid));
    let run_poststop = |log: &crate::Log| {
        if let Ok(w) = hooks.run(HookKind::Poststop, &hstate(HookStatus::Stopped)) {
            for w in w {
                log.warn(&w.to_string());
            }
        }
    };
    for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
        // "created", as crun and the validation suite (hooks_stdin) have it:
        // the container exists by the time these run.
        if let Err(e) = hooks.run(kind, &hstate(HookStatus::Created)) {
            run_poststop(ctx.log);
            return Err(Error::msg(e.to_string()));
        }
    }
    let mut go = [1u8; 5];
    go[1..].copy_from_slice(&pid.to_ne_bytes());
    if !write_all(&go_w, &go) {
        return Err(Error::msg("the container process went away before it was created"));
    }
    drop(go_w);
    if let Some(cg) = &cg {
        cg.add_pid(Pid::from_raw(pid)).map_err(|e| Error::msg(format!("cgroups: {e}")))?;
    }
    if !write_all(&joined_w, b"j") {
        return Err(Error::msg("the container process went away before it was created"));
    }
    drop(joined_w);
    let mut b = [0u8; 1];
    if read_all(&created_r, &mut b) != 1 {
        let msg = match container_error(&exec_r) {
            Some(r) => r.message,
            None => "the container process exited before it was created".into(),
        };
        // Killed by the guard; poststop as the lifecycle asks.
        run_poststop(ctx.log);
        return Err(Error::msg(msg));
    }
    saved.pid = pid;
    saved.pid_start = state::start_time(pid).unwrap_or(0);
    let dir = g.dir.as_ref().expect("dir");
    dir.save(&saved)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    // Created: nothing to roll back any more.
    let dir = g.dir.take().expect("dir");
    g.cgroup = None;
    g.pids.clear();
    drop(g);
    if let Mode::Create = mode {
        return Ok(0);
    }
    // run: start.
    state::release_fifo(&dir.fifo())?;
    match container_error(&exec_r) {
        None => {
            if let Ok(w) = hooks.run(HookKind::Poststart, &hstate(HookStatus::Running)) {
                for w in w {
                    ctx.log.warn(&w.to_string());
                }
            }
        }
        Some(r) => {
            // The program was not executed: the container is gone.
            wait_pid_quiet(pid);
            if let Some(cg) = &cg {
                let _ = cg.remove();
            }
            run_poststop(ctx.log);
            dir.remove();
            return Err(Error::msg(r.message));
        }
    }
    let Mode::Run { keep } = mode else {
        return Ok(0);
    };
    drop(dir); // unlock while it runs (kill/state/exec from other processes)
    let code = forward_until_exit(Pid::from_raw(pid));
    if !keep {
        let dir = Dir::open(&ctx.root, id)?;
        if let Some(cg) = &cg {
            let _ = cg.remove();
        }
        run_poststop(ctx.log);
        dir.remove();
    }
    Ok(code)
}

/// The signals `run` (foreground) passes on to the container, as runc.
fn forwarded() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGCHLD] {
        set.add(s);
    }
    set
}

/// Wait for `pid` (our child: we are its subreaper), passing the
/// forwarded signals to it; reap anything else that is re-parented to us.
fn forward_until_exit(pid: Pid) -> i32 {
    let set = forwarded();
    loop {
        loop {
            match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == pid => return c,
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(_) => {}
        }
    }
}

fn wait_pid_quiet(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), None);
}

pub fn write_pid_file(pf: &Path, pid: i32) -> Result<(), Error> {
    let tmp = pf.with_file_name(format!(".{}.tmp", pf.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, pf).map_err(|e| Error::io("rename", pf, e))
}

/// Mark every fd above 2 + `preserve` close-on-exec (runc passes only
/// stdio and `--preserve-fds`).
fn cloexec_above(preserve: u32) {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect())
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|fd| *fd > 2 + preserve as i32) {
        // SAFETY: fcntl F_SETFD on an fd number; a closed one gives EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

fn seccomp_step<'a>(
    seccomp: Option<&'a SeccompPlan>,
    st: &'a HookState,
    pid: i32,
) -> impl FnMut() -> Result<(), OciError> + 'a {
    move || {
        let Some(s) = seccomp else { return Ok(()) };
        let listener = s.load().map_err(|e| OciError::Caller { step: "seccomp", message: e.to_string() })?;
        if let (Some(fd), Some(path)) = (listener, s.listener_path()) {
            let oci: nsboot_oci::oci_spec::runtime::State =
                serde_json::to_value(st)
                    .and_then(serde_json::from_value)
                    .map_err(|e| OciError::Caller { step: "seccomp listener", message: e.to_string() })?;
            let ps = nsboot_oci::seccomp::notify::process_state(&oci, pid, s.listener_metadata());
            nsboot_oci::seccomp::notify::send_listener(path, &ps, fd.as_fd())
                .map_err(|e| OciError::Caller { step: "seccomp listener", message: e.to_string() })?;
        }
        Ok(())
    }
}

/// The container process's ends of the pipes to the runtime.
struct Pipes {
    go_r: OwnedFd,
    exec_w: OwnedFd,
    created_w: OwnedFd,
    joined_r: OwnedFd,
    /// Wait for the cgroup join right after "go" (cgroup namespace,
    /// createContainer hooks, a cgroupfs mount), else just before apply.
    join_early: bool,
}

/// Whether the container needs to be in its cgroups before its rootfs is
/// prepared: createContainer hooks run as its children, a cgroupfs mount
/// shows the cgroups it is in.
fn needs_cgroup_early(spec: &Spec) -> bool {
    let hooks = spec.hooks().as_ref().and_then(|h| h.create_container().as_ref()).is_some_and(|h| !h.is_empty());
    let cgroup_mount = spec.mounts().as_ref().is_some_and(|m| {
        m.iter().any(|m| m.typ().as_deref() == Some("cgroup") || m.typ().as_deref() == Some("cgroup2"))
    });
    hooks || cgroup_mount
}

/// How the container gets its root.
enum Rootfs {
    /// nsboot-oci's rootfs stage (mounts, pivot_root) in the new mount namespace.
    Plan(Box<RootfsPlan>),
    /// No mount namespace: chroot only.
    Chroot(PathBuf),
}

type Step<'a> = &'a mut dyn FnMut() -> Result<(), OciError>;

/// The seccomp step where it can load: `privileged` (early) or `before_start`.
fn split_step(early: bool, step: Step<'_>) -> (Option<Step<'_>>, Option<Step<'_>>) {
    if early {
        (Some(step), None)
    } else {
        (None, Some(step))
    }
}

#[allow(clippy::too_many_arguments)]
fn container_main(
    pipes: Pipes,
    fifo: OwnedFd,
    console: Option<OwnedFd>,
    new_cgroupns: bool,
    plan: &ProcessPlan,
    hooks: &Hooks,
    rootfs: &Rootfs,
    seccomp: Option<&SeccompPlan>,
    spec: &Spec,
    id: &str,
    bundle: &str,
    preserve_fds: u32,
) -> ! {
    let Pipes { go_r, exec_w, created_w, joined_r, join_early } = pipes;
    let mut go = [0u8; 5];
    if read_all(&go_r, &mut go) != 5 {
        std::process::exit(1);
    }
    drop(go_r);
    let pid = i32::from_ne_bytes([go[1], go[2], go[3], go[4]]);
    let mut joined = Some(joined_r);
    let mut wait_joined = || {
        if let Some(fd) = joined.take() {
            let mut b = [0u8; 1];
            if read_all(&fd, &mut b) != 1 {
                // The runtime failed to join the cgroup (it reports it).
                std::process::exit(1);
            }
        }
    };
    if join_early {
        wait_joined();
    }
    let fail = |e: OciError| -> ! { child_fail(&exec_w, e.record()) };
    if new_cgroupns {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
            child_fail(&exec_w, ErrorRecord::other(&format!("unshare cgroup: {e}"), Some(e), 1));
        }
    }
    if let Err(e) =
        hooks.run(HookKind::CreateContainer, &HookState::new(spec, id, bundle, HookStatus::Creating, Some(pid)))
    {
        fail(e.into());
    }
    if let Err(e) = plan.apply_sysctls() {
        fail(e);
    }
    let mut warn = |w: &str| eprintln!("nsboot-runtime: warning: {w}");
    match rootfs {
        Rootfs::Plan(p) => {
            if let Err(e) = prepare(p, &mut warn) {
                child_fail(&exec_w, ErrorRecord::other(&e, e.errno(), 1));
            }
        }
        Rootfs::Chroot(dir) => {
            if let Err(e) = nix::unistd::chroot(dir).and_then(|_| nix::unistd::chdir("/")) {
                child_fail(&exec_w, ErrorRecord::other(&format!("chroot {}: {e}", dir.display()), Some(e), 1));
            }
        }
    }
    if let Some(sock) = console {
        let pty = Pty::open(plan.console_size).unwrap_or_else(|e| fail(e));
        send_master(sock.as_fd(), pty.master.as_fd()).unwrap_or_else(|e| fail(e));
        drop(sock);
        pty.into_stdio().unwrap_or_else(|e| fail(e));
    }
    // In the container's cgroups before anything of the user's runs.
    wait_joined();
    cloexec_above(preserve_fds);
    let _ = fifo.as_raw_fd();
    let start_state = HookState::new(spec, id, bundle, HookStatus::Created, Some(pid));
    // Without no_new_privs the filter needs CAP_SYS_ADMIN: load it while
    // the process still has every capability (runc does the same).
    let mut load = seccomp_step(seccomp, &start_state, pid);
    let early = !plan.no_new_privileges;
    let mut start_hooks = || hooks.run(HookKind::StartContainer, &start_state).map(drop).map_err(OciError::from);
    let (privileged, before_start) = split_step(early, &mut load);
    let steps = ExecSteps {
        privileged,
        before_start,
        gate: Some(StartGate::from_fds(created_w, fifo)),
        after_start: Some(&mut start_hooks),
    };
    fail(plan.apply(steps))
}

/// `exec`: a new process in the container's namespaces and cgroup.
pub fn exec(ctx: &Ctx, id: &str, o: &ExecOpts, command: &[String]) -> Result<i32, Error> {
    let dir = Dir::open(&ctx.root, id)?;
    let saved = dir.load()?;
    let st = state::status(&dir, &saved);
    if !matches!(st, state::Status::Running | state::Status::Created) {
        return Err(Error::msg(format!("cannot exec in container {id}: it is {}", st.as_str())));
    }
    if st == state::Status::Paused && !o.ignore_paused {
        return Err(Error::msg(format!("cannot exec in container {id}: it is paused")));
    }
    let mut config = saved.config.clone();
    let process = match &o.process {
        Some(p) => {
            let b = std::fs::read(p).map_err(|e| Error::io("read", p, e))?;
            serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: malformed JSON: {e}", p.display())))?
        }
        None => {
            if command.is_empty() {
                return Err(Error::msg("exec: no command given (and no --process)"));
            }
            let mut p = config.get("process").cloned().unwrap_or_else(|| serde_json::json!({}));
            p["args"] = serde_json::json!(command);
            p["terminal"] = serde_json::json!(o.tty);
            if let Some(c) = &o.cwd {
                p["cwd"] = serde_json::json!(c);
            }
            let mut env: Vec<String> =
                p.get("env").and_then(|e| serde_json::from_value(e.clone()).ok()).unwrap_or_default();
            for e in &o.env {
                let key = e.split('=').next().unwrap_or("");
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            p["env"] = serde_json::json!(env);
            if let Some(u) = &o.user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                let uid: u32 =
                    uid.parse().map_err(|_| Error::msg(format!("--user {u:?}: expected uid[:gid] (numbers)")))?;
                let gid: u32 =
                    gid.parse().map_err(|_| Error::msg(format!("--user {u:?}: expected uid[:gid] (numbers)")))?;
                p["user"]["uid"] = serde_json::json!(uid);
                p["user"]["gid"] = serde_json::json!(gid);
            }
            if !o.additional_gids.is_empty() {
                p["user"]["additionalGids"] = serde_json::json!(o.additional_gids);
            }
            if o.no_new_privs {
                p["noNewPrivileges"] = serde_json::json!(true);
            }
            for c in &o.cap {
                for set in ["bounding", "effective", "permitted"] {
                    let arr = &mut p["capabilities"][set];
                    if !arr.is_array() {
                        *arr = serde_json::json!([]);
                    }
                    if let Some(a) = arr.as_array_mut() {
                        a.push(serde_json::json!(c));
                    }
                }
            }
            p
        }
    };
    config["process"] = process;
    // Set once by create; an exec does not change them.
    if let Some(o) = config.as_object_mut() {
        o.remove("hostname");
        o.remove("domainname");
    }
    if let Some(l) = config.get_mut("linux").and_then(|l| l.as_object_mut()) {
        l.remove("sysctl");
    }
    let json = serde_json::to_vec(&config)?;
    let plan = ProcessPlan::from_json(&json).map_err(|e| Error::msg(format!("exec process: {e}")))?;
    let spec: Spec = serde_json::from_value(config.clone())?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(
            SeccompPlan::from_spec_cached(s, &seccomp_cache(ctx)).map_err(|e| Error::msg(format!("seccomp: {e}")))?,
        ),
        None => None,
    };
    let console = match (plan.terminal, &o.console_socket) {
        (true, Some(path)) => {
            Some(connect_socket(path).map_err(|e| Error::msg(format!("--console-socket {}: {e}", path.display())))?)
        }
        (true, None) => return Err(Error::msg("exec --tty needs --console-socket")),
        (false, _) => None,
    };
    // The container's namespaces: user first, mount last.
    let mut joins = Vec::new();
    let types: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    let mut order = types.clone();
    // A joined (path) namespace is found in /proc/<pid>/ns too.
    order.sort_by_key(|t| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for t in order {
        let p = PathBuf::from(format!("/proc/{}/ns/{}", saved.pid, ns_file(t)));
        let fd = nix::fcntl::open(&p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .map_err(|e| Error::io("open", &p, e.into()))?;
        joins.push((t, fd));
    }
    let (go_r, go_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let (exec_r, exec_w) = pipe()?;
    if !o.detach {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::msg(format!("prctl: {e}")))?;
    }
    let bundle_s = saved.bundle.to_string_lossy().into_owned();
    let lock_fd = dir.lock_fd();
    let ForkResult::Parent { child: p1 } = fork()? else {
        drop((go_w, pid_r, exec_r));
        let _ = nix::unistd::close(lock_fd);
        for (t, fd) in &joins {
            if let Err(e) = nix::sched::setns(fd.as_fd(), ns_flag(*t)) {
                child_fail(&exec_w, ErrorRecord::other(&format!("setns {}: {e}", ns_file(*t)), Some(e), 1));
            }
        }
        match fork() {
            Ok(ForkResult::Parent { child }) => {
                let _ = write_all(&pid_w, &child.as_raw().to_ne_bytes());
                std::process::exit(0);
            }
            Ok(ForkResult::Child) => {}
            Err(e) => child_fail(&exec_w, ErrorRecord::other(&e.0, None, 1)),
        }
        drop(pid_w);
        let mut go = [0u8; 1];
        if read_all(&go_r, &mut go) != 1 {
            std::process::exit(1);
        }
        let fail = |e: OciError| -> ! { child_fail(&exec_w, e.record()) };
        if !types.contains(&LinuxNamespaceType::Mount) {
            // The container was only chroot-ed (no mount namespace to join).
            if let Err(e) = nix::unistd::chroot(&saved.rootfs).and_then(|_| nix::unistd::chdir("/")) {
                child_fail(&exec_w, ErrorRecord::other(&format!("chroot {}: {e}", saved.rootfs.display()), Some(e), 1));
            }
        }
        if let Some(sock) = console {
            let pty = Pty::open(plan.console_size).unwrap_or_else(|e| fail(e));
            send_master(sock.as_fd(), pty.master.as_fd()).unwrap_or_else(|e| fail(e));
            drop(sock);
            pty.into_stdio().unwrap_or_else(|e| fail(e));
        }
        cloexec_above(o.preserve_fds);
        let st = HookState::new(&spec, id, &bundle_s, HookStatus::Running, Some(saved.pid));
        let mut load = seccomp_step(seccomp.as_ref(), &st, saved.pid);
        let early = !plan.no_new_privileges;
        let (privileged, before_start) = split_step(early, &mut load);
        let steps = ExecSteps { privileged, before_start, gate: None, after_start: None };
        fail(plan.apply(steps))
    };
    drop((go_r, pid_w, exec_w, console));
    let mut pid_buf = [0u8; 4];
    let got = read_all(&pid_r, &mut pid_buf);
    wait_exit(p1);
    if got != 4 {
        return Err(match container_error(&exec_r) {
            Some(r) => Error::msg(r.message),
            None => Error::msg("exec: the namespace process failed"),
        });
    }
    let pid = Pid::from_raw(i32::from_ne_bytes(pid_buf));
    if let Some(cg) = &saved.cgroup {
        if let Err(e) = cg.add_pid(pid) {
            let _ = kill(pid, Signal::SIGKILL);
            return Err(Error::msg(format!("exec: cgroups: {e}")));
        }
    }
    drop(dir); // unlocked while the process runs
    let _ = write_all(&go_w, b"g");
    drop(go_w);
    if let Some(r) = container_error(&exec_r) {
        if !o.detach {
            wait_exit(pid);
        }
        return Err(Error::msg(r.message));
    }
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid.as_raw())?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(wait_exit(pid))
}
