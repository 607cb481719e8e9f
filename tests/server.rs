//! The bootstrap server (zygote, issue 19): a threaded host starts
//! containers through a single-threaded server it forked while it still
//! had one thread.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purpose (its parent, the host, is gone too
    // and init reaps it), so look at the state.
    !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn start_host(mode: &str) -> (std::process::Child, BufReader<std::process::ChildStdout>, i32) {
    let bin = c_program("server", &["-pthread"]);
    let mut child = Command::new(bin).args(["8", "25", mode]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: i32 = line.strip_prefix("server ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    (child, out, pid)
}

fn check_run(out: &mut BufReader<std::process::ChildStdout>) {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ok 200/200");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "children []", "the server reaped every stage");
}

/// A C host with 8 threads starts 200 containers (UTS, IPC, mount and PID
/// namespaces, `sh -c 'exit 3'`) concurrently through the server: all get
/// status 3, the server has no child left, and the server is gone once
/// the host exits.
#[test]
fn c_threads_200_containers_then_host_exits() {
    require_root!();
    let (mut child, mut out, server) = start_host("exit");
    check_run(&mut out);
    let st = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "host: {st:?} {err}");
    assert!(gone_within(server, Duration::from_secs(5)), "server {server} outlived its host");
}

/// The same, then the host is SIGKILLed: the server goes too.
#[test]
fn server_dies_when_host_is_killed() {
    require_root!();
    let (mut child, mut out, server) = start_host("hang");
    check_run(&mut out);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(alive(server));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gone_within(server, Duration::from_secs(5)), "server {server} outlived its SIGKILLed host");
}

/// A process that is not the host (this test) connecting to the server's
/// socket is refused (SO_PEERCRED) and nothing is started.
#[test]
fn other_processes_are_refused() {
    require_root!();
    use std::os::linux::net::SocketAddrExt;
    let (mut child, mut out, server) = start_host("hang");
    check_run(&mut out);
    // The abstract name: the server's socket, from /proc/net/unix.
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let prefix = format!("@nsboot-server-{}-", child.id());
    let name = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .find(|n| n.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no socket {prefix}"))
        .trim_start_matches('@')
        .to_owned();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    // The peer is checked at accept, before the request is read (writing
    // one here would race with the server's close: ECONNRESET).
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(answer.first(), Some(&b'R'), "{:?}", String::from_utf8_lossy(&answer));
    let text = String::from_utf8_lossy(&answer[5..]).into_owned();
    assert!(text.contains(&format!("peer pid {} is not the host", std::process::id())), "{text}");
    let children = std::fs::read_to_string(format!("/proc/{server}/task/{server}/children")).unwrap();
    assert_eq!(children.trim(), "", "nothing started");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gone_within(server, Duration::from_secs(5)));
}
