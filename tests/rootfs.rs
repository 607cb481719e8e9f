//! End-to-end tests of the rootfs stage: real mounts in real namespaces.
//!
//! The namespace work happens in `examples/rootfs_probe` (single-threaded;
//! libtest is not), driven here as a subprocess. Every run checks that the
//! host has no mount of the test left afterwards. Rootful tests need root and
//! skip otherwise (`common::skip`: a SKIP line `make test` prints); rootless ones run the probe as `nobody`.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use nsboot_oci::rootfs::{RootfsOptions, RootfsPlan};
use serde_json::{json, Value};

const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "ps", "stat", "readlink", "echo", "touch", "hostname", "wc", "id", "test", "mkdir", "grep",
    "head", "domainname",
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            common::skip("needs root (real mounts, mknod, pivot_root)");
            return;
        }
    };
}

fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe.parent().and_then(Path::parent).expect("target dir");
        // `cargo test` builds examples, `cargo test --test rootfs` does
        // not: build (or confirm up to date) the probe so that it is never
        // stale. Cargo has released the build lock while tests run.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", "rootfs_probe"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo");
        assert!(st.success(), "building rootfs_probe failed");
        // A copy under /tmp: the rootless tests run it as `nobody`, who may
        // not traverse the checkout's path.
        let copy_dir = PathBuf::from(format!("/tmp/nsboot-rootfs-probe-{}", std::process::id()));
        std::fs::create_dir_all(&copy_dir).expect("mkdir probe dir");
        common::remove_at_exit(&copy_dir);
        std::fs::set_permissions(&copy_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = copy_dir.join("rootfs_probe");
        std::fs::copy(dir.join("examples/rootfs_probe"), &copy).expect("copy rootfs_probe");
        copy
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = PathBuf::from(format!("/tmp/nsboot-rootfs-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir scratch");
    // Removed at exit if the test fails before removing it.
    common::remove_at_exit(&d);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

struct Bundle {
    dir: PathBuf,
    config: Value,
    rootless: bool,
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Bundle {
    fn new(tag: &str, rootless: bool) -> Self {
        let dir = scratch(tag);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a)).expect("applet symlink");
        }
        let mut cmd = Command::new("runc");
        cmd.arg("spec").current_dir(&dir);
        if rootless {
            cmd.arg("--rootless");
        }
        assert!(cmd.status().expect("runc spec").success());
        let text = std::fs::read_to_string(dir.join("config.json")).expect("config");
        let mut config: Value = serde_json::from_str(&text).expect("json");
        config["process"]["terminal"] = json!(false);
        config["root"]["path"] = json!("rootfs");
        Self { dir, config, rootless }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn add_mount(&mut self, m: Value) {
        self.config["mounts"].as_array_mut().expect("mounts").push(m);
    }

    fn write_config(&self) {
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(&self.config).expect("ser"))
            .expect("write config");
    }

    /// Run `script` with busybox sh inside; asserts it left no host
    /// mount under the bundle.
    fn run_with(&self, script: &str, no_pivot: bool) -> Run {
        self.run_wrapped(script, no_pivot, &[])
    }

    /// [`run_with`](Self::run_with), the probe started through `wrap`
    /// (a command that ends by exec-ing its arguments).
    fn run_wrapped(&self, script: &str, no_pivot: bool, wrap: &[&str]) -> Run {
        self.write_config();
        if self.rootless {
            chmod_readable(&self.dir);
        }
        let mut cmd = if self.rootless {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).args(wrap).arg(probe());
            c
        } else if let Some((first, rest)) = wrap.split_first() {
            let mut c = Command::new(first);
            c.args(rest).arg(probe());
            c
        } else {
            Command::new(probe())
        };
        if no_pivot {
            cmd.arg("--no-pivot");
        }
        cmd.arg(&self.dir).args(["--", "/bin/sh", "-c", script]);
        run_on_host(cmd, &[&self.dir])
    }

    fn run(&self, script: &str) -> Run {
        self.run_with(script, false)
    }
}

/// Run `cmd` to completion, print its output, and assert that it left no
/// host mount under `dirs` (the test's own directories).
fn run_on_host(mut cmd: Command, dirs: &[&Path]) -> Run {
    let mounts = common::OwnMounts::new(dirs);
    let out = cmd.output().expect("run the container program");
    mounts.assert_unchanged("container program");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("--- exit {}\n--- stdout\n{}\n--- stderr\n{}", run.code, run.out, run.err);
    run
}

impl Drop for Bundle {
    fn drop(&mut self) {
        common::remove_tree(&self.dir);
    }
}

fn chmod_readable(dir: &Path) {
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
}

/// A mountinfo line as the container sees it.
#[derive(Debug)]
struct Mnt {
    root: String,
    point: String,
    opts: Vec<String>,
    fstype: String,
    sup: Vec<String>,
}

fn mounts_in(out: &str) -> Vec<Mnt> {
    out.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(Mnt {
                root: pre.get(3)?.to_string(),
                point: pre.get(4)?.to_string(),
                opts: pre.get(5)?.split(',').map(str::to_owned).collect(),
                fstype: post.first()?.to_string(),
                sup: post.get(2)?.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// The last (topmost) mount at `point`.
fn mount_at<'a>(ms: &'a [Mnt], point: &str) -> &'a Mnt {
    ms.iter().rev().find(|m| m.point == point).unwrap_or_else(|| panic!("no mount at {point}"))
}

fn has(m: &Mnt, opts: &[&str]) {
    for o in opts {
        assert!(m.opts.iter().any(|x| x == o) || m.sup.iter().any(|x| x == o), "{} lacks {o}: {m:?}", m.point);
    }
}

/// A host directory that must not change: a file and a listing.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new() -> Self {
        let dir = scratch("canary");
        std::fs::write(dir.join("file"), b"canary").expect("canary");
        Self { dir }
    }
    fn file(&self) -> PathBuf {
        self.dir.join("file")
    }
    fn assert_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir).expect("ls").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file")], "canary dir changed");
        assert_eq!(std::fs::read(self.file()).expect("read"), b"canary", "canary file changed");
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        common::remove_tree(&self.dir);
    }
}

