//! End-to-end tests of the `nsrun` example through the real binary, as
//! root and as `nobody` (rootless). Each test has its own state root, so
//! `ps -a` and the state directory can be checked for leftovers; every
//! test also checks that it left no mount on the host (nsrun mounts the
//! overlay inside the container's mount namespace only): the mounts under
//! its own directories, not the whole table, which other jobs change.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "ps", "echo", "touch", "hostname", "id", "grep", "wc", "head", "readlink", "sleep", "ip",
    "true", "false", "pwd", "tty", "stty", "mkdir", "rm",
];

/// One user's view of nsrun: its state root, and whether it runs as nobody.
struct Ctx {
    rootless: bool,
    /// NSRUN_ROOT (root) or XDG_RUNTIME_DIR (nobody).
    state: PathBuf,
}

impl Ctx {
    fn new(tag: &str, rootless: bool) -> Ctx {
        let state = PathBuf::from(format!("/tmp/nsrun-state-{tag}-{}-{}", std::process::id(), rand_u32()));
        std::fs::create_dir_all(&state).unwrap();
        if rootless {
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
            let st = Command::new("chown").arg("nobody:nogroup").arg(&state).status().unwrap();
            assert!(st.success());
        }
        Ctx { rootless, state }
    }

    /// Where nsrun keeps its containers.
    fn root(&self) -> PathBuf {
        if self.rootless {
            self.state.join("nsrun")
        } else {
            self.state.clone()
        }
    }

    fn container_dir(&self, name: &str) -> PathBuf {
        self.root().join("containers").join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c;
        if self.rootless {
            c = Command::new("runuser");
            c.args(["-u", "nobody", "--", "env", "-u", "NSRUN_ROOT"])
                .arg(format!("XDG_RUNTIME_DIR={}", self.state.display()))
                .arg(nsrun_bin());
        } else {
            c = Command::new(nsrun_bin());
            c.env("NSRUN_ROOT", &self.state);
        }
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.cmd(args), Duration::from_secs(60))
    }

    /// Run, require success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "nsrun {args:?} failed ({:?}): {}{}", o.status, stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// `ps -a` lists nothing, the state has no container left.
    fn assert_empty(&self) {
        let ps = self.ok(&["ps", "-a", "-q"]);
        assert_eq!(ps.trim(), "", "ps -a shows leftovers");
        let left: Vec<_> = std::fs::read_dir(self.root().join("containers")).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "state directory has leftovers: {left:?}");
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        remove_tree(&self.state);
    }
}

fn can_rootless() -> bool {
    if !is_root() || !have("runuser") {
        common::skip("rootless tests need root (to become nobody) and runuser");
        return false;
    }
    true
}

/// The checks run inside every container, one `key=value` per line.
const PROBE: &str = "echo pid=$$; echo host=$(hostname); echo uid=$(id -u); \
    echo nprocs=$(ps -o pid | grep -c '^ *[0-9]'); \
    echo nets=$(ls /sys/class/net | wc -w); echo loflags=$(cat /sys/class/net/lo/flags); \
    echo rootfs=$(grep -m1 ' / / ' /proc/self/mountinfo | grep -o ' - [a-z]*'); \
    echo sysvipc=$(cat /proc/sysvipc/shm | wc -l); \
    echo data > /written-by-ctr && echo wrote=yes";

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')).map(str::trim)).unwrap_or_else(|| panic!("no {key}= in {out}"))
}

fn check_isolation(out: &str, host_name: &str) {
    assert_eq!(field(out, "pid"), "1", "the command is PID 1: {out}");
    assert_eq!(field(out, "host"), host_name, "{out}");
    assert_eq!(field(out, "uid"), "0", "{out}");
    // sh, ps (and the subshell running them): nothing of the host.
    // sh, the $(...) subshell, ps, grep: nothing of the host.
    let n: u32 = field(out, "nprocs").parse().unwrap();
    assert!(n <= 4, "ps shows {n} processes: {out}");
    assert_eq!(field(out, "nets"), "1", "only lo: {out}");
    let flags = u32::from_str_radix(field(out, "loflags").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {out}");
    assert_eq!(field(out, "rootfs"), "- overlay", "/ is the overlay: {out}");
    assert_eq!(field(out, "sysvipc"), "1", "no SysV segment of the host is visible (header line only): {out}");
    assert_eq!(field(out, "wrote"), "yes", "{out}");
}

/// A SysV shared memory segment on the host, removed on drop: the IPC
/// namespace check needs something to hide.
struct HostShm(Option<String>);
impl HostShm {
    fn new() -> HostShm {
        let o = Command::new("ipcmk").args(["-M", "4096"]).output();
        let id = o.ok().filter(|o| o.status.success()).and_then(|o| stdout(&o).split_whitespace().last().map(str::to_owned));
        HostShm(id)
    }
}
impl Drop for HostShm {
    fn drop(&mut self) {
        if let Some(id) = &self.0 {
            let _ = Command::new("ipcrm").args(["-m", id]).status();
        }
    }
}

fn isolation_and_write_layer(rootless: bool, image: &str) {
    let tag = if rootless { "iso-rl" } else { "iso" };
    let ctx = Ctx::new(tag, rootless);
    let _shm = HostShm::new();
    let name = format!("{tag}-{}", rand_u32());
    let (img_args, rootfs): (Vec<String>, Option<TestDir>) = match image {
        "busybox" => {
            let Some(r) = busybox_rootfs(tag, APPLETS) else { return };
            (vec!["--rootfs".into(), r.display().to_string()], Some(r))
        }
        "tar" => {
            let Some(r) = busybox_rootfs(tag, APPLETS) else { return };
            // In the state directory, removed with it.
            let tar = ctx.state.join("image.tar");
            let st = Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&r).arg(".").status().unwrap();
            assert!(st.success());
            let _ = Command::new("chmod").arg("a+r").arg(&tar).status();
            (vec!["--image".into(), tar.display().to_string()], Some(r))
        }
        _ => (vec![], None),
    };
    let mounts = OwnMounts::new(&[Some(ctx.state.as_path()), rootfs.as_deref()].into_iter().flatten().collect::<Vec<_>>());
    let mut args = vec!["run", "--name", &name, "--hostname", "ctr-host"];
    args.extend(img_args.iter().map(String::as_str));
    args.extend(["sh", "-c", PROBE]);
    let out = ctx.ok(&args);
    check_isolation(&out, "ctr-host");
    // The write landed in the write layer only.
    let upper = ctx.container_dir(&name).join("upper/written-by-ctr");
    assert_eq!(std::fs::read_to_string(&upper).unwrap_or_default(), "data\n", "write layer {}", upper.display());
    assert!(!Path::new("/written-by-ctr").exists(), "the host's / was written");
    if let Some(r) = &rootfs {
        assert!(!r.join("written-by-ctr").exists(), "the image was written");
    }
    // A second container does not see the first one's write.
    let mut args2 = vec!["run", "--rm"];
    args2.extend(img_args.iter().map(String::as_str));
    args2.extend(["sh", "-c", "cat /written-by-ctr 2>/dev/null || echo absent"]);
    assert_eq!(ctx.ok(&args2).trim(), "absent");
    let ps = ctx.ok(&["ps", "-a"]);
    assert!(ps.contains(&name) && ps.contains("Exited (0)"), "{ps}");
    ctx.ok(&["rm", &name]);
    assert!(!ctx.container_dir(&name).exists(), "rm left the write layer");
    ctx.assert_empty();
    mounts.assert_unchanged("isolation");
}

#[test]
fn busybox_image_isolation_and_write_layer() {
    require_root!();
    isolation_and_write_layer(false, "busybox");
}

#[test]
fn busybox_tar_image_isolation_rootless() {
    if !can_rootless() {
        return;
    }
    isolation_and_write_layer(true, "tar");
}

#[test]
fn default_image_isolation_and_write_layer() {
    require_root!();
    isolation_and_write_layer(false, "host");
}

#[test]
fn default_image_isolation_rootless() {
    if !can_rootless() {
        return;
    }
    isolation_and_write_layer(true, "host");
}

#[test]
fn default_image_etc_write_stays_in_the_container() {
    require_root!();
    let ctx = Ctx::new("etc", false);
    let name = format!("etc-{}", rand_u32());
    let out = ctx.ok(&["run", "--name", &name, "sh", "-c", "echo changed >> /etc/shells && tail -1 /etc/shells"]);
    assert_eq!(out.trim(), "changed");
    assert!(!std::fs::read_to_string("/etc/shells").unwrap().contains("changed"), "host /etc/shells changed");
    let up = std::fs::read_to_string(ctx.container_dir(&name).join("upper/etc/shells")).unwrap();
    assert!(up.ends_with("changed\n"), "copy-up in the write layer: {up:?}");
    // /etc/hostname is the container's own file (docker's bind mount).
    let out = ctx.ok(&["run", "--rm", "--hostname", "etc-box", "sh", "-c", "echo x >> /etc/hostname; cat /etc/hostname"]);
    assert_eq!(out, "etc-box\nx\n");
    assert!(!std::fs::read_to_string("/etc/hostname").unwrap().contains("etc-box"), "host /etc/hostname changed");
    ctx.ok(&["rm", &name]);
    ctx.assert_empty();
}

