//! cgroups, for real, on this host. What is proven where:
//!
//! * This VM is hybrid: cpu, cpuacct, cpuset, memory, devices, freezer,
//!   blkio, pids (and name=systemd) are v1 hierarchies under
//!   /sys/fs/cgroup/<name>; only hugetlb is on the unified hierarchy at
//!   /sys/fs/cgroup/unified. The v1 tests check the files hold the values
//!   and that the kernel enforces them (pids.max stops a fork bomb, a
//!   memory hog is OOM-killed inside memory.limit_in_bytes with
//!   memory.memsw limited too). The unified tests check creation, hugetlb
//!   limits and clone3(CLONE_INTO_CGROUP) on the real cgroup2 hierarchy.
//! * v2 memory/cpu/io/pids files cannot exist on this host (those
//!   controllers are bound to v1, and a controller is in one hierarchy
//!   only), so their writer is tested against a scratch directory in
//!   `src/cgroups/v2.rs` — names and values, not kernel acceptance.
//!
//! Each test uses cgroup names with this process's pid and checks only
//! what it created; every process moved into a cgroup is a spawned
//! `nsboot-oci-helper` (never this multi-threaded harness). Tests skip
//! (with a line on stderr) when not root or when the hierarchy is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nsboot_oci::cgroups::{Cgroup, CgroupError, CgroupPlan, Hierarchies, Mode, Version};
use nsboot_oci::oci_spec::runtime::LinuxResources;
use serde_json::json;

const HELPER: &str = env!("CARGO_BIN_EXE_nsboot-oci-helper");

macro_rules! require_root_and {
    ($hier:expr, $($ctrl:expr),*) => {{
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        $(
            if $hier.holding($ctrl).is_none() {
                eprintln!("skipped: no {} controller on this host", $ctrl);
                return;
            }
        )*
    }};
}

fn name(test: &str) -> PathBuf {
    PathBuf::from(format!("/nsboot-i16sec-{}-{test}", std::process::id()))
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_owned()
}

