//! One private handle on the host's `/proc`, checked to really be procfs
//! (`fstatfs == PROC_SUPER_MAGIC`), through which every read of process
//! state goes (mountinfo, cgroup, uid_map, kcore). Lookups below it refuse
//! magic links and leaving the procfs mount.

use std::borrow::Cow;
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use super::error::{Op, Refusal, Result, RootfsError};
use nsboot::sys::fs::openat2;

const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;

pub(crate) struct ProcHandle {
    fd: OwnedFd,
}

fn perr(op: Op, name: &str, errno: Errno) -> RootfsError {
    RootfsError::Proc { op, path: Path::new("/proc").join(name), errno }
}

impl ProcHandle {
    pub(crate) fn open() -> Result<Self> {
        let fd = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| perr(Op::Open, "", e))?;
        let st = fstatfs(&fd).map_err(|e| perr(Op::Statfs, "", e))?;
        if st.filesystem_type() != PROC_SUPER_MAGIC {
            return Err(RootfsError::Refused { path: "/proc".into(), reason: Refusal::NotProcfs });
        }
        Ok(Self { fd })
    }

    /// Read a small file below /proc (e.g. `self/mountinfo`).
    pub(crate) fn read(&self, name: &CStr) -> Result<String> {
        self.read_with(name, str::to_owned)
    }

    /// Read a small file below /proc and hand its text to `f` without
    /// copying it to the heap (see [`read_small_with`]).
    pub(crate) fn read_with<R>(&self, name: &CStr, f: impl FnOnce(&str) -> R) -> Result<R> {
        let shown = || name.to_string_lossy();
        let fd = openat2(self.fd.as_fd(), name, libc::O_RDONLY, 0, BENEATH).map_err(|e| perr(Op::Open, &shown(), e))?;
        let errno = |e: std::io::Error| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        read_small_with(std::fs::File::from(fd), |b| std::str::from_utf8(b).map(f))
            .map_err(|e| perr(Op::Read, &shown(), errno(e)))?
            .map_err(|_| perr(Op::Read, &shown(), Errno::EIO))
    }

    /// Does `name` exist below /proc?
    pub(crate) fn exists(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// Is the caller inside a (non-initial) user namespace?
    pub(crate) fn in_userns(&self) -> Result<bool> {
        self.read_with(c"self/uid_map", |map| !map.split_whitespace().eq(["0", "0", "4294967295"]))
    }

    /// Refuse to run in PID 1's mount namespace (the host's, most likely),
    /// unless we are PID 1 ourselves (initramfs). When PID 1's namespace
    /// cannot be inspected (EACCES in a user namespace) nothing is refused.
    pub(crate) fn check_new_mount_ns(&self) -> Result<()> {
        // PID 1's first: from a new PID namespace it usually cannot be
        // inspected, and then our own needs no lookup either.
        let Ok(init) = nix::sys::stat::fstatat(&self.fd, "1/ns/mnt", AtFlags::empty()) else {
            return Ok(());
        };
        let me = nix::sys::stat::fstatat(&self.fd, "self/ns/mnt", AtFlags::empty())
            .map_err(|e| perr(Op::Stat, "self/ns/mnt", e))?;
        if (me.st_dev, me.st_ino) == (init.st_dev, init.st_ino) && nix::unistd::getpid().as_raw() != 1 {
            return Err(RootfsError::Refused { path: "/proc/self/ns/mnt".into(), reason: Refusal::NotNewMountNamespace });
        }
        Ok(())
    }

    /// The text of /proc/self/mountinfo; [`parse_mountinfo`] borrows from it.
    pub(crate) fn mountinfo(&self) -> Result<String> {
        self.read(c"self/mountinfo")
    }
}

/// All of a small file whose size is not known (files below /proc report
/// 0), handed to `f`: read_to_string's size probe (statx + lseek) and its
/// doubling from 32 bytes would cost a syscall each. One page on the stack
/// usually takes two reads (the data, then EOF) and no heap at all; a
/// larger file continues in a vector. (A page-sized heap buffer is a
/// "large" request for glibc's malloc, which first consolidates its
/// fastbins: in a freshly forked child that writes to, and so copies,
/// several pages of the parent's heap.)
fn read_small_with<R>(mut file: std::fs::File, f: impl FnOnce(&[u8]) -> R) -> std::io::Result<R> {
    let mut page = [0u8; 4096];
    let mut len = 0;
    let mut more = Vec::new();
    loop {
        let buf: &mut [u8] = if more.is_empty() { &mut page[len..] } else { &mut more[len..] };
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if more.is_empty() && len == page.len() {
            more = page.to_vec();
        }
        if !more.is_empty() && len == more.len() {
            more.resize(more.len() * 2, 0);
        }
    }
    Ok(if more.is_empty() { f(&page[..len]) } else { f(&more[..len]) })
}

/// One line of /proc/self/mountinfo (the fields nsboot uses), borrowed
/// from the text: parsing allocates only for paths the kernel escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountInfo<'a> {
    pub root: Cow<'a, Path>,
    pub mountpoint: Cow<'a, Path>,
    /// The optional fields ("shared:1 master:2"), space-separated.
    pub optional: &'a str,
    pub fstype: &'a str,
    pub super_opts: &'a str,
}

impl MountInfo<'_> {
    pub(crate) fn optional(&self) -> impl Iterator<Item = &str> {
        self.optional.split(' ').filter(|o| !o.is_empty())
    }
}

/// Undo the kernel's octal escaping (`\040` for space, …).
fn unescape(s: &str) -> Cow<'_, Path> {
    let b = s.as_bytes();
    if !b.contains(&b'\\') {
        return Cow::Borrowed(Path::new(s));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out)))
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountInfo<'_>> {
    parse_mountinfo_of(text, |_| true)
}

/// The lines of mountinfo whose filesystem type passes `keep` (tested
/// before the rest of the line is split or unescaped).
pub(crate) fn parse_mountinfo_of(text: &str, keep: impl Fn(&str) -> bool) -> Vec<MountInfo<'_>> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if !keep(post.split(' ').next()?) {
                return None;
            }
            // id parent major:minor root mountpoint options [optional...]
            let mut f = pre.splitn(7, ' ');
            let (_, _, _) = (f.next()?, f.next()?, f.next()?);
            let root = unescape(f.next()?);
            let mountpoint = unescape(f.next()?);
            let _options = f.next()?;
            let optional = f.next().unwrap_or("");
            // fstype source super-options
            let mut p = post.splitn(3, ' ');
            let fstype = p.next()?;
            let _source = p.next();
            let super_opts = p.next().unwrap_or("");
            Some(MountInfo { root, mountpoint, optional, fstype, super_opts })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_of_any_size() {
        let dir = std::env::temp_dir().join(format!("nsboot-read-small-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for size in [0usize, 1, 4095, 4096, 4097, 8191, 8192, 8193, 20000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let f = dir.join(size.to_string());
            std::fs::write(&f, &data).unwrap();
            assert_eq!(read_small_with(std::fs::File::open(&f).unwrap(), <[u8]>::to_vec).unwrap(), data, "size {size}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_mountinfo_lines() {
        let t = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, Path::new("/mnt x"));
        assert_eq!(m[0].root, Path::new("/mnt1"));
        assert_eq!(m[0].optional().collect::<Vec<_>>(), vec!["master:1", "shared:2"]);
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[1].super_opts, "rw");
        assert_eq!(m[1].optional().count(), 0);
        let only = parse_mountinfo_of(t, |f| f == "cgroup2");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].mountpoint, Path::new("/sys/fs/cgroup/unified"));
    }
}
