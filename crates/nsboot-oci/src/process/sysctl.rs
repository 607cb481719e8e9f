//! `linux.sysctl`: only sysctls that belong to a namespace the container
//! has of its own, with runc's rules (libcontainer/configs/validate):
//!
//! - `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`,
//!   `kernel.shmall`, `kernel.shmmax`, `kernel.shmmni`,
//!   `kernel.shm_rmid_forced` and `fs.mqueue.*` need an `ipc` namespace;
//! - `net.*` needs a `network` namespace that is not the host's (a
//!   namespace joined by path is compared with the caller's own);
//! - `kernel.domainname` needs a `uts` namespace; `kernel.hostname` is
//!   refused (it conflicts with the `hostname` field, as in runc);
//! - anything else is refused.
//!
//! A name may also be written with '/' (`net/ipv4/conf/eth0.100/forwarding`),
//! as runc accepts.
//!
//! Values are written to `/proc/sys/<name with . as />` in the
//! container, after the rootfs is ready (its /proc is the container's).

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{step, ConfigError, OciError, Result};

const IPC_NAMES: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// One checked sysctl, its /proc/sys path built ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    pub name: String,
    pub path: CString,
    pub value: String,
}

fn refuse(name: &str, problem: &'static str) -> OciError {
    ConfigError::Sysctl { name: name.to_owned(), problem }.into()
}

/// Is the namespace at `path` the caller's own (the host's)? A path that
/// cannot be read is an error, as in runc.
fn is_host_net(name: &str, path: &std::path::Path) -> Result<bool> {
    match (std::fs::metadata(path), std::fs::metadata("/proc/self/ns/net")) {
        (Ok(a), Ok(b)) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        _ => Err(refuse(name, "the \"network\" namespace path cannot be read")),
    }
}

/// The dotted name and the path below /proc/sys of a sysctl given either
/// as `net.ipv4.ip_forward` or as `net/ipv4/conf/eth0.100/forwarding`
/// (runc accepts both: a name whose first separator is '/' has its '.'
/// and '/' swapped for the checks; its path keeps the '.' of eth0.100).
fn split_name(name: &str) -> (String, String) {
    let slash_first = name.find(['.', '/']).is_some_and(|i| name.as_bytes()[i] == b'/');
    if slash_first {
        let dotted = name.chars().map(|c| match c {
            '/' => '.',
            '.' => '/',
            c => c,
        });
        (dotted.collect(), name.to_owned())
    } else {
        (name.to_owned(), name.replace('.', "/"))
    }
}

/// Check every sysctl against the namespaces the config creates or joins.
pub fn plan(
    sysctls: Option<&std::collections::HashMap<String, String>>,
    namespaces: &[LinuxNamespace],
) -> Result<Vec<Sysctl>> {
    let Some(sysctls) = sysctls else { return Ok(Vec::new()) };
    let has = |t: LinuxNamespaceType| namespaces.iter().find(|n| n.typ() == t);
    let mut names: Vec<&String> = sysctls.keys().collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for key in names {
        let (dotted, rel) = split_name(key);
        let name = &dotted;
        // The name becomes a path under /proc/sys: no way out of it.
        if rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(refuse(key, "not a sysctl name (an empty, '.' or '..' component)"));
        }
        if IPC_NAMES.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
            if has(LinuxNamespaceType::Ipc).is_none() {
                return Err(refuse(name, "not allowed in the host's ipc namespace (add an \"ipc\" namespace)"));
            }
        } else if name.starts_with("net.") {
            match has(LinuxNamespaceType::Network) {
                None => {
                    return Err(refuse(
                        name,
                        "not allowed in the host's network namespace (add a \"network\" namespace)",
                    ))
                }
                Some(ns) => {
                    if let Some(p) = ns.path() {
                        if is_host_net(name, p)? {
                            return Err(refuse(
                                name,
                                "not allowed in the host's network namespace (the \"network\" path is the host's)",
                            ));
                        }
                    }
                }
            }
        } else if name == "kernel.domainname" {
            if has(LinuxNamespaceType::Uts).is_none() {
                return Err(refuse(name, "not allowed in the host's uts namespace (add a \"uts\" namespace)"));
            }
        } else if name == "kernel.hostname" {
            return Err(refuse(name, "not allowed: it conflicts with the \"hostname\" field"));
        } else {
            return Err(refuse(name, "not in a separate kernel namespace"));
        }
        let value = &sysctls[key];
        let path = CString::new(format!("/proc/sys/{rel}")).map_err(|_| refuse(key, "contains a NUL byte"))?;
        if value.contains('\0') {
            return Err(refuse(key, "value contains a NUL byte"));
        }
        out.push(Sysctl { name: key.clone(), path, value: value.clone() });
    }
    Ok(out)
}

