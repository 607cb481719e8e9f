//! `linux.maskedPaths` and `linux.readonlyPaths` directly below `/proc`,
//! by name from the procfs root.
//!
//! When `/proc` of the new root is the root of a procfs mount (what step 2
//! mounted there) — opened in-root with no symlink at all, checked to be
//! procfs (`fstatfs`) and its root directory (inode 1, procfs's
//! `PROC_ROOT_INO`) — its entries are made by the kernel, not by the image,
//! and none of them is a magic link (those live in the `/proc/<pid>`
//! directories). So a single name below it is looked up directly: by
//! mount(2) relative to the cwd, entered once with `fchdir` (the cwd pins
//! that directory; nothing is resolved from the root again), and by the
//! new mount API relative to the fd. Where `/proc` is anything else, every
//! path takes the general, in-root way of the parent module.
//!
//! One `getdents64` listing of that root tells which of the names exist
//! and what they are, so that the names this kernel lacks (most of runc's
//! default masked paths on a typical VM) cost nothing and existing ones no
//! `stat`. A listing is complete for the names it can hold: procfs lists
//! every entry of its root that a lookup finds, except thread ids — so
//! numeric names are not trusted to it and are looked up.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, fstatat};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use super::super::error::{Op, Result};
use super::super::path::{rel_cstring, IN_ROOT};
use super::super::plan::RootfsPlan;
use super::{merr, rerr};
use nsboot::sys::fs::{clone_tree, dirents, getdents64, mount_setattr_at, move_mount_to, openat2};

/// At most this many names are looked for in the listing (the rest are
/// looked up one by one).
const TRACKED: usize = 32;

/// Below this many names a listing costs more than the lookups it saves:
/// the first `getdents64` of a fresh procfs root (56 entries on the
/// benchmark VM) took ~18 µs in a syscall trace where a failed lookup or
/// an `fstatat` there took ~3 µs. runc's default lists give 14 names.
const WORTH_LISTING: usize = 8;

/// `/proc` of the new root, as described in the module documentation.
pub(super) struct ProcRoot<'p> {
    fd: OwnedFd,
    /// The cwd is `fd` (set by [`ProcRoot::enter`], cleared by
    /// [`ProcRoot::left`]).
    here: bool,
    listing: Listing<'p>,
}

/// What the procfs root listed for the names asked about.
struct Listing<'p> {
    names: [(&'p [u8], Seen); TRACKED],
    len: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    /// Not listed (or no listing was taken): look it up.
    Unknown,
    /// The listing was complete and the name was not in it.
    Missing,
    /// Listed, with this `d_type`.
    Type(u8),
}

impl<'p> ProcRoot<'p> {
    /// `None` unless `plan` has a path directly below /proc and /proc is
    /// the root of a procfs mount.
    pub(super) fn open(root: BorrowedFd<'_>, plan: &'p RootfsPlan) -> Option<Self> {
        let names = || plan.readonly_paths.iter().chain(&plan.masked).filter_map(|p| proc_child(p));
        names().next()?;
        let how = (OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits();
        let fd = openat2(root, c"proc", how, 0, IN_ROOT | libc::RESOLVE_NO_SYMLINKS).ok()?;
        let on_proc = fstatfs(&fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
        let is_root = on_proc && fstat(&fd).is_ok_and(|st| st.st_ino == 1);
        if !is_root {
            return None;
        }
        let mut listing = Listing { names: [(&[][..], Seen::Unknown); TRACKED], len: 0 };
        for n in names().map(OsStr::as_bytes).filter(|n| !n.iter().all(u8::is_ascii_digit)) {
            if listing.len < TRACKED && !listing.names[..listing.len].iter().any(|(x, _)| *x == n) {
                listing.names[listing.len] = (n, Seen::Unknown);
                listing.len += 1;
            }
        }
        if listing.len >= WORTH_LISTING {
            listing.take(fd.as_fd());
        }
        Some(Self { fd, here: false, listing })
    }

    fn enter(&mut self) -> std::result::Result<(), Errno> {
        if !self.here {
            nix::unistd::fchdir(&self.fd)?;
            self.here = true;
        }
        Ok(())
    }

    /// The cwd was moved elsewhere.
    pub(super) fn left(&mut self) {
        self.here = false;
    }
}

impl Listing<'_> {
    /// Read the whole directory; any failure leaves every name unknown.
    fn take(&mut self, dir: BorrowedFd<'_>) {
        let mut buf = [0u8; 4096];
        let tracked = &mut self.names[..self.len];
        loop {
            match getdents64(dir, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for (name, d_type) in dirents(&buf[..n]) {
                        if let Some(slot) = tracked.iter_mut().find(|(x, _)| *x == name) {
                            slot.1 = Seen::Type(d_type);
                        }
                    }
                }
                Err(_) => {
                    tracked.iter_mut().for_each(|slot| slot.1 = Seen::Unknown);
                    return;
                }
            }
        }
        for slot in tracked.iter_mut().filter(|s| s.1 == Seen::Unknown) {
            slot.1 = Seen::Missing;
        }
    }

    fn seen(&self, name: &OsStr) -> Seen {
        let name = name.as_bytes();
        self.names[..self.len].iter().find(|(x, _)| *x == name).map_or(Seen::Unknown, |s| s.1)
    }
}

/// `name` when `path` is `/proc/<name>` (one normal component).
pub(super) fn proc_child(path: &Path) -> Option<&OsStr> {
    let rest = path.strip_prefix("/proc").ok()?;
    let mut c = rest.components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(name)), None) => Some(name),
        _ => None,
    }
}

