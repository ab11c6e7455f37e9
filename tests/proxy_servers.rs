//! The servers with the PROXY protocol on (`Builder::proxy_protocol`), in
//! both serving modes, over TCP and Unix sockets: the client's address
//! from a trusted proxy's header, the proxy's kept, TLVs readable; a
//! missing, invalid or late header refused; a header from anybody else
//! refused, however it is split; health checks (`LOCAL`) served as the
//! proxy itself.
#![cfg(feature = "proxy-protocol")]

mod util;

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socketserver::proxy_protocol::{ProxyHeader, TrustedProxies};
use socketserver::server::Connection;
use socketserver::{
    ParkedTcpServer, ParkedUnixStreamServer, ServerHandle, StreamRequest, ThreadingTcpServer,
    ThreadingUnixStreamServer,
};
use util::greeter::{Greeting, LineServer};
use util::{TIMEOUT, connect, eventually, init_logging, read_to_end, serve};

/// Greets each connection with what the server knows of it, then answers
/// each line uppercased; records every error reported to it.
#[derive(Clone, Default)]
struct Greeter {
    errors: Arc<Mutex<Vec<(ErrorKind, String)>>>,
}

impl Greeter {
    fn errors(&self) -> Vec<(ErrorKind, String)> {
        self.errors.lock().clone()
    }
}

impl Greeting for Greeter {
    /// "peer P proxy Q source S id I": the request's peer address, the
    /// proxy's, the header's source and unique ID.
    fn describe<S: Connection>(&self, request: &StreamRequest<S>) -> String {
        let id = request
            .proxy_header()
            .and_then(ProxyHeader::unique_id)
            .map(|id| String::from_utf8_lossy(id).into_owned());
        let source = request.proxy_header().and_then(ProxyHeader::source);
        format!(
            "peer {:?} proxy {:?} source {source:?} id {id:?}\n",
            request.peer_addr(),
            request.proxy_addr()
        )
    }

    fn record(&self, error: &io::Error) {
        self.errors.lock().push((error.kind(), error.to_string()));
    }
}

fn trusted(text: &str) -> TrustedProxies {
    text.parse().unwrap()
}

/// A TCP server of either mode with the PROXY protocol on.
fn tcp_server(parked: bool, proxies: &str, greeter: &Greeter) -> (ServerHandle<SocketAddr>, util::Running) {
    if parked {
        serve(
            ParkedTcpServer::builder()
                .proxy_protocol(trusted(proxies))
                .proxy_header_timeout(Duration::from_millis(300))
                .bind("127.0.0.1:0", LineServer(greeter.clone())),
        )
    } else {
        serve(
            ThreadingTcpServer::builder()
                .proxy_protocol(trusted(proxies))
                .proxy_header_timeout(Duration::from_millis(300))
                .bind("127.0.0.1:0", LineServer(greeter.clone())),
        )
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line from the server");
    line
}

fn client() -> SocketAddr {
    "203.0.113.7:51234".parse().unwrap()
}

/// Sends `wire`, then a line; returns the greeting and the answer.
fn exchange(stream: TcpStream, wire: &[u8]) -> (String, String) {
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(wire).unwrap();
    writer.write_all(b"hello\n").unwrap();
    let mut reader = BufReader::new(stream);
    (read_line(&mut reader), read_line(&mut reader))
}

fn both_modes(test: impl Fn(bool)) {
    init_logging();
    test(false);
    test(true);
}

#[test]
fn a_trusted_proxys_header_gives_the_clients_address_in_both_modes() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.1", &greeter);
        let addr = *server.local_addr();
        for version in [1, 2] {
            let stream = connect(addr);
            let proxy = stream.local_addr().unwrap();
            let header = ProxyHeader::new_v2(client(), addr).with_unique_id(b"req-42");
            let wire = if version == 1 {
                ProxyHeader::new_v1(client(), addr).to_v1().unwrap()
            } else {
                header.to_v2().unwrap()
            };
            let (greeting, answer) = exchange(stream, &wire);
            let id = if version == 1 { "None" } else { "Some(\"req-42\")" };
            assert_eq!(
                greeting,
                format!(
                    "peer {} proxy Some({proxy}) source Some({}) id {id}\n",
                    client(),
                    client()
                ),
                "v{version}, parked: {parked}"
            );
            // The client's bytes after the header are intact.
            assert_eq!(answer, "HELLO\n");
        }
        assert!(greeter.errors().is_empty(), "{:?}", greeter.errors());
        running.shutdown();
    });
}

