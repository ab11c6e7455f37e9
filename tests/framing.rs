//! Frames and messages survive any delivery: whatever way TCP splits and
//! merges the bytes, the same sequence comes out. And a server using
//! framing turns garbage away without disturbing its other clients.

mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::thread;

use crossbeam_channel::{Sender, unbounded};
use proptest::prelude::*;
use socketserver::echo::FramedUppercase;
use socketserver::framing::{BufStream, FrameConfig, Framed, LengthPrefix, read_frame, write_frame};
use socketserver::{ParkedTcpServer, RequestHandler, TcpRequest, ThreadingTcpServer};
use util::{TIMEOUT, connect, init_logging, read_to_end, serve};

/// Delivers its bytes in pieces of the given sizes (cycled), the way a TCP
/// stream may: one `read` can return part of a frame, or parts of several.
struct Chunked {
    bytes: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    next: usize,
}

impl Chunked {
    fn new(bytes: Vec<u8>, sizes: Vec<usize>) -> Self {
        Chunked {
            bytes,
            at: 0,
            sizes,
            next: 0,
        }
    }
}

impl Read for Chunked {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = size.min(out.len()).min(self.bytes.len() - self.at);
        out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn prefixes() -> impl Strategy<Value = LengthPrefix> {
    prop_oneof![
        Just(LengthPrefix::U16Be),
        Just(LengthPrefix::U32Be),
        Just(LengthPrefix::U64Be),
        Just(LengthPrefix::I32Le),
    ]
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 0..12_000),
        ],
        0..12,
    )
}

/// Delivery plans: read sizes from 1 byte (every frame split) to 64 KiB
/// (many frames merged).
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 8usize..512, 512usize..65_536], 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn frames_survive_any_split(prefix in prefixes(), frames in payloads(), sizes in splits()) {
        let config = FrameConfig::default().with_prefix(prefix);
        let mut wire = Vec::new();
        for frame in &frames {
            write_frame(&mut wire, frame, &config).unwrap();
        }
        // Buffered, reusing one buffer.
        let mut framed = Framed::with_config(BufStream::new(Chunked::new(wire.clone(), sizes.clone())), config);
        let mut frame = Vec::new();
        let mut decoded = Vec::new();
        while framed.read_frame_into(&mut frame).unwrap() {
            decoded.push(frame.clone());
        }
        prop_assert_eq!(&decoded, &frames);
        // Unbuffered.
        let mut reader = Chunked::new(wire, sizes);
        let mut decoded = Vec::new();
        while let Some(frame) = read_frame(&mut reader, &config).unwrap() {
            decoded.push(frame);
        }
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn a_truncated_stream_is_an_error_never_a_short_frame(
        frames in payloads(), cut in any::<prop::sample::Index>(), sizes in splits()
    ) {
        let config = FrameConfig::default();
        let mut wire = Vec::new();
        let mut boundaries = vec![0];
        for frame in &frames {
            write_frame(&mut wire, frame, &config).unwrap();
            boundaries.push(wire.len());
        }
        prop_assume!(!wire.is_empty());
        let cut = cut.index(wire.len());
        let mut framed = Framed::new(BufStream::new(Chunked::new(wire[..cut].to_vec(), sizes)));
        let mut whole = 0;
        loop {
            match framed.read_frame() {
                Ok(Some(frame)) => {
                    prop_assert_eq!(&frame, &frames[whole]);
                    whole += 1;
                }
                Ok(None) => {
                    prop_assert!(boundaries.contains(&cut), "clean end at a non-boundary {}", cut);
                    break;
                }
                Err(e) => {
                    prop_assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
                    prop_assert!(!boundaries.contains(&cut));
                    break;
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics_or_over_allocates(bytes in prop::collection::vec(any::<u8>(), 0..256), prefix in prefixes()) {
        let config = FrameConfig::default().with_prefix(prefix).with_max_frame_len(1024);
        let mut framed = Framed::with_config(&bytes[..], config);
        loop {
            match framed.read_frame() {
                Ok(Some(frame)) => prop_assert!(frame.len() <= 1024),
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData));
                    break;
                }
            }
        }
    }
}

#[cfg(feature = "message")]
mod messages {
    use super::*;
    use serde_json::{Map, Value, json};
    use socketserver::message::{MessageConfig, MessageStream, write_message};

    fn headers() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-z]{1,8}", any::<i64>().prop_map(Value::from), 0..5)
            .prop_map(|fields| fields.into_iter().filter(|(k, _)| k != "size").collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn messages_survive_any_split(
            messages in prop::collection::vec((headers(), prop::collection::vec(any::<u8>(), 0..3_000)), 0..8),
            sizes in splits(),
            read_sizes in prop::collection::vec(1usize..3_000, 1..8),
            tutorial in any::<bool>(),
        ) {
            let config = if tutorial { MessageConfig::tutorial() } else { MessageConfig::default() };
            let mut wire = Vec::new();
            for (header, body) in &messages {
                write_message(&mut wire, header, &mut &body[..], body.len() as u64, &config).unwrap();
            }
            let mut stream = MessageStream::with_config(BufStream::new(Chunked::new(wire, sizes)), config);
            for (header, body) in &messages {
                let got = stream.read_header().unwrap().expect("a message");
                let mut expected = header.clone();
                expected.insert("size".into(), json!(body.len()));
                prop_assert_eq!(got.fields(), &expected);
                // Read the body in uneven pieces.
                let mut received = Vec::new();
                let mut piece = 0;
                loop {
                    let mut buf = vec![0u8; read_sizes[piece % read_sizes.len()]];
                    piece += 1;
                    let n = stream.body().read(&mut buf).unwrap();
                    if n == 0 { break; }
                    received.extend_from_slice(&buf[..n]);
                }
                prop_assert_eq!(&received, body);
            }
            prop_assert!(stream.read_header().unwrap().is_none());
        }
    }
}

