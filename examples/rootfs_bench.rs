//! Benchmarks of the rootfs stage (root only).
//!
//! ```text
//! rootfs_bench prepare RUNS   # prepare() on runc's default spec vs the bare syscalls
//! rootfs_bench prepare-v2 RUNS  # the same on a unified (cgroup2) view of this host
//! rootfs_bench copyup RUNS    # copy_tree into a fresh tmpfs vs `cp -a`
//! rootfs_bench trace [v2]     # one sample of each, for `strace -f`
//! ```
//! `trace` runs one prepare() sample and one bare sample (no warm-up),
//! each bracketed by `access("/@@nsboot-trace-begin-VARIANT")` and
//! `access("/@@nsboot-trace-end")`, so that
//! `strace -f -o LOG rootfs_bench trace` shows exactly the syscalls of the
//! timed part (recipe in BENCHMARKS.md §2).
//! Each `prepare` sample runs in a fresh child that has already unshared
//! mount/UTS/IPC/PID namespaces (not timed); only `prepare()` — or the
//! hand-written sequence of path-based mount/mknod/pivot calls it boils
//! down to — is timed, with `CLOCK_MONOTONIC`, and sent to the parent
//! over a pipe. Runs alternate between the two variants; medians reported.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use nsboot_oci::rootfs::{copy_tree, prepare, RootfsOptions, RootfsPlan};

const NONE: Option<&str> = None;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[allow(unsafe_code)]
fn fork_child() -> ForkResult {
    // SAFETY: this program is single-threaded; the child is a full copy.
    unsafe { fork() }.unwrap_or_else(|e| {
        eprintln!("fork: {e}");
        exit(1)
    })
}

/// Run `f` in a child with fresh namespaces; return its self-timed duration.
/// The child is named `name` (`perf report --comm NAME` separates the
/// variants of a profile taken with `perf record`).
fn sample(name: &std::ffi::CStr, f: &dyn Fn() -> Duration) -> Duration {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    match fork_child() {
        ForkResult::Child => {
            drop(r);
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWPID)
                .expect("unshare");
            // PID namespace: the next child is its init.
            match fork_child() {
                ForkResult::Child => {
                    let _ = nix::sys::prctl::set_name(name);
                    let d = f();
                    let _ = nix::unistd::write(&w, &(d.as_nanos() as u64).to_le_bytes());
                    exit(0)
                }
                ForkResult::Parent { child } => {
                    let _ = waitpid(child, None);
                    exit(0)
                }
            }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut buf = [0u8; 8];
            let n = nix::unistd::read(&r, &mut buf).unwrap_or(0);
            let _ = waitpid(child, None);
            if n != 8 {
                eprintln!("sample failed");
                exit(1);
            }
            Duration::from_nanos(u64::from_le_bytes(buf))
        }
    }
}

fn make_rootfs(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    for d in ["rootfs/bin", "rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/tmp"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).expect("busybox");
    assert!(Command::new("runc").arg("spec").current_dir(dir).status().expect("runc").success());
}