#[test]
fn a_header_and_the_clients_first_bytes_in_one_segment_lose_nothing() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.0/8", &greeter);
        let addr = *server.local_addr();
        let mut wire = ProxyHeader::new_v2(client(), addr).to_v2().unwrap();
        wire.extend_from_slice(b"first\nsecond\n");
        let mut stream = connect(addr);
        stream.write_all(&wire).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        assert!(read_line(&mut reader).starts_with(&format!("peer {}", client())));
        assert_eq!(read_line(&mut reader), "FIRST\n");
        assert_eq!(read_line(&mut reader), "SECOND\n");
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        running.shutdown();
    });
}

#[test]
fn a_health_check_is_served_as_the_proxy_itself() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.1", &greeter);
        let stream = connect(*server.local_addr());
        let proxy = stream.local_addr().unwrap();
        let (greeting, answer) = exchange(stream, &ProxyHeader::local().to_v2().unwrap());
        assert_eq!(
            greeting,
            format!("peer {proxy} proxy Some({proxy}) source None id None\n")
        );
        assert_eq!(answer, "HELLO\n");
        running.shutdown();
    });
}

/// HAProxy resets its health checks' connections once it has its answer:
/// the handler still hears of the reset, but the server counts the check
/// apart, not as a failed request. A relayed client's reset stays an error.
#[test]
fn a_health_check_ending_in_a_reset_is_counted_apart_not_as_an_error() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.1", &greeter);
        let addr = *server.local_addr();
        for header in [ProxyHeader::local(), ProxyHeader::new_v2(client(), addr)] {
            let stream = connect(addr);
            let (_, answer) = exchange(stream.try_clone().unwrap(), &header.to_v2().unwrap());
            assert_eq!(answer, "HELLO\n");
            // Closed with a reset, as HAProxy closes its checks.
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(stream);
        }
        eventually("both resets reach the handler", || greeter.errors().len() == 2);
        // Counted before the connections are.
        eventually("both connections are closed", || server.stats().active == 0);
        for (kind, message) in greeter.errors() {
            assert_eq!(kind, ErrorKind::ConnectionReset, "parked: {parked}: {message}");
        }
        let stats = server.stats();
        assert_eq!(stats.health_checks, 1, "parked: {parked}");
        assert_eq!(stats.errors, 1, "parked: {parked}: only the client's reset");
        running.shutdown();
    });
}

#[test]
fn a_trusted_proxy_without_a_header_is_refused_and_reported() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.1", &greeter);
        let mut stream = connect(*server.local_addr());
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        // Closed without a greeting: the handler never saw it (closed with
        // bytes unread, the connection may end with a reset).
        match read_to_end(&mut stream) {
            Ok(bytes) => assert_eq!(bytes, b""),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
        eventually("the error is reported", || greeter.errors().len() == 1);
        let (kind, message) = &greeter.errors()[0];
        assert_eq!(*kind, ErrorKind::InvalidData, "{message}");
        assert!(
            message.contains("PROXY header") && message.contains("127.0.0.1"),
            "{message}"
        );
        assert_eq!(server.stats().errors, 1);
        running.shutdown();
    });
}

