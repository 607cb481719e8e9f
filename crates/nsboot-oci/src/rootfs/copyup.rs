//! `tmpcopyup`: a tmpfs whose initial content is what the image had at
//! the mount point — owners, modes, times, symlinks, device nodes, FIFOs
//! and (where the kernel allows) extended attributes.
//!
//! The image's directory is opened *before* the tmpfs covers it; that fd
//! still reaches the covered content, so no scratch mount on the host is
//! needed (runc mounts the tmpfs on a host tmpdir and moves it). All
//! copying is fd-relative with `O_NOFOLLOW`: a symlink is copied as a
//! symlink, never followed.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, futimens, mknodat, utimensat, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::error::{Op, Result, RootfsError};
use super::mount::{fs_mount, initial_flags, merr, post_mount, target};
use super::path::resolve;
use super::plan::MountPlan;
use super::Ctx;
use nsboot::sys::fs::{fgetxattr, flistxattr, fsetxattr};

/// What a copy moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub nodes: u64,
    pub bytes: u64,
}

pub(crate) fn mount_tmpfs_copyup(ctx: &Ctx<'_>, m: &MountPlan) -> Result<()> {
    let target = target(ctx, m, &m.dest, true)?;
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let src = resolve(ctx.root(), &m.dest, dir).map_err(|e| merr(m, Op::Open, e))?;
    fs_mount(m, &m.dest, target.as_fd(), "tmpfs", initial_flags(m), &m.data)?;
    let dst = resolve(ctx.root(), &m.dest, dir).map_err(|e| merr(m, Op::Open, e))?;
    copy_tree(src.as_fd(), dst.as_fd(), &m.dest)?;
    post_mount(ctx, m, &m.dest)
}

struct Copier<'a> {
    label: &'a Path,
    stats: CopyStats,
    buf: Vec<u8>,
}

/// Copy the content of directory `src` into directory `dst` (both opened
/// `O_RDONLY|O_DIRECTORY`), then give `dst` the owner, mode and times of
/// `src`. `label` names the copy in errors. Public for the benchmark.
pub fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, label: &Path) -> Result<CopyStats> {
    let old = nix::sys::stat::umask(Mode::empty());
    let mut c = Copier { label, stats: CopyStats::default(), buf: Vec::new() };
    let r = c.copy_dir(src, dst, &mut PathBuf::from("/"));
    nix::sys::stat::umask(old);
    r?;
    Ok(c.stats)
}

fn is_ignorable_xattr_error(e: Errno) -> bool {
    // "where possible": security.*/trusted.* in a user namespace, or a
    // filesystem without xattr support.
    matches!(e, Errno::EPERM | Errno::EOPNOTSUPP | Errno::EACCES | Errno::ENODATA)
}

