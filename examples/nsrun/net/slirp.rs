//! `--net slirp4netns` (rootless too, as docker rootless and podman): the
//! container's network namespace gets a tap device from slirp4netns, a
//! user-mode TCP/IP stack in the supervising process's tree (10.0.2.100,
//! gateway 10.0.2.2, DNS 10.0.2.3); `-p` is slirp4netns's `add_hostfwd`
//! through its API socket. slirp4netns ends with the container (its exit
//! fd is held by the supervisor only).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::proxy::Port;
use crate::{Context, Fail, Result};

pub const ADDR: &str = "10.0.2.100";

/// A running slirp4netns; dropping it ends it.
pub struct Slirp {
    child: Child,
    _exit_w: OwnedFd,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start slirp4netns for the namespaces of `pid`, wait until it has
/// configured `tap0`, then publish `ports`.
pub fn start(pid: i32, dir: &Path, ports: &[Port]) -> Result<Slirp> {
    let (ready_r, ready_w) = nix::unistd::pipe().ctx(|| "pipe".to_owned())?;
    let (exit_r, exit_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".to_owned())?;
    // The two fds slirp4netns keeps: without close-on-exec.
    let _ = nix::fcntl::fcntl(&exit_r, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
    let _ = nix::fcntl::fcntl(&ready_r, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    let api = dir.join("slirp.sock");
    let _ = std::fs::remove_file(&api);
    let child = Command::new("slirp4netns")
        .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
        .arg(format!("--api-socket={}", api.display()))
        .arg(pid.to_string())
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Fail::new(125, format!("start slirp4netns (Debian package slirp4netns): {e}")))?;
    drop(ready_w);
    drop(exit_r);
    let mut s = Slirp { child, _exit_w: exit_w };
    let mut b = [0u8; 1];
    let mut f = std::fs::File::from(ready_r);
    if f.read(&mut b).ctx(|| "wait for slirp4netns".to_owned())? != 1 {
        let _ = s.child.kill();
        return Err(Fail::new(125, "slirp4netns ended before configuring the network"));
    }
    for p in ports {
        hostfwd(&api, p)?;
    }
    Ok(s)
}

fn hostfwd(api: &Path, p: &Port) -> Result<()> {
    let t = Instant::now();
    let mut sock = loop {
        match UnixStream::connect(api) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Fail::new(125, format!("slirp4netns API {}: {e}", api.display()))),
        }
    };
    let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {
        "proto": if p.udp { "udp" } else { "tcp" }, "host_addr": p.host_ip.to_string(), "host_port": p.host, "guest_port": p.ctr}});
    sock.write_all(req.to_string().as_bytes()).ctx(|| "slirp4netns API".to_owned())?;
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let _ = sock.read_to_string(&mut reply);
    if reply.contains("error") {
        return Err(Fail::new(125, format!("publish port {}: slirp4netns: {}", p.host, reply.trim())));
    }
    Ok(())
}