/// Every hierarchy's directory for `path` is gone.
fn assert_gone(hier: &Hierarchies, path: &Path) {
    for h in &hier.list {
        let d = h.mountpoint.join(path.strip_prefix("/").unwrap());
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// Removes the cgroup (killing what is left in it) even when an assertion
/// fails first.
struct Cleanup(Cgroup);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// The cgroup as JSON in a temp file for the helper; deleted on drop
/// (also when an assertion fails first).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for TempFile {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

fn cgroup_file(dir: &Path, cg: &Cgroup) -> TempFile {
    let f = std::env::temp_dir().join(format!(
        "nsboot-i16sec-cg-{}-{}.json",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&f, serde_json::to_vec(cg).unwrap()).unwrap();
    TempFile(f)
}

#[test]
fn host_is_detected_as_runc_would() {
    let hier = Hierarchies::detect().unwrap();
    let v1 = hier.list.iter().any(|h| h.version == Version::V1);
    let expected = match (v1, Path::new("/sys/fs/cgroup/cgroup.controllers").exists()) {
        (_, true) => Mode::Unified,
        (true, false) if hier.unified().is_some() => Mode::Hybrid,
        _ => Mode::Legacy,
    };
    assert_eq!(hier.mode(), expected, "{hier:?}");
    if let Some(u) = hier.unified() {
        let c = std::fs::read_to_string(u.mountpoint.join("cgroup.controllers")).unwrap();
        assert_eq!(u.controllers, c.split_whitespace().collect::<Vec<_>>());
    }
}

#[test]
fn v1_files_hold_the_values_and_remove_leaves_nothing() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "memory", "cpu", "cpuset", "pids", "devices");
    let path = name("values");
    let r = resources(json!({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    }));
    let cg = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let mem = cg.dir_of("memory").unwrap();
    assert_eq!(
        mem,
        hier.holding("memory")
            .unwrap()
            .mountpoint
            .join(path.strip_prefix("/").unwrap())
    );
    assert_eq!(
        read(mem, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(mem, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read(mem, "memory.memsw.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(read(mem, "memory.swappiness"), "10");
    let cpu = cg.dir_of("cpu").unwrap();
    assert_eq!(read(cpu, "cpu.shares"), "512");
    assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(cg.dir_of("cpuset").unwrap(), "cpuset.cpus"), "0");
    assert_eq!(read(cg.dir_of("pids").unwrap(), "pids.max"), "42");
    let devices = read(cg.dir_of("devices").unwrap(), "devices.list");
    assert!(
        !devices.contains("a *:* rwm"),
        "deny-all not applied: {devices}"
    );
    assert!(devices.lines().any(|l| l == "c 10:229 rw"), "{devices}");
    assert!(
        devices.lines().any(|l| l == "c 1:3 rwm"),
        "runc's default /dev/null rule: {devices}"
    );
    cg.remove().unwrap();
    assert_gone(&hier, &path);
    cg.remove().unwrap(); // idempotent
}

#[test]
fn fork_bomb_stops_at_pids_max_and_host_is_unharmed() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "pids", "freezer");
    let path = name("forkbomb");
    let limit = 24;
    let r = resources(json!({"pids": {"limit": limit}}));
    let cg = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let guard = Cleanup(cg.clone());
    let pids_dir = cg.dir_of("pids").unwrap().to_owned();
    assert_eq!(
        read(&pids_dir, "pids.max"),
        limit.to_string(),
        "refusing to start a fork bomb without the limit"
    );
    let f = cgroup_file(&pids_dir, &cg);
    // A real shell fork bomb, bounded by pids.max; it never ends on its
    // own, so the test stops it with Cgroup::remove (freeze, kill, rmdir).
    // --verify: the helper checks /proc/self/cgroup before exec and
    // refuses to start the bomb outside the cgroup.
    let mut bomb = Command::new(HELPER)
        .args([
            "cgroup-enter",
            f.to_str().unwrap(),
            "procs",
            "--verify",
            "--",
            "/bin/sh",
            "-c",
            "b() { b | b & }; b; wait",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut max_seen = 0usize;
    let mut failures = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        max_seen = max_seen.max(read(&pids_dir, "pids.current").parse().unwrap());
        failures = read(&pids_dir, "pids.events")
            .strip_prefix("max ")
            .unwrap()
            .parse()
            .unwrap();
        if failures > 100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        max_seen <= limit as usize,
        "pids.current {max_seen} above pids.max {limit}"
    );
    assert!(
        failures > 0,
        "the bomb never hit pids.max (peak {max_seen})"
    );
    // The host still forks.
    assert!(Command::new("/bin/true").status().unwrap().success());
    cg.remove().unwrap();
    drop(guard);
    let _ = bomb.kill();
    let _ = bomb.wait();
    assert_gone(&hier, &path);
    drop(f);
}

#[test]
fn memory_hog_is_oom_killed_inside_its_limit() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "memory");
    let path = name("oom");
    let limit: u64 = 32 << 20;
    let r = resources(json!({"memory": {"limit": limit, "swap": limit}}));
    let cg = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _guard = Cleanup(cg.clone());
    let mem = cg.dir_of("memory").unwrap().to_owned();
    assert!(
        mem.join("memory.memsw.limit_in_bytes").exists(),
        "swap accounting (memsw) is off"
    );
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), limit.to_string());
    let f = cgroup_file(&mem, &cg);
    let out = Command::new(HELPER)
        .args([
            "cgroup-enter",
            f.to_str().unwrap(),
            "procs",
            "--verify",
            "--",
            HELPER,
            "hog",
            "256",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "hog not killed: {:?}\n{stdout}",
        out.status
    );
    assert!(!stdout.contains("survived"), "{stdout}");
    let oom = read(&mem, "memory.oom_control");
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "{oom}");
    let peak: u64 = read(&mem, "memory.max_usage_in_bytes").parse().unwrap();
    assert!(peak <= limit, "peak {peak} above limit {limit}");
    cg.remove().unwrap();
    assert_gone(&hier, &path);
    drop(f);
}

