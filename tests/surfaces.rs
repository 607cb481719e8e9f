//! End-to-end tests of the integration surfaces (issue #5): the exported
//! symbol list, `make install` + pkg-config (C, dynamic and static), the Go
//! package (import for side effect, message builder, caller side) and the
//! LD_PRELOAD mode on `/bin/sh`, `python3` and a cgo binary.
//!
//! Each test reports `SKIP <reason>` (common::skip) and returns when it cannot run here
//! (not root, a tool missing); in CI everything is installed and runs as
//! root. The bootstraps run in child processes started with
//! `std::process::Command`, never in the (multi-threaded) harness.

mod common;

use std::ffi::CString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nsboot::ns::{NsKind, NsPath, NsSet};
use nsboot::wire::{encode, BootstrapConfig, Clock, Dialect, IdMap, IdRange, TimeOffset, ROOTFS_FLAG_NO_PIVOT};

macro_rules! skip {
    ($($arg:tt)*) => {{
        common::skip(&format!($($arg)*));
        return;
    }};
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, where libnsboot.{so,a} and the plugin are built.
fn libdir() -> PathBuf {
    common::lib_dir()
}

fn libso() -> PathBuf {
    libdir().join("libnsboot.so")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "nsboot-surfaces-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    // Removed at exit if the test fails before removing it.
    common::remove_at_exit(&d);
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// Run `argv` under `LD_PRELOAD=libnsboot.so` with `vars` added.
fn preload(vars: &[(&str, &str)], argv: &[&str]) -> Output {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).env("LD_PRELOAD", libso()).env_remove("_LIBCONTAINER_INITPIPE");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().expect("run the preloaded program")
}

// ---------------------------------------------------------------- symbols

#[test]
fn exported_symbols_are_only_nsboot_and_nsexec() {
    if !have("nm") || !have("readelf") {
        skip!("nm/readelf not installed (binutils)");
    }
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(libso()).output().expect("nm");
    assert!(out.status.success(), "{}", show(&out));
    let syms: Vec<String> =
        text(&out.stdout).lines().filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned)).collect();
    assert!(syms.iter().any(|s| s == "nsexec"), "nsexec is not exported: {syms:?}");
    assert!(syms.iter().any(|s| s == "nsboot_spawn"), "nsboot_spawn is not exported: {syms:?}");
    let foreign: Vec<&String> = syms.iter().filter(|s| *s != "nsexec" && !s.starts_with("nsboot_")).collect();
    assert!(foreign.is_empty(), "libnsboot.so exports symbols outside nsboot_* and nsexec: {foreign:?}");

    let dynamic = Command::new("readelf").arg("-d").arg(libso()).output().expect("readelf");
    assert!(text(&dynamic.stdout).contains("Library soname: [libnsboot.so.0]"), "{}", show(&dynamic));
}

/// The exact export list is the committed one (cbind/libnsboot.symbols):
/// no symbol appears or disappears unnoticed (a build change such as the
/// crate split of issue 15 must not change it).
#[test]
fn exported_symbols_match_the_committed_list() {
    if !have("nm") {
        skip!("nm not installed (binutils)");
    }
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(libso()).output().expect("nm");
    assert!(out.status.success(), "{}", show(&out));
    let mut got: Vec<String> =
        text(&out.stdout).lines().filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned)).collect();
    got.sort();
    let list = std::fs::read_to_string(root().join("cbind/libnsboot.symbols")).expect("cbind/libnsboot.symbols");
    let mut want: Vec<String> =
        list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    want.sort();
    assert_eq!(got, want, "libnsboot.so's exports differ from cbind/libnsboot.symbols");
}

// ------------------------------------------------------- rootfs plugin

