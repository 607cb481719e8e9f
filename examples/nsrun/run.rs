//! `nsrun run`: validate everything first, reserve the name, lay out the
//! union filesystem, build the spec, start the container (in the
//! foreground, or from a detached monitor process for `-d`), record it.
//! Any failure before the command runs removes what was made.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::unistd::{getgid, getuid, User};
use nsboot::ns::NsKind;
use nsboot::wire::{BootstrapConfig, IdMap, IdRange};
use nsboot::SealedExe;

use crate::cli::{Image, RunOpts};
use crate::init::InitMsg;
use crate::state::{self, Record, Status};
use crate::supervise::{self, Io};
use crate::{Context, Fail, Result};

/// Everything decided before the container starts.
struct Plan {
    dir: PathBuf,
    record: Record,
    cfg: BootstrapConfig,
    msg: InitMsg,
    /// `start` of an existing container: a failure keeps its directory.
    keep_dir: bool,
    root: PathBuf,
    net: Option<(crate::net::Network, crate::net::Attachment)>,
    ports: Vec<crate::net::proxy::Port>,
    slirp: bool,
}

/// `nsrun run NAME [CMD...]`: with no --rootfs/--image/--bundle, a first
/// operand naming an imported image is the image (`--image NAME` too, when
/// NAME is no file). Its config then gives what the flags do not, as
/// docker: Entrypoint (unless --entrypoint) + the command or else Cmd,
/// Env under -e, WorkingDir under -w, User under -u.
fn resolve_image(mut o: RunOpts) -> Result<RunOpts> {
    let store = crate::images::Store::open(&state::root()?);
    let rec = match &o.image {
        Image::Host => match o.cmd.first().and_then(|c| store.lookup(c)) {
            Some(r) => {
                o.cmd.remove(0);
                Some(r)
            }
            None => None,
        },
        Image::Tar(t) if !t.exists() => {
            let name = t.to_string_lossy();
            Some(store.lookup(&name).ok_or_else(|| Fail::new(125, format!("image {name}: no such file or directory, and no imported image of that name")))?)
        }
        _ => None,
    };
    if let Some(rec) = rec {
        o.image = Image::Named(rec.id.clone());
        let c = &rec.config;
        let mut argv = match &o.entrypoint {
            Some(e) if !e.is_empty() => vec![e.clone()],
            Some(_) => Vec::new(),
            None => c.entrypoint.clone().unwrap_or_default(),
        };
        if !o.cmd.is_empty() {
            argv.append(&mut o.cmd);
        } else if o.entrypoint.is_none() {
            argv.extend(c.cmd.clone().unwrap_or_default());
        }
        o.cmd = argv;
        let mut env = c.env.clone().unwrap_or_default();
        env.append(&mut o.env);
        o.env = env;
        if o.workdir.is_none() {
            o.workdir = c.working_dir.clone().filter(|w| !w.is_empty());
        }
        if o.user.is_none() {
            o.user = c.user.clone().filter(|u| !u.is_empty());
        }
    } else if let Some(e) = o.entrypoint.take().filter(|e| !e.is_empty()) {
        o.cmd.insert(0, e);
    }
    if o.cmd.is_empty() && !matches!(o.image, Image::Bundle(_)) {
        return Err(Fail::new(125, "\"nsrun run\" requires a command to run (see 'nsrun run --help')"));
    }
    Ok(o)
}

/// `nsrun start`: run a stopped container again, detached, from its
/// recorded command line, in its directory (write layer kept).
pub fn restart(root: &Path, dir: &Path, old: &Record, o: RunOpts) -> Result<()> {
    let o = resolve_image(o)?;
    crate::image::validate(&o.image)?;
    let mut plan = plan(root, dir, &old.id, &old.name, &o)?;
    plan.keep_dir = true;
    plan.record.created = old.created;
    plan.record.auto_remove = old.auto_remove;
    detached(plan).map(drop)
}

