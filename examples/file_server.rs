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
//! "trailer": ["sha256"]}` with the file as body and `{"sha256"}` as the
//! trailer after it, or `{"op": "put", "name", "size", "sha256"}` with the
//! file as body (the checksum-first form older clients send);
//! `{"op": "get", "name"}`, with `"checksum": "trailer"` if the client
//! takes the checksum in a trailer; `{"op": "list"}`. Every reply has
//! `"status": "ok"` or `"status": "error"` with an `"error"` message; a
//! `get` reply carries the file the same way a `put` does, its checksum
//! in a trailer when asked for, else first (the file is then hashed
//! before it is sent). Names are confined to the directory, and names starting
//! with a dot are neither stored, listed nor served (uploads in progress
//! live under such names). An upload goes to a partial file, renamed into
//! place only when its size and SHA-256 match, so an interrupted or
//! corrupted upload leaves nothing behind; partial files left by a server
//! that was killed are removed when the next one starts. A client silent
//! for `--idle-timeout`, in the middle of a transfer or between requests,
//! is disconnected. Files stream through a few 1 MiB buffers both ways,
//! read (or written) and hashed on a helper thread while the socket works:
//! memory stays flat whatever their size.
//!
//! Over TLS (feature `tls`) with `--tls-cert FILE --tls-key FILE`, and
//! for mutual TLS `--tls-client-ca FILE`; `file_client --tls-ca FILE`
//! (and `--tls-cert`/`--tls-key`) speaks it. The checksums still run
//! inside the session.
//!
//! `--tutorial` speaks the tutorials' format instead, for their own
//! Python programs: an upload is a `struct.pack('i')` length, a JSON
//! header with `file_name` and `file_size` (and an `md5`, checked when
//! one is sent), then the bytes; nothing is replied. With `--push NAME`,
//! every client that connects is sent NAME as the tutorials' download
//! server sends it (a length, a header with `filename`, `filesize`,
//! `filename_md5` and `buffer_size`, the bytes), and the connection is
//! closed.

mod common;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::deploy::{Deployment, Program};
use common::tls::ServerTlsArgs;
use common::{ServerArgs, context};
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use socketserver::framing::{FrameConfig, read_frame, write_frame};
use socketserver::message::file::{
    PartialFile, receive_file, remove_stale_partial_files, safe_file_name, send_file,
    send_file_checksum_first,
};
use socketserver::message::{DEFAULT_MAX_HEADER_LEN, Header, MessageConfig, MessageStream};
use socketserver::{RequestHandler, TcpRequest};

const PROGRAM: Program = Program {
    name: "file_server",
    features: &["message"],
    restartable: false,
};

/// File server: stores uploads in a directory and serves them back.
#[derive(Parser, Debug)]
#[command(name = "file_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// The directory files are stored in (created if missing).
    #[arg(long, default_value = "files")]
    dir: PathBuf,
    /// How long a client may stay silent, in a transfer or between
    /// requests, before it is disconnected ("30s").
    #[arg(long, default_value = "30s", value_parser = common::parse_timeout)]
    idle_timeout: Duration,
    /// Speak the tutorials' upload format instead of the crate's.
    #[arg(long)]
    tutorial: bool,
    /// With --tutorial: send this stored file to every client, as the
    /// tutorials' download server does, instead of taking uploads.
    #[arg(long, value_name = "NAME", requires = "tutorial")]
    push: Option<String>,
}

/// Serves `put`, `get` and `list` requests for one directory.
struct FileServer {
    dir: PathBuf,
    idle_timeout: Duration,
    tutorial: bool,
    push: Option<String>,
}

/// True if the connection itself failed or went quiet, so no reply can
/// get through (or the stream is no longer at a message boundary).
fn is_broken(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Checks a name a client sent: a plain name, not a dot name.
fn stored_name(name: &str) -> io::Result<&str> {
    let name = safe_file_name(name)?;
    if name.starts_with('.') {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing file name {name:?}: names starting with '.' are not stored"),
        ));
    }
    Ok(name)
}

