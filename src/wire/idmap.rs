//! User and group id maps: the text of `/proc/PID/uid_map` and
//! `/proc/PID/gid_map` (see user_namespaces(7)), as carried in the UIDMAP and
//! GIDMAP attributes.
//!
//! runc writes one `"%d %d %d\n"` line per range. The parser is stricter
//! than runc's C receiver (which hands the bytes to the kernel unchecked):
//! it refuses what the kernel would refuse, and says which line is wrong.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::fmt::Write as _;

/// Most lines the kernel accepts in one id map (since Linux 4.15).
pub const MAX_ID_EXTENTS: usize = 340;

/// One line of an id map: ids `inside..inside+count` in the namespace are
/// ids `outside..outside+count` in the parent namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A whole id map, ranges in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IdMap(pub Vec<IdRange>);

/// Why an id map was refused. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdMapError {
    #[error("id map is empty")]
    Empty,
    #[error("id map has {lines} lines, the kernel accepts at most {max}")]
    TooManyExtents { lines: usize, max: usize },
    #[error("id map line {line}: empty line")]
    EmptyLine { line: usize },
    #[error("id map line {line}: expected 3 fields (inside outside count), got {got}")]
    FieldCount { line: usize, got: usize },
    #[error("id map line {line}: {field} \"{text}\" is not a decimal number below 2^32")]
    NotANumber { line: usize, field: &'static str, text: String },
    #[error("id map line {line}: count is 0")]
    ZeroCount { line: usize },
    #[error("id map line {line}: range {start}+{count} reaches 2^32 - 1 (the kernel refuses it)")]
    Overflow { line: usize, start: u32, count: u32 },
}

impl IdRange {
    /// Check one range as the kernel would (`line` is only for the error).
    fn check(&self, line: usize) -> Result<(), IdMapError> {
        if self.count == 0 {
            return Err(IdMapError::ZeroCount { line });
        }
        // The kernel (map_write) refuses a range whose end wraps in u32, so
        // the last usable id is 2^32 - 2: `start + count` must stay below
        // 2^32 (id 4294967295 is (uid_t)-1, never mappable).
        for start in [self.inside, self.outside] {
            if u64::from(start) + u64::from(self.count) > u64::from(u32::MAX) {
                return Err(IdMapError::Overflow { line, start, count: self.count });
            }
        }
        Ok(())
    }
}

fn parse_field(text: &[u8], line: usize, field: &'static str) -> Result<u32, IdMapError> {
    let bad =
        || IdMapError::NotANumber { line, field, text: String::from_utf8_lossy(text).into_owned() };
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // All ASCII digits, so valid UTF-8; u32 parse catches overflow.
    std::str::from_utf8(text).ok().and_then(|s| s.parse::<u32>().ok()).ok_or_else(bad)
}

impl IdMap {
    /// A map of one range.
    pub fn single(inside: u32, outside: u32, count: u32) -> IdMap {
        IdMap(vec![IdRange { inside, outside, count }])
    }

    /// The ranges.
    pub fn ranges(&self) -> &[IdRange] {
        &self.0
    }

