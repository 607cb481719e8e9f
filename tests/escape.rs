//! Escapes (issue #6, item 4): a hostile image racing the rootfs
//! preparation, a container attacking the binary of a process that joins
//! it (CVE-2019-5736 class), and the host's /proc and /sys as seen from a
//! default container.

mod common;

use common::*;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn canary() -> TestDir {
    let d = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-canary-{}-{}", std::process::id(), rand_u32())));
    std::fs::create_dir_all(d.path()).unwrap();
    d
}

fn assert_canary_untouched(c: &Path, what: &str) {
    let entries: Vec<_> = std::fs::read_dir(c).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(entries.is_empty(), "{what}: something was written into the host canary {c:?}: {entries:?}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(c.to_str().unwrap()), "{what}: a mount landed on the host canary {c:?}");
}

fn renameat2_exchange(a: &Path, b: &Path) -> bool {
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: two valid NUL-terminated paths; AT_FDCWD.
    unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) == 0 }
}

/// Number of preparations of the race test: `NSBOOT_RACE_RUNS`, default
/// the 1,000 (about 25 s here).
fn race_runs() -> usize {
    std::env::var("NSBOOT_RACE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

#[test]
fn symlink_swapped_in_a_loop_during_rootfs_preparation_never_escapes() {
    require_root!();
    let Some(dir) = busybox_bundle("race", false) else { return };
    let c = canary();
    let rootfs = dir.join("rootfs");
    // Two destinations under a directory the racer swaps with a symlink to
    // the host canary: a tmpfs (a mount that must not land on the host)
    // and a bind of a file (mkdir/creat of the destination: a write that
    // must not land on the host).
    std::fs::create_dir_all(rootfs.join("race/sub")).unwrap();
    std::os::unix::fs::symlink(&c, rootfs.join("race-link")).unwrap();
    // The in-root twin of the canary path, so an in-root resolution of the
    // absolute symlink succeeds (and stays inside).
    std::fs::create_dir_all(rootfs.join(c.strip_prefix("/").unwrap())).unwrap();
    std::fs::write(dir.join("volume-file"), b"v").unwrap();
    edit_config(&dir, |v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(serde_json::json!({"destination": "/race/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}));
        m.push(serde_json::json!({"destination": "/race/file", "type": "bind", "source": dir.join("volume-file"), "options": ["bind"]}));
        m.push(serde_json::json!({"destination": "/race-link/deep/dir", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}));
    });
    let mounts = OwnMounts::new(&[dir.path(), c.path()]);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let racer = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (a, b) = (rootfs.join("race"), rootfs.join("race-link"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if renameat2_exchange(&a, &b) {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let (spawn, probe) = c_programs();
    let runs = race_runs();
    let (mut ok, mut refused) = (0, 0);
    let mut first_refusal = None;
    let t = Instant::now();
    for i in 0..runs {
        let mut cmd = Command::new(spawn);
        cmd.args(["--ns", "mnt,pid,uts,ipc,net", "--rootfs"])
            .arg(dir.join("config.json"))
            .arg("--bundle")
            .arg(&dir)
            .arg("--")
            .arg(probe)
            .args(["/bin/sh", "-c", "true"]);
        let o = run_with_timeout(cmd, Duration::from_secs(30));
        match o.status.code() {
            Some(0) => ok += 1,
            Some(125) => {
                refused += 1;
                let e = stderr(&o);
                assert!(e.contains("rootfs"), "run {i}: failure not from the rootfs stage: {e}");
                first_refusal.get_or_insert(e);
            }
            other => panic!("run {i}: spawn exited {other:?}: {}", stderr(&o)),
        }
        if i % 25 == 0 {
            assert_canary_untouched(&c, &format!("run {i}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let elapsed = t.elapsed();
    eprintln!(
        "{runs} preparations in {elapsed:?} against {} swaps: {ok} completed, {refused} refused (in-root resolution failed)",
        swaps.load(Ordering::Relaxed)
    );
    if let Some(e) = first_refusal {
        eprintln!("first refusal: {e}");
    }
    assert!(swaps.load(Ordering::Relaxed) > runs as u64, "the racer did not run");
    assert_canary_untouched(&c, "after the race");
    mounts.assert_unchanged("symlink race");
}

/// Start a long-running busybox container (rootfs preparation through
/// spawn); its stage-2 pid on the host and the child to reap.
fn holder(dir: &Path, script: &str, mark: &str) -> (i32, std::process::Child) {
    let (spawn, probe) = c_programs();
    let mut h = Command::new(spawn)
        .args(["--ns", "mnt,pid,uts,ipc,net", "--rootfs"])
        .arg(dir.join("config.json"))
        .arg("--bundle")
        .arg(dir)
        .arg("--")
        .arg(probe)
        .args(["/bin/sh", "-c", script, mark])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = h.stderr.take().unwrap();
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut err, &mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid: i32 = line.split("stage2_pid=").nth(1).unwrap_or_else(|| panic!("holder: {line}")).trim().parse().unwrap();
    (pid, h)
}

#[test]
fn container_cannot_write_the_binary_of_a_process_that_joins_it() {
    require_root!();
    let Some(dir) = busybox_bundle("exe", false) else { return };
    std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin/sleep")).unwrap();
    let mark = marker("exe-holder");
    let (pid, mut h) = holder(&dir, "sleep 60", &mark);
    let join: Vec<String> =
        ["pid", "mnt", "uts", "ipc", "net"].iter().flat_map(|k| ["--join".to_owned(), format!("{k}:/proc/{pid}/ns/{k}")]).collect();
    let (spawn, probe) = c_programs();
    // The attacker must not run the victim's file itself (that alone would
    // make writes fail with ETXTBSY): a copy, next to it for the rpath.
    let attacker = probe.with_file_name(format!("probe-attacker-{}", rand_u32()));
    std::fs::copy(probe, &attacker).unwrap();
    for (how, extra) in [("read-only bind re-exec", vec![]), ("caller-sealed memfd", vec!["--sealed"])] {
        // The victim: a host binary that joins the container and stays a
        // moment; the attacker: a process of the container.
        let mut victim = Command::new(spawn)
            .env("NSBOOT_PROBE_SLEEP", "1")
            .args(&join)
            .args(&extra)
            .arg("--")
            .arg(probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut cmd = Command::new(spawn);
        cmd.env("NSBOOT_PROBE_ATTACK", "1").args(&join).arg("--").arg(&attacker);
        let o = run_with_timeout(cmd, Duration::from_secs(30));
        let _ = victim.wait();
        let out = stdout(&o);
        assert!(o.status.success(), "{how}: attacker failed: {}\n{out}", stderr(&o));
        assert!(out.contains("attack: running-write E"), "{how}: the running binary was written:\n{out}");
        assert!(!out.contains("reopen-write ok"), "{how}: the binary was reopened and written once the victim exited:\n{out}");
        if out.contains("open-path ok") {
            assert!(out.contains("victim-gone yes") && out.contains("attack: reopen-write E"), "{how}:\n{out}");
        }
        eprintln!("{how}: {}", out.replace('\n', "; "));
    }
    let _ = std::fs::remove_file(&attacker);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = h.wait();
    assert!(wait_gone(&mark, Duration::from_secs(2)).is_empty());
}

#[test]
fn host_proc_and_sys_are_not_writable_from_a_default_container() {
    require_root!();
    let Some(dir) = busybox_bundle("procsys", false) else { return };
    let writes = [
        "/proc/sysrq-trigger",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
        "/proc/sys/vm/drop_caches",
        "/proc/sys/kernel/modprobe",
        "/proc/irq/default_smp_affinity",
        "/proc/bus/pci/devices",
        "/sys/kernel/uevent_helper",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/power/state",
        "/sys/fs/cgroup/cgroup.procs",
        "/sys/fs/cgroup/cgroup.subtree_control",
        "/sys/firmware/x",
    ];
    let reads = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/scsi/scsi", "/sys/firmware"];
    let mut script = String::new();
    for w in writes {
        script.push_str(&format!("(echo 1 > {w}) 2>/dev/null && echo 'WRITE-OK {w}' || echo 'write-refused {w}'; "));
    }
    for r in reads {
        script.push_str(&format!("echo \"read {r} $(cat {r} 2>/dev/null | head -c 64 | wc -c) $(ls {r} 2>/dev/null | wc -l)\"; "));
    }
    let (spawn, probe) = c_programs();
    let mut cmd = Command::new(spawn);
    cmd.args(["--ns", "mnt,pid,uts,ipc,net", "--rootfs"])
        .arg(dir.join("config.json"))
        .arg("--bundle")
        .arg(&dir)
        .arg("--")
        .arg(probe)
        .args(["/bin/sh", "-c", &script]);
    let host_core = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    let out = stdout(&o);
    assert!(o.status.success(), "container failed: {}\n{out}", stderr(&o));
    assert!(!out.contains("WRITE-OK"), "a host kernel file was writable from the container:\n{out}");
    assert_eq!(out.matches("write-refused").count(), writes.len(), "{out}");
    for r in reads {
        let line = out.lines().find(|l| l.starts_with(&format!("read {r} "))).unwrap();
        // Masked: /dev/null (0 bytes) or an empty read-only tmpfs (0 entries).
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[2], "0", "{r} readable inside: {line}");
        if r == "/sys/firmware" {
            assert_eq!(f[3], "0", "{r} lists entries: {line}");
        }
    }
    assert_eq!(host_core, std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap());
}