fn md5_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FileServer {
    /// An error as the client may see it: without the server's directory.
    fn error_reply(&self, error: &io::Error) -> Value {
        let prefix = format!("{}/", self.dir.display());
        let message = error.to_string().replace(&prefix, "");
        json!({"status": "error", "error": message})
    }

    /// The path of a stored file `name`, if there is one.
    fn stored(&self, name: &str) -> io::Result<(String, PathBuf)> {
        let name = stored_name(name)
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, format!("no such file: {name}")))?;
        let path = self.dir.join(name);
        if path.is_file() {
            Ok((name.to_owned(), path))
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such file: {name}"),
            ))
        }
    }

    fn put(
        &self,
        messages: &mut MessageStream<&mut TcpRequest>,
        header: &Header,
        peer: &str,
    ) -> io::Result<()> {
        let received = header
            .get_str("name")
            .and_then(stored_name)
            .and_then(|_| receive_file(messages, header, &self.dir));
        match received {
            Ok(file) => {
                log::info!("{peer}: stored {} ({} bytes)", file.header.name, file.header.size);
                let reply = json!({"status": "ok", "name": file.header.name, "sha256": file.header.sha256});
                messages.write_message_bytes(&reply, b"")
            }
            Err(e) if is_broken(&e) => Err(e),
            Err(e) => {
                log::warn!("{peer}: upload refused: {e}");
                messages.write_message_bytes(&self.error_reply(&e), b"")
            }
        }
    }

    fn get(
        &self,
        messages: &mut MessageStream<&mut TcpRequest>,
        header: &Header,
        peer: &str,
    ) -> io::Result<()> {
        let (name, path) = match header.get_str("name").and_then(|name| self.stored(name)) {
            Ok(found) => found,
            Err(e) => return messages.write_message_bytes(&self.error_reply(&e), b""),
        };
        let mut status = Map::new();
        status.insert("status".into(), json!("ok"));
        let send = if header.get("checksum").and_then(Value::as_str) == Some("trailer") {
            send_file
        } else {
            send_file_checksum_first
        };
        let sent = send(
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
        let in_dir = context(self.dir.display());
        for entry in fs::read_dir(&self.dir).map_err(in_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Partial files (uploads in progress) are dot files.
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            files.push(json!({"name": name, "size": entry.metadata()?.len()}));
        }
        files.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(json!({"status": "ok", "files": files}))
    }

    /// The crate's protocol: requests and replies as messages.
    fn serve_messages(&self, request: &mut TcpRequest, peer: &str) -> io::Result<()> {
        let mut messages = MessageStream::new(request);
        while let Some(header) = messages.read_header()? {
            match header.get("op").and_then(Value::as_str) {
                Some("put") => self.put(&mut messages, &header, peer)?,
                Some("get") => self.get(&mut messages, &header, peer)?,
                Some("list") => {
                    let reply = self.list().unwrap_or_else(|e| self.error_reply(&e));
                    messages.write_message_bytes(&reply, b"")?;
                }
                other => {
                    let e = io::Error::new(io::ErrorKind::InvalidInput, format!("unknown op {other:?}"));
                    messages.write_message_bytes(&self.error_reply(&e), b"")?;
                }
            }
        }
        Ok(())
    }

    /// The tutorials' uploads: a length, a JSON header with `file_name`
    /// and `file_size` (and maybe `md5`), the bytes; no reply.
    fn take_tutorial_uploads(&self, request: &mut TcpRequest, peer: &str) -> io::Result<()> {
        let config = FrameConfig::tutorial().with_max_frame_len(DEFAULT_MAX_HEADER_LEN);
        while let Some(frame) = read_frame(request, &config)? {
            let header: Map<String, Value> = serde_json::from_slice(&frame)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a JSON header: {e}")))?;
            let field = |key: &str| {
                header.get(key).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("the header has no {key:?}"))
                })
            };
            let name = field("file_name")?.as_str().unwrap_or_default();
            let size = field("file_size")?
                .as_u64()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "\"file_size\" is not a size"))?;
            let md5 = ["md5", "file_md5", "filename_md5"]
                .iter()
                .find_map(|key| header.get(*key).and_then(Value::as_str));
            let name = stored_name(name)?;
            let mut partial = PartialFile::create(&self.dir, name)?;
            let mut hasher = Md5::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut body = request.take(size);
            let mut got = 0u64;
            loop {
                let n = match body.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&chunk[..n]);
                partial.write_all(&chunk[..n])?;
                got += n as u64;
            }
            if got < size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name}: the upload ended after {got} of {size} bytes; discarded"),
                ));
            }
            let actual = md5_hex(&hasher.finalize());
            if let Some(expected) = md5
                && !expected.eq_ignore_ascii_case(&actual)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{name}: md5 mismatch (header says {expected}, the bytes hash to {actual}); discarded"
                    ),
                ));
            }
            partial.persist(&self.dir.join(name))?;
            log::info!("{peer}: stored {name} ({size} bytes, md5 {actual})");
        }
        Ok(())
    }

    /// The tutorials' download: `name` pushed to the client, then close.
    fn push_tutorial_file(&self, request: &mut TcpRequest, name: &str, peer: &str) -> io::Result<()> {
        /// The tutorials' client reads the file this much at a time.
        const BUFFER_SIZE: u64 = 1024 * 1024;
        let (name, path) = self.stored(name)?;
        let open = || File::open(&path).map_err(context(path.display()));
        let mut hasher = Md5::new();
        let size = io::copy(&mut open()?, &mut HashWriter(&mut hasher))?;
        let header = json!({
            "filename": name,
            "filesize": size,
            "filename_md5": md5_hex(&hasher.finalize()),
            "buffer_size": BUFFER_SIZE,
        });
        let config = FrameConfig::tutorial().with_max_frame_len(DEFAULT_MAX_HEADER_LEN);
        write_frame(request, header.to_string().as_bytes(), &config)?;
        let sent = io::copy(&mut open()?.take(size), request)?;
        log::info!("{peer}: pushed {name} ({sent} bytes)");
        Ok(())
    }
}

