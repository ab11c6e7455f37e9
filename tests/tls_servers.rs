//! The servers with TLS on (`Builder::tls`), in both serving modes, over
//! TCP and Unix sockets, against rustls clients: the echo in plaintext,
//! what the handshake settled (`tls_info`, the client's certificate in
//! `verify_request`), clean ends with `close_notify` both ways, truncation
//! reported, failed and stalled handshakes dropped and counted without
//! holding anybody up, a certificate swapped while serving, bulk data.
#![cfg(feature = "tls")]

#[path = "util/tls.rs"]
mod pki;
mod util;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pki::TestPki;
use socketserver::server::Connection;
use socketserver::tls::rustls::pki_types::{CertificateDer, ServerName};
use socketserver::tls::rustls::{ClientConfig, ClientConnection, ServerConfig, StreamOwned};
use socketserver::tls::{ClientAuth, TlsAcceptor, client_verifier, is_truncated};
use socketserver::{
    ParkedTcpServer, ParkedUnixStreamServer, ServerHandle, StreamRequest, ThreadingTcpServer,
    ThreadingUnixStreamServer,
};
use util::greeter::{Greeting, LineServer};
use util::{TIMEOUT, connect, eventually, init_logging, serve};

/// An error reported to the handler: its kind, its message, and whether
/// it is a TLS truncation.
type Reported = (ErrorKind, String, bool);

/// Greets each connection with what TLS settled, then answers each line
/// uppercased; records every error reported to it. With
/// `require_client_cert`, `verify_request` refuses clients without a
/// certificate.
#[derive(Clone, Default)]
struct Greeter {
    errors: Arc<Mutex<Vec<Reported>>>,
    require_client_cert: bool,
}

impl Greeter {
    fn errors(&self) -> Vec<Reported> {
        self.errors.lock().clone()
    }
}

impl Greeting for Greeter {
    /// "tls VERSION sni NAME certs N": what the handshake settled.
    fn describe<S: Connection>(&self, request: &StreamRequest<S>) -> String {
        match request.tls_info() {
            Some(tls) => format!(
                "tls {:?} sni {:?} certs {}\n",
                tls.protocol_version(),
                tls.server_name(),
                tls.peer_certificates().len()
            ),
            None => "plain\n".into(),
        }
    }

    fn admit<S: Connection>(&self, request: &StreamRequest<S>) -> bool {
        let certificates = request.tls_info().map_or(0, |tls| tls.peer_certificates().len());
        !self.require_client_cert || certificates > 0
    }

    fn record(&self, error: &io::Error) {
        self.errors
            .lock()
            .push((error.kind(), error.to_string(), is_truncated(error)));
    }
}

/// A TCP server of either mode serving TLS with `acceptor`.
fn tls_server(
    parked: bool,
    acceptor: TlsAcceptor,
    greeter: &Greeter,
) -> (ServerHandle<SocketAddr>, util::Running) {
    util::tls_tcp_server(parked, acceptor, LineServer(greeter.clone()))
}

fn both_modes(test: impl Fn(bool)) {
    init_logging();
    test(false);
    test(true);
}

/// A rustls client over `sock`, for `name`.
fn client<T: Read + Write>(
    config: Arc<ClientConfig>,
    name: &str,
    sock: T,
) -> StreamOwned<ClientConnection, T> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    StreamOwned::new(ClientConnection::new(config, server_name).unwrap(), sock)
}

fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> StreamOwned<ClientConnection, TcpStream> {
    client(config, "localhost", connect(addr))
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line from the server");
    line
}

#[test]
fn a_tls_client_is_served_in_plaintext_in_both_modes() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let mut stream = BufReader::new(tls_connect(*server.local_addr(), pki.client_config()));
        assert_eq!(
            read_line(&mut stream),
            "tls Some(TLSv1_3) sni Some(\"localhost\") certs 0\n",
            "parked: {parked}"
        );
        for line in ["hello\n", "over tls\n"] {
            stream.get_mut().write_all(line.as_bytes()).unwrap();
            assert_eq!(read_line(&mut stream), line.to_uppercase());
        }
        // The client ends cleanly: the server sees a clean end, no error.
        stream.get_mut().conn.send_close_notify();
        stream.get_mut().flush().unwrap();
        let mut rest = Vec::new();
        // And the server answers with its own close_notify: a clean end
        // for the client too, not a truncation.
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        eventually("the connection is closed", || server.stats().active == 0);
        assert!(greeter.errors().is_empty(), "{:?}", greeter.errors());
        assert_eq!(server.stats().tls_handshake_failures, 0);
        running.shutdown();
    });
}

