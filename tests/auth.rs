//! Client verification over real connections: the right key is let in and
//! welcomed, a wrong key is told so and refused, a silent client is
//! refused within the timeout, and the wrapped handler never sees them;
//! over TLS, the same inside the session.
#![cfg(feature = "auth")]

#[cfg(feature = "tls")]
#[path = "util/tls.rs"]
mod pki;
mod util;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use socketserver::ThreadingTcpServer;
use socketserver::auth::{Authenticated, CHALLENGE_LEN, answer_challenge};
use socketserver::echo::Uppercase;
use util::{connect, init_logging, round_trip, serve};

const KEY: &[u8] = b"the shared secret";

fn authenticated_server(
    timeout: Duration,
) -> (socketserver::ServerHandle<std::net::SocketAddr>, util::Running) {
    let handler = Authenticated::new(KEY, Uppercase).unwrap().timeout(timeout);
    serve(ThreadingTcpServer::bind("127.0.0.1:0", handler))
}

/// Reads until the server closes; a reset counts as closed too.
fn wait_closed(stream: &mut std::net::TcpStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn the_right_key_is_let_in() {
    init_logging();
    let (server, running) = authenticated_server(Duration::from_secs(5));
    let mut client = connect(*server.local_addr());
    answer_challenge(&mut client, KEY).unwrap();
    assert_eq!(round_trip(&mut client, b"let me in").unwrap(), b"LET ME IN");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.refused), (1, 0));
    drop(client);
    running.shutdown();
}

#[test]
fn a_wrong_key_is_refused() {
    init_logging();
    let (server, running) = authenticated_server(Duration::from_secs(5));
    let mut client = connect(*server.local_addr());
    // The client is told at once, not by a connection closing later.
    let refused = answer_challenge(&mut client, b"a guess").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
    // Whatever the client sends next never reaches the handler.
    let _ = client.write_all(b"hello");
    wait_closed(&mut client);
    util::eventually("the refusal is counted", || server.stats().refused == 1);
    assert_eq!(server.stats().errors, 0);
    running.shutdown();
}

#[test]
fn a_client_that_never_answers_is_refused_after_the_timeout() {
    init_logging();
    let timeout = Duration::from_millis(200);
    let (server, running) = authenticated_server(timeout);
    // Before connecting: the server's clock cannot start earlier.
    let started = Instant::now();
    let mut client = connect(*server.local_addr());
    let mut challenge = [0u8; CHALLENGE_LEN];
    client.read_exact(&mut challenge).unwrap();
    wait_closed(&mut client);
    let waited = started.elapsed();
    assert!(waited >= timeout, "closed before the timeout: {waited:?}");
    util::eventually("the refusal is counted", || server.stats().refused == 1);
    running.shutdown();
}

#[test]
fn each_challenge_is_fresh() {
    init_logging();
    let (server, running) = authenticated_server(Duration::from_secs(5));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut client = connect(*server.local_addr());
        let mut challenge = [0u8; CHALLENGE_LEN];
        client.read_exact(&mut challenge).unwrap();
        assert!(!seen.contains(&challenge), "a challenge repeated");
        seen.push(challenge);
    }
    running.shutdown();
}

/// Records which of its hooks ran.
#[derive(Default)]
struct Recorder {
    calls: std::sync::Arc<parking_lot::Mutex<Vec<&'static str>>>,
    refuse: bool,
}

impl Recorder {
    fn record(&self, hook: &'static str) {
        self.calls.lock().push(hook);
    }
}

impl socketserver::RequestHandler<socketserver::TcpRequest> for Recorder {
    fn verify_request(&self, _request: &socketserver::TcpRequest) -> bool {
        self.record("verify_request");
        !self.refuse
    }
    fn setup(&self, _request: &mut socketserver::TcpRequest) -> std::io::Result<()> {
        self.record("setup");
        Ok(())
    }
    fn handle(&self, _request: &mut socketserver::TcpRequest) -> std::io::Result<()> {
        self.record("handle");
        Err(std::io::Error::other("handle fails on purpose"))
    }
    fn finish(&self, _request: &mut socketserver::TcpRequest) -> std::io::Result<()> {
        self.record("finish");
        Ok(())
    }
    fn handle_error(&self, _request: &socketserver::TcpRequest, _error: &std::io::Error) {
        self.record("handle_error");
    }
    fn handle_timeout(&self) {
        self.record("handle_timeout");
    }
    fn service_actions(&self) {
        self.record("service_actions");
    }
}

