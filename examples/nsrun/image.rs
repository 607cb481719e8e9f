//! The image layer and the union filesystem plan.
//!
//! The overlay is *described* here, on the host, and *mounted* by the
//! container's init inside its own mount namespace (see `init.rs`): it
//! never appears in the host's mount table and disappears with the
//! container's last process, whatever happens to nsrun.
//!
//! Layouts of `<state>/containers/<name>/`:
//! - `upper/` (the write layer), `work/`, `merged/` (the mount point);
//! - rootless with the host image: the kernel refuses `lowerdir=/` in a
//!   user namespace (the host's `/` has locked submounts), so the root is an
//!   overlay of a skeleton of `/` (`skel/`: its directories and symlinks),
//!   and each top-level directory without submounts (`/usr`, `/etc`, ...)
//!   gets its own overlay with its write layer in `sub/<dir>/upper/`.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::cli::Image;
use crate::{Context, Fail, Result};

/// One overlay mount: `lowerdir`, `upperdir`, `workdir` on `target`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    pub target: PathBuf,
    pub lower: PathBuf,
    /// More lower directories under `lower`, topmost first (the layers of
    /// an imported image).
    #[serde(default)]
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// The overlays to mount, in order (the first one is the root).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Overlay {
    pub layers: Vec<Layer>,
    /// `userxattr` (overlay mounted in a user namespace).
    pub userxattr: bool,
}

/// Where the container's root comes from.
#[derive(Debug)]
pub struct Prepared {
    /// The directory that becomes `/` (the overlay mount point, or the
    /// bundle's rootfs).
    pub root: PathBuf,
    pub overlay: Option<Overlay>,
    /// For `ps` and errors.
    pub desc: String,
    /// The unpacked `--image` it uses (`nsrun images`).
    pub image_id: Option<String>,
}

/// Checks that need no state: the image exists.
pub fn validate(image: &Image) -> Result<()> {
    let missing = |what: &str, p: &Path| Fail::new(125, format!("{what} {}: no such file or directory", p.display()));
    match image {
        Image::Host => Ok(()),
        Image::Rootfs(p) if p.is_dir() => Ok(()),
        Image::Rootfs(p) => Err(missing("rootfs", p)),
        Image::Tar(p) if p.is_file() => Ok(()),
        Image::Tar(p) => Err(missing("image", p)),
        Image::Bundle(p) if p.join("config.json").is_file() => Ok(()),
        Image::Bundle(p) => Err(missing("bundle config", &p.join("config.json"))),
        Image::Named(_) => Ok(()),
    }
}

/// Prepare the layers for a container whose directory is `dir`.
pub fn prepare(state_root: &Path, dir: &Path, image: &Image, userns: bool) -> Result<Prepared> {
    let merged = dir.join("merged");
    let single = |lower: PathBuf, desc: String| -> Result<Prepared> {
        for d in ["upper", "work", "merged"] {
            crate::state::mkdir_p(&dir.join(d))?;
        }
        let layer = Layer { target: merged.clone(), lower, lowers: Vec::new(), upper: dir.join("upper"), work: dir.join("work") };
        Ok(Prepared { root: merged.clone(), overlay: Some(Overlay { layers: vec![layer], userxattr: userns }), desc, image_id: None })
    };
    match image {
        Image::Bundle(b) => {
            let b = b.canonicalize().ctx(|| format!("bundle {}", b.display()))?;
            Ok(Prepared { root: b.clone(), overlay: None, desc: format!("bundle:{}", b.display()), image_id: None })
        }
        Image::Rootfs(p) => {
            let p = p.canonicalize().ctx(|| format!("rootfs {}", p.display()))?;
            let desc = p.display().to_string();
            single(p, desc)
        }
        Image::Tar(t) => {
            let lower = unpack_cached(state_root, t)?;
            let id = lower.file_name().map(|n| n.to_string_lossy().into_owned());
            let mut p = single(lower, t.display().to_string())?;
            p.image_id = id;
            Ok(p)
        }
        Image::Named(id) => {
            let store = crate::images::Store::open(state_root);
            let rec = store.image(id).ok_or_else(|| Fail::new(125, format!("no such image: {id}")))?;
            let mut dirs: Vec<PathBuf> = rec.layers.iter().rev().map(|l| store.layer_dir(l)).collect();
            if dirs.is_empty() {
                return Err(Fail::new(125, format!("image {} has no layer", &id[..12])));
            }
            let top = dirs.remove(0);
            let names = store.names_of(id);
            let mut p = single(top, names.first().cloned().unwrap_or_else(|| id[..12].to_owned()))?;
            if let Some(ov) = p.overlay.as_mut() {
                ov.layers[0].lowers = dirs;
            }
            p.image_id = Some(id.clone());
            Ok(p)
        }
        Image::Host if !userns => single(PathBuf::from("/"), "host".into()),
        Image::Host => host_rootless(dir),
    }
}

