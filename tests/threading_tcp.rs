//! ThreadingTcpServer under concurrency: many clients, shutdown in the
//! middle of conversations, panicking handlers, limits and overload.

mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use socketserver::echo::Uppercase;
use socketserver::{OverloadPolicy, TcpRequest, ThreadingTcpServer};
use util::{TIMEOUT, connect, eventually, init_logging, read_to_end, round_trip, serve};

/// Each client's message is unique, so a reply sent to the wrong client
/// would be caught.
fn message(client: usize, round: usize) -> Vec<u8> {
    format!("client {client} round {round};").into_bytes()
}

#[test]
fn two_hundred_concurrent_clients_each_get_their_own_replies() {
    init_logging();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase));
    let addr = *server.local_addr();
    const CLIENTS: usize = 200;
    const ROUNDS: usize = 20;
    // All clients connected before any talks: 200 connections at once.
    let connected = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let connected = Arc::clone(&connected);
            thread::spawn(move || {
                let mut stream = connect(addr);
                connected.wait();
                for round in 0..ROUNDS {
                    let sent = message(client, round);
                    let reply = round_trip(&mut stream, &sent).unwrap();
                    assert_eq!(
                        reply,
                        sent.to_ascii_uppercase(),
                        "client {client} got someone else's reply"
                    );
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    running.shutdown();
}

/// Echoes, except that it panics on "panic".
fn panicky(request: &mut TcpRequest) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        let n = request.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if &buf[..n] == b"panic" {
            panic!("asked to panic");
        }
        request.write_all(&buf[..n])?;
    }
}

#[test]
fn a_panicking_handler_harms_no_other_client() {
    init_logging();
    const WORKERS: usize = 4;
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .workers(WORKERS)
            .bind("127.0.0.1:0", panicky),
    );
    let addr = *server.local_addr();

    // Three clients mid-conversation while a fourth panics its handler.
    let mut others: Vec<TcpStream> = (0..WORKERS - 1).map(|_| connect(addr)).collect();
    for stream in &mut others {
        assert_eq!(round_trip(stream, b"before").unwrap(), b"before");
    }
    let mut victim = connect(addr);
    victim.write_all(b"panic").unwrap();
    assert_eq!(
        read_to_end(&mut victim).unwrap(),
        b"",
        "the panicking connection is closed"
    );
    eventually("the panic is counted", || server.stats().panics == 1);
    for stream in &mut others {
        assert_eq!(round_trip(stream, b"after").unwrap(), b"after");
    }
    assert_eq!(server.stats().workers, WORKERS, "the pool keeps its size");

    // All four workers still serve: four clients at once get replies.
    let mut fresh = connect(addr);
    assert_eq!(round_trip(&mut fresh, b"new").unwrap(), b"new");
    let s = server.stats();
    assert_eq!((s.panics, s.errors, s.workers), (1, 0, WORKERS));
    drop(others);
    drop(fresh);
    running.shutdown();
}

#[test]
fn connection_limit_blocks_until_a_slot_frees() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .max_connections(2)
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut first = connect(addr);
    let mut second = connect(addr);
    assert_eq!(round_trip(&mut first, b"a").unwrap(), b"A");
    assert_eq!(round_trip(&mut second, b"b").unwrap(), b"B");

    // The third connects (the kernel's backlog holds it) but is not served.
    let mut third = connect(addr);
    third.write_all(b"c").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut reply = [0u8; 1];
    let waiting = third.read(&mut reply).unwrap_err();
    assert!(matches!(
        waiting.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert_eq!(server.stats().accepted, 2);

    drop(first);
    third.set_read_timeout(Some(TIMEOUT)).unwrap();
    third.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"C");
    drop((second, third));
    running.shutdown();
}

#[test]
fn reject_policy_closes_connections_beyond_capacity() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .max_workers(1)
            .queue_capacity(0)
            .overload_policy(OverloadPolicy::Reject)
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut busy = connect(addr);
    assert_eq!(round_trip(&mut busy, b"hold").unwrap(), b"HOLD");

    let mut rejected = connect(addr);
    match read_to_end(&mut rejected) {
        Ok(bytes) => assert_eq!(bytes, b""),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    assert_eq!(server.stats().refused, 1);
    assert_eq!(round_trip(&mut busy, b"still").unwrap(), b"STILL");
    drop(busy);
    running.shutdown();
}

#[test]
fn a_slow_client_times_out_without_holding_up_others() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .read_timeout(Duration::from_millis(100))
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut slow = connect(addr);
    let mut quick = connect(addr);
    assert_eq!(round_trip(&mut quick, b"hi").unwrap(), b"HI");
    drop(quick);
    // The slow client never sends; the server gives up on it.
    assert_eq!(read_to_end(&mut slow).unwrap(), b"");
    eventually("the timeout is counted", || server.stats().errors == 1);
    assert_eq!(server.stats().errors, 1, "only the slow client timed out");
    running.shutdown();
}

