//! Time namespace offsets: the text of `/proc/PID/timens_offsets` (see
//! time_namespaces(7)), as carried by runc ≥ 1.2's TIMENSOFFSET attribute
//! and nsboot's NSBOOT_TIMENS_OFFSETS extension.
//!
//! One line per clock: `monotonic|boottime SECS NSECS\n`. The kernel also
//! takes numeric clock ids; runc never sends them, so they are refused here.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::fmt;

/// The clocks a time namespace can offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Clock {
    Monotonic,
    Boottime,
}

impl Clock {
    /// The name used in `timens_offsets` and by runc.
    pub const fn name(self) -> &'static str {
        match self {
            Clock::Monotonic => "monotonic",
            Clock::Boottime => "boottime",
        }
    }

    /// Parse a clock name.
    pub fn from_name(name: &[u8]) -> Option<Clock> {
        match name {
            b"monotonic" => Some(Clock::Monotonic),
            b"boottime" => Some(Clock::Boottime),
            _ => None,
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Nanoseconds in a second: `nsecs` must stay below it.
pub const NSEC_PER_SEC: i64 = 1_000_000_000;

/// Largest offset in seconds, either way: the kernel refuses (ERANGE) an
/// offset that takes the clock below 0 or above `KTIME_SEC_MAX / 2`
/// (`kernel/time/namespace.c`), so nothing beyond this can ever be
/// written. Smaller negative offsets may still fail at write time when
/// they exceed the host's uptime.
pub const MAX_OFFSET_SECS: i64 = (i64::MAX / NSEC_PER_SEC) / 2;

/// The offset of one clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeOffset {
    pub clock: Clock,
    pub secs: i64,
    /// 0 ≤ nsecs < 1e9.
    pub nsecs: i64,
}

/// Why a list of time offsets was refused. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeOffsetError {
    #[error("time offsets line {line}: empty line")]
    EmptyLine { line: usize },
    #[error("time offsets line {line}: expected 3 fields (clock secs nsecs), got {got}")]
    FieldCount { line: usize, got: usize },
    #[error("time offsets line {line}: unknown clock \"{name}\" (expected monotonic or boottime)")]
    UnknownClock { line: usize, name: String },
    #[error("time offsets line {line}: {field} \"{text}\" is not a decimal 64-bit integer")]
    NotANumber { line: usize, field: &'static str, text: String },
    #[error("time offsets line {line}: seconds {secs} outside -{max}..={max} (the kernel's range)", max = MAX_OFFSET_SECS)]
    SecsOutOfRange { line: usize, secs: i64 },
    #[error("time offsets line {line}: nanoseconds {nsecs} outside 0..1000000000")]
    NsecsOutOfRange { line: usize, nsecs: i64 },
    #[error("time offsets line {line}: clock {clock} given twice")]
    DuplicateClock { line: usize, clock: Clock },
}

fn parse_i64(text: &[u8], line: usize, field: &'static str) -> Result<i64, TimeOffsetError> {
    let bad = || TimeOffsetError::NotANumber {
        line,
        field,
        text: String::from_utf8_lossy(text).into_owned(),
    };
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(text).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad)
}

impl TimeOffset {
    /// Check the nanoseconds range (`line` is only for the error).
    fn check(&self, line: usize) -> Result<(), TimeOffsetError> {
        if !(-MAX_OFFSET_SECS..=MAX_OFFSET_SECS).contains(&self.secs) {
            return Err(TimeOffsetError::SecsOutOfRange { line, secs: self.secs });
        }
        if !(0..NSEC_PER_SEC).contains(&self.nsecs) {
            return Err(TimeOffsetError::NsecsOutOfRange { line, nsecs: self.nsecs });
        }
        Ok(())
    }

    /// This offset as one `timens_offsets` line: `monotonic SECS NSECS\n`.
    pub fn to_proc_text(&self) -> Vec<u8> {
        format!("{} {} {}\n", self.clock, self.secs, self.nsecs).into_bytes()
    }

