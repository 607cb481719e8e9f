//! The two JSON shapes the bootstrap itself reads, parsed strictly by hand:
//! `_LIBCONTAINER_MOUNT_FDS` (an array of integers) and stage-0's pid line
//! (`{"stage1_pid":N,"stage2_pid":M}`).
//!
//! A JSON library here would be linked into every program that loads
//! libnsboot (the constructor reaches both parsers) for two fixed shapes;
//! serde_json and its number formatting cost ~100 KB of code and hundreds
//! of relocations per load (BENCHMARKS.md §1 and §4). What is accepted is
//! standard JSON for these shapes (whitespace anywhere between tokens,
//! integers without fraction or exponent); object keys must be written
//! without escapes, as every runc and nsboot writes them. Tests compare
//! both parsers against serde_json.

/// Why a JSON text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not the expected shape (or not JSON at all).
    Syntax,
    /// An integer outside the range of the target type.
    Range,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// A JSON integer: `-?(0|[1-9][0-9]*)`, not followed by `.`, `e` or `E`.
    fn int(&mut self) -> Result<i64, JsonError> {
        self.ws();
        let neg = self.s.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut v: i64 = 0;
        let mut overflow = false;
        while let Some(d @ b'0'..=b'9') = self.s.get(self.i) {
            let digit = i64::from(d - b'0');
            match v.checked_mul(10).and_then(|x| if neg { x.checked_sub(digit) } else { x.checked_add(digit) }) {
                Some(x) => v = x,
                None => overflow = true,
            }
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.s.get(start) == Some(&b'0')) {
            return Err(JsonError::Syntax);
        }
        if let Some(b'.' | b'e' | b'E') = self.s.get(self.i) {
            return Err(JsonError::Syntax);
        }
        if overflow {
            return Err(JsonError::Range);
        }
        Ok(v)
    }

    /// A string without escapes or control characters; returns its bytes.
    fn plain_string(&mut self) -> Result<&'a [u8], JsonError> {
        if !self.eat(b'"') {
            return Err(JsonError::Syntax);
        }
        let start = self.i;
        loop {
            match self.s.get(self.i) {
                Some(b'"') => break,
                Some(b'\\') | None => return Err(JsonError::Syntax),
                Some(c) if *c < 0x20 => return Err(JsonError::Syntax),
                Some(_) => self.i += 1,
            }
        }
        let out = self.s.get(start..self.i).ok_or(JsonError::Syntax)?;
        self.i += 1;
        Ok(out)
    }

    /// A JSON string with escapes (`\uXXXX` surrogate pairs included).
    fn string(&mut self) -> Result<String, JsonError> {
        if !self.eat(b'"') {
            return Err(JsonError::Syntax);
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or(JsonError::Syntax)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or(JsonError::Syntax)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(JsonError::Syntax);
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(JsonError::Syntax);
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or(JsonError::Syntax)?
                        }
                        _ => return Err(JsonError::Syntax),
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                c if c < 0x20 => return Err(JsonError::Syntax),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| JsonError::Syntax)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self.s.get(self.i..self.i + 4).ok_or(JsonError::Syntax)?;
        let t = std::str::from_utf8(h).map_err(|_| JsonError::Syntax)?;
        let v = u32::from_str_radix(t, 16).map_err(|_| JsonError::Syntax)?;
        self.i += 4;
        Ok(v)
    }

    fn end(&mut self) -> Result<(), JsonError> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }
}

/// `[3, -1, 5]`: an array of integers, each within `i64`.
pub fn int_array(s: &[u8]) -> Result<Vec<i64>, JsonError> {
    let mut c = Cursor { s, i: 0 };
    if !c.eat(b'[') {
        return Err(JsonError::Syntax);
    }
    let mut out = Vec::new();
    if !c.eat(b']') {
        loop {
            out.push(c.int()?);
            if c.eat(b']') {
                break;
            }
            if !c.eat(b',') {
                return Err(JsonError::Syntax);
            }
        }
    }
    c.end()?;
    Ok(out)
}

/// `{"stage1_pid": N, "stage2_pid": M}`: exactly these two keys (any order,
/// each once), integer values within `i32`. Returns (stage1, stage2).
pub fn pid_pair(s: &[u8]) -> Result<(i32, i32), JsonError> {
    let mut c = Cursor { s, i: 0 };
    if !c.eat(b'{') {
        return Err(JsonError::Syntax);
    }
    let (mut one, mut two) = (None, None);
    if c.peek() != Some(b'}') {
        loop {
            let key = c.plain_string()?;
            if !c.eat(b':') {
                return Err(JsonError::Syntax);
            }
            let v = i32::try_from(c.int()?).map_err(|_| JsonError::Range)?;
            let slot = match key {
                b"stage1_pid" => &mut one,
                b"stage2_pid" => &mut two,
                _ => return Err(JsonError::Syntax),
            };
            if slot.replace(v).is_some() {
                return Err(JsonError::Syntax);
            }
            if c.peek() == Some(b'}') {
                break;
            }
            if !c.eat(b',') {
                return Err(JsonError::Syntax);
            }
        }
    }
    if !c.eat(b'}') {
        return Err(JsonError::Syntax);
    }
    c.end()?;
    match (one, two) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(JsonError::Syntax),
    }
}

