//! The server session against a rustls client over real sockets: a
//! Unix-domain socket pair (no ports to pick) and loopback TCP. Every
//! socket has 10 s timeouts, so no test can hang.

#[path = "../../tests/util/tls.rs"]
mod pki;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion, ServerConfig,
};

use super::{ClientAuth, TlsAcceptor, TlsInfo, TlsSession, TlsTruncated, client_verifier, is_truncated};
use crate::transport::Connection;
use pki::TestPki;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh certificates, and an acceptor presenting the server's.
fn test_server() -> (TestPki, TlsAcceptor) {
    let pki = TestPki::generate();
    let acceptor = TlsAcceptor::new(pki.server_config());
    (pki, acceptor)
}

/// A connected Unix-domain pair, both ends with timeouts.
fn pair() -> (UnixStream, UnixStream) {
    let (client, server) = UnixStream::pair().unwrap();
    for end in [&client, &server] {
        end.set_read_timeout(Some(TIMEOUT)).unwrap();
        end.set_write_timeout(Some(TIMEOUT)).unwrap();
    }
    (client, server)
}

fn client_for(config: Arc<ClientConfig>, name: &str) -> ClientConnection {
    ClientConnection::new(config, ServerName::try_from(name.to_owned()).unwrap()).unwrap()
}

/// The client's side of the handshake, over any socket.
fn client_handshake(client: &mut ClientConnection, mut sock: impl Read + Write) -> io::Result<()> {
    while client.is_handshaking() {
        client.complete_io(&mut sock)?;
    }
    Ok(())
}

/// Everything the client has queued, as the bytes it would send.
fn outgoing(client: &mut ClientConnection) -> Vec<u8> {
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).unwrap();
    }
    bytes
}

/// The server's handshake, on a thread of its own, the session and socket
/// handed back when it is over.
fn server_handshake<S: Connection>(
    mut session: TlsSession,
    sock: S,
) -> thread::JoinHandle<io::Result<(TlsSession, S)>> {
    thread::spawn(move || {
        session.handshake(&sock, Instant::now() + TIMEOUT)?;
        Ok((session, sock))
    })
}

/// A session established over a Unix pair: the client's connection and
/// socket, the server's session and socket.
struct Established {
    client: ClientConnection,
    client_sock: UnixStream,
    session: TlsSession,
    server_sock: UnixStream,
}

fn establish(session: TlsSession, client: Arc<ClientConfig>) -> Established {
    let (client_sock, server_sock) = pair();
    let server = server_handshake(session, server_sock);
    let mut client = client_for(client, "localhost");
    client_handshake(&mut client, &client_sock).unwrap();
    let (session, server_sock) = server.join().unwrap().unwrap();
    Established {
        client,
        client_sock,
        session,
        server_sock,
    }
}

/// Greets the client, then echoes in uppercase until the client's
/// close_notify, then closes cleanly. Returns the session's facts and the
/// number of bytes echoed.
fn greet_and_echo<S: Connection>(session: &mut TlsSession, sock: &S) -> io::Result<(TlsInfo, usize)> {
    let info = session.info();
    assert_eq!(session.write(sock, b"welcome\n")?, 8);
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    loop {
        let n = session.read(sock, &mut buf)?;
        if n == 0 {
            session.close_now(sock)?;
            return Ok((info, echoed));
        }
        buf[..n].make_ascii_uppercase();
        let mut written = 0;
        while written < n {
            written += session.write(sock, &buf[written..n])?;
        }
        echoed += n;
    }
}

/// The client's half of `greet_and_echo`: the greeting, a short message,
/// then `rounds` of 64 KiB (several records each way), then close_notify
/// and the server's own.
fn talk(stream: &mut rustls::StreamOwned<ClientConnection, impl Read + Write>, rounds: usize) -> usize {
    let mut greeting = [0u8; 8];
    stream.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"welcome\n");
    stream.write_all(b"hello, tls").unwrap();
    let mut reply = [0u8; 10];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HELLO, TLS");
    let big: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut back = vec![0u8; big.len()];
    for _ in 0..rounds {
        stream.write_all(&big).unwrap();
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, big.to_ascii_uppercase());
    }
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap(),
        0,
        "the server's close_notify ends the stream"
    );
    10 + rounds * big.len()
}

