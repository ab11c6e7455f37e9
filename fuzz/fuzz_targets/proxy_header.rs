//! Any bytes into the PROXY protocol parser: it never panics, an
//! incomplete header asks for more than it has, and whatever parses
//! re-encodes and parses back to the same header (a v2 header to the very
//! same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketserver::proxy_protocol::{ParseError, Version, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok((header, len)) => {
            assert!(len <= data.len());
            let encoded = header.to_bytes().expect("a parsed header encodes");
            if header.version == Version::V2 {
                assert_eq!(encoded, &data[..len]);
            }
            let (again, again_len) = parse(&encoded).expect("an encoded header parses");
            assert_eq!(again, header);
            assert_eq!(again_len, encoded.len());
        }
        Err(ParseError::Incomplete { needed }) => assert!(needed > data.len()),
        Err(ParseError::Invalid(reason)) => assert!(!reason.is_empty()),
    }
});
