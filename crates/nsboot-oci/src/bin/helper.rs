//! Test helper for the nsboot-oci integration tests. The tests spawn it so
//! that the process put under a seccomp filter or moved into a cgroup is
//! this one (single-threaded), never the multi-threaded test harness.
//!
//! Modes (one result line per probe on stdout, `probe <name> ok` or
//! `probe <name> errno <n>`):
//!   seccomp <oci-seccomp.json|-> <probe>...   load the filter (no_new_privs
//!                                              first), send the listener to
//!                                              listenerPath if any, run probes
//!                                              (NSBOOT_OCI_HELPER_UID=n: as uid n)
//!   time-seccomp <oci-seccomp.json>           print build and load times (µs)
//!   cgroup-enter <cgroup.json> <procs|clone3> [--verify] -- <argv>...
//!                                              put the workload into the
//!                                              cgroup before it execs
//!   spawn-until-fail <max>                    spawn `sleep 60` children until
//!                                              spawning fails; print the count
//!   hog <MiB>                                 touch memory 1 MiB at a time
//!   time-cgroup                               create (memory + pids limits),
//!                                              enter, remove; print µs
//!   create-as <uid> <config.json>             create a cgroup as `uid`

use std::io::Write;
use std::path::Path;
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
        Some("time-cgroup") => time_cgroup(),
        Some("create-as") => create_as(args[2].parse().expect("uid"), &args[3]),
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
    // NSBOOT_OCI_HELPER_UID: drop to that uid/gid first (rootless case).
    if let Ok(uid) = std::env::var("NSBOOT_OCI_HELPER_UID") {
        let uid: u32 = uid.parse().expect("NSBOOT_OCI_HELPER_UID is a number");
        nix::unistd::setgroups(&[]).expect("setgroups");
        nix::unistd::setgid(nix::unistd::Gid::from_raw(uid)).expect("setgid");
        nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).expect("setuid");
    }
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
                let path = plan
                    .listener_path()
                    .expect("validated: listenerPath with notify");
                let mut state = nsboot_oci::oci_spec::runtime::State::default();
                state.set_version("1.2.0".into());
                state.set_id("nsboot-oci-helper".into());
                state.set_pid(Some(std::process::id() as i32));
                let cps = notify::process_state(
                    &state,
                    std::process::id() as i32,
                    plan.listener_metadata(),
                );
                if let Err(e) =
                    notify::send_listener(path, &cps, std::os::fd::AsFd::as_fd(&listener))
                {
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
        "mkdir-missing" => nix::unistd::mkdir(
            "/nonexistent-nsboot-oci/x",
            nix::sys::stat::Mode::from_bits_truncate(0o700),
        ),
        "getppid" => {
            nix::unistd::getppid();
            Ok(())
        }
        "chroot" => nix::unistd::chroot("/"),
        _ if name.starts_with("open-r:") || name.starts_with("open-w:") => {
            use nix::fcntl::OFlag;
            let mode = if name.starts_with("open-r:") {
                OFlag::O_RDONLY
            } else {
                OFlag::O_WRONLY
            };
            nix::fcntl::open(
                &name[7..],
                mode | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                nix::sys::stat::Mode::empty(),
            )
            .map(drop)
        }
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

/// `cgroup-enter <cgroup.json> <procs|clone3> -- <argv>...`
fn cgroup_enter(args: &[String]) -> i32 {
    use std::ffi::CString;
    use std::os::fd::AsFd;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nsboot_oci::cgroups::sys::{fork_into_cgroup_single_threaded, Forked};
    use nsboot_oci::cgroups::Cgroup;

    let cg: Cgroup = serde_json::from_slice(&read_arg(&args[0])).expect("cgroup JSON");
    let sep = args
        .iter()
        .position(|a| a == "--")
        .expect("-- before the command");
    // --verify: before exec, check in /proc/self/cgroup (kernel state, not
    // the library's word) that this process is in every hierarchy's
    // directory, and refuse to run the workload otherwise — so that a fork
    // bomb or memory hog never runs on the host if placement regresses.
    let verify = args[2..sep].iter().any(|a| a == "--verify");
    let argv: Vec<CString> = args[sep + 1..]
        .iter()
        .map(|a| CString::new(a.as_str()).expect("no NUL"))
        .collect();
    match args[1].as_str() {
        "procs" => {
            if let Err(e) = cg.add_pid(nix::unistd::getpid()) {
                println!("error {e}");
                return 1;
            }
            if verify {
                if let Err(e) = verify_in(&cg) {
                    println!("error {e}");
                    return 99;
                }
            }
            let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
            println!("error execvp {:?}: {e}", argv[0]);
            127
        }
        "clone3" => {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
            let fd = match cg.unified_fd() {
                Ok(fd) => fd,
                Err(e) => {
                    println!("error {e}");
                    return 1;
                }
            };
            match fork_into_cgroup_single_threaded(fd.as_ref().map(|f| f.as_fd())) {
                Ok(Forked::Child) => {
                    drop(w);
                    // Wait until the parent put us into the v1 hierarchies.
                    let mut b = [0u8; 1];
                    let _ = nix::unistd::read(&r, &mut b);
                    if verify {
                        if let Err(e) = verify_in(&cg) {
                            println!("error {e}");
                            std::process::exit(99);
                        }
                    }
                    let _ = nix::unistd::execvp(&argv[0], &argv);
                    std::process::exit(127);
                }
                Ok(Forked::Parent { child, in_cgroup }) => {
                    drop(r);
                    let added = if in_cgroup {
                        cg.add_pid_v1(child)
                    } else {
                        cg.add_pid(child)
                    };
                    if let Err(e) = added {
                        println!("error {e}");
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        return 1;
                    }
                    println!("in_cgroup {in_cgroup}");
                    let _ = std::io::stdout().flush();
                    let _ = nix::unistd::write(&w, b"x");
                    drop(w);
                    match waitpid(child, None) {
                        Ok(WaitStatus::Exited(_, c)) => c,
                        Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                        other => {
                            println!("error waitpid: {other:?}");
                            1
                        }
                    }
                }
                Err(e) => {
                    println!("error {e}");
                    1
                }
            }
        }
        m => {
            println!("error unknown cgroup-enter mode {m}");
            2
        }
    }
}

fn time_cgroup() -> i32 {
    use nsboot_oci::cgroups::{CgroupPlan, Hierarchies};
    let t0 = Instant::now();
    let hier = Hierarchies::detect().expect("detect");
    let detected = t0.elapsed();
    let r = serde_json::from_value(
        serde_json::json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}),
    )
    .expect("resources");
    let path = format!("/nsboot-oci-time-{}", std::process::id());
    let t1 = Instant::now();
    let cg = CgroupPlan::new(Some(Path::new(&path)), Some(&r), "t")
        .and_then(|p| p.create(&hier))
        .expect("create");
    let created = t1.elapsed();
    let t2 = Instant::now();
    cg.remove().expect("remove");
    let removed = t2.elapsed();
    println!(
        "detect_us {} create_us {} remove_us {} hierarchies {}",
        detected.as_micros(),
        created.as_micros(),
        removed.as_micros(),
        cg.dirs.len()
    );
    0
}