/// The OCI code lives in the plugin only: libnsboot.so carries none of it
/// (oci-spec's field names are a fingerprint), the plugin all of it.
#[test]
fn oci_code_only_in_the_plugin() {
    let plugin = common::plugin_lib();
    let has = |p: &Path, needle: &[u8]| {
        let b = std::fs::read(p).expect("read library");
        b.windows(needle.len()).any(|w| w == needle)
    };
    assert!(!has(&libso(), b"ociVersion"), "libnsboot.so links the OCI parser again");
    assert!(has(plugin, b"ociVersion"), "the plugin lacks the OCI parser");
    let nm = Command::new("nm").args(["-D", "--defined-only"]).arg(plugin).output().expect("nm");
    let syms: Vec<String> = text(&nm.stdout).lines().filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned)).collect();
    // Its two entry tables: the rootfs one and the container one (issue
    // 16, versioned separately).
    assert_eq!(syms, ["nsboot_container_plugin_v1", "nsboot_rootfs_plugin_v1"], "the plugin exports more than its entries");
}

/// Loading libnsboot (constructor, no bootstrap) does not load the plugin.
#[test]
fn plugin_not_loaded_without_a_rootfs() {
    let out = preload(&[], &["/bin/cat", "/proc/self/maps"]);
    assert!(out.status.success(), "{}", show(&out));
    let maps = text(&out.stdout);
    assert!(maps.contains("libnsboot.so"), "libnsboot.so not mapped: {maps}");
    assert!(!maps.contains("libnsboot_rootfs"), "the plugin was loaded: {maps}");
}

/// A plugin that cannot be found or loaded: the C API says which paths it
/// tried; a bootstrap fails in stage-0 with one fatal line and runs nothing.
#[test]
fn missing_plugin_is_a_clear_error() {
    let out = preload(
        &[("NSBOOT_NS", "mnt"), ("NSBOOT_OCI_CONFIG", "/dev/null"), ("NSBOOT_ROOTFS_PLUGIN", "/nonexistent/libnsboot_rootfs.so.0")],
        &["/bin/echo", "must-not-run"],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 127, "{}", show(&out));
    assert!(err.contains("rootfs plugin") && err.contains("/nonexistent/libnsboot_rootfs.so.0"), "{}", show(&out));
    assert!(!text(&out.stdout).contains("must-not-run"), "{}", show(&out));
    // Not a plugin at all: a shared object without the entry symbol.
    let libc = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"].into_iter().find(|p| Path::new(p).exists());
    if let Some(libm) = libc {
        let out = preload(&[("NSBOOT_NS", "mnt"), ("NSBOOT_OCI_CONFIG", "/dev/null"), ("NSBOOT_ROOTFS_PLUGIN", libm)], &["/bin/true"]);
        assert_eq!(code(&out), 127, "{}", show(&out));
        assert!(text(&out.stderr).contains("is not an nsboot rootfs plugin"), "{}", show(&out));
    }
}

// ------------------------------------------------------------ C install

#[test]
fn c_install_and_pkg_config_example() {
    for tool in ["make", "cc", "c++", "pkg-config", "readelf"] {
        if !have(tool) {
            skip!("{tool} not installed");
        }
    }
    if !is_root() && !Path::new("/proc/self/ns/user").exists() {
        skip!("neither root nor user namespaces: examples/c/hello cannot create namespaces");
    }
    common::plugin_lib();
    let prefix = tempdir("prefix");
    let profile = libdir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = libdir().parent().map(Path::to_path_buf).unwrap_or_default();
    let out = Command::new("make")
        .current_dir(root())
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("PROFILE={profile}"))
        .arg(format!("CARGO_TARGET_DIR={}", target.display()))
        .arg("NSBOOT_NO_BUILD=1")
        .output()
        .expect("make install");
    assert!(out.status.success(), "make install failed\n{}", show(&out));
    for f in ["lib/libnsboot.so.0.1.0", "lib/libnsboot.so.0", "lib/libnsboot.so", "lib/libnsboot.a", "lib/libnsboot_rootfs.so.0", "include/nsboot.h", "lib/pkgconfig/nsboot.pc", "lib/pkgconfig/nsboot-static.pc"] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    let pc = std::fs::read_to_string(prefix.join("lib/pkgconfig/nsboot.pc")).expect("nsboot.pc");
    assert!(pc.lines().any(|l| l.starts_with("Libs.private: ") && l.contains("-lc")), "{pc}");
    // The installed archive has one object whose only global definitions
    // are the C API (scripts/localize-staticlib.sh).
    let syms = Command::new("readelf").arg("-sW").arg(prefix.join("lib/libnsboot.a")).output().expect("readelf");
    let globals: Vec<String> = text(&syms.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && (f[4] == "GLOBAL" || f[4] == "WEAK") && f[6] != "UND").then(|| f[7].to_owned())
        })
        .collect();
    assert!(globals.iter().any(|g| g == "nsexec") && globals.len() >= 20, "{globals:?}");
    for g in &globals {
        assert!(g.starts_with("nsboot_") || g == "nsexec", "installed libnsboot.a exports {g}");
    }

    let out = Command::new(root().join("examples/c/check.sh")).arg(&prefix).output().expect("check.sh");
    eprintln!("{}", text(&out.stdout));
    assert!(out.status.success(), "examples/c/check.sh failed\n{}", show(&out));
    let _ = std::fs::remove_dir_all(&prefix);
}

