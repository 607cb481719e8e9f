//! Test driver for `nsboot_oci::rootfs`: a single-threaded program that
//! unshares the namespaces a bundle's config.json asks for, runs
//! [`nsboot_oci::rootfs::prepare`] and execs a command inside the container.
//!
//! ```text
//! rootfs_probe [--no-pivot] BUNDLE [-- CMD ARGS...]
//! ```
//! Without `-- CMD`, `process.args` is executed. Exit status: the
//! command's; 2 for a rejected config; 125 when prepare fails (its error
//! on stderr); 127 when exec fails; 128+N when the command died of signal N.
//!
//! With a `user` namespace the process maps itself to root (uid_map
//! `0 <euid> 1`, setgroups deny), like `unshare -r`. With a `pid`
//! namespace it forks once more so that the container's init is PID 1.

use std::ffi::CString;
use std::path::PathBuf;
use std::process::exit;

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use nsboot_oci::rootfs::{prepare, RootfsOptions, RootfsPlan};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

fn wait_exit(child: nix::unistd::Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("rootfs_probe: waitpid: {e}");
                return 1;
            }
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut no_pivot = false;
    if args.first().map(String::as_str) == Some("--no-pivot") {
        no_pivot = true;
        args.remove(0);
    }
    let Some(bundle) = args.first().cloned().map(PathBuf::from) else {
        eprintln!("usage: rootfs_probe [--no-pivot] BUNDLE [-- CMD ARGS...]");
        exit(2);
    };
    let cmd: Option<Vec<String>> = args.iter().position(|a| a == "--").map(|i| args[i + 1..].to_vec());

    let json = match std::fs::read(bundle.join("config.json")) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("rootfs_probe: read config.json: {e}");
            exit(2);
        }
    };
    let opts = RootfsOptions { no_pivot, bundle: Some(bundle.clone()) };
    let plan = match RootfsPlan::from_json(&json, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rootfs_probe: {e}");
            exit(2);
        }
    };
    // The plan validated the spec; parse it again for what is not ours
    // (namespaces, process).
    let spec: Spec = match serde_json::from_slice(&json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rootfs_probe: {e}");
            exit(2);
        }
    };
    let ns: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    let process = spec.process().clone().unwrap_or_default();
    let argv = cmd.unwrap_or_else(|| process.args().clone().unwrap_or_default());
    let env = process.env().clone().unwrap_or_default();
    if argv.is_empty() {
        eprintln!("rootfs_probe: nothing to execute");
        exit(2);
    }

    match fork_once() {
        ForkResult::Parent { child } => exit(wait_exit(child)),
        ForkResult::Child => {}
    }

    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if ns.contains(&LinuxNamespaceType::User) {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
            eprintln!("rootfs_probe: unshare user: {e}");
            exit(125);
        }
        let maps = [
            ("/proc/self/setgroups", "deny".to_owned()),
            ("/proc/self/uid_map", format!("0 {uid} 1")),
            ("/proc/self/gid_map", format!("0 {gid} 1")),
        ];
        for (f, v) in maps {
            if let Err(e) = std::fs::write(f, v) {
                eprintln!("rootfs_probe: write {f}: {e}");
                exit(125);
            }
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
    if let Err(e) = unshare(flags) {
        eprintln!("rootfs_probe: unshare {flags:?}: {e}");
        exit(125);
    }
    if flags.contains(CloneFlags::CLONE_NEWPID) {
        match fork_once() {
            ForkResult::Parent { child } => exit(wait_exit(child)),
            ForkResult::Child => {}
        }
    }

    let mut warn = |w: &str| eprintln!("rootfs_probe: warning: {w}");
    if let Err(e) = prepare(&plan, &mut warn) {
        eprintln!("rootfs_probe: {e}");
        exit(125);
    }
    let to_c = |v: &[String]| -> Vec<CString> { v.iter().filter_map(|s| CString::new(s.as_bytes()).ok()).collect() };
    let (cargv, cenv) = (to_c(&argv), to_c(&env));
    let Some(path) = cargv.first() else { exit(127) };
    let e = nix::unistd::execve(path, &cargv, &cenv).err();
    eprintln!("rootfs_probe: exec {}: {e:?}", argv[0]);
    exit(127);
}

#[allow(unsafe_code)]
fn fork_once() -> ForkResult {
    // SAFETY: rootfs_probe never starts a thread, so the child of fork is
    // a complete copy of a single-threaded process.
    match unsafe { fork() } {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfs_probe: fork: {e}");
            exit(125);
        }
    }
}
