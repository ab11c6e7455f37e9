//! An HTTP/1.1 server: one per-request handler on the parked server.
//!
//! ```text
//! cargo run --release --example http_server                 # 127.0.0.1:9993, parked
//! curl -i http://127.0.0.1:9993/                            # 200, "hello, world"
//! cargo run --release --example http_server -- --root ./site --access-log
//! curl -I http://127.0.0.1:9993/index.html                  # Last-Modified, Accept-Ranges
//! curl -r 0-99 http://127.0.0.1:9993/big.bin                # 206, the first 100 bytes
//! wrk -t1 -c64 -d5s http://127.0.0.1:9993/
//! ```
//!
//! Without `--root`, `GET /` answers `hello, world` (the benchmark route;
//! `HEAD` too, and `POST`, which reads its body first), other paths 404.
//! With `--root DIR` it serves the files in DIR instead: GET and HEAD,
//! `Content-Type` by extension, `Last-Modified` and `If-Modified-Since`,
//! one `Range`; `/` is DIR/index.html; no listing; nothing outside DIR
//! (`..`, `%2e%2e`, symbolic links out are refused).
//!
//! Requests are parsed by `httparse`, over the bytes read ahead, without
//! copying; every complete request a client has sent is answered in order,
//! the responses written together (pipelining). Keep-alive as HTTP/1.1
//! and 1.0 have it, `Connection: close`, bodies by `Content-Length` or
//! chunked, `Expect: 100-continue`. A request the server cannot take gets
//! the status a careful server gives (400, 405 with `Allow`, 413, 414,
//! 431, 501, 505) and, where its framing is in doubt, the connection is
//! closed after it. A request head not complete `--header-timeout` after
//! its first byte is cut with 408 and counted; a connection idle for
//! `--keep-alive-timeout` is closed. `--access-log` logs a line per
//! request at info level.
//!
//! A request head that has not all arrived is kept with the connection,
//! which waits in the poller for the rest holding no thread; so does a
//! body still coming. `--threading` serves a connection on a thread of its
//! own instead. Takes `--unix`, TLS (`--tls-cert`, feature `tls`) and the
//! PROXY protocol (`--proxy-protocol`, feature `proxy-protocol`) as the
//! other servers do.

#[path = "../common/mod.rs"]
mod common;
mod files;
mod request;
mod response;

use std::cell::RefCell;
use std::fmt::Debug;
use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::deploy::{Deployment, Program, Site};
use common::{ProtocolArgs, ShowAddr};
use files::{Found, Range, Root, Served};
use request::{Body, ChunkError, ChunkedDecoder, Head, Limits, Method, Parsed, Refusal};
use response::Connection;
use socketserver::server::{Connection as Socket, Listener};
use socketserver::{KeepAliveHandler, Mode, Next, StreamRequest};

const PROGRAM: Program = Program {
    name: "http_server",
    features: &[],
    restartable: false,
};

/// The benchmark route's answer.
const HELLO: &[u8] = b"hello, world\n";
/// Responses collected before they are sent, in a long pipeline.
const FLUSH_AT: usize = 256 * 1024;
/// Files up to this size go out with their head in one write; larger ones
/// are sent in pieces of this size.
const FILE_PIECE: usize = 256 * 1024;
/// The most a connection keeps of its buffer between requests.
const KEEP_CAPACITY: usize = 64 * 1024;

