//! End to end: `nsboot_oci::container` through its CLI example
//! (`examples/oci_container.rs`, a separate single-threaded process: the
//! harness never forks). create / start / kill / delete from separate
//! processes, as an OCI runtime's commands are; what the container sees
//! from inside; what is left on the host after each path (nothing).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{config, text, Bundle, TempDir};
use serde_json::{json, Value};

/// The CLI, built once and copied where `nobody` can run it.
fn cli() -> &'static Path {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--offline", "-p", "nsboot-oci", "--example", "oci_container"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(st.success(), "building oci_container failed");
        let exe = std::env::current_exe().expect("current_exe");
        let built = exe.parent().and_then(Path::parent).expect("profile dir").join("examples/oci_container");
        let dir = std::env::temp_dir().join(format!("nsboot-oci-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        common::remove_at_exit(&dir);
        common::chmod(&dir, 0o755);
        let copy = dir.join("oci_container");
        std::fs::copy(&built, &copy).expect("copy cli");
        common::chmod(&copy, 0o755);
        copy
    })
}

fn run_cli(args: &[&str]) -> Output {
    Command::new(cli()).args(args).output().expect("run oci_container")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A unique id and cgroup path for one test.
fn unique(tag: &str) -> String {
    format!("nsboot-oci-ct-{tag}-{}", std::process::id())
}

fn link_applets(b: &Bundle, applets: &[&str]) {
    for a in applets {
        let _ = std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join(a));
    }
}

/// Host cgroup dirs of the pids/memory controllers for `cgroups_path`.
fn cg(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(controller).join(cgroups_path.trim_start_matches('/'))
}

/// Nothing of a container is left: no state dir, no cgroup dir, no
/// process running the bundle's busybox.
fn assert_nothing_left(state: &Path, cgroups_path: Option<&str>, bundle: &Bundle) {
    assert!(!state.exists(), "state dir {} left", state.display());
    if let Some(p) = cgroups_path {
        for c in ["pids", "memory", "cpu", "freezer"] {
            let d = cg(c, p);
            assert!(!d.exists(), "cgroup {} left", d.display());
        }
    }
    let rootfs = bundle.rootfs();
    let t0 = Instant::now();
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .filter(|e| std::fs::read_link(e.path().join("root")).is_ok_and(|r| r.starts_with(&rootfs)))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "processes left in {}: {left:?}", rootfs.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Docker's defaults: the 14 capabilities, the default seccomp profile
/// (amd64), no_new_privs.
fn docker_process(c: &mut Value) {
    let caps: Vec<&str> = common::DOCKER_CAPS.to_vec();
    c["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []});
    c["process"]["noNewPrivileges"] = json!(true);
    c["linux"]["seccomp"] = common::docker_profile_to_oci(common::DOCKER_CAPS);
}

/// Docker's default capability set as /proc/self/status shows it.
const DOCKER_CAP_HEX: &str = "00000000a80425fb";

#[test]
fn docker_defaults_seen_from_inside_with_limits_and_a_blocked_syscall() {
    require_root!();
    let id = unique("inside");
    let cgp = format!("/{id}");
    let script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; id; umask; pwd; ulimit -n; ulimit -u; \
                  unshare -U true; echo unshare=$?; cat /proc/self/cgroup; echo fds: $(ls /proc/self/fd)";
    let mut c = config(script, &["mount", "pid", "uts", "ipc", "network"]);
    docker_process(&mut c);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 23, "additionalGids": [1001]});
    c["process"]["cwd"] = json!("/tmp");
    c["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
        {"type": "RLIMIT_NPROC", "hard": 300, "soft": 200},
    ]);
    c["linux"]["cgroupsPath"] = json!(cgp);
    c["linux"]["resources"] = json!({"memory": {"limit": 268435456}, "pids": {"limit": 64}});
    let b = Bundle::new("inside", &c);
    link_applets(&b, &["unshare"]);
    let st = TempDir::new("inside-state");
    let state = st.path().join("c");
    // The runtime holds an inherited fd 9 (not O_CLOEXEC).
    let out = Command::new("sh")
        .args(["-c", "exec 9</dev/null; exec \"$@\"", "sh"])
        .arg(cli())
        .args(["run", s(&state), s(b.path()), &id])
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    let line = |k: &str| common::status_line(&o, k).unwrap_or_else(|| panic!("{k} missing in {o}")).to_owned();
    // A non-root user: the permitted/effective sets are cleared by the uid
    // change (no ambient), the bounding set is Docker's.
    assert_eq!(line("CapBnd:"), DOCKER_CAP_HEX, "{o}");
    assert_eq!(line("CapEff:"), "0000000000000000", "{o}");
    assert_eq!(line("CapAmb:"), "0000000000000000", "{o}");
    assert_eq!(line("NoNewPrivs:"), "1", "{o}");
    assert!(o.contains("uid=1000 gid=1000 groups=1001"), "{o}");
    assert!(o.contains("\n0027\n/tmp\n512\n200\n"), "umask/pwd/ulimit: {o}");
    // Docker's profile: unshare is EPERM (no CAP_SYS_ADMIN).
    assert!(o.contains("unshare=1"), "{o}");
    assert!(o.contains(&format!("pids:{cgp}\n")) && o.contains(&format!("memory:{cgp}\n")), "{o}");
    // Only stdio (and ls's own directory fd) reach the program, not the
    // runtime's fd 9 below.
    assert!(o.contains("fds: 0 1 2 3\n"), "{o}");
    assert_nothing_left(&state, Some(&cgp), &b);
}

