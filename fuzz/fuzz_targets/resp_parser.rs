//! Any bytes into kv_server's RESP command parser, as the server feeds it:
//! the whole input at once, and in pieces (a command that has not all
//! arrived kept and given again with more). It never panics; both ways
//! find the same commands and both fail or neither; no command has more
//! arguments or longer strings than the limits allow, and what is kept of
//! a command in progress stays within the command limit.
#![no_main]

#[path = "../../examples/kv_server/resp.rs"]
#[allow(dead_code)]
mod resp;

use libfuzzer_sys::fuzz_target;
use resp::{Limits, Parser, Step};

const LIMITS: Limits = Limits {
    max_bulk: 512,
    max_args: 16,
    max_command: 1024,
};

/// The commands found in `data` fed `step` bytes at a time, and whether it
/// ended in a protocol error.
fn commands(data: &[u8], step: usize) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut parser = Parser::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut found = Vec::new();
    for piece in data.chunks(step) {
        pending.extend_from_slice(piece);
        let mut at = 0;
        loop {
            match parser.parse(&pending[at..], &LIMITS) {
                Ok(Step::Command(len)) => {
                    assert!(len > 0 && at + len <= pending.len());
                    let args = parser.args(&pending[at..]);
                    assert!(!args.is_empty() && args.len() <= LIMITS.max_args);
                    found.push(args.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
                    at += len;
                }
                Ok(Step::Empty(len)) => {
                    assert!(len > 0);
                    at += len;
                }
                Ok(Step::Incomplete) => break,
                Err(error) => {
                    assert!(!error.message().is_empty());
                    return (found, true);
                }
            }
        }
        pending.drain(..at);
        // A command in progress is all that is kept: within its limit
        // (an inline line or count line within Redis's 64 KiB), plus the
        // last piece.
        assert!(pending.len() <= LIMITS.max_command.max(resp::INLINE_MAX) + step);
    }
    (found, false)
}

fuzz_target!(|data: &[u8]| {
    let whole = commands(data, data.len().max(1));
    let step = usize::from(data.first().copied().unwrap_or(0) % 16) + 1;
    let pieces = commands(data, step);
    assert_eq!(whole, pieces, "fed in pieces of {step}");
    for command in &whole.0 {
        // Bulk strings are bounded by max_bulk; inline arguments by the
        // line they came on.
        assert!(command.iter().all(|arg| arg.len() <= LIMITS.max_bulk.max(resp::INLINE_MAX)));
    }
});
