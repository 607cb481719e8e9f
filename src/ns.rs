//! Linux namespace model: the eight namespace types, their `CLONE_NEW*`
//! flags, their `/proc/self/ns/<name>` files, and `type:path` join lists.
//!
//! Pure data except [`NsKind::is_supported`], which stats `/proc/self/ns`
//! once per kind and caches the answer.

use std::ffi::CString;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// One namespace type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    User,
    Uts,
    Time,
}

/// `CLONE_NEWTIME` (not in every libc release).
pub const CLONE_NEWTIME: u32 = 0x0000_0080;

impl NsKind {
    /// Every kind, in the order runc documents them (user is joined first
    /// by the stages, whatever its place here).
    pub const ALL: [NsKind; 8] = [
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::User,
        NsKind::Uts,
        NsKind::Time,
    ];

    /// The name used in NS_PATHS and as the file name in `/proc/self/ns`.
    pub const fn name(self) -> &'static str {
        match self {
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::User => "user",
            NsKind::Uts => "uts",
            NsKind::Time => "time",
        }
    }

    /// Parse a namespace name (`"net"`, ...). `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<NsKind> {
        NsKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The `CLONE_NEW*` flag of this kind.
    pub const fn clone_flag(self) -> u32 {
        match self {
            NsKind::Cgroup => libc::CLONE_NEWCGROUP as u32,
            NsKind::Ipc => libc::CLONE_NEWIPC as u32,
            NsKind::Mnt => libc::CLONE_NEWNS as u32,
            NsKind::Net => libc::CLONE_NEWNET as u32,
            NsKind::Pid => libc::CLONE_NEWPID as u32,
            NsKind::User => libc::CLONE_NEWUSER as u32,
            NsKind::Uts => libc::CLONE_NEWUTS as u32,
            NsKind::Time => CLONE_NEWTIME,
        }
    }

    /// The kind whose flag is exactly `flag`.
    pub fn from_clone_flag(flag: u32) -> Option<NsKind> {
        NsKind::ALL.into_iter().find(|k| k.clone_flag() == flag)
    }

    /// `/proc/self/ns/<name>`.
    pub fn proc_self_path(self) -> &'static str {
        match self {
            NsKind::Cgroup => "/proc/self/ns/cgroup",
            NsKind::Ipc => "/proc/self/ns/ipc",
            NsKind::Mnt => "/proc/self/ns/mnt",
            NsKind::Net => "/proc/self/ns/net",
            NsKind::Pid => "/proc/self/ns/pid",
            NsKind::User => "/proc/self/ns/user",
            NsKind::Uts => "/proc/self/ns/uts",
            NsKind::Time => "/proc/self/ns/time",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// Whether this kernel has the namespace type (`/proc/self/ns/<name>`
    /// exists). Checked once per kind per process, then cached.
    pub fn is_supported(self) -> bool {
        // 0 = unknown, 1 = no, 2 = yes.
        static CACHE: [AtomicU8; 8] = [const { AtomicU8::new(0) }; 8];
        let slot = &CACHE[self.index()];
        match slot.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = std::fs::symlink_metadata(self.proc_self_path()).is_ok();
                slot.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of namespace kinds, stored as the OR of their clone flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NsSet(u32);

/// Every bit that names a namespace.
pub const ALL_NS_FLAGS: u32 = libc::CLONE_NEWCGROUP as u32
    | libc::CLONE_NEWIPC as u32
    | libc::CLONE_NEWNS as u32
    | libc::CLONE_NEWNET as u32
    | libc::CLONE_NEWPID as u32
    | libc::CLONE_NEWUSER as u32
    | libc::CLONE_NEWUTS as u32
    | CLONE_NEWTIME;

impl NsSet {
    pub const EMPTY: NsSet = NsSet(0);

    /// The set named by `flags`; `Err(extra)` carries the bits that name no
    /// namespace.
    pub fn from_clone_flags(flags: u32) -> Result<NsSet, u32> {
        let extra = flags & !ALL_NS_FLAGS;
        if extra != 0 {
            Err(extra)
        } else {
            Ok(NsSet(flags))
        }
    }
    pub const fn clone_flags(self) -> u32 {
        self.0
    }
    pub const fn contains(self, kind: NsKind) -> bool {
        self.0 & kind.clone_flag() != 0
    }
    pub fn insert(&mut self, kind: NsKind) {
        self.0 |= kind.clone_flag();
    }
    pub fn remove(&mut self, kind: NsKind) {
        self.0 &= !kind.clone_flag();
    }
    pub const fn with(self, kind: NsKind) -> NsSet {
        NsSet(self.0 | kind.clone_flag())
    }
    pub const fn without(self, kind: NsKind) -> NsSet {
        NsSet(self.0 & !kind.clone_flag())
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = NsKind> {
        NsKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

impl FromIterator<NsKind> for NsSet {
    fn from_iter<I: IntoIterator<Item = NsKind>>(iter: I) -> Self {
        let mut s = NsSet::EMPTY;
        for k in iter {
            s.insert(k);
        }
        s
    }
}

/// One entry of a join list: the namespace at `path` is joined as `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsPath {
    pub kind: NsKind,
    /// Path bytes without NUL (paths need not be UTF-8).
    pub path: CString,
}

/// Why a `type:path` list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsListError {
    #[error("namespace entry {index} (\"{entry}\"): missing ':' between type and path")]
    MissingColon { index: usize, entry: String },
    #[error("namespace entry {index} (\"{entry}\"): unknown namespace type \"{kind}\"")]
    UnknownType { index: usize, entry: String, kind: String },
    #[error("namespace entry {index} (\"{entry}\"): empty path")]
    EmptyPath { index: usize, entry: String },
    #[error("namespace entry {index}: path contains a NUL byte")]
    NulInPath { index: usize },
    #[error("namespace list is empty")]
    Empty,
}

/// Parse runc's NS_PATHS format: `type:path[,type:path...]`.
///
/// Order is kept. Unknown type, missing colon and empty path are errors
/// naming the entry by its 0-based index.
pub fn parse_ns_list(list: &[u8]) -> Result<Vec<NsPath>, NsListError> {
    if list.is_empty() {
        return Err(NsListError::Empty);
    }
    let mut out = Vec::new();
    for (index, entry) in list.split(|b| *b == b',').enumerate() {
        let shown = String::from_utf8_lossy(entry).into_owned();
        let colon = entry
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| NsListError::MissingColon { index, entry: shown.clone() })?;
        let (kind_bytes, rest) = entry.split_at(colon);
        let path = rest.get(1..).unwrap_or_default();
        let kind_str = String::from_utf8_lossy(kind_bytes);
        let kind = NsKind::from_name(&kind_str).ok_or_else(|| NsListError::UnknownType {
            index,
            entry: shown.clone(),
            kind: kind_str.clone().into_owned(),
        })?;
        if path.is_empty() {
            return Err(NsListError::EmptyPath { index, entry: shown });
        }
        let path = CString::new(path.to_vec()).map_err(|_| NsListError::NulInPath { index })?;
        out.push(NsPath { kind, path });
    }
    Ok(out)
}

/// Format a join list back into runc's `type:path,...` form.
pub fn format_ns_list(paths: &[NsPath]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(p.kind.name().as_bytes());
        out.push(b':');
        out.extend_from_slice(p.path.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_flags_and_files_agree() {
        for k in NsKind::ALL {
            assert_eq!(NsKind::from_name(k.name()), Some(k));
            assert_eq!(NsKind::from_clone_flag(k.clone_flag()), Some(k));
            assert!(k.proc_self_path().ends_with(k.name()));
            assert_eq!(k.clone_flag().count_ones(), 1);
        }
        assert_eq!(NsKind::from_name("mount"), None);
        assert_eq!(NsKind::Mnt.clone_flag(), 0x0002_0000);
        assert_eq!(NsKind::Time.clone_flag(), 0x80);
    }

    #[test]
    fn set_round_trips_flags() {
        let s: NsSet = [NsKind::Net, NsKind::User].into_iter().collect();
        assert_eq!(s.clone_flags(), (libc::CLONE_NEWNET | libc::CLONE_NEWUSER) as u32);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![NsKind::Net, NsKind::User]);
        assert_eq!(NsSet::from_clone_flags(libc::CLONE_VM as u32), Err(libc::CLONE_VM as u32));
    }

    #[test]
    fn supported_matches_proc() {
        for k in NsKind::ALL {
            assert_eq!(k.is_supported(), std::path::Path::new(k.proc_self_path()).exists());
            assert_eq!(k.is_supported(), k.is_supported());
        }
    }

    #[test]
    fn parses_lists() {
        let l = parse_ns_list(b"user:/proc/1/ns/user,net:/var/run/netns/x").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].kind, NsKind::User);
        assert_eq!(l[1].path.as_bytes(), b"/var/run/netns/x");
        assert_eq!(format_ns_list(&l), b"user:/proc/1/ns/user,net:/var/run/netns/x".to_vec());
        // A path may contain ':'.
        let l = parse_ns_list(b"mnt:/a:b").unwrap();
        assert_eq!(l[0].path.as_bytes(), b"/a:b");
    }

    #[test]
    fn rejects_bad_lists() {
        assert!(matches!(parse_ns_list(b"net"), Err(NsListError::MissingColon { index: 0, .. })));
        assert!(matches!(
            parse_ns_list(b"net:/x,bogus:/y"),
            Err(NsListError::UnknownType { index: 1, .. })
        ));
        assert!(matches!(parse_ns_list(b"net:"), Err(NsListError::EmptyPath { index: 0, .. })));
        assert!(matches!(parse_ns_list(b"net:/x,"), Err(NsListError::MissingColon { index: 1, .. })));
        assert_eq!(parse_ns_list(b""), Err(NsListError::Empty));
    }
}
