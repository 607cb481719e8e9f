//! Step 4: the container's /dev — device nodes, the ptmx symlink and the
//! /proc/self/fd links. Every operation is relative to one dirfd of the
//! rootfs's `dev` opened in-root with no symlinks allowed, so an image
//! whose `/dev` (or a component below it) is a symlink fails with ELOOP
//! instead of creating nodes elsewhere.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::error::{Op, Result, RootfsError};
use super::path::{fd_path, rel_cstring, BENEATH_NO_SYMLINKS, IN_ROOT};
use super::plan::DevicePlan;
use super::Ctx;
use nsboot::sys::fs::openat2;

fn derr(path: &Path, op: Op, errno: Errno) -> RootfsError {
    RootfsError::Device { op, path: path.to_path_buf(), errno }
}

/// Open the rootfs's /dev: in-root, and no symlink anywhere on the way.
pub(crate) fn open_dev(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let c = rel_cstring(Path::new("/dev")).map_err(|e| derr(Path::new("/dev"), Op::Open, e))?;
    let flags = (OFlag::O_PATH | OFlag::O_DIRECTORY).bits();
    openat2(root, &c, flags, 0, IN_ROOT | libc::RESOLVE_NO_SYMLINKS).map_err(|e| derr(Path::new("/dev"), Op::Open, e))
}

/// The owner mknod gives a new node in /dev: the caller's euid/egid, or
/// the directory's group when /dev is setgid. A node whose configured
/// owner is this one needs no chown.
struct NodeOwner {
    uid: u32,
    gid: u32,
}

fn node_owner(dev: BorrowedFd<'_>) -> Result<NodeOwner> {
    let st = nix::sys::stat::fstat(dev).map_err(|e| derr(Path::new("/dev"), Op::Stat, e))?;
    let gid = if st.st_mode & libc::S_ISGID != 0 { st.st_gid } else { nix::unistd::getegid().as_raw() };
    Ok(NodeOwner { uid: nix::unistd::geteuid().as_raw(), gid })
}

pub(crate) fn setup_dev(ctx: &Ctx<'_>) -> Result<()> {
    let dev = open_dev(ctx.root())?;
    let owner = node_owner(dev.as_fd())?;
    let old = nix::sys::stat::umask(Mode::empty());
    let r = ctx.plan.devices.iter().try_for_each(|d| create_device(ctx, dev.as_fd(), d, &owner));
    nix::sys::stat::umask(old);
    r?;
    setup_ptmx(dev.as_fd())?;
    setup_links(ctx, dev.as_fd())
}

/// The directory of `d` below /dev (created 0755 as needed) and its name.
/// `None` as the directory means /dev itself.
fn parent_of<'a>(dev: BorrowedFd<'_>, d: &'a DevicePlan, full: &Path) -> Result<(Option<OwnedFd>, &'a OsStr)> {
    let name = d.rel.file_name().ok_or_else(|| derr(full, Op::Create, Errno::EINVAL))?;
    let dir_flags = (OFlag::O_PATH | OFlag::O_DIRECTORY).bits();
    let Some(parent) = d.rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok((None, name));
    };
    let mut cur = openat2(dev, c".", dir_flags, 0, BENEATH_NO_SYMLINKS).map_err(|e| derr(full, Op::Open, e))?;
    {
        for comp in parent.iter() {
            match nix::sys::stat::mkdirat(&cur, comp, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(derr(full, Op::Mkdir, e)),
            }
            let c = rel_cstring(Path::new(comp)).map_err(|e| derr(full, Op::Open, e))?;
            cur = openat2(cur.as_fd(), &c, dir_flags, 0, BENEATH_NO_SYMLINKS).map_err(|e| derr(full, Op::Open, e))?;
        }
    }
    Ok((Some(cur), name))
}

