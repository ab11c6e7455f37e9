//! The client of `file_server`: upload, download and list files, with a
//! progress bar showing the rate and the time left.
//!
//! ```text
//! cargo run --release --features message --example file_client -- put ./video.mp4 [--name clip.mp4]
//! cargo run --release --features message --example file_client -- get clip.mp4 --out ./downloads
//! cargo run --release --features message --example file_client -- list
//! ```
//!
//! Both directions check a SHA-256 against the bytes that arrive; a
//! download is written to a temporary file and renamed only when it
//! matches. An upload reads the file once, hashing it while it is sent,
//! and sends the checksum in a trailer after the bytes; `--checksum-first`
//! sends it in the header instead, as servers that predate trailers
//! expect (the file is then hashed before it is sent, a phase the
//! progress bar shows). A download asks for the checksum in a trailer
//! too. With `--tls-ca FILE` it speaks TLS (see `file_server`); the
//! option goes before or after the subcommand. Each transfer ends with a
//! line saying how long it took and its rate, which `scripts/bench-file.sh`
//! reads.

mod common;

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use common::context;
use common::tls::{self, ClientStream, ClientTlsArgs};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use socketserver::framing::BufStream;
use socketserver::message::file::{
    FileHeader, receive_file, remove_stale_partial_files, send_file, send_file_contents, sha256_hex,
};
use socketserver::message::{Header, MessageConfig, MessageStream};

/// Client for the file server.
#[derive(Parser, Debug)]
#[command(name = "file_client", version)]
struct Args {
    /// Server address: an IP address (127.0.0.1, ::1 or [::1]) or a host
    /// name.
    #[arg(long, default_value = "127.0.0.1", global = true)]
    host: String,
    /// Server port.
    #[arg(long, global = true)]
    port: u16,
    /// How long to wait for the server: to connect, and for each read
    /// ("60s").
    #[arg(long, default_value = "60s", value_parser = common::parse_timeout, global = true)]
    timeout: Duration,
    /// No progress bar.
    #[arg(long, global = true)]
    quiet: bool,
    /// Send the SHA-256 in the upload's header, hashing the file before
    /// sending it, for servers that predate checksums in trailers.
    #[arg(long, global = true)]
    checksum_first: bool,
    #[command(flatten)]
    tls: ClientTlsArgs,
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Upload a file.
    Put {
        /// The file to upload.
        path: PathBuf,
        /// The name to store it under (default: the file's own name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a file.
    Get {
        /// The name it is stored under.
        name: String,
        /// The directory to write it to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// List the stored files.
    List,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args: Args = common::parse_args(common::FILE_PORT);
    common::exit("file_client", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    // Checked before anything goes over the wire.
    if let Action::Get { out, .. } = &args.command {
        if !out.is_dir() {
            let why = if out.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("--out {}: {why}", out.display()),
            ));
        }
        // A download cut by a signal (Ctrl-C, kill) leaves its partial
        // file: the next one into the directory removes it.
        for stale in remove_stale_partial_files(out).map_err(context("--out"))? {
            log::warn!("removed {}, left by an interrupted download", stale.display());
        }
    }
    let tls = args.tls.connector(&args.host)?;
    let stream = common::connect(&args.host, args.port, args.timeout)?;
    stream.set_read_timeout(Some(args.timeout))?;
    let server = stream.peer_addr()?;
    // Over TLS, the handshake is done (or refused, saying why) before a
    // byte of the file is read.
    let stream = Named {
        stream: ClientStream::start(stream, tls.as_ref(), server)?,
        server: server.to_string(),
        unread: tls.is_none(),
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(transfer_style());
    // Every byte either way moves the bar.
    let mut messages = MessageStream::new(bar.wrap_read(BufStream::new(stream)));
    match &args.command {
        Action::Put { path, name } => put(&mut messages, &bar, path, name.as_deref(), args.checksum_first),
        Action::Get { name, out } => get(&mut messages, &bar, name, out),
        Action::List => list(&mut messages),
    }
}

/// The bar while bytes travel: the rate and the time left.
fn transfer_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:10} {wide_bar} {binary_bytes_per_sec:>12} eta {eta}",
    )
    .expect("a valid template")
}

/// The bar while a file is hashed before it is sent (`--checksum-first`).
fn hashing_style() -> ProgressStyle {
    ProgressStyle::with_template("hashing {bytes:>10}/{total_bytes:10} {wide_bar} eta {eta}")
        .expect("a valid template")
}

/// The bar once the bytes are out, while the server checks and stores
/// them.
fn waiting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {bytes:>10} sent; {msg} {elapsed}").expect("a valid template")
}

/// How long a transfer of `bytes` took and its rate, in MB/s (10^6
/// bytes a second).
fn timing(bytes: u64, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    };
    format!("in {seconds:.3} s, {rate:.0} MB/s")
}