fn volumes(rootless: bool) {
    let Some(r) = busybox_rootfs("vol", APPLETS) else { return };
    let ctx = Ctx::new("vol", rootless);
    let rw = ctx.state.join("rw-vol");
    let ro = ctx.state.join("ro-vol");
    for d in [&rw, &ro] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("from-host"), "host\n").unwrap();
        if rootless {
            let _ = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(d).status();
        }
    }
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let vrw = format!("{}:/data", rw.display());
    let vro = format!("{}:/cfg:ro", ro.display());
    let out = ctx.ok(&[
        "run", "--rm", "--rootfs", r.to_str().unwrap(), "-v", &vrw, "-v", &vro, "sh", "-c",
        "cat /data/from-host /cfg/from-host; echo ctr > /data/from-ctr && echo rw-ok; \
         echo x > /cfg/nope 2>/dev/null && echo ro-broken || echo ro-ok",
    ]);
    assert_eq!(out, "host\nhost\nrw-ok\nro-ok\n");
    assert_eq!(std::fs::read_to_string(rw.join("from-ctr")).unwrap(), "ctr\n");
    assert!(!ro.join("nope").exists());
    mounts.assert_unchanged("volumes");
    ctx.assert_empty();
}

#[test]
fn volumes_rw_and_ro() {
    require_root!();
    volumes(false);
}

#[test]
fn volumes_rw_and_ro_rootless() {
    if !can_rootless() {
        return;
    }
    volumes(true);
}

fn ns_inode(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap().to_string_lossy().into_owned()
}

fn detached_lifecycle(rootless: bool) {
    let Some(r) = busybox_rootfs("det", APPLETS) else { return };
    let ctx = Ctx::new("det", rootless);
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let name = format!("det-{}", rand_u32());
    let rootfs = r.to_str().unwrap();
    let out = ctx.ok(&[
        "run", "-d", "--name", &name, "-e", "GREETING=hello", "--rootfs", rootfs, "sh", "-c",
        "echo $GREETING from $$; trap 'echo got TERM; exit 7' TERM; while :; do sleep 0.05; done",
    ]);
    assert_eq!(out.trim(), name, "run -d prints the name");
    // Same name again: refused, and the running one is untouched.
    let dup = ctx.run(&["run", "--name", &name, "--rootfs", rootfs, "true"]);
    assert_eq!(dup.status.code(), Some(125));
    assert!(stderr(&dup).contains("already in use"), "{}", stderr(&dup));
    assert_eq!(stderr(&dup).lines().count(), 1);

    let ps = ctx.ok(&["ps"]);
    let line = ps.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("{name} not in ps: {ps}"));
    assert!(line.contains("Up"), "{line}");
    let pid = line.split_whitespace().nth(1).unwrap().to_owned();

    let t = Instant::now();
    while !ctx.ok(&["logs", &name]).contains("hello from 1") {
        assert!(t.elapsed() < Duration::from_secs(10), "log never showed the greeting");
        std::thread::sleep(Duration::from_millis(20));
    }

    // exec: the same namespaces as PID 1, its env and cwd.
    let ex = ctx.ok(&[
        "exec", &name, "sh", "-c",
        "echo me=$$ env=$GREETING cwd=$(pwd); for k in pid uts ipc net mnt; do echo $k=$(readlink /proc/self/ns/$k); done; cat /proc/1/cmdline | head -c 2",
    ]);
    assert_ne!(field(&ex, "me").split(' ').next(), Some("1"), "exec is not PID 1: {ex}");
    assert!(ex.contains("env=hello cwd=/"), "{ex}");
    for k in ["pid", "uts", "ipc", "net", "mnt"] {
        assert_eq!(field(&ex, k), ns_inode(&pid, k), "exec's {k} namespace differs from the container's PID 1");
        assert_ne!(field(&ex, k), ns_inode("self", k), "{k} namespace is the host's");
    }
    assert!(ex.ends_with("sh"), "{ex}");
    let code = ctx.run(&["exec", &name, "sh", "-c", "exit 4"]).status.code();
    assert_eq!(code, Some(4), "exec's exit status");
    // A signal death is 128+N (PID 1 itself cannot be SIGKILLed from inside).
    let code = ctx.run(&["exec", &name, "sh", "-c", "kill -9 $$"]).status.code();
    assert_eq!(code, Some(137), "exec's signal status");

    // exec -t gives the command a terminal and a TERM, as run -t does.
    let o = ctx.run(&["exec", "-t", &name, "sh", "-c", "test -t 1 && echo tty; echo term=$TERM"]);
    assert_eq!(stdout(&o).replace('\r', ""), "tty\nterm=xterm\n", "{}", stderr(&o));
    let o = ctx.run(&["exec", "-t", "-e", "TERM=vt100", &name, "sh", "-c", "echo term=$TERM"]);
    assert_eq!(stdout(&o).replace('\r', ""), "term=vt100\n", "{}", stderr(&o));
    assert_eq!(ctx.ok(&["exec", &name, "sh", "-c", "echo term=$TERM"]), "term=\n", "no TERM without -t");

    let monitor = {
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(ctx.container_dir(&name).join("state.json")).unwrap()).unwrap();
        rec["supervisor"].as_i64().unwrap() as i32
    };
    ctx.ok(&["stop", "-t", "5", &name]);
    // The -d monitor recorded the exit and ended with the container: no
    // nsrun process lingers (its zombie, if the host's init has not reaped
    // it yet, is init's child, not nsrun's).
    let t = Instant::now();
    while proc_state(monitor).is_some_and(|s| s != 'Z') {
        assert!(t.elapsed() < Duration::from_secs(2), "the -d monitor {monitor} outlived its container");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ps = ctx.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (7)"), "the trap's exit status is recorded: {ps}");
    assert!(ctx.ok(&["logs", &name]).contains("got TERM"));
    assert!(!ctx.ok(&["ps"]).contains(&name));

    let late = ctx.run(&["exec", &name, "true"]);
    assert_ne!(late.status.code(), Some(0));
    assert!(stderr(&late).contains("is not running"), "{}", stderr(&late));
    assert_eq!(stderr(&late).lines().count(), 1);

    ctx.ok(&["rm", &name]);
    ctx.assert_empty();
    mounts.assert_unchanged("detached");
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "PID 1 still exists");
}

#[test]
fn detached_logs_exec_stop_rm() {
    require_root!();
    detached_lifecycle(false);
}

#[test]
fn detached_logs_exec_stop_rm_rootless() {
    if !can_rootless() {
        return;
    }
    detached_lifecycle(true);
}

#[test]
fn rm_force_kills_and_sigkill_after_timeout() {
    require_root!();
    let Some(r) = busybox_rootfs("rmf", APPLETS) else { return };
    let ctx = Ctx::new("rmf", false);
    let rootfs = r.to_str().unwrap();
    // `sleep` as PID 1 has no SIGTERM handler: the kernel drops SIGTERM
    // for a namespace's init, so stop must fall back to SIGKILL.
    ctx.ok(&["run", "-d", "--name", "a", "--rootfs", rootfs, "sleep", "1000"]);
    let t = Instant::now();
    ctx.ok(&["stop", "-t", "1", "a"]);
    assert!(t.elapsed() >= Duration::from_millis(900), "stop did not wait for the grace period");
    assert!(ctx.ok(&["ps", "-a"]).contains("Exited (137)"));
    ctx.ok(&["run", "-d", "--name", "b", "--rootfs", rootfs, "sleep", "1000"]);
    let o = ctx.run(&["rm", "b"]);
    assert_ne!(o.status.code(), Some(0), "rm of a running container must fail without -f");
    assert!(stderr(&o).contains("cannot remove running container"), "{}", stderr(&o));
    ctx.ok(&["rm", "-f", "a", "b"]);
    ctx.assert_empty();
}

