//! cgroup v2 device rules: a generated `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program attached to the container's cgroup2 directory with
//! `BPF_CGROUP_DEVICE`.
//!
//! Semantics (as the v1 devices list the spec models): rules apply in
//! order and the last matching rule decides; no match denies. The program
//! therefore tests the rules from last to first and returns on the first
//! match. An allow rule matches when the requested access is within the
//! rule's (`rw` allows `r`); a deny rule matches when they share any bit
//! (`w` denied blocks an `rw` open). The spec's rules are followed by the
//! same default allow list as on v1 ([`super::v1::DEFAULT_ALLOW`]).
//!
//! Program context (`struct bpf_cgroup_dev_ctx`): `access_type` (u32 at 0:
//! device type in the low 16 bits — block 1, char 2 — and access in the
//! high 16: mknod 1, read 2, write 4), `major` (u32 at 4), `minor` (u32 at 8).
//! Return 1 allows, 0 denies (EPERM).
//!
//! Proven on this hybrid host: cgroup-bpf programs run on the cgroup2
//! (unified) hierarchy whatever controllers are bound to v1, so the test
//! attaches a program to a cgroup in /sys/fs/cgroup/unified and checks a
//! process in it gets EPERM for a denied device and not for an allowed one.

use std::os::fd::{AsFd, BorrowedFd};

use oci_spec::runtime::LinuxDeviceCgroup;

use super::{invalid, CgroupError, Result};

/// One device rule, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `None`: all types (`a`); else 1 block, 2 char.
    pub typ: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// mknod 1 | read 2 | write 4.
    pub access: u32,
}

impl DeviceRule {
    /// Parse `linux.resources.devices[i]`; errors name the key.
    pub fn from_spec(r: &LinuxDeviceCgroup, i: usize) -> Result<Self> {
        let key = format!("linux.resources.devices[{i}]");
        let typ = match r.typ().unwrap_or_default().as_str() {
            "a" => None,
            "b" => Some(1),
            "c" | "u" => Some(2),
            t => {
                return Err(invalid(
                    format!("{key}.type"),
                    format!("{t:?}: device rules know a, b, c and u"),
                ))
            }
        };
        let num = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
            match n {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= i32::MAX as u32)
                    .map(Some)
                    .ok_or_else(|| {
                        invalid(format!("{key}.{what}"), format!("{n} is out of range"))
                    }),
            }
        };
        let mut access = 0;
        for c in r.access().as_deref().unwrap_or("rwm").chars() {
            access |= match c {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => {
                    return Err(invalid(
                        format!("{key}.access"),
                        format!("{c:?} is not one of r, w, m"),
                    ))
                }
            };
        }
        Ok(Self {
            allow: r.allow(),
            typ,
            major: num(r.major(), "major")?,
            minor: num(r.minor(), "minor")?,
            access,
        })
    }

    /// Parse a v1-style line (`c 1:3 rwm`, `c *:* m`).
    pub(crate) fn from_line(line: &str) -> Self {
        let mut w = line.split(' ');
        let typ = match w.next() {
            Some("b") => Some(1),
            Some("c") => Some(2),
            _ => None,
        };
        let (maj, min) = w
            .next()
            .and_then(|n| n.split_once(':'))
            .unwrap_or(("*", "*"));
        let access = w.next().unwrap_or("rwm").chars().map(|c| match c {
            'm' => 1,
            'r' => 2,
            _ => 4,
        });
        Self {
            allow: true,
            typ,
            major: maj.parse().ok(),
            minor: min.parse().ok(),
            access: access.fold(0, |a, b| a | b),
        }
    }
}

// eBPF opcodes (linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const JMP_JNE_K: u8 = 0x55;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

/// One instruction, as the kernel reads it (little-endian host layout:
/// code, dst:4|src:4, off, imm).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let regs = (src << 4) | (dst & 0xf);
    let bytes = [
        code,
        regs,
        off.to_ne_bytes()[0],
        off.to_ne_bytes()[1],
        imm.to_ne_bytes()[0],
        imm.to_ne_bytes()[1],
        imm.to_ne_bytes()[2],
        imm.to_ne_bytes()[3],
    ];
    u64::from_ne_bytes(bytes)
}