pub fn run(o: RunOpts) -> Result<i32> {
    let o = resolve_image(o)?;
    // Checks that leave nothing behind when they fail.
    crate::image::validate(&o.image)?;
    for v in &o.volumes {
        if std::fs::symlink_metadata(&v.host).is_err() {
            return Err(Fail::new(125, format!("invalid volume {}: source path does not exist", v.host.display())));
        }
    }
    if o.tty && o.interactive && !supervise::stdin_is_tty() {
        return Err(Fail::new(125, "the input device is not a TTY: drop -t or give a terminal"));
    }
    let root = state::root()?;
    let id = state::random_id();
    let name = o.name.clone().unwrap_or_else(|| id[..12].to_owned());
    let dir = state::create(&root, &name)?;
    let plan = match plan(&root, &dir, &id, &name, &o) {
        Ok(p) => p,
        Err(e) => {
            let _ = state::remove_dir(&dir);
            return Err(e);
        }
    };
    if o.detach {
        detached(plan)
    } else {
        foreground(plan, &o)
    }
}

/// The network of `--net NAME` (a bridge), with an address reserved.
fn bridge(root: &Path, id: &str, o: &RunOpts) -> Result<Option<(crate::net::Network, crate::net::Attachment)>> {
    let crate::cli::Net::Bridge(name) = &o.net else { return Ok(None) };
    if matches!(o.image, Image::Bundle(_)) {
        return Err(Fail::new(125, "--bundle runs its config as is: no --net bridge"));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Fail::new(125, "bridge networks need root (rootless: --net none or host)"));
    }
    let n = crate::net::ensure(root, name)?;
    let addr = crate::net::allocate(root, &n, id)?;
    let a = crate::net::Attachment {
        network: n.name.clone(),
        addr,
        prefix: n.prefix,
        gateway: n.gateway(),
        host_if: format!("nsr{}", &id[..10]),
        ports: o.publish.clone(),
    };
    Ok(Some((n, a)))
}

fn plan(root: &Path, dir: &Path, id: &str, name: &str, o: &RunOpts) -> Result<Plan> {
    let net = bridge(root, id, o)?;
    let r = plan_with(root, dir, id, name, o, net.clone());
    if let (Err(_), Some((_, a))) = (&r, &net) {
        crate::net::release(root, a);
    }
    r
}