/// Echoes frames, reporting errors to the test.
struct FrameEcho {
    config: FrameConfig,
    errors: Sender<io::Error>,
}

impl RequestHandler<TcpRequest> for FrameEcho {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let mut framed = Framed::with_config(request, self.config);
        let mut frame = Vec::new();
        while framed.read_frame_into(&mut frame)? {
            framed.write_frame(&frame)?;
        }
        Ok(())
    }

    fn handle_error(&self, _request: &TcpRequest, error: &io::Error) {
        let _ = self.errors.send(io::Error::new(error.kind(), error.to_string()));
    }
}

#[test]
fn a_framing_server_turns_garbage_away_and_keeps_serving() {
    init_logging();
    let (errors, reported) = unbounded();
    let config = FrameConfig::tutorial().with_max_frame_len(1024);
    let (server, running) = serve(ThreadingTcpServer::bind(
        "127.0.0.1:0",
        FrameEcho { config, errors },
    ));
    let addr = *server.local_addr();

    // A well-behaved client, talking throughout.
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let good = thread::spawn(move || {
        let mut framed = Framed::with_config(BufStream::new(connect(addr)), config);
        let mut rounds = 0;
        // Talks until the test is done with the bad clients, and at least
        // ten rounds.
        while rounds < 10 || done_rx.try_recv() == Err(crossbeam_channel::TryRecvError::Empty) {
            let message = format!("round {rounds}");
            framed.write_frame(message.as_bytes()).unwrap();
            assert_eq!(framed.read_frame().unwrap().unwrap(), message.as_bytes());
            rounds += 1;
        }
    });

    let cases: [(&[u8], ErrorKind, &str); 3] = [
        (
            &(1_000_000i32).to_le_bytes(),
            ErrorKind::InvalidData,
            "frame of 1000000 bytes exceeds the maximum of 1024 bytes",
        ),
        (
            &(-7i32).to_le_bytes(),
            ErrorKind::InvalidData,
            "negative frame length -7",
        ),
        (
            &[10, 0, 0, 0, b'c', b'u', b't'],
            ErrorKind::UnexpectedEof,
            "stream ended inside a frame (3 of 10 bytes)",
        ),
    ];
    for (garbage, kind, message) in cases {
        let mut bad = connect(addr);
        bad.write_all(garbage).unwrap();
        bad.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            read_to_end(&mut bad).unwrap(),
            b"",
            "the server closes a garbage connection"
        );
        let error = reported.recv_timeout(TIMEOUT).expect("the error was reported");
        assert_eq!((error.kind(), error.to_string()), (kind, message.to_owned()));
    }
    drop(done_tx);
    good.join().expect("the good client was disturbed");
    assert_eq!(server.stats().errors, 3);
    running.shutdown();
}

/// An empty frame is a request like any other: it is answered (with an
/// empty frame) at once, by either kind of server, not when the client's
/// next bytes arrive.
#[test]
fn an_empty_frame_is_answered() {
    init_logging();
    let servers = [
        serve(ThreadingTcpServer::bind("127.0.0.1:0", FramedUppercase)),
        serve(ParkedTcpServer::bind("127.0.0.1:0", FramedUppercase)),
    ];
    for (server, running) in servers {
        let mut framed = Framed::buffered(connect(*server.local_addr()));
        framed.write_frame(b"").unwrap();
        assert_eq!(framed.read_frame().unwrap().unwrap(), b"");
        framed.write_frame(b"after").unwrap();
        assert_eq!(framed.read_frame().unwrap().unwrap(), b"AFTER");
        framed.write_frame(b"").unwrap();
        assert_eq!(framed.read_frame().unwrap().unwrap(), b"");
        running.shutdown();
    }
}
