//! Shared helpers of the integration tests: the C programs (built once per
//! test binary against the freshly built libnsboot), privilege checks that
//! print why a test is skipped, and process/leak checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Remove `dir` (recursively) when this test binary exits: the compiled
/// helpers live under /tmp (so that `nobody` can run them) and would
/// otherwise pile up, a few MB per run. The harness ends with `exit`, which
/// runs atexit handlers once every test has finished.
pub fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static HOOKED: std::sync::Once = std::sync::Once::new();
    extern "C" fn cleanup() {
        let dirs = DIRS.lock().map(|d| d.clone()).unwrap_or_default();
        for d in dirs {
            detach_mounts_under(&d);
            let _ = std::fs::remove_dir_all(d);
        }
    }
    HOOKED.call_once(|| {
        // SAFETY: `cleanup` is an extern "C" fn with no arguments that does
        // not unwind (it ignores every error).
        unsafe { libc::atexit(cleanup) };
    });
    if let Ok(mut d) = DIRS.lock() {
        d.push(dir.to_path_buf());
    }
}

/// `target/<profile>` (where libnsboot.so and .a are).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).expect("profile dir").to_path_buf()
}

pub fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where skips are logged: `$NSBOOT_TEST_SKIP_DIR`, by default `target/skips`.
pub fn skip_dir() -> PathBuf {
    match std::env::var_os("NSBOOT_TEST_SKIP_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => profile_dir().parent().map(|t| t.join("skips")).unwrap_or_else(|| PathBuf::from("target/skips")),
    }
}

/// Say that the running test (or a part of it, as `reason` says) is
/// skipped, and why. cargo test captures a passing test's stderr, so the
/// line `<suite>::<test>: <reason>` is also appended to
/// `skip_dir()/<suite>.txt`; `make test` clears that directory first and
/// prints the lines and their count at its end (scripts/report-skips.sh).
pub fn skip(reason: &str) {
    let exe = std::env::current_exe().ok();
    let suite = exe
        .as_ref()
        .and_then(|e| e.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .map(|n| n.rsplit_once('-').map(|(a, _)| a.to_owned()).unwrap_or(n))
        .unwrap_or_else(|| "tests".into());
    // libtest runs each test on a thread named after it.
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let line = format!("{suite}::{test}: {reason}");
    eprintln!("SKIP {line}");
    let dir = skip_dir();
    let _ = std::fs::create_dir_all(&dir);
    // One write(2) per line with O_APPEND: concurrent tests do not interleave.
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{suite}.txt"))) {
        let _ = std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes());
    }
}

/// Skip (return from) the test with a visible reason.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            $crate::common::skip("requires root");
            return;
        }
    };
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `target/<profile>`, holding libnsboot.so, libnsboot.a and the rootfs
/// plugin, built (or confirmed up to date) once per test binary: they come
/// from the crates/nsboot-capi and crates/nsboot-oci-plugin packages, which `cargo test` of this
/// package does not build (cargo has released the build lock while tests
/// run).
pub fn lib_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = profile_dir();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "nsboot-capi", "-p", "nsboot-oci-plugin"]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().expect("cargo").success(), "building libnsboot and the rootfs plugin failed");
            for f in ["libnsboot.so", "libnsboot.a", "libnsboot_rootfs.so"] {
                assert!(dir.join(f).exists(), "{f} missing after the build");
            }
            dir
        })
        .clone()
}

/// The rootfs plugin, `target/<profile>/libnsboot_rootfs.so` (built by
/// [`lib_dir`]).
pub fn plugin_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| lib_dir().join("libnsboot_rootfs.so"))
}