/// Generate the program for `rules` (already including any defaults).
pub fn program(rules: &[DeviceRule]) -> Vec<u64> {
    // r2 = access_type; r3 = type; r4 = access; r5 = major; r6 = minor.
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU64_AND_K, 3, 0, 0, 0xffff),
        insn(ALU64_MOV_X, 4, 2, 0, 0),
        insn(ALU64_RSH_K, 4, 0, 0, 16),
        insn(LDX_MEM_W, 5, 1, 4, 0),
        insn(LDX_MEM_W, 6, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each check jumps past the rest of this rule's block on mismatch;
        // offsets are patched once the block's length is known.
        let mut block: Vec<(u8, u8, u8, i32, bool)> = Vec::new();
        if let Some(t) = r.typ {
            block.push((JMP_JNE_K, 3, 0, t as i32, true));
        }
        block.push((ALU64_MOV_X, 7, 4, 0, false));
        if r.allow {
            block.push((ALU64_AND_K, 7, 0, !(r.access as i32), false));
            block.push((JMP_JNE_K, 7, 0, 0, true));
        } else {
            block.push((ALU64_AND_K, 7, 0, r.access as i32, false));
            block.push((JMP_JEQ_K, 7, 0, 0, true));
        }
        if let Some(m) = r.major {
            block.push((JMP_JNE_K, 5, 0, m as i32, true));
        }
        if let Some(m) = r.minor {
            block.push((JMP_JNE_K, 6, 0, m as i32, true));
        }
        block.push((ALU64_MOV_K, 0, 0, i32::from(r.allow), false));
        let len = block.len() + 1; // + exit
        for (i, (code, dst, src, imm, jump)) in block.into_iter().enumerate() {
            let off = if jump { (len - i - 1) as i16 } else { 0 };
            p.push(insn(code, dst, src, off, imm));
        }
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Parse the spec's rules, append the default allow list, generate, load
/// and attach to the cgroup2 directory `cgroup` (an fd from
/// [`super::Cgroup::unified_fd`]).
pub fn attach_device_filter(cgroup: BorrowedFd<'_>, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    const KEY: &str = "linux.resources.devices";
    let mut parsed = rules
        .iter()
        .enumerate()
        .map(|(i, r)| DeviceRule::from_spec(r, i))
        .collect::<Result<Vec<_>>>()?;
    parsed.extend(
        super::v1::DEFAULT_ALLOW
            .iter()
            .map(|l| DeviceRule::from_line(l)),
    );
    let prog = program(&parsed);
    let fd =
        super::sys::bpf_load_cgroup_device(&prog).map_err(|(errno, log)| CgroupError::Bpf {
            key: KEY.into(),
            op: "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE)",
            errno,
            log,
        })?;
    super::sys::bpf_attach_cgroup_device(cgroup, fd.as_fd()).map_err(|errno| CgroupError::Bpf {
        key: KEY.into(),
        op: "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)",
        errno,
        log: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_generate_one_block_each() {
        let deny_all = DeviceRule {
            allow: false,
            typ: None,
            major: None,
            minor: None,
            access: 7,
        };
        let null = DeviceRule::from_line("c 1:3 rwm");
        assert_eq!(
            null,
            DeviceRule {
                allow: true,
                typ: Some(2),
                major: Some(1),
                minor: Some(3),
                access: 7
            }
        );
        assert_eq!(
            DeviceRule::from_line("b *:* m"),
            DeviceRule {
                allow: true,
                typ: Some(1),
                major: None,
                minor: None,
                access: 1
            }
        );
        let p = program(&[deny_all, null]);
        // 7 prologue + null block (type, mov, and, jne, major, minor, mov, exit = 8)
        // + deny-all block (mov, and, jeq, mov, exit = 5) + 2 epilogue.
        assert_eq!(p.len(), 7 + 8 + 5 + 2);
        // The null block is first (last rule wins): its type check skips
        // the 7 instructions after it.
        let first = p[7].to_ne_bytes();
        assert_eq!(first[0], JMP_JNE_K);
        assert_eq!(i16::from_ne_bytes([first[2], first[3]]), 7);
    }
}
