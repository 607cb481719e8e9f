//! The README's Rust snippet, runnable: `hello_rust` starts itself as a
//! bootstrap in new UTS and PID namespaces (the caller side), and the copy
//! started that way runs `main` inside them.

use std::process::Command;

use nsboot::caller::{spawn, SpawnOptions};
use nsboot::ns::{NsKind, NsSet};
use nsboot::wire::BootstrapConfig;

fn main() {
    // First thing: if this process was started as a bootstrap, become the
    // container process (stage-0 and stage-1 exit inside this call).
    if nsboot::nsexec() == nsboot::Outcome::InContainer {
        nix::unistd::sethostname("hello-rust").expect("sethostname in the new UTS namespace");
        let host = nix::unistd::gethostname().expect("gethostname");
        println!("inside: pid {} hostname {}", std::process::id(), host.to_string_lossy());
        return;
    }
    // The caller: one bootstrap of ourselves.
    let cfg = BootstrapConfig {
        clone_flags: [NsKind::Uts, NsKind::Pid].into_iter().collect::<NsSet>(),
        ..Default::default()
    };
    let exe = nsboot::SealedExe::current().expect("seal our own binary");
    let mut spawned = spawn(Command::new(exe.exec_path()), &cfg, SpawnOptions::default()).unwrap_or_else(|e| {
        eprintln!("hello_rust: {e}");
        std::process::exit(125)
    });
    let status = spawned.wait_init().expect("wait for the container process");
    std::process::exit(status);
}