/// `make install` installs the release build (0.6 MB libnsboot.so, not the
/// 10 MB debug one) although the top-level Makefile defaults PROFILE to
/// debug for build and test; PROFILE=debug, given, is honoured.
#[test]
fn make_install_installs_the_release_build_by_default() {
    if !have("make") {
        skip!("make not installed");
    }
    let plan = |extra: &[&str]| {
        let out = Command::new("make")
            .current_dir(root())
            .args(["-n", "install", "PREFIX=/nonexistent/prefix"])
            .args(extra)
            .env_remove("PROFILE")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .output()
            .expect("make -n install");
        assert!(out.status.success(), "{}", show(&out));
        text(&out.stdout)
    };
    let lib = |p: &str| {
        p.lines()
            .find(|l| l.contains("libnsboot.so /nonexistent/prefix/lib/libnsboot.so."))
            .unwrap_or_else(|| panic!("no install line for libnsboot.so in\n{p}"))
            .to_owned()
    };
    let default = plan(&[]);
    assert!(default.contains("cargo build --profile release --lib"), "{default}");
    assert!(lib(&default).contains("/release/libnsboot.so "), "{default}");
    let debug = plan(&["PROFILE=debug"]);
    assert!(debug.contains("cargo build --profile dev --lib"), "{debug}");
    assert!(lib(&debug).contains("/debug/libnsboot.so "), "{debug}");
}

/// examples/c/check.sh without its PREFIX argument says how to call it
/// (not a shell error about `$1`).
#[test]
fn c_check_script_prints_its_usage() {
    for args in [&[][..], &["/nonexistent/prefix"][..]] {
        let out = Command::new(root().join("examples/c/check.sh")).args(args).output().expect("check.sh");
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        let err = text(&out.stderr);
        assert!(err.starts_with("usage: ") && err.contains("PREFIX") && err.lines().count() == 1, "{args:?}: {err:?}");
    }
}

// ---------------------------------------------------------------- Go

struct GoPath {
    dir: PathBuf,
}

impl GoPath {
    /// A GOPATH whose src/ links to the package and the examples (GOPATH
    /// mode, no module download).
    fn new() -> GoPath {
        let dir = tempdir("gopath");
        std::fs::create_dir_all(dir.join("src/nsboot.example")).expect("gopath/src");
        std::os::unix::fs::symlink(root().join("cbind/go/nsboot"), dir.join("src/nsboot.example/nsboot")).expect("symlink");
        std::os::unix::fs::symlink(root().join("examples/go/nsboot-hello"), dir.join("src/nsboot-hello"))
            .expect("symlink");
        GoPath { dir }
    }

    fn go(&self, pkg: &str, args: &[&str]) -> Command {
        let mut c = Command::new("go");
        c.args(args)
            .current_dir(self.dir.join("src").join(pkg))
            .env("GOPATH", &self.dir)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "1")
            .env("CGO_LDFLAGS", format!("-L{}", libdir().display()))
            .env_remove("_LIBCONTAINER_INITPIPE");
        if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
            c.env("GOCACHE", self.dir.join("cache"));
        }
        c
    }
}