const CHECK_DEVICES: &str = "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
    for l in ptmx fd stdin stdout stderr; do echo \"link $l $(readlink /dev/$l)\"; done; \
    echo x > /dev/null && echo devnull-writable";

fn check_devices(out: &str, bind: bool) {
    for (name, maj, min) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
        let line = out.lines().find(|l| l.starts_with(&format!("/dev/{name} "))).expect("stat line");
        assert!(line.contains("character special file"), "{line}");
        assert!(line.contains(&format!(" {maj:x}:{min:x} 666 ")), "{line}");
        if !bind {
            assert!(line.ends_with(" 0:0"), "{line}");
        }
    }
    for (l, t) in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        assert!(out.contains(&format!("link {l} {t}\n")), "link {l}");
    }
    assert!(out.contains("devnull-writable"));
}

fn check_standard_mounts(ms: &[Mnt]) {
    let proc = mount_at(ms, "/proc");
    assert_eq!(proc.fstype, "proc");
    let dev = mount_at(ms, "/dev");
    assert_eq!(dev.fstype, "tmpfs");
    has(dev, &["nosuid", "mode=755"]);
    let pts = mount_at(ms, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    has(pts, &["nosuid", "noexec", "ptmxmode=666", "mode=620"]);
    let shm = mount_at(ms, "/dev/shm");
    assert_eq!(shm.fstype, "tmpfs");
    has(shm, &["nosuid", "nodev", "noexec"]);
    let mq = mount_at(ms, "/dev/mqueue");
    assert_eq!(mq.fstype, "mqueue");
    has(mq, &["nosuid", "nodev", "noexec"]);
    let sys = mount_at(ms, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    has(sys, &["ro", "nosuid", "nodev", "noexec"]);
    has(mount_at(ms, "/proc/sys"), &["ro"]);
    // Masked: a directory covered by a read-only tmpfs, a file by /dev/null.
    let acpi = mount_at(ms, "/proc/acpi");
    assert_eq!(acpi.fstype, "tmpfs");
    has(acpi, &["ro"]);
    assert_eq!(mount_at(ms, "/proc/keys").root, "/null");
    has(mount_at(ms, "/"), &["ro"]);
    // Nothing of the host is left: every mount is at or below the new /.
    assert!(ms.iter().all(|m| m.point.starts_with('/')));
    assert!(!ms.iter().any(|m| m.point.starts_with("/tmp/nsboot-rootfs")), "host path visible");
}

const CHECK_COMMON: &str = "echo pid=$$; ps -o pid,comm | wc -l | sed 's/^/pslines=/' 2>/dev/null; ps; \
    touch /rootfile 2>&1; echo masked=$(cat /proc/timer_list | wc -c); ls /proc/acpi | wc -l | sed 's/^/acpi=/' ; \
    echo hostname=$(hostname); ls /sys/fs/cgroup; cat /proc/self/mountinfo";

#[test]
fn rootful_default_spec() {
    require_root!();
    let mut b = Bundle::new("default", false);
    b.config["hostname"] = json!("nsboot-test");
    let host_path = b.dir.display().to_string();
    let script = format!("{CHECK_COMMON}; {CHECK_DEVICES}; test -e {host_path}; echo hostcheck=$?");
    let r = b.run(&script);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("pid=1\n"));
    // ps shows only the container: sh (PID 1) and ps itself.
    let ps_pids: Vec<&str> = r.out.lines().filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()) && l.contains("/bin/sh")).collect();
    assert!(ps_pids.len() <= 2, "{ps_pids:?}");
    assert!(r.out.contains("Read-only file system"), "root not read-only");
    assert!(r.out.contains("masked=0\n"));
    assert!(r.out.contains("acpi=0\n"));
    assert!(r.out.contains("hostname=nsboot-test\n"));
    assert!(r.out.contains("hostcheck=1\n"), "host path visible inside");
    assert!(r.out.contains("\nmemory\n") || r.out.contains("\ncgroup.procs\n"), "cgroup not mounted");
    check_standard_mounts(&mounts_in(&r.out));
    check_devices(&r.out, false);
}

#[test]
fn rootful_no_pivot() {
    require_root!();
    let b = Bundle::new("nopivot", false);
    let r = b.run_with("echo pid=$$; ls /; cat /proc/self/mountinfo; touch /x 2>&1; true", true);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("pid=1\n"));
    assert!(r.out.contains("Read-only file system"));
    let ms = mounts_in(&r.out);
    assert_eq!(mount_at(&ms, "/proc").fstype, "proc");
}

/// Every `linux.rootfsPropagation`: the container starts, the old root is
/// gone (one mount on "/", no host path), the host's table is unchanged
/// (checked by `run`). rslave/rprivate detach the old root without making
/// it slave first (step 1 already did); the others take runc's sequence.
#[test]
fn rootful_each_rootfs_propagation() {
    require_root!();
    for p in ["rslave", "rprivate", "slave", "private", "rshared", "shared"] {
        let mut b = Bundle::new(&format!("prop-{p}"), false);
        b.config["linux"]["rootfsPropagation"] = json!(p);
        let r = b.run("cat /proc/self/mountinfo");
        assert_eq!(r.code, 0, "{p}: {}", r.err);
        let ms = mounts_in(&r.out);
        assert_eq!(ms.iter().filter(|m| m.point == "/").count(), 1, "{p}: old root still stacked on /");
        assert!(!ms.iter().any(|m| m.point.starts_with("/tmp/nsboot-rootfs")), "{p}: host path visible");
        check_standard_mounts(&ms);
    }
    // runbindable: the rootfs cannot be bound onto itself (runc 1.1.5 fails
    // the same way); a clear error, the host untouched (checked by `run`).
    let mut b = Bundle::new("prop-runbindable", false);
    b.config["linux"]["rootfsPropagation"] = json!("runbindable");
    let r = b.run("true");
    assert_eq!(r.code, 125, "{}", r.err);
    assert!(r.err.contains("prepare root: bind") && r.err.contains("EINVAL"), "{}", r.err);
}