fn plan_with(root: &Path, dir: &Path, id: &str, name: &str, o: &RunOpts, net: Option<(crate::net::Network, crate::net::Attachment)>) -> Result<Plan> {
    let rootless = !nix::unistd::geteuid().is_root();
    let prepared = crate::image::prepare(root, dir, &o.image, rootless)?;
    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_owned());
    let mut spec = match &o.image {
        Image::Bundle(b) => crate::spec::from_bundle(b, &o.cmd, o.tty)?,
        _ => crate::spec::build(&crate::spec::Input {
            root: &prepared.root,
            hostname: &hostname,
            env: &o.env,
            cmd: &o.cmd,
            tty: o.tty,
            userns: rootless,
            net: &o.net,
            volumes: &o.volumes,
            host_image: o.image == Image::Host,
        }),
    };
    if matches!(o.image, Image::Bundle(_)) {
        // A bundle's config is run as is; -e adds to its environment.
        let (_, mut env, _) = crate::spec::process_of(&spec);
        env.extend(o.env.iter().cloned());
        spec["process"]["env"] = serde_json::json!(env);
        ambient_within_inheritable(&mut spec);
    } else {
        let layer = prepared.overlay.as_ref().and_then(|ov| ov.layers.iter().find(|l| l.target == prepared.root));
        // The topmost image layer holding /etc/passwd (for --user NAME).
        let image_root = layer
            .and_then(|l| std::iter::once(&l.lower).chain(&l.lowers).find(|d| d.join("etc/passwd").exists()).or(Some(&l.lower)))
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/"));
        let addr = match &o.net {
            crate::cli::Net::Slirp => crate::net::slirp::ADDR.parse().ok(),
            _ => net.as_ref().map(|(_, a)| a.addr),
        };
        crate::config::customize(&mut spec, o, &image_root, layer.map(|l| l.upper.as_path()), dir, &hostname, addr)?;
        crate::security::apply_to(&mut spec, &o.security)?;
    }
    let spec_json = serde_json::to_string(&spec).ctx(|| "encode spec".to_owned())?;
    // Every key checked here, before anything starts (the container side
    // applies the same plan).
    nsboot_oci::ProcessPlan::from_json(spec_json.as_bytes()).map_err(|e| Fail::new(125, format!("config: {e}")))?;
    let ns = crate::spec::namespaces(&spec)?;
    let (args, env, cwd) = crate::spec::process_of(&spec);
    let mut cfg = BootstrapConfig { clone_flags: ns.create, ns_paths: ns.join, ..Default::default() };
    let userns = cfg.clone_flags.contains(NsKind::User);
    if rootless && !userns {
        return Err(Fail::new(125, "running as an unprivileged user needs a user namespace (the bundle has none)"));
    }
    if userns {
        match (ns.uid_map, ns.gid_map) {
            (Some(u), Some(g)) => {
                cfg.uid_map = Some(u);
                cfg.gid_map = Some(g);
            }
            _ => rootless_maps(&mut cfg)?,
        }
        cfg.rootless_euid = rootless;
        if !matches!(o.image, Image::Bundle(_)) {
            check_user_mapped(&spec, &cfg)?;
        }
    } else {
        cfg.setgroup = true;
    }
    let msg = InitMsg {
        spec: spec_json,
        rootfs: true,
        bundle: match &o.image {
            Image::Bundle(b) => Some(b.canonicalize().ctx(|| format!("bundle {}", b.display()))?),
            _ => None,
        },
        overlay: prepared.overlay,
        tty: o.tty,
        init: o.init,
        seccomp_bpf: crate::security::compiled(root, &spec)?,
        lo_up: cfg.clone_flags.contains(NsKind::Net),
        die_with_parent: !o.detach,
        winsize: None,
    };
    let record = Record {
        id: id.to_owned(),
        name: name.to_owned(),
        status: Status::Created,
        pid: 0,
        pid_start: 0,
        supervisor: std::process::id() as i32,
        exit_code: None,
        created: state::now(),
        finished: None,
        command: args,
        env,
        cwd,
        userns,
        detached: o.detach,
        auto_remove: o.rm,
        image: prepared.desc,
        image_id: prepared.image_id,
        security: Some(crate::security::exec_part(&spec)),
        cgroup: None,
        args: o.argv.clone(),
        network: net.as_ref().map(|(_, a)| a.clone()),
    };
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, &msg.spec).ctx(|| format!("write {}", cfg_path.display()))?;
    let mut record = record;
    record.cgroup = match &o.image {
        // A bundle's own linux.resources (root only, as runc/crun).
        Image::Bundle(_) => crate::limits::create_from_spec(&spec, id)?,
        _ => crate::limits::create(&o.limits, id)?,
    };
    if let Err(e) = state::save(dir, &record) {
        record.cgroup.as_ref().map(crate::limits::remove);
        return Err(Fail::new(125, format!("write the state of {name}: {e}")));
    }
    Ok(Plan { dir: dir.to_owned(), record, cfg, msg, keep_dir: false, root: root.to_owned(), net, ports: o.publish.clone(), slirp: o.net == crate::cli::Net::Slirp })
}

/// The kernel raises an ambient capability only when it is permitted and
/// inheritable; `runc spec` lists ambient ones without inheritable, and
/// runc carries on when the raise fails. nsboot_oci applies what it is
/// given and stops at the first refusal, so such entries are dropped here.
fn ambient_within_inheritable(spec: &mut serde_json::Value) {
    let Some(caps) = spec.pointer_mut("/process/capabilities") else { return };
    let list = |k: &str| -> Vec<serde_json::Value> { caps.get(k).and_then(|v| v.as_array()).cloned().unwrap_or_default() };
    let (inh, prm) = (list("inheritable"), list("permitted"));
    if let Some(amb) = caps.get_mut("ambient").and_then(|v| v.as_array_mut()) {
        amb.retain(|c| inh.contains(c) && prm.contains(c));
    }
}

