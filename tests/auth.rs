//! Client verification over real connections: the right key is let in and
//! welcomed, a wrong key is told so and refused, a silent client is
//! refused within the timeout, and the wrapped handler never sees them.
#![cfg(feature = "auth")]

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