#[test]
fn rootful_volumes_copyup_devices() {
    require_root!();
    let mut b = Bundle::new("volumes", false);
    let rootfs = b.rootfs();
    // Image content under /etc for tmpcopyup: owners, modes, a symlink, a
    // device node, a FIFO, an xattr, a nested dir.
    let etc = rootfs.join("etc");
    std::fs::write(etc.join("hosts"), b"127.0.0.1 localhost\n").expect("hosts");
    std::fs::set_permissions(etc.join("hosts"), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::chown(etc.join("hosts"), Some(1234), Some(4321)).expect("chown");
    std::fs::create_dir_all(etc.join("sub/deeper")).expect("mkdir");
    std::fs::write(etc.join("sub/deeper/f"), vec![7u8; 200_000]).expect("write");
    symlink("../hosts", etc.join("sub/link")).expect("symlink");
    nix::sys::stat::mknod(
        &etc.join("node"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 5),
    )
    .expect("mknod");
    nix::unistd::mkfifo(&etc.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o620)).expect("mkfifo");
    std::fs::set_permissions(etc.join("fifo"), std::fs::Permissions::from_mode(0o620)).expect("chmod");

    let rw = scratch("vol-rw");
    let ro = scratch("vol-ro");
    std::fs::write(ro.join("data"), b"ro-data").expect("ro data");
    b.add_mount(json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid", "nodev"]}));
    b.add_mount(json!({"destination": "/data/rw", "type": "bind", "source": rw, "options": ["rbind", "rw"]}));
    b.add_mount(json!({"destination": "/data/ro", "type": "none", "source": ro, "options": ["bind", "ro", "nosuid", "noexec"]}));
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/custom0", "type": "c", "major": 1, "minor": 7, "fileMode": 0o600, "uid": 1000, "gid": 1001},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666},
        {"path": "/dev/loopx", "type": "b", "major": 7, "minor": 0, "fileMode": 0o660, "gid": 6},
        {"path": "/dev/pipe0", "type": "p", "major": 0, "minor": 0, "fileMode": 0o644},
    ]);
    let script = "cd /etc && stat -c '%n %F %a %u:%g %s %t:%T' hosts sub sub/deeper sub/deeper/f sub/link node fifo; \
        echo link=$(readlink /etc/sub/link); \
        for d in custom0 net/tun loopx pipe0; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
        echo hello > /data/rw/out && echo rw-ok; (echo bad > /data/ro/x) 2>&1; cat /data/ro/data; echo; \
        cat /proc/self/mountinfo";
    let r = b.run(script);
    assert_eq!(r.code, 0, "{}", r.err);
    let o = &r.out;
    assert!(o.contains("hosts regular file 640 1234:4321 20 "), "hosts");
    assert!(o.contains("sub/deeper/f regular file 644 0:0 200000 "), "nested file");
    assert!(o.contains("sub/link symbolic link 777 0:0"), "symlink");
    assert!(o.contains("link=../hosts\n"));
    assert!(o.contains("node character special file 600 0:0 0 1:5"), "node");
    assert!(o.contains("fifo fifo 620 0:0"), "fifo");
    assert!(o.contains("/dev/custom0 character special file 1:7 600 1000:1001"));
    assert!(o.contains("/dev/net/tun character special file a:c8 666 0:0"));
    assert!(o.contains("/dev/loopx block special file 7:0 660 0:6"));
    assert!(o.contains("/dev/pipe0 fifo 0:0 644 0:0"));
    assert!(o.contains("rw-ok"));
    assert!(o.contains("Read-only file system"), "ro volume writable");
    assert!(o.contains("ro-data"));
    assert_eq!(std::fs::read(rw.join("out")).expect("rw out"), b"hello\n");
    let ms = mounts_in(o);
    assert_eq!(mount_at(&ms, "/etc").fstype, "tmpfs");
    has(mount_at(&ms, "/data/ro"), &["ro", "nosuid", "noexec"]);
    assert!(mount_at(&ms, "/data/rw").opts.iter().any(|x| x == "rw"));
    // The image's /etc itself is untouched by the copy.
    assert_eq!(std::fs::read(etc.join("hosts")).expect("hosts"), b"127.0.0.1 localhost\n");
    let _ = std::fs::remove_dir_all(rw);
    let _ = std::fs::remove_dir_all(ro);
}

/// An `overlay` entry of `mounts` (what a runtime uses for a volume with a
/// writable layer): lowerdir/upperdir/workdir are host paths, as in runc's
/// config; the container sees the merged tree and its writes land in the
/// upper directory on the host.
#[test]
fn rootful_overlay_mount_in_spec() {
    require_root!();
    let mut b = Bundle::new("overlay", false);
    let layers = scratch("ovl-layers");
    let (lower, upper, work) = (layers.join("lower"), layers.join("upper"), layers.join("work"));
    for d in [&lower, &upper, &work] {
        std::fs::create_dir_all(d).expect("mkdir layer");
    }
    std::fs::write(lower.join("from-lower"), b"lower\n").expect("lower file");
    b.add_mount(json!({
        "destination": "/merged", "type": "overlay", "source": "overlay",
        "options": [format!("lowerdir={}", lower.display()), format!("upperdir={}", upper.display()),
                    format!("workdir={}", work.display()), "nodev"]
    }));
    let r = b.run("cat /merged/from-lower && echo upper > /merged/new && echo wrote; cat /proc/self/mountinfo");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("lower\nwrote\n"), "{}", r.out);
    let ms = mounts_in(&r.out);
    let m = mount_at(&ms, "/merged");
    assert_eq!(m.fstype, "overlay");
    has(m, &["nodev"]);
    assert_eq!(std::fs::read(upper.join("new")).expect("upper/new on the host"), b"upper\n");
    assert!(!lower.join("new").exists(), "the write reached the lower layer");
    let _ = std::fs::remove_dir_all(&layers);
}

