//! OCI create/start: the container does everything up to the execve of
//! its program, says "created" and waits at the start gate; "start"
//! releases it, closing the gate instead ("delete") ends it without the
//! program ever running.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{config, probe, text, Bundle};

/// Spawn the probe with --wait-start; return it and the container's pid
/// once it printed "created <pid>".
fn create(b: &Bundle) -> (Child, i32, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(probe())
        .arg("--wait-start")
        .arg(b.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let pid: i32 =
        line.trim().strip_prefix("created ").unwrap_or_else(|| panic!("not created: {line:?}")).parse().unwrap();
    (child, pid, err)
}

fn exe_name(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn created_container_waits_for_start_then_runs() {
    require_root!();
    let c = config("echo started > /hooklog/started; grep NoNewPrivs /proc/self/status", &["mount", "pid", "uts"]);
    let b = Bundle::new("gate", &c);
    let (mut child, pid, mut err) = create(&b);
    // Created: everything applied, the program not executed yet.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(exe_name(pid), "oci_process_probe", "the container process has not exec'd");
    assert!(!b.rootfs().join("hooklog/started").exists(), "the program ran before start");
    // Its root is already the container's rootfs (/etc/plain exists only
    // there), and its ids and mounts are set up.
    assert!(std::path::Path::new(&format!("/proc/{pid}/root/etc/plain")).exists(), "not in the container's root");
    assert!(!std::path::Path::new("/etc/plain").exists());

    child.stdin.take().unwrap().write_all(b"start\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert_eq!(std::fs::read_to_string(b.rootfs().join("hooklog/started")).unwrap(), "started\n");
    assert_eq!(text(&out.stdout).trim(), "NoNewPrivs:\t0");
}

#[test]
fn delete_instead_of_start_never_runs_the_program() {
    require_root!();
    let mut c = config("echo started > /hooklog/started", &["mount", "pid"]);
    let logdir = common::TempDir::new("gatelog");
    let log = logdir.path().join("poststop");
    c["hooks"] = serde_json::json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", log.display())]}]});
    let b = Bundle::new("gatedel", &c);
    let (mut child, pid, mut err) = create(&b);
    assert_eq!(exe_name(pid), "oci_process_probe");
    drop(child.stdin.take()); // end of stdin: delete
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("start gate: closed without start (container deleted)"), "{rest}");
    assert!(!b.rootfs().join("hooklog/started").exists(), "the program ran");
    assert!(log.exists(), "poststop did not run");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container process is left");
}