/// Feeds what is written to a hash.
struct HashWriter<'a>(&'a mut Md5);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RequestHandler<TcpRequest> for FileServer {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let peer = request.peer_addr().to_string();
        let served = match (&self.push, self.tutorial) {
            (Some(name), _) => self.push_tutorial_file(request, name, &peer),
            (None, true) => self.take_tutorial_uploads(request, &peer),
            (None, false) => self.serve_messages(request, &peer),
        };
        match served {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                log::info!(
                    "{peer}: silent for {}; disconnected",
                    common::show_duration(self.idle_timeout)
                );
                Ok(())
            }
            other => other,
        }
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::FILE_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

/// Creates the directory if needed and returns its absolute path.
fn prepare(dir: &Path) -> io::Result<PathBuf> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--dir {}: not a directory", dir.display()),
        ));
    }
    fs::create_dir_all(dir).map_err(context(format!("--dir {}", dir.display())))?;
    let dir = fs::canonicalize(dir).map_err(context(format!("--dir {}", dir.display())))?;
    for stale in remove_stale_partial_files(&dir)? {
        log::info!("removed {}, left by an interrupted upload", stale.display());
    }
    Ok(dir)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    let dir = prepare(&args.dir)?;
    log::info!("serving files in {}", dir.display());
    let handler = FileServer {
        dir,
        idle_timeout: args.idle_timeout,
        tutorial: args.tutorial,
        push: args.push.clone(),
    };
    if let Some(name) = &args.push {
        handler.stored(name).map_err(context("--push"))?;
    }
    let builder = args
        .server
        .builder::<TcpListener>(args.server.mode(false))
        .read_timeout(args.idle_timeout)
        .write_timeout(args.idle_timeout);
    let builder = args.tls.apply(&PROGRAM, deployment.watch(builder, None))?;
    let listener = deployment.socket(&builder, &args.server.address()?)?;
    let server = builder.from_listener(listener, deployment.watched(handler))?;
    deployment.serve(server, "connections")
}
