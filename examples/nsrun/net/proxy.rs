//! `-p [IP:]HOST:CONTAINER[/tcp|/udp]`: a userland proxy in the process
//! that supervises the container (as docker-proxy): it listens on the
//! host's port and relays to the container's address. The sockets are
//! bound before the container starts (a taken port fails `run` with 125);
//! the relay threads start after it started (nsrun forks nothing after
//! that point), and end with the supervisor.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::{Fail, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host_ip: Ipv4Addr,
    pub host: u16,
    pub ctr: u16,
    pub udp: bool,
}

pub fn parse(v: &str) -> std::result::Result<Port, String> {
    let bad = || format!("invalid -p {v:?}: use [IP:]HOST:CONTAINER[/tcp|/udp]");
    let (spec, proto) = match v.rsplit_once('/') {
        Some((s, p)) => (s, p),
        None => (v, "tcp"),
    };
    let udp = match proto {
        "tcp" => false,
        "udp" => true,
        _ => return Err(bad()),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (ip, h, c) = match parts.as_slice() {
        [h, c] => (Ipv4Addr::UNSPECIFIED, *h, *c),
        [ip, h, c] => (ip.parse().map_err(|_| bad())?, *h, *c),
        _ => return Err(bad()),
    };
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    Ok(Port { host_ip: ip, host: port(h)?, ctr: port(c)?, udp })
}

pub enum Bound {
    Tcp(TcpListener, SocketAddr),
    Udp(UdpSocket, SocketAddr),
}

/// Bind every published port now.
pub fn bind(ports: &[Port], ctr: Ipv4Addr) -> Result<Vec<Bound>> {
    let mut out = Vec::new();
    for p in ports {
        let at = SocketAddr::from((p.host_ip, p.host));
        let to = SocketAddr::from((ctr, p.ctr));
        let err = |e: std::io::Error| Fail::new(125, format!("publish port {}{}: {e}", p.host, if p.udp { "/udp" } else { "" }));
        out.push(if p.udp { Bound::Udp(UdpSocket::bind(at).map_err(err)?, to) } else { Bound::Tcp(TcpListener::bind(at).map_err(err)?, to) });
    }
    Ok(out)
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 32 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Start relaying (threads; returns at once).
pub fn serve(bound: Vec<Bound>) {
    for b in bound {
        match b {
            Bound::Tcp(l, to) => {
                std::thread::spawn(move || {
                    for c in l.incoming().flatten() {
                        std::thread::spawn(move || {
                            let Ok(up) = TcpStream::connect(to) else { return };
                            let (c2, up2) = match (c.try_clone(), up.try_clone()) {
                                (Ok(a), Ok(b)) => (a, b),
                                _ => return,
                            };
                            let t = std::thread::spawn(move || pipe(c2, up2));
                            pipe(up, c);
                            let _ = t.join();
                        });
                    }
                });
            }
            Bound::Udp(s, to) => {
                let s = Arc::new(s);
                let peers: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok((n, from)) = s.recv_from(&mut buf) {
                        let up = {
                            let mut m = peers.lock().unwrap_or_else(|e| e.into_inner());
                            if let Some(u) = m.get(&from) {
                                u.clone()
                            } else {
                                let Ok(u) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else { continue };
                                if u.connect(to).is_err() {
                                    continue;
                                }
                                let u = Arc::new(u);
                                m.insert(from, u.clone());
                                let (back, reply) = (s.clone(), u.clone());
                                std::thread::spawn(move || {
                                    let mut b = [0u8; 65536];
                                    while let Ok(n) = reply.recv(&mut b) {
                                        let _ = back.send_to(&b[..n], from);
                                    }
                                });
                                u
                            }
                        };
                        let _ = up.send(&buf[..n]);
                    }
                });
            }
        }
    }
}