/// The `cgroup` mount on a cgroup v2 host. This machine is v1/hybrid, so
/// the probe runs in a private mount namespace whose /sys/fs/cgroup is a
/// fresh cgroup2 mount: what the rootfs code inspects to choose v2.
#[test]
fn rootful_cgroup_mount_on_a_unified_host() {
    require_root!();
    let b = Bundle::new("cgroup2", false);
    let wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"", "sh"];
    let r = b.run_wrapped("cat /proc/self/mountinfo; ls /sys/fs/cgroup", false, &wrap);
    assert_eq!(r.code, 0, "{}", r.err);
    let ms = mounts_in(&r.out);
    let m = mount_at(&ms, "/sys/fs/cgroup");
    assert_eq!(m.fstype, "cgroup2", "{}", r.out);
    has(m, &["ro", "nosuid", "nodev", "noexec"]);
    assert!(r.out.contains("cgroup.procs"), "no cgroup2 files: {}", r.out);
}

/// Skip (saying why) unless this host is cgroup v1 with a pids hierarchy
/// at /sys/fs/cgroup/pids.
macro_rules! require_v1_pids {
    () => {
        let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
        if unified || !std::path::Path::new("/sys/fs/cgroup/pids/release_agent").exists() {
            common::skip("needs a cgroup v1 host with a pids hierarchy at /sys/fs/cgroup/pids");
            return;
        }
    };
}

/// A v1 host whose hierarchies are not at /sys/fs/cgroup/<controllers>
/// (here, in a private view: pids mounted as "p", cpu as "cpu", the rest
/// unmounted): the conventional layout is refused and the hierarchies come
/// from mountinfo, as runc takes them — "p" and "cpu", nothing else.
#[test]
fn rootful_cgroup_mount_unconventional_v1_layout() {
    require_root!();
    require_v1_pids!();
    let b = Bundle::new("cgroup-v1-odd", false);
    let setup = "umount -l /sys/fs/cgroup && mount -t tmpfs tmpfs /sys/fs/cgroup && mkdir /sys/fs/cgroup/p /sys/fs/cgroup/cpu \
        && mount -t cgroup -o pids cgroup /sys/fs/cgroup/p && mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu \
        && exec \"$@\"";
    let wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", setup, "sh"];
    let r = b.run_wrapped("cat /proc/self/mountinfo; echo ls: $(ls /sys/fs/cgroup)", false, &wrap);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("ls: cpu p\n"), "hierarchies not taken from mountinfo: {}", r.out);
    let ms = mounts_in(&r.out);
    let p = mount_at(&ms, "/sys/fs/cgroup/p");
    assert_eq!(p.fstype, "cgroup", "{}", r.out);
    has(p, &["ro", "nosuid", "nodev", "noexec", "pids"]);
    assert_eq!(mount_at(&ms, "/sys/fs/cgroup/cpu").fstype, "cgroup");
}

/// The process's own v1 cgroup is deep (a path longer than the room the
/// usual layout's bind sources get on the stack): the bind source is the
/// whole path all the same, so the container's /sys/fs/cgroup/pids is
/// that cgroup (it shows the marker child made there).
#[test]
fn rootful_cgroup_v1_bind_of_a_deep_own_cgroup() {
    require_root!();
    require_v1_pids!();
    let top = PathBuf::from(format!("/sys/fs/cgroup/pids/nsboot-deep-{}", std::process::id()));
    let mut deep = top.clone();
    for i in 0..6 {
        deep.push(format!("level-{i}-{}", "x".repeat(40)));
    }
    std::fs::create_dir_all(deep.join("marker-child")).expect("mkdir deep cgroup");
    assert!(deep.as_os_str().len() > 300);
    let b = Bundle::new("cgroup-deep", false);
    let setup = format!("echo $$ > {}/cgroup.procs && exec \"$@\"", deep.display());
    let wrap = ["sh", "-c", setup.as_str(), "sh"];
    let r = b.run_wrapped("echo ls: $(ls -d /sys/fs/cgroup/pids/marker-*); cat /proc/self/mountinfo", false, &wrap);
    // Leaf first: every directory of the deep cgroup is empty again.
    let mut dirs: Vec<PathBuf> = deep.join("marker-child").ancestors().take_while(|p| p.starts_with(&top)).map(Path::to_path_buf).collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
    for d in dirs {
        let _ = std::fs::remove_dir(&d);
    }
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("ls: /sys/fs/cgroup/pids/marker-child\n"), "not the deep cgroup: {}", r.out);
    let ms = mounts_in(&r.out);
    let pids = mount_at(&ms, "/sys/fs/cgroup/pids");
    assert_eq!(pids.root, deep.strip_prefix("/sys/fs/cgroup/pids").map(|p| Path::new("/").join(p)).expect("below").display().to_string());
}

/// Rootless tests run the container as `nobody` through runuser, which
/// needs root here; they skip (saying why) otherwise.
macro_rules! require_rootless {
    () => {
        if !rootless_available() {
            common::skip("needs root to switch to nobody with runuser");
            return;
        }
    };
}

fn rootless_available() -> bool {
    is_root() && Command::new("runuser").arg("--help").output().is_ok()
}

#[test]
fn rootless_default_spec() {
    require_rootless!();
    let mut b = Bundle::new("rootless", true);
    b.config["hostname"] = json!("rootless-test");
    let script = format!("{CHECK_COMMON}; {CHECK_DEVICES}");
    let r = b.run(&script);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("pid=1\n"));
    assert!(r.out.contains("hostname=rootless-test\n"));
    assert!(r.out.contains("Read-only file system"));
    assert!(r.out.contains("masked=0\n"));
    let ms = mounts_in(&r.out);
    // runc spec --rootless: /sys is an rbind of the host's, read-only.
    has(mount_at(&ms, "/sys"), &["ro", "nosuid", "nodev", "noexec"]);
    // Devices are bind mounts of the host's nodes.
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        let m = mount_at(&ms, &format!("/dev/{d}"));
        assert_eq!(m.root, format!("/{d}"));
    }
    check_devices(&r.out, true);
}