/// This process is in each of `cg`'s directories, per /proc/self/cgroup.
fn verify_in(cg: &nsboot_oci::cgroups::Cgroup) -> Result<(), String> {
    use std::collections::BTreeSet;

    use nsboot_oci::cgroups::Version;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("read /proc/self/cgroup: {e}"))?;
    for d in &cg.dirs {
        let rel = Path::new("/").join(
            d.path
                .strip_prefix(&d.mountpoint)
                .map_err(|_| "dir outside its mount")?,
        );
        let want: BTreeSet<&str> = d.controllers.iter().map(String::as_str).collect();
        let ok = own.lines().any(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or("-"), f.next().unwrap_or(""));
            let hier = match d.version {
                Version::V2 => ctrls.is_empty(),
                Version::V1 => ctrls.split(',').collect::<BTreeSet<_>>() == want,
            };
            hier && Path::new(path) == rel
        });
        if !ok {
            return Err(format!(
                "not in {} per /proc/self/cgroup:\n{own}",
                d.path.display()
            ));
        }
    }
    Ok(())
}

/// `create-as <uid> <config.json>`: drop to `uid` (and gid = uid), then
/// create the cgroup from `{"cgroupsPath":…, "resources":…}`; print the
/// resulting Cgroup as JSON (`created {...}`) or `error …`.
fn create_as(uid: u32, config: &str) -> i32 {
    use nsboot_oci::cgroups::{CgroupPlan, Hierarchies};
    use nsboot_oci::oci_spec::runtime::LinuxResources;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        cgroups_path: Option<std::path::PathBuf>,
        resources: Option<LinuxResources>,
    }
    let c: Config = serde_json::from_slice(&read_arg(config)).expect("config JSON");
    let hier = Hierarchies::detect().expect("detect");
    nix::unistd::setgroups(&[]).expect("setgroups");
    nix::unistd::setgid(nix::unistd::Gid::from_raw(uid)).expect("setgid");
    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).expect("setuid");
    let r = CgroupPlan::new(
        c.cgroups_path.as_deref(),
        c.resources.as_ref(),
        "rootless-test",
    )
    .and_then(|p| p.create(&hier));
    match r {
        Ok(cg) => println!("created {}", serde_json::to_string(&cg).expect("json")),
        Err(e) => println!("error {e}"),
    }
    0
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
        failure.map_or_else(
            || "no".to_owned(),
            |e| e.raw_os_error().unwrap_or(0).to_string()
        )
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