/// Issue 14: the wrapped handler's cheap `verify_request` runs before the
/// challenge (a peer it refuses is never challenged), and every other
/// hook reaches the wrapped handler.
#[test]
fn the_inner_check_comes_first_and_every_hook_is_forwarded() {
    init_logging();
    let refusing = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let server =
        socketserver::TcpServer::bind("127.0.0.1:0", Authenticated::new(KEY, refusing).unwrap()).unwrap();
    let mut client = connect(*server.local_addr());
    assert!(server.handle_request().unwrap());
    let mut sent = Vec::new();
    client.read_to_end(&mut sent).unwrap();
    assert!(sent.is_empty(), "a refused peer was sent a challenge");
    drop(server);

    let recorder = Recorder::default();
    let calls = std::sync::Arc::clone(&recorder.calls);
    let server = socketserver::TcpServer::builder()
        .timeout(Duration::from_millis(10))
        .service_interval(Duration::from_millis(1))
        .bind("127.0.0.1:0", Authenticated::new(KEY, recorder).unwrap())
        .unwrap();
    let mut client = connect(*server.local_addr());
    // The serial server challenges on this thread, in handle_request.
    let answering = std::thread::spawn(move || answer_challenge(&mut client, KEY).map(|()| client));
    assert!(server.handle_request().unwrap());
    let client = answering.join().unwrap().unwrap();
    assert!(!server.handle_request().unwrap(), "no second client: a timeout");
    drop(client);
    assert_eq!(
        *calls.lock(),
        [
            "verify_request",
            "setup",
            "handle",
            "finish",
            "handle_error",
            "handle_timeout"
        ]
    );
    let (_server, running) = serve(Ok(server));
    util::eventually("service_actions reaches the wrapped handler", || {
        calls.lock().contains(&"service_actions")
    });
    running.shutdown();
}

/// Issue 11: over TLS the challenge runs inside the session (in clear it
/// would corrupt the TLS stream: the client could not even read it), the
/// right key is let in, and a wrong one is told so and never reaches the
/// handler.
#[test]
#[cfg(feature = "tls")]
fn over_tls_the_challenge_runs_inside_the_session() {
    use socketserver::tls::TlsAcceptor;
    use socketserver::tls::rustls::pki_types::ServerName;
    use socketserver::tls::rustls::{ClientConnection, StreamOwned};

    init_logging();
    let pki = pki::TestPki::generate();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .tls(TlsAcceptor::new(pki.server_config()))
            .bind("127.0.0.1:0", Authenticated::new(KEY, Uppercase).unwrap()),
    );
    let tls_client = || {
        let session = ClientConnection::new(pki.client_config(), ServerName::try_from("localhost").unwrap());
        StreamOwned::new(session.unwrap(), connect(*server.local_addr()))
    };

    let mut client = tls_client();
    answer_challenge(&mut client, KEY).unwrap();
    client.write_all(b"let me in").unwrap();
    let mut reply = [0u8; 9];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"LET ME IN");
    // A clean end both ways, and nothing to report.
    client.conn.send_close_notify();
    client.flush().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(server.stats().errors, 0);

    let mut stranger = tls_client();
    let refused = answer_challenge(&mut stranger, b"a guess").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
    let _ = stranger.write_all(b"hello");
    let rest = util::read_until_closed(&mut stranger);
    assert!(rest.is_empty(), "the handler answered: {rest:?}");
    // Reported from setup: an error, not a refusal.
    util::eventually("the failure is counted", || server.stats().errors == 1);
    assert_eq!(server.stats().refused, 0);
    running.shutdown();
}

/// A parked server challenges each client once per connection, in clear
/// and inside TLS, never before each request; a wrong key never reaches
/// the handler.
#[test]
#[cfg(feature = "tls")]
fn a_parked_server_challenges_once_per_connection() {
    use socketserver::ParkedTcpServer;
    use socketserver::tls::TlsAcceptor;
    use socketserver::tls::rustls::pki_types::ServerName;
    use socketserver::tls::rustls::{ClientConnection, StreamOwned};

    init_logging();
    let pki = pki::TestPki::generate();
    let two_requests = |client: &mut dyn ReadWrite| {
        for (sent, expected) in [(b"one", b"ONE"), (b"two", b"TWO")] {
            client.write_all(sent).unwrap();
            let mut reply = [0u8; 3];
            client.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, expected, "the second request was taken for an answer");
        }
    };

    let (server, running) =
        serve(ParkedTcpServer::builder().bind("127.0.0.1:0", Authenticated::new(KEY, Uppercase).unwrap()));
    let mut plain = connect(*server.local_addr());
    answer_challenge(&mut plain, KEY).unwrap();
    two_requests(&mut plain);
    running.shutdown();

    let (server, running) = serve(
        ParkedTcpServer::builder()
            .tls(TlsAcceptor::new(pki.server_config()))
            .bind("127.0.0.1:0", Authenticated::new(KEY, Uppercase).unwrap()),
    );
    let tls_client = || {
        let session = ClientConnection::new(pki.client_config(), ServerName::try_from("localhost").unwrap());
        StreamOwned::new(session.unwrap(), connect(*server.local_addr()))
    };
    let mut client = tls_client();
    answer_challenge(&mut client, KEY).unwrap();
    two_requests(&mut client);
    let mut stranger = tls_client();
    let refused = answer_challenge(&mut stranger, b"a guess").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
    util::eventually("the failure is counted", || server.stats().errors == 1);
    running.shutdown();
}

/// Both kinds of client stream, for one helper.
#[cfg(feature = "tls")]
trait ReadWrite: Read + Write {}
#[cfg(feature = "tls")]
impl<T: Read + Write> ReadWrite for T {}
