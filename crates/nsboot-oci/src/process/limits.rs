//! `process.rlimits`, `process.ioPriority`, `process.scheduler` and
//! `linux.personality`: checked into plain numbers at plan time, applied
//! with one syscall each.

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process,
};

use crate::error::{step, ConfigError, OciError, Result};
use nix::sys::resource::Resource;

use crate::sys::{self, SchedAttr};

/// The rlimit names of the spec, with their `RLIMIT_*` resource.
pub const RLIMITS: [(&str, Resource); 16] = [
    ("RLIMIT_CPU", Resource::RLIMIT_CPU),
    ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
    ("RLIMIT_DATA", Resource::RLIMIT_DATA),
    ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    ("RLIMIT_CORE", Resource::RLIMIT_CORE),
    ("RLIMIT_RSS", Resource::RLIMIT_RSS),
    ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", Resource::RLIMIT_AS),
    ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", Resource::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
];

const IOPRIO_CLASSES: [&str; 3] = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"];
const SCHED_POLICIES: [&str; 7] =
    ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"];
const SCHED_FLAGS: [&str; 7] = [
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
];
const PERSONALITY_DOMAINS: [&str; 2] = ["LINUX", "LINUX32"];

/// One rlimit: resource, soft, hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub name: &'static str,
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

fn invalid(key: impl Into<String>, value: impl ToString, problem: &'static str) -> OciError {
    ConfigError::Invalid { key: key.into(), value: value.to_string(), problem }.into()
}

fn rlimit_name(t: PosixRlimitType) -> &'static str {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => "RLIMIT_CPU",
        T::RlimitFsize => "RLIMIT_FSIZE",
        T::RlimitData => "RLIMIT_DATA",
        T::RlimitStack => "RLIMIT_STACK",
        T::RlimitCore => "RLIMIT_CORE",
        T::RlimitRss => "RLIMIT_RSS",
        T::RlimitNproc => "RLIMIT_NPROC",
        T::RlimitNofile => "RLIMIT_NOFILE",
        T::RlimitMemlock => "RLIMIT_MEMLOCK",
        T::RlimitAs => "RLIMIT_AS",
        T::RlimitLocks => "RLIMIT_LOCKS",
        T::RlimitSigpending => "RLIMIT_SIGPENDING",
        T::RlimitMsgqueue => "RLIMIT_MSGQUEUE",
        T::RlimitNice => "RLIMIT_NICE",
        T::RlimitRtprio => "RLIMIT_RTPRIO",
        T::RlimitRttime => "RLIMIT_RTTIME",
    }
}

/// `process.rlimits`: each type at most once (runc refuses duplicates),
/// soft ≤ hard.
pub fn rlimits(p: &Process) -> Result<Vec<Rlimit>> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let name = rlimit_name(r.typ());
        let key = || format!("process.rlimits[{i}]");
        let resource = RLIMITS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .ok_or_else(|| invalid(key(), name, "unknown rlimit"))?;
        if out.iter().any(|o| o.resource == resource) {
            return Err(invalid(key(), name, "rlimit type given twice"));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                key(),
                format!("soft {} hard {}", r.soft(), r.hard()),
                "soft limit above the hard limit",
            ));
        }
        out.push(Rlimit { name, resource, soft: r.soft(), hard: r.hard() });
    }
    Ok(out)
}

/// `setrlimit` of one limit.
pub fn apply_rlimit(r: &Rlimit) -> Result<()> {
    nix::sys::resource::setrlimit(r.resource, r.soft, r.hard).map_err(step("setrlimit", r.name))
}

/// `process.ioPriority`: (class number, level 0-7).
pub fn io_priority(p: &Process) -> Result<Option<(u32, u32)>> {
    let Some(io) = p.io_priority() else { return Ok(None) };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&io.priority()) {
        return Err(invalid("process.ioPriority.priority", io.priority(), "must be 0-7"));
    }
    Ok(Some((class, io.priority() as u32)))
}

/// `process.scheduler` as a `sched_attr`.
pub fn scheduler(p: &Process) -> Result<Option<SchedAttr>> {
    let Some(s) = p.scheduler() else { return Ok(None) };
    use LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => libc::SCHED_OTHER,
        P::SchedFifo => libc::SCHED_FIFO,
        P::SchedRr => libc::SCHED_RR,
        P::SchedBatch => libc::SCHED_BATCH,
        P::SchedIso => 4,
        P::SchedIdle => libc::SCHED_IDLE,
        P::SchedDeadline => 6,
    } as u32;
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag as F;
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid("process.scheduler.nice", nice, "must be -20..19"));
    }
    let priority = s.priority().unwrap_or(0);
    let rt = policy == libc::SCHED_FIFO as u32 || policy == libc::SCHED_RR as u32;
    if rt && !(1..=99).contains(&priority) {
        return Err(invalid("process.scheduler.priority", priority, "SCHED_FIFO/SCHED_RR need a priority 1..99"));
    }
    if !rt && priority != 0 {
        return Err(invalid("process.scheduler.priority", priority, "only SCHED_FIFO/SCHED_RR take a priority"));
    }
    let (runtime, deadline, period) = (s.runtime().unwrap_or(0), s.deadline().unwrap_or(0), s.period().unwrap_or(0));
    if policy == 6 && (runtime == 0 || deadline == 0) {
        return Err(invalid("process.scheduler", "SCHED_DEADLINE", "needs runtime and deadline"));
    }
    Ok(Some(SchedAttr {
        size: 0,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        util_min: 0,
        util_max: 0,
    }))
}

