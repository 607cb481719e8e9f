//! `nsrun import TAR NAME[:TAG]`: a plain rootfs tarball, an OCI image
//! layout (`podman save --format oci-archive`, `docker save` ≥ 25) or a
//! docker-archive (`docker save`, `podman save`), gzip'd or not.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::unpack::{clean_name, open_maybe_gzip, unpack_layer};
use super::{reference, ImageRec, ImgConfig, Store};
use crate::{Context, Fail, Result};

/// What the outer archive is.
enum Format {
    Rootfs,
    Oci,
    Docker,
}

fn detect(tar_path: &Path) -> Result<Format> {
    let f = File::open(tar_path).ctx(|| format!("open {}", tar_path.display()))?;
    let mut ar = tar::Archive::new(open_maybe_gzip(f).ctx(|| format!("read {}", tar_path.display()))?);
    let entries = ar.entries().map_err(|e| Fail::new(125, format!("{}: not a tar archive: {e}", tar_path.display())))?;
    let (mut oci, mut docker, mut any) = (false, false, false);
    for e in entries {
        let e = e.map_err(|e| Fail::new(125, format!("{}: not a valid tar archive: {e}", tar_path.display())))?;
        any = true;
        let p = e.path().map(|p| clean_name(&p).unwrap_or_default()).unwrap_or_default();
        match p.to_str() {
            Some("oci-layout") => oci = true,
            Some("manifest.json") => docker = true,
            _ => {}
        }
    }
    if !any {
        return Err(Fail::new(125, format!("{}: empty or not a tar archive", tar_path.display())));
    }
    Ok(if oci {
        Format::Oci
    } else if docker {
        Format::Docker
    } else {
        Format::Rootfs
    })
}

/// sha256 of a file's bytes, streamed.
fn file_digest(p: &Path) -> Result<String> {
    let mut f = File::open(p).ctx(|| format!("open {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ctx(|| format!("read {}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(super::hex(&h.finalize()))
}

/// A file of the unpacked outer archive, by a name the archive gives
/// (checked: no `..`, no absolute escape, no symlink).
fn member(outer: &Path, name: &str) -> Result<PathBuf> {
    let rel = clean_name(Path::new(name)).map_err(|e| Fail::new(125, format!("archive refers to {name:?}: {e}")))?;
    let p = outer.join(rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => Ok(p),
        _ => Err(Fail::new(125, format!("archive refers to {name:?}, which it does not hold as a file"))),
    }
}

fn read_json(p: &Path) -> Result<Value> {
    let b = std::fs::read(p).ctx(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&b).ctx(|| format!("parse {}", p.file_name().unwrap_or_default().to_string_lossy()))
}

fn config_of(v: &Value) -> ImgConfig {
    v.get("config").cloned().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default()
}

fn oci_blob(outer: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| Fail::new(125, format!("unsupported digest {digest:?}")))?;
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Fail::new(125, format!("bad digest {digest:?}")));
    }
    member(outer, &format!("blobs/sha256/{hex}"))
}

/// Layer blobs (bottom first) and the config (id, parsed) of the archive
/// unpacked in `outer`.
fn read_manifest(fmt: &Format, outer: &Path) -> Result<(Vec<PathBuf>, String, ImgConfig)> {
    match fmt {
        Format::Oci => {
            let index = read_json(&member(outer, "index.json")?)?;
            let m = index.pointer("/manifests/0/digest").and_then(Value::as_str).ok_or_else(|| Fail::new(125, "index.json: no manifest"))?;
            let mut manifest = read_json(&oci_blob(outer, m)?)?;
            // An index of per-platform manifests: take the first.
            if manifest.get("manifests").is_some() {
                let d = manifest.pointer("/manifests/0/digest").and_then(Value::as_str).unwrap_or("").to_owned();
                manifest = read_json(&oci_blob(outer, &d)?)?;
            }
            let cd = manifest.pointer("/config/digest").and_then(Value::as_str).ok_or_else(|| Fail::new(125, "manifest: no config"))?;
            let cfg_path = oci_blob(outer, cd)?;
            let mut layers = Vec::new();
            for l in manifest.get("layers").and_then(Value::as_array).into_iter().flatten() {
                let d = l.get("digest").and_then(Value::as_str).ok_or_else(|| Fail::new(125, "manifest: layer without digest"))?;
                layers.push(oci_blob(outer, d)?);
            }
            Ok((layers, file_digest(&cfg_path)?, config_of(&read_json(&cfg_path)?)))
        }
        Format::Docker => {
            let m = read_json(&member(outer, "manifest.json")?)?;
            let first = m.get(0).ok_or_else(|| Fail::new(125, "manifest.json: no image"))?;
            let cfg = first.get("Config").and_then(Value::as_str).ok_or_else(|| Fail::new(125, "manifest.json: no Config"))?;
            let cfg_path = member(outer, cfg)?;
            let mut layers = Vec::new();
            for l in first.get("Layers").and_then(Value::as_array).into_iter().flatten() {
                layers.push(member(outer, l.as_str().unwrap_or(""))?);
            }
            Ok((layers, file_digest(&cfg_path)?, config_of(&read_json(&cfg_path)?)))
        }
        Format::Rootfs => unreachable!(),
    }
}

