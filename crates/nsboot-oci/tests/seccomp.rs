//! Seccomp, for real: each test spawns `nsboot-oci-helper`, which sets
//! no_new_privs, loads the compiled filter and runs syscall probes; the
//! test reads the errno each probe got. A control run without a filter
//! shows each probe succeeds (or fails differently) without it.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use nsboot_oci::seccomp::notify;

mod common;
use common::{docker_profile_to_oci, DOCKER_CAPS};
use serde_json::{json, Value};

const HELPER: &str = env!("CARGO_BIN_EXE_nsboot-oci-helper");
const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ENOSYS: i32 = 38;

/// A scratch directory, removed on drop (also when an assertion fails).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("nsboot-oci-seccomp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn write_profile(dir: &Path, v: &Value) -> PathBuf {
    let p = dir.join("seccomp.json");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(v.to_string().as_bytes())
        .unwrap();
    p
}

/// Run the helper; return probe name -> None (ok) / Some(errno).
fn run(profile: &str, probes: &[&str]) -> Vec<(String, Option<i32>)> {
    run_as(None, profile, probes)
}

fn run_as(uid: Option<u32>, profile: &str, probes: &[&str]) -> Vec<(String, Option<i32>)> {
    let mut cmd = Command::new(HELPER);
    if let Some(u) = uid {
        cmd.env("NSBOOT_OCI_HELPER_UID", u.to_string());
    }
    let out = cmd
        .arg("seccomp")
        .arg(profile)
        .args(probes)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("probe "))
        .map(|l| {
            let mut w = l.split(' ');
            let name = w.next().unwrap().to_owned();
            let res = match w.next() {
                Some("ok") => None,
                Some("errno") => Some(w.next().unwrap().parse().unwrap()),
                other => panic!("bad probe line {l:?} {other:?}"),
            };
            (name, res)
        })
        .collect()
}

fn result_of(results: &[(String, Option<i32>)], name: &str) -> Option<i32> {
    results
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no probe {name} in {results:?}"))
        .1
}

#[test]
fn docker_default_profile_blocks_unshare_with_eperm() {
    let dir = scratch("docker-unshare");
    let profile = write_profile(&dir, &docker_profile_to_oci(DOCKER_CAPS));
    // Control: the helper runs as root, so without a filter unshare works.
    let control = run("-", &["unshare-uts", "getppid"]);
    assert_eq!(result_of(&control, "unshare-uts"), None);
    let filtered = run(
        profile.to_str().unwrap(),
        &["unshare-uts", "getppid", "chroot"],
    );
    assert_eq!(
        result_of(&filtered, "unshare-uts"),
        Some(EPERM),
        "unshare is not in Docker's allow list without CAP_SYS_ADMIN"
    );
    assert_eq!(result_of(&filtered, "getppid"), None);
    // chroot is allowed by the profile only with CAP_SYS_CHROOT (held):
    // the filter lets it through and it succeeds as root.
    assert_eq!(result_of(&filtered, "chroot"), None);
    drop(dir);
}

#[test]
fn docker_profile_without_sys_chroot_blocks_chroot() {
    let dir = scratch("docker-chroot");
    let caps: Vec<&str> = DOCKER_CAPS
        .iter()
        .copied()
        .filter(|c| *c != "CAP_SYS_CHROOT")
        .collect();
    let profile = write_profile(&dir, &docker_profile_to_oci(&caps));
    let filtered = run(profile.to_str().unwrap(), &["chroot"]);
    assert_eq!(result_of(&filtered, "chroot"), Some(EPERM));
    drop(dir);
}

#[test]
fn docker_profile_arg_filter_blocks_only_the_matching_personality() {
    let dir = scratch("docker-personality");
    let profile = write_profile(&dir, &docker_profile_to_oci(DOCKER_CAPS));
    let control = run("-", &["personality-query", "personality-addr-no-randomize"]);
    assert_eq!(result_of(&control, "personality-addr-no-randomize"), None);
    let filtered = run(
        profile.to_str().unwrap(),
        &["personality-query", "personality-addr-no-randomize"],
    );
    // personality(0xffffffff) matches an allow rule with an EQ arg; the
    // same syscall with ADDR_NO_RANDOMIZE matches none and gets EPERM.
    assert_eq!(result_of(&filtered, "personality-query"), None);
    assert_eq!(
        result_of(&filtered, "personality-addr-no-randomize"),
        Some(EPERM)
    );
    drop(dir);
}