/// An HTTP/1.1 server: hello, world, or the files of a directory.
#[derive(clap::Parser, Debug)]
#[command(name = "http_server", version)]
struct Args {
    #[command(flatten)]
    serving: ProtocolArgs,
    /// Serve the files in this directory instead of "hello, world".
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Log a line per request (peer, request line, status, bytes) at info
    /// level.
    #[arg(long)]
    access_log: bool,
    /// The most bytes of a request head, request line and headers
    /// ("32KiB"; 431 beyond).
    #[arg(long, default_value = "32KiB", value_parser = common::parse_size)]
    max_head: u64,
    /// The longest request target ("8KiB"; 414 beyond).
    #[arg(long, default_value = "8KiB", value_parser = common::parse_size)]
    max_uri: u64,
    /// The longest request body ("16MiB"; 413 beyond).
    #[arg(long, default_value = "16MiB", value_parser = common::parse_size)]
    max_body: u64,
    /// How long a request head may take to arrive from its first byte
    /// ("10s"; then 408 and the connection is closed).
    #[arg(long, default_value = "10s", value_parser = common::parse_timeout)]
    header_timeout: Duration,
    /// Close a connection that sends nothing for this long between
    /// requests, or in the middle of one ("15s").
    #[arg(long, default_value = "15s", value_parser = common::parse_timeout)]
    keep_alive_timeout: Duration,
    /// How long answering one batch of requests may take, the writes
    /// included, before the connection is cut ("30s").
    #[arg(long, default_value = "30s", value_parser = common::parse_timeout)]
    request_timeout: Duration,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::HTTP_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    let size = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
    let routes = match &args.root {
        Some(dir) => Routes::Files(Root::new(dir)?),
        None => Routes::Hello,
    };
    let handler = HttpServer {
        routes,
        limits: Limits {
            max_head: size(args.max_head),
            max_uri: size(args.max_uri),
            max_body: args.max_body,
        },
        header_timeout: args.header_timeout,
        access_log: args.access_log,
        counters: Arc::default(),
    };
    match &args.serving.unix {
        None => serve::<TcpListener>(args, handler, deployment, &args.serving.server.address()?),
        Some(path) => serve::<UnixListener>(args, handler, deployment, path),
    }
}

/// Serves on an `L` (TCP, or a Unix socket) at `at`.
fn serve<L>(args: &Args, handler: HttpServer, deployment: &mut Deployment, at: &L::At) -> io::Result<()>
where
    L: Listener + Site,
    L::Addr: ShowAddr,
{
    let mode = args.serving.mode();
    let builder = args.serving.server.builder::<L>(mode);
    let builder = match mode {
        Mode::Parked => builder
            .idle_timeout(args.keep_alive_timeout)
            .request_timeout(args.request_timeout),
        _ => builder
            .read_timeout(args.keep_alive_timeout)
            .write_timeout(args.request_timeout),
    };
    let builder = deployment.watch(builder, None);
    let builder = args.serving.tls.apply(&PROGRAM, builder)?;
    let builder = deployment.proxy_protocol(builder, &args.serving.proxy, args.serving.unix.is_some())?;
    let listener = deployment.socket(&builder, at)?;
    let counters = Arc::clone(&handler.counters);
    match &handler.routes {
        Routes::Hello => log::info!("serving \"hello, world\" in {} mode", mode.name()),
        Routes::Files(root) => log::info!(
            "serving the files in {} in {} mode",
            root.dir().display(),
            mode.name()
        ),
    }
    let server = builder.from_listener(listener, deployment.watched(handler))?;
    deployment.serve(server, "connections")?;
    log::info!(
        "{} requests answered; {} refused as malformed or too large, {} request heads cut for taking \
         longer than --header-timeout",
        counters.requests.load(Ordering::Relaxed),
        counters.refused.load(Ordering::Relaxed),
        counters.slow_heads.load(Ordering::Relaxed)
    );
    Ok(())
}

/// What the server answers.
enum Routes {
    /// `/` is "hello, world".
    Hello,
    /// The files of a directory.
    Files(Root),
}

/// What happened, for the log at exit.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    refused: AtomicU64,
    slow_heads: AtomicU64,
}

struct HttpServer {
    routes: Routes,
    limits: Limits,
    header_timeout: Duration,
    access_log: bool,
    counters: Arc<Counters>,
}