fn create_device(ctx: &Ctx<'_>, dev: BorrowedFd<'_>, d: &DevicePlan, owner: &NodeOwner) -> Result<()> {
    let full = Path::new("/dev").join(&d.rel);
    let (owned, name) = parent_of(dev, d, &full)?;
    let parent = owned.as_ref().map_or(dev, |o| o.as_fd());
    // FIFOs need no privilege; other nodes cannot be made in a user ns.
    if ctx.bind_devices() && d.kind != SFlag::S_IFIFO {
        return bind_device(parent, name, d, &full);
    }
    let rdev = makedev(d.major, d.minor);
    let perm = Mode::from_bits_truncate(d.mode);
    // A node in a subdirectory of /dev may inherit that directory's group.
    let fresh_owner_matches = owned.is_none() && (d.uid, d.gid) == (owner.uid, owner.gid);
    match mknodat(parent, name, d.kind, perm, rdev) {
        // umask is 0 here: mknod gave the exact mode, and the owner is
        // already the configured one.
        Ok(()) if fresh_owner_matches => return Ok(()),
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Keep an identical node; replace anything else (a symlink
            // planted by the image, a regular file, another device).
            let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| derr(&full, Op::Stat, e))?;
            if st.st_mode & libc::S_IFMT == d.kind.bits() && st.st_rdev == rdev {
                return Ok(());
            }
            unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| derr(&full, Op::Unlink, e))?;
            mknodat(parent, name, d.kind, perm, rdev).map_err(|e| derr(&full, Op::Mknod, e))?;
        }
        Err(Errno::EPERM) => {
            ctx.mknod_refused.set(true);
            return bind_device(parent, name, d, &full);
        }
        Err(e) => return Err(derr(&full, Op::Mknod, e)),
    }
    fchownat(parent, name, Some(Uid::from_raw(d.uid)), Some(Gid::from_raw(d.gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| derr(&full, Op::Chown, e))
}

/// Bind-mount the host's node onto an empty regular file (user namespaces,
/// or when mknod is not permitted).
fn bind_device(parent: BorrowedFd<'_>, name: &OsStr, d: &DevicePlan, full: &Path) -> Result<()> {
    let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o644);
    match nix::fcntl::openat(parent, name, create, mode) {
        Ok(fd) => drop(fd),
        Err(Errno::EEXIST) => {
            let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| derr(full, Op::Stat, e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| derr(full, Op::Unlink, e))?;
                drop(nix::fcntl::openat(parent, name, create, mode).map_err(|e| derr(full, Op::Create, e))?);
            }
        }
        Err(e) => return Err(derr(full, Op::Create, e)),
    }
    let c = rel_cstring(Path::new(name)).map_err(|e| derr(full, Op::Open, e))?;
    let target = openat2(parent, &c, (OFlag::O_PATH | OFlag::O_NOFOLLOW).bits(), 0, BENEATH_NO_SYMLINKS)
        .map_err(|e| derr(full, Op::Open, e))?;
    let host: PathBuf = d.host_path();
    mount(Some(host.as_path()), fd_path(target.as_fd()).as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| derr(full, Op::Bind, e))
}

/// /dev/ptmx → pts/ptmx (the devpts instance's multiplexer), replacing
/// whatever the image (or `linux.devices`) put there.
fn setup_ptmx(dev: BorrowedFd<'_>) -> Result<()> {
    let full = Path::new("/dev/ptmx");
    match symlinkat("pts/ptmx", dev, "ptmx") {
        Err(Errno::EEXIST) => {}
        r => return r.map_err(|e| derr(full, Op::Symlink, e)),
    }
    unlinkat(dev, "ptmx", UnlinkatFlags::NoRemoveDir).map_err(|e| derr(full, Op::Unlink, e))?;
    symlinkat("pts/ptmx", dev, "ptmx").map_err(|e| derr(full, Op::Symlink, e))
}

fn setup_links(ctx: &Ctx<'_>, dev: BorrowedFd<'_>) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if ctx.proc.exists("kcore") {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(derr(&Path::new("/dev").join(name), Op::Symlink, e)),
        }
    }
    Ok(())
}