/// Write one sysctl (open O_WRONLY|O_CLOEXEC|O_NOFOLLOW, one write).
pub fn write(s: &Sysctl) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let fd = open(s.path.as_c_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(step("open", s.path.to_string_lossy()))?;
    let n = nix::unistd::write(&fd, s.value.as_bytes()).map_err(step("write", s.path.to_string_lossy()))?;
    if n != s.value.len() {
        return Err(step("write", s.path.to_string_lossy())(nix::errno::Errno::EIO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ns(types: &[&str]) -> Vec<LinuxNamespace> {
        serde_json::from_value(serde_json::Value::Array(types.iter().map(|t| serde_json::json!({"type": t})).collect()))
            .unwrap()
    }

    fn one(name: &str) -> HashMap<String, String> {
        HashMap::from([(name.to_owned(), "1".to_owned())])
    }

    #[test]
    fn runc_rules() {
        assert!(plan(Some(&one("kernel.shmmax")), &ns(&["ipc"])).is_ok());
        assert!(plan(Some(&one("fs.mqueue.msg_max")), &ns(&["ipc"])).is_ok());
        assert!(plan(Some(&one("kernel.shmmax")), &ns(&["network"])).is_err());
        assert!(plan(Some(&one("net.ipv4.ip_forward")), &ns(&["network"])).is_ok());
        assert!(plan(Some(&one("net.ipv4.ip_forward")), &ns(&["ipc"])).is_err());
        assert!(plan(Some(&one("kernel.domainname")), &ns(&["uts"])).is_ok());
        assert!(plan(Some(&one("kernel.domainname")), &ns(&[])).is_err());
        assert!(plan(Some(&one("kernel.hostname")), &ns(&["uts"])).is_err());
        assert!(plan(Some(&one("vm.swappiness")), &ns(&["ipc", "network", "uts", "mount", "pid", "user"])).is_err());
        assert!(plan(Some(&one("net..x")), &ns(&["network"])).is_err());
        assert!(plan(Some(&one("net/../../x")), &ns(&["network"])).is_err());
        assert!(plan(Some(&one("net.ipv4.")), &ns(&["network"])).is_err());
        // Slash-separated names: checked in their dotted form.
        assert!(plan(Some(&one("kernel/shmmax")), &ns(&["network"])).is_err());
        assert!(plan(Some(&one("kernel/shmmax")), &ns(&["ipc"])).is_ok());
    }

    #[test]
    fn host_netns_by_path_is_refused() {
        let n: Vec<LinuxNamespace> =
            serde_json::from_value(serde_json::json!([{"type": "network", "path": "/proc/self/ns/net"}])).unwrap();
        let e = plan(Some(&one("net.ipv4.ip_forward")), &n).unwrap_err().to_string();
        assert!(e.starts_with("linux.sysctl \"net.ipv4.ip_forward\": not allowed in the host's network"), "{e}");
    }

    #[test]
    fn path_is_built() {
        let p = plan(Some(&one("net.ipv4.ip_forward")), &ns(&["network"])).unwrap();
        assert_eq!(p[0].path.to_str().unwrap(), "/proc/sys/net/ipv4/ip_forward");
        let p = plan(Some(&one("net/ipv4/conf/eth0.100/forwarding")), &ns(&["network"])).unwrap();
        assert_eq!(p[0].path.to_str().unwrap(), "/proc/sys/net/ipv4/conf/eth0.100/forwarding");
    }

    #[test]
    fn unreadable_netns_path_is_an_error() {
        let n: Vec<LinuxNamespace> =
            serde_json::from_value(serde_json::json!([{"type": "network", "path": "/nonexistent/ns"}])).unwrap();
        assert!(plan(Some(&one("net.ipv4.ip_forward")), &n).is_err());
    }
}