/// What a connection keeps between its batches of requests.
#[derive(Debug, Default)]
struct Client {
    /// Bytes of a request head that has not all arrived (and whatever
    /// came behind it); empty otherwise: complete requests are read where
    /// they arrived, in the read-ahead.
    pending: Vec<u8>,
    /// When the first bytes of that head came.
    head_started: Option<Instant>,
    /// A request whose body is still arriving, answered once it has.
    body: Option<Incoming>,
}

/// A request whose body is being read.
#[derive(Debug)]
struct Incoming {
    reader: BodyReader,
    answer: Answer,
}

/// How a body is read (and dropped: no route keeps one).
#[derive(Debug)]
enum BodyReader {
    Length { left: u64, total: u64 },
    Chunked(ChunkedDecoder),
}

impl BodyReader {
    /// Takes what it can of `input`: how much, and whether the body ended.
    fn read(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        match self {
            BodyReader::Length { left, .. } => {
                let take = (*left).min(input.len() as u64);
                *left -= take;
                Ok((take as usize, *left == 0))
            }
            BodyReader::Chunked(decoder) => decoder.decode(input),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            BodyReader::Length { left, total } => total - left,
            BodyReader::Chunked(decoder) => decoder.body_bytes(),
        }
    }
}

/// A response decided, to be written.
#[derive(Debug)]
struct Answer {
    reply: Reply,
    minor: u8,
    keep_alive: bool,
    head_only: bool,
    /// The request line, for the access log.
    line: Option<String>,
}

/// What a request is answered with.
#[derive(Debug)]
enum Reply {
    Hello,
    /// A short text response with this status; `Allow` for a 405.
    Status {
        status: u16,
        allow: Option<&'static str>,
    },
    Redirect(String),
    File {
        served: Served,
        range: Range,
    },
    NotModified {
        modified: u64,
    },
}

thread_local! {
    /// The responses of the batch being served, sent together: a worker's,
    /// so idle connections keep none.
    static RESPONSES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<S: Socket> KeepAliveHandler<StreamRequest<S>> for HttpServer {
    type State = Client;

    fn handle_one(&self, request: &mut StreamRequest<S>, client: &mut Client) -> io::Result<Next> {
        RESPONSES.with_borrow_mut(|out| {
            let served = self.serve(request, client, out);
            out.clear();
            if out.capacity() > FLUSH_AT * 2 {
                *out = Vec::new();
            }
            served
        })
    }

    /// As the default, except that a connection closed for saying nothing
    /// within the keep-alive timeout (threading mode) is no failure.
    fn handle_error(&self, request: &StreamRequest<S>, error: &io::Error) {
        if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return log::debug!("request from {:?} ended: {error}", request.peer_addr());
        }
        socketserver::handler::log_error(request, error);
    }
}

/// Where the bytes being read come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    /// The connection's own buffer (a head or body begun earlier).
    Pending,
    /// The read-ahead.
    ReadAhead,
}

impl HttpServer {
    /// Answers every complete request the client has sent, in order, and
    /// sends the responses; keeps what has not all arrived.
    fn serve<S: Socket>(
        &self,
        request: &mut StreamRequest<S>,
        client: &mut Client,
        out: &mut Vec<u8>,
    ) -> io::Result<Next> {
        let next = self.answer_all(request, client, out)?;
        if !out.is_empty() {
            request.write_all(out)?;
        }
        if client.pending.is_empty() && client.pending.capacity() > KEEP_CAPACITY {
            client.pending = Vec::new();
        }
        Ok(next)
    }