/// The C test programs, compiled once: (spawn, probe).
pub fn c_programs() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        // Under /tmp, not under the checkout: the rootless tests run these
        // programs as `nobody`, who may not traverse the checkout's path
        // (a clone inside a 0700 `mktemp -d` directory, say).
        let out = PathBuf::from(format!("/tmp/nsboot-cbin-{}-{}", std::process::id(), rand_u32()));
        std::fs::create_dir_all(&out).expect("mkdir cbin");
        remove_at_exit(&out);
        let _ = Command::new("chmod").args(["0755", out.to_str().unwrap()]).status();
        let lib = lib_dir();
        // The library's soname is libnsboot.so.0: a copy under that name
        // next to the programs (cargo only writes libnsboot.so), readable by
        // `nobody` wherever the checkout is.
        std::fs::copy(lib.join("libnsboot.so"), out.join("libnsboot.so.0")).expect("copy libnsboot.so");
        // And the rootfs plugin, which libnsboot looks for next to itself.
        std::fs::copy(plugin_lib(), out.join("libnsboot_rootfs.so.0")).expect("copy libnsboot_rootfs.so");
        let inc = root_dir().join("include");
        let build = |name: &str| {
            let src = root_dir().join(format!("tests/c/{name}.c"));
            let bin = out.join(name);
            let st = Command::new("cc")
                .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
                .arg("-I")
                .arg(&inc)
                .arg(&src)
                .arg("-o")
                .arg(&bin)
                .arg(format!("-L{}", lib.display()))
                .arg("-lnsboot")
                .arg(format!("-Wl,-rpath,{}", out.display()))
                .status()
                .expect("run cc");
            assert!(st.success(), "compiling {name}.c failed");
            bin
        };
        (build("spawn"), build("probe"))
    })
}

/// A stand-alone C helper from `tests/c/NAME.c` (not linked with nsboot),
/// compiled once per test binary, world-executable.
pub fn c_helper(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    // Same directory as the nsboot programs (0755, usable by `nobody`).
    let dir = c_programs().0.parent().expect("cbin dir").to_path_buf();
    let bin = dir.join(name);
    let st = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(root_dir().join(format!("tests/c/{name}.c")))
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run cc");
    assert!(st.success(), "compiling {name}.c failed");
    built.push((name.to_owned(), bin.clone()));
    bin
}

/// One more C program of tests/c, built like [`c_programs`] into the same
/// directory (same rpath and soname link), with `extra` compiler flags.
pub fn c_program(name: &str, extra: &[&str]) -> PathBuf {
    let (spawn, _) = c_programs();
    let out = spawn.parent().expect("cbin dir").to_path_buf();
    let bin = out.join(name);
    if bin.exists() {
        return bin;
    }
    let tmp = out.join(format!("{name}.tmp-{}", rand_u32()));
    let st = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .args(extra)
        .arg("-I")
        .arg(root_dir().join("include"))
        .arg(root_dir().join(format!("tests/c/{name}.c")))
        .arg("-o")
        .arg(&tmp)
        .arg(format!("-L{}", lib_dir().display()))
        .arg("-lnsboot")
        .arg(format!("-Wl,-rpath,{}", out.display()))
        .status()
        .expect("run cc");
    assert!(st.success(), "compiling {name}.c failed");
    std::fs::rename(&tmp, &bin).expect("rename");
    bin
}

/// Run `cmd` with a deadline; panics (test failure, "hang") past it.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            panic!("command hung for more than {limit:?}: {cmd:?}");
        }
    }
}

/// Start `spawn ARGS -- probe PROBE_ARGS` and return its output.
pub fn spawn_probe(args: &[&str], probe_args: &[&str]) -> Output {
    let (spawn, probe) = c_programs();
    let mut cmd = Command::new(spawn);
    cmd.args(args).arg("--").arg(probe).args(probe_args);
    run_with_timeout(cmd, Duration::from_secs(30))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `readlink /proc/self/ns/<kind>` of this process.
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("readlink").to_string_lossy().into_owned()
}

/// Pids whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                out.push(pid);
            }
        }
    }
    out
}

/// Wait up to `limit` for no process to carry `marker`; the survivors.
pub fn wait_gone(marker: &str, limit: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A marker unique to one test run, to find its processes.
pub fn marker(name: &str) -> String {
    format!("nsboot-mark-{name}-{}-{}", std::process::id(), rand_u32())
}

pub fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    t.subsec_nanos() ^ (std::process::id() << 8)
}