/// `{"nsboot_error":{"stage":N,"step":"...",...}}`: a stage's error record
/// (see [`crate::diag`]); `None` for anything else. Unknown keys inside
/// are skipped when their values are strings or integers (newer writers).
pub fn error_record(s: &[u8]) -> Option<crate::diag::StageFailure> {
    let mut c = Cursor { s, i: 0 };
    if !c.eat(b'{') || c.plain_string().ok()? != b"nsboot_error" || !c.eat(b':') || !c.eat(b'{') {
        return None;
    }
    let mut f = crate::diag::StageFailure::default();
    if c.peek() != Some(b'}') {
        loop {
            let key = c.plain_string().ok()?;
            if !c.eat(b':') {
                return None;
            }
            if c.peek() == Some(b'"') {
                let v = c.string().ok()?;
                match key {
                    b"step" => f.step = v,
                    b"syscall" => f.syscall = Some(v),
                    b"path" => f.path = Some(v),
                    b"cause" => f.cause = crate::diag::Cause::from_name(&v),
                    b"hint" => f.hint = Some(v),
                    b"message" => f.message = v,
                    _ => {}
                }
            } else {
                let v = c.int().ok()?;
                match key {
                    b"stage" => f.stage = u8::try_from(v).ok()?,
                    b"errno" => f.errno = Some(i32::try_from(v).ok()?),
                    _ => {}
                }
            }
            if c.peek() == Some(b'}') {
                break;
            }
            if !c.eat(b',') {
                return None;
            }
        }
    }
    if !c.eat(b'}') || !c.eat(b'}') {
        return None;
    }
    c.end().ok()?;
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays() {
        assert_eq!(int_array(b"[3,-1, 5]"), Ok(vec![3, -1, 5]));
        assert_eq!(int_array(b" [ ] "), Ok(vec![]));
        assert_eq!(int_array(b"[0]"), Ok(vec![0]));
        assert_eq!(int_array(b"[-9223372036854775808]"), Ok(vec![i64::MIN]));
        for bad in [&b"[3"[..], b"3", b"[01]", b"[1.0]", b"[1e3]", b"[,]", b"[1,]", b"[1 2]", b"[\"a\"]", b"[-]", b"[1]x", b""] {
            assert_eq!(int_array(bad), Err(JsonError::Syntax), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(int_array(b"[9223372036854775808]"), Err(JsonError::Range));
    }

    #[test]
    fn pid_pairs() {
        assert_eq!(pid_pair(br#"{"stage1_pid":12,"stage2_pid":13}"#), Ok((12, 13)));
        assert_eq!(pid_pair(b" {\"stage2_pid\" : 2 ,\n \"stage1_pid\":1 }\n"), Ok((1, 2)));
        for bad in [
            &br#"{"stage1_pid":1}"#[..],
            br#"{"stage1_pid":1,"stage1_pid":2}"#,
            br#"{"stage1_pid":1,"stage2_pid":2,"x":3}"#,
            br#"{"stage1_pid":"1","stage2_pid":2}"#,
            br#"{"stage1_pid":1,"stage2_pid":2,}"#,
            br#"{"stage1_pid":1.5,"stage2_pid":2}"#,
            br#"{"stage1_pid":1 "stage2_pid":2}"#,
            br#"{}"#,
            br#"[1,2]"#,
            br#"{"stage1_pid":1,"stage2_pid":2}{}"#,
        ] {
            assert_eq!(pid_pair(bad), Err(JsonError::Syntax), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(pid_pair(br#"{"stage1_pid":4294967296,"stage2_pid":2}"#), Err(JsonError::Range));
    }

    /// The same verdicts as serde_json on arbitrary inputs near the shapes.
    mod against_serde {
        use super::super::*;
        use proptest::prelude::*;

        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just(",".to_owned()),
                Just(":".to_owned()),
                Just(" ".to_owned()),
                Just("\"stage1_pid\"".to_owned()),
                Just("\"stage2_pid\"".to_owned()),
                Just("\"x\"".to_owned()),
                Just("-".to_owned()),
                Just(".5".to_owned()),
                Just("e1".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                (0u32..100).prop_map(|n| n.to_string()),
                Just("0".to_owned()),
            ]
        }

        fn near(open: &'static str) -> impl Strategy<Value = String> {
            proptest::collection::vec(token(), 0..12).prop_map(move |t| format!("{open}{}", t.concat()))
        }

        proptest! {
            #[test]
            fn int_array_agrees(s in prop_oneof![near("["), near("")]) {
                let ours = int_array(s.as_bytes()).ok();
                let theirs = serde_json::from_str::<Vec<i64>>(&s).ok();
                prop_assert_eq!(ours, theirs, "{}", s);
            }

            #[test]
            fn pid_pair_agrees(s in prop_oneof![near("{"), near("{\"stage1_pid\":"), near("")]) {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Pids { stage1_pid: i32, stage2_pid: i32 }
                let ours = pid_pair(s.as_bytes()).ok();
                let theirs = serde_json::from_str::<Pids>(&s).ok().map(|p| (p.stage1_pid, p.stage2_pid));
                prop_assert_eq!(ours, theirs, "{}", s);
            }

            #[test]
            fn well_formed_pairs(a in any::<i32>(), b in any::<i32>(), ws in "[ \t\n]{0,3}") {
                let s = format!("{{{ws}\"stage1_pid\"{ws}:{ws}{a}{ws},{ws}\"stage2_pid\":{b}{ws}}}");
                prop_assert_eq!(pid_pair(s.as_bytes()), Ok((a, b)));
            }
        }
    }
}
