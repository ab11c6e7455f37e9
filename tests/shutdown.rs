//! Shutdown: at once, from anywhere, with a grace period for clients in
//! the middle of a conversation and a forced close after it.

mod util;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use socketserver::echo::Uppercase;
use socketserver::{TcpServer, ThreadingTcpServer};
use util::{connect, init_logging, looping_uppercase, read_to_end, round_trip, serve};

/// Each client's message is unique, so a reply sent to the wrong client
/// would be caught.
fn message(client: usize, round: usize) -> Vec<u8> {
    format!("client {client} round {round};").into_bytes()
}

/// What a client in the middle of a conversation saw when the server shut
/// down.
#[derive(Debug, PartialEq)]
enum Ending {
    Completed,
    ClosedCleanly,
}

#[test]
fn shutdown_mid_conversation_closes_cleanly_within_the_grace_period() {
    init_logging();
    const CLIENTS: usize = 50;
    let grace = Duration::from_millis(500);
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .shutdown_grace(grace)
            .worker_name_prefix("mid-conv")
            .bind("127.0.0.1:0", looping_uppercase),
    );
    let addr = *server.local_addr();

    // Every client has finished one round trip before shutdown starts.
    let talking = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let talking = Arc::clone(&talking);
            thread::spawn(move || -> Ending {
                let mut stream = connect(addr);
                let first = message(client, 0);
                assert_eq!(
                    round_trip(&mut stream, &first).unwrap(),
                    first.to_ascii_uppercase()
                );
                talking.wait();
                // Half the clients finish during the grace period; the
                // rest talk on until the server closes them.
                let rounds = if client % 2 == 0 { 5 } else { usize::MAX };
                for round in 1..rounds {
                    let sent = message(client, round);
                    match round_trip(&mut stream, &sent) {
                        Ok(reply) => assert_eq!(reply, sent.to_ascii_uppercase()),
                        Err(e) => {
                            assert!(
                                matches!(
                                    e.kind(),
                                    ErrorKind::UnexpectedEof
                                        | ErrorKind::ConnectionReset
                                        | ErrorKind::BrokenPipe
                                ),
                                "client {client}: unclean ending: {e}"
                            );
                            return Ending::ClosedCleanly;
                        }
                    }
                }
                Ending::Completed
            })
        })
        .collect();
    talking.wait();
    assert_eq!(server.stats().accepted, CLIENTS as u64);

    let took = running.shutdown();
    let endings: Vec<Ending> = clients
        .into_iter()
        .map(|c| c.join().expect("a client failed"))
        .collect();
    let completed = endings.iter().filter(|e| **e == Ending::Completed).count();
    assert_eq!(
        completed,
        CLIENTS / 2,
        "the short conversations complete within the grace period"
    );
    assert!(
        took >= grace,
        "shutdown returned before the grace period ended: {took:?}"
    );
    assert!(took < grace + Duration::from_secs(2), "shutdown took {took:?}");
    let stats = server.stats();
    assert_eq!((stats.active, stats.workers), (0, 0));
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("mid-conv");
}

#[test]
fn shutdown_with_zero_grace_closes_idle_clients_at_once() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .shutdown_grace(Duration::ZERO)
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut idle: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    for stream in &mut idle {
        assert_eq!(round_trip(stream, b"x").unwrap(), b"X");
    }
    assert_eq!(server.stats().active, 20);
    running.shutdown();
    for stream in &mut idle {
        assert_eq!(
            read_to_end(stream).unwrap(),
            b"",
            "an idle client sees end-of-file"
        );
    }
}

#[test]
fn serial_server_force_closes_a_lingering_client_after_the_grace_period() {
    init_logging();
    let grace = Duration::from_millis(100);
    let (server, running) = serve(
        TcpServer::builder()
            .shutdown_grace(grace)
            .bind("127.0.0.1:0", looping_uppercase),
    );
    let mut lingering = connect(*server.local_addr());
    // The loop thread is now inside the handler, blocked reading.
    assert_eq!(round_trip(&mut lingering, b"here").unwrap(), b"HERE");
    let took = running.shutdown();
    assert!(took >= grace, "closed before the grace period ended: {took:?}");
    assert!(took < grace + Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(read_to_end(&mut lingering).unwrap(), b"");
}

/// Issue 15, defect 5: a serial server busy in a handler when shutdown is
/// requested stops listening at once; a client connecting during the
/// grace period is refused, not left in the backlog until the grace ends.
#[test]
fn a_serial_server_refuses_new_clients_during_the_grace_period() {
    use socketserver::TcpRequest;
    use std::io::{Read, Write};
    init_logging();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let server = TcpServer::builder()
        .shutdown_grace(Duration::from_secs(30))
        .bind("127.0.0.1:0", move |req: &mut TcpRequest| {
            req.write_all(b"busy")?;
            let _ = released.recv_timeout(util::TIMEOUT);
            Ok(())
        })
        .unwrap();
    let addr = *server.local_addr();
    let stop = server.shutdown_handle();
    let (_server, running) = serve(Ok(server));
    let mut busy = connect(addr);
    let mut reply = [0u8; 4];
    busy.read_exact(&mut reply).unwrap();
    stop.request_shutdown();
    let error = TcpStream::connect_timeout(&addr, util::TIMEOUT)
        .expect_err("a new client was let into the backlog during the grace period");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}");
    release.send(()).unwrap();
    running.join();
}

