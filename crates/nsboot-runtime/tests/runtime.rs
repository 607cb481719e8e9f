//! nsboot-runtime driven as engines drive it: one process per command,
//! on a busybox-static bundle, as root. Each test has its own `--root`
//! and cgroupsPath and checks that what it made is gone at the end.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_rootfs, edit_config, rand_u32, skip, OwnMounts, TestDir};

const BIN: &str = env!("CARGO_BIN_EXE_nsboot-runtime");

struct Env {
    dir: TestDir,
    root: PathBuf,
    bundle: PathBuf,
    cgroup: String,
    _rootfs: TestDir,
}

impl Env {
    /// Output through files, not pipes: a detached container keeps the
    /// runtime's stdout and stderr (as runc's), so a pipe would not end.
    fn rt(&self, args: &[&str]) -> Output {
        let n = rand_u32();
        let (po, pe) = (self.dir.join(format!("out-{n}")), self.dir.join(format!("err-{n}")));
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&po).unwrap())
            .stderr(std::fs::File::create(&pe).unwrap())
            .spawn()
            .expect("spawn nsboot-runtime");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("nsboot-runtime {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = Output { status, stdout: std::fs::read(&po).unwrap(), stderr: std::fs::read(&pe).unwrap() };
        let _ = (std::fs::remove_file(po), std::fs::remove_file(pe));
        out
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.rt(args);
        assert!(o.status.success(), "{args:?}: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn status(&self, id: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["state", id])).expect("state JSON");
        v["status"].as_str().unwrap_or("").to_owned()
    }
    fn cgroup_dir(&self, controller: &str) -> PathBuf {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}{}", self.cgroup))
    }
    /// Nothing of container `id` left: no state dir, no cgroup.
    fn assert_gone(&self, id: &str) {
        assert!(!self.root.join(id).exists(), "state dir of {id} left");
        for c in ["memory", "pids", "freezer", "cpu,cpuacct", "unified"] {
            assert!(!self.cgroup_dir(c).exists(), "cgroup {} left", self.cgroup_dir(c).display());
        }
    }
}

/// A failed test still removes its containers (processes, cgroups).
impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = Command::new(BIN).arg("--root").arg(&self.root).args(["delete", "--force", &id]).output();
            }
        }
    }
}