    fn answer_all<S: Socket>(
        &self,
        request: &mut StreamRequest<S>,
        client: &mut Client,
        out: &mut Vec<u8>,
    ) -> io::Result<Next> {
        let peer = request.peer_addr().clone(); // formatted only when logged
        loop {
            if out.len() >= FLUSH_AT {
                request.write_all(out)?;
                out.clear();
            }
            // Once something is pending, what arrives joins it.
            if !client.pending.is_empty() {
                let more = request.buffered();
                let len = more.len();
                client.pending.extend_from_slice(more);
                request.consume(len);
            }
            let from = if client.pending.is_empty() {
                From::ReadAhead
            } else {
                From::Pending
            };
            let input: &[u8] = match from {
                From::Pending => &client.pending,
                From::ReadAhead => request.buffered(),
            };

            if let Some(incoming) = &mut client.body {
                let read = incoming.reader.read(input);
                let len = input.len();
                let (used, done) = match read {
                    Ok(read) => read,
                    Err(error) => {
                        let status = match error {
                            ChunkError::TooLarge => 413,
                            ChunkError::Malformed(_) => 400,
                        };
                        self.counters.refused.fetch_add(1, Ordering::Relaxed);
                        log::debug!("{status} to {peer:?}: a body refused: {error:?}");
                        response::text(out, status, Connection::Close, false, &[]);
                        return Ok(Next::Close);
                    }
                };
                debug_assert!(done || used == len);
                take(from, client_pending(&mut client.pending, from), request, used);
                if !done {
                    return Ok(Next::KeepOpen);
                }
                let incoming = client.body.take().expect("a body was being read");
                let bytes_in = incoming.reader.bytes();
                let keep_alive = incoming.answer.keep_alive;
                self.write_answer(request, out, incoming.answer, &peer, Some(bytes_in))?;
                if !keep_alive {
                    return Ok(Next::Close);
                }
                continue;
            }

            if input.is_empty() {
                return Ok(Next::KeepOpen);
            }
            let parsed = request::parse_head(input, &self.limits);
            let (decided, body, len) = match parsed {
                Ok(Parsed::Partial) => {
                    if from == From::ReadAhead {
                        let len = input.len();
                        client.pending.extend_from_slice(request.buffered());
                        request.consume(len);
                    }
                    let started = *client.head_started.get_or_insert_with(Instant::now);
                    if started.elapsed() > self.header_timeout {
                        return Ok(self.too_slow(out, &peer));
                    }
                    return Ok(Next::KeepOpen);
                }
                Err(refusal) => {
                    self.refuse(out, refusal, &peer);
                    return Ok(Next::Close);
                }
                Ok(Parsed::Complete(head, len)) => {
                    if client
                        .head_started
                        .take()
                        .is_some_and(|started| started.elapsed() > self.header_timeout)
                    {
                        return Ok(self.too_slow(out, &peer));
                    }
                    (self.decide(&head), head.body, len)
                }
            };
            take(from, client_pending(&mut client.pending, from), request, len);
            let reader = match body {
                Body::None => {
                    let keep_alive = decided.answer.keep_alive;
                    self.write_answer(request, out, decided.answer, &peer, None)?;
                    if !keep_alive {
                        return Ok(Next::Close);
                    }
                    continue;
                }
                Body::Length(total) => BodyReader::Length { left: total, total },
                Body::Chunked => BodyReader::Chunked(ChunkedDecoder::new(self.limits.max_body)),
            };
            let nothing_sent = client.pending.is_empty() && request.buffered().is_empty();
            let answer = decided.answer;
            if decided.expects_continue && nothing_sent {
                if !answer.takes_body() {
                    // Answered without the body, which the client holds
                    // back: the connection cannot go on.
                    let answer = Answer {
                        keep_alive: false,
                        ..answer
                    };
                    self.write_answer(request, out, answer, &peer, None)?;
                    return Ok(Next::Close);
                }
                response::continue_100(out);
            }
            client.body = Some(Incoming { reader, answer });
        }
    }

    /// 408 for a head that took too long.
    fn too_slow(&self, out: &mut Vec<u8>, peer: &dyn Debug) -> Next {
        self.counters.slow_heads.fetch_add(1, Ordering::Relaxed);
        log::debug!("408 to {peer:?}: the request head took longer than --header-timeout");
        response::text(out, 408, Connection::Close, false, &[]);
        Next::Close
    }