/// A tar archive unpacked once into `<state>/images/<key>`, keyed by the
/// archive's path, device, inode, size and mtime, with the archive's path
/// in `<state>/images/<key>.source` (for `nsrun images`; `nsrun rmi`
/// removes an entry no container uses). Unpacked into a temporary
/// directory and renamed into place, so a cache entry is always complete.
fn unpack_cached(state_root: &Path, tar: &Path) -> Result<PathBuf> {
    let abs = tar.canonicalize().ctx(|| format!("image {}", tar.display()))?;
    let md = std::fs::metadata(&abs).ctx(|| format!("image {}", tar.display()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (abs.as_os_str(), md.dev(), md.ino(), md.size(), md.mtime(), md.mtime_nsec()).hash(&mut h);
    let images = state_root.join("images");
    let dest = images.join(format!("{:016x}", h.finish()));
    if dest.is_dir() {
        return Ok(dest);
    }
    crate::state::mkdir_p(&images)?;
    let tmp = images.join(format!(".unpack-{}", crate::state::random_id()));
    crate::state::mkdir_p(&tmp)?;
    let out = Command::new("tar").arg("-xf").arg(&abs).arg("-C").arg(&tmp).output();
    let ok = matches!(&out, Ok(o) if o.status.success());
    if !ok {
        let _ = crate::state::remove_dir(&tmp);
        let why = match out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("tar failed").to_owned(),
            Err(e) => format!("run tar: {e}"),
        };
        return Err(Fail::new(125, format!("unpack image {}: {why}", tar.display())));
    }
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::write(source_file(&dest), abs.as_os_str().as_encoded_bytes());
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another nsrun unpacked it meanwhile: use theirs.
        let _ = crate::state::remove_dir(&tmp);
        if !dest.is_dir() {
            return Err(Fail::new(125, format!("unpack image {}: cannot install {}", tar.display(), dest.display())));
        }
    }
    Ok(dest)
}

/// `<state>/images`: the unpacked `--image` archives.
pub fn images_dir(state_root: &Path) -> PathBuf {
    state_root.join("images")
}

/// The file naming the archive an unpacked image came from.
pub fn source_file(entry: &Path) -> PathBuf {
    entry.with_extension("source")
}

/// The unpacked images: (id, directory), by id.
pub fn cached(state_root: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(images_dir(state_root))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_owned();
            (!n.starts_with('.')).then(|| (n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Top-level directories of `/` under which something is mounted.
fn dirs_with_mounts() -> BTreeSet<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter_map(|mp| mp.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .map(|rest| rest.split('/').next().unwrap_or(rest).replace("\\040", " "))
        .collect()
}

/// Directories that get fresh mounts in the container anyway.
const FRESH: &[&str] = &["proc", "sys", "dev", "tmp", "run"];

fn host_rootless(dir: &Path) -> Result<Prepared> {
    let skel = dir.join("skel");
    let merged = dir.join("merged");
    for d in ["upper", "work", "merged", "skel"] {
        crate::state::mkdir_p(&dir.join(d))?;
    }
    let busy = dirs_with_mounts();
    let mut layers = vec![Layer { target: merged.clone(), lower: skel.clone(), lowers: Vec::new(), upper: dir.join("upper"), work: dir.join("work") }];
    let entries = std::fs::read_dir("/").ctx(|| "read /".to_owned())?;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str() else { continue };
        let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
        if md.file_type().is_symlink() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let _ = std::os::unix::fs::symlink(t, skel.join(n));
            }
        } else if md.is_dir() {
            let d = skel.join(n);
            crate::state::mkdir_p(&d)?;
            let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(md.mode() & 0o7777));
            if FRESH.contains(&n) || busy.contains(n) {
                continue;
            }
            // Unreadable directories (e.g. /root) cannot be a lower layer.
            if nix::unistd::access(&e.path(), nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::X_OK).is_err() {
                continue;
            }
            let sub = dir.join("sub").join(n);
            crate::state::mkdir_p(&sub.join("upper"))?;
            crate::state::mkdir_p(&sub.join("work"))?;
            layers.push(Layer { target: merged.join(n), lower: e.path(), lowers: Vec::new(), upper: sub.join("upper"), work: sub.join("work") });
        }
    }
    Ok(Prepared { root: merged, overlay: Some(Overlay { layers, userxattr: true }), desc: "host".into(), image_id: None })
}
