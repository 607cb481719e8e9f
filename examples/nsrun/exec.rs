//! `nsrun exec`: join a running container's namespaces by path (user
//! first when it has one, mount last) through nsboot's join path, then run
//! the command with the container's environment and working directory.

use nsboot::ns::{NsKind, NsPath};
use nsboot::wire::BootstrapConfig;
use nsboot::SealedExe;

use crate::cli::ExecOpts;
use crate::init::InitMsg;
use crate::state;
use crate::supervise::{self, Io};
use crate::{Context, Fail, Result};

pub fn exec(o: ExecOpts) -> Result<i32> {
    let root = state::root()?;
    let (_, rec) = state::load(&root, &o.name)?;
    if !state::is_running(&rec) {
        return Err(Fail::new(125, format!("container {} is not running", o.name)));
    }
    if o.tty && o.interactive && !supervise::stdin_is_tty() {
        return Err(Fail::new(125, "the input device is not a TTY: drop -t or give a terminal"));
    }
    let mut kinds = Vec::new();
    if rec.userns {
        kinds.push(NsKind::User);
    }
    kinds.extend([NsKind::Ipc, NsKind::Uts, NsKind::Net, NsKind::Pid, NsKind::Cgroup, NsKind::Mnt]);
    let mut ns_paths = Vec::new();
    for k in kinds {
        let path = format!("/proc/{}/ns/{}", rec.pid, k.name());
        ns_paths.push(NsPath { kind: k, path: std::ffi::CString::new(path).ctx(|| "namespace path".to_owned())? });
    }
    let rootless = !nix::unistd::geteuid().is_root();
    let cfg = BootstrapConfig {
        ns_paths,
        rootless_euid: rootless,
        // setgroups(2) is denied in a single-mapping user namespace.
        setgroup: !rec.userns,
        ..Default::default()
    };
    let mut env = rec.env.clone();
    // A terminal gets a TERM, as with run -t (and docker exec -t), unless
    // the container's environment has one; -e still overrides it.
    if o.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    for e in &o.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let mut spec = rec.security.clone().unwrap_or_else(|| serde_json::json!({"process": {}}));
    spec["ociVersion"] = serde_json::json!("1.0.2");
    spec["process"]["args"] = serde_json::json!(o.cmd);
    spec["process"]["env"] = serde_json::json!(env);
    spec["process"]["cwd"] = serde_json::json!(rec.cwd);
    if spec["process"]["user"].is_null() {
        spec["process"]["user"] = serde_json::json!({"uid": 0, "gid": 0});
    }
    let msg = InitMsg {
        spec: serde_json::to_string(&spec).ctx(|| "encode the exec config".to_owned())?,
        rootfs: false,
        seccomp_bpf: crate::security::compiled(&root, &spec)?,
        tty: o.tty,
        die_with_parent: true,
        ..Default::default()
    };
    let io = if o.tty { Io::Tty { interactive: o.interactive } } else { Io::Inherit { stdin: o.interactive } };
    // exec'd processes join the container's cgroup (and count against its limits).
    let procs = match &rec.cgroup {
        Some(cg) => crate::limits::procs_files(cg)?,
        None => Vec::new(),
    };
    let sealed = SealedExe::current().ctx(|| "seal the nsrun binary".to_owned())?;
    // The container may have died since the check: the bootstrap then
    // fails to open its namespaces and reports it.
    let started = supervise::start(&sealed, &cfg, &msg, io, &procs, None, None)?;
    if !state::same_process(rec.pid, rec.pid_start) {
        return Err(Fail::new(125, format!("container {} stopped while exec started", o.name)));
    }
    Ok(supervise::wait(started))
}