    /// The response to a request refused before it was routed; the
    /// connection closes after it.
    fn refuse(&self, out: &mut Vec<u8>, refusal: Refusal, peer: &dyn Debug) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        let status = refusal.status();
        log::debug!("{status} to {peer:?}: {}", refusal.why());
        if self.access_log {
            log::info!(target: "access", "{peer:?} \"-\" {status} (refused: {})", refusal.why());
        }
        response::text(out, status, Connection::Close, false, &[]);
    }

    /// Decides the answer to a request, from its head.
    fn decide(&self, head: &Head<'_>) -> Decided {
        let reply = match split_target(head.target) {
            None => Reply::Status {
                status: 400,
                allow: None,
            },
            Some((path, query)) => match &self.routes {
                Routes::Hello => hello(head.method, path),
                Routes::Files(root) => static_file(root, head, path, query),
            },
        };
        let head_only = head.method == Method::Head;
        let line = self
            .access_log
            .then(|| format!("{} {} HTTP/1.{}", head.method_name, head.target, head.minor));
        let keep_alive = head.keep_alive && !matches!(reply, Reply::Status { status: 400, .. });
        Decided {
            answer: Answer {
                reply,
                minor: head.minor,
                keep_alive,
                head_only,
                line,
            },
            expects_continue: head.expect_continue,
        }
    }

    /// Writes an answer (a file's body included) and logs it.
    fn write_answer<S: Socket>(
        &self,
        request: &mut StreamRequest<S>,
        out: &mut Vec<u8>,
        answer: Answer,
        peer: &dyn Debug,
        bytes_in: Option<u64>,
    ) -> io::Result<()> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let connection = Connection::for_request(answer.minor, answer.keep_alive);
        let head_only = answer.head_only;
        let (status, sent) = match answer.reply {
            Reply::Hello => {
                response::Head {
                    status: 200,
                    content_type: Some("text/plain"),
                    content_length: HELLO.len() as u64,
                    connection,
                    extra: &[],
                }
                .write(out);
                if !head_only {
                    out.extend_from_slice(HELLO);
                }
                // The body's bytes sent, as the access log counts them.
                (200, if head_only { 0 } else { HELLO.len() as u64 })
            }
            Reply::Status { status, allow } => {
                let extra: &[(&str, &[u8])] = match allow {
                    Some(allow) => &[("Allow", allow.as_bytes())],
                    None => &[],
                };
                (status, response::text(out, status, connection, head_only, extra))
            }
            Reply::Redirect(location) => {
                let extra = [("Location", location.as_bytes())];
                (301, response::text(out, 301, connection, head_only, &extra))
            }
            Reply::NotModified { modified } => {
                let last_modified = files::format_date(modified);
                response::Head {
                    status: 304,
                    content_type: None,
                    content_length: 0,
                    connection,
                    extra: &[("Last-Modified", last_modified.as_bytes())],
                }
                .write(out);
                (304, 0)
            }
            Reply::File { served, range } => send_file(request, out, served, range, connection, head_only)?,
        };
        if let Some(line) = &answer.line {
            match bytes_in {
                Some(bytes_in) => {
                    log::info!(target: "access", "{peer:?} \"{line}\" {status} {sent} in={bytes_in}")
                }
                None => log::info!(target: "access", "{peer:?} \"{line}\" {status} {sent}"),
            }
        }
        Ok(())
    }
}

/// An answer decided from a head, and whether the client waits for `100
/// Continue` before it sends the body.
struct Decided {
    answer: Answer,
    expects_continue: bool,
}

impl Answer {
    /// Whether the answer needs the body: the hello route's POST.
    fn takes_body(&self) -> bool {
        matches!(self.reply, Reply::Hello)
    }
}

/// The pending buffer, when that is where the bytes come from.
fn client_pending(pending: &mut Vec<u8>, from: From) -> Option<&mut Vec<u8>> {
    (from == From::Pending).then_some(pending)
}

/// Consumes `len` bytes from where they were read.
fn take<S: Socket>(from: From, pending: Option<&mut Vec<u8>>, request: &mut StreamRequest<S>, len: usize) {
    match (from, pending) {
        (From::Pending, Some(pending)) => {
            pending.drain(..len);
        }
        _ => request.consume(len),
    }
}

