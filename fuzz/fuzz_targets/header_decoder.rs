//! Any bytes into the message reader: headers parse or fail with the
//! documented errors, bodies are bounded by their declared size, and the
//! reader never panics.
#![no_main]

use std::io::{ErrorKind, Read};

use libfuzzer_sys::fuzz_target;
use socketserver::message::{MessageConfig, MessageStream};

fuzz_target!(|data: &[u8]| {
    let config = MessageConfig::tutorial().with_max_header_len(4096);
    let mut messages = MessageStream::with_config(data, config);
    loop {
        match messages.read_header() {
            Ok(Some(header)) => {
                let declared = header.body_len();
                let mut body = Vec::new();
                match messages.body().take(1 << 20).read_to_end(&mut body) {
                    Ok(n) => assert!(n as u64 <= declared),
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof), "{e}");
                break;
            }
        }
    }
});