#[test]
fn docker_caps_as_root_in_the_container() {
    require_root!();
    let id = unique("root");
    let mut c = config("grep -E '^(Cap|NoNewPrivs)' /proc/self/status", &["mount", "pid"]);
    docker_process(&mut c);
    let b = Bundle::new("capsroot", &c);
    let st = TempDir::new("capsroot-state");
    let state = st.path().join("c");
    let out = run_cli(&["run", s(&state), s(b.path()), &id]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    for k in ["CapPrm:", "CapEff:", "CapBnd:"] {
        assert_eq!(common::status_line(&o, k), Some(DOCKER_CAP_HEX), "{k}: {o}");
    }
    assert_eq!(common::status_line(&o, "NoNewPrivs:"), Some("1"));
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > Duration::from_secs(10) {
            let outs: Vec<String> = std::fs::read_dir(std::env::temp_dir())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(&format!("-state-{}-", std::process::id())))
                .flat_map(|e| ["c.out", "c.err"].map(|f| std::fs::read_to_string(e.path().join(f)).unwrap_or_default()))
                .collect();
            panic!("timed out waiting for {what}; create's output: {outs:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `create`, its output in files: the created container inherits the
/// CLI's stdout and stderr (as runc's does), so pipes would stay open.
fn create_out(state: &Path, b: &Bundle, id: &str) -> (Option<i32>, String, String) {
    let outf = state.with_extension("out");
    let errf = state.with_extension("err");
    let st = Command::new(cli())
        .args(["create", s(state), s(b.path()), id])
        .stdout(std::fs::File::create(&outf).unwrap())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .expect("run oci_container");
    (st.code(), std::fs::read_to_string(&outf).unwrap(), std::fs::read_to_string(&errf).unwrap())
}

/// Deletes (with force) the container of a state dir when a test ends,
/// also by a failed assertion: a panicking test leaves nothing either.
struct DeleteOnDrop(PathBuf);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = Command::new(cli()).args(["delete", "--force", s(&self.0)]).output();
        }
    }
}

fn create(state: &Path, b: &Bundle, id: &str) -> i32 {
    let (code, out, err) = create_out(state, b, id);
    assert_eq!(code, Some(0), "create: {err}");
    out.trim().parse().expect("pid")
}

fn status(state: &Path) -> String {
    let out = run_cli(&["state", s(state)]);
    text(&out.stdout).split(' ').next().unwrap_or("").to_owned()
}