#[test]
fn exit_codes_and_bad_input_leave_nothing_behind() {
    require_root!();
    let Some(r) = busybox_rootfs("codes", APPLETS) else { return };
    let ctx = Ctx::new("codes", false);
    let rootfs = r.to_str().unwrap();
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let long_name = "a".repeat(129);
    let code = |args: &[&str]| {
        let o = ctx.run(args);
        (o.status.code(), stderr(&o))
    };
    assert_eq!(code(&["run", "--rm", "--rootfs", rootfs, "sh", "-c", "exit 42"]).0, Some(42));
    // 128+N: PID 1 is immune to its own namespace's SIGKILL, so the shell
    // reports its child's death.
    assert_eq!(code(&["run", "--rm", "--rootfs", rootfs, "sh", "-c", "sh -c 'kill -9 $$'; exit $?"]).0, Some(137));
    assert_eq!(code(&["run", "--rm", "--rootfs", rootfs, "false"]).0, Some(1));
    let bad: &[(&[&str], i32, &str)] = &[
        (&["run", "--rm", "--rootfs", rootfs, "no-such-command"], 127, "executable file not found"),
        (&["run", "--rm", "--rootfs", rootfs, "/etc"], 126, "permission denied"),
        (&["run", "--bogus", "sh"], 125, "unknown flag: --bogus"),
        (&["run", "--rm", "--rootfs", "/nonexistent/rootfs", "sh"], 125, "no such file"),
        (&["run", "--rm", "--image", "/nonexistent.tar", "sh"], 125, "no such file"),
        (&["run", "--rm", "-v", "/nonexistent/src:/x", "--rootfs", rootfs, "sh"], 125, "does not exist"),
        (&["run", "--rm", "--name", "bad/name", "sh"], 125, "invalid container name"),
        (&["run", "--rm", "--net", "bad/net", "sh"], 125, "invalid network"),
        (&["run", "-it", "--rm", "sh"], 125, "not a TTY"),
        // One rule, docker's: 125 for nsrun's own errors, an unknown
        // container included; 126/127 and the command's status otherwise.
        (&["exec", "nope", "sh"], 125, "no such container"),
        (&["logs", "nope"], 125, "no such container"),
        (&["stop", "nope"], 125, "no such container"),
        (&["rm", "nope"], 125, "no such container"),
        (&["rmi", "nope"], 125, "no such image"),
        (&["run", "--rm", "--name", &long_name, "sh"], 125, "too long (129 characters, max 128)"),
        (&["frobnicate"], 125, "unknown command"),
        (&["run", "--rootfs", rootfs, "--image", "/x.tar", "sh"], 125, "cannot be used with"),
        (&["run", "-d", "-t", "--rootfs", rootfs, "sh"], 125, "cannot be used with"),
        (&["stop", "-t", "soon", "x"], 125, "invalid value 'soon'"),
        (&["completion", "tcsh"], 125, "invalid value 'tcsh'"),
        (&["run", "--rm", "--rootfs", rootfs], 125, "requires a command"),
    ];
    for (args, want, text) in bad {
        let (got, err) = code(args);
        assert_eq!(got, Some(*want), "nsrun {args:?}: {err}");
        assert!(err.contains(text), "nsrun {args:?}: expected {text:?} in {err:?}");
        assert_eq!(err.lines().count(), 1, "one-line error for {args:?}: {err:?}");
    }
    // Without --rm a failed start leaves nothing either.
    let (got, _) = code(&["run", "--name", "failed", "--rootfs", rootfs, "no-such-command"]);
    assert_eq!(got, Some(127));
    ctx.assert_empty();
    mounts.assert_unchanged("bad input");
    // Every command's --help lists every option it accepts: each long
    // flag the completion script knows for it appears in its help.
    let bash = ctx.ok(&["completion", "bash"]);
    assert!(bash.contains("complete -F _nsrun") && bash.contains("--security-opt"), "{bash}");
    for sub in [
        "run", "exec", "ps", "logs", "stop", "rm", "images", "rmi", "completion", "import", "commit", "kill", "wait", "start", "restart",
        "inspect", "top", "stats", "prune",
    ] {
        let o = ctx.run(&[sub, "--help"]);
        let help = stdout(&o);
        assert!(o.status.success() && help.contains(&format!("Usage: nsrun {sub}")), "{sub} --help: {help}");
        let case = bash.split(&format!("nsrun__subcmd__{sub})")).nth(1).and_then(|r| r.split("opts=\"").nth(1)).unwrap_or("");
        let opts = case.split('"').next().unwrap_or("");
        assert!(opts.contains("--help"), "no completion entry for {sub}");
        for flag in opts.split_whitespace().filter(|f| f.starts_with("--")) {
            assert!(help.contains(flag), "nsrun {sub} --help lacks {flag}: {help}");
        }
    }
    for (shell, mark) in [("zsh", "#compdef nsrun"), ("fish", "complete -c nsrun")] {
        assert!(ctx.ok(&["completion", shell]).contains(mark), "{shell}");
    }
    assert!(ctx.ok(&["--version"]).starts_with("nsrun "));
}