#[test]
fn unified_hugetlb_limit_and_clone_into_cgroup() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "hugetlb", "memory");
    let Some(u) = hier.unified() else {
        eprintln!("skipped: no cgroup2 hierarchy");
        return;
    };
    let path = name("clone3");
    let r = resources(
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}], "pids": {"limit": 10}}),
    );
    let cg = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _guard = Cleanup(cg.clone());
    let hdir = cg.dir_of("hugetlb").unwrap().to_owned();
    let file = match hier.holding("hugetlb").unwrap().version {
        Version::V2 => "hugetlb.2MB.max",
        Version::V1 => "hugetlb.2MB.limit_in_bytes",
    };
    assert_eq!(read(&hdir, file), (4u64 << 20).to_string());
    let f = cgroup_file(&hdir, &cg);
    for mode in ["clone3", "procs"] {
        let out = Command::new(HELPER)
            .args([
                "cgroup-enter",
                f.to_str().unwrap(),
                mode,
                "--",
                "/bin/cat",
                "/proc/self/cgroup",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if mode == "clone3" {
            assert!(
                stdout.contains("in_cgroup true"),
                "CLONE_INTO_CGROUP not used: {stdout}"
            );
        }
        let p = path.to_str().unwrap();
        assert!(
            stdout.lines().any(|l| l == format!("0::{p}")),
            "{mode}: not in the unified cgroup: {stdout}"
        );
        assert!(
            stdout.lines().any(|l| l.ends_with(&format!(":memory:{p}"))),
            "{mode}: not in the v1 memory cgroup: {stdout}"
        );
        assert!(
            stdout.lines().any(|l| l.ends_with(&format!(":pids:{p}"))),
            "{mode}: not in the v1 pids cgroup: {stdout}"
        );
    }
    // Fallback: without a cgroup2 directory the helper forks and writes
    // the child's pid into cgroup.procs before letting it exec.
    let mut v1_only = cg.clone();
    v1_only.dirs.retain(|d| d.version == Version::V1);
    let f1 = cgroup_file(Path::new("clone3-v1only"), &v1_only);
    let out = Command::new(HELPER)
        .args([
            "cgroup-enter",
            f1.to_str().unwrap(),
            "clone3",
            "--verify",
            "--",
            "/bin/cat",
            "/proc/self/cgroup",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fallback: {stdout}");
    assert!(stdout.contains("in_cgroup false"), "{stdout}");
    let p = path.to_str().unwrap();
    assert!(
        stdout.lines().any(|l| l.ends_with(&format!(":memory:{p}"))),
        "fallback: {stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l == format!("0::{p}")),
        "fallback: {stdout}"
    );
    drop(f1);
    assert!(u.mountpoint.join(path.strip_prefix("/").unwrap()).is_dir());
    cg.remove().unwrap();
    assert_gone(&hier, &path);
    drop(f);
}

#[test]
fn relative_path_lands_under_the_callers_cgroup() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "memory");
    let rel = PathBuf::from(format!("nsboot-i16sec-{}-rel", std::process::id()));
    let cg = CgroupPlan::new(Some(&rel), None, "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_mem = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()))
        .unwrap();
    let expect = hier
        .holding("memory")
        .unwrap()
        .mountpoint
        .join(own_mem.trim_start_matches('/'))
        .join(&rel);
    assert_eq!(cg.dir_of("memory").unwrap(), expect);
    assert!(expect.is_dir());
    cg.remove().unwrap();
    assert!(!expect.exists());
}

#[test]
fn dotdot_in_cgroups_path_is_refused_and_nothing_created() {
    let hier = Hierarchies::detect().unwrap();
    let inner = format!("nsboot-i16sec-{}-dotdot", std::process::id());
    let bad = PathBuf::from(format!("/{inner}/../../escape"));
    let e = CgroupPlan::new(Some(&bad), None, "c").unwrap_err();
    assert!(
        matches!(e, CgroupError::Invalid { ref key, .. } if key == "linux.cgroupsPath"),
        "{e}"
    );
    assert!(e.to_string().contains("`..`"), "{e}");
    for h in &hier.list {
        assert!(!h.mountpoint.join(&inner).exists());
    }
}

#[test]
fn failing_resource_names_its_key_and_leaves_nothing() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "cpu", "memory");
    let path = name("badvalue");
    // Created first (memory), then the cpu write fails in the kernel:
    // everything created must be removed again.
    let r = resources(json!({"memory": {"limit": 64 << 20}, "cpu": {"quota": 500, "period": 100}}));
    let e = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("linux.resources.cpu.period: write \"100\""),
        "{e}"
    );
    assert_gone(&hier, &path);
    let r = resources(json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}));
    if hier.holding("hugetlb").is_some() && nix::unistd::geteuid().is_root() {
        let e = CgroupPlan::new(Some(&path), Some(&r), "c")
            .unwrap()
            .create(&hier)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.hugepageLimits[0].pageSize:"),
            "{e}"
        );
        assert_gone(&hier, &path);
    }
}

