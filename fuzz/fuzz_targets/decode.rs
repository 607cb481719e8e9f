//! Coverage-guided fuzzing of the bootstrap message decoder.
//!
//! The input is the whole message as read from the init socket. Each run
//! checks, for both dialects: decode_header and decode never panic; if
//! decode accepts, its header agrees with decode_header, and the config
//! re-encodes (encode never refuses what decode accepted) to bytes that
//! decode to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsboot::wire::{decode, decode_header, encode_with, Dialect};

fuzz_target!(|data: &[u8]| {
    let header = decode_header(data);
    for dialect in [Dialect::Runc11, Dialect::Runc12] {
        let Ok(cfg) = decode(data, dialect) else { continue };
        let hdr = header.as_ref().expect("decode accepted a message decode_header refuses");
        assert_eq!(hdr.len as usize, data.len());
        let again = encode_with(&cfg, dialect, hdr.seq)
            .unwrap_or_else(|e| panic!("encode refuses what decode accepted: {e}"));
        assert_eq!(decode(&again, dialect).as_ref(), Ok(&cfg), "re-encoded config differs");
    }
});
