//! The `run` flags that change a built spec: user, working directory,
//! read-only root, tmpfs and `--mount` mounts, ulimits, the /etc files.

use std::path::Path;

use serde_json::{json, Value};

use crate::cli::{RunOpts, Tmpfs};
use crate::{Context, Result};

/// Apply the flags to `spec`; `image_root` is the image's root on the
/// host (for `--user NAME`), `dir` the container's directory.
pub fn customize(spec: &mut Value, o: &RunOpts, image_root: &Path, upper: Option<&Path>, dir: &Path, hostname: &str, addr: Option<std::net::Ipv4Addr>) -> Result<()> {
    if let Some(u) = &o.user {
        let user = crate::identity::resolve(u, image_root)?;
        spec["process"]["user"] = user.to_json();
        if let Some(env) = spec["process"]["env"].as_array_mut() {
            // HOME follows the user (docker); -e HOME=... still wins.
            if !o.env.iter().any(|e| e.starts_with("HOME=")) {
                env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with("HOME=")));
                env.push(json!(format!("HOME={}", user.home.as_deref().unwrap_or("/"))));
            }
        }
    }
    if let Some(w) = &o.workdir {
        spec["process"]["cwd"] = json!(w);
    }
    if o.read_only {
        spec["root"]["readonly"] = json!(true);
    }
    let rl = crate::limits::rlimits(&o.limits);
    if rl.as_array().is_some_and(|a| !a.is_empty()) {
        spec["process"]["rlimits"] = rl;
    }
    let mounts = spec["mounts"].as_array_mut().expect("built spec has mounts");
    let addr = addr.map(|a| a.to_string());
    for m in crate::identity::etc_files(dir, hostname, o.net != crate::cli::Net::Host, addr.as_deref())? {
        // A file the image lacks is made in the write layer first: the
        // bind needs a mount point, and an unprivileged user cannot
        // create one in an image directory owned by a user it has not
        // mapped (the image's root).
        if let (Some(up), Some(dst)) = (upper, m["destination"].as_str()) {
            let rel = dst.trim_start_matches('/');
            if std::fs::symlink_metadata(image_root.join(rel)).is_err() {
                let target = up.join(rel);
                if let Some(parent) = target.parent() {
                    crate::state::mkdir_p(parent)?;
                }
                std::fs::write(&target, b"").ctx(|| format!("create {}", target.display()))?;
            }
        }
        mounts.push(m);
    }
    if o.net == crate::cli::Net::Slirp {
        // slirp4netns answers DNS on 10.0.2.3 (it forwards to the host's resolver).
        let p = dir.join("resolv.conf");
        std::fs::write(&p, "nameserver 10.0.2.3\n").ctx(|| format!("write {}", p.display()))?;
    }
    for Tmpfs { dst, options } in &o.tmpfs {
        let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        opts.extend(options.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    Ok(())
}