/// The path and query of a request target: origin form (`/a?b`), or an
/// absolute URL (`http://host/a?b`), as HTTP/1.1 servers must take.
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    let path = if target.starts_with('/') {
        target
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let after_scheme = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return None;
        };
        match after_scheme.find('/') {
            Some(slash) => &after_scheme[slash..],
            None => "/",
        }
    };
    let path = path.split('#').next().unwrap_or(path);
    Some(match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    })
}

/// The hello routes: `/` is "hello, world" (a POST reads its body first).
fn hello(method: Method, path: &str) -> Reply {
    match (path, method) {
        ("/", Method::Get | Method::Head | Method::Post) => Reply::Hello,
        ("/", Method::Other) => Reply::Status {
            status: 405,
            allow: Some("GET, HEAD, POST"),
        },
        _ => Reply::Status {
            status: 404,
            allow: None,
        },
    }
}

/// A file of the root, with its conditions and range applied.
fn static_file(root: &Root, head: &Head<'_>, path: &str, query: Option<&str>) -> Reply {
    if !matches!(head.method, Method::Get | Method::Head) {
        return Reply::Status {
            status: 405,
            allow: Some("GET, HEAD"),
        };
    }
    let served = match root.find(path, query) {
        Ok(Found::File(served)) => served,
        Ok(Found::Redirect(location)) => return Reply::Redirect(location),
        Err(status) => return Reply::Status { status, allow: None },
    };
    let since = head.if_modified_since.and_then(files::http_date);
    if since.is_some_and(|since| served.modified <= since) {
        return Reply::NotModified {
            modified: served.modified,
        };
    }
    // If-Range names the version the client has part of: a range of
    // another is no use to it.
    let same_version = head
        .if_range
        .is_none_or(|value| files::http_date(value) == Some(served.modified));
    let range = match head.range {
        Some(value) if same_version => files::range(value, served.len),
        _ => Range::Whole,
    };
    Reply::File { served, range }
}

/// Writes a file's response (200, 206 or 416) and its body: with the head
/// in one write when it is small, in pieces otherwise. The status and the
/// body bytes sent.
fn send_file<S: Socket>(
    request: &mut StreamRequest<S>,
    out: &mut Vec<u8>,
    served: Served,
    range: Range,
    connection: Connection,
    head_only: bool,
) -> io::Result<(u16, u64)> {
    let last_modified = files::format_date(served.modified);
    let (status, start, len, content_range) = match range {
        Range::Whole => (200, 0, served.len, None),
        Range::Part { start, end } => (
            206,
            start,
            end - start + 1,
            Some(format!("bytes {start}-{end}/{}", served.len)),
        ),
        Range::Unsatisfiable => {
            let content_range = format!("bytes */{}", served.len);
            let extra = [("Content-Range", content_range.as_bytes())];
            return Ok((416, response::text(out, 416, connection, head_only, &extra)));
        }
    };
    let mut extra: Vec<(&str, &[u8])> = vec![
        ("Last-Modified", last_modified.as_bytes()),
        ("Accept-Ranges", b"bytes"),
    ];
    if let Some(content_range) = &content_range {
        extra.push(("Content-Range", content_range.as_bytes()));
    }
    response::Head {
        status,
        content_type: Some(served.content_type),
        content_length: len,
        connection,
        extra: &extra,
    }
    .write(out);
    if head_only {
        return Ok((status, 0));
    }
    let mut offset = start;
    let end = start + len;
    while offset < end {
        let piece = (end - offset).min(FILE_PIECE as u64) as usize;
        let at = out.len();
        out.resize(at + piece, 0);
        served.file.read_exact_at(&mut out[at..], offset)?;
        offset += piece as u64;
        if offset < end || out.len() >= FLUSH_AT {
            request.write_all(out)?;
            out.clear();
        }
    }
    Ok((status, len))
}