#[test]
fn a_client_that_leaves_without_close_notify_is_reported_as_truncation() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let mut stream = BufReader::new(tls_connect(*server.local_addr(), pki.client_config()));
        read_line(&mut stream);
        stream.get_mut().write_all(b"half a line").unwrap();
        stream.get_ref().sock.shutdown(std::net::Shutdown::Both).unwrap();
        eventually("the truncation is reported", || !greeter.errors().is_empty());
        let (kind, message, truncated) = greeter.errors()[0].clone();
        assert!(truncated, "{kind:?}: {message}");
        running.shutdown();
    });
}

/// Most TLS clients (Python's `ssl` among them) close without
/// `close_notify`. One that does so between two requests, its answers all
/// read, has cut nothing short: the handler hears of it, but it is no
/// failed request and not counted as one, in both modes.
#[test]
fn a_client_that_leaves_without_close_notify_between_requests_is_no_failure() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let mut stream = BufReader::new(tls_connect(*server.local_addr(), pki.client_config()));
        read_line(&mut stream);
        stream.get_mut().write_all(b"one line\n").unwrap();
        assert_eq!(read_line(&mut stream), "ONE LINE\n");
        stream.get_ref().sock.shutdown(std::net::Shutdown::Both).unwrap();
        eventually("the connection is closed", || server.stats().active == 0);
        let errors = greeter.errors();
        assert!(
            matches!(errors.as_slice(), [(_, _, true)]),
            "parked: {parked}: the handler hears of the truncation: {errors:?}"
        );
        assert_eq!(server.stats().errors, 0, "parked: {parked}");
        running.shutdown();
    });
}

/// A client idle past the grace period of a shutdown sees its session end
/// with the server's close_notify, a clean end, in both modes: the
/// threading server's forced close wakes the worker blocked reading it,
/// which then ends the session itself. The handler sees an end of stream,
/// as it would on a plain connection, not an error.
#[test]
fn a_forced_close_at_shutdown_ends_an_idle_session_with_close_notify_in_both_modes() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let acceptor = TlsAcceptor::new(pki.server_config());
        let grace = Duration::from_millis(200);
        let (server, running) = if parked {
            serve(
                ParkedTcpServer::builder()
                    .shutdown_grace(grace)
                    .tls(acceptor)
                    .bind("127.0.0.1:0", LineServer(greeter.clone())),
            )
        } else {
            serve(
                ThreadingTcpServer::builder()
                    .shutdown_grace(grace)
                    .tls(acceptor)
                    .bind("127.0.0.1:0", LineServer(greeter.clone())),
            )
        };
        let mut stream = BufReader::new(tls_connect(*server.local_addr(), pki.client_config()));
        // Greeted: the handler now waits for a line (threading), or the
        // connection waits parked.
        assert!(read_line(&mut stream).starts_with("tls "));
        running.shutdown();
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest);
        assert!(end.is_ok(), "parked: {parked}: not a clean end: {end:?}");
        assert!(rest.is_empty());
        assert!(greeter.errors().is_empty(), "{:?}", greeter.errors());
        assert_eq!(server.stats().errors, 0);
    });
}

#[test]
fn garbage_instead_of_a_client_hello_is_dropped_counted_and_reported() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let mut raw = connect(*server.local_addr());
        raw.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap();
        // Closed; the handshake's alert may come first.
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest);
        eventually("the failure is counted", || {
            server.stats().tls_handshake_failures == 1
        });
        eventually("and reported", || greeter.errors().len() == 1);
        let (kind, message, _) = greeter.errors()[0].clone();
        assert_eq!(kind, ErrorKind::InvalidData, "{message}");
        assert!(message.starts_with("TLS handshake with 127.0.0.1:"), "{message}");
        assert!(message.contains("a client speaking plain TCP?"), "{message}");
        running.shutdown();
    });
}

