//! A cache of compiled seccomp programs, keyed by the exact
//! `linux.seccomp` object (as crun caches its BPF): building Docker's
//! profile for three architectures costs 10-20 ms in libseccomp, reading
//! the cached program back well under a millisecond.
//!
//! One file per profile, `<fnv64 of the key>.json`, holding the key itself
//! (this crate's and libseccomp's versions + the serialized object) next to
//! the program: an entry is used only when its key is byte-equal, so a
//! hash collision or a stale entry is a miss, never a wrong filter. The
//! directory must be owned by the effective user and writable by nobody
//! else (a filter planted by another user would be loaded into the
//! container); otherwise the cache is not used. Entries are written to a
//! temporary file and renamed; any cache error means "compile".

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};

use super::{Result, SeccompPlan};

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    flags: u64,
    skipped: Vec<String>,
    /// `code | jt << 16 | jf << 24 | k << 32` per instruction.
    bpf: Vec<u64>,
}

fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3))
}

fn key(spec: &LinuxSeccomp) -> Option<String> {
    let lib = libseccomp::ScmpVersion::current().ok()?;
    let json = serde_json::to_string(spec).ok()?;
    Some(format!("nsboot-oci {} libseccomp {}.{}.{}\n{json}", env!("CARGO_PKG_VERSION"), lib.major, lib.minor, lib.micro))
}

/// The directory if it is safe to trust (made 0700 when missing).
fn trusted(dir: &Path) -> bool {
    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0
    })
}

impl SeccompPlan {
    /// [`from_spec`](Self::from_spec) through the cache in `dir` (see the
    /// module doc). Validation errors are the same; a cache hit skips
    /// libseccomp entirely.
    pub fn from_spec_cached(spec: &LinuxSeccomp, dir: &Path) -> Result<Self> {
        let Some(key) = key(spec).filter(|_| trusted(dir)) else { return Self::from_spec(spec) };
        let path = dir.join(format!("{:016x}.json", fnv64(key.as_bytes())));
        if let Some(e) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Entry>(&b).ok()) {
            if e.key == key && !e.bpf.is_empty() {
                let program = e
                    .bpf
                    .iter()
                    .map(|w| libc::sock_filter {
                        code: *w as u16,
                        jt: (*w >> 16) as u8,
                        jf: (*w >> 24) as u8,
                        k: (*w >> 32) as u32,
                    })
                    .collect();
                return Ok(SeccompPlan {
                    program,
                    flags: e.flags as libc::c_ulong,
                    listener_path: spec.listener_path().clone(),
                    listener_metadata: spec.listener_metadata().clone(),
                    skipped: e.skipped,
                });
            }
        }
        let plan = Self::from_spec(spec)?;
        // c_ulong is u64 here, u32 on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let flags = u64::from(plan.flags);
        let e = Entry {
            key,
            flags,
            skipped: plan.skipped.clone(),
            bpf: plan
                .program
                .iter()
                .map(|f| u64::from(f.code) | u64::from(f.jt) << 16 | u64::from(f.jf) << 24 | u64::from(f.k) << 32)
                .collect(),
        };
        if let Ok(b) = serde_json::to_vec(&e) {
            let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), fnv64(&b)));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&b))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(errno: u32) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["unshare", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        }))
        .unwrap()
    }

    #[test]
    fn a_hit_is_the_same_program_and_a_different_profile_misses() {
        let dir = std::env::temp_dir().join(format!("nsboot-seccomp-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = profile(1);
        let fresh = SeccompPlan::from_spec(&p).unwrap();
        let first = SeccompPlan::from_spec_cached(&p, &dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "one entry written");
        let hit = SeccompPlan::from_spec_cached(&p, &dir).unwrap();
        for got in [&first, &hit] {
            assert_eq!(got.program.len(), fresh.program.len());
            assert!(got.program.iter().zip(&fresh.program).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
            assert_eq!(got.flags, fresh.flags);
            assert_eq!(got.skipped, vec!["no_such_call".to_owned()]);
        }
        // Another errno: another key, another program.
        let other = SeccompPlan::from_spec_cached(&profile(2), &dir).unwrap();
        assert_ne!(
            other.program.iter().map(|f| f.k).collect::<Vec<_>>(),
            fresh.program.iter().map(|f| f.k).collect::<Vec<_>>()
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        // An entry whose key does not match (a collision, a planted file)
        // is not used.
        let entry = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let mut e: Entry = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
        e.key.push('x');
        e.bpf = vec![0x7fff_0000_0000_0006]; // "return ALLOW"
        std::fs::write(&entry, serde_json::to_vec(&e).unwrap()).unwrap();
        for p in [profile(1), profile(2)] {
            assert!(SeccompPlan::from_spec_cached(&p, &dir).unwrap().program.len() > 1);
        }
        // A directory others can write is not trusted.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        assert!(!trusted(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