#[test]
fn idle_workers_retire_after_the_keep_alive() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .min_workers(1)
            .keep_alive(Duration::from_millis(20))
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut clients: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for stream in &mut clients {
        assert_eq!(round_trip(stream, b"x").unwrap(), b"X");
    }
    assert!(server.stats().workers >= 8);
    drop(clients);
    eventually("idle workers retire down to the minimum", || {
        server.stats().workers == 1
    });
    running.shutdown();
}

#[test]
fn connections_have_nodelay_unless_disabled() {
    init_logging();
    for (nodelay, expected) in [(None, b"1"), (Some(false), b"0")] {
        let mut builder = ThreadingTcpServer::builder();
        if let Some(on) = nodelay {
            builder = builder.nodelay(on);
        }
        let (server, running) = serve(builder.bind("127.0.0.1:0", |request: &mut TcpRequest| {
            let on = request.stream().nodelay()?;
            request.write_all(if on { b"1" } else { b"0" })
        }));
        let addr = *server.local_addr();
        assert_eq!(read_to_end(&mut connect(addr)).unwrap(), expected);
        running.shutdown();
    }
}

#[test]
fn bad_configuration_is_refused_at_bind() {
    let bad = ThreadingTcpServer::builder()
        .min_workers(5)
        .max_workers(2)
        .bind("127.0.0.1:0", Uppercase);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad = ThreadingTcpServer::builder()
        .dual_stack(true)
        .bind("127.0.0.1:0", Uppercase);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad = ThreadingTcpServer::builder()
        .max_connections(0)
        .bind("127.0.0.1:0", Uppercase);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    // An adopted listener is checked the same way.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bad = ThreadingTcpServer::builder()
        .max_workers(0)
        .from_listener(listener, Uppercase);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    init_logging();
    let first = ThreadingTcpServer::builder()
        .reuse_port(true)
        .bind("127.0.0.1:0", Uppercase)
        .unwrap();
    let addr = *first.local_addr();
    let second = ThreadingTcpServer::builder()
        .reuse_port(true)
        .bind(addr, Uppercase);
    assert!(second.is_ok(), "{:?}", second.err());
    let third = ThreadingTcpServer::bind(addr, Uppercase);
    assert_eq!(third.unwrap_err().kind(), ErrorKind::AddrInUse);
}

#[test]
fn serves_an_adopted_listener() {
    init_logging();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (server, running) = serve(ThreadingTcpServer::builder().from_listener(listener, Uppercase));
    let addr = *server.local_addr();
    assert_eq!(round_trip(&mut connect(addr), b"adopted").unwrap(), b"ADOPTED");
    running.shutdown();
}

#[test]
fn serves_ipv6_loopback() {
    init_logging();
    let bound = ThreadingTcpServer::bind("[::1]:0", Uppercase);
    if let Err(e) = &bound
        && matches!(e.kind(), ErrorKind::AddrNotAvailable | ErrorKind::Unsupported)
    {
        eprintln!("no IPv6 loopback here ({e}); skipping");
        return;
    }
    let (server, running) = serve(bound);
    let addr = *server.local_addr();
    assert!(addr.is_ipv6());
    assert_eq!(round_trip(&mut connect(addr), b"six").unwrap(), b"SIX");
    running.shutdown();
}

#[test]
fn serve_forever_twice_at_once_is_refused() {
    init_logging();
    let server = Arc::new(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase).unwrap());
    let serving = Arc::clone(&server);
    let running = util::Running::start(server.shutdown_handle(), move || serving.serve_forever());
    let addr = *server.local_addr();
    // Once a client is served, the first serve_forever is surely running.
    assert_eq!(round_trip(&mut connect(addr), b"up").unwrap(), b"UP");
    let second = server.serve_forever().unwrap_err();
    assert_eq!(second.kind(), ErrorKind::ResourceBusy);
    running.shutdown();
}

/// Issue 15, defect 4: `handle_request` waits for room under
/// `max_connections`, as `serve_forever` does, instead of accepting past
/// the limit; a wait that outlasts the server's timeout counts as a
/// timeout.
#[test]
fn handle_request_keeps_to_max_connections() {
    init_logging();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let server = ThreadingTcpServer::builder()
        .max_connections(1)
        .timeout(Duration::from_millis(200))
        .bind("127.0.0.1:0", move |req: &mut TcpRequest| {
            req.write_all(b"served")?;
            let _ = released.recv_timeout(TIMEOUT);
            Ok(())
        })
        .unwrap();
    let addr = *server.local_addr();
    let served = |stream: &mut TcpStream| {
        let mut reply = [0u8; 6];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"served");
    };
    let mut first = connect(addr);
    assert!(server.handle_request().unwrap());
    served(&mut first);
    let mut second = connect(addr);
    // The first connection holds the only place: no accepting.
    assert!(!server.handle_request().unwrap(), "accepted past max_connections");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.active), (1, 1), "{stats:?}");
    release.send(()).unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !server.handle_request().unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second client was never accepted"
        );
    }
    served(&mut second);
    release.send(()).unwrap();
    drop(server);
}
