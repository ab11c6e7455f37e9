//! Files over a real connection: stored whole under their own name, or
//! not at all.
#![cfg(feature = "message")]

mod util;

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, json};
use socketserver::framing::BufStream;
use socketserver::message::file::{receive_file, send_file};
use socketserver::message::{MessageConfig, MessageStream, write_message_bytes};
use socketserver::{RequestHandler, TcpRequest, ThreadingTcpServer};
use util::{connect, init_logging, serve};

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

    // A good file.
    let source = sources.path().join("data.bin");
    let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();
    send_file(messages.get_mut(), &source, "data.bin", &Map::new(), &config).unwrap();
    assert_eq!(reply(&mut messages).0, "ok");
    assert_eq!(std::fs::read(store.path().join("data.bin")).unwrap(), bytes);

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
    assert_eq!(entries(store.path()), ["data.bin"], "only the good file is there");
    assert!(!store.path().parent().unwrap().join("escaped.bin").exists());
    drop(messages);
    running.shutdown();
}