impl Copier<'_> {
    fn err(&self, op: Op, entry: &Path, errno: Errno) -> RootfsError {
        RootfsError::CopyUp { path: self.label.to_path_buf(), op, entry: entry.to_path_buf(), errno }
    }

    fn copy_dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &mut PathBuf) -> Result<()> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = Dir::openat(src, ".", flags, Mode::empty()).map_err(|e| self.err(Op::Readdir, rel, e))?;
        let mut names: Vec<Vec<u8>> = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| self.err(Op::Readdir, rel, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        drop(dir);
        for name in names {
            let name = OsStr::from_bytes(&name);
            rel.push(name);
            let r = self.copy_entry(src, dst, name, rel);
            rel.pop();
            r?;
        }
        let st = fstat(src).map_err(|e| self.err(Op::Stat, rel, e))?;
        self.finish_fd(src, dst, &st, rel)
    }

    fn copy_entry(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<()> {
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.err(Op::Stat, rel, e))?;
        let fmt = st.st_mode & libc::S_IFMT;
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match fmt {
            libc::S_IFDIR => {
                nix::sys::stat::mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| self.err(Op::Mkdir, rel, e))?;
                let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow;
                let s = nix::fcntl::openat(src, name, dir, Mode::empty()).map_err(|e| self.err(Op::Open, rel, e))?;
                let d = nix::fcntl::openat(dst, name, dir, Mode::empty()).map_err(|e| self.err(Op::Open, rel, e))?;
                self.stats.dirs += 1;
                self.copy_dir(s.as_fd(), d.as_fd(), &mut rel.to_path_buf())
            }
            libc::S_IFREG => {
                let s = nix::fcntl::openat(src, name, OFlag::O_RDONLY | nofollow, Mode::empty())
                    .map_err(|e| self.err(Op::Open, rel, e))?;
                let wflags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow;
                let d = nix::fcntl::openat(dst, name, wflags, Mode::from_bits_truncate(0o600))
                    .map_err(|e| self.err(Op::Create, rel, e))?;
                self.copy_data(&s, &d, st.st_size, rel)?;
                self.stats.files += 1;
                self.finish_fd(s.as_fd(), d.as_fd(), &st, rel)
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src, name).map_err(|e| self.err(Op::Readlink, rel, e))?;
                nix::unistd::symlinkat(target.as_os_str(), dst, name).map_err(|e| self.err(Op::Symlink, rel, e))?;
                self.stats.symlinks += 1;
                self.finish_at(dst, name, &st, rel, false)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK => {
                let kind = SFlag::from_bits_truncate(fmt);
                mknodat(dst, name, kind, perm, st.st_rdev).map_err(|e| self.err(Op::Mknod, rel, e))?;
                self.stats.nodes += 1;
                self.finish_at(dst, name, &st, rel, true)
            }
            _ => Ok(()),
        }
    }

    /// Data: copy_file_range (same filesystem), else sendfile, else read/write.
    fn copy_data(&mut self, s: &OwnedFd, d: &OwnedFd, size: i64, rel: &Path) -> Result<()> {
        let mut left = usize::try_from(size).unwrap_or(0);
        let mut use_cfr = true;
        let mut use_sendfile = true;
        loop {
            let chunk = left.clamp(1 << 20, 1 << 30);
            let r = if use_cfr {
                nix::fcntl::copy_file_range(s, None, d, None, chunk)
            } else if use_sendfile {
                nix::sys::sendfile::sendfile(d, s, None, chunk)
            } else {
                self.read_write(s, d)
            };
            match r {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.stats.bytes += n as u64;
                    left = left.saturating_sub(n);
                }
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) if use_cfr => use_cfr = false,
                Err(Errno::EINVAL | Errno::ENOSYS) if use_sendfile => use_sendfile = false,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.err(Op::Copy, rel, e)),
            }
        }
    }

    fn read_write(&mut self, s: &OwnedFd, d: &OwnedFd) -> std::result::Result<usize, Errno> {
        if self.buf.is_empty() {
            self.buf = vec![0; 128 << 10];
        }
        let n = nix::unistd::read(s, &mut self.buf)?;
        let mut done = 0;
        while done < n {
            let chunk = self.buf.get(done..n).ok_or(Errno::EIO)?;
            done += nix::unistd::write(d, chunk)?;
        }
        Ok(n)
    }

    /// Owner, mode, xattrs and times of an opened file or directory.
    fn finish_fd(&self, s: BorrowedFd<'_>, d: BorrowedFd<'_>, st: &FileStat, rel: &Path) -> Result<()> {
        match fchown(d, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid))) {
            // An id with no mapping in this user namespace: keep ours.
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(self.err(Op::Chown, rel, e)),
        }
        // After chown, which clears set-id bits.
        nix::sys::stat::fchmod(d, Mode::from_bits_truncate(st.st_mode & 0o7777))
            .map_err(|e| self.err(Op::Chmod, rel, e))?;
        self.copy_xattrs(s, d, rel)?;
        futimens(d, &atime(st), &mtime(st)).map_err(|e| self.err(Op::Utimes, rel, e))
    }

    /// Owner (and for nodes the mode) and times of a symlink or node.
    fn finish_at(&self, d: BorrowedFd<'_>, name: &OsStr, st: &FileStat, rel: &Path, chmod: bool) -> Result<()> {
        let (u, g) = (Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)));
        match fchownat(d, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(self.err(Op::Chown, rel, e)),
        }
        if chmod {
            nix::sys::stat::fchmodat(
                d,
                name,
                Mode::from_bits_truncate(st.st_mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| self.err(Op::Chmod, rel, e))?;
        }
        utimensat(d, name, &atime(st), &mtime(st), UtimensatFlags::NoFollowSymlink)
            .map_err(|e| self.err(Op::Utimes, rel, e))
    }

    fn copy_xattrs(&self, s: BorrowedFd<'_>, d: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let names = match flistxattr(s) {
            Ok(n) => n,
            Err(e) if is_ignorable_xattr_error(e) => return Ok(()),
            Err(e) => return Err(self.err(Op::Xattr, rel, e)),
        };
        for raw in names.split_inclusive(|&b| b == 0) {
            let Ok(name) = CStr::from_bytes_with_nul(raw) else { continue };
            let value = match fgetxattr(s, name) {
                Ok(v) => v,
                Err(e) if is_ignorable_xattr_error(e) => continue,
                Err(e) => return Err(self.err(Op::Xattr, rel, e)),
            };
            match fsetxattr(d, name, &value) {
                Ok(()) => {}
                Err(e) if is_ignorable_xattr_error(e) => {}
                Err(e) => return Err(self.err(Op::Xattr, rel, e)),
            }
        }
        Ok(())
    }
}

fn atime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_atime, st.st_atime_nsec)
}

fn mtime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}