/// A bundle from our own `spec`, args `args`, terminal off, a private
/// cgroupsPath with memory and pids limits.
fn env(tag: &str, args: &[&str]) -> Option<Env> {
    if !common::is_root() {
        skip("requires root (rootful containers, cgroups)");
        return None;
    }
    let rootfs = busybox_rootfs(tag, &["sh", "sleep", "cat", "echo", "id", "ls", "readlink", "hostname", "true"])?;
    let dir = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-rt-{tag}-{}-{}", std::process::id(), rand_u32())));
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let o = Command::new(BIN).args(["spec", "--bundle"]).arg(&bundle).output().unwrap();
    assert!(o.status.success(), "spec: {}", String::from_utf8_lossy(&o.stderr));
    let cgroup = format!("/nsboot-rt-test-{tag}-{}", rand_u32());
    let rootfs_path = rootfs.path().to_owned();
    edit_config(&bundle, |c| {
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(args);
        c["root"]["path"] = rootfs_path.to_string_lossy().into();
        c["linux"]["cgroupsPath"] = cgroup.clone().into();
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 64});
    });
    Some(Env { root: dir.join("root"), bundle, cgroup, dir, _rootfs: rootfs })
}

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn run_prints_and_returns_the_exit_status() {
    let Some(e) = env("run", &["sh", "-c", "echo hello; cat /proc/self/status | grep NoNewPrivs; exit 3"]) else {
        return;
    };
    let mounts = OwnMounts::new(&[e.dir.path()]);
    let o = e.rt(&["run", "--bundle", e.bundle.to_str().unwrap(), "r1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("hello") && out.contains("NoNewPrivs:\t1"), "{out}");
    e.assert_gone("r1");
    mounts.assert_unchanged("run");
}

#[test]
fn create_start_state_kill_delete() {
    let Some(e) = env("life", &["sleep", "1000"]) else { return };
    let pid_file = e.dir.join("pid");
    e.ok(&["create", "-b", e.bundle.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), "c1"]);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let st: serde_json::Value = serde_json::from_str(&e.ok(&["state", "c1"])).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], "c1");
    assert_eq!(st["bundle"], e.bundle.to_str().unwrap());
    for k in ["ociVersion", "rootfs", "created", "owner"] {
        assert!(st.get(k).is_some(), "state has no {k}: {st}");
    }
    // Created: the program has not run yet (the init is not sleep).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    // In its cgroup with the limits.
    let procs = std::fs::read_to_string(e.cgroup_dir("memory").join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    assert_eq!(std::fs::read_to_string(e.cgroup_dir("pids").join("pids.max")).unwrap().trim(), "64");
    let list = e.ok(&["list"]);
    assert!(list.contains("c1") && list.contains("created"), "{list}");
    e.ok(&["start", "c1"]);
    assert!(wait_for(|| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")));
    assert_eq!(e.status("c1"), "running");
    // start of a running container: exit 1, one line.
    let o = e.rt(&["start", "c1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1);
    // pid 1 of its pid namespace ignores SIGTERM without a handler (the
    // kernel's rule, as with runc): 9 by number.
    e.ok(&["kill", "c1", "9"]);
    assert!(wait_for(|| e.status("c1") == "stopped"));
    e.ok(&["delete", "c1"]);
    e.assert_gone("c1");
}

#[test]
fn kill_names_all_and_delete_force() {
    let Some(e) = env("kill", &["sh", "-c", "trap 'echo got' USR1; while true; do sleep 1; done"]) else { return };
    e.ok(&["run", "-d", "-b", e.bundle.to_str().unwrap(), "k1"]);
    assert_eq!(e.status("k1"), "running");
    let o = e.rt(&["kill", "k1", "NOSUCHSIG"]);
    assert_eq!(o.status.code(), Some(1));
    // delete without --force of a running container is refused.
    let o = e.rt(&["delete", "k1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not stopped"));
    assert_eq!(e.status("k1"), "running");
    e.ok(&["kill", "k1", "SIGUSR1"]);
    e.ok(&["kill", "k1", "USR1"]);
    let pids: Vec<i32> = serde_json::from_str(&e.ok(&["ps", "--format", "json", "k1"])).unwrap();
    assert!(!pids.is_empty());
    e.ok(&["delete", "--force", "k1"]);
    e.assert_gone("k1");
    for p in pids {
        assert!(
            wait_for(|| !Path::new(&format!("/proc/{p}")).exists() || common::proc_state(p) == Some('Z')),
            "pid {p} alive"
        );
    }
    // --force of a container that does not exist: fine, as runc.
    e.ok(&["delete", "--force", "k1"]);
}

#[test]
fn exec_joins_the_namespaces_and_cgroup() {
    let Some(e) = env("exec", &["sleep", "1000"]) else { return };
    e.ok(&["run", "-d", "-b", e.bundle.to_str().unwrap(), "x1"]);
    let st: serde_json::Value = serde_json::from_str(&e.ok(&["state", "x1"])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let out = e.ok(&["exec", "x1", "sh", "-c", "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done; echo pid=$$; cat /proc/self/status | grep NoNewPrivs"]);
    for n in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert!(out.contains(want.to_str().unwrap()), "{n}: {want:?} not in {out}");
    }
    // pid > 1 in the container's pid namespace; noNewPrivileges of the config.
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(!out.contains("pid=1\n"), "{out}");
    // The exit status comes back; --env/--cwd/--user apply.
    let o = e.rt(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "x1",
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g); exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "bar /tmp 1000:1000");
    // A missing program: one line, not 0.
    let o = e.rt(&["exec", "x1", "/nonexistent"]);
    assert_ne!(o.status.code(), Some(0));
    // exec --process
    let p = e.dir.join("process.json");
    std::fs::write(
        &p,
        r#"{"args":["sh","-c","echo from-process-json"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#,
    )
    .unwrap();
    assert_eq!(e.ok(&["exec", "--process", p.to_str().unwrap(), "x1"]).trim(), "from-process-json");
    e.ok(&["delete", "-f", "x1"]);
    e.assert_gone("x1");
}

#[test]
fn pause_resume_update_ps() {
    let Some(e) = env("pause", &["sleep", "1000"]) else { return };
    e.ok(&["run", "-d", "-b", e.bundle.to_str().unwrap(), "p1"]);
    e.ok(&["pause", "p1"]);
    assert_eq!(e.status("p1"), "paused");
    assert_eq!(std::fs::read_to_string(e.cgroup_dir("freezer").join("freezer.state")).unwrap().trim(), "FROZEN");
    assert_eq!(e.rt(&["pause", "p1"]).status.code(), Some(1));
    e.ok(&["resume", "p1"]);
    assert_eq!(e.status("p1"), "running");
    assert_eq!(std::fs::read_to_string(e.cgroup_dir("freezer").join("freezer.state")).unwrap().trim(), "THAWED");
    e.ok(&["update", "--memory", "32m", "--pids-limit", "20", "p1"]);
    assert_eq!(
        std::fs::read_to_string(e.cgroup_dir("memory").join("memory.limit_in_bytes")).unwrap().trim(),
        (32u64 << 20).to_string()
    );
    assert_eq!(std::fs::read_to_string(e.cgroup_dir("pids").join("pids.max")).unwrap().trim(), "20");
    let table = e.ok(&["ps", "p1"]);
    assert!(table.lines().next().unwrap().contains("PID") && table.contains("sleep 1000"), "{table}");
    e.ok(&["delete", "--force", "p1"]);
    e.assert_gone("p1");
}

#[test]
fn bad_input_is_one_line_exit_1_and_leaves_nothing() {
    let Some(e) = env("bad", &["sleep", "1000"]) else { return };
    let mounts = OwnMounts::new(&[e.dir.path()]);
    let b = e.bundle.to_str().unwrap().to_owned();
    let check = |what: &str, args: &[&str], id: &str, needle: &str| {
        let o = e.rt(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: not one line: {err}");
        assert!(err.contains(needle), "{what}: {needle:?} not in {err}");
        if !id.is_empty() && !id.contains('/') && id != ".." {
            e.assert_gone(id);
        }
    };
    // bundle path missing
    check("missing bundle", &["create", "-b", "/nonexistent/bundle", "b1"], "b1", "/nonexistent/bundle");
    // id with / or ..
    check("id with /", &["create", "-b", &b, "a/b"], "a/b", "invalid container id");
    check("id ..", &["create", "-b", &b, ".."], "..", "invalid container id");
    // console socket that is not a socket
    edit_config(&e.bundle, |c| c["process"]["terminal"] = true.into());
    let notsock = e.dir.join("not-a-socket");
    std::fs::write(&notsock, "").unwrap();
    check(
        "console socket",
        &["create", "-b", &b, "--console-socket", notsock.to_str().unwrap(), "b2"],
        "b2",
        notsock.to_str().unwrap(),
    );
    edit_config(&e.bundle, |c| c["process"]["terminal"] = false.into());
    // unknown ociVersion
    edit_config(&e.bundle, |c| c["ociVersion"] = "9.9.9".into());
    check("ociVersion", &["create", "-b", &b, "b3"], "b3", "9.9.9");
    edit_config(&e.bundle, |c| c["ociVersion"] = "1.0.2".into());
    // a capability that does not exist: names it, nothing left
    edit_config(&e.bundle, |c| c["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOPE"]));
    check("unknown capability", &["create", "-b", &b, "b6"], "b6", "CAP_NOPE");
    edit_config(&e.bundle, |c| c["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_KILL"]));
    // a program that does not exist: fails at run (exec), nothing left
    edit_config(&e.bundle, |c| c["process"]["args"] = serde_json::json!(["/nonexistent"]));
    let o = e.rt(&["run", "-b", &b, "b7"]);
    assert_ne!(o.status.code(), Some(0));
    e.assert_gone("b7");
    edit_config(&e.bundle, |c| c["process"]["args"] = serde_json::json!(["sleep", "1000"]));
    // malformed config.json
    let cfg = e.bundle.join("config.json");
    let good = std::fs::read(&cfg).unwrap();
    std::fs::write(&cfg, b"{ not json").unwrap();
    check("malformed config", &["create", "-b", &b, "b4"], "b4", "config.json");
    // missing config.json
    std::fs::remove_file(&cfg).unwrap();
    check("missing config", &["create", "-b", &b, "b5"], "b5", "config.json");
    std::fs::write(&cfg, &good).unwrap();
    // duplicate id (and the first one untouched)
    e.ok(&["create", "-b", &b, "d1"]);
    let o = e.rt(&["create", "-b", &b, "d1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
    assert_eq!(e.status("d1"), "created");
    // delete of a created container works and leaves nothing
    e.ok(&["delete", "d1"]);
    e.assert_gone("d1");
    // commands on a container that does not exist
    check("state of nothing", &["state", "nope"], "nope", "does not exist");
    // checkpoint: a clear "not supported"
    check("checkpoint", &["checkpoint", "x"], "", "not supported");
    // a half-made container (state dir without state.json): delete works
    std::fs::create_dir_all(e.root.join("half")).unwrap();
    e.ok(&["delete", "half"]);
    assert!(!e.root.join("half").exists());
    mounts.assert_unchanged("bad input");
}

#[test]
fn json_log_format_for_engines() {
    let Some(e) = env("log", &["true"]) else { return };
    let log = e.dir.join("log.json");
    let o = Command::new(BIN)
        .arg("--root")
        .arg(&e.root)
        .args(["--log", log.to_str().unwrap(), "--log-format", "json", "state", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("nope"));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn spec_and_features() {
    let f: serde_json::Value =
        serde_json::from_slice(&Command::new(BIN).arg("features").output().unwrap().stdout).unwrap();
    assert!(f["ociVersionMax"].is_string());
    assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "pid"));
    let d = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-rt-spec-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(d.path()).unwrap();
    for rootless in [false, true] {
        let _ = std::fs::remove_file(d.join("config.json"));
        let mut c = Command::new(BIN);
        c.args(["spec", "--bundle"]).arg(d.path());
        if rootless {
            c.arg("--rootless");
        }
        assert!(c.status().unwrap().success());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
        let has_user = v["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n["type"] == "user");
        assert_eq!(has_user, rootless);
    }
    // An existing config.json is not overwritten.
    let o = Command::new(BIN).args(["spec", "--bundle"]).arg(d.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn rootless_run_as_nobody() {
    if !common::is_root() || !common::have("setpriv") {
        skip("needs root to switch to nobody (setpriv)");
        return;
    }
    let Some(rootfs) = busybox_rootfs("rootless", &["sh", "id", "cat"]) else { return };
    let dir = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-rt-rootless-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(dir.join("bundle")).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", BIN])
            .arg("--root")
            .arg(dir.join("root"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap()
    };
    let _ = Command::new("chown").args(["-R", "65534:65534"]).arg(dir.path()).status();
    let bundle = dir.join("bundle");
    let o = as_nobody(&["spec", "--rootless", "--bundle", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    edit_config(&bundle, |c| {
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
        c["root"]["path"] = rootfs.to_string_lossy().into();
    });
    let o = as_nobody(&["run", "--bundle", bundle.to_str().unwrap(), "rl1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "65534", "1"], "{out}");
    assert!(!dir.join("root/rl1").exists());
}

#[test]
fn run_forwards_signals_to_the_container() {
    let Some(e) = env("sig", &["sh", "-c", "trap 'echo got-term; exit 9' TERM; while true; do sleep 0.1; done"]) else {
        return;
    };
    let out = e.dir.join("sig-out");
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&e.root)
        .args(["run", "--bundle", e.bundle.to_str().unwrap(), "s1"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_for(|| e.rt(&["state", "s1"]).status.success() && e.status("s1") == "running"));
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(9));
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "got-term");
    e.assert_gone("s1");
}

#[test]
fn a_crashed_create_is_removed_by_delete() {
    let Some(e) = env("crash", &["sleep", "1000"]) else { return };
    // A unique duration marks the hook process so that the test can find it.
    let marker = format!("30.{}", rand_u32() % 1000);
    let marker = marker.as_str();
    // The runtime is killed while a createRuntime hook runs (the container
    // process exists, waiting for "go"; the cgroup and state dir exist).
    edit_config(&e.bundle, |c| {
        c["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", marker]}]});
    });
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&e.root)
        .args(["create", "--bundle", e.bundle.to_str().unwrap(), "cr1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hook_pids = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
            })
            .collect()
    };
    // The hook runs: the state dir, the cgroup and the container process exist.
    assert!(wait_for(|| !hook_pids().is_empty()));
    assert!(e.cgroup_dir("pids").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(e.root.join("cr1").exists());
    e.ok(&["delete", "cr1"]);
    e.assert_gone("cr1");
    // The hook outlives the killed runtime: end it by its pid.
    for pid in hook_pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}