/// What prepare() does for runc's default spec, as plain path-based calls.
/// `unified`: /sys/fs/cgroup is cgroup2 (see [`unified_view`]), so the
/// cgroup mount is one cgroup2 mount.
fn bare(root: &Path, cgroups: &[(PathBuf, PathBuf)], ro_paths: &[&str], masked: &[(&str, bool)], unified: bool) -> Duration {
    let t = Instant::now();
    let j = |p: &str| root.join(p);
    let ok = |r: nix::Result<()>, what: &str| {
        if let Err(e) = r {
            eprintln!("bare {what}: {e}");
            exit(1)
        }
    };
    ok(mount(NONE, "/", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE), "rslave");
    ok(mount(Some(root), root, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE), "rbind");
    ok(mount(Some("proc"), &j("proc"), Some("proc"), MsFlags::empty(), NONE), "proc");
    ok(mount(Some("tmpfs"), &j("dev"), Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536k")), "dev");
    let nnn = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for d in ["dev/pts", "dev/shm", "dev/mqueue"] {
        ok(nix::unistd::mkdir(&j(d), Mode::from_bits_truncate(0o755)), d);
    }
    ok(mount(Some("devpts"), &j("dev/pts"), Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620,gid=5")), "pts");
    ok(mount(Some("shm"), &j("dev/shm"), Some("tmpfs"), nnn, Some("mode=1777,size=65536k")), "shm");
    ok(mount(Some("mqueue"), &j("dev/mqueue"), Some("mqueue"), nnn, NONE), "mqueue");
    ok(mount(Some("sysfs"), &j("sys"), Some("sysfs"), nnn | MsFlags::MS_RDONLY, NONE), "sysfs");
    let cg = j("sys/fs/cgroup");
    if unified {
        ok(mount(Some("cgroup2"), &cg, Some("cgroup2"), nnn | MsFlags::MS_RELATIME | MsFlags::MS_RDONLY, NONE), "cgroup2");
    } else {
        ok(mount(Some("tmpfs"), &cg, Some("tmpfs"), nnn, Some("mode=755")), "cgroup tmpfs");
        for (src, base) in cgroups {
            let d = cg.join(base);
            ok(nix::unistd::mkdir(&d, Mode::from_bits_truncate(0o755)), "cg mkdir");
            ok(mount(Some(src.as_path()), &d, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE), "cg bind");
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | nnn | MsFlags::MS_RELATIME | MsFlags::MS_RDONLY;
            ok(mount(NONE, &d, NONE, f, NONE), "cg remount");
        }
        ok(mount(NONE, &cg, NONE, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | nnn | MsFlags::MS_RDONLY, NONE), "cg ro");
    }
    let old = nix::sys::stat::umask(Mode::empty());
    for (n, ma, mi) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
        let p = j(&format!("dev/{n}"));
        ok(mknod(&p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(ma, mi)), "mknod");
        ok(nix::unistd::chown(&p, Some(0.into()), Some(0.into())), "chown");
    }
    nix::sys::stat::umask(old);
    ok(nix::unistd::symlinkat("pts/ptmx", nix::fcntl::AT_FDCWD, &j("dev/ptmx")), "ptmx");
    for (t, n) in [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")] {
        ok(nix::unistd::symlinkat(t, nix::fcntl::AT_FDCWD, &j(&format!("dev/{n}"))), "link");
    }
    ok(nix::unistd::chdir(root), "chdir");
    ok(nix::unistd::pivot_root(".", "."), "pivot");
    ok(mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE), "old rslave");
    ok(umount2(".", MntFlags::MNT_DETACH), "umount");
    ok(nix::unistd::chdir("/"), "chdir /");
    ok(mount(NONE, "/", NONE, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, NONE), "ro root");
    for &p in ro_paths {
        ok(mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE), "ro bind");
        ok(mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, NONE), "ro remount");
    }
    for (p, dir) in masked {
        if *dir {
            ok(mount(Some("tmpfs"), *p, Some("tmpfs"), MsFlags::MS_RDONLY, NONE), "mask dir");
        } else {
            ok(mount(Some("/dev/null"), *p, NONE, MsFlags::MS_BIND, NONE), "mask file");
        }
    }
    ok(nix::unistd::sethostname("runc"), "hostname");
    t.elapsed()
}

/// Marker syscall for `strace` (trace mode only; never inside a timing).
fn marker(name: &str) {
    let _ = nix::unistd::access(Path::new(&format!("/@@nsboot-trace-{name}")), nix::unistd::AccessFlags::F_OK);
}

/// Minor page faults of this process so far (a forked child faults in
/// every text page it runs and copies every data page it writes).
fn minor_faults() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(0, |u| u.minor_page_faults())
}