#[test]
fn a_client_that_does_not_trust_the_server_fails_its_handshake() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let stranger = Arc::new(pki.untrusted_ca.client_config());
        let mut stream = tls_connect(*server.local_addr(), stranger);
        let error = stream
            .write_all(b"hello\n")
            .and_then(|()| stream.flush())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
        eventually("the server counts it", || {
            server.stats().tls_handshake_failures == 1
        });
        running.shutdown();
    });
}

#[test]
fn stalled_handshakes_time_out_without_holding_up_good_clients() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let acceptor = TlsAcceptor::new(pki.server_config()).handshake_timeout(Duration::from_secs(2));
        // One worker in parked mode: a stalled handshake must not take it.
        let (server, running) = tls_server(parked, acceptor, &greeter);
        let addr = *server.local_addr();
        let stalled: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
        let started = Instant::now();
        let mut good = BufReader::new(tls_connect(addr, pki.client_config()));
        assert!(read_line(&mut good).starts_with("tls "));
        good.get_mut().write_all(b"still served\n").unwrap();
        assert_eq!(read_line(&mut good), "STILL SERVED\n");
        // Well within one stalled handshake's timeout: had a stalled one
        // held the worker, the good client would have waited it out.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "the good client waited {took:?}");
        // The stalled ones are dropped at their deadline and counted.
        for mut stream in stalled {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
        eventually("every stalled handshake is counted", || {
            server.stats().tls_handshake_failures == 20
        });
        // And reported to handle_error, in both modes alike.
        eventually("every stalled handshake is reported", || {
            greeter.errors().len() == 20
        });
        for (kind, message, _) in greeter.errors() {
            assert_eq!(kind, ErrorKind::TimedOut, "parked: {parked}: {message}");
            assert!(
                message.starts_with("TLS handshake with 127.0.0.1:")
                    && message.ends_with("the peer did not finish the TLS handshake in time"),
                "parked: {parked}: {message}"
            );
        }
        drop(good);
        running.shutdown();
    });
}

/// A server configuration that requires (or accepts) a client certificate
/// from the test CA.
fn mutual(pki: &TestPki, auth: ClientAuth) -> Arc<ServerConfig> {
    let verifier = client_verifier(pki.ca.roots(), auth).unwrap();
    Arc::new(
        ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server.chain(), pki.server.key())
            .unwrap(),
    )
}

#[test]
fn client_certificates_reach_verify_request_and_a_missing_one_fails() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        // Optional at the TLS level, required by verify_request.
        let greeter = Greeter {
            require_client_cert: true,
            ..Greeter::default()
        };
        let (server, running) = tls_server(
            parked,
            TlsAcceptor::new(mutual(&pki, ClientAuth::Optional)),
            &greeter,
        );
        let addr = *server.local_addr();
        let mut with_cert = BufReader::new(tls_connect(addr, pki.client_config_with_cert()));
        assert!(read_line(&mut with_cert).ends_with("certs 1\n"));
        // Without one, verify_request refuses: closed before any greeting.
        let mut without = tls_connect(addr, pki.client_config());
        assert!(util::read_until_closed(&mut without).is_empty());
        eventually("refused", || server.stats().refused == 1);
        drop(with_cert);
        running.shutdown();

        // Required at the TLS level: the handshake itself fails.
        let greeter = Greeter::default();
        let (server, running) = tls_server(
            parked,
            TlsAcceptor::new(mutual(&pki, ClientAuth::Required)),
            &greeter,
        );
        let mut without = tls_connect(*server.local_addr(), pki.client_config());
        let mut rest = Vec::new();
        assert!(without.read_to_end(&mut rest).is_err());
        eventually("the handshake failure is counted", || {
            server.stats().tls_handshake_failures == 1
        });
        running.shutdown();
    });
}