/// A forced close first shuts only the reading of the connections still
/// served, so that handlers blocked reading close them themselves (a TLS
/// session with close_notify). A handler that is not reading must still
/// be cut off: one stuck outside its socket loses its client, who sees the
/// connection end while the handler is still stuck; one blocked writing to
/// a client that does not read fails its write.
#[test]
fn a_forced_close_cuts_off_handlers_that_are_not_reading() {
    use socketserver::TcpRequest;
    use std::io::{Read, Write};
    init_logging();
    let (release, released) = crossbeam_channel::bounded::<()>(1);
    let (write_failed, write_failure) = crossbeam_channel::bounded::<ErrorKind>(1);
    let server = ThreadingTcpServer::builder()
        .shutdown_grace(Duration::from_millis(100))
        .bind("127.0.0.1:0", move |req: &mut TcpRequest| {
            let mut what = [0u8; 1];
            req.read_exact(&mut what)?;
            if &what == b"s" {
                // Stuck outside the socket.
                req.write_all(b"stuck")?;
                let _ = released.recv_timeout(util::TIMEOUT);
                return Ok(());
            }
            // Writing to a client that reads nothing, until cut off.
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                if let Err(e) = req.write_all(&chunk) {
                    let _ = write_failed.send(e.kind());
                    return Err(e);
                }
            }
        })
        .unwrap();
    let (server, running) = serve(Ok(server));
    let addr = *server.local_addr();
    let mut stuck = connect(addr);
    stuck.write_all(b"s").unwrap();
    let mut greeting = [0u8; 5];
    stuck.read_exact(&mut greeting).unwrap();
    let mut writing = connect(addr);
    writing.write_all(b"w").unwrap();
    util::eventually("both handlers run", || server.stats().active == 2);
    let stopping = thread::spawn(move || running.shutdown());
    // The stuck handler's client sees the end of the connection before
    // the handler is released.
    assert_eq!(read_to_end(&mut stuck).unwrap(), b"");
    release.send(()).unwrap();
    let failure = write_failure
        .recv_timeout(util::TIMEOUT)
        .expect("the writing handler was cut off");
    assert!(
        matches!(failure, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{failure:?}"
    );
    stopping.join().unwrap();
}

/// Issue 21: the connections of a per-request handler that wait between
/// two requests have nothing to finish, so shutdown closes them at once,
/// not at the end of the grace period (Go's `Server.Shutdown` does the
/// same), in every mode; a connection in the middle of a request finishes
/// it first.
#[test]
fn a_per_request_handler_s_idle_connections_close_at_once_and_busy_ones_finish() {
    use socketserver::{KeepAliveHandler, Mode, Next, TcpRequest};
    use std::io::{BufRead, Read, Write};

    /// Answers each line uppercased; a line "wait" first waits for the
    /// test's word (and says it has started).
    struct Lines {
        started: crossbeam_channel::Sender<()>,
        go: crossbeam_channel::Receiver<()>,
    }
    impl KeepAliveHandler<TcpRequest> for Lines {
        type State = ();
        fn handle_one(&self, req: &mut TcpRequest, _: &mut ()) -> std::io::Result<Next> {
            let mut line = String::new();
            if req.read_line(&mut line)? == 0 {
                return Ok(Next::Close);
            }
            if line.trim_end() == "wait" {
                self.started.send(()).unwrap();
                self.go.recv_timeout(util::TIMEOUT).unwrap();
            }
            req.write_all(line.to_uppercase().as_bytes())?;
            Ok(Next::KeepOpen)
        }
    }

    init_logging();
    for mode in [Mode::Threading, Mode::Parked, Mode::Serial] {
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (go, go_rx) = crossbeam_channel::bounded(1);
        let handler = Lines {
            started: started_tx,
            go: go_rx,
        };
        let (server, running) = serve(
            TcpServer::builder()
                .mode(mode)
                .shutdown_grace(Duration::from_secs(60))
                .bind("127.0.0.1:0", handler),
        );
        let addr = *server.local_addr();
        // A serial server serves one connection at a time: the busy one.
        let idle_clients = if mode == Mode::Serial { 0 } else { 10 };
        let mut idle: Vec<TcpStream> = (0..idle_clients).map(|_| connect(addr)).collect();
        for stream in &mut idle {
            assert_eq!(round_trip(stream, b"x\n").unwrap(), b"X\n", "{mode:?}");
        }
        let mut busy = connect(addr);
        assert_eq!(round_trip(&mut busy, b"y\n").unwrap(), b"Y\n", "{mode:?}");
        busy.write_all(b"wait\n").unwrap();
        started.recv_timeout(util::TIMEOUT).unwrap();

        let stopping = thread::spawn(move || running.shutdown());
        // Closed while the busy request still runs: long before the
        // grace period could end.
        for stream in &mut idle {
            assert_eq!(
                read_to_end(stream).unwrap(),
                b"",
                "{mode:?}: an idle client sees end-of-file"
            );
        }
        go.send(()).unwrap();
        let mut reply = [0u8; 5];
        busy.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"WAIT\n", "{mode:?}: the request in progress is answered");
        assert_eq!(
            read_to_end(&mut busy).unwrap(),
            b"",
            "{mode:?}: then its connection closes"
        );
        let took = stopping.join().unwrap();
        assert!(
            took < Duration::from_secs(30),
            "{mode:?}: shutdown waited out the grace period: {took:?}"
        );
    }
}
