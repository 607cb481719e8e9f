//! Helpers of the integration tests: the probe (built once, copied where
//! `nobody` can run it), busybox bundles, process and skip checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (return from) the test with a visible reason.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("SKIP {}: requires root", module_path!());
            return;
        }
    };
}

/// Skip unless root can run programs as `nobody` with `runuser`, and
/// `nobody` can create a user namespace.
#[macro_export]
macro_rules! require_rootless {
    () => {
        if !$crate::common::rootless_ok() {
            eprintln!("SKIP {}: needs root, runuser and unprivileged user namespaces", module_path!());
            return;
        }
    };
}

pub fn rootless_ok() -> bool {
    is_root()
        && Path::new("/usr/sbin/runuser").exists()
        && Command::new("runuser")
            .args(["-u", "nobody", "--", "unshare", "-r", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// A directory under /tmp every user can read, removed by `Drop`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("nsboot-oci-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir tempdir");
        chmod(&p, 0o755);
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Remove `dir` when this test binary exits (the harness ends with
/// `exit`, which runs atexit handlers).
pub fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static HOOKED: std::sync::Once = std::sync::Once::new();
    extern "C" fn cleanup() {
        let dirs = DIRS.lock().map(|d| d.clone()).unwrap_or_default();
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    HOOKED.call_once(|| {
        // SAFETY: `cleanup` is an extern "C" fn without arguments that does
        // not unwind (it ignores every error).
        unsafe { libc::atexit(cleanup) };
    });
    if let Ok(mut d) = DIRS.lock() {
        d.push(dir.to_path_buf());
    }
}

/// The probe, built once and copied to a world-readable directory.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--offline", "-p", "nsboot-oci", "--example", "oci_process_probe"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(st.success(), "building oci_process_probe failed");
        let exe = std::env::current_exe().expect("current_exe");
        let built = exe.parent().and_then(Path::parent).expect("profile dir").join("examples/oci_process_probe");
        let dir = std::env::temp_dir().join(format!("nsboot-oci-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        remove_at_exit(&dir);
        chmod(&dir, 0o755);
        let copy = dir.join("oci_process_probe");
        std::fs::copy(&built, &copy).expect("copy probe");
        chmod(&copy, 0o755);
        copy
    })
}

/// A bundle: `dir/rootfs` with busybox and its applets, `dir/config.json`.
pub struct Bundle {
    pub dir: TempDir,
}

pub const APPLETS: [&str; 16] = [
    "sh", "cat", "id", "pwd", "hostname", "tty", "ls", "echo", "sleep", "grep", "stty", "env", "touch", "true",
    "ionice", "uname",
];

impl Bundle {
    pub fn new(tag: &str, config: &Value) -> Self {
        let dir = TempDir::new(tag);
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "tmp", "etc", "hooklog"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir rootfs");
        }
        chmod(&root.join("tmp"), 0o1777);
        chmod(&root.join("hooklog"), 0o777);
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox (apt-get install busybox-static)");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("symlink applet");
        }
        std::fs::write(root.join("etc/plain"), "not a program\n").expect("write");
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec_pretty(config).expect("json"))
            .expect("write config");
        Bundle { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Run the probe on this bundle (as `nobody` when `rootless`).
    pub fn run(&self, rootless: bool, extra: &[&str]) -> Output {
        let mut cmd = if rootless {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(probe());
            c
        } else {
            Command::new(probe())
        };
        cmd.args(extra).arg(self.path());
        cmd.output().expect("run probe")
    }
}

/// A config with busybox `sh -c script`, the usual mounts and the given
/// namespaces.
pub fn config(script: &str, namespaces: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin", "TERM=xterm"],
        },
        "linux": {
            "namespaces": namespaces.iter().map(|t| json!({"type": t})).collect::<Vec<_>>(),
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        ],
    })
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Processes whose command line mentions `needle` (leftover check).
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = text(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", name.to_string_lossy()));
            }
        }
    }
    out
}

/// The value of a `/proc/self/status` line (`CapEff:` → its hex).
pub fn status_line<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
}

// ---- Docker defaults (copied from tests/seccomp.rs for the end-to-end container tests) ----

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn kernel_at_least(min: &str) -> bool {
    let rel = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    let num = |s: &str| -> Vec<u32> {
        s.split(|c: char| !c.is_ascii_digit())
            .take(2)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    num(&rel) >= num(min)
}

/// Docker's conversion of its profile for x86_64 and `caps`: keep a rule
/// when all `includes.caps` are held, the arch is in `includes.arches`, the
/// kernel is at least `includes.minKernel`; drop it when any
/// `excludes.caps` is held or the arch is in `excludes.arches`.
pub fn docker_profile_to_oci(caps: &[&str]) -> Value {
    let raw: Value =
        serde_json::from_slice(&std::fs::read(fixture("docker-default-seccomp.json")).unwrap())
            .unwrap();
    let arch = "amd64";
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut out = Vec::new();
    for call in raw["syscalls"].as_array().unwrap() {
        let inc = &call["includes"];
        let exc = &call["excludes"];
        if !strs(inc.get("caps"))
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let arches = strs(inc.get("arches"));
        if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
            continue;
        }
        if let Some(k) = inc.get("minKernel").and_then(Value::as_str) {
            if !kernel_at_least(k) {
                continue;
            }
        }
        if strs(exc.get("caps"))
            .iter()
            .any(|c| caps.contains(&c.as_str()))
            || strs(exc.get("arches")).iter().any(|a| a == arch)
        {
            continue;
        }
        let mut c = json!({"names": call["names"], "action": call["action"]});
        for k in ["args", "errnoRet"] {
            if let Some(v) = call.get(k) {
                c[k] = v.clone();
            }
        }
        out.push(c);
    }
    let archmap = raw["archMap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .unwrap();
    let mut architectures = vec![archmap["architecture"].clone()];
    architectures.extend(
        archmap["subArchitectures"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    json!({
        "defaultAction": raw["defaultAction"],
        "defaultErrnoRet": raw["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": out,
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
