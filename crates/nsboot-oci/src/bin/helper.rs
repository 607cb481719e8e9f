//! Test helper for the nsboot-oci integration tests. The tests spawn it so
//! that the process put under a seccomp filter or moved into a cgroup is
//! this one (single-threaded), never the multi-threaded test harness.
//!
//! Modes (one result line per probe on stdout, `probe <name> ok` or
//! `probe <name> errno <n>`):
//!   seccomp <oci-seccomp.json|-> <probe>...   load the filter (no_new_privs
//!                                              first), send the listener to
//!                                              listenerPath if any, run probes
//!   time-seccomp <oci-seccomp.json>           print build and load times (µs)
//!   cgroup-enter <cgroup.json> <procs|clone3> -- <argv>...
//!                                              put the workload into the
//!                                              cgroup before it execs
//!   spawn-until-fail <max>                    spawn `sleep 60` children until
//!                                              spawning fails; print the count
//!   hog <MiB>                                 touch memory 1 MiB at a time

use std::io::Write;
use std::time::Instant;

use nix::errno::Errno;
use nsboot_oci::seccomp::{notify, SeccompPlan};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("seccomp") => seccomp(&args[2], &args[3..]),
        Some("time-seccomp") => time_seccomp(&args[2]),
        Some("cgroup-enter") => cgroup_enter(&args[2..]),
        Some("spawn-until-fail") => spawn_until_fail(args[2].parse().unwrap_or(0)),
        Some("hog") => hog(args[2].parse().unwrap_or(0)),
        _ => {
            eprintln!("nsboot-oci-helper: unknown mode {:?}", args.get(1));
            2
        }
    };
    std::process::exit(code);
}

fn read_arg(path: &str) -> Vec<u8> {
    if path == "-" {
        return Vec::new();
    }
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn seccomp(profile: &str, probes: &[String]) -> i32 {
    if profile != "-" {
        let plan = match SeccompPlan::from_json(&read_arg(profile)) {
            Ok(p) => p,
            Err(e) => {
                println!("error {e}");
                return 1;
            }
        };
        if let Err(e) = nix::sys::prctl::set_no_new_privs() {
            println!("error prctl(PR_SET_NO_NEW_PRIVS): {e}");
            return 1;
        }
        match plan.load() {
            Ok(Some(listener)) => {
                let path = plan.listener_path().expect("validated: listenerPath with notify");
                let mut state = nsboot_oci::oci_spec::runtime::State::default();
                state.set_version("1.2.0".into());
                state.set_id("nsboot-oci-helper".into());
                state.set_pid(Some(std::process::id() as i32));
                let cps = notify::process_state(&state, std::process::id() as i32, plan.listener_metadata());
                if let Err(e) = notify::send_listener(path, &cps, std::os::fd::AsFd::as_fd(&listener)) {
                    println!("error {e}");
                    return 1;
                }
                println!("listener sent");
            }
            Ok(None) => {}
            Err(e) => {
                println!("error {e}");
                return 1;
            }
        }
    }
    for p in probes {
        let r = probe(p);
        match r {
            Ok(()) => println!("probe {p} ok"),
            Err(e) => println!("probe {p} errno {}", e as i32),
        }
    }
    let _ = std::io::stdout().flush();
    0
}

fn probe(name: &str) -> Result<(), Errno> {
    use nix::sys::personality::{self, Persona};
    match name {
        "unshare-uts" => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS),
        "personality-query" => personality::get().map(drop),
        "personality-addr-no-randomize" => personality::set(Persona::ADDR_NO_RANDOMIZE).map(drop),
        "mkdir-missing" => nix::unistd::mkdir("/nonexistent-nsboot-oci/x", nix::sys::stat::Mode::from_bits_truncate(0o700)),
        "getppid" => {
            nix::unistd::getppid();
            Ok(())
        }
        "chroot" => nix::unistd::chroot("/"),
        _ => Err(Errno::ENOTSUP),
    }
}

fn time_seccomp(profile: &str) -> i32 {
    let json = read_arg(profile);
    let t0 = Instant::now();
    let plan = SeccompPlan::from_json(&json).expect("profile compiles");
    let built = t0.elapsed();
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
    let t1 = Instant::now();
    plan.load().expect("filter loads");
    let loaded = t1.elapsed();
    println!(
        "build_us {} load_us {} instructions {}",
        built.as_micros(),
        loaded.as_micros(),
        plan.instructions()
    );
    0
}

fn cgroup_enter(_args: &[String]) -> i32 {
    eprintln!("cgroup-enter: not built yet");
    2
}

fn spawn_until_fail(max: usize) -> i32 {
    let mut children = Vec::new();
    let mut failure = None;
    for _ in 0..max {
        match std::process::Command::new("/bin/sleep").arg("60").spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    println!(
        "spawned {} failed {}",
        children.len(),
        failure.map_or_else(|| "no".to_owned(), |e| e.raw_os_error().unwrap_or(0).to_string())
    );
    let _ = std::io::stdout().flush();
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    0
}

fn hog(mib: usize) -> i32 {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mib {
        // Touch every page so the memory is really charged.
        blocks.push(vec![(i % 251) as u8 + 1; 1 << 20]);
        if i % 8 == 0 {
            println!("touched {} MiB", i + 1);
            let _ = std::io::stdout().flush();
        }
    }
    println!("survived {mib} MiB");
    0
}
