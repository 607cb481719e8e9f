//! `-u/--user uid[:gid] | name[:group]` resolved as docker does: names in
//! the image's `/etc/passwd` and `/etc/group` (never the host's), the
//! primary group from passwd when only a user is given, supplementary
//! groups from `/etc/group`; and the per-container `/etc/hostname`,
//! `/etc/hosts`, `/etc/resolv.conf` docker writes and bind-mounts.

use std::path::Path;

use serde_json::{json, Value};

use crate::{Context, Fail, Result};

/// `process.user` for `spec` and the user's home (for HOME).
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional: Vec<u32>,
    pub home: Option<String>,
}

impl User {
    pub fn to_json(&self) -> Value {
        json!({"uid": self.uid, "gid": self.gid, "additionalGids": self.additional})
    }
}

fn entries(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect()
}

/// Resolve `spec` against the image whose root is `root`.
pub fn resolve(spec: &str, root: &Path) -> Result<User> {
    let passwd = entries(&root.join("etc/passwd"));
    let group = entries(&root.join("etc/group"));
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g == Some("") {
        return Err(Fail::new(125, format!("invalid --user {spec:?}: use uid[:gid] or name[:group]")));
    }
    let entry = passwd.iter().find(|f| f[0] == u || u.parse::<u32>().is_ok_and(|n| f[2] == n.to_string()));
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => entry
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| Fail::new(125, format!("unable to find user {u}: no matching entries in passwd file")))?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| Fail::new(125, format!("unable to find group {g}: no matching entries in group file")))?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    // Supplementary groups: those listing the user's name (docker adds
    // them only when no group was given).
    let mut additional = Vec::new();
    if g.is_none() {
        if let Some(name) = entry.map(|f| f[0].clone()) {
            for f in &group {
                if f[3].split(',').any(|m| m == name) {
                    if let Ok(n) = f[2].parse::<u32>() {
                        if n != gid && !additional.contains(&n) {
                            additional.push(n);
                        }
                    }
                }
            }
        }
    }
    let home = entry.and_then(|f| f.get(5).cloned()).filter(|h| !h.is_empty());
    Ok(User { uid, gid, additional, home })
}

/// The files docker writes for a container in its own directory and
/// bind-mounts over the image's: `/etc/hostname`, `/etc/hosts` (loopback
/// names, the container's address when it has one), `/etc/resolv.conf`
/// (the host's, without loopback name servers, which cannot be reached
/// from another network namespace; Google's when none is left, as docker).
/// Returns the OCI mounts.
pub fn etc_files(dir: &Path, hostname: &str, own_net: bool, addr: Option<&str>) -> Result<Vec<Value>> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if let Some(a) = addr {
        hosts.push_str(&format!("{a}\t{hostname}\n"));
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if own_net {
        let mut kept: Vec<&str> = host_resolv
            .lines()
            .filter(|l| {
                let mut w = l.split_whitespace();
                !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
            })
            .collect();
        if !kept.iter().any(|l| l.trim_start().starts_with("nameserver")) {
            kept.extend(["nameserver 8.8.8.8", "nameserver 8.8.4.4"]);
        }
        kept.join("\n") + "\n"
    } else {
        host_resolv
    };
    let mut mounts = Vec::new();
    for (name, body) in [("hostname", format!("{hostname}\n")), ("hosts", hosts), ("resolv.conf", resolv)] {
        let p = dir.join(name);
        std::fs::write(&p, body).ctx(|| format!("write {}", p.display()))?;
        mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": p, "options": ["rbind", "rw"]}));
    }
    Ok(mounts)
}