impl Drop for GoPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn set(kinds: &[NsKind]) -> NsSet {
    kinds.iter().copied().collect()
}

/// The Rust twins of `Encodings()` in cbind/go/nsboot/nsboot_test.go.
fn rust_encodings() -> Vec<(&'static str, BootstrapConfig, Dialect)> {
    use NsKind::*;
    let full = BootstrapConfig {
        clone_flags: set(&[User, Mnt, Pid, Uts, Ipc, Net, Cgroup]),
        ns_paths: vec![
            NsPath { kind: User, path: cstr("/proc/1/ns/user") },
            NsPath { kind: Net, path: cstr("/run/netns/x") },
        ],
        uid_map: Some(IdMap(vec![
            IdRange { inside: 0, outside: 100000, count: 65536 },
            IdRange { inside: 65536, outside: 1000, count: 1 },
        ])),
        gid_map: Some(IdMap::single(0, 100000, 65536)),
        uidmap_helper: Some(cstr("/usr/bin/newuidmap")),
        gidmap_helper: Some(cstr("/usr/bin/newgidmap")),
        setgroup: true,
        rootless_euid: true,
        oom_score_adj: Some(-17),
        rootfs_config: Some(br#"{"ociVersion":"1.0.2"}"#.to_vec()),
        rootfs_bundle: Some(cstr("/bundle")),
        rootfs_flags: ROOTFS_FLAG_NO_PIVOT,
        ..Default::default()
    };
    let rootless = BootstrapConfig {
        clone_flags: set(&[User, Uts]),
        uid_map: Some(IdMap::single(0, 1000, 1)),
        gid_map: Some(IdMap::single(0, 1000, 1)),
        rootless_euid: true,
        ..Default::default()
    };
    let offsets = vec![
        TimeOffset { clock: Clock::Monotonic, secs: 86400, nsecs: 5 },
        TimeOffset { clock: Clock::Boottime, secs: -7, nsecs: 0 },
    ];
    let time11 = BootstrapConfig { clone_flags: set(&[Time, Pid]), time_offsets: offsets.clone(), ..Default::default() };
    let time12 = BootstrapConfig { clone_flags: set(&[Time, Pid, Cgroup]), time_offsets: offsets, ..Default::default() };
    let mut big = br#"{"ociVersion":"1.0.2","hostname":""#.to_vec();
    big.extend(vec![b'x'; 70000]);
    big.extend_from_slice(br#""}"#);
    let bigrootfs = BootstrapConfig { clone_flags: set(&[Mnt]), rootfs_config: Some(big), ..Default::default() };
    vec![
        ("empty", BootstrapConfig::default(), Dialect::Runc11),
        ("full", full, Dialect::Runc11),
        ("rootless", rootless, Dialect::Runc11),
        ("time11", time11, Dialect::Runc11),
        ("time12", time12, Dialect::Runc12),
        ("bigrootfs", bigrootfs, Dialect::Runc11),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn go_package_side_effect_import_and_builder() {
    if !have("go") {
        skip!("go not installed (apt-get install golang-go)");
    }
    if !is_root() && !Path::new("/proc/self/ns/user").exists() {
        skip!("neither root nor user namespaces");
    }
    let gp = GoPath::new();
    let dump = gp.dir.join("encodings.txt");
    // The package's own tests: re-exec of the test binary with the init
    // socket, Go code (goroutines, GC, os/exec) inside the namespaces,
    // exit status and signals, failure cleanup, encoder refusals.
    let out = gp
        .go("nsboot.example/nsboot", &["test", "-count=1", "-v", "./..."])
        .env("NSBOOTGO_DUMP", &dump)
        .output()
        .expect("go test");
    eprintln!("{}", text(&out.stdout));
    assert!(out.status.success(), "go test failed\n{}", show(&out));
    let so = text(&out.stdout);
    for t in ["TestReexecRunsGoInsideNamespaces", "TestBuiltForRunc12NeedsNoVariable", "TestForkFromRetiredLockedThread", "TestRunc12DialectAndTimeNamespace", "TestExitStatusAndSignal", "TestBootstrapFailureLeavesNothing", "TestDumpEncodings"] {
        assert!(so.contains(&format!("--- PASS: {t}")), "{t} did not pass\n{so}");
    }

    // The Go encoder is byte-identical to the Rust one.
    let dumped = std::fs::read_to_string(&dump).expect("encodings dump");
    for (name, cfg, dialect) in rust_encodings() {
        let want = hex(&encode(&cfg, dialect).expect("rust encode"));
        let got = dumped
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from the Go dump"));
        assert_eq!(got, want, "Go and Rust encode {name:?} differently");
    }

    // The README example, built and run.
    let bin = gp.dir.join("nsboot-hello");
    let out = gp.go("nsboot-hello", &["build", "-o"]).arg(&bin).arg(".").output().expect("go build");
    assert!(out.status.success(), "go build examples/go/nsboot-hello\n{}", show(&out));
    let out = Command::new(&bin).env_remove("_LIBCONTAINER_INITPIPE").output().expect("run nsboot-hello");
    let so = text(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(so.contains("inside: pid 1 uid 0 hostname nsboot-hello"), "{}", show(&out));
    assert!(so.contains("exited with 0"), "{}", show(&out));

    // Module mode, as a Go user depends on it: the example's go.mod
    // requires nsboot.example/nsboot and replaces it with the checkout's
    // copy; vendoring works too. Nothing is downloaded (GOPROXY=off).
    let module = |c: &mut Command| {
        c.env("GO111MODULE", "on").env("GOPROXY", "off").env("GOFLAGS", "-mod=mod");
    };
    let bin2 = gp.dir.join("nsboot-hello-module");
    let mut c = gp.go("nsboot-hello", &["build", "-o"]);
    module(&mut c);
    let out = c.arg(&bin2).arg(".").output().expect("go build (module mode)");
    assert!(out.status.success(), "module-mode go build of examples/go/nsboot-hello\n{}", show(&out));
    let out = Command::new(&bin2).env_remove("_LIBCONTAINER_INITPIPE").output().expect("run nsboot-hello");
    assert!(out.status.success() && text(&out.stdout).contains("exited with 0"), "{}", show(&out));
    let copy = gp.dir.join("vendored");
    std::fs::create_dir_all(&copy).expect("mkdir");
    std::fs::copy(root().join("examples/go/nsboot-hello/main.go"), copy.join("main.go")).expect("copy main.go");
    let gomod = std::fs::read_to_string(root().join("examples/go/nsboot-hello/go.mod")).expect("go.mod");
    let gomod = gomod.replace("../../../cbind/go/nsboot", root().join("cbind/go/nsboot").to_str().expect("utf-8"));
    std::fs::write(copy.join("go.mod"), gomod).expect("write go.mod");
    let mut c = gp.go("nsboot-hello", &["mod", "vendor"]);
    module(&mut c);
    let out = c.current_dir(&copy).output().expect("go mod vendor");
    assert!(out.status.success(), "go mod vendor\n{}", show(&out));
    assert!(copy.join("vendor/nsboot.example/nsboot/nsexec.go").exists(), "not vendored");
    let mut c = gp.go("nsboot-hello", &["build", "-mod=vendor", "-o"]);
    module(&mut c);
    let out = c.env("GOFLAGS", "").arg(copy.join("hello")).arg(".").current_dir(&copy).output().expect("go build -mod=vendor");
    assert!(out.status.success(), "go build -mod=vendor\n{}", show(&out));
}

/// What `go build` of the Go example leaves (at the repository root or in
/// the example's directory) is ignored by git.
#[test]
fn go_build_output_is_ignored_by_git() {
    if !have("git") || !root().join(".git").exists() {
        skip!("not a git checkout");
    }
    for p in ["nsboot-hello", "examples/go/nsboot-hello/nsboot-hello", "examples/go/nsboot-hello/vendor/x.go"] {
        let out = Command::new("git").args(["check-ignore", "-q", "--no-index", p]).current_dir(root()).output().expect("git");
        assert_eq!(code(&out), 0, "{p} is not ignored: {}", show(&out));
    }
}

// ---------------------------------------------------------- LD_PRELOAD

fn require_preload() -> bool {
    if !is_root() {
        common::skip("LD_PRELOAD tests that create namespaces as root need root");
        return false;
    }
    if !Path::new("/bin/sh").exists() {
        common::skip("no /bin/sh");
        return false;
    }
    true
}

#[test]
fn preload_off_costs_nothing_visible() {
    let out = preload(&[("NSBOOT_NS", ""), ("NSBOOT_DIALECT", "1.1")], &["/bin/sh", "-c", "readlink /proc/self/ns/uts; echo $NSBOOT_DIALECT; exit 3"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert_eq!(text(&out.stdout), format!("{}\n1.1\n", host_ns("uts")), "{}", show(&out));
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn preload_sh_runs_inside_new_namespaces() {
    if !require_preload() {
        return;
    }
    let vars = [
        ("NSBOOT_NS", "uts,net,ipc,mnt,pid,cgroup"),
        ("NSBOOT_HOSTNAME", "nsboot-sh"),
        ("NSBOOT_OOM_SCORE_ADJ", "123"),
    ];
    let script = "for n in uts net ipc mnt pid cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; \
                  echo host=$(hostname); echo pid=$$; echo oom=$(cat /proc/self/oom_score_adj); \
                  env | grep '^NSBOOT_' || echo env=clean; exit 7";
    let out = preload(&vars, &["/bin/sh", "-c", script]);
    assert_eq!(code(&out), 7, "{}", show(&out));
    let so = text(&out.stdout);
    let field = |k: &str| {
        so.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::to_owned).unwrap_or_default()
    };
    for n in ["uts", "net", "ipc", "mnt", "pid"] {
        assert!(field(n).starts_with(n), "{n}: {so}");
        assert_ne!(field(n), host_ns(n), "{n} namespace is the host's\n{so}");
    }
    assert_eq!(field("host"), "nsboot-sh", "{so}");
    assert!(so.contains("pid=1\n"), "sh is not PID 1 of the new PID namespace\n{so}");
    assert_eq!(field("oom"), "123", "{so}");
    assert!(so.contains("env=clean"), "NSBOOT_* variables reached the program\n{so}");
    assert!(out.stderr.is_empty(), "{}", show(&out));

    // The program keeps its own name (the stages call themselves
    // runc:[N:...]). No PID namespace here: /proc is still the host's.
    let out = preload(&[("NSBOOT_NS", "uts")], &["/bin/sh", "-c", "cat /proc/$$/comm"]);
    assert_eq!(text(&out.stdout), "sh\n", "{}", show(&out));
}

#[test]
fn preload_exit_status_and_signal_forwarding() {
    if !require_preload() {
        return;
    }
    use std::io::{BufRead, BufReader};
    // No PID namespace here: PID 1 of a namespace ignores SIGTERM unless it
    // installed a handler (kernel rule), which would hide the forwarding.
    let start = |script: &str| {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script])
            .env("LD_PRELOAD", libso())
            .env("NSBOOT_NS", "uts,net")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = c.spawn().expect("spawn");
        let mut line = String::new();
        let mut r = BufReader::new(child.stdout.take().expect("stdout"));
        r.read_line(&mut line).expect("ready line");
        assert_eq!(line, "ready\n");
        (child, r)
    };
    let status = |o: std::process::ExitStatus| o.code().unwrap_or_else(|| 128 + o.signal().unwrap_or(0));

    // Untrapped SIGTERM: the program dies of it, the supervisor exits 143.
    let (mut child, _r) = start("echo ready; exec sleep 30");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("kill");
    assert_eq!(status(child.wait().expect("wait")), 143);

    // A trap in the program sees the forwarded signal.
    let (mut child, mut r) = start("trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.05; done");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGUSR1)
        .expect("kill");
    let mut line = String::new();
    r.read_line(&mut line).expect("trap line");
    assert_eq!(line, "got-usr1\n");
    assert_eq!(status(child.wait().expect("wait")), 42);

    // Killed by a signal inside: 128 + N.
    let out = preload(&[("NSBOOT_NS", "uts")], &["/bin/sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&out), 137, "{}", show(&out));
}

#[test]
fn preload_bad_variable_is_one_line_and_127() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("NSBOOT_NS", "user,foo")], "nsboot: NSBOOT_NS: unknown namespace \"foo\""),
        (&[("NSBOOT_NS", "uts"), ("NSBOOT_HOSTNAM", "x")], "nsboot: NSBOOT_HOSTNAM: unknown variable"),
        // A misspelt name alone: still an error while the library is
        // preloaded (the program would otherwise run on the host).
        (&[("NSBOOT_NSS", "net")], "nsboot: NSBOOT_NSS: unknown variable"),
        (&[("NSBOOT_DIALECT", "1.1"), ("NSBOOT_HOSTNAM", "")], "nsboot: NSBOOT_HOSTNAM: unknown variable"),
        (&[("NSBOOT_JOIN", "net")], "nsboot: NSBOOT_JOIN: "),
        (&[("NSBOOT_NS", "net"), ("NSBOOT_HOSTNAME", "x")], "nsboot: NSBOOT_HOSTNAME: needs \"uts\""),
    ];
    for (vars, want) in cases {
        let out = preload(vars, &["/bin/sh", "-c", "echo program-started"]);
        assert_eq!(code(&out), 127, "{vars:?}\n{}", show(&out));
        assert!(out.stdout.is_empty(), "the program started\n{}", show(&out));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{vars:?}: not one line: {err:?}");
        assert!(err.starts_with(want), "{vars:?}: {err:?} does not start with {want:?}");
    }
}

/// The rule for unknown `NSBOOT_*` names holds where the library is
/// preloaded: a program that merely links libnsboot is not stopped by its
/// environment, and `NSBOOT_TEST_*` names (the test harness's) are never
/// unknown.
#[test]
fn unknown_variable_rule_is_for_preload_only() {
    let (_, probe) = common::c_programs();
    let out = Command::new(probe)
        .env("NSBOOT_NSS", "net")
        .env_remove("LD_PRELOAD")
        .env_remove("_LIBCONTAINER_INITPIPE")
        .stdin(Stdio::null())
        .output()
        .expect("probe");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "probe-main\n", "{}", show(&out));
    let out = preload(&[("NSBOOT_TEST_ANYTHING", "1")], &["/bin/sh", "-c", "echo started; exit 4"]);
    assert_eq!(code(&out), 4, "{}", show(&out));
    assert_eq!(text(&out.stdout), "started\n", "{}", show(&out));
}

#[test]
fn preload_rootless_as_nobody() {
    if !is_root() || !have("runuser") {
        skip!("needs root and runuser to switch to nobody");
    }
    if std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone").map(|s| s.trim() == "0").unwrap_or(false) {
        skip!("unprivileged user namespaces are disabled");
    }
    // The library must be readable by nobody: copy it out of target/.
    let dir = tempdir("rootless");
    let so = dir.join("libnsboot.so");
    std::fs::copy(libso(), &so).expect("copy .so");
    let _ = Command::new("chmod").arg("0755").arg(&dir).status();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "env", "NSBOOT_ROOTLESS=1", "NSBOOT_NS=mnt,uts,pid", "NSBOOT_HOSTNAME=rl"])
        .arg(format!("LD_PRELOAD={}", so.display()))
        .args(["/bin/sh", "-c", "id -u; hostname; echo $$; cat /proc/self/uid_map"])
        .output()
        .expect("runuser");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", show(&out));
    let so = text(&out.stdout);
    let lines: Vec<&str> = so.lines().collect();
    assert_eq!(lines.get(..3), Some(&["0", "rl", "1"][..]), "{so}");
    let nobody = nix::unistd::User::from_name("nobody").ok().flatten().map(|u| u.uid.as_raw()).unwrap_or(65534);
    let map: Vec<&str> = lines.get(3).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    assert_eq!(map, ["0", &nobody.to_string(), "1"], "{so}");
}

