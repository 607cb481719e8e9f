//! `ProcessPlan` applied in a real container: the probe
//! (examples/oci_process_probe.rs, single-threaded) creates the
//! namespaces, prepares a busybox rootfs and applies the plan; the
//! program inside prints what the kernel says about itself.

mod common;

use common::{config, status_line, text, Bundle};
use serde_json::json;

/// (soft, hard) of a `/proc/self/limits` line: the two columns before
/// the unit.
fn soft_hard(line: &str) -> [&str; 2] {
    let v: Vec<&str> = line.split_whitespace().collect();
    [v[v.len() - 3], v[v.len() - 2]]
}

/// Capability mask of the names (numbers from capabilities(7)).
fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

const INSPECT: &str = "id; umask; pwd; hostname; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; \
     grep -E '^Max (open files|processes|core)' /proc/self/limits; cat /proc/sys/kernel/shmmni";

#[test]
fn rootful_process_setup_seen_from_inside() {
    require_root!();
    let mut c = config(INSPECT, &["mount", "pid", "uts", "ipc", "network"]);
    c["hostname"] = json!("inside");
    c["process"]["cwd"] = json!("/tmp");
    c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o027});
    c["process"]["noNewPrivileges"] = json!(true);
    // KILL=5 NET_BIND_SERVICE=10 CHOWN=0
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    });
    c["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]);
    c["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
    // As in runc's default config: the sysctls are written before this.
    c["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let b = Bundle::new("rootful", &c);
    let out = b.run(false, &[]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{}", text(&out.stderr));
    let mut lines = o.lines();
    assert_eq!(lines.next(), Some("uid=1000 gid=1001 groups=5,6"));
    assert_eq!(lines.next(), Some("0027"));
    assert_eq!(lines.next(), Some("/tmp"));
    assert_eq!(lines.next(), Some("inside"));
    // A non-root program keeps exactly the ambient set (which needs it
    // inheritable and permitted); the bounding set is the listed three.
    let amb = mask(&[5, 10]);
    assert_eq!(status_line(&o, "CapInh:"), Some(amb.as_str()));
    assert_eq!(status_line(&o, "CapPrm:"), Some(amb.as_str()));
    assert_eq!(status_line(&o, "CapEff:"), Some(amb.as_str()));
    assert_eq!(status_line(&o, "CapAmb:"), Some(amb.as_str()));
    assert_eq!(status_line(&o, "CapBnd:"), Some(mask(&[0, 5, 10]).as_str()));
    assert_eq!(status_line(&o, "NoNewPrivs:"), Some("1"));
    let files = o.lines().find(|l| l.starts_with("Max open files")).expect("limits line");
    assert_eq!(soft_hard(files), ["123", "456"]);
    let core = o.lines().find(|l| l.starts_with("Max core")).expect("limits line");
    assert_eq!(soft_hard(core), ["0", "0"]);
    assert_eq!(o.lines().last(), Some("1234"), "the sysctl of the container's ipc namespace");
    // The host's value is untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    assert_ne!(host.trim(), "1234");
}

#[test]
fn rootless_process_setup_seen_from_inside() {
    require_rootless!();
    let script = format!(
        "echo ip_forward=$(cat /proc/sys/net/ipv4/ip_forward); (echo 0 > /proc/sys/kernel/shmmni) 2>/dev/null && echo ro=no || echo ro=yes; {INSPECT}"
    );
    let mut c = config(&script, &["user", "mount", "pid", "uts", "ipc", "network"]);
    c["hostname"] = json!("rootless");
    c["process"]["user"] = json!({"uid": 0, "gid": 0, "umask": 0o077});
    c["process"]["noNewPrivileges"] = json!(true);
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_SETUID"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"],
        "inheritable": [],
        "ambient": [],
    });
    c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64}]);
    c["linux"]["sysctl"] = json!({"kernel.shmmni": "777", "net.ipv4.ip_forward": "1"});
    c["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let b = Bundle::new("rootless", &c);
    let out = b.run(true, &[]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{}", text(&out.stderr));
    let mut lines = o.lines().skip(2);
    assert_eq!(lines.next(), Some("uid=0 gid=0 groups=0"));
    assert_eq!(lines.next(), Some("0077"));
    assert_eq!(lines.next(), Some("/"));
    assert_eq!(lines.next(), Some("rootless"));
    // Root in the namespace, but with no_new_privs execve cannot add to
    // the permitted set: only CAP_KILL (5) is left.
    assert_eq!(status_line(&o, "CapPrm:"), Some(mask(&[5]).as_str()));
    assert_eq!(status_line(&o, "CapEff:"), Some(mask(&[5]).as_str()));
    assert_eq!(status_line(&o, "CapBnd:"), Some(mask(&[5, 7]).as_str()));
    assert_eq!(status_line(&o, "NoNewPrivs:"), Some("1"));
    let files = o.lines().find(|l| l.starts_with("Max open files")).expect("limits line");
    assert_eq!(soft_hard(files), ["64", "64"]);
    assert_eq!(o.lines().last(), Some("777"));
    assert_eq!(status_line(&o, "ip_forward="), Some("1"), "net sysctl in the container's network namespace");
    assert_eq!(status_line(&o, "ro="), Some("yes"), "/proc/sys read-only after the sysctls were written");
}

#[test]
fn without_capabilities_key_caps_are_left_alone_and_nnp_is_off() {
    require_root!();
    let c = config("grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status", &["mount", "pid"]);
    let b = Bundle::new("nocaps", &c);
    let out = b.run(false, &[]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(status_line(&o, "CapBnd:"), status_line(&host, "CapBnd:"));
    assert_eq!(status_line(&o, "NoNewPrivs:"), Some("0"));
}

#[test]
fn missing_program_exits_127_not_executable_126() {
    require_root!();
    let mut c = config("", &["mount", "pid"]);
    c["process"]["args"] = json!(["no-such-program"]);
    let b = Bundle::new("e127", &c);
    let out = b.run(false, &[]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exec \"no-such-program\": executable file not found in $PATH"),
        "{}",
        text(&out.stderr)
    );

    c["process"]["args"] = json!(["/etc/plain"]);
    let b = Bundle::new("e126", &c);
    let out = b.run(false, &[]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("exec \"/etc/plain\": EACCES"), "{}", text(&out.stderr));

    // Found in PATH but not executable: 126, as a shell says it.
    c["process"]["args"] = json!(["plain"]);
    c["process"]["env"] = json!(["PATH=/nowhere:/etc:/bin"]);
    let b = Bundle::new("e126p", &c);
    let out = b.run(false, &[]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
}

#[test]
fn path_search_uses_the_container_env_path() {
    require_root!();
    let mut c = config("", &["mount", "pid"]);
    // `true` exists only as /bin/true in the rootfs; the host's PATH is
    // not used, the env's is, and in the container's root.
    c["process"]["args"] = json!(["true"]);
    c["process"]["env"] = json!(["PATH=/usr/bin"]);
    let b = Bundle::new("pathenv", &c);
    assert_eq!(b.run(false, &[]).status.code(), Some(127), "/usr/bin is empty in the rootfs");
    c["process"]["env"] = json!(["PATH=/usr/bin:/bin"]);
    let b = Bundle::new("pathenv2", &c);
    assert_eq!(b.run(false, &[]).status.code(), Some(0));
}

#[test]
fn hostile_configs_are_refused_with_the_key_before_anything_runs() {
    require_root!();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "unknown capability",
            Box::new(|c| c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_FLY"]})),
            "process.capabilities.bounding[1]: unknown capability \"CAP_FLY\"",
        ),
        (
            "sysctl outside the ipc namespace",
            Box::new(|c| c["linux"]["sysctl"] = json!({"kernel.shmmax": "1"})),
            "linux.sysctl \"kernel.shmmax\": not allowed in the host's ipc namespace",
        ),
        (
            "net sysctl without a network namespace",
            Box::new(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})),
            "linux.sysctl \"net.ipv4.ip_forward\": not allowed in the host's network namespace",
        ),
        (
            "sysctl of no namespace",
            Box::new(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "1"})),
            "linux.sysctl \"vm.swappiness\": not in a separate kernel namespace",
        ),
        (
            "hook path that does not exist",
            Box::new(|c| c["hooks"] = json!({"createRuntime": [{"path": "/nonexistent/hook"}]})),
            "hooks.createRuntime[0].path \"/nonexistent/hook\"",
        ),
        (
            "an AppArmor profile (no LSM support)",
            Box::new(|c| c["process"]["apparmorProfile"] = json!("docker-default")),
            "process.apparmorProfile: \"docker-default\": AppArmor is not supported by this build",
        ),
        (
            "unknown rlimit",
            Box::new(|c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])),
            "process.rlimits[0].type: \"RLIMIT_BOGUS\": unknown rlimit",
        ),
    ];
    for (what, edit, message) in cases {
        let marker_dir = common::TempDir::new("hostile-marker");
        let marker = marker_dir.path().join("ran");
        let mut c = config("touch /hooklog/program-ran", &["mount", "pid"]);
        // A valid prestart hook before the bad key: it must not run either.
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}]});
        edit(&mut c);
        let b = Bundle::new("hostile", &c);
        let out = b.run(false, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(message), "{what}: expected {message:?} in {err:?}");
        assert!(!marker.exists(), "{what}: a hook ran");
        assert!(!b.rootfs().join("hooklog/program-ran").exists(), "{what}: the program ran");
        assert!(common::processes_with(&b.path().to_string_lossy()).is_empty(), "{what}: a process was left");
    }
}