#[test]
fn rootless_without_delegation_skips_with_a_warning() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "pids");
    let path = name("rootless");
    // A delegated subtree in the pids hierarchy only: owned by nobody.
    let pids_mp = hier.holding("pids").unwrap().mountpoint.clone();
    let deleg = pids_mp.join(path.strip_prefix("/").unwrap());
    std::fs::create_dir(&deleg).unwrap();
    for f in ["", "cgroup.procs", "pids.max"] {
        nix::unistd::chown(
            &deleg.join(f),
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .unwrap();
    }
    let cfg = std::env::temp_dir().join(format!(
        "nsboot-i16sec-rootless-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &cfg,
        json!({"cgroupsPath": path.join("ctr"), "resources": {"pids": {"limit": 7}}}).to_string(),
    )
    .unwrap();
    let out = Command::new(HELPER)
        .args(["create-as", "65534", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let created: Cgroup = serde_json::from_str(
        stdout
            .trim()
            .strip_prefix("created ")
            .unwrap_or_else(|| panic!("{stdout}{stderr}")),
    )
    .unwrap();
    // Only the delegated pids hierarchy was used; every other hierarchy
    // was skipped with a warning line on stderr.
    assert_eq!(created.dirs.len(), 1, "{created:?}");
    assert_eq!(created.dirs[0].path, deleg.join("ctr"));
    assert_eq!(read(&deleg.join("ctr"), "pids.max"), "7");
    assert_eq!(created.warnings.len(), hier.list.len() - 1);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("nsboot-oci: cgroups: rootless"))
            .count(),
        hier.list.len() - 1,
        "{stderr}"
    );
    created.remove().unwrap();
    std::fs::remove_dir(&deleg).unwrap();
    assert_gone(&hier, &path);
    let _ = std::fs::remove_file(cfg);
}

/// Run `probes` (see the helper's `seccomp -` mode) inside `cg`.
fn probes_in(cg: &Cgroup, tag: &str, probes: &[&str]) -> String {
    let f = cgroup_file(Path::new(tag), cg);
    let out = Command::new(HELPER)
        .args([
            "cgroup-enter",
            f.to_str().unwrap(),
            "procs",
            "--verify",
            "--",
            HELPER,
            "seccomp",
            "-",
        ])
        .args(probes)
        .output()
        .unwrap();
    drop(f);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The v2 device filter, for real: cgroup-bpf programs run on the unified
/// hierarchy even on this hybrid host, so a process in the cgroup gets
/// EPERM for a denied device.
#[test]
fn ebpf_device_filter_denies_on_the_unified_hierarchy() {
    use nsboot_oci::cgroups::ebpf::attach_device_filter;
    use std::os::fd::AsFd;

    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "memory");
    if hier.unified().is_none() || !Path::new("/dev/kmsg").exists() {
        eprintln!("skipped: needs a cgroup2 hierarchy and /dev/kmsg");
        return;
    }
    let probes = ["open-r:/dev/kmsg", "open-w:/dev/kmsg", "open-r:/dev/null"];
    // Control: same cgroup setup, no program.
    let path = name("ebpf-control");
    let cg = CgroupPlan::new(Some(&path), None, "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _g = Cleanup(cg.clone());
    let out = probes_in(&cg, "ebpf-control", &probes);
    assert!(
        out.contains("probe open-r:/dev/kmsg ok") && out.contains("probe open-w:/dev/kmsg ok"),
        "{out}"
    );

    // Deny everything; the default list allows /dev/null (1:3), not
    // /dev/kmsg (1:11).
    let path = name("ebpf-deny");
    let cg = CgroupPlan::new(Some(&path), None, "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _g2 = Cleanup(cg.clone());
    let rules: Vec<_> = serde_json::from_value(json!([{"allow": false, "access": "rwm"}])).unwrap();
    attach_device_filter(cg.unified_fd().unwrap().unwrap().as_fd(), &rules).unwrap();
    let out = probes_in(&cg, "ebpf-deny", &probes);
    assert!(out.contains("probe open-r:/dev/kmsg errno 1"), "{out}");
    assert!(out.contains("probe open-w:/dev/kmsg errno 1"), "{out}");
    assert!(out.contains("probe open-r:/dev/null ok"), "{out}");

    // Allow /dev/kmsg read only: the last matching rule wins, and an allow
    // rule covers only the access it lists.
    let path = name("ebpf-readonly");
    let cg = CgroupPlan::new(Some(&path), None, "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _g3 = Cleanup(cg.clone());
    let rules: Vec<_> = serde_json::from_value(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
    ]))
    .unwrap();
    attach_device_filter(cg.unified_fd().unwrap().unwrap().as_fd(), &rules).unwrap();
    let out = probes_in(&cg, "ebpf-readonly", &probes);
    assert!(out.contains("probe open-r:/dev/kmsg ok"), "{out}");
    assert!(out.contains("probe open-w:/dev/kmsg errno 1"), "{out}");
    drop((_g, _g2, _g3));
    for t in ["ebpf-control", "ebpf-deny", "ebpf-readonly"] {
        assert_gone(&hier, &name(t));
    }
}

/// `linux.resources.unified` on the real cgroup2 hierarchy: cgroup.* core
/// files and the controllers it has (hugetlb here) are written; a key of a
/// controller the unified hierarchy lacks is refused, naming the key, and
/// nothing is left.
#[test]
fn unified_keys_are_written_or_refused_by_name() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "hugetlb");
    let Some(u) = hier.unified() else {
        eprintln!("skipped: no cgroup2 hierarchy");
        return;
    };
    let path = name("unified-keys");
    let r = resources(
        json!({"unified": {"cgroup.max.descendants": "3", "hugetlb.2MB.max": "2097152"}}),
    );
    let cg = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap();
    let _g = Cleanup(cg.clone());
    let dir = cg.unified_dir().unwrap();
    assert_eq!(dir, u.mountpoint.join(path.strip_prefix("/").unwrap()));
    assert_eq!(read(dir, "cgroup.max.descendants"), "3");
    assert_eq!(read(dir, "hugetlb.2MB.max"), "2097152");
    cg.remove().unwrap();
    assert_gone(&hier, &path);

    let missing = ["memory", "cpu", "io", "pids"]
        .into_iter()
        .find(|c| !u.controllers.iter().any(|x| x == c));
    if let Some(c) = missing {
        let key = format!("{c}.max");
        let r = resources(json!({"unified": {key.clone(): "1"}}));
        let e = CgroupPlan::new(Some(&path), Some(&r), "c")
            .unwrap()
            .create(&hier)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("linux.resources.unified[{key:?}]: no cgroup hierarchy on this host has the `{c}` controller")
        );
        assert_gone(&hier, &path);
    }
}

/// A cgroup that already exists is joined; a failing write then leaves it
/// (and what runs in it) alone, removing only what the call created.
#[test]
fn failed_create_leaves_a_preexisting_cgroup_alone() {
    let hier = Hierarchies::detect().unwrap();
    require_root_and!(hier, "cpu", "memory");
    let path = name("preexisting");
    let existing = hier
        .holding("memory")
        .unwrap()
        .mountpoint
        .join(path.strip_prefix("/").unwrap());
    std::fs::create_dir(&existing).unwrap();
    let r = resources(json!({"memory": {"limit": 64 << 20}, "cpu": {"quota": 500, "period": 100}}));
    let e = CgroupPlan::new(Some(&path), Some(&r), "c")
        .unwrap()
        .create(&hier)
        .unwrap_err();
    assert!(
        e.to_string().starts_with("linux.resources.cpu.period:"),
        "{e}"
    );
    assert!(
        existing.is_dir(),
        "pre-existing cgroup removed by the rollback"
    );
    std::fs::remove_dir(&existing).unwrap();
    assert_gone(&hier, &path);
}