/// In a user namespace, `--user` must name ids the namespace maps, and
/// supplementary groups need setgroups (a single mapping denies it).
fn check_user_mapped(spec: &serde_json::Value, cfg: &BootstrapConfig) -> Result<()> {
    let id = |k: &str| spec.pointer(&format!("/process/user/{k}")).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    let mapped = |m: &Option<IdMap>, n: u32| m.as_ref().is_some_and(|m| m.0.iter().any(|r| n >= r.inside && n - r.inside < r.count));
    let need = "rootless nsrun maps only the ids of /etc/subuid and /etc/subgid (with newuidmap/newgidmap)";
    if !mapped(&cfg.uid_map, id("uid")) {
        return Err(Fail::new(125, format!("user {} is not mapped in the container's user namespace: {need}", id("uid"))));
    }
    if !mapped(&cfg.gid_map, id("gid")) {
        return Err(Fail::new(125, format!("group {} is not mapped in the container's user namespace: {need}", id("gid"))));
    }
    let extra = spec.pointer("/process/user/additionalGids").and_then(|v| v.as_array()).map_or(0, Vec::len);
    if extra > 0 && !cfg.setgroup {
        return Err(Fail::new(125, format!("supplementary groups need setgroups, denied in a single-id user namespace: {need}")));
    }
    Ok(())
}

/// The id maps of an unprivileged user: itself as root, plus its
/// /etc/subuid and /etc/subgid ranges (through newuidmap/newgidmap) when
/// it has some; otherwise a single mapping with setgroups denied.
fn rootless_maps(cfg: &mut BootstrapConfig) -> Result<()> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let user = User::from_uid(getuid()).ok().flatten().map(|u| u.name).unwrap_or_default();
    let sub = |file: &str, id: u32| -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            (who == user || who == id.to_string()).then_some(())?;
            Some((start.trim().parse().ok()?, count.trim().parse().ok()?))
        })
    };
    let helpers = [Path::new("/usr/bin/newuidmap"), Path::new("/usr/bin/newgidmap")];
    match (sub("/etc/subuid", uid), sub("/etc/subgid", gid)) {
        (Some((us, uc)), Some((gs, gc))) if helpers.iter().all(|h| h.exists()) && uc > 0 && gc > 0 => {
            let map = |own: u32, start: u32, count: u32| {
                IdMap(vec![IdRange { inside: 0, outside: own, count: 1 }, IdRange { inside: 1, outside: start, count }])
            };
            cfg.uid_map = Some(map(uid, us, uc));
            cfg.gid_map = Some(map(gid, gs, gc));
            cfg.uidmap_helper = Some(c"/usr/bin/newuidmap".to_owned());
            cfg.gidmap_helper = Some(c"/usr/bin/newgidmap".to_owned());
            cfg.setgroup = true;
        }
        _ => {
            cfg.uid_map = Some(IdMap::single(0, uid, 1));
            cfg.gid_map = Some(IdMap::single(0, gid, 1));
            cfg.setgroup = false;
        }
    }
    Ok(())
}

/// A container that did not start: its cgroup and directory go.
fn discard(plan: &Plan) {
    plan.record.cgroup.as_ref().map(crate::limits::remove);
    if let Some((_, a)) = &plan.net {
        crate::net::release(&plan.root, a);
    }
    if plan.keep_dir {
        let mut r = plan.record.clone();
        r.status = Status::Exited;
        r.cgroup = None;
        let _ = state::save(&plan.dir, &r);
    } else {
        let _ = state::remove_dir(&plan.dir);
    }
}

fn cgroup_procs(plan: &Plan) -> Result<Vec<std::os::fd::OwnedFd>> {
    match &plan.record.cgroup {
        Some(cg) => crate::limits::procs_files(cg),
        None => Ok(Vec::new()),
    }
}

fn record_start(plan: &mut Plan, pid: i32) {
    plan.record.status = Status::Running;
    plan.record.pid = pid;
    plan.record.pid_start = state::proc_stat(pid).map(|(_, s)| s).unwrap_or(0);
    plan.record.supervisor = std::process::id() as i32;
    let _ = state::save(&plan.dir, &plan.record);
}

/// After the container's PID 1 ended: record it, or remove it (`--rm`).
fn record_exit(plan: &mut Plan, code: i32) {
    plan.record.cgroup.as_ref().map(crate::limits::remove);
    if let Some((_, a)) = &plan.net {
        crate::net::release(&plan.root, a);
    }
    if plan.record.auto_remove {
        let _ = state::remove_dir(&plan.dir);
        return;
    }
    plan.record.status = Status::Exited;
    plan.record.exit_code = Some(code);
    plan.record.finished = Some(state::now());
    // The directory may be gone (`rm -f` meanwhile): then there is
    // nothing to record.
    if plan.dir.is_dir() {
        let _ = state::save(&plan.dir, &plan.record);
    }
}