fn cgroup_procs(controller: &str, cgp: &str) -> String {
    std::fs::read_to_string(cg(controller, cgp).join("cgroup.procs")).unwrap_or_default()
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    require_root!();
    let id = unique("bomb");
    let cgp = format!("/{id}");
    // A bounded bomb: 100 background sleeps; at most pids.max run.
    // (A subshell forks them: ash gives up at the first refused fork.)
    let script = "(for i in $(seq 100); do sleep 30 & done) 2>/dev/null; echo bomb-done; sleep 30";
    let mut c = config(script, &["mount", "pid"]);
    c["linux"]["cgroupsPath"] = json!(cgp);
    c["linux"]["resources"] = json!({"pids": {"limit": 16}});
    let b = Bundle::new("bomb", &c);
    link_applets(&b, &["seq"]);
    let st = TempDir::new("bomb-state");
    let state = st.path().join("c");
    let _guard = DeleteOnDrop(state.clone());
    let pid = create(&state, &b, &id);
    // Before any fork: the init is in the limited cgroup, which holds 16.
    assert_eq!(cgroup_procs("pids", &cgp).trim(), pid.to_string(), "the init is not (alone) in the pids cgroup");
    assert_eq!(std::fs::read_to_string(cg("pids", &cgp).join("pids.max")).unwrap().trim(), "16");
    assert_eq!(status(&state), "Created");
    let out = run_cli(&["start", s(&state)]);
    assert_eq!(out.status.code(), Some(0), "start: {}", text(&out.stderr));
    // The bomb filled the cgroup and stopped there: forks were refused
    // (pids.events), the count never passed the limit.
    wait_until("the bomb to end", || {
        std::fs::read_to_string(state.with_extension("out")).is_ok_and(|o| o.contains("bomb-done"))
    });
    let current: u32 =
        std::fs::read_to_string(cg("pids", &cgp).join("pids.current")).unwrap().trim().parse().unwrap();
    let events = std::fs::read_to_string(cg("pids", &cgp).join("pids.events")).unwrap_or_default();
    let refused: u64 = events.trim().strip_prefix("max ").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(refused > 0, "no fork was refused: {events:?}");
    assert!((2..=16).contains(&current), "pids.current {current}");
    // The host still forks.
    assert!(Command::new("true").status().unwrap().success());
    assert_eq!(status(&state), "Running");
    let out = run_cli(&["delete", s(&state)]);
    assert_ne!(out.status.code(), Some(0), "delete of a running container without --force");
    assert!(text(&out.stderr).contains("is running"), "{}", text(&out.stderr));
    let out = run_cli(&["delete", "--force", s(&state)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_nothing_left(&state, Some(&cgp), &b);
}

#[test]
fn memory_hog_is_oom_killed_inside_its_limit() {
    require_root!();
    let id = unique("oom");
    let cgp = format!("/{id}");
    let limit = 32 << 20;
    // tail keeps the whole 256 MiB line in memory.
    // The shell keeps the whole 256 MiB command substitution in memory.
    let mut c = config("x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived", &["mount", "pid"]);
    c["linux"]["cgroupsPath"] = json!(cgp);
    c["linux"]["resources"] = json!({"memory": {"limit": limit, "swap": limit}});
    let b = Bundle::new("oom", &c);
    link_applets(&b, &["head", "tr"]);
    let st = TempDir::new("oom-state");
    let state = st.path().join("c");
    let _guard = DeleteOnDrop(state.clone());
    let pid = create(&state, &b, &id);
    assert_eq!(cgroup_procs("memory", &cgp).trim(), pid.to_string(), "the init is not in the memory cgroup");
    let lim: u64 = std::fs::read_to_string(cg("memory", &cgp).join("memory.limit_in_bytes")).unwrap().trim().parse().unwrap();
    assert_eq!(lim, limit);
    let out = run_cli(&["start", s(&state)]);
    assert_eq!(out.status.code(), Some(0), "start: {}", text(&out.stderr));
    wait_until("the container to stop", || status(&state) == "Stopped");
    let oom = std::fs::read_to_string(cg("memory", &cgp).join("memory.oom_control")).unwrap();
    let max: u64 =
        std::fs::read_to_string(cg("memory", &cgp).join("memory.max_usage_in_bytes")).unwrap().trim().parse().unwrap();
    assert!(oom.lines().any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"), "no OOM kill: {oom}");
    assert!(max <= limit, "usage {max} above the limit");
    let out = run_cli(&["delete", s(&state)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_nothing_left(&state, Some(&cgp), &b);
}

#[test]
fn hooks_run_in_order_across_create_start_delete_processes() {
    require_root!();
    let id = unique("hooks");
    // Each hook appends "<kind> <status> <pid>" from the state on stdin to
    // the rootfs's /hooklog/log: by its host path, or (startContainer,
    // which runs in the container after pivot_root) by its own.
    let b0 = Bundle::new("hooks", &json!({}));
    let log = b0.rootfs().join("hooklog/log");
    let hook = |kind: &str| {
        let path = if kind == "startContainer" { "/hooklog/log".to_owned() } else { log.display().to_string() };
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
            "s=$(cat); st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); \
             pid=$(echo \"$s\" | sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); echo {kind} $st $pid >> {path}")]})
    };
    let mut c = config("echo program >> /hooklog/program", &["mount", "pid"]);
    c["hooks"] = json!({
        "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")], "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")], "poststop": [hook("poststop")],
    });
    std::fs::write(b0.path().join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    let b = b0;
    link_applets(&b, &["sed"]);
    let st = TempDir::new("hooks-state");
    let state = st.path().join("c");
    let _guard = DeleteOnDrop(state.clone());
    let pid = create(&state, &b, &id);
    let got = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        got(),
        format!("prestart creating {pid}\ncreateRuntime creating {pid}\ncreateContainer creating {pid}\n"),
        "after create"
    );
    assert!(!b.rootfs().join("hooklog/program").exists());
    assert_eq!(run_cli(&["start", s(&state)]).status.code(), Some(0));
    wait_until("the program", || b.rootfs().join("hooklog/program").exists());
    wait_until("the container to stop", || status(&state) == "Stopped");
    assert_eq!(run_cli(&["delete", s(&state)]).status.code(), Some(0));
    let want = format!(
        "prestart creating {pid}\ncreateRuntime creating {pid}\ncreateContainer creating {pid}\n\
         startContainer created {pid}\npoststart running {pid}\npoststop stopped {pid}\n"
    );
    assert_eq!(got(), want);
    assert_nothing_left(&state, None, &b);
}