    /// Parse `/proc/PID/uid_map` text: `inside outside count` lines split
    /// by `\n`, the last newline optional, fields separated by runs of
    /// spaces or tabs.
    pub fn parse(text: &[u8]) -> Result<IdMap, IdMapError> {
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        if body.is_empty() {
            return Err(IdMapError::Empty);
        }
        let lines = body.split(|b| *b == b'\n').count();
        if lines > MAX_ID_EXTENTS {
            return Err(IdMapError::TooManyExtents { lines, max: MAX_ID_EXTENTS });
        }
        let mut out = Vec::with_capacity(lines);
        for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let fields: Vec<&[u8]> =
                raw.split(|b| *b == b' ' || *b == b'\t').filter(|f| !f.is_empty()).collect();
            let (inside, outside, count) = match fields.as_slice() {
                [] => return Err(IdMapError::EmptyLine { line }),
                [a, b, c] => (
                    parse_field(a, line, "inside id")?,
                    parse_field(b, line, "outside id")?,
                    parse_field(c, line, "count")?,
                ),
                other => return Err(IdMapError::FieldCount { line, got: other.len() }),
            };
            let range = IdRange { inside, outside, count };
            range.check(line)?;
            out.push(range);
        }
        Ok(IdMap(out))
    }

    /// Check a map built in code by the rules [`IdMap::parse`] applies.
    pub fn validate(&self) -> Result<(), IdMapError> {
        if self.0.is_empty() {
            return Err(IdMapError::Empty);
        }
        if self.0.len() > MAX_ID_EXTENTS {
            return Err(IdMapError::TooManyExtents { lines: self.0.len(), max: MAX_ID_EXTENTS });
        }
        for (i, r) in self.0.iter().enumerate() {
            r.check(i + 1)?;
        }
        Ok(())
    }

    /// The text runc writes (`"%d %d %d\n"` per range), which is also what
    /// the kernel wants in `/proc/PID/uid_map`.
    pub fn to_proc_text(&self) -> Vec<u8> {
        let mut s = String::new();
        for r in &self.0 {
            // Writing into a String cannot fail.
            let _ = writeln!(s, "{} {} {}", r.inside, r.outside, r.count);
        }
        s.into_bytes()
    }

    /// Arguments after the pid for `newuidmap`/`newgidmap`: the flat list
    /// `inside outside count inside outside count ...`.
    pub fn helper_args(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|r| [r.inside.to_string(), r.outside.to_string(), r.count.to_string()])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_text() {
        let m = IdMap::parse(b"0 1000 1\n1 100000 65536\n").unwrap();
        assert_eq!(
            m.ranges(),
            &[
                IdRange { inside: 0, outside: 1000, count: 1 },
                IdRange { inside: 1, outside: 100000, count: 65536 }
            ]
        );
        assert_eq!(m.to_proc_text(), b"0 1000 1\n1 100000 65536\n".to_vec());
        assert_eq!(m.helper_args(), ["0", "1000", "1", "1", "100000", "65536"]);
    }

    #[test]
    fn trailing_newline_optional_and_blanks_tolerated() {
        let a = IdMap::parse(b"0 1000 1").unwrap();
        assert_eq!(a, IdMap::single(0, 1000, 1));
        let b = IdMap::parse(b"  0\t\t1000   1 \t\n").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn full_range_ok() {
        let m = IdMap::parse(b"0 0 4294967295\n").unwrap();
        assert_eq!(m, IdMap::single(0, 0, u32::MAX));
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(IdMap::parse(b""), Err(IdMapError::Empty));
        assert_eq!(IdMap::parse(b"\n"), Err(IdMapError::Empty));
        assert_eq!(IdMap::default().validate(), Err(IdMapError::Empty));
    }

    #[test]
    fn rejects_empty_line() {
        assert_eq!(IdMap::parse(b"0 0 1\n\n1 1 1\n"), Err(IdMapError::EmptyLine { line: 2 }));
        assert_eq!(IdMap::parse(b"0 0 1\n\n"), Err(IdMapError::EmptyLine { line: 2 }));
        assert_eq!(IdMap::parse(b" \t\n"), Err(IdMapError::EmptyLine { line: 1 }));
    }

    #[test]
    fn rejects_non_numeric() {
        assert!(matches!(
            IdMap::parse(b"0 0 1\nx 0 1\n"),
            Err(IdMapError::NotANumber { line: 2, field: "inside id", .. })
        ));
        assert!(matches!(
            IdMap::parse(b"0 -1 1"),
            Err(IdMapError::NotANumber { line: 1, field: "outside id", .. })
        ));
        assert!(matches!(
            IdMap::parse(b"0 0 +1"),
            Err(IdMapError::NotANumber { line: 1, field: "count", .. })
        ));
        assert!(matches!(
            IdMap::parse(b"0 0 4294967296"),
            Err(IdMapError::NotANumber { line: 1, field: "count", .. })
        ));
        assert!(matches!(IdMap::parse(b"0 0 1\r\n"), Err(IdMapError::NotANumber { line: 1, .. })));
    }

    #[test]
    fn rejects_field_count() {
        assert_eq!(IdMap::parse(b"0 0"), Err(IdMapError::FieldCount { line: 1, got: 2 }));
        assert_eq!(IdMap::parse(b"0 0 1 1"), Err(IdMapError::FieldCount { line: 1, got: 4 }));
    }

    #[test]
    fn rejects_zero_count() {
        assert_eq!(IdMap::parse(b"0 0 1\n5 5 0\n"), Err(IdMapError::ZeroCount { line: 2 }));
        assert_eq!(IdMap::single(0, 0, 0).validate(), Err(IdMapError::ZeroCount { line: 1 }));
    }

    #[test]
    fn rejects_overflow() {
        // Like the kernel: start + count must not wrap a u32.
        assert_eq!(IdMap::parse(b"4294967294 0 1").unwrap(), IdMap::single(u32::MAX - 1, 0, 1));
        assert_eq!(
            IdMap::parse(b"1 0 4294967295"),
            Err(IdMapError::Overflow { line: 1, start: 1, count: u32::MAX })
        );
        assert_eq!(
            IdMap::parse(b"0 0 1\n0 4294967295 2"),
            Err(IdMapError::Overflow { line: 2, start: u32::MAX, count: 2 })
        );
    }

    #[test]
    fn extent_limit() {
        let ok: String = (0..340).map(|i| format!("{i} {i} 1\n")).collect();
        assert_eq!(IdMap::parse(ok.as_bytes()).unwrap().0.len(), 340);
        let too_many: String = (0..341).map(|i| format!("{i} {i} 1\n")).collect();
        assert_eq!(
            IdMap::parse(too_many.as_bytes()),
            Err(IdMapError::TooManyExtents { lines: 341, max: 340 })
        );
        let m = IdMap((0..341).map(|i| IdRange { inside: i, outside: i, count: 1 }).collect());
        assert_eq!(m.validate(), Err(IdMapError::TooManyExtents { lines: 341, max: 340 }));
    }
}
