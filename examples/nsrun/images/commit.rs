//! `nsrun commit CONTAINER NAME[:TAG]`: the container's write layer (in
//! overlay format already: whiteouts and opaque marks included) becomes a
//! new layer on top of its image's.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{reference, ImageRec, Store};
use crate::{Fail, Result};

/// A digest of a directory tree: names, types, modes, owners, contents
/// and link targets, in sorted order.
fn tree_digest(root: &Path) -> String {
    fn walk(base: &Path, p: &Path, h: &mut Sha256) {
        let mut names: Vec<_> = std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let q = p.join(&n);
            let Ok(m) = std::fs::symlink_metadata(&q) else { continue };
            h.update(q.strip_prefix(base).unwrap_or(&q).as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}:{}:{}:{}\0", m.mode(), m.uid(), m.gid(), m.rdev()).as_bytes());
            if m.file_type().is_symlink() {
                h.update(std::fs::read_link(&q).unwrap_or_default().as_os_str().as_encoded_bytes());
            } else if m.is_file() {
                h.update(std::fs::read(&q).unwrap_or_default());
            } else if m.is_dir() {
                walk(base, &q, h);
            }
        }
    }
    let mut h = Sha256::new();
    walk(root, root, &mut h);
    super::hex(&h.finalize())
}

pub fn commit(state_root: &Path, container: &str, name: &str) -> Result<i32> {
    let name = reference(name)?;
    let (dir, rec) = crate::state::load(state_root, container)?;
    let store = Store::open(state_root);
    let base = rec
        .image_id
        .as_deref()
        .and_then(|id| store.image(id))
        .ok_or_else(|| Fail::new(125, format!("container {container} does not run an imported image: only those can be committed")))?;
    let upper = dir.join("upper");
    let tmp = store.tmp_dir("commit")?;
    let fail = |tmp: &Path, msg: String| {
        let _ = crate::state::remove_dir(tmp);
        Fail::new(125, msg)
    };
    // cp -a keeps owners, modes, whiteout devices and overlay xattrs.
    let out = Command::new("cp").arg("-a").arg(format!("{}/.", upper.display())).arg(&tmp).output();
    if !matches!(&out, Ok(o) if o.status.success()) {
        let why = out.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned()).unwrap_or_else(|e| e.to_string());
        return Err(fail(&tmp, format!("copy the write layer of {container}: {why}")));
    }
    // The files nsrun bind-mounts per container are not the image's.
    for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        let p = tmp.join(f);
        if std::fs::metadata(&p).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(p);
        }
    }
    let digest = tree_digest(&tmp);
    let dest = store.layer_dir(&digest);
    if dest.is_dir() || std::fs::rename(&tmp, &dest).is_err() {
        let _ = crate::state::remove_dir(&tmp);
    }
    let mut layers = base.layers.clone();
    layers.push(digest.clone());
    let id = super::sha256_hex(format!("{}\n{}", base.id, digest).as_bytes());
    let new = ImageRec { id: id.clone(), layers, config: base.config.clone(), created: crate::state::now() };
    store.add(&new, &name)?;
    println!("sha256:{id}");
    Ok(0)
}