/// `linux.personality` as the persona number (flags are refused: the
/// spec defines none yet, runc refuses them too).
pub fn personality(linux: Option<&oci_spec::runtime::Linux>) -> Result<Option<libc::c_ulong>> {
    let Some(p) = linux.and_then(|l| l.personality().as_ref()) else { return Ok(None) };
    if let Some(flags) = p.flags() {
        if let Some(f) = flags.first() {
            return Err(invalid("linux.personality.flags", f, "no personality flag is supported"));
        }
    }
    Ok(Some(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }))
}

/// Check the enumerated names of a raw config.json (rlimit types, I/O
/// priority class, scheduler policy and flags, personality domain) so
/// that an unknown one is reported with its key, not as a serde error.
pub(crate) fn check_names(json: &serde_json::Value) -> Result<()> {
    let check = |ptr: &str, key: &str, allowed: &[&str], problem: &'static str| -> Result<()> {
        match json.pointer(ptr) {
            Some(serde_json::Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
            Some(v @ serde_json::Value::String(_)) => Err(invalid(key, v.as_str().unwrap_or_default(), problem)),
            Some(v) => Err(invalid(key, v, "not a string")),
            None => Ok(()),
        }
    };
    if let Some(list) = json.pointer("/process/rlimits").and_then(|v| v.as_array()) {
        let names: Vec<&str> = RLIMITS.iter().map(|(n, _)| *n).collect();
        for i in 0..list.len() {
            check(
                &format!("/process/rlimits/{i}/type"),
                &format!("process.rlimits[{i}].type"),
                &names,
                "unknown rlimit",
            )?;
        }
    }
    check("/process/ioPriority/class", "process.ioPriority.class", &IOPRIO_CLASSES, "unknown I/O priority class")?;
    check("/process/scheduler/policy", "process.scheduler.policy", &SCHED_POLICIES, "unknown scheduler policy")?;
    if let Some(list) = json.pointer("/process/scheduler/flags").and_then(|v| v.as_array()) {
        for i in 0..list.len() {
            check(
                &format!("/process/scheduler/flags/{i}"),
                &format!("process.scheduler.flags[{i}]"),
                &SCHED_FLAGS,
                "unknown scheduler flag",
            )?;
        }
    }
    check("/linux/personality/domain", "linux.personality.domain", &PERSONALITY_DOMAINS, "unknown personality domain")?;
    Ok(())
}

/// `ioprio_set` for this process.
pub fn apply_io_priority(class: u32, level: u32) -> Result<()> {
    sys::ioprio_set(class, level).map_err(step("ioprio_set", "process.ioPriority"))
}

/// A CPU list (`0-3,7`) as a CpuSet; `key` names it in errors.
pub fn cpu_list(key: &str, list: &str) -> Result<nix::sched::CpuSet> {
    let bad = |problem| invalid(key.to_owned(), list, problem);
    let mut set = nix::sched::CpuSet::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => return Err(bad("not a CPU list like 0-3,7")),
        };
        for cpu in a..=b {
            set.set(cpu).map_err(|_| bad("CPU number above what the kernel's cpu_set_t holds"))?;
        }
    }
    Ok(set)
}

/// `process.execCPUAffinity` as (initial, final) CpuSets.
pub fn exec_cpu_affinity(p: &Process) -> Result<(Option<nix::sched::CpuSet>, Option<nix::sched::CpuSet>)> {
    let Some(a) = p.exec_cpu_affinity() else { return Ok((None, None)) };
    let initial = a.initial().as_deref().map(|l| cpu_list("process.execCPUAffinity.initial", l)).transpose()?;
    let fin = a.cpu_affinity_final().as_deref().map(|l| cpu_list("process.execCPUAffinity.final", l)).transpose()?;
    Ok((initial, fin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_names_report_their_key() {
        let j = serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE"}, {"type": "RLIMIT_FOO"}]}});
        assert_eq!(check_names(&j).unwrap_err().to_string(), "process.rlimits[1].type: \"RLIMIT_FOO\": unknown rlimit");
        let j = serde_json::json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_NONE"}}});
        assert!(check_names(&j).unwrap_err().to_string().starts_with("process.ioPriority.class"));
        let j = serde_json::json!({"process": {"scheduler": {"policy": "SCHED_FAST"}}});
        assert!(check_names(&j).unwrap_err().to_string().starts_with("process.scheduler.policy"));
        let j = serde_json::json!({"linux": {"personality": {"domain": "LINUX64"}}});
        assert!(check_names(&j).unwrap_err().to_string().starts_with("linux.personality.domain"));
        let j = serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_CORE"}], "scheduler": {"policy": "SCHED_BATCH"}}});
        assert!(check_names(&j).is_ok());
    }

    #[test]
    fn cpu_lists() {
        let s = cpu_list("k", "0-2,5").unwrap();
        assert!(s.is_set(0).unwrap() && s.is_set(2).unwrap() && !s.is_set(3).unwrap() && s.is_set(5).unwrap());
        assert!(cpu_list("k", "3-1").is_err());
        assert!(cpu_list("k", "x").is_err());
        assert!(cpu_list("k", "99999").is_err());
    }

    #[test]
    fn rlimit_checks() {
        let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}))
        .unwrap();
        assert!(rlimits(&p).unwrap_err().to_string().contains("soft limit above"));
        let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5}, {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5}]}))
        .unwrap();
        assert!(rlimits(&p).unwrap_err().to_string().contains("twice"));
    }
}