#[test]
fn errno_ret_and_masked_eq_are_honoured() {
    let dir = scratch("errnoret");
    // MASKED_EQ: (flags & CLONE_NEWUTS) == CLONE_NEWUTS -> ENOSYS-like 95
    // (EOPNOTSUPP); other unshare flags pass.
    let profile = write_profile(
        &dir,
        &json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
                "args": [{"index": 0, "value": libc::CLONE_NEWUTS, "valueTwo": libc::CLONE_NEWUTS, "op": "SCMP_CMP_MASKED_EQ"}]
            }]
        }),
    );
    let filtered = run(
        profile.to_str().unwrap(),
        &["unshare-uts", "personality-query"],
    );
    assert_eq!(result_of(&filtered, "unshare-uts"), Some(95));
    assert_eq!(result_of(&filtered, "personality-query"), None);
    drop(dir);
}

#[test]
fn notify_delivers_the_listener_fd_and_state_to_the_agent() {
    let dir = scratch("notify");
    let sock = dir.join("agent.sock");
    let agent = UnixListener::bind(&sock).unwrap();
    let profile = write_profile(
        &dir,
        &json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "nsboot-test-metadata",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    let control = run("-", &["mkdir-missing"]);
    assert_eq!(result_of(&control, "mkdir-missing"), Some(ENOENT));

    let child = Command::new(HELPER)
        .args(["seccomp", profile.to_str().unwrap(), "mkdir-missing"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = agent.accept().unwrap();
    let (state, listener) = notify::recv_listener(conn.as_fd(), &sock).unwrap();
    assert_eq!(state.fds(), &["seccompFd".to_owned()]);
    assert_eq!(state.pid(), &(child.id() as i32));
    assert_eq!(state.metadata().as_deref(), Some("nsboot-test-metadata"));
    assert_eq!(state.state().id(), "nsboot-oci-helper");
    let target = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&listener)
    ))
    .unwrap();
    assert_eq!(target.to_string_lossy(), "anon_inode:seccomp notify");
    // The agent goes away without answering: the notified mkdir fails with
    // ENOSYS (kernel behaviour for a listener that is closed), not ENOENT.
    drop(listener);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listener sent"), "{stdout}");
    assert!(
        stdout.contains(&format!("probe mkdir-missing errno {ENOSYS}")),
        "{stdout}"
    );
    drop(dir);
}

/// Cost of Docker's default profile: libseccomp compile + export in the
/// parent, and the seccomp(2) load after fork. Printed for BENCHMARKS.md;
/// asserts the load happened and the program is non-trivial.
#[test]
fn docker_profile_build_and_load_time() {
    let dir = scratch("timing");
    let profile = write_profile(&dir, &docker_profile_to_oci(DOCKER_CAPS));
    let out = Command::new(HELPER)
        .args(["time-seccomp", profile.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("BENCH docker default seccomp profile: {stdout}");
    let n: usize = stdout
        .split_whitespace()
        .skip_while(|w| *w != "instructions")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 100, "{stdout}");
    drop(dir);
}

/// Two conditions on the same argument index are OR'ed (separate rules),
/// as runc does; conditions on different indexes are AND'ed.
#[test]
fn args_on_one_index_are_ored() {
    let dir = scratch("or");
    let profile = write_profile(
        &dir,
        &json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                "args": [
                    {"index": 0, "value": 0xffffffffu64, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": libc::ADDR_NO_RANDOMIZE, "op": "SCMP_CMP_EQ"}
                ]
            }]
        }),
    );
    let filtered = run(
        profile.to_str().unwrap(),
        &[
            "personality-query",
            "personality-addr-no-randomize",
            "getppid",
        ],
    );
    assert_eq!(result_of(&filtered, "personality-query"), Some(13));
    assert_eq!(
        result_of(&filtered, "personality-addr-no-randomize"),
        Some(13)
    );
    assert_eq!(result_of(&filtered, "getppid"), None);
    drop(dir);
}

/// Rootless: without CAP_SYS_ADMIN the filter loads because no_new_privs
/// is set first, and it behaves the same.
#[test]
fn docker_profile_loads_and_filters_as_an_unprivileged_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to drop to uid 65534");
        return;
    }
    let dir = scratch("rootless");
    let profile = write_profile(&dir, &docker_profile_to_oci(DOCKER_CAPS));
    let probes = ["personality-addr-no-randomize", "getppid"];
    let control = run_as(Some(65534), "-", &probes);
    assert_eq!(result_of(&control, "personality-addr-no-randomize"), None);
    let filtered = run_as(Some(65534), profile.to_str().unwrap(), &probes);
    assert_eq!(
        result_of(&filtered, "personality-addr-no-randomize"),
        Some(EPERM)
    );
    assert_eq!(result_of(&filtered, "getppid"), None);
    drop(dir);
}
