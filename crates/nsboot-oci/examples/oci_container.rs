//! A minimal runc-like CLI over [`nsboot_oci::container`] (the tests and
//! bench/container.sh drive it; the real runtime CLI is issue 17).
//!
//! ```text
//! oci_container create [--console-socket PATH] [--no-pivot] STATE_DIR BUNDLE ID   prints the init's pid
//! oci_container start STATE_DIR
//! oci_container kill STATE_DIR SIGNAL           (a number)
//! oci_container delete [--force] STATE_DIR
//! oci_container state STATE_DIR                 prints "<status> <state.json>"
//! oci_container run [--console-socket PATH] [--no-pivot] STATE_DIR BUNDLE ID   exits with the program's status
//! ```
//!
//! Errors: one line on stderr; exit 2 for a refused config (nothing was
//! created), the container's exit status for a failure inside it (127 / 126
//! for exec), 1 otherwise.

use std::path::PathBuf;
use std::process::exit;

use nsboot_oci::container::{self, Container, ContainerError, CreateOptions};

fn die(e: ContainerError) -> ! {
    eprintln!("oci_container: {e}");
    let code = match &e {
        e if e.refused() => 2,
        ContainerError::Container(r) if r.exit_code != 0 => r.exit_code,
        _ => 1,
    };
    exit(code)
}

fn usage() -> ! {
    eprintln!("usage: oci_container create|run [--console-socket PATH] [--no-pivot] STATE_DIR BUNDLE ID | start|state STATE_DIR | kill STATE_DIR SIG | delete [--force] STATE_DIR");
    exit(2)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        usage();
    }
    let cmd = args.remove(0);
    let mut console = None;
    let mut no_pivot = false;
    let mut force = false;
    let mut pos = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--console-socket" => console = it.next().map(PathBuf::from),
            "--no-pivot" => no_pivot = true,
            "--force" => force = true,
            _ => pos.push(a),
        }
    }
    let dir = || PathBuf::from(pos.first().cloned().unwrap_or_else(|| usage()));
    match cmd.as_str() {
        "create" | "run" => {
            let [state, bundle, id] = <[String; 3]>::try_from(pos.clone()).unwrap_or_else(|_| usage());
            let mut o = CreateOptions::new(id, bundle);
            o.state_dir = Some(PathBuf::from(state));
            o.console_socket = console;
            o.no_pivot = no_pivot;
            if cmd == "run" {
                exit(Container::run(o).unwrap_or_else(|e| die(e)));
            }
            let c = Container::create(o).unwrap_or_else(|e| die(e));
            println!("{}", c.pid());
        }
        "start" => container::start_by_state(&dir()).unwrap_or_else(|e| die(e)),
        "kill" => {
            let sig: i32 = pos.get(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
            let sig = nix::sys::signal::Signal::try_from(sig).unwrap_or_else(|_| usage());
            container::kill_by_state(&dir(), sig).unwrap_or_else(|e| die(e));
        }
        "delete" => container::delete_by_state(&dir(), force).unwrap_or_else(|e| die(e)),
        "state" => {
            let (st, status) = container::status_by_state(&dir()).unwrap_or_else(|e| die(e));
            println!("{status:?} {}", serde_json::to_string(&st).unwrap_or_default());
        }
        _ => usage(),
    }
}