/// runc's default cgroup mount on this host: on a v1/hybrid host a tmpfs
/// with each hierarchy bound read-only at the process's own cgroup (in a
/// user namespace the flags the host's mounts lock are kept); cgroup2 on
/// a unified host. Read-only either way.
fn check_cgroup_mount(rootless: bool) {
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    let b = Bundle::new(if rootless { "rootless-cg" } else { "rootful-cg" }, rootless);
    let has_cgroup = b.config["mounts"].as_array().expect("mounts").iter().any(|m| m["type"] == "cgroup");
    assert!(has_cgroup, "runc spec no longer has a cgroup mount");
    let r = b.run("touch /sys/fs/cgroup/x 2>&1; cat /proc/self/cgroup /proc/self/mountinfo");
    assert_eq!(r.code, 0, "{}", r.err);
    let ms = mounts_in(&r.out);
    // A rootless spec's rbind of /sys copied the host's hierarchies
    // first; ours are the mounts after the last one on /sys/fs/cgroup.
    let at = ms.iter().rposition(|m| m.point == "/sys/fs/cgroup").expect("cgroup mount");
    has(&ms[at], &["ro", "nosuid", "nodev", "noexec"]);
    assert!(r.out.contains("Read-only file system"), "cgroup mount writable");
    if unified {
        assert_eq!(ms[at].fstype, "cgroup2");
        return;
    }
    assert_eq!(ms[at].fstype, "tmpfs");
    let hier: Vec<&Mnt> = ms[at..].iter().filter(|m| m.point.starts_with("/sys/fs/cgroup/")).collect();
    assert!(hier.iter().any(|h| h.fstype == "cgroup"), "no v1 hierarchy bound");
    // "id:controllers:path" lines of /proc/self/cgroup.
    let own: Vec<(Vec<&str>, &str)> = r
        .out
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            id.parse::<u32>().ok().map(|_| (ctrls.split(',').collect(), path))
        })
        .collect();
    for h in hier {
        has(h, &["ro", "nosuid", "nodev", "noexec"]);
        let base = h.point.trim_start_matches("/sys/fs/cgroup/");
        let named = format!("name={base}");
        if let Some((_, path)) = own.iter().find(|(c, _)| c.contains(&base) || c.contains(&named.as_str())) {
            assert_eq!(&h.root, path, "{base}: not the process's own cgroup");
        }
    }
}

#[test]
fn rootful_cgroup_mount() {
    require_root!();
    check_cgroup_mount(false);
}

#[test]
fn rootless_cgroup_mount() {
    require_rootless!();
    check_cgroup_mount(true);
}

#[test]
fn rootless_sysfs_falls_back_to_rbind() {
    require_rootless!();
    let mut b = Bundle::new("rl-sysfs", true);
    // A real sysfs mount in a user namespace without a network namespace:
    // the kernel says EPERM and runc binds the host's /sys instead.
    for m in b.config["mounts"].as_array_mut().expect("mounts") {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
        }
    }
    let r = b.run("cat /proc/self/mountinfo; ls /sys/kernel >/dev/null && echo sys-ok");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("sys-ok"));
    let ms = mounts_in(&r.out);
    let sys = mount_at(&ms, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    has(sys, &["ro", "nosuid", "nodev", "noexec"]);
}

