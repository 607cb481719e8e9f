//! `--net bridge` (root): a Linux bridge per network (`nsrun0` for the
//! default network `bridge`, 10.88.0.0/16), a veth pair per container
//! (its end renamed `eth0` in the container's network namespace), an
//! address from the network's subnet, a default route through the
//! bridge, and NAT to the outside (iptables MASQUERADE of the subnet
//! leaving by another interface, FORWARD accepted for the bridge).
//! `-p` is a userland proxy (`proxy.rs`), as docker-proxy.
//!
//! Addresses are reserved by creating `<state>/networks/<name>.ips/<addr>`
//! with O_EXCL (the container id inside), released when the container ends;
//! a reservation whose container is gone is taken over.
//!
//! The kernel removes a veth pair with the namespace holding one end, so a
//! container's interfaces go with it; the bridge and the rules go with
//! `nsrun network rm` (the default network's stay, as docker0's).

pub mod proxy;
pub mod slirp;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Context, Fail, Result};

pub const DEFAULT: &str = "bridge";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    /// Of the bridge and every veth on it.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

impl Network {
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) + 1)
    }
    fn cidr(&self) -> String {
        format!("{}/{}", self.subnet, self.prefix)
    }
}

/// A container's place on a network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The host end of the veth pair.
    pub host_if: String,
    pub ports: Vec<proxy::Port>,
}

fn dir(root: &Path) -> PathBuf {
    root.join("networks")
}

fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip").args(args).output().ctx(|| "run ip (iproute2)".to_owned())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(Fail::new(125, format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())))
    }
}

fn iptables(args: &[&str]) -> bool {
    Command::new("iptables").args(args).output().is_ok_and(|o| o.status.success())
}

/// Add a rule unless present (`-C` first).
fn rule(table: &str, chain: &str, spec: &[&str]) -> Result<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend(spec);
    if iptables(&check) {
        return Ok(());
    }
    let mut add = vec!["-t", table, "-A", chain];
    add.extend(spec);
    if iptables(&add) {
        Ok(())
    } else {
        Err(Fail::new(125, format!("iptables {}: failed", add.join(" "))))
    }
}

fn nat_rules(n: &Network) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let c = "nsrun network";
    vec![
        ("nat", "POSTROUTING", vec!["-s".into(), n.cidr(), "!".into(), "-o".into(), n.bridge.clone(), "-m".into(), "comment".into(), "--comment".into(), c.into(), "-j".into(), "MASQUERADE".into()]),
        ("filter", "FORWARD", vec!["-i".into(), n.bridge.clone(), "-m".into(), "comment".into(), "--comment".into(), c.into(), "-j".into(), "ACCEPT".into()]),
        ("filter", "FORWARD", vec!["-o".into(), n.bridge.clone(), "-m".into(), "comment".into(), "--comment".into(), c.into(), "-j".into(), "ACCEPT".into()]),
    ]
}

fn load(root: &Path, name: &str) -> Option<Network> {
    std::fs::read(dir(root).join(format!("{name}.json"))).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// `a.b.c.d/n` with n in 8..=30.
fn parse_subnet(s: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Fail::new(125, format!("invalid subnet {s:?}: use A.B.C.D/N with N from 8 to 30"));
    let (a, n) = s.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let n: u8 = n.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&n) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - n);
    Ok((Ipv4Addr::from(u32::from(a) & mask), n))
}

pub fn create(root: &Path, name: &str, subnet: &str, mtu: u32) -> Result<Network> {
    if !(68..=65535).contains(&mtu) {
        return Err(Fail::new(125, format!("invalid MTU {mtu}: 68 to 65535")));
    }
    crate::cli::check_name(name)?;
    if load(root, name).is_some() {
        return Err(Fail::new(125, format!("network {name} already exists")));
    }
    let (subnet, prefix) = parse_subnet(subnet)?;
    let bridge = if name == DEFAULT { "nsrun0".to_owned() } else { format!("nsr-{}", &crate::images::sha256_hex(name.as_bytes())[..10]) };
    let n = Network { name: name.to_owned(), bridge, subnet, prefix, mtu };
    crate::state::mkdir_p(&dir(root))?;
    let p = dir(root).join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(&n).unwrap_or_default()).ctx(|| format!("write {}", p.display()))?;
    Ok(n)
}

