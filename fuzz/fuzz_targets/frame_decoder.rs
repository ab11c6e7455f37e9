//! Any bytes into the frame decoders: no panic, no frame over the limit,
//! and only the documented errors.
#![no_main]

use std::io::ErrorKind;

use libfuzzer_sys::fuzz_target;
use socketserver::framing::{FrameConfig, Framed, LengthPrefix, read_frame};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else { return };
    let prefix = match selector % 4 {
        0 => LengthPrefix::U16Be,
        1 => LengthPrefix::U32Be,
        2 => LengthPrefix::U64Be,
        _ => LengthPrefix::I32Le,
    };
    let config = FrameConfig::default().with_prefix(prefix).with_max_frame_len(MAX);

    let mut framed = Framed::with_config(wire, config);
    let mut frame = Vec::new();
    let mut buffered = Vec::new();
    loop {
        match framed.read_frame_into(&mut frame) {
            Ok(true) => {
                assert!(frame.len() <= MAX);
                buffered.push(frame.clone());
            }
            Ok(false) => break,
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof), "{e}");
                break;
            }
        }
    }

    // The unbuffered decoder agrees with the buffered one.
    let mut reader = wire;
    for expected in &buffered {
        assert_eq!(read_frame(&mut reader, &config).unwrap().as_ref(), Some(expected));
    }
});