#[test]
fn delete_of_a_created_container_never_runs_the_program() {
    require_root!();
    let id = unique("delcreated");
    let cgp = format!("/{id}");
    let mut c = config("echo ran > /hooklog/ran", &["mount", "pid"]);
    c["linux"]["cgroupsPath"] = json!(cgp);
    let b = Bundle::new("delcreated", &c);
    let st = TempDir::new("delcreated-state");
    let state = st.path().join("c");
    let _guard = DeleteOnDrop(state.clone());
    let pid = create(&state, &b, &id);
    // Created: the init sits in its rootfs without having exec'd.
    assert!(Path::new(&format!("/proc/{pid}/root/etc/plain")).exists());
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(), cli());
    assert_eq!(run_cli(&["kill", s(&state), "18"]).status.code(), Some(0));
    let out = run_cli(&["delete", s(&state)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!b.rootfs().join("hooklog/ran").exists(), "the program ran");
    assert_nothing_left(&state, Some(&cgp), &b);
    // Start after delete: a clear error.
    let out = run_cli(&["start", s(&state)]);
    assert!(text(&out.stderr).contains("state.json: read"), "{}", text(&out.stderr));
}

#[test]
fn console_master_reaches_the_console_socket() {
    require_root!();
    let id = unique("console");
    let dir = TempDir::new("console-sock");
    let sock_path = dir.path().join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut c = config("tty; stty size", &["mount", "pid"]);
    c["process"]["terminal"] = json!(true);
    c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let b = Bundle::new("console", &c);
    let st = TempDir::new("console-state");
    let state = st.path().join("c");
    let mut child = Command::new(cli())
        .args(["run", "--console-socket", s(&sock_path), s(&state), s(b.path()), &id])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) => {
                if let Some(st) = child.try_wait().unwrap() {
                    let mut e = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
                    panic!("exited ({st}) without connecting: {e}");
                }
                assert!(t0.elapsed() < Duration::from_secs(10), "no connection on the console socket");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    conn.set_nonblocking(false).unwrap();
    let (master, name) = nsboot_oci::sys::recv_fd(std::os::fd::AsFd::as_fd(&conn)).unwrap();
    assert_eq!(name, b"/dev/ptmx");
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    // Read until the container closes its side (EIO on a master).
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().unwrap();
    let o = text(&out);
    assert_eq!(status.code(), Some(0), "{o}");
    assert!(o.contains("/dev/pts/0\r\n33 101"), "{o:?}");
    assert_nothing_left(&state, None, &b);
}