fn with_alpn(config: Arc<ServerConfig>, protocol: &[u8]) -> Arc<ServerConfig> {
    let mut config = (*config).clone();
    config.alpn_protocols = vec![protocol.to_vec()];
    Arc::new(config)
}

/// The rustls error inside an `InvalidData` from the session.
fn rustls_error(error: &io::Error) -> &rustls::Error {
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {error:?}"))
}

#[test]
fn handshake_and_echo_both_ways_over_a_unix_pair() {
    let pki = TestPki::generate();
    let acceptor = TlsAcceptor::new(with_alpn(pki.server_config(), b"echo/1"));
    let (client_sock, server_sock) = pair();
    let mut session = acceptor.session().unwrap();
    let server = thread::spawn(move || {
        session.handshake(&server_sock, acceptor.handshake_deadline())?;
        greet_and_echo(&mut session, &server_sock)
    });
    let mut client_config = (*pki.client_config()).clone();
    client_config.alpn_protocols = vec![b"echo/1".to_vec()];
    let client = client_for(Arc::new(client_config), "localhost");
    let mut stream = rustls::StreamOwned::new(client, client_sock);
    let sent = talk(&mut stream, 4);

    let (info, echoed) = server.join().unwrap().unwrap();
    assert_eq!(echoed, sent);
    assert_eq!(info.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert!(info.cipher_suite().is_some());
    assert_eq!(info.alpn_protocol(), Some(&b"echo/1"[..]));
    assert_eq!(info.server_name(), Some("localhost"));
    assert!(info.peer_certificates().is_empty());
    assert_eq!(info.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn handshake_and_echo_over_loopback_tcp() {
    let (pki, acceptor) = test_server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client_sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_sock, _) = listener.accept().unwrap();
    for end in [&client_sock, &server_sock] {
        end.set_read_timeout(Some(TIMEOUT)).unwrap();
        end.set_write_timeout(Some(TIMEOUT)).unwrap();
    }
    let mut session = acceptor.session().unwrap();
    let server = thread::spawn(move || {
        session.handshake(&server_sock, Instant::now() + TIMEOUT)?;
        greet_and_echo(&mut session, &server_sock)
    });
    // By IP address: the client sends no SNI name.
    let client = client_for(pki.client_config(), "127.0.0.1");
    let mut stream = rustls::StreamOwned::new(client, client_sock);
    let sent = talk(&mut stream, 2);

    let (info, echoed) = server.join().unwrap().unwrap();
    assert_eq!(echoed, sent);
    assert_eq!(info.server_name(), None);
    assert_eq!(info.alpn_protocol(), None);
}

/// Runs a handshake that must time out `limit` from now (give or take
/// 2 s of a busy machine); returns how long it took.
fn time_out(acceptor: &TlsAcceptor, sock: &UnixStream, limit: Duration) -> Duration {
    let mut session = acceptor.session().unwrap();
    let started = Instant::now();
    let error = session.handshake(sock, started + limit).unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    assert!(took < limit + Duration::from_secs(2), "took {took:?}");
    took
}

#[test]
fn a_stalled_handshake_times_out_at_its_deadline_and_restores_the_timeout() {
    let (_pki, acceptor) = test_server();
    let (_silent_client, server_sock) = pair();
    server_sock
        .set_read_timeout(Some(Duration::from_secs(7)))
        .unwrap();
    let limit = Duration::from_millis(300);
    let took = time_out(&acceptor, &server_sock, limit);
    assert!(took >= limit, "gave up early, after {took:?}");
    assert_eq!(server_sock.read_timeout().unwrap(), Some(Duration::from_secs(7)));
}

#[test]
fn a_client_trickling_its_hello_cannot_stretch_the_deadline() {
    let (pki, acceptor) = test_server();
    let (client_sock, server_sock) = pair();
    let hello = outgoing(&mut client_for(pki.client_config(), "localhost"));
    // One byte every 20 ms: each read gets something long before a
    // per-read timeout, but the whole hello would take seconds.
    let trickle = thread::spawn(move || {
        for byte in hello {
            if (&client_sock).write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    time_out(&acceptor, &server_sock, Duration::from_millis(400));
    drop(server_sock); // the trickling writer fails and stops
    trickle.join().unwrap();
}

#[test]
fn a_garbage_client_hello_is_invalid_data_and_the_peer_hears_why() {
    let (_pki, acceptor) = test_server();
    let (mut client_sock, server_sock) = pair();
    client_sock
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut session = acceptor.session().unwrap();
    let error = session
        .handshake(&server_sock, Instant::now() + TIMEOUT)
        .unwrap_err();
    let reason = rustls_error(&error);
    assert!(matches!(reason, rustls::Error::InvalidMessage(_)), "{reason:?}");
    // A fatal alert record (content type 21) tells the client.
    let mut alert = [0u8; 1];
    client_sock.read_exact(&mut alert).unwrap();
    assert_eq!(alert[0], 21);
}

#[test]
fn a_client_that_leaves_mid_handshake_is_unexpected_eof() {
    let (pki, acceptor) = test_server();
    let hello = outgoing(&mut client_for(pki.client_config(), "localhost"));
    for stepwise in [false, true] {
        let (mut client_sock, server_sock) = pair();
        client_sock.write_all(&hello[..hello.len() / 2]).unwrap();
        drop(client_sock);
        let mut session = acceptor.session().unwrap();
        let error = if stepwise {
            session.handshake_step(&server_sock).unwrap_err()
        } else {
            session
                .handshake(&server_sock, Instant::now() + TIMEOUT)
                .unwrap_err()
        };
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }
}

#[test]
fn a_client_that_does_not_trust_the_ca_fails_and_the_server_reports_it() {
    let (pki, acceptor) = test_server();
    let (client_sock, server_sock) = pair();
    let server = server_handshake(acceptor.session().unwrap(), server_sock);
    let mut client = client_for(Arc::new(pki.untrusted_ca.client_config()), "localhost");
    let client_error = client_handshake(&mut client, &client_sock).unwrap_err();
    assert!(
        client_error.to_string().contains("UnknownIssuer"),
        "{client_error}"
    );
    let server_error = server.join().unwrap().unwrap_err();
    assert_eq!(
        rustls_error(&server_error),
        &rustls::Error::AlertReceived(AlertDescription::UnknownCA)
    );
}

#[test]
fn an_expired_server_certificate_is_refused_by_the_client() {
    let pki = TestPki::generate();
    let acceptor = TlsAcceptor::new(pki.server_config_for(&pki.expired));
    let (client_sock, server_sock) = pair();
    let server = server_handshake(acceptor.session().unwrap(), server_sock);
    let mut client = client_for(pki.client_config(), "localhost");
    let client_error = client_handshake(&mut client, &client_sock).unwrap_err();
    assert!(client_error.to_string().contains("expired"), "{client_error}");
    let server_error = server.join().unwrap().unwrap_err();
    assert_eq!(
        rustls_error(&server_error),
        &rustls::Error::AlertReceived(AlertDescription::CertificateExpired)
    );
}

fn mutual_tls(pki: &TestPki, auth: ClientAuth) -> TlsAcceptor {
    let config = ServerConfig::builder()
        .with_client_cert_verifier(client_verifier(pki.ca.roots(), auth).unwrap())
        .with_single_cert(pki.server.chain(), pki.server.key())
        .unwrap();
    TlsAcceptor::new(Arc::new(config))
}

/// The server's view of a client that completes its side of the
/// handshake, then sends one message and closes cleanly.
fn client_certificate_outcome(acceptor: &TlsAcceptor, client: Arc<ClientConfig>) -> io::Result<TlsInfo> {
    let (client_sock, server_sock) = pair();
    let mut session = acceptor.session().unwrap();
    let server = thread::spawn(move || {
        session.handshake(&server_sock, Instant::now() + TIMEOUT)?;
        let mut buf = [0u8; 16];
        let n = session.read(&server_sock, &mut buf)?;
        assert_eq!(&buf[..n], b"hi");
        Ok(session.info())
    });
    let mut stream = rustls::StreamOwned::new(client_for(client, "localhost"), client_sock);
    // In TLS 1.3 the client finishes before the server has judged its
    // certificate, so these may fail after a refusal.
    let _ = stream.write_all(b"hi");
    server.join().unwrap()
}

#[test]
fn a_required_client_certificate_that_is_missing_fails_the_handshake() {
    let pki = TestPki::generate();
    let error =
        client_certificate_outcome(&mutual_tls(&pki, ClientAuth::Required), pki.client_config()).unwrap_err();
    assert_eq!(rustls_error(&error), &rustls::Error::NoCertificatesPresented);
}

#[test]
fn an_optional_client_certificate_may_be_missing() {
    let pki = TestPki::generate();
    let info =
        client_certificate_outcome(&mutual_tls(&pki, ClientAuth::Optional), pki.client_config()).unwrap();
    assert!(info.peer_certificates().is_empty());
}

#[test]
fn a_client_certificate_is_visible_in_the_session_info() {
    let pki = TestPki::generate();
    for auth in [ClientAuth::Required, ClientAuth::Optional] {
        let info =
            client_certificate_outcome(&mutual_tls(&pki, auth), pki.client_config_with_cert()).unwrap();
        assert_eq!(
            info.peer_certificates(),
            std::slice::from_ref(&pki.client.cert),
            "{auth:?}"
        );
    }
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let pki = TestPki::generate();
    let stranger = pki.untrusted_ca.issue_client("stranger");
    let client = ClientConfig::builder()
        .with_root_certificates(pki.ca.roots())
        .with_client_auth_cert(stranger.chain(), stranger.key())
        .unwrap();
    let error =
        client_certificate_outcome(&mutual_tls(&pki, ClientAuth::Optional), Arc::new(client)).unwrap_err();
    assert!(
        matches!(rustls_error(&error), rustls::Error::InvalidCertificate(_)),
        "{error}"
    );
}

#[test]
fn a_close_without_close_notify_is_truncation_and_with_it_a_clean_end() {
    let (pki, acceptor) = test_server();
    for clean in [false, true] {
        let mut link = establish(acceptor.session().unwrap(), pki.client_config());
        link.client.writer().write_all(b"partial").unwrap();
        if clean {
            link.client.send_close_notify();
        }
        (&link.client_sock)
            .write_all(&outgoing(&mut link.client))
            .unwrap();
        if !clean {
            // The TCP connection ends without close_notify.
            link.client_sock.shutdown(std::net::Shutdown::Both).unwrap();
        }
        // With close_notify the socket stays open: the alert alone ends
        // the stream.
        let mut buf = [0u8; 64];
        let n = link.session.read(&link.server_sock, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"partial");
        let end = link.session.read(&link.server_sock, &mut buf);
        if clean {
            assert_eq!(end.unwrap(), 0);
            assert_eq!(
                link.session.read(&link.server_sock, &mut buf).unwrap(),
                0,
                "the end stays the end"
            );
            assert_eq!(link.session.read_now(&link.server_sock, &mut buf).unwrap(), 0);
        } else {
            let error = end.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            assert!(is_truncated(&error), "{error:?}");
            // "partial" was read and never answered: it may be cut short.
            assert!(!TlsTruncated::of(&error).unwrap().between_requests());
            assert!(is_truncated(
                &link.session.read_now(&link.server_sock, &mut buf).unwrap_err()
            ));
        }
    }
}

#[test]
fn a_truncation_after_the_servers_answer_is_between_requests() {
    let (pki, acceptor) = test_server();
    let mut link = establish(acceptor.session().unwrap(), pki.client_config());
    link.client.writer().write_all(b"ping").unwrap();
    (&link.client_sock)
        .write_all(&outgoing(&mut link.client))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = link.session.read(&link.server_sock, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    link.session.write(&link.server_sock, b"PONG").unwrap();
    // The client has its answer and leaves without close_notify.
    link.client_sock.shutdown(std::net::Shutdown::Both).unwrap();
    let error = link.session.read(&link.server_sock, &mut buf).unwrap_err();
    let truncated = TlsTruncated::of(&error).expect("a truncation");
    assert!(truncated.between_requests(), "{error}");
    assert!(
        error.to_string().contains("since the server's last answer"),
        "{error}"
    );
}

/// One `handshake_step`, which must come back at once although the socket
/// would block a read for 10 s.
fn step(session: &mut TlsSession, sock: &UnixStream) -> bool {
    let started = Instant::now();
    let done = session.handshake_step(sock).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "handshake_step waited"
    );
    done
}

/// The client takes in the server's whole flight, up to its own Finished.
fn client_reads_server_flight(client: &mut ClientConnection, sock: &UnixStream) {
    while !client.wants_write() {
        client.read_tls(&mut &*sock).unwrap();
        client.process_new_packets().unwrap();
    }
}

#[test]
fn handshake_step_completes_over_several_calls_without_ever_blocking() {
    let (pki, acceptor) = test_server();
    let (mut client_sock, server_sock) = pair();
    let mut session = acceptor.session().unwrap();
    let mut client = client_for(pki.client_config(), "localhost");

    assert!(!step(&mut session, &server_sock), "nothing has arrived");
    let hello = outgoing(&mut client);
    for piece in hello.chunks(hello.len() / 3 + 1) {
        client_sock.write_all(piece).unwrap();
        assert!(!step(&mut session, &server_sock));
        assert!(session.is_handshaking());
    }
    client_reads_server_flight(&mut client, &client_sock);
    let finished = outgoing(&mut client);
    let (first, rest) = finished.split_at(3);
    client_sock.write_all(first).unwrap();
    assert!(!step(&mut session, &server_sock));
    client_sock.write_all(rest).unwrap();
    assert!(
        step(&mut session, &server_sock),
        "the client's Finished completes it"
    );
    assert!(!session.is_handshaking());
    assert!(!session.has_buffered_plaintext());
    assert!(step(&mut session, &server_sock), "done stays done");

    // The session works, and the session tickets reached the client.
    client.writer().write_all(b"ping").unwrap();
    client_sock.write_all(&outgoing(&mut client)).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(session.read(&server_sock, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
}

#[test]
fn a_request_that_comes_with_the_last_handshake_flight_is_buffered_plaintext() {
    let (pki, acceptor) = test_server();
    let (mut client_sock, server_sock) = pair();
    let mut session = acceptor.session().unwrap();
    let mut client = client_for(pki.client_config(), "localhost");
    client_sock.write_all(&outgoing(&mut client)).unwrap();
    assert!(!step(&mut session, &server_sock));
    client_reads_server_flight(&mut client, &client_sock);
    // The client's Finished and its first request, in one segment.
    client.writer().write_all(b"GET /").unwrap();
    client_sock.write_all(&outgoing(&mut client)).unwrap();
    assert!(step(&mut session, &server_sock));
    assert!(
        session.has_buffered_plaintext(),
        "the request was taken from the socket with the Finished"
    );
    let mut buf = [0u8; 16];
    assert_eq!(session.read(&server_sock, &mut buf).unwrap(), 5);
    assert!(!session.has_buffered_plaintext());
}

#[test]
fn two_records_arriving_together_leave_one_buffered_after_the_first_is_read() {
    let (pki, acceptor) = test_server();
    let mut link = establish(acceptor.session().unwrap(), pki.client_config());
    assert!(!link.session.has_buffered_plaintext());
    link.client.writer().write_all(b"first").unwrap();
    link.client.writer().write_all(b"second!").unwrap();
    (&link.client_sock)
        .write_all(&outgoing(&mut link.client))
        .unwrap();

    let mut five = [0u8; 5];
    assert_eq!(link.session.read(&link.server_sock, &mut five).unwrap(), 5);
    assert_eq!(&five, b"first");
    assert!(
        link.session.has_buffered_plaintext(),
        "the second record is decrypted and waiting"
    );
    // Without touching the socket, which has nothing left: a blocking
    // read there would wait 10 s.
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(link.session.read(&link.server_sock, &mut buf).unwrap(), 7);
    assert_eq!(&buf[..7], b"second!");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!link.session.has_buffered_plaintext());
}

#[test]
fn read_now_takes_what_arrived_and_never_waits() {
    let (pki, acceptor) = test_server();
    let mut link = establish(acceptor.session().unwrap(), pki.client_config());
    let mut buf = [0u8; 64];
    let started = Instant::now();
    assert_eq!(
        link.session
            .read_now(&link.server_sock, &mut buf)
            .unwrap_err()
            .kind(),
        io::ErrorKind::WouldBlock,
        "nothing sent yet"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    link.client.writer().write_all(b"line one\nline two\n").unwrap();
    (&link.client_sock)
        .write_all(&outgoing(&mut link.client))
        .unwrap();
    assert_eq!(
        link.session.read_now(&link.server_sock, &mut buf[..9]).unwrap(),
        9
    );
    assert_eq!(&buf[..9], b"line one\n");
    // The rest was decrypted with it: more, without the socket.
    assert!(link.session.maybe_more());
    assert_eq!(link.session.read_now(&link.server_sock, &mut buf).unwrap(), 9);
    assert_eq!(&buf[..9], b"line two\n");
    assert!(!link.session.maybe_more());
}

#[test]
fn a_large_write_goes_out_in_full_sized_records() {
    let (pki, acceptor) = test_server();
    let mut link = establish(acceptor.session().unwrap(), pki.client_config());
    // Drain the session tickets first.
    link.client_sock.set_nonblocking(true).unwrap();
    let mut tickets = Vec::new();
    let _ = (&link.client_sock).read_to_end(&mut tickets);
    link.client_sock.set_nonblocking(false).unwrap();

    let data = vec![b'x'; 100 * 1024];
    let taken = link.session.write(&link.server_sock, &data).unwrap();
    assert_eq!(taken, 64 * 1024, "rustls takes up to its 64 KiB buffer limit");
    let mut wire = vec![0u8; 70 * 1024];
    let mut got = 0;
    let mut records = 0;
    // Walk the record headers: 4 records of 16 KiB of plaintext each.
    while records < 4 {
        (&link.client_sock).read_exact(&mut wire[got..got + 5]).unwrap();
        let length = u16::from_be_bytes([wire[got + 3], wire[got + 4]]) as usize;
        (&link.client_sock)
            .read_exact(&mut wire[got + 5..got + 5 + length])
            .unwrap();
        assert_eq!(wire[got], 23, "application data");
        assert!(length > 16 * 1024, "a full record, {length} bytes");
        got += 5 + length;
        records += 1;
    }
}

#[test]
fn swap_gives_new_sessions_the_new_certificate_and_open_ones_keep_theirs() {
    let (pki, acceptor) = test_server();
    let clone = acceptor.clone();
    let before = acceptor.session().unwrap();
    let renewed = pki.ca.issue_server(&["localhost"]);
    let new_config = pki.server_config_for(&renewed);
    acceptor.swap(Arc::clone(&new_config));
    assert!(
        Arc::ptr_eq(&clone.config(), &new_config),
        "clones share the configuration"
    );
    let after = clone.session().unwrap();

    // The session made before the swap handshakes after it, with the old
    // certificate.
    let old = establish(before, pki.client_config());
    assert_eq!(old.client.peer_certificates().unwrap()[0], pki.server.cert);
    let new = establish(after, pki.client_config());
    assert_eq!(new.client.peer_certificates().unwrap()[0], renewed.cert);
    assert_ne!(renewed.cert, pki.server.cert);
}

#[test]
fn the_handshake_timeout_defaults_to_ten_seconds_and_is_per_acceptor() {
    let (_pki, acceptor) = test_server();
    assert_eq!(
        acceptor.current_handshake_timeout(),
        super::DEFAULT_HANDSHAKE_TIMEOUT
    );
    assert_eq!(super::DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_secs(10));
    let quick = acceptor.clone().handshake_timeout(Duration::from_millis(50));
    assert_eq!(quick.current_handshake_timeout(), Duration::from_millis(50));
    assert_eq!(acceptor.current_handshake_timeout(), Duration::from_secs(10));
    let deadline = quick.handshake_deadline();
    assert!(deadline <= Instant::now() + Duration::from_millis(50));
}

/// Reads the next TLS record off `sock`: its content type and length.
fn next_record(sock: &UnixStream) -> (u8, usize) {
    let mut header = [0u8; 5];
    (&*sock).read_exact(&mut header).unwrap();
    let length = u16::from_be_bytes([header[3], header[4]]) as usize;
    let mut body = vec![0u8; length];
    (&*sock).read_exact(&mut body).unwrap();
    (header[0], length)
}

#[test]
fn a_vectored_write_gathers_small_pieces_into_one_record() {
    let (pki, acceptor) = test_server();
    let mut link = establish(acceptor.session().unwrap(), pki.client_config());
    link.session.write(&link.server_sock, b"marker").unwrap();
    // Skip the session tickets, up to the marker's record.
    while next_record(&link.client_sock) != (23, 6 + 17) {}
    let pieces = [
        &b"HTTP/1.1 200 OK\r\n"[..],
        b"Content-Length: 2\r\n",
        b"\r\n",
        b"ok",
    ];
    let slices: Vec<io::IoSlice<'_>> = pieces.iter().map(|p| io::IoSlice::new(p)).collect();
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    assert_eq!(
        link.session.write_vectored(&link.server_sock, &slices).unwrap(),
        total
    );
    link.session.close_now(&link.server_sock).unwrap();
    // One application-data record (content type, then a 16-byte tag),
    // then the close_notify alert.
    assert_eq!(next_record(&link.client_sock), (23, total + 17));
    assert_eq!(next_record(&link.client_sock).0, 23, "the encrypted alert");
}

#[test]
fn flush_finishes_a_write_that_timed_out() {
    let (pki, acceptor) = test_server();
    let link = establish(acceptor.session().unwrap(), pki.client_config());
    let Established {
        client,
        client_sock,
        mut session,
        server_sock,
    } = link;
    server_sock
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut reported = 0;
    // The client reads nothing yet: the socket buffer fills, and a write
    // times out with records still queued in the session.
    let error = loop {
        match session.write(&server_sock, &chunk) {
            Ok(n) => reported += n,
            Err(e) => break e,
        }
        assert!(reported < 64 << 20, "the socket never filled");
    };
    assert!(
        matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "{error}"
    );
    let reader = thread::spawn(move || {
        let mut stream = rustls::StreamOwned::new(client, client_sock);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).map(|_| all)
    });
    server_sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    session.flush(&server_sock).unwrap();
    // The alert goes out at once if there is room; if not, it stays
    // queued, and a (blocking) flush sends it.
    if let Err(e) = session.close_now(&server_sock) {
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        session.flush(&server_sock).unwrap();
    }
    let all = reader
        .join()
        .unwrap()
        .expect("every record intact, then close_notify");
    assert!(all.len() > reported, "the timed-out write's bytes went out too");
    assert!(all.iter().all(|&b| b == b'x'));
}

#[test]
fn sessions_can_move_between_workers() {
    // A parked connection's session is served by whichever worker takes
    // it next.
    fn movable<T: Send + Sync + 'static>() {}
    movable::<TlsSession>();
    movable::<TlsAcceptor>();
    movable::<TlsInfo>();
}
