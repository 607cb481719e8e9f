//! The README's Rust snippet, runnable: `hello_rust` starts itself as a
//! bootstrap in new UTS and PID namespaces (the caller side), and the copy
//! started that way runs `main` inside them. Not root, it adds a user
//! namespace mapping itself to root there (one id, setgroups denied), as
//! the C and Go examples do.

use std::process::Command;

use nsboot::caller::{spawn, SpawnOptions};
use nsboot::ns::{NsKind, NsSet};
use nsboot::wire::{BootstrapConfig, IdMap};

fn main() {
    // First thing: if this process was started as a bootstrap, become the
    // container process (stage-0 and stage-1 exit inside this call).
    if nsboot::nsexec() == nsboot::Outcome::InContainer {
        nix::unistd::sethostname("hello-rust").expect("sethostname in the new UTS namespace");
        let host = nix::unistd::gethostname().expect("gethostname");
        println!("inside: pid {} uid {} hostname {}", std::process::id(), nix::unistd::geteuid(), host.to_string_lossy());
        return;
    }
    // The caller: one bootstrap of ourselves.
    let mut cfg = BootstrapConfig {
        clone_flags: [NsKind::Uts, NsKind::Pid].into_iter().collect::<NsSet>(),
        ..Default::default()
    };
    let (euid, egid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if !euid.is_root() {
        // Rootless: ourselves as root of a new user namespace, which gives
        // the rights to create the other namespaces.
        cfg.clone_flags.insert(NsKind::User);
        cfg.uid_map = Some(IdMap::single(0, euid.as_raw(), 1));
        cfg.gid_map = Some(IdMap::single(0, egid.as_raw(), 1));
        cfg.rootless_euid = true;
    }
    let exe = nsboot::SealedExe::current().expect("seal our own binary");
    let mut spawned = spawn(Command::new(exe.exec_path()), &cfg, SpawnOptions::default()).unwrap_or_else(|e| {
        eprintln!("hello_rust: {e}");
        std::process::exit(125)
    });
    let status = spawned.wait_init().expect("wait for the container process");
    std::process::exit(status);
}