#[test]
fn preload_python3_and_cgo_binary() {
    if !require_preload() {
        return;
    }
    let python = ["/usr/bin/python3"].into_iter().find(|p| Path::new(p).exists());
    match python {
        None => common::skip("python part: /usr/bin/python3 not installed"),
        Some(py) => {
            let out = preload(
                &[("NSBOOT_NS", "pid,mnt,uts"), ("NSBOOT_HOSTNAME", "py")],
                &[py, "-c", "import os, socket; print(os.getpid(), socket.gethostname(), 'NSBOOT_NS' in os.environ)"],
            );
            assert!(out.status.success(), "{}", show(&out));
            assert_eq!(text(&out.stdout), "1 py False\n", "{}", show(&out));
        }
    }
    if !have("go") {
        skip!("go not installed: cgo part");
    }
    // A dynamically linked cgo program that knows nothing of nsboot.
    let dir = tempdir("cgo");
    let src = dir.join("main.go");
    std::fs::write(
        &src,
        "package main\n\n// int twice(int x) { return 2 * x; }\nimport \"C\"\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"runtime\"\n)\n\n\
         func main() {\n\tc := make(chan int)\n\tgo func() { runtime.GC(); c <- int(C.twice(21)) }()\n\t\
         h, _ := os.Hostname()\n\tfmt.Println(os.Getpid(), h, <-c)\n}\n",
    )
    .expect("write main.go");
    let bin = dir.join("cgoprog");
    let mut go = Command::new("go");
    go.args(["build", "-o"]).arg(&bin).arg(&src).current_dir(&dir).env("GO111MODULE", "off").env("GOFLAGS", "");
    if std::env::var_os("HOME").is_none() {
        go.env("GOCACHE", dir.join("cache"));
    }
    let out = go.output().expect("go build");
    assert!(out.status.success(), "{}", show(&out));
    let out = preload(&[("NSBOOT_NS", "pid,uts"), ("NSBOOT_HOSTNAME", "gocgo")], &[bin.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "1 gocgo 42\n", "{}", show(&out));
}

#[test]
fn preload_oci_config() {
    let out = preload(&[("NSBOOT_NS", "mnt"), ("NSBOOT_OCI_CONFIG", "/nonexistent/config.json")], &["/bin/true"]);
    assert_eq!(code(&out), 127, "{}", show(&out));
    assert!(text(&out.stderr).starts_with("nsboot: NSBOOT_OCI_CONFIG: /nonexistent/config.json"), "{}", show(&out));
    if !require_preload() {
        return;
    }
    // A busybox bundle with runc's default spec, applied by stage-2 before
    // the unmodified host /bin/sh continues: its commands then resolve in
    // the container's root.
    let Some(bundle) = common::busybox_bundle("preload-oci", false) else { return };
    common::edit_config(&bundle, |v| v["hostname"] = "preload-oci".into());
    // libnsboot.so (target/<profile>) loads the plugin from its own directory.
    common::plugin_lib();
    let mounts = common::OwnMounts::new(&[bundle.path()]);
    let cfg = bundle.join("config.json");
    let out = preload(
        &[
            ("NSBOOT_NS", "mnt,pid,uts,ipc,net"),
            ("NSBOOT_OCI_CONFIG", cfg.to_str().expect("utf-8 path")),
            ("NSBOOT_BUNDLE", bundle.to_str().expect("utf-8 path")),
        ],
        &["/bin/sh", "-c", "echo pid=$$; hostname; ls /; stat -c '%t:%T' /dev/null; touch /ro 2>/dev/null || echo read-only"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "pid=1\npreload-oci\nbin\ndev\netc\nproc\nsys\ntmp\n1:3\nread-only\n", "{}", show(&out));
    mounts.assert_unchanged("preload with an OCI config");
}