#[test]
fn hostile_configs_are_refused_by_key_and_leave_nothing() {
    require_root!();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c["process"]["capabilities"] = json!({"bounding": ["CAP_NOPE"]})),
            "process.capabilities.bounding[0]: unknown capability \"CAP_NOPE\"",
        ),
        (
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"})),
            "unknown",
        ),
        (Box::new(|c| c["linux"]["cgroupsPath"] = json!("/a/../../etc")), "linux.cgroupsPath"),
        (
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "/nonexistent/hook"}]})),
            "hooks.prestart[0].path",
        ),
        (Box::new(|c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"})), "linux.sysctl \"kernel.panic\""),
        (
            Box::new(|c| c["linux"]["namespaces"] = json!([{"type": "pid"}])),
            "linux.namespaces",
        ),
    ];
    for (i, (edit, want)) in cases.iter().enumerate() {
        let id = unique(&format!("hostile{i}"));
        let cgp = format!("/{id}");
        let mut c = config("echo ran > /hooklog/ran", &["mount", "pid", "ipc", "uts"]);
        if c["linux"].get("cgroupsPath").is_none() {
            c["linux"]["cgroupsPath"] = json!(cgp);
        }
        edit(&mut c);
        let b = Bundle::new("hostile", &c);
        let st = TempDir::new("hostile-state");
        let state = st.path().join("c");
        let (code, _, e) = create_out(&state, &b, &id);
        assert_eq!(code, Some(2), "case {i}: {e}");
        assert!(e.contains(want), "case {i}: want {want:?} in {e}");
        assert!(!b.rootfs().join("hooklog/ran").exists());
        assert_nothing_left(&state, Some(&cgp), &b);
    }
}

#[test]
fn failures_after_creation_began_leave_nothing() {
    require_root!();
    let logs = TempDir::new("fail-log");
    let poststop = logs.path().join("poststop");
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str, &str, i32)> = vec![
        // A createRuntime hook fails: the container is killed, poststop runs.
        (
            Box::new(|c| c["hooks"]["createRuntime"] = json!([{"path": "/bin/false"}])),
            "create",
            "hooks.createRuntime[0]",
            1,
        ),
        // The rootfs cannot be prepared (a mount onto a missing source).
        (
            Box::new(|c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}))
            }),
            "create",
            "mounts[3]",
            125,
        ),
        // A missing program: the exec fails after start, exit 127.
        (Box::new(|c| c["process"]["args"] = json!(["/bin/nope"])), "run", "exec \"/bin/nope\"", 127),
        // A timed-out createContainer hook (in the container).
        (
            Box::new(|c| {
                c["hooks"]["createContainer"] =
                    json!([{"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}])
            }),
            "create",
            "hooks.createContainer[0]",
            1,
        ),
    ];
    for (i, (edit, cmd, want, code)) in cases.iter().enumerate() {
        let id = unique(&format!("fail{i}"));
        let cgp = format!("/{id}");
        let _ = std::fs::remove_file(&poststop);
        let mut c = config("echo ran > /hooklog/ran", &["mount", "pid"]);
        c["linux"]["cgroupsPath"] = json!(cgp);
        c["linux"]["resources"] = json!({"pids": {"limit": 32}});
        c["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", poststop.display())]}]});
        edit(&mut c);
        let b = Bundle::new("fail", &c);
        let st = TempDir::new("fail-state");
        let state = st.path().join("c");
        let (got, e) = if *cmd == "create" {
            let (c, _, e) = create_out(&state, &b, &id);
            (c, e)
        } else {
            let out = run_cli(&[cmd, s(&state), s(b.path()), &id]);
            (out.status.code(), text(&out.stderr))
        };
        assert_eq!(got, Some(*code), "case {i}: {e}");
        assert!(e.contains(want), "case {i}: want {want:?} in {e}");
        assert!(!b.rootfs().join("hooklog/ran").exists(), "case {i}: the program ran");
        assert!(poststop.exists(), "case {i}: poststop did not run");
        assert_nothing_left(&state, Some(&cgp), &b);
    }
}