/// Give this process a unified cgroup view of the host: a private mount
/// namespace where /sys/fs/cgroup is a cgroup2 mount (the host's own
/// hierarchies detached), as on a host booted with the unified hierarchy.
fn unified_view() {
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
    mount(NONE, "/", NONE, MsFlags::MS_PRIVATE | MsFlags::MS_REC, NONE).expect("private");
    umount2("/sys/fs/cgroup", MntFlags::MNT_DETACH).expect("umount /sys/fs/cgroup");
    mount(Some("cgroup2"), "/sys/fs/cgroup", Some("cgroup2"), MsFlags::empty(), NONE).expect("cgroup2");
}

fn bench_prepare(runs: usize, trace: bool, unified: bool) {
    if unified {
        unified_view();
    }
    let dir = PathBuf::from("/tmp/nsboot-bench-prepare");
    make_rootfs(&dir);
    let opts = RootfsOptions { no_pivot: false, bundle: Some(dir.clone()) };
    let json = std::fs::read(dir.join("config.json")).expect("config");
    let plan = RootfsPlan::from_json(&json, &opts).unwrap_or_else(|e| {
        eprintln!("{e}");
        exit(1)
    });
    let root = plan.root().to_path_buf();
    // The bare variant needs what prepare() discovers at run time.
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
    let mut cgroups = Vec::new();
    for l in info.lines() {
        let (pre, post) = l.split_once(" - ").expect("mountinfo");
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if post[0] != "cgroup" {
            continue;
        }
        let (mroot, mp) = (pre[3], PathBuf::from(pre[4]));
        let subs: Vec<&str> = post[2].split(',').collect();
        let path = own
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':').skip(1);
                it.next().zip(it.next())
            })
            .find(|(c, _)| c.split(',').any(|x| subs.contains(&x)))
            .map_or("/", |(_, p)| p);
        let rel = Path::new(path).strip_prefix(mroot).unwrap_or(Path::new(""));
        let base = PathBuf::from(mp.file_name().expect("base"));
        cgroups.push((mp.join(rel), base));
    }
    let masked: Vec<(&str, bool)> = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]
    .into_iter()
    .filter_map(|p| std::fs::metadata(p).ok().map(|m| (p, m.is_dir())))
    .collect();

    let ro_paths: Vec<&str> = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();

    if trace {
        // After each variant, its mount table and /dev, to check that both
        // did the same work (`diff` the two halves of the output).
        let dump = |name: &str| {
            let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            for l in mi.lines() {
                // mountpoint, per-mount options, fstype, source, super options
                let (pre, post) = l.split_once(" - ").unwrap_or((l, ""));
                let pre: Vec<&str> = pre.split(' ').collect();
                println!("{name} mount {} {} {} {}", pre.get(4).unwrap_or(&""), pre.get(5).unwrap_or(&""), pre.get(3).unwrap_or(&""), post);
            }
            let mut dev: Vec<String> = std::fs::read_dir("/dev").map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
            dev.sort();
            println!("{name} dev {}", dev.join(" "));
        };
        sample(c"prep-nsboot", &|| {
            marker("begin-prepare");
            let f = minor_faults();
            let t = Instant::now();
            prepare(&plan, &mut |_| {}).unwrap_or_else(|e| {
                eprintln!("prepare: {e}");
                exit(1)
            });
            let d = t.elapsed();
            let f = minor_faults() - f;
            marker("end");
            eprintln!("prepare: {f} minor faults");
            dump("prepare");
            d
        });
        sample(c"prep-bare", &|| {
            marker("begin-bare");
            let f = minor_faults();
            let d = bare(&root, &cgroups, &ro_paths, &masked, unified);
            let f = minor_faults() - f;
            marker("end");
            eprintln!("bare: {f} minor faults");
            dump("bare");
            d
        });
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut nsboot = Vec::new();
    let mut raw = Vec::new();
    for i in 0..runs + 2 {
        let a = sample(c"prep-nsboot", &|| {
            let t = Instant::now();
            prepare(&plan, &mut |_| {}).unwrap_or_else(|e| {
                eprintln!("prepare: {e}");
                exit(1)
            });
            t.elapsed()
        });
        let b = sample(c"prep-bare", &|| bare(&root, &cgroups, &ro_paths, &masked, unified));
        if i >= 2 {
            nsboot.push(a);
            raw.push(b);
        }
    }
    let (a, b) = (median(nsboot), median(raw));
    let host = if unified { "unified cgroup view" } else { "this host's cgroups" };
    println!("prepare (runc default spec, {host}, {runs} runs): nsboot {:.1} µs, bare syscalls {:.1} µs, ratio {:.2}",
        a.as_secs_f64() * 1e6, b.as_secs_f64() * 1e6, a.as_secs_f64() / b.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

fn make_tree(src: &Path) -> u64 {
    let _ = std::fs::remove_dir_all(src);
    let mut bytes = 0u64;
    for d in 0..20 {
        let dir = src.join(format!("d{d}/sub"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..100 {
            let data = vec![(f % 251) as u8; 16 << 10];
            std::fs::write(dir.join(format!("f{f}")), &data).expect("write");
            bytes += data.len() as u64;
        }
        std::os::unix::fs::symlink("../sub/f1", dir.join("link")).expect("symlink");
    }
    for f in 0..10 {
        let data = vec![f as u8; 4 << 20];
        std::fs::write(src.join(format!("big{f}")), &data).expect("write");
        bytes += data.len() as u64;
    }
    bytes
}

fn bench_copyup(runs: usize) {
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
    mount(NONE, "/", NONE, MsFlags::MS_PRIVATE | MsFlags::MS_REC, NONE).expect("private");
    let src = PathBuf::from("/tmp/nsboot-bench-tree");
    let dst = PathBuf::from("/tmp/nsboot-bench-dst");
    let bytes = make_tree(&src);
    std::fs::create_dir_all(&dst).expect("dst");
    let fresh = || {
        let _ = umount2(&dst, MntFlags::MNT_DETACH);
        mount(Some("tmpfs"), &dst, Some("tmpfs"), MsFlags::empty(), NONE).expect("tmpfs");
    };
    let (mut ours, mut cp) = (Vec::new(), Vec::new());
    for i in 0..runs + 1 {
        fresh();
        let s = std::fs::File::open(&src).expect("src");
        let d = std::fs::File::open(&dst).expect("dst");
        let t = Instant::now();
        copy_tree(s.as_fd(), d.as_fd(), Path::new("/bench")).expect("copy_tree");
        let a = t.elapsed();
        drop(d);
        fresh();
        let t = Instant::now();
        let st = Command::new("cp").arg("-a").arg(format!("{}/.", src.display())).arg(&dst).status().expect("cp");
        let b = t.elapsed();
        assert!(st.success());
        if i >= 1 {
            ours.push(a);
            cp.push(b);
        }
    }
    let _ = umount2(&dst, MntFlags::MNT_DETACH);
    let (a, b) = (median(ours), median(cp));
    let mb = bytes as f64 / (1 << 20) as f64;
    println!("tmpcopyup ({mb:.0} MiB, 2030 files, 20 symlinks, {runs} runs): copy_tree {:.1} ms ({:.0} MiB/s), cp -a {:.1} ms ({:.0} MiB/s), ratio {:.2}",
        a.as_secs_f64() * 1e3, mb / a.as_secs_f64(), b.as_secs_f64() * 1e3, mb / b.as_secs_f64(), a.as_secs_f64() / b.as_secs_f64());
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir(&dst);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(21);
    match args.get(1).map(String::as_str) {
        Some("prepare") => bench_prepare(runs, false, false),
        Some("prepare-v2") => bench_prepare(runs, false, true),
        Some("trace") => bench_prepare(1, true, args.get(2).is_some_and(|a| a == "v2")),
        Some("copyup") => bench_copyup(runs),
        _ => {
            eprintln!("usage: rootfs_bench prepare|copyup [RUNS]");
            exit(2)
        }
    }
}