#[test]
fn signals_are_forwarded_to_pid1() {
    require_root!();
    let Some(r) = busybox_rootfs("sig", APPLETS) else { return };
    let ctx = Ctx::new("sig", false);
    let mut c = ctx.cmd(&[
        "run", "--rm", "--rootfs", r.to_str().unwrap(), "sh", "-c",
        "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut so, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut so, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(9), "{rest}");
    assert_eq!(rest, "got-term\n");
    ctx.assert_empty();
}

#[test]
fn tty_through_a_real_pty() {
    require_root!();
    if !have("script") {
        common::skip("util-linux script not installed");
        return;
    }
    let Some(r) = busybox_rootfs("tty", APPLETS) else { return };
    let ctx = Ctx::new("tty", false);
    // script gives nsrun a real terminal of 33x101; nsrun passes the size
    // to the container's pty; the command's status comes back through both.
    let inner = format!(
        "stty rows 33 cols 101; NSRUN_ROOT={} {} run --rm -it --rootfs {} sh -c 'tty; stty size; test -t 0 && echo stdin-tty; exit 5'",
        ctx.state.display(),
        nsrun_bin().display(),
        r.display()
    );
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    let o = run_with_timeout(c, Duration::from_secs(30));
    let out = stdout(&o).replace('\r', "");
    assert_eq!(o.status.code(), Some(5), "{out} {}", stderr(&o));
    assert!(out.contains("/dev/pts/0\n"), "the command's stdin is the container's pty: {out:?}");
    assert!(out.contains("33 101\n"), "window size passed: {out:?}");
    assert!(out.contains("stdin-tty"), "{out:?}");
    // Without -i, -t works without a terminal (output through the pty).
    let o = ctx.run(&["run", "--rm", "-t", "--rootfs", r.to_str().unwrap(), "sh", "-c", "test -t 1 && echo out-tty"]);
    assert_eq!(stdout(&o).replace('\r', ""), "out-tty\n", "{}", stderr(&o));
    ctx.assert_empty();
}

#[test]
fn bundle_runs_config_json_as_is() {
    require_root!();
    let Some(dir) = busybox_bundle("nsrun-bundle", false) else { return };
    let ctx = Ctx::new("bundle", false);
    let mounts = OwnMounts::new(&[&ctx.state, dir.path()]);
    let out = ctx.ok(&["run", "--rm", "--bundle", dir.to_str().unwrap(), "sh", "-c", "echo $$; hostname; touch /x 2>&1 || true"]);
    // runc spec: hostname "runc", read-only root.
    assert!(out.starts_with("1\nrunc\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    mounts.assert_unchanged("bundle");
    ctx.assert_empty();
}

fn fifty(rootless: bool) {
    let Some(r) = busybox_rootfs("fifty", APPLETS) else { return };
    let ctx = Ctx::new("fifty", rootless);
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let t = Instant::now();
    for i in 0..50 {
        let o = ctx.run(&["run", "--rm", "--rootfs", r.to_str().unwrap(), "true"]);
        assert!(o.status.success(), "container {i}: {}", stderr(&o));
    }
    eprintln!("50 containers ({}) in {:?}", if rootless { "rootless" } else { "root" }, t.elapsed());
    ctx.assert_empty();
    mounts.assert_unchanged("fifty");
    let left = processes_with(&format!("{}", r.display()));
    assert!(left.is_empty(), "processes left: {left:?}");
    let left = processes_with("runc:[");
    assert!(left.iter().all(|p| proc_state(*p) != Some('Z')), "zombie stages left");
}

#[test]
fn fifty_containers_in_a_row_leave_nothing() {
    require_root!();
    fifty(false);
}

#[test]
fn fifty_containers_in_a_row_leave_nothing_rootless() {
    if !can_rootless() {
        return;
    }
    fifty(true);
}

/// Rootless with a subordinate id range: `/etc/subuid` and `/etc/subgid`
/// are replaced, in a private mount namespace of this test only, by files
/// giving `nobody` 65536 ids; nsrun then maps the full range through
/// newuidmap/newgidmap (the host's files are never touched).
#[test]
fn rootless_full_range_through_newuidmap() {
    if !can_rootless() || !have("newuidmap") || !have("unshare") {
        common::skip("needs root, runuser, unshare and uidmap (newuidmap)");
        return;
    }
    let ctx = Ctx::new("subid", true);
    let Some(r) = busybox_rootfs("subid", APPLETS) else { return };
    let dir = ctx.state.join("subid-files");
    std::fs::create_dir_all(&dir).unwrap();
    let (u, g) = (dir.join("subuid"), dir.join("subgid"));
    std::fs::write(&u, "nobody:300000:65536\n").unwrap();
    std::fs::write(&g, "nogroup:300000:65536\nnobody:300000:65536\n").unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).status();
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let run = ctx.cmd(&["run", "--rm", "--rootfs", r.to_str().unwrap(), "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"]);
    // The same command line, under `unshare -m` with the two bind mounts.
    let mut argv: Vec<String> = vec![run.get_program().to_string_lossy().into_owned()];
    argv.extend(run.get_args().map(|a| a.to_string_lossy().into_owned()));
    let script = format!(
        "mount --bind {} /etc/subuid && mount --bind {} /etc/subgid && exec \"$@\"",
        u.display(),
        g.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"]).args(&argv);
    let o = run_with_timeout(cmd, Duration::from_secs(60));
    let out = stdout(&o);
    assert!(o.status.success(), "nsrun with a subordinate range failed: {}{out}", stderr(&o));
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 5, "{out}");
    // uid_map: root is nobody, then 65536 subordinate ids; same for gids.
    assert_eq!(lines[0], ["0", "65534", "1"], "{out}");
    assert_eq!(lines[1], ["1", "300000", "65536"], "{out}");
    assert_eq!(lines[3], ["1", "300000", "65536"], "{out}");
    assert_eq!(lines[4], ["0"], "{out}");
    mounts.assert_unchanged("subordinate range");
    ctx.assert_empty();
}

/// `ps` says "1 minute ago", "2 minutes ago" (not "1 minutes"): a record
/// made a minute and a half old, its exit 65 s ago.
#[test]
fn ps_durations_read_as_english() {
    require_root!();
    let Some(r) = busybox_rootfs("ago", APPLETS) else { return };
    let ctx = Ctx::new("ago", false);
    ctx.ok(&["run", "--name", "old", "--rootfs", r.to_str().unwrap(), "true"]);
    let path = ctx.container_dir("old").join("state.json");
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    rec["created"] = (now - 150).into();
    rec["finished"] = (now - 65).into();
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let ps = ctx.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.starts_with("old ")).unwrap_or_else(|| panic!("{ps}"));
    assert!(line.contains("Exited (0) 1 minute ago"), "{line}");
    assert!(line.contains(" 2 minutes ago"), "{line}");
    ctx.ok(&["rm", "old"]);
    ctx.assert_empty();
}

/// The `--image` unpack cache can be listed and emptied: `nsrun images`
/// shows each unpacked archive with its users, `nsrun rmi` removes one by
/// id or archive path once no container uses it.
#[test]
fn image_cache_is_listed_and_removed() {
    require_root!();
    let Some(r) = busybox_rootfs("cache", APPLETS) else { return };
    let ctx = Ctx::new("cache", false);
    let tar = ctx.state.join("img.tar");
    let st = Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(r.path()).arg(".").status().unwrap();
    assert!(st.success());
    let tar_s = tar.to_str().unwrap();
    assert_eq!(ctx.ok(&["images"]).lines().count(), 1, "a header only at first");
    ctx.ok(&["run", "--name", "user", "--image", tar_s, "true"]);
    ctx.ok(&["run", "--rm", "--image", tar_s, "true"]);
    let list = ctx.ok(&["images"]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "one archive, unpacked once: {list}");
    let f: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!((f[0], f[1], f[4]), (tar_s, "<archive>", "1"), "source, <archive>, id, size, users: {list}");
    let id = f[2].to_owned();
    assert!(ctx.root().join("images").join(&id).join("bin/busybox").exists());
    // In use: kept.
    let o = ctx.run(&["rmi", tar_s]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is used by container user"), "{}", stderr(&o));
    ctx.ok(&["rm", "user"]);
    assert_eq!(ctx.ok(&["rmi", tar_s]).trim(), id, "rmi by archive path prints the id");
    assert_eq!(ctx.ok(&["images"]).lines().count(), 1, "the cache is empty");
    let left: Vec<_> = std::fs::read_dir(ctx.root().join("images")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");
    // By id, too.
    ctx.ok(&["run", "--rm", "--image", tar_s, "true"]);
    let id2 = ctx.ok(&["images"]).lines().nth(1).and_then(|l| l.split_whitespace().nth(2)).unwrap().to_owned();
    assert_eq!(ctx.ok(&["rmi", &id2]).trim(), id2);
    ctx.assert_empty();
}

/// `make run` removes its container when the shell exits (`--rm`).
#[test]
fn make_run_removes_its_container() {
    let o = Command::new("make").args(["-n", "run"]).current_dir(root_dir()).env_remove("MAKEFLAGS").output().expect("make");
    let plan = stdout(&o);
    let line = plan.lines().find(|l| l.contains("nsrun run")).unwrap_or_else(|| panic!("no nsrun run in make -n run: {plan}"));
    assert!(line.split_whitespace().any(|w| w == "--rm"), "{line}");
}

/// `/proc/self/status` lines of a container as a map.
fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {key}: in {out}"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s:?}"))
}

/// Docker's default capability set as a mask: CHOWN DAC_OVERRIDE FOWNER
/// FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT
/// MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_CAPS_MASK: u64 = 0xa80425fb;

const SEC_PROBE: &str = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
    unshare -U true 2>/dev/null; echo unshare=$?; unshare -U true 2>&1 | head -1";

fn security_defaults(rootless: bool) {
    let mut applets = APPLETS.to_vec();
    applets.push("unshare");
    let Some(r) = busybox_rootfs("sec", &applets) else { return };
    let ctx = Ctx::new(if rootless { "sec-rl" } else { "sec" }, rootless);
    let rootfs = r.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm", "--rootfs", rootfs];
        a.extend(extra);
        a.extend(["sh", "-c", SEC_PROBE]);
        ctx.ok(&a)
    };
    // The default: Docker's capabilities in every set but inheritable and
    // ambient, no_new_privs, a seccomp filter that refuses unshare(2)
    // (which the kernel allows anyone for a user namespace) with EPERM.
    let out = run(&[]);
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(hex(&status_field(&out, k)), DOCKER_CAPS_MASK, "{k}: {out}");
    }
    assert_eq!(hex(&status_field(&out, "CapInh")), 0, "{out}");
    assert_eq!(hex(&status_field(&out, "CapAmb")), 0, "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(field(&out, "unshare"), "1", "{out}");
    assert!(out.contains("Operation not permitted"), "EPERM from the filter: {out}");
    // Without the filter the same call works: the filter refused it above.
    let out = run(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(field(&out, "unshare"), "0", "{out}");
    // --cap-add/--cap-drop, short and long names.
    let out = run(&["--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN"]);
    assert_eq!(hex(&status_field(&out, "CapEff")), (DOCKER_CAPS_MASK | 1 << 12) & !1, "{out}");
    let out = run(&["--cap-drop", "ALL", "--security-opt", "no-new-privileges=false"]);
    assert_eq!(hex(&status_field(&out, "CapBnd")), 0, "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "the filter loads without no_new_privs too: {out}");
    // --privileged: every capability nsrun has (this test's bounding set,
    // which a host may have cut), no filter, no no_new_privs.
    let own = hex(&status_field(&std::fs::read_to_string("/proc/self/status").unwrap(), "CapBnd"));
    let out = run(&["--privileged"]);
    assert_eq!(hex(&status_field(&out, "CapEff")), own, "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(field(&out, "unshare"), "0", "{out}");
    // A profile from a file (OCI form): mkdir refused with EPERM, the rest allowed.
    let prof = ctx.state.join("profile.json");
    std::fs::write(&prof, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let _ = Command::new("chmod").arg("a+r").arg(&prof).status();
    let sec = format!("seccomp={}", prof.display());
    let out = ctx.ok(&["run", "--rm", "--rootfs", rootfs, "--security-opt", &sec, "sh", "-c", "touch /t && echo touch=ok; mkdir /d 2>&1; echo mkdir=$?"]);
    assert_eq!(field(&out, "touch"), "ok", "{out}");
    assert_eq!(field(&out, "mkdir"), "1", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    // Bad flags: 125, one line naming the problem, nothing left.
    std::fs::write(&prof, r#"{"defaultAction":"SCMP_ACT_FLY"}"#).unwrap();
    for (args, text) in [
        (vec!["--cap-add", "CAP_FLY"], "unknown capability"),
        (vec!["--security-opt", "label=x"], "invalid --security-opt"),
        (vec!["--security-opt", &sec], "SCMP_ACT_FLY"),
    ] {
        let mut a = vec!["run", "--rm", "--rootfs", rootfs];
        a.extend(args.iter().copied());
        a.push("true");
        let o = ctx.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "{a:?}: {}", stderr(&o));
    }
    // exec gets the container's privileges too (as docker exec).
    let name = format!("sec-{}", rand_u32());
    ctx.ok(&["run", "-d", "--name", &name, "--rootfs", rootfs, "sleep", "30"]);
    let out = ctx.ok(&["exec", &name, "sh", "-c", SEC_PROBE]);
    assert_eq!(hex(&status_field(&out, "CapEff")), DOCKER_CAPS_MASK, "exec: {out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "exec: {out}");
    assert_eq!(field(&out, "unshare"), "1", "exec: {out}");
    ctx.ok(&["rm", "-f", &name]);
    ctx.assert_empty();
}

#[test]
fn docker_default_caps_seccomp_and_no_new_privs() {
    require_root!();
    security_defaults(false);
}

#[test]
fn docker_default_caps_seccomp_and_no_new_privs_rootless() {
    if !can_rootless() {
        return;
    }
    security_defaults(true);
}

/// The host directory of controller `ctrl`'s cgroup of `pid` (v1).
fn host_cgroup(pid: &str, ctrl: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == ctrl).then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {ctrl} line in {text}"));
    PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{rel}"))
}

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_owned()
}

#[test]
fn limits_are_in_the_cgroup_and_enforced() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() || !Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        common::skip("needs the cgroup v1 pids and memory hierarchies (this test reads their files)");
        return;
    }
    let Some(r) = busybox_rootfs("lim", &[APPLETS, &["seq", "tail"]].concat()) else { return };
    let ctx = Ctx::new("lim", false);
    let rootfs = r.to_str().unwrap();
    // Read back from the host, on a running container.
    let name = format!("lim-{}", rand_u32());
    ctx.ok(&[
        "run", "-d", "--name", &name, "--rootfs", rootfs, "--pids-limit", "20", "--memory", "64m", "--memory-swap", "128m",
        "--cpus", "0.5", "--cpu-shares", "512", "sleep", "30",
    ]);
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(ctx.container_dir(&name).join("state.json")).unwrap()).unwrap();
    let pid = rec["pid"].to_string();
    let pids = host_cgroup(&pid, "pids");
    assert!(pids.to_string_lossy().starts_with("/sys/fs/cgroup/pids/nsrun-"), "{}", pids.display());
    assert_eq!(read_trim(&pids.join("pids.max")), "20");
    let mem = host_cgroup(&pid, "memory");
    assert_eq!(read_trim(&mem.join("memory.limit_in_bytes")), (64u64 << 20).to_string());
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read_trim(&mem.join("memory.memsw.limit_in_bytes")), (128u64 << 20).to_string());
    }
    let cpu = host_cgroup(&pid, "cpu");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read_trim(&cpu.join("cpu.shares")), "512");
    // exec'd processes land in the same cgroup.
    let inside = ctx.ok(&["exec", &name, "cat", "/proc/self/cgroup"]);
    assert!(inside.lines().any(|l| l.contains(":pids:/")), "cgroup namespace rooted at the container's cgroup: {inside}");
    ctx.ok(&["rm", "-f", &name]);
    assert!(!pids.exists() && !mem.exists() && !cpu.exists(), "rm left the cgroup {}", pids.display());
    // From inside: the container's own cgroup files (its cgroup namespace
    // is rooted there), then a bounded fork loop. The outer shell checks
    // pids.max is 20 before it starts any fork (or exits 99): the loop
    // only ever runs inside the limit. The inner shell dies at the limit
    // (busybox sh exits on a failed fork), leaving max-1 processes.
    let out = ctx.run(&[
        "run", "--rm", "--rootfs", rootfs, "--pids-limit", "20", "sh", "-c",
        "read m < /sys/fs/cgroup/pids/pids.max; [ \"$m\" = 20 ] || exit 99; \
         sh -c 'i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); done'; \
         read c < /sys/fs/cgroup/pids/pids.current; echo max=$m current=$c",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "max=20 current=19", "{}", stderr(&out));
    assert!(stderr(&out).contains("can't fork"), "the fork was refused: {}", stderr(&out));
    assert!(Command::new("true").status().unwrap().success(), "the host can still fork");
    // A memory hog is OOM-killed inside its limit: tail keeps 150 MB.
    // The OOM killer picks its victim in the cgroup: usually tail (hog=137),
    // now and then the shell, PID 1 (then the container's status is 137).
    let o = ctx.run(&[
        "run", "--rm", "--rootfs", rootfs, "--memory", "32m", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; head -c 200000000 /dev/zero | tail -c 150000000 >/dev/null; echo hog=$?",
    ]);
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some("33554432"), "{out}{}", stderr(&o));
    match o.status.code() {
        Some(0) => assert_eq!(field(&out, "hog"), "137", "SIGKILL by the OOM killer: {out}"),
        Some(137) => assert!(!out.contains("hog="), "PID 1 killed, nothing after: {out}"),
        other => panic!("want the hog or PID 1 OOM-killed, got status {other:?}: {out}{}", stderr(&o)),
    }
    // Bad values: 125, nothing created.
    for (args, text) in [
        (vec!["--memory", "lots"], "invalid size"),
        (vec!["--memory", "1m"], "minimum memory limit"),
        (vec!["--memory-swap", "1g"], "always set the memory limit"),
        (vec!["--cpus", "0"], "--cpus"),
        (vec!["--ulimit", "nofile=9:3"], "soft limit above"),
    ] {
        let mut a = vec!["run", "--rm", "--rootfs", rootfs];
        a.extend(args);
        a.push("true");
        let o = ctx.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "{a:?}: {}", stderr(&o));
    }
    ctx.assert_empty();
}