/// The certificate the server presents to a new client.
fn presented(addr: SocketAddr, pki: &TestPki) -> CertificateDer<'static> {
    let mut stream = BufReader::new(tls_connect(addr, pki.client_config()));
    read_line(&mut stream);
    stream.get_ref().conn.peer_certificates().unwrap()[0].clone()
}

#[test]
fn a_swapped_certificate_is_presented_to_new_clients() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let acceptor = TlsAcceptor::new(pki.server_config());
        let (server, running) = tls_server(parked, acceptor.clone(), &Greeter::default());
        let addr = *server.local_addr();
        assert_eq!(presented(addr, &pki), pki.server.cert);
        let renewed = pki.ca.issue_server(&pki::SERVER_NAMES);
        acceptor.swap(pki.server_config_for(&renewed));
        assert_eq!(presented(addr, &pki), renewed.cert);
        running.shutdown();
    });
}

#[test]
fn bulk_data_over_tls_loses_nothing_in_both_modes() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let server = if parked {
            serve(
                ParkedTcpServer::builder()
                    .workers(2)
                    .tls(TlsAcceptor::new(pki.server_config()))
                    .bind("127.0.0.1:0", socketserver::echo::Uppercase),
            )
        } else {
            serve(
                ThreadingTcpServer::builder()
                    .tls(TlsAcceptor::new(pki.server_config()))
                    .bind("127.0.0.1:0", socketserver::echo::Uppercase),
            )
        };
        let (server, running) = server;
        let sent: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
            .collect();
        let expected = sent.to_ascii_uppercase();
        let stream = tls_connect(*server.local_addr(), pki.client_config());
        let stream = Arc::new(Mutex::new(stream));
        // rustls's stream is one object: write and read from one thread, in
        // steps small enough for the echo to keep up with.
        let mut got = Vec::with_capacity(expected.len());
        let mut buf = vec![0u8; 256 * 1024];
        for piece in sent.chunks(64 * 1024) {
            let mut stream = stream.lock();
            stream.write_all(piece).unwrap();
            let target = got.len() + piece.len();
            while got.len() < target {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the server closed early");
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert!(got == expected, "the echo differs");
        drop(stream);
        running.shutdown();
    });
}

#[test]
fn unix_sockets_serve_tls_in_both_modes() {
    init_logging();
    let pki = TestPki::generate();
    let dir = tempfile::tempdir().unwrap();
    for parked in [false, true] {
        let path = dir.path().join(format!("tls-{parked}.sock"));
        let greeter = Greeter::default();
        let acceptor = TlsAcceptor::new(pki.server_config());
        let (server, running) = if parked {
            serve(
                ParkedUnixStreamServer::builder()
                    .tls(acceptor)
                    .bind(&path, LineServer(greeter.clone())),
            )
        } else {
            serve(
                ThreadingUnixStreamServer::builder()
                    .tls(acceptor)
                    .bind(&path, LineServer(greeter.clone())),
            )
        };
        let sock = UnixStream::connect(server.local_addr().as_pathname().unwrap()).unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut stream = BufReader::new(client(pki.client_config(), "localhost", sock));
        assert!(read_line(&mut stream).starts_with("tls Some(TLSv1_3)"));
        stream.get_mut().write_all(b"unix\n").unwrap();
        assert_eq!(read_line(&mut stream), "UNIX\n");
        drop(stream);
        running.shutdown();
    }
}

#[test]
fn many_tls_clients_at_once_are_all_served_in_both_modes() {
    both_modes(|parked| {
        let pki = TestPki::generate();
        let greeter = Greeter::default();
        let (server, running) = tls_server(parked, TlsAcceptor::new(pki.server_config()), &greeter);
        let addr = *server.local_addr();
        let clients: Vec<_> = (0..16)
            .map(|i| {
                let config = pki.client_config();
                thread::spawn(move || {
                    let mut stream = BufReader::new(tls_connect(addr, config));
                    read_line(&mut stream);
                    for round in 0..20 {
                        let line = format!("client {i} round {round}\n");
                        stream.get_mut().write_all(line.as_bytes()).unwrap();
                        assert_eq!(read_line(&mut stream), line.to_uppercase());
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        running.shutdown();
    });
}