#[test]
fn rootless_container_in_a_user_namespace() {
    require_rootless!();
    let id = unique("rootless");
    let mut c = config("id -u; grep -E '^CapEff' /proc/self/status; cat /proc/self/uid_map", &["user", "mount", "pid"]);
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 65534, "size": 1}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 65534, "size": 1}]);
    let b = Bundle::new("rootless", &c);
    let st = TempDir::new("rootless-state");
    let state_parent = st.path().join("nobody");
    std::fs::create_dir(&state_parent).unwrap();
    nix::unistd::chown(&state_parent, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let state = state_parent.join("c");
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(cli())
        .args(["run", s(&state), s(b.path()), &id])
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    assert!(o.starts_with("0\n"), "{o}");
    assert!(o.contains("65534"), "uid_map: {o}");
    assert_nothing_left(&state, None, &b);
}

#[test]
fn the_library_refuses_a_multithreaded_caller_and_creates_nothing() {
    // The harness has several threads: create must refuse before it makes
    // anything (it forks).
    let _t = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(2)));
    let b = Bundle::new("threads", &config("true", &["mount"]));
    let st = TempDir::new("threads-state");
    let state = st.path().join("c");
    let mut o = nsboot_oci::container::CreateOptions::new("threads", b.path());
    o.state_dir = Some(state.clone());
    let e = nsboot_oci::container::Container::create(o).unwrap_err();
    assert!(e.to_string().contains("single-threaded check"), "{e}");
    assert!(!state.exists());
}

#[test]
fn namespaces_joined_by_path() {
    require_root!();
    // A: created (waiting at its gate) with new net and uts namespaces.
    let id_a = unique("join-a");
    let a = Bundle::new("join-a", &config("true", &["mount", "pid", "network", "uts"]));
    let st = TempDir::new("join-state");
    let state_a = st.path().join("a");
    let _guard = DeleteOnDrop(state_a.clone());
    let pid_a = create(&state_a, &a, &id_a);
    let ns = |pid: i32, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    // B joins A's network and uts namespaces by path, creates the rest.
    let mut c = config("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc", &["mount", "pid", "ipc"]);
    c["linux"]["namespaces"].as_array_mut().unwrap().extend([
        json!({"type": "network", "path": format!("/proc/{pid_a}/ns/net")}),
        json!({"type": "uts", "path": format!("/proc/{pid_a}/ns/uts")}),
    ]);
    let b = Bundle::new("join-b", &c);
    link_applets(&b, &["readlink"]);
    let out = run_cli(&["run", s(&st.path().join("b")), s(b.path()), &unique("join-b")]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], ns(pid_a, "net").to_str().unwrap(), "{o}");
    assert_eq!(lines[1], ns(pid_a, "uts").to_str().unwrap(), "{o}");
    assert_ne!(lines[0], ns(std::process::id() as i32, "net").to_str().unwrap(), "A's netns is the host's?");
    assert_ne!(lines[2], ns(pid_a, "ipc").to_str().unwrap(), "ipc was to be new");
    // A path that is not a namespace: refused by key, nothing created.
    let mut c = config("true", &["mount", "pid"]);
    c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "network", "path": "/nonexistent/ns"}));
    let bad = Bundle::new("join-bad", &c);
    let state_bad = st.path().join("bad");
    let (code, _, e) = create_out(&state_bad, &bad, &unique("join-bad"));
    assert_ne!(code, Some(0));
    assert!(e.contains("linux.namespaces[2].path /nonexistent/ns"), "{e}");
    assert_nothing_left(&state_bad, None, &bad);
}
