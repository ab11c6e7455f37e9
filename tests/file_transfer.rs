//! Files over a real connection: stored whole under their own name, or
//! not at all.
#![cfg(feature = "message")]

mod util;

use std::io;
use std::path::{Path, PathBuf};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;

use serde_json::{Map, json};
use socketserver::framing::BufStream;
use socketserver::message::file::{is_partial_file_name, receive_file, send_file, send_file_checksum_first};
use socketserver::message::{MessageConfig, MessageStream, write_header, write_message_bytes};
use socketserver::{RequestHandler, TcpRequest, ThreadingTcpServer};
use util::{TIMEOUT, connect, eventually, init_logging, serve};

/// The tests here count the process's transfer helper threads: one test
/// at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The helper threads transfers run on, by the name they carry.
fn transfer_helpers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim() == "file-pipeline")
        .count()
}

/// Varied bytes, `len` of them, in a file of `dir`.
fn make_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// Stores each file it is sent in its directory and answers with a
/// status message.
struct Receiver {
    dir: PathBuf,
}

impl RequestHandler<TcpRequest> for Receiver {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let mut messages = MessageStream::new(request);
        while let Some(header) = messages.read_header()? {
            let reply = match receive_file(&mut messages, &header, &self.dir) {
                Ok(file) => json!({"status": "ok", "name": file.header.name}),
                Err(e) => json!({"status": "error", "error": e.to_string()}),
            };
            messages.write_message_bytes(&reply, b"")?;
        }
        Ok(())
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn files_arrive_whole_or_not_at_all() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init_logging();
    let store = tempfile::tempdir().unwrap();
    let sources = tempfile::tempdir().unwrap();
    let (server, running) = serve(ThreadingTcpServer::bind(
        "127.0.0.1:0",
        Receiver {
            dir: store.path().to_owned(),
        },
    ));
    let mut messages = MessageStream::buffered(connect(*server.local_addr()));
    let config = MessageConfig::default();
    let reply = |messages: &mut MessageStream<BufStream<std::net::TcpStream>>| {
        let header = messages.read_header().unwrap().expect("a reply");
        (
            header.get_str("status").unwrap().to_owned(),
            header.fields().clone(),
        )
    };

    // Good files, large enough for the helper threads, in both forms:
    // the checksum in a trailer, and first (as senders before trailers).
    let (source, bytes) = make_file(sources.path(), "data.bin", 9_000_000);
    send_file(messages.get_mut(), &source, "data.bin", &Map::new(), &config).unwrap();
    assert_eq!(reply(&mut messages).0, "ok");
    assert!(std::fs::read(store.path().join("data.bin")).unwrap() == bytes);
    send_file_checksum_first(messages.get_mut(), &source, "old.bin", &Map::new(), &config).unwrap();
    assert_eq!(reply(&mut messages).0, "ok");
    assert!(std::fs::read(store.path().join("old.bin")).unwrap() == bytes);

    // A body that does not match its checksum.
    let header = json!({"name": "corrupt.bin", "sha256": "0".repeat(64)});
    write_message_bytes(
        messages.get_mut(),
        &header,
        b"not what the checksum says",
        &config,
    )
    .unwrap();
    let (status, fields) = reply(&mut messages);
    assert_eq!(status, "error");
    assert!(
        fields["error"].as_str().unwrap().contains("checksum mismatch"),
        "{fields:?}"
    );

    // Names that would escape the directory.
    for name in ["../escaped.bin", "/tmp/absolute.bin"] {
        let header = json!({"name": name, "sha256": "0".repeat(64)});
        write_message_bytes(messages.get_mut(), &header, b"x", &config).unwrap();
        let (status, fields) = reply(&mut messages);
        assert_eq!(status, "error");
        assert!(
            fields["error"].as_str().unwrap().contains("refusing file name"),
            "{fields:?}"
        );
    }
    assert_eq!(
        entries(store.path()),
        ["data.bin", "old.bin"],
        "only the good files are there"
    );
    assert!(!store.path().parent().unwrap().join("escaped.bin").exists());
    drop(messages);
    running.shutdown();
}

#[test]
fn a_sender_vanishing_mid_upload_leaves_no_thread_and_no_partial_file() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init_logging();
    let store = tempfile::tempdir().unwrap();
    let (server, running) = serve(ThreadingTcpServer::bind(
        "127.0.0.1:0",
        Receiver {
            dir: store.path().to_owned(),
        },
    ));
    let partial_files = || {
        entries(store.path())
            .into_iter()
            .filter(|name| is_partial_file_name(name))
            .count()
    };
    // A header promising 64 MB in a trailer form, 20 MB of it, then gone.
    let mut sender = connect(*server.local_addr());
    let config = MessageConfig::default();
    let header = json!({"name": "vanished.bin"});
    let mut wire = Vec::new();
    write_header(&mut wire, &header, 64_000_000, &["sha256"], &config).unwrap();
    sender.write_all(&wire).unwrap();
    sender.write_all(&vec![b'v'; 20_000_000]).unwrap();
    eventually("the upload is under way on a helper thread", || {
        partial_files() == 1 && transfer_helpers() == 1
    });
    drop(sender);
    eventually("the partial file is removed", || partial_files() == 0);
    eventually("the helper thread is gone", || transfer_helpers() == 0);
    assert!(entries(store.path()).is_empty());
    running.shutdown();
}

#[test]
fn a_receiver_vanishing_mid_send_stops_the_sender_and_its_thread() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init_logging();
    let sources = tempfile::tempdir().unwrap();
    let (source, _) = make_file(sources.path(), "big.bin", 64_000_000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Reads 10 MB of the message, then closes with bytes unread (a reset).
    let receiver = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut taken = vec![0u8; 10_000_000];
        peer.read_exact(&mut taken).unwrap();
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let started = std::time::Instant::now();
    let error = send_file(
        &mut stream,
        &source,
        "big.bin",
        &Map::new(),
        &MessageConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < TIMEOUT, "the send hung");
    // The helper is joined before send_file returns.
    assert_eq!(transfer_helpers(), 0);
    receiver.join().unwrap();
}