/// Process state letter from /proc/PID/stat.
pub fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// Whether `pid` sits at an `NSBOOT_TEST_STOP_AT` point.
pub fn at_stop_point(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim() == "nsboot-stopped").unwrap_or(false)
}

/// fds of this process that a child inherits (not close-on-exec).
pub fn inheritable_fds() -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fdinfo").into_iter().flatten().flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(info) = std::fs::read_to_string(e.path()) else { continue };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(0);
        if flags & 0o2000000 == 0 {
            out.push(fd);
        }
    }
    out
}

/// A busybox-static rootfs with `runc spec` (or `--rootless`) as
/// config.json, `root.path` = "rootfs", in a fresh 0755 directory under
/// /tmp (readable by `nobody`). `None` (with a printed reason) when
/// busybox or runc is missing.
pub fn busybox_bundle(tag: &str, rootless: bool) -> Option<TestDir> {
    if !Path::new("/bin/busybox").exists() || !have("runc") {
        skip("busybox-static or runc not installed");
        return None;
    }
    let dir = TestDir::adopt(PathBuf::from(format!("/tmp/nsboot-bundle-{tag}-{}-{}", std::process::id(), rand_u32())));
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
    for a in ["sh", "cat", "ls", "ps", "stat", "readlink", "echo", "touch", "hostname", "id", "mount", "grep", "wc", "head"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("applet");
    }
    let mut spec = Command::new("runc");
    spec.arg("spec").current_dir(dir.path());
    if rootless {
        spec.arg("--rootless");
    }
    assert!(spec.status().expect("runc spec").success());
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()).status();
    Some(dir)
}

/// Edit `dir/config.json` with `f`.
pub fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A mountinfo field as written by the kernel (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u16::from(b[i + 1] - b'0') * 64 + u16::from(b[i + 2] - b'0') * 8 + u16::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points of this process's mount table (unescaped), in table order.
pub fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(unescape_mountinfo))
        .collect()
}

/// Whether `text` names `dir` or something under it: `dir` followed by
/// the end, `/`, or a separator of mountinfo's option lists.
fn names_dir(text: &str, dir: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find(dir) {
        let end = from + i + dir.len();
        match text[end..].chars().next() {
            None | Some('/' | ',' | ':' | ' ') => return true,
            _ => from = end,
        }
    }
    false
}

/// The host mounts that belong to one test: every line of the mount table
/// whose mount point, source or options name one of the test's own
/// directories (or that carries its marker), and the host's root mount,
/// whose propagation a setup escaping its mount namespace would change.
/// Other jobs on the machine mount and unmount as they please: only these
/// lines are compared, so a test fails for its own leaks and nobody else's.
pub struct OwnMounts {
    keys: Vec<String>,
    before: Vec<String>,
}

impl OwnMounts {
    /// Record the mounts of `dirs` (directories or marker strings) now.
    pub fn new<P: AsRef<Path>>(dirs: &[P]) -> OwnMounts {
        let keys: Vec<String> = dirs
            .iter()
            .map(|d| d.as_ref().to_string_lossy().trim_end_matches('/').to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        let mut m = OwnMounts { keys, before: Vec::new() };
        m.before = m.current();
        m
    }

    /// The lines that belong to the test, ids dropped (the kernel reuses
    /// them: compare what is mounted where), sorted.
    pub fn current(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .expect("read /proc/self/mountinfo")
            .lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                let point = unescape_mountinfo(fields.get(4)?);
                let text = unescape_mountinfo(&fields[3..].join(" "));
                let own = point == "/" || self.keys.iter().any(|k| names_dir(&text, k));
                own.then(|| fields[3..].join(" "))
            })
            .collect();
        v.sort();
        v
    }

    /// Panic (naming `what`) if the test's mounts differ from when
    /// [`OwnMounts::new`] ran.
    #[track_caller]
    pub fn assert_unchanged(&self, what: &str) {
        let now = self.current();
        assert_eq!(self.before, now, "{what}: the test's own host mounts changed (under {:?})", self.keys);
    }
}