#[test]
fn scheduling_oom_and_personality_seen_from_inside() {
    require_root!();
    // stat fields: 19 nice, 41 policy (after the ")" of comm: 17 and 39).
    let script = "read -r s < /proc/self/stat; s=${s##*) }; set -- $s; \
                  echo nice=${17} policy=${39}; ionice; uname -m; cat /proc/self/oom_score_adj; \
                  grep Cpus_allowed_list /proc/self/status";
    let mut c = config(script, &["mount", "pid"]);
    c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    c["process"]["oomScoreAdj"] = json!(345);
    c["linux"]["personality"] = json!({"domain": "LINUX32"});
    c["process"]["execCPUAffinity"] = json!({"final": "0"});
    let b = Bundle::new("sched", &c);
    let out = b.run(false, &[]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}\n{}", text(&out.stderr));
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "nice=7 policy=3", "SCHED_BATCH is 3");
    assert_eq!(lines[1], "best-effort: prio 6");
    assert!(matches!(lines[2], "i686" | "i386"), "LINUX32 personality: {}", lines[2]);
    assert_eq!(lines[3], "345");
    assert_eq!(status_line(&o, "Cpus_allowed_list:"), Some("0"));
}

#[test]
fn caller_steps_run_where_seccomp_must_load() {
    require_root!();
    let mut c = config("true", &["mount", "pid"]);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c["process"]["noNewPrivileges"] = json!(true);
    c["process"]["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    let b = Bundle::new("steps", &c);
    // Written as root first, then as uid 1000.
    std::fs::write(b.rootfs().join("hooklog/steps"), "").unwrap();
    common::chmod(&b.rootfs().join("hooklog/steps"), 0o666);
    let out = b.run(false, &["--trace-steps"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let steps = std::fs::read_to_string(b.rootfs().join("hooklog/steps")).unwrap();
    let lines: Vec<Vec<&str>> = steps.lines().map(|l| l.split(' ').collect()).collect();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    // privileged: still root with the runtime's capabilities, no NNP (a
    // filter without noNewPrivileges needs CAP_SYS_ADMIN here).
    assert_eq!(lines[0], ["privileged", "0", "0", status_line(&host, "CapEff:").unwrap()]);
    // before_start (seccomp with noNewPrivileges): after the uid switch,
    // the capability sets and no_new_privs; after_start the same.
    let kill = mask(&[5]);
    assert_eq!(lines[1], ["before_start", "1000", "1", kill.as_str()]);
    assert_eq!(lines[2], ["after_start", "1000", "1", kill.as_str()]);
    assert_eq!(lines.len(), 3);
}

#[test]
fn home_comes_from_the_container_passwd_unless_set() {
    require_root!();
    let mut c = config("echo $HOME", &["mount", "pid"]);
    c["process"]["user"] = json!({"uid": 1234, "gid": 1234});
    let b = Bundle::new("home", &c);
    std::fs::write(b.rootfs().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nu:x:1234:1234::/home/u:/bin/sh\n")
        .unwrap();
    let out = b.run(false, &[]);
    assert_eq!(text(&out.stdout).trim(), "/home/u", "{}", text(&out.stderr));
    c["process"]["user"] = json!({"uid": 4321, "gid": 4321});
    let b = Bundle::new("home2", &c);
    assert_eq!(text(&b.run(false, &[]).stdout).trim(), "/", "no passwd entry");
    c["process"]["env"] = json!(["PATH=/bin", "HOME=/set"]);
    let b = Bundle::new("home3", &c);
    assert_eq!(text(&b.run(false, &[]).stdout).trim(), "/set");
}