    /// Parse `timens_offsets` text: lines `clock secs nsecs` split by `\n`
    /// (last newline optional, fields split by runs of spaces or tabs).
    /// Empty text is an empty list (runc ≥ 1.2 sends that for an empty
    /// map). A clock given twice is refused.
    pub fn parse_list(text: &[u8]) -> Result<Vec<TimeOffset>, TimeOffsetError> {
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let mut out: Vec<TimeOffset> = Vec::new();
        if body.is_empty() {
            return Ok(out);
        }
        for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let fields: Vec<&[u8]> =
                raw.split(|b| *b == b' ' || *b == b'\t').filter(|f| !f.is_empty()).collect();
            let (name, secs, nsecs) = match fields.as_slice() {
                [] => return Err(TimeOffsetError::EmptyLine { line }),
                [a, b, c] => (*a, *b, *c),
                other => return Err(TimeOffsetError::FieldCount { line, got: other.len() }),
            };
            let clock = Clock::from_name(name).ok_or_else(|| TimeOffsetError::UnknownClock {
                line,
                name: String::from_utf8_lossy(name).into_owned(),
            })?;
            let off = TimeOffset {
                clock,
                secs: parse_i64(secs, line, "seconds")?,
                nsecs: parse_i64(nsecs, line, "nanoseconds")?,
            };
            off.check(line)?;
            if out.iter().any(|o| o.clock == clock) {
                return Err(TimeOffsetError::DuplicateClock { line, clock });
            }
            out.push(off);
        }
        Ok(out)
    }

    /// Check a list built in code by the rules [`TimeOffset::parse_list`]
    /// applies.
    pub fn validate_list(list: &[TimeOffset]) -> Result<(), TimeOffsetError> {
        for (i, off) in list.iter().enumerate() {
            off.check(i + 1)?;
            if list.iter().take(i).any(|o| o.clock == off.clock) {
                return Err(TimeOffsetError::DuplicateClock { line: i + 1, clock: off.clock });
            }
        }
        Ok(())
    }

    /// The whole list as `/proc/PID/timens_offsets` text.
    pub fn list_to_proc_text(list: &[TimeOffset]) -> Vec<u8> {
        list.iter().flat_map(TimeOffset::to_proc_text).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let l = TimeOffset::parse_list(b"monotonic 10 20\nboottime -5 999999999\n").unwrap();
        assert_eq!(
            l,
            vec![
                TimeOffset { clock: Clock::Monotonic, secs: 10, nsecs: 20 },
                TimeOffset { clock: Clock::Boottime, secs: -5, nsecs: 999_999_999 },
            ]
        );
        assert_eq!(
            TimeOffset::list_to_proc_text(&l),
            b"monotonic 10 20\nboottime -5 999999999\n".to_vec()
        );
        assert_eq!(l[0].to_proc_text(), b"monotonic 10 20\n".to_vec());
        assert_eq!(TimeOffset::parse_list(b"boottime\t1  2").unwrap().len(), 1);
        assert_eq!(TimeOffset::parse_list(b"").unwrap(), vec![]);
    }

    #[test]
    fn rejects_unknown_clock() {
        assert!(matches!(
            TimeOffset::parse_list(b"realtime 1 2\n"),
            Err(TimeOffsetError::UnknownClock { line: 1, .. })
        ));
        assert!(matches!(
            TimeOffset::parse_list(b"monotonic 1 2\n1 1 2\n"),
            Err(TimeOffsetError::UnknownClock { line: 2, .. })
        ));
    }

    #[test]
    fn rejects_non_numeric_and_range() {
        assert!(matches!(
            TimeOffset::parse_list(b"monotonic x 2"),
            Err(TimeOffsetError::NotANumber { line: 1, field: "seconds", .. })
        ));
        assert!(matches!(
            TimeOffset::parse_list(b"monotonic 1 +2"),
            Err(TimeOffsetError::NotANumber { line: 1, field: "nanoseconds", .. })
        ));
        assert!(matches!(
            TimeOffset::parse_list(b"monotonic 99999999999999999999 2"),
            Err(TimeOffsetError::NotANumber { line: 1, field: "seconds", .. })
        ));
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1 1000000000"),
            Err(TimeOffsetError::NsecsOutOfRange { line: 1, nsecs: 1_000_000_000 })
        );
        assert_eq!(
            TimeOffset::parse_list(b"boottime 4611686019 0"),
            Err(TimeOffsetError::SecsOutOfRange { line: 1, secs: 4_611_686_019 })
        );
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1 0\nboottime -9223372036 0"),
            Err(TimeOffsetError::SecsOutOfRange { line: 2, secs: -9_223_372_036 })
        );
        assert_eq!(TimeOffset::parse_list(b"boottime 4611686018 0").unwrap()[0].secs, MAX_OFFSET_SECS);
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1 -1"),
            Err(TimeOffsetError::NsecsOutOfRange { line: 1, nsecs: -1 })
        );
    }

    #[test]
    fn rejects_shape() {
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1"),
            Err(TimeOffsetError::FieldCount { line: 1, got: 2 })
        );
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1 2\n\nboottime 1 2"),
            Err(TimeOffsetError::EmptyLine { line: 2 })
        );
        assert_eq!(
            TimeOffset::parse_list(b"monotonic 1 2\nmonotonic 3 4\n"),
            Err(TimeOffsetError::DuplicateClock { line: 2, clock: Clock::Monotonic })
        );
    }

    #[test]
    fn validate_list_matches_parse() {
        let dup = [
            TimeOffset { clock: Clock::Boottime, secs: 0, nsecs: 0 },
            TimeOffset { clock: Clock::Boottime, secs: 1, nsecs: 0 },
        ];
        assert_eq!(
            TimeOffset::validate_list(&dup),
            Err(TimeOffsetError::DuplicateClock { line: 2, clock: Clock::Boottime })
        );
        let bad = [TimeOffset { clock: Clock::Boottime, secs: 0, nsecs: NSEC_PER_SEC }];
        assert!(TimeOffset::validate_list(&bad).is_err());
    }
}