/// xattrs through python3's os.setxattr/getxattr (no attr tools here).
fn xattr(op: &str, path: &Path) -> Option<String> {
    let script = match op {
        "set" => "import os,sys; os.setxattr(sys.argv[1], 'user.nsboot', b'yes')",
        _ => "import os,sys; print(os.getxattr(sys.argv[1], 'user.nsboot').decode())",
    };
    let out = Command::new("python3").args(["-c", script]).arg(path).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn copy_tree_keeps_metadata_and_xattrs() {
    // In-process: copy_tree needs no namespace, only two directories.
    let src = scratch("copy-src");
    let dst = scratch("copy-dst");
    std::fs::create_dir_all(src.join("a/b")).expect("mkdir");
    std::fs::write(src.join("a/b/file"), vec![1u8; 3 << 20]).expect("write");
    std::fs::set_permissions(src.join("a/b/file"), std::fs::Permissions::from_mode(0o4750)).expect("chmod");
    symlink("/nonexistent/target", src.join("a/dangling")).expect("symlink");
    std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let have_xattr = xattr("set", &src.join("a/b/file")).is_some();
    if is_root() {
        std::os::unix::fs::chown(src.join("a/b/file"), Some(42), Some(43)).expect("chown");
        std::fs::set_permissions(src.join("a/b/file"), std::fs::Permissions::from_mode(0o4750)).expect("chmod");
    }
    let open = |p: &Path| std::fs::File::open(p).expect("open dir");
    let (s, d) = (open(&src), open(&dst));
    let stats = nsboot_oci::rootfs::copy_tree(
        std::os::fd::AsFd::as_fd(&s),
        std::os::fd::AsFd::as_fd(&d),
        Path::new("/test"),
    )
    .expect("copy_tree");
    assert_eq!((stats.dirs, stats.files, stats.symlinks, stats.bytes), (2, 1, 1, 3 << 20));
    use std::os::unix::fs::MetadataExt;
    let f = std::fs::symlink_metadata(dst.join("a/b/file")).expect("copied file");
    assert_eq!(f.mode() & 0o7777, 0o4750);
    assert_eq!(f.len(), 3 << 20);
    if is_root() {
        assert_eq!((f.uid(), f.gid()), (42, 43));
    }
    assert_eq!(std::fs::symlink_metadata(dst.join("a")).expect("dir").mode() & 0o7777, 0o711);
    assert_eq!(std::fs::read_link(dst.join("a/dangling")).expect("link"), Path::new("/nonexistent/target"));
    let sm = std::fs::metadata(src.join("a/b/file")).expect("src");
    assert_eq!(f.mtime(), sm.mtime());
    if have_xattr {
        assert_eq!(xattr("get", &dst.join("a/b/file")).as_deref(), Some("yes"));
    } else {
        common::skip("xattr part: python3 os.setxattr unavailable");
    }
    let _ = std::fs::remove_dir_all(src);
    let _ = std::fs::remove_dir_all(dst);
}

// ---- the C API -------------------------------------------------------------

/// Run tests/c/rootfs.c; asserts it left no host mount under the
/// directories among its arguments.
fn c_rootfs(args: &[&str]) -> Run {
    let mut cmd = Command::new(common::c_program("rootfs", &[]));
    cmd.args(args);
    let dirs: Vec<&Path> = args.iter().filter(|a| a.starts_with('/')).map(Path::new).collect();
    run_on_host(cmd, &dirs)
}

const C_SCRIPT: &str = "echo pid=$$; touch /rootfile 2>&1; echo hostname=$(hostname); cat /proc/self/mountinfo";

/// `nsboot_rootfs_prepare` from a C program: one call, a whole container.
#[test]
fn c_api_rootfs_prepare() {
    require_root!();
    let mut b = Bundle::new("capi-one", false);
    b.config["hostname"] = json!("c-api");
    b.write_config();
    let r = c_rootfs(&["oneshot", b.dir.to_str().expect("utf8"), C_SCRIPT]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("pid=1\n") && r.out.contains("hostname=c-api\n"), "{}", r.out);
    assert!(r.out.contains("Read-only file system"));
    check_standard_mounts(&mounts_in(&r.out));
}

/// A plan built once in the parent (`nsboot_rootfs_plan_new`, before any
/// fork) and executed by two forked children (`nsboot_rootfs_plan_prepare`):
/// each gets the whole container.
#[test]
fn c_api_rootfs_plan_in_forked_children() {
    require_root!();
    let mut b = Bundle::new("capi-plan", false);
    b.config["hostname"] = json!("c-plan");
    b.write_config();
    let r = c_rootfs(&["split", "2", b.dir.to_str().expect("utf8"), C_SCRIPT]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("child 0 exit 0\n") && r.out.contains("child 1 exit 0\n"), "{}", r.out);
    assert_eq!(r.out.matches("pid=1\n").count(), 2, "{}", r.out);
    assert_eq!(r.out.matches("hostname=c-plan\n").count(), 2, "{}", r.out);
    for one in r.out.split("child 0 exit").take(1) {
        check_standard_mounts(&mounts_in(one));
    }
}

/// Refusals and NULL arguments through the C API: the status, and a message
/// naming the field.
#[test]
fn c_api_rootfs_errors() {
    require_root!();
    let mut b = Bundle::new("capi-bad", false);
    b.add_mount(json!({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"}));
    b.write_config();
    let r = c_rootfs(&["refused", b.dir.to_str().expect("utf8")]);
    assert_eq!(r.code, 125, "{}", r.out);
    assert!(r.out.contains("status=2 "), "INVALID_ARGUMENT expected: {}", r.out);
    assert!(r.out.contains("mounts[7].destination"), "{}", r.out);
    assert!(!r.out.contains("plan set on failure"));
    let r = c_rootfs(&["null"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("plan_new(NULL config) status=1 msg=config_json is NULL"), "{}", r.out);
    assert!(r.out.contains("plan_new(NULL out) status=1 msg=out is NULL"), "{}", r.out);
    assert!(r.out.contains("plan_prepare(NULL) status=1 msg=plan is NULL"), "{}", r.out);
    assert!(r.out.contains("plan_new(bad flags) status=2"), "{}", r.out);
    assert!(r.out.contains("free(NULL) ok"), "{}", r.out);
}

// ---- hostile images -------------------------------------------------------

fn hostile(tag: &str, setup: impl FnOnce(&mut Bundle, &Canary)) -> (Run, Canary) {
    let canary = Canary::new();
    let mut b = Bundle::new(tag, false);
    setup(&mut b, &canary);
    let r = b.run("echo ran; cat /proc/self/mountinfo");
    canary.assert_untouched();
    (r, canary)
}

#[test]
fn hostile_destination_symlink_to_root() {
    require_root!();
    for (i, target) in ["/", "../../..", "/../.."].into_iter().enumerate() {
        let (r, _c) = hostile(&format!("sym-root-{i}"), |b, _| {
            symlink(target, b.rootfs().join("evil")).expect("symlink");
            b.add_mount(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
        });
        assert_eq!(r.code, 125, "target {target}");
        assert!(r.err.contains("/evil: refused: destination resolves to the container's /"), "{}", r.err);
    }
}

#[test]
fn hostile_destination_symlink_to_proc_self_root() {
    require_root!();
    let (r, _c) = hostile("sym-procroot", |b, c| {
        symlink("/proc/self/root", b.rootfs().join("evil")).expect("symlink");
        b.add_mount(json!({"destination": "/evil", "type": "bind", "source": c.dir, "options": ["rbind"]}));
    });
    assert_eq!(r.code, 125);
    assert!(r.err.contains("mounts[7]") && r.err.contains("ELOOP"), "{}", r.err);
}

/// A mount must not cover part of procfs (runc's checkProcMount), however
/// the destination gets there: through an image symlink or below a bind
/// of a procfs (refused when resolved), or lexically below /proc (refused
/// by the plan before anything is mounted, exit 2).
#[test]
fn hostile_destination_inside_proc() {
    require_root!();
    let resolved = "refused: destination resolves inside /proc";
    type Case = (&'static str, fn(&mut Bundle), i32, &'static str);
    let cases: [Case; 3] = [
        ("symlink", |b| {
            symlink("/proc/sys", b.rootfs().join("evil")).expect("symlink");
            b.add_mount(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
        }, 125, resolved),
        ("below-bind", |b| {
            b.add_mount(json!({"destination": "/hostproc", "type": "bind", "source": "/proc", "options": ["rbind"]}));
            b.add_mount(json!({"destination": "/hostproc/sys", "type": "tmpfs", "source": "tmpfs"}));
        }, 125, resolved),
        ("lexical", |b| {
            b.add_mount(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
        }, 2, "\"/proc/sys\" cannot be mounted over or inside /proc"),
    ];
    for (tag, setup, code, msg) in cases {
        let (r, _c) = hostile(&format!("inproc-{tag}"), |b, _| setup(b));
        assert_eq!(r.code, code, "{tag}: {}", r.err);
        assert!(r.err.contains(msg), "{tag}: {}", r.err);
    }
}

#[test]
fn hostile_destination_symlink_to_host_dir_stays_inside() {
    require_root!();
    // An absolute symlink to a host directory is resolved inside the
    // rootfs: the mount lands in rootfs/<that path>, the host is untouched.
    let (r, c) = hostile("sym-host", |b, c| {
        symlink(&c.dir, b.rootfs().join("evil")).expect("symlink");
        std::fs::create_dir_all(b.rootfs().join(c.dir.strip_prefix("/").expect("abs"))).expect("mkdir inside");
        b.add_mount(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    assert_eq!(r.code, 0, "{}", r.err);
    let ms = mounts_in(&r.out);
    let inside = mount_at(&ms, c.dir.to_str().expect("utf8"));
    assert_eq!(inside.fstype, "tmpfs");
}

#[test]
fn hostile_dev_is_symlink_to_host_dir() {
    require_root!();
    let (r, _c) = hostile("dev-sym", |b, c| {
        let dev = b.rootfs().join("dev");
        std::fs::remove_dir(&dev).expect("rmdir dev");
        symlink(&c.dir, &dev).expect("symlink dev");
        // Make the in-root target exist so the /dev tmpfs mount succeeds
        // there; creating nodes must still refuse the symlinked /dev.
        std::fs::create_dir_all(b.rootfs().join(c.dir.strip_prefix("/").expect("abs"))).expect("mkdir inside");
    });
    assert_eq!(r.code, 125);
    assert!(r.err.contains("device /dev: open: ELOOP"), "{}", r.err);
}

#[test]
fn hostile_dev_null_symlink_with_masked_paths() {
    require_root!();
    // No /dev mount: the image's /dev is used as is, and its null is a
    // symlink to a host file. Masking must not bind that file anywhere.
    for (i, regular) in [false, true].into_iter().enumerate() {
        let (r, _c) = hostile(&format!("devnull-{i}"), |b, c| {
            let mounts = b.config["mounts"].as_array_mut().expect("mounts");
            mounts.retain(|m| !m["destination"].as_str().is_some_and(|d| d.starts_with("/dev")));
            let null = b.rootfs().join("dev/null");
            if regular {
                std::fs::write(&null, b"").expect("file");
            } else {
                symlink(c.file(), &null).expect("symlink");
            }
            b.config["linux"]["maskedPaths"] = json!(["/proc/timer_list"]);
        });
        assert_eq!(r.code, 125);
        let expect = if regular { "/dev/null: refused: not the character device 1:3 but a regular file" } else { "maskedPaths: open /dev/null: ELOOP" };
        assert!(r.err.contains(expect), "{}", r.err);
    }
}

/// The /proc names of both lists in one container, of every kind the
/// procfs-root listing sorts: a directory, files, a symlink (`mounts`,
/// followed to the preparing process's own file, PID 1's here, as runc
/// does), names this kernel lacks (skipped), a name given twice. With
/// these eight names the root is listed once; with three, each name is
/// looked up: same result.
#[test]
fn masked_and_readonly_proc_names_of_every_kind() {
    require_root!();
    let listed = (
        json!(["/proc/keys", "/proc/acpi", "/proc/no-such-entry", "/proc/mounts", "/proc/timer_list", "/proc/keys"]),
        json!(["/proc/sys", "/proc/no-such-dir", "/proc/bus"]),
    );
    let looked_up = (json!(["/proc/keys", "/proc/acpi", "/proc/mounts"]), json!([]));
    for (i, (masked, readonly)) in [listed, looked_up].into_iter().enumerate() {
        let mut b = Bundle::new(&format!("procnames-{i}"), false);
        b.config["linux"]["maskedPaths"] = masked;
        b.config["linux"]["readonlyPaths"] = readonly;
        let r = b.run("echo keys=$(cat /proc/keys | wc -c) mounts1=$(cat /proc/1/mounts | wc -c) \
            acpi=$(ls /proc/acpi | wc -l); echo x > /proc/sys/kernel/domainname; cat /proc/self/mountinfo");
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("keys=0 mounts1=0 acpi=0\n"), "{}", r.out);
        let ms = mounts_in(&r.out);
        assert_eq!(mount_at(&ms, "/proc/1/mounts").root, "/null");
        if i == 0 {
            assert!(r.err.contains("Read-only file system"), "{}", r.err);
            has(mount_at(&ms, "/proc/sys"), &["ro"]);
            has(mount_at(&ms, "/proc/bus"), &["ro"]);
            assert_eq!(mount_at(&ms, "/proc/timer_list").root, "/null");
        }
    }
}

/// Paths directly below /proc are masked and made read-only by name from
/// the procfs root only when /proc is one; here it is the image's own
/// directory (no proc mount; a proc mount must be on an ordinary
/// directory, and nothing else may be mounted there), which must be
/// handled the general way: the file covered by /dev/null, the directory
/// by an empty tmpfs, the read-only path really read-only (the root itself
/// stays writable), missing paths skipped.
#[test]
fn masked_and_readonly_paths_on_an_image_proc() {
    require_root!();
    let mut b = Bundle::new("imgproc", false);
    b.config["mounts"].as_array_mut().expect("mounts").retain(|m| m["destination"] != "/proc");
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["maskedPaths"] = json!(["/proc/keys", "/proc/acpi", "/proc/missing"]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/gone"]);
    let proc = b.rootfs().join("proc");
    std::fs::write(proc.join("keys"), b"secret").expect("keys");
    std::fs::create_dir_all(proc.join("acpi")).expect("acpi");
    std::fs::write(proc.join("acpi/f"), b"x").expect("acpi/f");
    std::fs::create_dir_all(proc.join("sys")).expect("sys");
    let r = b.run("echo keys=$(cat /proc/keys | wc -c); echo acpi=$(ls /proc/acpi | wc -l); \
        stat -c 'keysdev=%t:%T' /proc/keys; touch /proc/sys/x 2>&1; touch /rootfile && echo root-rw");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("keys=0\n"), "file not masked");
    assert!(r.out.contains("acpi=0\n"), "directory not masked");
    assert!(r.out.contains("keysdev=1:3\n"));
    assert!(r.out.contains("/proc/sys/x") && r.out.contains("Read-only file system"), "readonly path writable");
    assert!(r.out.contains("root-rw\n"));
}

/// The image's /proc (no proc mount there) holds a symlink into a magic
/// link of a procfs mounted elsewhere: masking it must refuse the magic
/// link, not follow it by name.
#[test]
fn hostile_masked_path_symlink_to_magic_link() {
    require_root!();
    let (r, _c) = hostile("mask-magic", |b, _| {
        for m in b.config["mounts"].as_array_mut().expect("mounts") {
            if m["destination"] == "/proc" {
                m["destination"] = json!("/otherproc");
            }
        }
        std::fs::create_dir(b.rootfs().join("otherproc")).expect("mkdir otherproc");
        symlink("/otherproc/self/cwd", b.rootfs().join("proc/keys")).expect("symlink");
        b.config["linux"]["maskedPaths"] = json!(["/proc/keys"]);
        b.config["linux"]["readonlyPaths"] = json!([]);
    });
    assert_eq!(r.code, 125, "{}", r.out);
    assert!(r.err.contains("maskedPaths") && r.err.contains("/proc/keys") && r.err.contains("ELOOP"), "{}", r.err);
}

#[test]
fn hostile_device_path_through_symlink() {
    require_root!();
    let (r, _c) = hostile("devpath-sym", |b, c| {
        // /dev is a tmpfs seeded from the image (tmpcopyup), which carries a
        // symlink to the host canary; a device below it must not follow it.
        symlink(&c.dir, b.rootfs().join("dev/sub")).expect("symlink");
        for m in b.config["mounts"].as_array_mut().expect("mounts") {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().expect("opts").push(json!("tmpcopyup"));
            }
        }
        b.config["linux"]["devices"] = json!([{"path": "/dev/sub/evil", "type": "c", "major": 1, "minor": 3}]);
    });
    assert_eq!(r.code, 125);
    assert!(r.err.contains("device /dev/sub/evil: open: ELOOP"), "{}", r.err);
}

// ---- configuration rejection --------------------------------------------

fn default_config() -> Value {
    let dir = scratch("cfg");
    assert!(Command::new("runc").arg("spec").current_dir(&dir).status().expect("runc").success());
    std::fs::create_dir_all(dir.join("rootfs")).expect("rootfs");
    let mut v: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("read")).expect("json");
    v["root"]["path"] = json!(dir.join("rootfs"));
    v
}

fn reject(mutate: impl FnOnce(&mut Value), field: &str, what: &str) {
    let mut v = default_config();
    mutate(&mut v);
    let bytes = serde_json::to_vec(&v).expect("ser");
    let e = RootfsPlan::from_json(&bytes, &RootfsOptions::default()).expect_err("must be rejected");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{field}: ")), "{msg}");
    assert!(msg.contains(what), "{msg}");
    if let Some(root) = v["root"]["path"].as_str() {
        let _ = std::fs::remove_dir_all(Path::new(root).parent().expect("bundle"));
    }
}

#[test]
fn config_rejections_name_the_field() {
    reject(|v| v["mounts"][2]["destination"] = json!("dev/pts"), "mounts[2].destination", "relative path \"dev/pts\"");
    reject(|v| v["mounts"][0]["type"] = json!("ext9"), "mounts[0].type", "unknown mount type \"ext9\"");
    reject(|v| v["mounts"][1]["options"][1] = json!("bogus"), "mounts[1].options[1]", "unknown mount option \"bogus\"");
    reject(|v| v["mounts"][3]["options"][0] = json!("newinstance"), "mounts[3].options[0]", "unknown mount option");
    reject(|v| v["mounts"][1]["destination"] = json!("/proc/sys/kernel"), "mounts[1].destination", "inside /proc");
    reject(|v| v["mounts"][5]["destination"] = json!("/proc/kcore"), "mounts[5].destination", "/proc");
    reject(
        |v| v["linux"]["devices"] = json!([{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 3}]),
        "linux.devices[0].path",
        "not below /dev",
    );
    reject(
        |v| v["linux"]["devices"] = json!([{"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}]),
        "linux.devices[0].path",
        "not below /dev",
    );
    reject(
        |v| v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a", "major": 1, "minor": 3}]),
        "linux.devices[0].type",
        "\"a\" is not one of c, b, u, p",
    );
    reject(
        |v| v["linux"]["devices"] = json!([{"path": "/dev/ok", "type": "c", "major": 1, "minor": 3}, {"path": "/dev/x", "type": "z", "major": 1, "minor": 3}]),
        "linux.devices[1].type",
        "\"z\"",
    );
    reject(|v| v["linux"]["rootfsPropagation"] = json!("sideways"), "linux.rootfsPropagation", "sideways");
    reject(|v| v["linux"]["maskedPaths"][2] = json!("proc/kcore"), "linux.maskedPaths[2]", "relative path");
    reject(
        |v| {
            let ns = v["linux"]["namespaces"].as_array_mut().expect("ns");
            ns.retain(|n| n["type"] != "uts");
        },
        "hostname",
        "no uts namespace",
    );
    reject(
        |v| {
            let ns = v["linux"]["namespaces"].as_array_mut().expect("ns");
            ns.retain(|n| n["type"] != "mount");
        },
        "linux.namespaces",
        "no mount namespace",
    );
    reject(|v| v["process"]["cwd"] = json!("work"), "process.cwd", "relative path");
}

#[test]
fn rejected_config_exits_before_any_mount() {
    require_root!();
    let mut b = Bundle::new("reject", false);
    b.add_mount(json!({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"}));
    let r = b.run("echo should-not-run");
    assert_eq!(r.code, 2);
    assert!(r.err.contains("mounts[7].destination: relative path \"relative/dest\""), "{}", r.err);
    assert!(!r.out.contains("should-not-run"));
    // Nothing was created in the rootfs either.
    assert!(!b.rootfs().join("relative").exists());
}

#[test]
fn mount_label_is_a_warning() {
    require_root!();
    let mut b = Bundle::new("label", false);
    b.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    let r = b.run("echo ok");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("warning: linux.mountLabel ignored"));
}
