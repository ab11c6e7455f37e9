//! Any bytes into http_server's request reader, as the server uses it:
//! heads parsed back to back, each body skipped by its framing (a length,
//! or the chunked decoder). It never panics; a head is refused or parsed
//! within the limits; an incomplete head is only kept while it is within
//! them; the chunked decoder reads the same body fed whole or in pieces,
//! never counts more data than its limit, and never takes more than it
//! is given.
#![no_main]

#[path = "../../examples/http_server/request.rs"]
#[allow(dead_code)]
mod request;

use libfuzzer_sys::fuzz_target;
use request::{Body, ChunkedDecoder, Limits, Parsed, parse_head};

const LIMITS: Limits = Limits {
    max_head: 2048,
    max_uri: 512,
    max_body: 4096,
};

/// Decodes a chunked body at the front of `data`, `step` bytes at a time:
/// the bytes it took and the data it counted, or `None` if it failed or
/// did not end.
fn chunked(data: &[u8], step: usize) -> Option<(usize, u64)> {
    let mut decoder = ChunkedDecoder::new(LIMITS.max_body);
    let mut at = 0;
    for piece in data.chunks(step) {
        let (used, done) = decoder.decode(piece).ok()?;
        assert!(used <= piece.len());
        assert!(decoder.body_bytes() <= LIMITS.max_body);
        at += used;
        if done {
            return Some((at, decoder.body_bytes()));
        }
        assert_eq!(used, piece.len(), "a body that goes on takes all it is given");
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let step = usize::from(data.first().copied().unwrap_or(0) % 8) + 1;
    let whole_body = chunked(data, data.len().max(1));
    assert_eq!(whole_body, chunked(data, step), "a chunked body fed in pieces of {step}");

    let mut rest = data;
    while !rest.is_empty() {
        match parse_head(rest, &LIMITS) {
            Ok(Parsed::Complete(head, len)) => {
                assert!(len <= rest.len() && len <= LIMITS.max_head);
                assert!(head.target.len() <= LIMITS.max_uri);
                assert!(head.minor <= 1);
                rest = &rest[len..];
                match head.body {
                    Body::None => {}
                    Body::Length(n) => {
                        assert!(n > 0 && n <= LIMITS.max_body);
                        rest = &rest[rest.len().min(n as usize)..];
                    }
                    Body::Chunked => match chunked(rest, rest.len().max(1)) {
                        Some((used, _)) => rest = &rest[used..],
                        None => break,
                    },
                }
            }
            Ok(Parsed::Partial) => {
                assert!(rest.len() <= LIMITS.max_head, "an incomplete head kept past the limit");
                break;
            }
            Err(refusal) => {
                assert!((400..600).contains(&refusal.status()));
                assert!(!refusal.why().is_empty());
                break;
            }
        }
    }
});
