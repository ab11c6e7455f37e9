//! The tutorials' file transfer, done properly: a server that stores
//! uploaded files in one directory and hands them back.
//!
//! ```text
//! cargo run --release --features message --example file_server -- --dir ./files
//! cargo run --release --features message --example file_client -- put ./video.mp4
//! cargo run --release --features message --example file_client -- list
//! cargo run --release --features message --example file_client -- get video.mp4 --out ./downloads
//! ```
//!
//! The protocol is the crate's header + body messages: a framed JSON
//! header, then a streamed body. Requests: `{"op": "put", "name", "size",
//! "sha256"}` with the file as body; `{"op": "get", "name"}`; `{"op":
//! "list"}`. Every reply has `"status": "ok"` or `"status": "error"` with
//! an `"error"` message; a `get` reply carries the file the same way a
//! `put` does. Names are confined to the directory; an upload goes to a
//! temporary file, renamed into place only when its size and SHA-256
//! match, so an interrupted or corrupted upload leaves nothing behind.
//! Files stream through a small buffer both ways: memory stays flat
//! whatever their size.

mod common;

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::{ServerArgs, context};
use serde_json::{Map, Value, json};
use socketserver::message::file::{receive_file, safe_file_name, send_file};
use socketserver::message::{Header, MessageConfig, MessageStream};
use socketserver::{Builder, Mode, RequestHandler, TcpRequest, TcpServer, ThreadingTcpServer};

/// File server: stores uploads in a directory and serves them back.
#[derive(Parser, Debug)]
#[command(name = "file_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// The directory files are stored in (created if missing).
    #[arg(long, default_value = "files")]
    dir: PathBuf,
}

/// Serves `put`, `get` and `list` requests for one directory.
struct FileServer {
    dir: PathBuf,
}

fn error_reply(error: &io::Error) -> Value {
    json!({"status": "error", "error": error.to_string()})
}

/// True if the connection itself failed, so no reply can get through.
fn is_broken(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl FileServer {
    fn put(
        &self,
        messages: &mut MessageStream<&mut TcpRequest>,
        header: &Header,
        peer: &str,
    ) -> io::Result<()> {
        match receive_file(messages, header, &self.dir) {
            Ok(file) => {
                log::info!("{peer}: stored {} ({} bytes)", file.header.name, file.header.size);
                let reply = json!({"status": "ok", "name": file.header.name, "sha256": file.header.sha256});
                messages.write_message_bytes(&reply, b"")
            }
            Err(e) if is_broken(&e) => Err(e),
            Err(e) => {
                log::warn!("{peer}: upload refused: {e}");
                messages.write_message_bytes(&error_reply(&e), b"")
            }
        }
    }

    fn get(
        &self,
        messages: &mut MessageStream<&mut TcpRequest>,
        header: &Header,
        peer: &str,
    ) -> io::Result<()> {
        let found = header.get_str("name").and_then(safe_file_name).and_then(|name| {
            let path = self.dir.join(name);
            if path.is_file() {
                Ok((name.to_owned(), path))
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no such file: {name}"),
                ))
            }
        });
        let (name, path) = match found {
            Ok(found) => found,
            Err(e) => return messages.write_message_bytes(&error_reply(&e), b""),
        };
        let mut status = Map::new();
        status.insert("status".into(), json!("ok"));
        let sent = send_file(
            messages.get_mut(),
            &path,
            &name,
            &status,
            &MessageConfig::default(),
        )?;
        log::info!("{peer}: sent {} ({} bytes)", sent.name, sent.size);
        Ok(())
    }

    fn list(&self) -> io::Result<Value> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Uploads in progress are dot files.
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            files.push(json!({"name": name, "size": entry.metadata()?.len()}));
        }
        files.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(json!({"status": "ok", "files": files}))
    }
}

impl RequestHandler<TcpRequest> for FileServer {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let peer = request.peer_addr().to_string();
        let mut messages = MessageStream::new(request);
        while let Some(header) = messages.read_header()? {
            match header.get("op").and_then(Value::as_str) {
                Some("put") => self.put(&mut messages, &header, &peer)?,
                Some("get") => self.get(&mut messages, &header, &peer)?,
                Some("list") => {
                    let reply = self.list().unwrap_or_else(|e| error_reply(&e));
                    messages.write_message_bytes(&reply, b"")?;
                }
                other => {
                    let e = io::Error::new(io::ErrorKind::InvalidInput, format!("unknown op {other:?}"));
                    messages.write_message_bytes(&error_reply(&e), b"")?;
                }
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::FILE_PORT);
    common::exit("file_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    fs::create_dir_all(&args.dir)?;
    let dir = fs::canonicalize(&args.dir)?;
    log::info!("serving files in {}", dir.display());
    let handler = FileServer { dir };
    if args.server.serial {
        serve(TcpServer::builder(), &args.server, handler)
    } else {
        serve(
            args.server.sized(ThreadingTcpServer::builder()),
            &args.server,
            handler,
        )
    }
}

fn serve<M: Mode>(
    builder: Builder<TcpListener, M>,
    args: &ServerArgs,
    handler: FileServer,
) -> io::Result<()> {
    let addr = args.address()?;
    let server = builder
        .shutdown_grace(args.grace)
        .bind(addr, handler)
        .map_err(context(format!("cannot listen on {addr}")))?;
    common::serve_until_signal(server, "connections")
}
