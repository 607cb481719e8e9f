//! Unpack one layer archive (tar, gzip'd or not) into a directory, in
//! overlayfs's format, refusing anything that would write outside it.
//!
//! - `..` components, and (after stripping a leading `/` or `./`) empty
//!   names, are refused;
//! - nothing is ever written *through* a symlink: every parent of an entry
//!   is checked with `lstat` (an archive that first makes `a -> /etc` and
//!   then writes `a/passwd` is refused), and a file replaces an existing
//!   entry by unlinking it first, then `O_CREAT|O_EXCL|O_NOFOLLOW`;
//! - hard links must point inside the layer, not through a symlink;
//! - device nodes need root (mknod); rootless, they are refused;
//! - whiteouts: `.wh.NAME` becomes overlay's whiteout (a 0:0 character
//!   device as root; as an unprivileged user the xattr form overlayfs
//!   reads with `userxattr` since Linux 6.7: an empty file with
//!   `user.overlay.whiteout`, its directory marked `user.overlay.opaque=x`),
//!   `.wh..wh..opq` marks its directory opaque (`trusted.overlay.opaque=y`,
//!   or `user.overlay.opaque=y` rootless).
//!
//! Symlink targets themselves are kept as written (absolute ones are
//! resolved in the container's root when used, never here).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::{Fail, Result};

/// Open an archive that may be gzip-compressed (magic 1f 8b).
pub fn open_maybe_gzip<R: Read + 'static>(r: R) -> std::io::Result<Box<dyn Read>> {
    let mut b = BufReader::with_capacity(1 << 16, r);
    let head = b.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(b)))
    } else {
        Ok(Box::new(b))
    }
}

/// The relative path of an entry, or why it is refused.
pub fn clean_name(raw: &Path) -> std::result::Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err(format!("entry {:?} has a '..' component", raw)),
            Component::Prefix(_) => return Err(format!("entry {:?}: bad name", raw)),
        }
    }
    Ok(out)
}

/// Every existing parent of `rel` under `root` is a real directory.
fn no_symlink_parent(root: &Path, rel: &Path) -> std::result::Result<(), String> {
    let mut p = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("entry {:?} goes through the symlink {:?}", rel, p.strip_prefix(root).unwrap_or(&p)))
            }
            Ok(m) if !m.is_dir() => return Err(format!("entry {:?}: {:?} is not a directory", rel, p.strip_prefix(root).unwrap_or(&p))),
            Ok(_) => {}
            Err(_) => {
                std::fs::create_dir(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
            }
        }
    }
    Ok(())
}

fn remove_existing(p: &Path) {
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Unpack `archive` into `dest` (an empty directory). `rootless`: no
/// chown, no device nodes, xattr whiteouts. Returns the bytes unpacked.
pub fn unpack_layer(archive: Box<dyn Read>, dest: &Path, rootless: bool) -> Result<u64> {
    let fail = |m: String| Fail::new(125, m);
    let mut ar = tar::Archive::new(archive);
    let mut bytes = 0u64;
    let entries = ar.entries().map_err(|e| fail(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("not a valid tar archive: {e}")))?;
        let raw = entry.path().map_err(|e| fail(format!("bad entry name: {e}")))?.into_owned();
        let rel = clean_name(&raw).map_err(fail)?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        no_symlink_parent(dest, &rel).map_err(fail)?;
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if name == ".wh..wh..opq" {
            let key = if rootless { "user.overlay.opaque" } else { "trusted.overlay.opaque" };
            crate::sys::set_xattr(&parent, key, b"y").map_err(|e| fail(format!("mark {:?} opaque: {e}", rel.parent().unwrap_or(Path::new("/")))))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = parent.join(hidden);
            remove_existing(&target);
            whiteout(&parent, &target, rootless).map_err(|e| fail(format!("whiteout {:?}: {e}", rel)))?;
            continue;
        }
        let dst = dest.join(&rel);
        let h = entry.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let kind = h.entry_type();
        if !(kind.is_dir() && std::fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir())) {
            remove_existing(&dst);
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if !dst.is_dir() {
                    std::fs::create_dir(&dst).map_err(|e| fail(format!("mkdir {:?}: {e}", rel)))?;
                }
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&dst)
                    .map_err(|e| fail(format!("create {:?}: {e}", rel)))?;
                bytes += std::io::copy(&mut entry, &mut f).map_err(|e| fail(format!("archive truncated or corrupt at {:?}: {e}", rel)))?;
            }
            T::Symlink => {
                let target = h.link_name().map_err(|e| fail(format!("{:?}: {e}", rel)))?.unwrap_or_default();
                std::os::unix::fs::symlink(&target, &dst).map_err(|e| fail(format!("symlink {:?}: {e}", rel)))?;
            }
            T::Link => {
                let target = h.link_name().map_err(|e| fail(format!("{:?}: {e}", rel)))?.unwrap_or_default();
                let trel = clean_name(&target).map_err(fail)?;
                no_symlink_parent(dest, &trel).map_err(fail)?;
                let src = dest.join(&trel);
                if std::fs::symlink_metadata(&src).is_err() {
                    return Err(fail(format!("hard link {:?} to {:?}, which the layer does not hold", rel, target)));
                }
                std::fs::hard_link(&src, &dst).map_err(|e| fail(format!("link {:?}: {e}", rel)))?;
                continue;
            }
            T::Char | T::Block | T::Fifo => {
                if rootless && kind != T::Fifo {
                    return Err(fail(format!("device node {:?}: an unprivileged import cannot create device nodes", rel)));
                }
                let dev = nix::sys::stat::makedev(h.device_major().ok().flatten().unwrap_or(0) as u64, h.device_minor().ok().flatten().unwrap_or(0) as u64);
                let sflag = match kind {
                    T::Char => nix::sys::stat::SFlag::S_IFCHR,
                    T::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                nix::sys::stat::mknod(&dst, sflag, nix::sys::stat::Mode::from_bits_truncate(mode), dev)
                    .map_err(|e| fail(format!("mknod {:?}: {e}", rel)))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            other => return Err(fail(format!("entry {:?}: unsupported type {other:?}", rel))),
        }
        if !rootless {
            let uid = h.uid().unwrap_or(0) as u32;
            let gid = h.gid().unwrap_or(0) as u32;
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &dst,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| fail(format!("chown {:?}: {e}", rel)))?;
        }
        if kind != T::Symlink {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).map_err(|e| fail(format!("chmod {:?}: {e}", rel)))?;
        }
    }
    Ok(bytes)
}

fn whiteout(parent: &Path, target: &Path, rootless: bool) -> std::io::Result<()> {
    if !rootless {
        let dev = nix::sys::stat::makedev(0, 0);
        return nix::sys::stat::mknod(target, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), dev).map_err(Into::into);
    }
    OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).mode(0o600).open(target)?;
    crate::sys::set_xattr(target, "user.overlay.whiteout", b"y")?;
    // overlayfs looks for xattr whiteouts only in directories marked "x".
    if crate::sys::get_xattr(parent, "user.overlay.opaque").is_none() {
        crate::sys::set_xattr(parent, "user.overlay.opaque", b"x")?;
    }
    Ok(())
}