/// Detach every mount of this mount namespace at or under `dir`, deepest
/// first, so that removing `dir` cannot reach into a mounted tree (a bind
/// mount of a host directory left by a failed test, say).
pub fn detach_mounts_under(dir: &Path) {
    let key = dir.to_string_lossy().trim_end_matches('/').to_owned();
    if key.is_empty() {
        return;
    }
    for _ in 0..16 {
        let mut under: Vec<String> = mount_points()
            .into_iter()
            .filter(|p| p == &key || p.starts_with(&format!("{key}/")))
            .collect();
        if under.is_empty() {
            return;
        }
        under.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in under {
            if let Ok(c) = std::ffi::CString::new(p) {
                // SAFETY: a valid NUL-terminated path; umount2 has no other
                // memory effects.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// A directory a test made, removed when dropped — when the test passes
/// and when it panics — after [`detach_mounts_under`] (and registered with
/// [`remove_at_exit`] as well, for a test binary that is killed midway
/// through its own test but still exits).
pub struct TestDir(PathBuf);

impl TestDir {
    /// Take charge of `path` (which the caller creates).
    pub fn adopt(path: PathBuf) -> TestDir {
        remove_at_exit(&path);
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TestDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// [`detach_mounts_under`], make writable (a rootless container's files
/// may be read-only), remove.
pub fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    detach_mounts_under(dir);
    let _ = Command::new("chmod").args(["-R", "u+rwx"]).arg(dir).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all(dir);
}

/// The `nsrun` example, built (or confirmed up to date) once per test
/// binary and copied to a 0755 directory under /tmp so that `nobody` can
/// run it whatever the permissions of the checkout.
pub fn nsrun_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = profile_dir();
        // `cargo test --test nsrun` does not build examples; cargo has
        // released the build lock while tests run.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", "nsrun"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("cargo").success(), "building the nsrun example failed");
        let out = PathBuf::from(format!("/tmp/nsrun-bin-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("mkdir");
        remove_at_exit(&out);
        let _ = Command::new("chmod").args(["0755", out.to_str().unwrap()]).status();
        let bin = out.join("nsrun");
        std::fs::copy(dir.join("examples/nsrun"), &bin).expect("copy nsrun");
        bin
    })
}

/// A busybox-static rootfs (no config.json) with the given applets, in a
/// fresh 0755 directory under /tmp, removed when dropped; `None` (with a
/// reason) without busybox.
pub fn busybox_rootfs(tag: &str, applets: &[&str]) -> Option<TestDir> {
    if !Path::new("/bin/busybox").exists() {
        skip("busybox-static not installed");
        return None;
    }
    let dir = TestDir::adopt(PathBuf::from(format!("/tmp/nsrun-img-{tag}-{}-{}", std::process::id(), rand_u32())));
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("copy busybox");
    for a in applets {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).expect("applet");
    }
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()).status();
    Some(dir)
}

/// A long-running container to join: `spawn SPAWN_ARGS -- probe sh -c
/// 'exec sleep 30' MARK`. Returns the caller process and the container's
/// PID 1 as seen from here (from spawn's `stage2_pid=N` line). Kill the pid
/// and wait for the child when done.
pub fn start_holder(spawn_args: &[&str], mark: &str) -> (std::process::Child, i32) {
    let (spawn, probe) = c_programs();
    let mut holder = Command::new(spawn)
        .args(spawn_args)
        .arg("--")
        .arg(probe)
        .args(["sh", "-c", "exec sleep 30", mark])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the holder container");
    let mut err = holder.stderr.take().expect("holder stderr");
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut err, &mut buf).expect("read spawn's pid line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid = line
        .split("stage2_pid=")
        .nth(1)
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stage2_pid in {line:?}"));
    (holder, pid)
}