/// `--net slirp4netns`: the container's directory (for the API socket) and
/// the ports to forward.
fn slirp_of(plan: &Plan) -> Option<(&Path, &[crate::net::proxy::Port])> {
    plan.slirp.then_some((plan.dir.as_path(), plan.ports.as_slice()))
}

/// Bind the published ports (before the container starts).
fn bind_ports(plan: &Plan) -> Result<Vec<crate::net::proxy::Bound>> {
    match &plan.net {
        Some((_, a)) => crate::net::proxy::bind(&plan.ports, a.addr),
        None => Ok(Vec::new()),
    }
}

fn foreground(mut plan: Plan, o: &RunOpts) -> Result<i32> {
    let bound = match bind_ports(&plan) {
        Ok(b) => b,
        Err(e) => {
            discard(&plan);
            return Err(e);
        }
    };
    let io = if o.tty { Io::Tty { interactive: o.interactive } } else { Io::Inherit { stdin: o.interactive } };
    let started = SealedExe::current()
        .ctx(|| "seal the nsrun binary".to_owned())
        .and_then(|sealed| supervise::start(&sealed, &plan.cfg, &plan.msg, io, &cgroup_procs(&plan)?, plan.net.as_ref(), slirp_of(&plan)));
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            discard(&plan);
            return Err(e);
        }
    };
    record_start(&mut plan, started.pid().as_raw());
    crate::net::proxy::serve(bound);
    let code = supervise::wait(started);
    record_exit(&mut plan, code);
    Ok(code)
}

/// `-d`: a monitor process (setsid, stdio on /dev/null) starts the
/// container with its output in `<dir>/ctr.log`, tells us over a pipe
/// whether that worked, then waits for it, records its exit and ends at
/// once. It reaps the container's processes itself; the monitor, orphaned
/// when `nsrun run -d` returned, is reaped by the host's init (PID 1 or a
/// subreaper): a `[nsrun] <defunct>` entry lasts as long as that init
/// takes to reap it, which nsrun cannot shorten (only a parent reaps).
fn detached(mut plan: Plan) -> Result<i32> {
    let log_path = plan.dir.join("ctr.log");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).ctx(|| format!("create {}", log_path.display()));
    let log = match log {
        Ok(l) => l,
        Err(e) => {
            discard(&plan);
            return Err(e);
        }
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".to_owned())?;
    // SAFETY: nsrun starts no threads.
    #[allow(unsafe_code)]
    let child = unsafe { crate::sys::fork() }.ctx(|| "fork the monitor".to_owned())?;
    if child != 0 {
        drop(w);
        let mut answer = Vec::new();
        let _ = std::fs::File::from(r).read_to_end(&mut answer);
        return match serde_json::from_slice::<crate::init::Reply>(&answer) {
            Ok(rep) if rep.code == 0 => {
                println!("{}", plan.record.name);
                Ok(0)
            }
            Ok(rep) => Err(Fail::new(rep.code, rep.msg)),
            Err(_) => Err(Fail::new(125, "the container monitor died before reporting")),
        };
    }
    // The monitor.
    drop(r);
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(null.as_fd());
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
    let mut w = std::fs::File::from(w);
    let bound = bind_ports(&plan);
    let started = bound.and_then(|b| SealedExe::current().map(|s| (b, s)).ctx(|| "seal the nsrun binary".to_owned()));
    let started = started.and_then(|(b, sealed)| {
        supervise::start(&sealed, &plan.cfg, &plan.msg, Io::Log(log), &cgroup_procs(&plan)?, plan.net.as_ref(), slirp_of(&plan)).map(|s| (b, s))
    });
    let (bound, started) = match started {
        Ok(s) => s,
        Err(e) => {
            discard(&plan);
            let _ = w.write_all(&serde_json::to_vec(&crate::init::Reply { code: e.code, msg: e.msg }).unwrap_or_default());
            std::process::exit(e.code);
        }
    };
    record_start(&mut plan, started.pid().as_raw());
    crate::net::proxy::serve(bound);
    let _ = w.write_all(br#"{"code":0,"msg":""}"#);
    drop(w);
    let code = supervise::wait(started);
    record_exit(&mut plan, code);
    std::process::exit(0)
}