/// runc's readonlyPath for `/proc/<name>`: bind onto itself by name from
/// the procfs root, then the new top mount made read-only by name.
pub(super) fn readonly_proc(pr: &mut ProcRoot<'_>, name: &OsStr, path: &Path) -> Result<()> {
    if pr.listing.seen(name) == Seen::Missing {
        return Ok(());
    }
    let c = rel_cstring(Path::new(name)).map_err(|e| rerr(Op::Resolve, path, e))?;
    pr.enter().map_err(|e| rerr(Op::Chdir, Path::new("/proc"), e))?;
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    match mount(Some(c.as_c_str()), c.as_c_str(), None::<&str>, rbind, None::<&str>) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(rerr(Op::Bind, path, e)),
    }
    mount_setattr_at(pr.fd.as_fd(), &c, libc::MOUNT_ATTR_RDONLY, 0).map_err(|e| rerr(Op::SetAttr, path, e))
}

/// Masking `/proc/<name>`: a directory gets the read-only tmpfs by name
/// from the procfs root, anything else a clone of the checked /dev/null
/// attached by name below the procfs root fd. Missing names are skipped.
pub(super) fn mask_proc(pr: &mut ProcRoot<'_>, devnull: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
    let seen = pr.listing.seen(name);
    if seen == Seen::Missing {
        return Ok(());
    }
    let c = rel_cstring(Path::new(name)).map_err(|e| merr(Op::Resolve, path, e))?;
    let dir = match seen {
        Seen::Type(libc::DT_DIR) => true,
        Seen::Type(t) if t != libc::DT_LNK && t != libc::DT_UNKNOWN => false,
        // Unknown, or a symlink (`mounts`, `net`): its target decides.
        _ => match fstatat(&pr.fd, c.as_c_str(), AtFlags::empty()) {
            Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(merr(Op::Stat, path, e)),
        },
    };
    if dir {
        pr.enter().map_err(|e| merr(Op::Chdir, Path::new("/proc"), e))?;
        let ro = MsFlags::MS_RDONLY;
        return mount(Some("tmpfs"), c.as_c_str(), Some("tmpfs"), ro, None::<&str>).map_err(|e| merr(Op::Mount, path, e));
    }
    let mnt = clone_tree(devnull, false).map_err(|e| merr(Op::CloneTree, path, e))?;
    move_mount_to(mnt.as_fd(), pr.fd.as_fd(), &c).map_err(|e| merr(Op::MoveMount, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_children_are_single_names() {
        assert_eq!(proc_child(Path::new("/proc/keys")), Some(OsStr::new("keys")));
        assert_eq!(proc_child(Path::new("/proc/./keys")), Some(OsStr::new("keys")));
        assert_eq!(proc_child(Path::new("/proc/sys/kernel")), None);
        assert_eq!(proc_child(Path::new("/proc/../etc")), None);
        assert_eq!(proc_child(Path::new("/proc")), None);
        assert_eq!(proc_child(Path::new("/procx/keys")), None);
        assert_eq!(proc_child(Path::new("/sys/firmware")), None);
    }

    /// The listing of a real directory: listed names get their type,
    /// unlisted ones are missing, once the listing is complete.
    #[test]
    fn listing_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("nsboot-listing-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("adir")).unwrap();
        std::fs::write(dir.join("afile"), b"").unwrap();
        // Enough entries for several getdents64 calls of a 4 KiB buffer.
        for i in 0..300 {
            std::fs::write(dir.join(format!("filler-{i:03}-{}", "x".repeat(20))), b"").unwrap();
        }
        std::fs::write(dir.join("zlast"), b"").unwrap();
        let fd = nix::fcntl::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).unwrap();
        let names: [&[u8]; 4] = [b"adir", b"afile", b"zlast", b"nothere"];
        let mut l = Listing { names: [(&[][..], Seen::Unknown); TRACKED], len: 0 };
        for (i, n) in names.iter().enumerate() {
            l.names[i] = (n, Seen::Unknown);
        }
        l.len = names.len();
        l.take(fd.as_fd());
        assert_eq!(l.seen(OsStr::new("adir")), Seen::Type(libc::DT_DIR));
        assert_eq!(l.seen(OsStr::new("afile")), Seen::Type(libc::DT_REG));
        assert_eq!(l.seen(OsStr::new("zlast")), Seen::Type(libc::DT_REG));
        assert_eq!(l.seen(OsStr::new("nothere")), Seen::Missing);
        assert_eq!(l.seen(OsStr::new("untracked")), Seen::Unknown);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
