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