type Messages = MessageStream<indicatif::ProgressBarIter<BufStream<Named<ClientStream<TcpStream>>>>>;

/// The connection to the server, whose errors name it: a reset, a time-out
/// or a refusal the server sent over TLS says which server it was.
struct Named<S> {
    stream: S,
    server: String,
    /// In plain TCP, nothing has come from the server yet: its first
    /// bytes are checked for a TLS server's alert.
    unread: bool,
}

impl<S: Read> Read for Named<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf).map_err(context(&self.server))?;
        // A reply begins with its header's length, at most 64 KiB: never
        // with the bytes of a TLS record.
        if std::mem::take(&mut self.unread) && tls::starts_tls_record(&buf[..n]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the server answered in TLS{}",
                    self.server,
                    tls::TLS_SERVER_HINT
                ),
            ));
        }
        Ok(n)
    }
}

impl<S: Write> Write for Named<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf).map_err(context(&self.server))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().map_err(context(&self.server))
    }
}

/// Reads the server's reply; an error reply becomes an error.
fn reply(messages: &mut Messages) -> io::Result<Header> {
    let header = messages
        .read_header()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"))?;
    match header.get("status").and_then(Value::as_str) {
        Some("ok") => Ok(header),
        _ => {
            let error = header
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Err(io::Error::other(format!("the server said: {error}")))
        }
    }
}

fn put(
    messages: &mut Messages,
    bar: &ProgressBar,
    path: &Path,
    name: Option<&str>,
    checksum_first: bool,
) -> io::Result<()> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: the path has no file name", path.display()),
                )
            })?
            .to_owned(),
    };
    let size = std::fs::metadata(path).map_err(context(path.display()))?.len();
    let mut request = Map::new();
    request.insert("op".into(), json!("put"));
    let started = Instant::now();
    bar.set_length(size);
    let file = if checksum_first {
        // Hashing a large file takes a while: show it as its own phase,
        // so the transfer's rate is not a flat zero meanwhile.
        bar.set_style(hashing_style());
        let opened = File::open(path).map_err(context(path.display()))?;
        let (sha256, size) =
            sha256_hex(&mut bar.wrap_read(BufReader::new(opened))).map_err(context(path.display()))?;
        bar.set_style(transfer_style());
        bar.reset();
        let file = FileHeader { name, size, sha256 };
        let mut contents = File::open(path).map_err(context(path.display()))?;
        send_file_contents(
            messages.get_mut(),
            &mut contents,
            &file,
            &request,
            &MessageConfig::default(),
        )?;
        file
    } else {
        // One pass: the bar counts what the socket takes, and the file is
        // hashed meanwhile.
        bar.set_style(transfer_style());
        send_file(
            messages.get_mut(),
            path,
            &name,
            &request,
            &MessageConfig::default(),
        )?
    };
    messages.get_mut().flush()?;
    bar.set_style(waiting_style());
    bar.set_message("the server checks and stores it");
    bar.force_draw();
    bar.enable_steady_tick(Duration::from_millis(100));
    let header = reply(messages).map_err(|e| {
        if !checksum_first && e.to_string().contains("\"sha256\"") {
            io::Error::new(
                e.kind(),
                format!("{e} (a server that predates checksums in trailers? try --checksum-first)"),
            )
        } else {
            e
        }
    })?;
    bar.finish_and_clear();
    let stored = header.get("sha256").and_then(Value::as_str).unwrap_or("none");
    if stored != file.sha256 {
        return Err(io::Error::other(format!(
            "{}: the server stored sha256 {stored}, ours is {}",
            file.name, file.sha256
        )));
    }
    println!(
        "stored {} ({} bytes, sha256 {}) {}",
        file.name,
        file.size,
        file.sha256,
        timing(file.size, started)
    );
    Ok(())
}

fn get(messages: &mut Messages, bar: &ProgressBar, name: &str, out: &Path) -> io::Result<()> {
    let started = Instant::now();
    // A server that predates trailers ignores "checksum" and sends it first.
    messages.write_message_bytes(&json!({"op": "get", "name": name, "checksum": "trailer"}), b"")?;
    let header = reply(messages)?;
    bar.set_length(header.body_len());
    bar.reset();
    let file = receive_file(messages, &header, out)?;
    bar.finish_and_clear();
    println!(
        "saved {} ({} bytes, sha256 {}) {}",
        file.path.display(),
        file.header.size,
        file.header.sha256,
        timing(file.header.size, started)
    );
    Ok(())
}

fn list(messages: &mut Messages) -> io::Result<()> {
    messages.write_message_bytes(&json!({"op": "list"}), b"")?;
    let header = reply(messages)?;
    let files = header
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for file in files {
        println!(
            "{:>12}  {}",
            file["size"].as_u64().unwrap_or(0),
            file["name"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
