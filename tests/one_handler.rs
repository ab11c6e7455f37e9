//! Issue 21: one handler, every stream server. A per-request handler and
//! a looping handler each run unchanged on all six stream servers, bound
//! by their type's name, and the same failing request (an error, a panic)
//! is counted the same way by every one of them.

mod util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;

use socketserver::{
    KeepAliveHandler, Next, ParkedTcpServer, ParkedUnixStreamServer, RequestHandler, Server, StreamRequest,
    TcpServer, ThreadingTcpServer, ThreadingUnixStreamServer, UnixStreamServer, server::Connection,
};
use util::{TIMEOUT, init_logging, serve};

/// What one line asks of the handler: an answer, an error, or a panic.
fn answer(line: &str) -> io::Result<Option<String>> {
    match line.trim_end() {
        "" => Ok(None),
        "fail" => Err(io::Error::other("failing on purpose")),
        "panic" => panic!("panicking on purpose"),
        other => Ok(Some(format!("{}\n", other.to_uppercase()))),
    }
}

/// The per-request style: one line per call.
struct PerLine;

impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for PerLine {
    type State = ();

    fn handle_one(&self, request: &mut StreamRequest<S>, _: &mut ()) -> io::Result<Next> {
        let mut line = String::new();
        request.read_line(&mut line)?;
        match answer(&line)? {
            Some(reply) => request.write_all(reply.as_bytes()).map(|()| Next::KeepOpen),
            None => Ok(Next::Close),
        }
    }

    // Quiet: the failures here are on purpose.
    fn handle_error(&self, _request: &StreamRequest<S>, _error: &io::Error) {}
}

/// The looping style: the whole conversation in one call.
struct Conversation;

impl<S: Connection> RequestHandler<StreamRequest<S>> for Conversation {
    fn handle(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        let mut line = String::new();
        while request.read_line(&mut line)? > 0 {
            match answer(&line)? {
                Some(reply) => request.write_all(reply.as_bytes())?,
                None => return Ok(()),
            }
            line.clear();
        }
        Ok(())
    }

    fn handle_error(&self, _request: &StreamRequest<S>, _error: &io::Error) {}
}

/// A client of either transport.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One line there, its answer back; `None` when the server closed instead.
fn exchange(stream: &mut BufReader<Box<dyn Stream>>, line: &str) -> Option<String> {
    stream.get_mut().write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    match stream.read_line(&mut reply) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(reply),
    }
}

/// Talks to `server` as each test does, and checks what it counted:
/// two answered lines, then a connection ended by an error and one ended
/// by a panic.
fn check<S: Server>(what: &str, server: io::Result<S>, connect: impl Fn() -> Box<dyn Stream>) {
    let (server, running) = serve(server);
    let mut client = BufReader::new(connect());
    assert_eq!(
        exchange(&mut client, "hello\n").as_deref(),
        Some("HELLO\n"),
        "{what}"
    );
    assert_eq!(
        exchange(&mut client, "again\n").as_deref(),
        Some("AGAIN\n"),
        "{what}"
    );
    assert_eq!(
        exchange(&mut client, "fail\n"),
        None,
        "{what}: an error closes the connection"
    );
    let mut client = BufReader::new(connect());
    assert_eq!(
        exchange(&mut client, "panic\n"),
        None,
        "{what}: a panic closes the connection"
    );
    let mut client = BufReader::new(connect());
    assert_eq!(
        exchange(&mut client, "still\n").as_deref(),
        Some("STILL\n"),
        "{what}: serving goes on"
    );
    drop(client);
    util::eventually(&format!("{what}: the connections end"), || {
        server.stats().active == 0
    });
    let stats = server.stats();
    assert_eq!(
        (stats.errors, stats.panics),
        (1, 1),
        "{what}: counted as everywhere else"
    );
    running.shutdown();
}

fn tcp(addr: std::net::SocketAddr) -> impl Fn() -> Box<dyn Stream> {
    move || {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Box::new(stream)
    }
}

fn unix(path: &Path) -> impl Fn() -> Box<dyn Stream> + use<> {
    let path = path.to_owned();
    move || {
        let stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Box::new(stream)
    }
}

/// [`check`] for a TCP server.
fn check_tcp<S: Server<Addr = std::net::SocketAddr>>(what: &str, server: io::Result<S>) {
    let server = server.expect("bind");
    let addr = *server.local_addr();
    check(what, Ok(server), tcp(addr));
}

#[test]
fn both_handler_styles_run_unchanged_on_every_tcp_server() {
    init_logging();
    let local = "127.0.0.1:0";
    check_tcp("TcpServer, per request", TcpServer::bind(local, PerLine));
    check_tcp("TcpServer, looping", TcpServer::bind(local, Conversation));
    check_tcp(
        "ThreadingTcpServer, per request",
        ThreadingTcpServer::bind(local, PerLine),
    );
    check_tcp(
        "ThreadingTcpServer, looping",
        ThreadingTcpServer::bind(local, Conversation),
    );
    check_tcp(
        "ParkedTcpServer, per request",
        ParkedTcpServer::bind(local, PerLine),
    );
    check_tcp(
        "ParkedTcpServer, looping",
        ParkedTcpServer::bind(local, Conversation),
    );
}

#[test]
fn both_handler_styles_run_unchanged_on_every_unix_stream_server() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    check(
        "UnixStreamServer, per request",
        UnixStreamServer::bind(&path, PerLine),
        unix(&path),
    );
    check(
        "UnixStreamServer, looping",
        UnixStreamServer::bind(&path, Conversation),
        unix(&path),
    );
    check(
        "ThreadingUnixStreamServer, per request",
        ThreadingUnixStreamServer::bind(&path, PerLine),
        unix(&path),
    );
    check(
        "ThreadingUnixStreamServer, looping",
        ThreadingUnixStreamServer::bind(&path, Conversation),
        unix(&path),
    );
    check(
        "ParkedUnixStreamServer, per request",
        ParkedUnixStreamServer::bind(&path, PerLine),
        unix(&path),
    );
    check(
        "ParkedUnixStreamServer, looping",
        ParkedUnixStreamServer::bind(&path, Conversation),
        unix(&path),
    );
}

/// A looping handler on a parked server holds its worker for the whole
/// conversation, with no request deadline cutting it: a conversation
/// longer than the request timeout goes on.
#[test]
fn a_looping_handler_on_a_parked_server_is_not_cut_off_by_the_request_timeout() {
    init_logging();
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .request_timeout(std::time::Duration::from_millis(50))
            .bind("127.0.0.1:0", Conversation),
    );
    let mut client = BufReader::new(tcp(*server.local_addr())());
    assert_eq!(exchange(&mut client, "one\n").as_deref(), Some("ONE\n"));
    // Well past the request timeout, by the server's own clock: the
    // conversation is still the same handler call.
    let wait_from = std::time::Instant::now();
    util::eventually("the request timeout has passed", || {
        wait_from.elapsed() > std::time::Duration::from_millis(200)
    });
    assert_eq!(exchange(&mut client, "two\n").as_deref(), Some("TWO\n"));
    assert_eq!(server.stats().timed_out, 0);
    assert_eq!(
        server.stats().parked,
        0,
        "a looping handler's connection is never parked"
    );
    drop(client);
    util::eventually("the conversation ends", || server.stats().active == 0);
    running.shutdown();
}