/// The network, its bridge up with its rules (made on first use).
pub fn ensure(root: &Path, name: &str) -> Result<Network> {
    let n = match load(root, name) {
        Some(n) => n,
        None if name == DEFAULT => create(root, DEFAULT, "10.88.0.0/16", 1500)?,
        None => return Err(Fail::new(125, format!("network {name} not found (nsrun network create {name})"))),
    };
    if !Path::new("/sys/class/net").join(&n.bridge).exists() {
        // Another nsrun may be making it at the same time: EEXIST is fine.
        let mtu = n.mtu.to_string();
        let _ = ip(&["link", "add", &n.bridge, "mtu", &mtu, "type", "bridge"]);
        let gw = format!("{}/{}", n.gateway(), n.prefix);
        let _ = ip(&["addr", "add", &gw, "dev", &n.bridge]);
        ip(&["link", "set", &n.bridge, "up"])?;
    }
    for (t, c, spec) in nat_rules(&n) {
        rule(t, c, &spec.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    // NAT to the outside needs forwarding; nsrun does not change the
    // host's sysctls (docker does): it says so.
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0") {
        eprintln!("nsrun: warning: net.ipv4.ip_forward is 0: containers of {} reach each other and the host only", n.name);
    }
    Ok(n)
}

pub fn remove(root: &Path, name: &str, in_use: impl Fn(&str) -> Vec<String>) -> Result<()> {
    let n = load(root, name).ok_or_else(|| Fail::new(125, format!("network {name} not found")))?;
    let users = in_use(name);
    if !users.is_empty() {
        return Err(Fail::new(125, format!("network {name} is used by container {}", users.join(", "))));
    }
    for (t, c, spec) in nat_rules(&n) {
        let mut del = vec!["-t", t, "-D", c];
        del.extend(spec.iter().map(String::as_str));
        while iptables(&del) {}
    }
    if Path::new("/sys/class/net").join(&n.bridge).exists() {
        ip(&["link", "del", &n.bridge])?;
    }
    let _ = std::fs::remove_dir_all(dir(root).join(format!("{name}.ips")));
    std::fs::remove_file(dir(root).join(format!("{name}.json"))).ctx(|| format!("remove network {name}"))
}

pub fn list(root: &Path) -> Vec<Network> {
    let mut v: Vec<Network> = std::fs::read_dir(dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Reserve the lowest free address of `n` for container `id`.
pub fn allocate(root: &Path, n: &Network, id: &str) -> Result<Ipv4Addr> {
    let ips = dir(root).join(format!("{}.ips", n.name));
    crate::state::mkdir_p(&ips)?;
    let first = u32::from(n.gateway()) + 1;
    let last = u32::from(n.subnet) + (1u32 << (32 - n.prefix)) - 2;
    let containers = crate::state::containers(root);
    for a in first..=last {
        let addr = Ipv4Addr::from(a);
        let p = ips.join(addr.to_string());
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(id.as_bytes()).ctx(|| format!("write {}", p.display()))?;
                return Ok(addr);
            }
            Err(_) => {
                // Taken over when its container is gone.
                let owner = std::fs::read_to_string(&p).unwrap_or_default();
                let alive = crate::state::list(root).iter().any(|(d, r)| r.id == owner && d.starts_with(&containers));
                if !alive && !owner.is_empty() && owner != id {
                    let _ = std::fs::remove_file(&p);
                    if std::fs::OpenOptions::new().write(true).create_new(true).open(&p).and_then(|mut f| std::io::Write::write_all(&mut f, id.as_bytes())).is_ok() {
                        return Ok(addr);
                    }
                }
            }
        }
    }
    Err(Fail::new(125, format!("network {}: no free address", n.name)))
}

pub fn release(root: &Path, a: &Attachment) {
    let _ = std::fs::remove_file(dir(root).join(format!("{}.ips", a.network)).join(a.addr.to_string()));
}

/// Plug container `pid` (host pid of its PID 1, whose network namespace
/// is fresh) into the bridge: veth pair, `eth0` inside with the address
/// and the default route.
pub fn attach(pid: i32, n: &Network, a: &Attachment) -> Result<()> {
    let ns = format!("/proc/{pid}/ns/net");
    let pid_s = pid.to_string();
    let mtu = n.mtu.to_string();
    ip(&["link", "add", &a.host_if, "mtu", &mtu, "type", "veth", "peer", "name", "eth0", "mtu", &mtu, "netns", &pid_s])?;
    ip(&["link", "set", &a.host_if, "master", &n.bridge, "up"])?;
    let inside = |args: &[&str]| -> Result<()> {
        let o = Command::new("nsenter").arg(format!("--net={ns}")).arg("ip").args(args).output().ctx(|| "run nsenter".to_owned())?;
        if o.status.success() {
            Ok(())
        } else {
            Err(Fail::new(125, format!("ip {} in the container: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())))
        }
    };
    let cidr = format!("{}/{}", a.addr, a.prefix);
    inside(&["addr", "add", &cidr, "dev", "eth0"])?;
    inside(&["link", "set", "eth0", "up"])?;
    inside(&["route", "add", "default", "via", &a.gateway.to_string()])?;
    Ok(())
}