/// A rootfs with users and groups of its own (not the host's).
fn rootfs_with_users(tag: &str) -> Option<TestDir> {
    let r = busybox_rootfs(tag, &[APPLETS, &["ulimit", "env"]].concat())?;
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1234:Alice:/home/alice:/bin/sh\n").unwrap();
    std::fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1234:\nstaff:x:50:alice\n").unwrap();
    Some(r)
}

fn identity_and_mounts(rootless: bool) {
    let tag = if rootless { "ident-rl" } else { "ident" };
    let Some(r) = rootfs_with_users(tag) else { return };
    let ctx = Ctx::new(tag, rootless);
    let rootfs = r.to_str().unwrap();
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let run = |extra: &[&str], script: &str| {
        let mut a = vec!["run", "--rm", "--rootfs", rootfs];
        a.extend(extra);
        a.extend(["sh", "-c", script]);
        ctx.ok(&a)
    };
    // -u by name (the image's passwd/group, never the host's), by number, -w made.
    // Rootless without a subordinate id range (as here) maps one id:
    // other users are refused up front, as docker rootless needs subuids.
    if rootless {
        let o = ctx.run(&["run", "--rm", "--rootfs", rootfs, "-u", "alice", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("user 1234 is not mapped"), "{}", stderr(&o));
        let out = run(&["-w", "/work/dir"], "echo pwd=$(pwd)");
        assert_eq!(field(&out, "pwd"), "/work/dir", "{out}");
    } else {
        let out = run(&["-u", "alice", "-w", "/work/dir"], "echo id=$(id -u):$(id -g):$(id -G); echo pwd=$(pwd); echo home=$HOME");
        assert_eq!(field(&out, "id"), "1234:1234:1234 50", "primary and supplementary groups: {out}");
        assert_eq!(field(&out, "pwd"), "/work/dir", "{out}");
        assert_eq!(field(&out, "home"), "/home/alice", "{out}");
        let out = run(&["--user", "4321:50"], "echo id=$(id -u):$(id -g)");
        assert_eq!(field(&out, "id"), "4321:50", "{out}");
        let o = ctx.run(&["run", "--rm", "--rootfs", rootfs, "-u", "mallory", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("unable to find user mallory"), "{}", stderr(&o));
    }
    // --read-only, --tmpfs, --mount (bind read-only and tmpfs), --ulimit.
    let src = TestDir::adopt(ctx.state.join("src"));
    std::fs::create_dir_all(src.path()).unwrap();
    std::fs::write(src.join("f"), "from the host\n").unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(src.path()).status();
    let bind = format!("type=bind,source={},target=/b,readonly", src.display());
    let out = run(
        &["--read-only", "--tmpfs", "/scratch:size=1m", "--mount", &bind, "--mount", "type=tmpfs,target=/t2,tmpfs-size=2m", "--ulimit", "nofile=100:200"],
        "touch /x 2>/dev/null; echo root=$?; touch /scratch/y && echo scratch=ok; cat /b/f; touch /b/g 2>/dev/null; echo bind=$?; \
         grep -q ' /t2 tmpfs .*size=2048k' /proc/mounts && echo t2=ok; echo nofile=$(ulimit -n):$(ulimit -Hn)",
    );
    assert_eq!(field(&out, "root"), "1", "read-only root: {out}");
    assert_eq!(field(&out, "scratch"), "ok", "{out}");
    assert!(out.contains("from the host"), "{out}");
    assert_eq!(field(&out, "bind"), "1", "read-only bind: {out}");
    assert_eq!(field(&out, "t2"), "ok", "{out}");
    assert_eq!(field(&out, "nofile"), "100:200", "{out}");
    // --env-file, --entrypoint.
    let envf = ctx.state.join("env.list");
    std::fs::write(&envf, "# comment\nFROM_FILE=yes\nOVERRIDDEN=file\n").unwrap();
    let _ = Command::new("chmod").arg("a+r").arg(&envf).status();
    let out = ctx.ok(&[
        "run", "--rm", "--rootfs", rootfs, "--env-file", envf.to_str().unwrap(), "-e", "OVERRIDDEN=flag", "--entrypoint", "/bin/sh",
        "--", "-c", "echo from_file=$FROM_FILE; echo overridden=$OVERRIDDEN",
    ]);
    assert_eq!(field(&out, "from_file"), "yes", "{out}");
    assert_eq!(field(&out, "overridden"), "flag", "{out}");
    // /etc/hostname, /etc/hosts, /etc/resolv.conf as docker writes them.
    let out = ctx.ok(&["run", "--rm", "--rootfs", rootfs, "--hostname", "box", "sh", "-c", "cat /etc/hostname; cat /etc/hosts; echo ns=$(grep -c ^nameserver /etc/resolv.conf)"]);
    assert!(out.starts_with("box\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), "{out}");
    assert_ne!(field(&out, "ns"), "0", "{out}");
    assert!(!out.contains("nameserver 127."), "{out}");
    // --init: PID 1 is the reaper, the command is not; a zombie is reaped;
    // the status and a forwarded signal reach the command.
    let out = run(&["--init"], "echo pid=$$; sh -c 'sleep 0 & exec sleep 1' ; echo zombies=$(ps -o stat | grep -c Z)");
    assert_ne!(field(&out, "pid"), "1", "{out}");
    assert_eq!(field(&out, "zombies"), "0", "{out}");
    let o = ctx.run(&["run", "--rm", "--rootfs", rootfs, "--init", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    // (As root only: runuser, which starts the rootless nsrun, ends its
    // session on SIGTERM instead of passing it on.)
    if !rootless {
        let mut c = ctx.cmd(&["run", "--rm", "--rootfs", rootfs, "--init", "sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 1; done"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
        assert!(stdout(&o).contains("got-term"), "{}", stdout(&o));
    }
    // Rootless nsrun has no cgroups: limits are refused, not dropped.
    if rootless {
        let o = ctx.run(&["run", "--rm", "--rootfs", rootfs, "--memory", "64m", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("rootless"), "{}", stderr(&o));
    }
    drop(src);
    ctx.assert_empty();
    mounts.assert_unchanged(tag);
}

#[test]
fn user_workdir_mounts_env_file_entrypoint_etc_files_init() {
    require_root!();
    identity_and_mounts(false);
}

#[test]
fn user_workdir_mounts_env_file_entrypoint_etc_files_init_rootless() {
    if !can_rootless() {
        return;
    }
    identity_and_mounts(true);
}

/// A tar archive written by hand (so that hostile names stay as written):
/// entries of (name, type flag, mode, body or link target).
fn tar_bytes(entries: &[(&str, u8, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, mode, body) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let oct = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{:0w$o}\0", v, w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        oct(&mut h, 100, 8, *mode as u64);
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        let is_link = *kind == b'2' || *kind == b'1';
        let size = if *kind == b'0' { body.len() as u64 } else { 0 };
        oct(&mut h, 124, 12, size);
        oct(&mut h, 136, 12, 0);
        h[156] = *kind;
        if is_link {
            h[157..157 + body.len()].copy_from_slice(body);
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        if size > 0 {
            out.extend_from_slice(body);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Two layers of a busybox image: the base (busybox, its applets, users,
/// /etc/gone, /opq/a), then whiteouts of /etc/gone and /opq's old
/// contents, /opq/b and /hello.
fn image_layers(applets: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let bb = std::fs::read("/bin/busybox").unwrap();
    let links: Vec<(String, Vec<u8>)> = applets.iter().map(|a| (format!("bin/{a}"), b"busybox".to_vec())).collect();
    let mut base: Vec<(&str, u8, u32, &[u8])> = vec![
        ("bin/", b'5', 0o755, b""),
        ("bin/busybox", b'0', 0o755, &bb),
        ("etc/", b'5', 0o755, b""),
        ("etc/passwd", b'0', 0o644, b"root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1234::/home/alice:/bin/sh\n"),
        ("etc/group", b'0', 0o644, b"root:x:0:\nalice:x:1234:\n"),
        ("etc/gone", b'0', 0o644, b"x"),
        ("opq/", b'5', 0o755, b""),
        ("opq/a", b'0', 0o644, b"a"),
        ("srv/", b'5', 0o777, b""),
    ];
    for (n, t) in &links {
        base.push((n, b'2', 0o777, t));
    }
    let top = tar_bytes(&[
        ("etc/.wh.gone", b'0', 0o644, b""),
        ("opq/.wh..wh..opq", b'0', 0o644, b""),
        ("opq/b", b'0', 0o644, b"b"),
        ("hello", b'0', 0o644, b"hello\n"),
    ]);
    (gzip(&tar_bytes(&base)), top)
}

const IMAGE_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","GREETING=hi"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo $GREETING from $(pwd) as $(id -u)"],"WorkingDir":"/srv","User":"alice"},"rootfs":{"type":"layers","diff_ids":[]}}"#;

/// An OCI image layout and a docker-archive of the same two layers.
fn oci_and_docker_archives(dir: &Path, applets: &[&str]) -> (PathBuf, PathBuf) {
    let (l1, l2) = image_layers(applets);
    let (d1, d2, dc) = (sha256(&l1), sha256(&l2), sha256(IMAGE_CONFIG.as_bytes()));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{dc}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{d1}","size":{}}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{d2}","size":{}}}]}}"#,
        IMAGE_CONFIG.len(), l1.len(), l2.len()
    );
    let dm = sha256(manifest.as_bytes());
    let index = format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{dm}","size":{}}}]}}"#, manifest.len());
    let (p1, p2, pc, pm) = (format!("blobs/sha256/{d1}"), format!("blobs/sha256/{d2}"), format!("blobs/sha256/{dc}"), format!("blobs/sha256/{dm}"));
    let oci = tar_bytes(&[
        ("oci-layout", b'0', 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", b'0', 0o644, index.as_bytes()),
        ("blobs/", b'5', 0o755, b""),
        ("blobs/sha256/", b'5', 0o755, b""),
        (&p1, b'0', 0o644, &l1),
        (&p2, b'0', 0o644, &l2),
        (&pc, b'0', 0o644, IMAGE_CONFIG.as_bytes()),
        (&pm, b'0', 0o644, manifest.as_bytes()),
    ]);
    let dmanifest = format!(r#"[{{"Config":"{dc}.json","RepoTags":["bb:latest"],"Layers":["{d1}/layer.tar","{d2}/layer.tar"]}}]"#);
    let (q1, q2, qc) = (format!("{d1}/layer.tar"), format!("{d2}/layer.tar"), format!("{dc}.json"));
    let docker = tar_bytes(&[
        ("manifest.json", b'0', 0o644, dmanifest.as_bytes()),
        (&qc, b'0', 0o644, IMAGE_CONFIG.as_bytes()),
        (&q1, b'0', 0o644, &l1),
        (&q2, b'0', 0o644, &l2),
    ]);
    let (po, pd) = (dir.join("oci.tar"), dir.join("docker.tar"));
    std::fs::write(&po, oci).unwrap();
    std::fs::write(&pd, docker).unwrap();
    let _ = Command::new("chmod").arg("a+r").arg(&po).arg(&pd).status();
    (po, pd)
}

fn count_dir(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

fn images_by_name(rootless: bool) {
    if !Path::new("/bin/busybox").exists() {
        common::skip("busybox-static not installed");
        return;
    }
    let tag = if rootless { "img-rl" } else { "img" };
    let ctx = Ctx::new(tag, rootless);
    let mounts = OwnMounts::new(&[&ctx.state]);
    let (oci, docker) = oci_and_docker_archives(&ctx.state, &[APPLETS, &["env"]].concat());
    let store = ctx.root().join("store");
    assert!(ctx.ok(&["import", oci.to_str().unwrap(), "bb-oci"]).contains("Loaded image: bb-oci:latest"));
    assert!(ctx.ok(&["import", docker.to_str().unwrap(), "bb-docker:v1"]).contains("bb-docker:v1"));
    assert_eq!(count_dir(&store.join("layers")), 2, "the same two layers, unpacked once, shared");
    let list = ctx.ok(&["images"]);
    assert!(list.contains("bb-oci") && list.contains("bb-docker") && list.contains("v1"), "{list}");
    // The image's config: Entrypoint + Cmd, Env, WorkingDir, User (as root:
    // rootless maps one id, so the user is overridden there).
    let user = if rootless { vec!["-u", "0"] } else { vec![] };
    let mut a = vec!["run", "--rm"];
    a.extend(&user);
    a.push("bb-oci");
    let want = if rootless { "hi from /srv as 0" } else { "hi from /srv as 1234" };
    assert_eq!(ctx.ok(&a).trim(), want);
    // A command replaces Cmd (the entrypoint stays: sh -c); -e over Env; the whiteouts.
    let mut a = vec!["run", "--rm", "-e", "GREETING=yo"];
    a.extend(&user);
    a.extend(["bb-docker:v1", "echo $GREETING; cat /hello; ls /opq; test -e /etc/gone || echo gone-is-gone"]);
    assert_eq!(ctx.ok(&a), "yo\nhello\nb\ngone-is-gone\n");
    // --entrypoint drops the image's Cmd; --image NAME works too.
    let out = ctx.ok(&["run", "--rm", "-u", "0", "--entrypoint", "/bin/echo", "--image", "bb-oci", "plain"]);
    assert_eq!(out.trim(), "plain");
    // rmi refused while a container uses the image; commit round-trip.
    ctx.ok(&["run", "--name", "c1", "-u", "0", "bb-oci", "echo committed > /new; rm /hello"]);
    // Both archives hold the same config: one image, two names. Removing
    // one name only untags; the last name of a used image is kept.
    assert!(ctx.ok(&["rmi", "bb-docker:v1"]).contains("Untagged: bb-docker:v1"));
    let o = ctx.run(&["rmi", "bb-oci"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("is used by container c1"), "{}", stderr(&o));
    ctx.ok(&["commit", "c1", "bb-new:v2"]);
    ctx.ok(&["rm", "c1"]);
    let out = ctx.ok(&["run", "--rm", "-u", "0", "bb-new:v2", "cat /new; test -e /hello || echo hello-removed"]);
    assert_eq!(out, "committed\nhello-removed\n");
    assert_eq!(count_dir(&store.join("layers")), 3, "commit added one layer");
    for n in ["bb-new:v2", "bb-oci"] {
        ctx.ok(&["rmi", n]);
    }
    assert_eq!(count_dir(&store.join("layers")), 0, "rmi of the last user removed the layers");
    assert_eq!(ctx.ok(&["images"]).lines().count(), 1);
    ctx.assert_empty();
    mounts.assert_unchanged(tag);
}

#[test]
fn images_import_oci_and_docker_archive_run_commit_rmi() {
    require_root!();
    images_by_name(false);
}

#[test]
fn images_import_oci_and_docker_archive_run_commit_rmi_rootless() {
    if !can_rootless() {
        return;
    }
    images_by_name(true);
}

fn hostile_archives(rootless: bool) {
    let tag = if rootless { "hostile-rl" } else { "hostile" };
    let ctx = Ctx::new(tag, rootless);
    let store = ctx.root().join("store");
    // A directory next to the store that an escape would write into.
    let victim = ctx.state.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let _ = Command::new("chmod").arg("777").arg(&victim).status();
    let v = victim.to_str().unwrap().to_owned();
    let good = tar_bytes(&[("ok", b'0', 0o644, b"fine")]);
    let mut truncated = gzip(&tar_bytes(&[("big", b'0', 0o644, &vec![7u8; 100_000])]));
    truncated.truncate(truncated.len() / 2);
    let docker_with_layer = |layer: &[u8]| {
        let m = r#"[{"Config":"c.json","RepoTags":[],"Layers":["good/layer.tar","bad/layer.tar"]}]"#;
        tar_bytes(&[("manifest.json", b'0', 0o644, m.as_bytes()), ("c.json", b'0', 0o644, b"{}"), ("good/layer.tar", b'0', 0o644, &good), ("bad/layer.tar", b'0', 0o644, layer)])
    };
    let escape = format!("../../../../../../../..{v}/dotdot");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", tar_bytes(&[("ok", b'0', 0o644, b"x"), (&escape, b'0', 0o644, b"pwned")]), "'..' component"),
        ("symlink", tar_bytes(&[("a", b'2', 0o777, v.as_bytes()), ("a/through-link", b'0', 0o644, b"pwned")]), "goes through the symlink"),
        ("hardlink", tar_bytes(&[("h", b'1', 0o644, format!("..{v}/x").as_bytes())]), "'..' component"),
        ("not-a-tar", docker_with_layer(&[0x42u8; 3000]), "layer 2"),
        ("truncated-gzip", docker_with_layer(&truncated), "layer 2"),
        ("manifest-escape", tar_bytes(&[("manifest.json", b'0', 0o644, br#"[{"Config":"../../../../etc/passwd","Layers":[]}]"#)]), "'..' component"),
    ];
    let mut cases = cases;
    if rootless {
        cases.push(("device", tar_bytes(&[("null", b'3', 0o666, b"")]), "cannot create device nodes"));
    }
    for (what, bytes, text) in cases {
        let p = ctx.state.join(format!("{what}.tar"));
        std::fs::write(&p, bytes).unwrap();
        let _ = Command::new("chmod").arg("a+r").arg(&p).status();
        let o = ctx.run(&["import", p.to_str().unwrap(), what]);
        assert_eq!(o.status.code(), Some(125), "{what}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(text), "{what}: expected {text:?} in {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{what}: one line: {}", stderr(&o));
        assert_eq!(count_dir(&victim), 0, "{what}: written outside the store");
        assert_eq!(count_dir(&store.join("layers")), 0, "{what}: a layer was left");
        assert_eq!(count_dir(&store.join("images")), 0, "{what}: an image was left");
        assert_eq!(count_dir(&store.join("tmp")), 0, "{what}: a temporary directory was left");
        assert!(!ctx.ok(&["images"]).contains(what), "{what}: listed");
    }
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    require_root!();
    hostile_archives(false);
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing_rootless() {
    if !can_rootless() {
        return;
    }
    hostile_archives(true);
}

fn lifecycle_commands(rootless: bool) {
    let tag = if rootless { "life-rl" } else { "life" };
    let Some(r) = busybox_rootfs(tag, APPLETS) else { return };
    let ctx = Ctx::new(tag, rootless);
    let rootfs = r.to_str().unwrap();
    let mounts = OwnMounts::new(&[&ctx.state, r.path()]);
    let name = format!("{tag}-{}", rand_u32());
    let script = "echo one; echo two; echo three; echo run >> /runs; trap 'exit 3' TERM; while :; do sleep 1; done";
    ctx.ok(&["run", "-d", "--name", &name, "--rootfs", rootfs, "sh", "-c", script]);
    // logs --tail, -f (ends when the container does).
    let t = Instant::now();
    while !ctx.ok(&["logs", &name]).contains("three") {
        assert!(t.elapsed() < Duration::from_secs(10), "no output");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ctx.ok(&["logs", "--tail", "2", &name]), "two\nthree\n");
    // top: PID 1's command line among the container's processes.
    assert!(ctx.ok(&["top", &name]).contains("echo one"), "top");
    // ps --format: json and a template.
    let line = ctx.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!((v["Name"].as_str(), v["State"].as_str()), (Some(name.as_str()), Some("running")), "{line}");
    assert_eq!(ctx.ok(&["ps", "--format", "{{.Name}}:{{.State}}"]).trim(), format!("{name}:running"));
    assert_eq!(ctx.run(&["ps", "--format", "{{.Nope}}"]).status.code(), Some(125));
    // inspect: JSON with state and config.
    let i: serde_json::Value = serde_json::from_str(&ctx.ok(&["inspect", &name])).unwrap();
    assert_eq!(i[0]["State"]["Running"], serde_json::json!(true), "{i}");
    assert_eq!(i[0]["Config"]["Cmd"][0], serde_json::json!("sh"), "{i}");
    assert!(i[0]["Mounts"].as_array().is_some_and(|m| m.iter().any(|m| m["destination"] == "/etc/hosts")), "{i}");
    // kill -s TERM, then wait prints the status (the trap's 3).
    let follow = ctx.cmd(&["logs", "-f", &name]).stdout(Stdio::piped()).spawn().unwrap();
    ctx.ok(&["kill", "-s", "TERM", &name]);
    assert_eq!(ctx.ok(&["wait", &name]).trim(), "3");
    let o = follow.wait_with_output().unwrap();
    assert!(o.status.success() && stdout(&o).ends_with("three\n"), "logs -f ended with the container: {}", stdout(&o));
    // start: the same container again, write layer kept.
    ctx.ok(&["start", &name]);
    let t = Instant::now();
    while ctx.ok(&["exec", &name, "cat", "/runs"]) != "run\nrun\n" {
        assert!(t.elapsed() < Duration::from_secs(10), "second run not seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.ok(&["restart", "-t", "1", &name]);
    assert_eq!(ctx.ok(&["ps", "--format", "{{.State}}"]).trim(), "running");
    // kill (SIGKILL by default), prune removes the stopped container.
    ctx.ok(&["kill", &name]);
    assert_eq!(ctx.ok(&["wait", &name]).trim(), "137");
    if !rootless {
        let s = ctx.ok(&["stats", "--no-stream", &name]);
        assert!(s.starts_with("NAME"), "{s}");
    }
    assert_eq!(ctx.ok(&["prune"]).trim(), name);
    // One rule for every command: 125 for an unknown container.
    for sub in [&["kill", "nope"][..], &["wait", "nope"], &["start", "nope"], &["inspect", "nope"], &["top", "nope"], &["logs", "nope"]] {
        let o = ctx.run(sub);
        assert_eq!(o.status.code(), Some(125), "{sub:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("no such container"), "{sub:?}: {}", stderr(&o));
    }
    ctx.assert_empty();
    mounts.assert_unchanged(tag);
}

#[test]
fn lifecycle_kill_wait_start_restart_inspect_logs_top_ps_format_prune() {
    require_root!();
    lifecycle_commands(false);
}

#[test]
fn lifecycle_kill_wait_start_restart_inspect_logs_top_ps_format_prune_rootless() {
    if !can_rootless() {
        return;
    }
    lifecycle_commands(true);
}

/// A network namespace of this test's own with a veth to the host
/// (10.199.N.1 host side, 10.199.N.2 inside), removed on drop.
struct TestNetns {
    name: String,
    host_if: String,
}

impl TestNetns {
    fn new(n: u32) -> Option<TestNetns> {
        let name = format!("nsrun-t{}", rand_u32());
        let host_if = format!("nsrt{}", n);
        let sh = |c: &str| Command::new("sh").arg("-c").arg(c).status().is_ok_and(|s| s.success());
        let ok = sh(&format!("ip netns add {name}"))
            && sh(&format!("ip link add {host_if} type veth peer name eth0 netns {name}"))
            && sh(&format!("ip addr add 10.199.{n}.1/30 dev {host_if} && ip link set {host_if} up"))
            && sh(&format!("ip -n {name} addr add 10.199.{n}.2/30 dev eth0 && ip -n {name} link set eth0 up && ip -n {name} link set lo up"));
        let t = TestNetns { name, host_if };
        ok.then_some(t)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Commands run on drop (cleanup that must happen when an assertion fails).
struct OnDrop(Vec<Command>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn rules_mentioning(what: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["filter", "nat"] {
        let o = Command::new("iptables").args(["-t", t, "-S"]).output().unwrap();
        out.extend(stdout(&o).lines().filter(|l| l.contains(what)).map(str::to_owned));
    }
    out
}

#[test]
fn bridge_network_ping_port_publish_nat_and_teardown() {
    require_root!();
    if !have("ip") || !have("iptables") || !have("nsenter") {
        common::skip("bridge networking needs ip (iproute2), iptables and nsenter");
        return;
    }
    let Some(r) = busybox_rootfs("net", &[APPLETS, &["ping", "httpd", "wget", "nc"]].concat()) else { return };
    std::fs::create_dir_all(r.join("www/cgi-bin")).unwrap();
    std::fs::write(r.join("www/index.html"), "hello-web\n").unwrap();
    std::fs::write(r.join("www/cgi-bin/peer"), "#!/bin/sh\necho\necho \"$REMOTE_ADDR\"\n").unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rx"]).arg(r.join("www")).status();
    let ctx = Ctx::new("net", false);
    let rootfs = r.to_str().unwrap();
    let n = 1 + rand_u32() % 250;
    let net = format!("t{}", rand_u32());
    let subnet = format!("10.89.{n}.0/24");
    ctx.ok(&["network", "create", "--subnet", &subnet, "--mtu", "9000", &net]);
    assert!(ctx.ok(&["network", "ls"]).contains(&net));
    let port = (20000 + rand_u32() % 20000).to_string();
    let publish = format!("127.0.0.1:{port}:80");
    let web = format!("web-{}", rand_u32());
    let _cleanup = OnDrop(vec![ctx.cmd(&["rm", "-f", &web]), ctx.cmd(&["network", "rm", &net])]);
    ctx.ok(&["run", "-d", "--name", &web, "--net", &net, "-p", &publish, "--rootfs", rootfs, "httpd", "-f", "-p", "80", "-h", "/www"]);
    let i: serde_json::Value = serde_json::from_str(&ctx.ok(&["inspect", &web])).unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(ctx.container_dir(&web).join("state.json")).unwrap()).unwrap();
    let web_ip = rec["network"]["addr"].as_str().unwrap().to_owned();
    let host_if = rec["network"]["host_if"].as_str().unwrap().to_owned();
    assert!(web_ip.starts_with(&format!("10.89.{n}.")), "{web_ip} {i}");
    assert_eq!(ctx.ok(&["exec", &web, "cat", "/sys/class/net/eth0/mtu"]).trim(), "9000", "the network's MTU");
    // A second container: its address in /etc/hosts, ping and wget across the bridge.
    let out = ctx.ok(&[
        "run", "--rm", "--net", &net, "--hostname", "client", "--rootfs", rootfs, "sh", "-c",
        &format!("grep client /etc/hosts; ping -c1 -W3 {web_ip} >/dev/null && echo ping=ok; wget -qO- http://{web_ip}/"),
    ]);
    assert!(out.contains(&format!("10.89.{n}.")) && out.contains("\tclient"), "{out}");
    assert!(out.contains("ping=ok") && out.contains("hello-web"), "{out}");
    // The published port from the host's loopback.
    let t = Instant::now();
    let body = loop {
        let o = Command::new("busybox").args(["wget", "-qO-", &format!("http://127.0.0.1:{port}/")]).output().unwrap();
        if o.status.success() || t.elapsed() > Duration::from_secs(10) {
            break stdout(&o);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body, "hello-web\n");
    // NAT: a server in a network namespace of this test (not the
    // internet) sees the host's address, not the container's.
    if let Some(ns) = TestNetns::new(n) {
        let mut server = Command::new("ip")
            .args(["netns", "exec", &ns.name, "busybox", "httpd", "-f", "-p", "8000", "-h"])
            .arg(r.join("www"))
            .spawn()
            .unwrap();
        let out = ctx.ok(&[
            "run", "--rm", "--net", &net, "--rootfs", rootfs, "sh", "-c",
            &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://10.199.{n}.2:8000/cgi-bin/peer && break; sleep 0.2; done"),
        ]);
        let _ = server.kill();
        let _ = server.wait();
        assert_eq!(out.trim().trim_start_matches("[::ffff:").trim_end_matches(']'), format!("10.199.{n}.1"), "masqueraded to the host's address");
    } else {
        common::skip("ip netns add failed: NAT not checked");
    }
    // Teardown: the container's veth goes with it; network rm takes the
    // bridge and its rules (refused while used).
    assert_eq!(ctx.run(&["network", "rm", &net]).status.code(), Some(125));
    ctx.ok(&["rm", "-f", &web]);
    let t = Instant::now();
    while Path::new("/sys/class/net").join(&host_if).exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "veth {host_if} left");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bridge = serde_json::from_slice::<serde_json::Value>(&std::fs::read(ctx.root().join("networks").join(format!("{net}.json"))).unwrap()).unwrap()["bridge"]
        .as_str()
        .unwrap()
        .to_owned();
    ctx.ok(&["network", "rm", &net]);
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "bridge {bridge} left");
    assert_eq!(rules_mentioning(&bridge), Vec::<String>::new(), "rules left");
    assert_eq!(rules_mentioning(&subnet), Vec::<String>::new(), "rules left");
    // Rootless and bad input: 125.
    for (args, text) in [
        (vec!["run", "--rm", "-p", "80:80", "--rootfs", rootfs, "true"], "-p needs a bridge network"),
        (vec!["run", "--rm", "--net", "nosuchnet", "--rootfs", rootfs, "true"], "network nosuchnet not found"),
    ] {
        let o = ctx.run(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(text), "{args:?}: {}", stderr(&o));
    }
    ctx.assert_empty();
}

fn slirp_network(rootless: bool) {
    if !have("slirp4netns") {
        common::skip("slirp4netns not installed (Debian package slirp4netns)");
        return;
    }
    if rootless {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o006 != 0o006 {
            common::skip("/dev/net/tun is not open to other users on this host: rootless slirp4netns cannot make its tap");
            return;
        }
    }
    let tag = if rootless { "slirp-rl" } else { "slirp" };
    let Some(r) = busybox_rootfs(tag, &[APPLETS, &["httpd"]].concat()) else { return };
    std::fs::create_dir_all(r.join("www")).unwrap();
    std::fs::write(r.join("www/index.html"), "hello-slirp\n").unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(r.join("www")).status();
    let ctx = Ctx::new(tag, rootless);
    let name = format!("{tag}-{}", rand_u32());
    let port = (20000 + rand_u32() % 20000).to_string();
    let publish = format!("127.0.0.1:{port}:80");
    let _cleanup = OnDrop(vec![ctx.cmd(&["rm", "-f", &name])]);
    ctx.ok(&["run", "-d", "--name", &name, "--net", "slirp4netns", "-p", &publish, "--rootfs", r.to_str().unwrap(), "httpd", "-f", "-p", "80", "-h", "/www"]);
    let out = ctx.ok(&["exec", &name, "sh", "-c", "ip -4 addr show tap0; cat /etc/resolv.conf; tail -1 /etc/hosts"]);
    assert!(out.contains("inet 10.0.2.100/24"), "{out}");
    assert!(out.contains("nameserver 10.0.2.3") && out.contains("10.0.2.100\t"), "{out}");
    let t = Instant::now();
    let body = loop {
        let o = Command::new("busybox").args(["wget", "-qO-", &format!("http://127.0.0.1:{port}/")]).output().unwrap();
        if o.status.success() || t.elapsed() > Duration::from_secs(10) {
            break stdout(&o);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body, "hello-slirp\n", "the published port from the host's loopback");
    let sock = ctx.container_dir(&name).join("slirp.sock");
    ctx.ok(&["rm", "-f", &name]);
    let t = Instant::now();
    while !processes_with(&sock.to_string_lossy()).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "slirp4netns outlived its container");
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.assert_empty();
}

#[test]
fn slirp4netns_network_and_published_port() {
    require_root!();
    slirp_network(false);
}

#[test]
fn slirp4netns_network_and_published_port_rootless() {
    if !can_rootless() {
        return;
    }
    slirp_network(true);
}