/// Unpack each blob not yet in the store; returns the digests and the
/// layers this call added (to remove if the import fails later).
fn add_layers(store: &Store, blobs: &[PathBuf], rootless: bool, added: &mut Vec<PathBuf>) -> Result<Vec<String>> {
    let progress = std::io::stderr().is_terminal();
    let mut digests = Vec::new();
    for (i, b) in blobs.iter().enumerate() {
        let d = file_digest(b)?;
        let dest = store.layer_dir(&d);
        if dest.is_dir() {
            if progress {
                eprintln!("layer {}/{} {}: already present", i + 1, blobs.len(), &d[..12]);
            }
            digests.push(d);
            continue;
        }
        let tmp = store.tmp_dir("layer")?;
        let f = File::open(b).ctx(|| format!("open {}", b.display()))?;
        let res = open_maybe_gzip(f)
            .ctx(|| format!("read layer {}", &d[..12]))
            .and_then(|r| unpack_layer(r, &tmp, rootless))
            .map_err(|e| Fail::new(125, format!("layer {} ({}): {}", i + 1, &d[..12], e.msg)));
        let bytes = match res {
            Ok(n) => n,
            Err(e) => {
                let _ = crate::state::remove_dir(&tmp);
                return Err(e);
            }
        };
        crate::state::mkdir_p(&store.dir.join("layers"))?;
        if std::fs::rename(&tmp, &dest).is_err() {
            // Another import made it meanwhile: the same content.
            let _ = crate::state::remove_dir(&tmp);
        } else {
            added.push(dest);
        }
        if progress {
            eprintln!("layer {}/{} {}: {:.1} MB unpacked", i + 1, blobs.len(), &d[..12], bytes as f64 / 1e6);
        }
        digests.push(d);
    }
    Ok(digests)
}

pub fn import(state_root: &Path, tar_path: &Path, name: &str) -> Result<i32> {
    let name = reference(name)?;
    let rootless = !nix::unistd::geteuid().is_root();
    let store = Store::open(state_root);
    let fmt = detect(tar_path)?;
    let mut added = Vec::new();
    let mut outer = None;
    let result = (|| -> Result<ImageRec> {
        let (blobs, id, config) = match fmt {
            Format::Rootfs => {
                let digests = add_layers(&store, &[tar_path.to_owned()], rootless, &mut added)?;
                let id = super::sha256_hex(format!("nsrun rootfs {}", digests[0]).as_bytes());
                let config = ImgConfig { env: Some(vec![crate::spec::DEFAULT_PATH.to_owned()]), ..Default::default() };
                return Ok(ImageRec { id, layers: digests, config, created: crate::state::now() });
            }
            _ => {
                let dir = store.tmp_dir("import")?;
                outer = Some(dir.clone());
                let f = File::open(tar_path).ctx(|| format!("open {}", tar_path.display()))?;
                let r = open_maybe_gzip(f).ctx(|| format!("read {}", tar_path.display()))?;
                unpack_layer(r, &dir, true).map_err(|e| Fail::new(125, format!("{}: {}", tar_path.display(), e.msg)))?;
                read_manifest(&fmt, &dir)?
            }
        };
        let layers = add_layers(&store, &blobs, rootless, &mut added)?;
        Ok(ImageRec { id, layers, config, created: crate::state::now() })
    })()
    .and_then(|rec| store.add(&rec, &name).map(|()| rec));
    if let Some(d) = outer {
        let _ = crate::state::remove_dir(&d);
    }
    match result {
        Ok(rec) => {
            println!("Loaded image: {name} (sha256:{})", &rec.id[..12]);
            Ok(0)
        }
        Err(e) => {
            for d in added {
                let _ = crate::state::remove_dir(&d);
            }
            Err(Fail::new(e.code, format!("import {}: {}", tar_path.display(), e.msg)))
        }
    }
}
