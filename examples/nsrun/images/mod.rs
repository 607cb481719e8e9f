//! The image store, `<state>/store`: images by name, their layers
//! unpacked once and shared, stacked as overlay lower directories.
//!
//! ```text
//! store/layers/<sha256 of the layer blob>/   one unpacked layer (overlay format)
//! store/images/<id>.json                     layers (bottom first) and config
//! store/tags.json                            "name:tag" -> id
//! store/tmp/                                 imports in progress (renamed in when complete)
//! ```
//!
//! Every write of a layer or record is made under `tmp/` and renamed into
//! place, so an interrupted or refused import leaves nothing half-made;
//! layers an import added are removed again if the import fails.

pub mod commit;
pub mod import;
pub mod unpack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Context, Fail, Result};

/// The parts of an image config nsrun honours (docker's names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImgConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRec {
    /// 64 hex digits.
    pub id: String,
    /// Layer digests (hex), bottom first.
    pub layers: Vec<String>,
    pub config: ImgConfig,
    pub created: u64,
}

pub struct Store {
    pub dir: PathBuf,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `NAME[:TAG]` → `name:tag` (tag `latest` by default), checked as docker
/// checks references (lower-case name components, a tag of [A-Za-z0-9_.-]).
pub fn reference(r: &str) -> Result<String> {
    let (name, tag) = match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (r, "latest"),
    };
    let name_ok = !name.is_empty()
        && name.split('/').all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)));
    let tag_ok = !tag.is_empty() && tag.len() <= 128 && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !name_ok || !tag_ok {
        return Err(Fail::new(125, format!("invalid reference format {r:?}: use name[:tag], lower-case")));
    }
    Ok(format!("{name}:{tag}"))
}

impl Store {
    pub fn open(state_root: &Path) -> Store {
        Store { dir: state_root.join("store") }
    }

    pub fn layer_dir(&self, digest: &str) -> PathBuf {
        self.dir.join("layers").join(digest)
    }

    fn image_file(&self, id: &str) -> PathBuf {
        self.dir.join("images").join(format!("{id}.json"))
    }

    /// A fresh directory under `tmp/`.
    pub fn tmp_dir(&self, what: &str) -> Result<PathBuf> {
        let d = self.dir.join("tmp").join(format!("{what}-{}", crate::state::random_id()));
        crate::state::mkdir_p(&d)?;
        Ok(d)
    }

    pub fn tags(&self) -> BTreeMap<String, String> {
        std::fs::read(self.dir.join("tags.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    fn write_atomic(&self, path: &Path, body: &[u8]) -> Result<()> {
        let tmp = self.dir.join("tmp").join(format!(".w-{}", crate::state::random_id()));
        crate::state::mkdir_p(&self.dir.join("tmp"))?;
        std::fs::write(&tmp, body).ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("install {}", path.display()))
    }

    fn save_tags(&self, t: &BTreeMap<String, String>) -> Result<()> {
        self.write_atomic(&self.dir.join("tags.json"), &serde_json::to_vec_pretty(t).unwrap_or_default())
    }

    pub fn image(&self, id: &str) -> Option<ImageRec> {
        std::fs::read(self.image_file(id)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub fn all(&self) -> Vec<ImageRec> {
        let mut v: Vec<ImageRec> = std::fs::read_dir(self.dir.join("images"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        v.sort_by_key(|i| std::cmp::Reverse(i.created));
        v
    }

    /// Record `rec` and point `name` (already checked by [`reference`]) at it.
    pub fn add(&self, rec: &ImageRec, name: &str) -> Result<()> {
        crate::state::mkdir_p(&self.dir.join("images"))?;
        self.write_atomic(&self.image_file(&rec.id), &serde_json::to_vec_pretty(rec).unwrap_or_default())?;
        let mut t = self.tags();
        t.insert(name.to_owned(), rec.id.clone());
        self.save_tags(&t)
    }

    /// By `name[:tag]`, full id, or an id prefix of 12 or more digits.
    pub fn lookup(&self, r: &str) -> Option<ImageRec> {
        let tags = self.tags();
        if let Some(id) = reference(r).ok().and_then(|n| tags.get(&n).cloned()) {
            return self.image(&id);
        }
        let r = r.strip_prefix("sha256:").unwrap_or(r);
        if r.len() >= 12 && r.chars().all(|c| c.is_ascii_hexdigit()) {
            return self.all().into_iter().find(|i| i.id.starts_with(r));
        }
        None
    }

    /// Names pointing at `id`.
    pub fn names_of(&self, id: &str) -> Vec<String> {
        self.tags().into_iter().filter(|(_, v)| v == id).map(|(k, _)| k).collect()
    }

    /// Remove a name, or (by id, or its last name) the image; then the
    /// layers no image uses any more. `users`: containers of the image.
    pub fn remove(&self, r: &str, users: impl Fn(&str) -> Vec<String>) -> Result<String> {
        let rec = self.lookup(r).ok_or_else(|| Fail::new(125, format!("no such image: {r}")))?;
        let names = self.names_of(&rec.id);
        let by_name = reference(r).ok().filter(|n| names.contains(n));
        if let Some(n) = &by_name {
            if names.len() > 1 {
                let mut t = self.tags();
                t.remove(n);
                self.save_tags(&t)?;
                return Ok(format!("Untagged: {n}"));
            }
        }
        let u = users(&rec.id);
        if !u.is_empty() {
            return Err(Fail::new(125, format!("image {} is used by container {}: remove it first (nsrun rm)", &rec.id[..12], u.join(", "))));
        }
        let mut t = self.tags();
        t.retain(|_, v| *v != rec.id);
        self.save_tags(&t)?;
        let _ = std::fs::remove_file(self.image_file(&rec.id));
        self.gc_layers();
        Ok(format!("Deleted: sha256:{}", rec.id))
    }

    /// Remove layer directories no image lists.
    pub fn gc_layers(&self) {
        let used: std::collections::BTreeSet<String> = self.all().into_iter().flat_map(|i| i.layers).collect();
        for e in std::fs::read_dir(self.dir.join("layers")).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !used.contains(&n) {
                let _ = crate::state::remove_dir(&e.path());
            }
        }
    }

    /// Bytes of the image's layers.
    pub fn size(&self, rec: &ImageRec) -> u64 {
        rec.layers.iter().map(|l| crate::ops::disk_size(&self.layer_dir(l))).sum()
    }
}