#[test]
fn a_proxy_that_sends_nothing_is_cut_off_at_the_header_timeout() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        let (server, running) = tcp_server(parked, "127.0.0.1", &greeter);
        let started = Instant::now();
        let mut silent = connect(*server.local_addr());
        assert_eq!(read_to_end(&mut silent).unwrap(), b"");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "cut off after {waited:?}");
        assert!(waited < TIMEOUT, "cut off after {waited:?}");
        eventually("the timeout is reported", || greeter.errors().len() == 1);
        assert_eq!(
            greeter.errors()[0].0,
            ErrorKind::TimedOut,
            "{:?}",
            greeter.errors()
        );
        running.shutdown();
    });
}

#[test]
fn a_header_from_an_untrusted_peer_is_refused_whole_or_split() {
    both_modes(|parked| {
        let greeter = Greeter::default();
        // Only another network is trusted: 127.0.0.1 is an ordinary client.
        let (server, running) = tcp_server(parked, "10.0.0.0/8", &greeter);
        let addr = *server.local_addr();
        let forged = ProxyHeader::new_v1(client(), addr).to_v1().unwrap();
        let v2 = ProxyHeader::new_v2(client(), addr).to_v2().unwrap();
        for (round, wire) in [&forged[..], &v2[..]].into_iter().enumerate() {
            for split in [wire.len(), 3, 1] {
                let stream = connect(addr);
                let own = stream.local_addr().unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                // Served as itself, greeted before it sends anything.
                assert_eq!(
                    read_line(&mut reader),
                    format!("peer {own} proxy None source None id None\n")
                );
                // The first piece alone cannot decide; the rest can.
                writer.write_all(&wire[..split]).unwrap();
                writer.flush().unwrap();
                writer.write_all(&wire[split..]).unwrap();
                assert_eq!(
                    read_to_end(&mut reader).unwrap(),
                    b"",
                    "round {round}, split {split}"
                );
            }
        }
        eventually("every forged header is reported", || greeter.errors().len() == 6);
        for (kind, message) in greeter.errors() {
            assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
            assert!(message.contains("not a trusted proxy"), "{message}");
        }
        // An untrusted client that sends ordinary bytes is served.
        let (greeting, answer) = exchange(connect(addr), b"");
        assert!(greeting.contains("proxy None"), "{greeting}");
        assert_eq!(answer, "HELLO\n");
        // Even one whose first bytes begin like a signature.
        let (_, answer) = exchange(connect(addr), b"PROBLEM\n");
        assert_eq!(answer, "PROBLEM\n");
        running.shutdown();
    });
}

#[test]
fn unix_sockets_take_headers_from_trusted_unix_peers() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let trusted = TrustedProxies::new().with_unix_peers(true);
    for parked in [false, true] {
        let path = dir.path().join(format!("proxied-{parked}.sock"));
        let greeter = Greeter::default();
        let (server, running) = if parked {
            serve(
                ParkedUnixStreamServer::builder()
                    .proxy_protocol(trusted.clone())
                    .bind(&path, LineServer(greeter.clone())),
            )
        } else {
            serve(
                ThreadingUnixStreamServer::builder()
                    .proxy_protocol(trusted.clone())
                    .bind(&path, LineServer(greeter.clone())),
            )
        };
        let stream = UnixStream::connect(server.local_addr().as_pathname().unwrap()).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let destination: SocketAddr = "192.0.2.1:443".parse().unwrap();
        writer
            .write_all(&ProxyHeader::new_v2(client(), destination).to_v2().unwrap())
            .unwrap();
        writer.write_all(b"over unix\n").unwrap();
        let mut reader = BufReader::new(stream);
        let greeting = read_line(&mut reader);
        // The Unix peer address stays; the client's is in the header.
        assert!(
            greeting.contains(&format!("source Some({})", client())),
            "{greeting}"
        );
        assert!(!greeting.contains("proxy None"), "{greeting}");
        assert_eq!(read_line(&mut reader), "OVER UNIX\n");
        // The client leaves: its handler returns, nothing waits for the
        // shutdown's grace period.
        drop((writer, reader));
        running.shutdown();
    }
}
