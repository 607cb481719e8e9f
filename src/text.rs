//! Bytes from the caller (paths, attribute values) shown in messages as
//! they are: no Rust `{:?}` escapes (`\u{1}`, `\"`), no added quoting rules.
//! The log line's JSON encoder does the only escaping, so a decoder gets
//! the bytes back exactly, as it does from runc's `bail()`.
//!
//! Non-UTF-8 bytes: each byte that is not part of a valid UTF-8 sequence
//! becomes U+FFFD. A JSON string must be valid UTF-8, and this is exactly
//! what runc's own caller sees from runc's C, which writes such bytes raw:
//! Go's `encoding/json` decodes every invalid byte as one U+FFFD. (Escaping
//! them as `\u00XX` would turn them into different, valid characters, which
//! no decoder could tell from a real U+00XX.)

use std::fmt;

/// Displays `0` byte for byte (invalid UTF-8: one U+FFFD per byte).
#[derive(Clone, Copy)]
pub struct Raw<'a>(pub &'a [u8]);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for _ in chunk.invalid() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// [`Raw`] as an owned `String`, for error fields.
pub fn raw_string(b: &[u8]) -> String {
    Raw(b).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_as_they_are() {
        let s = b"/a\"b\\c\td\x01e\nf \x7f";
        assert_eq!(raw_string(s).as_bytes(), s);
        assert_eq!(raw_string("/ü/€".as_bytes()), "/ü/€");
        // Invalid UTF-8: one U+FFFD per byte, as Go's decoder reads them.
        assert_eq!(raw_string(b"/x\xff\xe2\x82y"), "/x\u{FFFD}\u{FFFD}\u{FFFD}y");
    }
}
