//! The portable behaviours of CPython's `Lib/test/test_socketserver.py`
//! (`SocketServerTest`, `ErrorHandlerTest`, `MiscTestCase`), ported to the
//! TCP, UDP and Unix-socket servers. Each test names the CPython test it
//! comes from. Tests that exercise fork, Python's exception hierarchy or
//! its 0.5 s polling have no counterpart here.

mod util;

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, unbounded};
use socketserver::{
    RequestHandler, TcpRequest, TcpServer, ThreadingTcpServer, ThreadingUdpServer,
    ThreadingUnixDatagramServer, ThreadingUnixStreamServer, UdpRequest, UdpServer, UnixDatagramRequest,
    UnixDatagramServer, UnixStreamRequest, UnixStreamServer,
};
use util::{
    TIMEOUT, connect, eventually, init_logging, read_to_end, recv_from_only, serve, udp_client,
    udp_round_trip, within,
};

/// CPython's `TEST_STR`.
const TEST_STR: &[u8] = b"hello world\n";

/// CPython's stream handler: reads one line, writes it back.
fn line_echo(request: &mut TcpRequest) -> io::Result<()> {
    let mut line = Vec::new();
    request.read_until(b'\n', &mut line)?;
    request.write_all(&line)
}

/// CPython's `stream_examine`: send TEST_STR, read the reply to the end.
fn stream_examine(addr: SocketAddr) {
    let mut client = connect(addr);
    client.write_all(TEST_STR).unwrap();
    assert_eq!(read_to_end(&mut client).unwrap(), TEST_STR);
}

/// From `run_server` + `test_TCPServer` / `test_ThreadingTCPServer`: three
/// clients in turn get their line back; then shutdown returns and no
/// worker thread is left.
#[test]
fn tcp_server_serves_sequential_clients() {
    init_logging();
    let (server, running) = serve(TcpServer::bind("127.0.0.1:0", line_echo));
    let addr = *server.local_addr();
    for _ in 0..3 {
        stream_examine(addr);
    }
    running.shutdown();
}

#[test]
fn threading_tcp_server_serves_sequential_clients_and_reaps_workers() {
    init_logging();
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .worker_name_prefix("cpy-seq")
            .bind("127.0.0.1:0", line_echo),
    );
    let addr = *server.local_addr();
    for _ in 0..3 {
        stream_examine(addr);
    }
    #[cfg(target_os = "linux")]
    assert!(
        !util::threads_named("cpy-seq").is_empty(),
        "a worker served the clients"
    );
    running.shutdown();
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("cpy-seq");
}

/// From `test_shutdown`: shutdown issued right after the serving thread
/// starts, maybe before the loop runs, always returns; 20 servers in a row.
#[test]
fn shutdown_right_after_start_always_returns() {
    init_logging();
    for _ in 0..20 {
        serve(ThreadingTcpServer::bind("127.0.0.1:0", line_echo))
            .1
            .shutdown();
    }
    for _ in 0..20 {
        serve(TcpServer::bind("127.0.0.1:0", line_echo)).1.shutdown();
    }
}

/// From `test_close_immediately`: a server that never served closes fine.
#[test]
fn closing_a_server_that_never_served() {
    init_logging();
    let serial = TcpServer::bind("127.0.0.1:0", line_echo).unwrap();
    within(TIMEOUT, "drop", move || drop(serial));
    let threading = ThreadingTcpServer::builder()
        .min_workers(4)
        .bind("127.0.0.1:0", line_echo)
        .unwrap();
    within(TIMEOUT, "drop", move || drop(threading));
}

/// Records what reached `handle_error`.
struct Failing {
    errors: Sender<String>,
}

impl RequestHandler<TcpRequest> for Failing {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let mut line = String::new();
        request.read_line(&mut line)?;
        if line.trim() == "fail" {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "asked to fail"));
        }
        request.write_all(line.as_bytes())
    }

    fn handle_error(&self, request: &TcpRequest, error: &io::Error) {
        let _ = self.errors.send(format!("{} {error}", request.peer_addr()));
    }
}

/// From `ErrorHandlerTest.test_sync_handled` / `test_threading_handled`:
/// an error in a handler reaches `handle_error`, and serving goes on.
#[test]
fn handler_error_reaches_handle_error_and_serving_goes_on() {
    init_logging();
    for threading in [false, true] {
        let (errors, reported) = unbounded();
        let handler = Failing { errors };
        let (server, running) = if threading {
            serve(ThreadingTcpServer::bind("127.0.0.1:0", handler))
        } else {
            serve(TcpServer::bind("127.0.0.1:0", handler))
        };
        let addr = *server.local_addr();
        let mut bad = connect(addr);
        let bad_local = bad.local_addr().unwrap();
        bad.write_all(b"fail\n").unwrap();
        assert_eq!(
            read_to_end(&mut bad).unwrap(),
            b"",
            "a failed request's connection is closed"
        );
        let report = reported.recv_timeout(TIMEOUT).expect("handle_error was called");
        assert_eq!(report, format!("{bad_local} asked to fail"));

        let mut good = connect(addr);
        good.write_all(b"still here\n").unwrap();
        assert_eq!(read_to_end(&mut good).unwrap(), b"still here\n");
        assert_eq!(server.stats().errors, 1);
        running.shutdown();
    }
}

/// Counts handler calls and refuses every peer.
struct Refusing {
    handled: Arc<AtomicUsize>,
}

impl RequestHandler<TcpRequest> for Refusing {
    fn verify_request(&self, _request: &TcpRequest) -> bool {
        false
    }

    fn setup(&self, _request: &mut TcpRequest) -> io::Result<()> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn handle(&self, _request: &mut TcpRequest) -> io::Result<()> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// From `test_shutdown_request_called_if_verify_request_false`: a refused
/// peer's connection is closed once, and no handler method runs.
#[test]
fn refused_peer_is_closed_once_without_running_the_handler() {
    init_logging();
    let handled = Arc::new(AtomicUsize::new(0));
    let (server, running) = serve(ThreadingTcpServer::bind(
        "127.0.0.1:0",
        Refusing {
            handled: Arc::clone(&handled),
        },
    ));
    let addr = *server.local_addr();
    let mut client = connect(addr);
    assert_eq!(
        read_to_end(&mut client).unwrap(),
        b"",
        "the refused client sees a clean close"
    );
    eventually("the refusal is counted", || server.stats().refused == 1);
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.refused, stats.errors), (1, 1, 0));
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    running.shutdown();
}

/// From `test_threads_reaped`: requests handed to workers through
/// `handle_request` are finished and their workers joined when the server
/// is dropped.
#[test]
fn dropping_a_threading_server_joins_its_workers() {
    init_logging();
    let server = ThreadingTcpServer::builder()
        .worker_name_prefix("cpy-reap")
        .bind("127.0.0.1:0", line_echo)
        .unwrap();
    let addr = *server.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut client = connect(addr);
            client.write_all(TEST_STR).unwrap();
            client
        })
        .collect();
    for _ in 0..3 {
        assert!(server.handle_request().unwrap());
    }
    for mut client in clients {
        assert_eq!(read_to_end(&mut client).unwrap(), TEST_STR);
    }
    within(TIMEOUT, "drop", move || drop(server));
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("cpy-reap");
}

/// Counts `handle_timeout` calls.
struct TimeoutCounter(Arc<AtomicUsize>);

impl RequestHandler<TcpRequest> for TimeoutCounter {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        line_echo(request)
    }

    fn handle_timeout(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// From `BaseServer.handle_request` with `timeout` set: no request within
/// the timeout calls `handle_timeout`; a request is served.
#[test]
fn handle_request_honours_the_timeout() {
    init_logging();
    let timeouts = Arc::new(AtomicUsize::new(0));
    let server = TcpServer::builder()
        .timeout(Duration::from_millis(20))
        .bind("127.0.0.1:0", TimeoutCounter(Arc::clone(&timeouts)))
        .unwrap();
    assert!(!server.handle_request().unwrap());
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);

    let mut client = connect(*server.local_addr());
    client.write_all(TEST_STR).unwrap();
    assert!(server.handle_request().unwrap());
    assert_eq!(read_to_end(&mut client).unwrap(), TEST_STR);
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
}

/// A handler can shut its own server down (in CPython this deadlocks
/// unless called from another thread).
#[test]
fn shutdown_from_inside_a_handler() {
    init_logging();
    for threading in [false, true] {
        let handler = |request: &mut TcpRequest| {
            request.write_all(b"stopping")?;
            request.server().shutdown();
            Ok(())
        };
        let (server, running) = if threading {
            serve(ThreadingTcpServer::bind("127.0.0.1:0", handler))
        } else {
            serve(TcpServer::bind("127.0.0.1:0", handler))
        };
        let addr = *server.local_addr();
        let mut client = connect(addr);
        assert_eq!(read_to_end(&mut client).unwrap(), b"stopping");
        running.join();
    }
}

/// `service_actions` runs on its interval while the server is idle.
#[test]
fn service_actions_run_on_their_interval() {
    init_logging();
    struct Ticker(Sender<()>);
    impl RequestHandler<TcpRequest> for Ticker {
        fn handle(&self, _request: &mut TcpRequest) -> io::Result<()> {
            Ok(())
        }
        fn service_actions(&self) {
            let _ = self.0.send(());
        }
    }
    let (ticks, ticked) = unbounded();
    let (_server, running) = serve(
        TcpServer::builder()
            .service_interval(Duration::from_millis(5))
            .bind("127.0.0.1:0", Ticker(ticks)),
    );
    for _ in 0..3 {
        ticked.recv_timeout(TIMEOUT).expect("service_actions ran");
    }
    running.shutdown();
}

/// Reading the stream request line by line, as with Python's `rfile`,
/// keeps bytes that arrived together with the first line.
#[test]
fn buffered_lines_survive_coalesced_packets() {
    init_logging();
    let (server, running) = serve(TcpServer::bind("127.0.0.1:0", |request: &mut TcpRequest| {
        let mut lines = Vec::new();
        for line in BufRead::lines(&mut *request) {
            lines.push(line?);
        }
        let reply = lines.join("|");
        request.write_all(reply.as_bytes())
    }));
    let addr = *server.local_addr();
    let mut client = connect(addr);
    client.write_all(b"one\ntwo\nthree\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "one|two|three");
    running.shutdown();
}

/// CPython's datagram handler: sends the datagram back.
fn datagram_echo(request: &mut UdpRequest) -> io::Result<()> {
    request.reply_data()
}

/// From `test_UDPServer` / `test_ThreadingUDPServer` with `dgram_examine`:
/// a datagram is answered with the expected reply; shutdown leaves no
/// worker behind.
#[test]
fn udp_servers_answer_datagrams() {
    init_logging();
    for threading in [false, true] {
        let (server, running) = if threading {
            serve(
                ThreadingUdpServer::builder()
                    .worker_name_prefix("cpy-udp")
                    .bind("127.0.0.1:0", datagram_echo),
            )
        } else {
            serve(UdpServer::bind("127.0.0.1:0", datagram_echo))
        };
        let addr = *server.local_addr();
        for _ in 0..3 {
            assert_eq!(udp_round_trip(&udp_client(), addr, TEST_STR).unwrap(), TEST_STR);
        }
        running.shutdown();
        assert_eq!(server.stats().workers, 0);
    }
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("cpy-udp");
}

/// From `test_shutdown`, for the datagram servers.
#[test]
fn udp_shutdown_right_after_start_always_returns() {
    init_logging();
    for _ in 0..20 {
        serve(ThreadingUdpServer::bind("127.0.0.1:0", datagram_echo))
            .1
            .shutdown();
        serve(UdpServer::bind("127.0.0.1:0", datagram_echo)).1.shutdown();
    }
}

/// From `test_UnixStreamServer` / `test_ThreadingUnixStreamServer`.
#[test]
fn unix_stream_servers_serve_sequential_clients() {
    init_logging();
    fn unix_line_echo(request: &mut UnixStreamRequest) -> io::Result<()> {
        let mut line = Vec::new();
        request.read_until(b'\n', &mut line)?;
        request.write_all(&line)
    }
    let dir = tempfile::tempdir().unwrap();
    for threading in [false, true] {
        let path = dir.path().join(format!("stream-{threading}.sock"));
        let (_server, running) = if threading {
            serve(
                ThreadingUnixStreamServer::builder()
                    .worker_name_prefix("cpy-unix")
                    .bind(&path, unix_line_echo),
            )
        } else {
            serve(UnixStreamServer::bind(&path, unix_line_echo))
        };
        for _ in 0..3 {
            let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
            client.set_read_timeout(Some(TIMEOUT)).unwrap();
            client.write_all(TEST_STR).unwrap();
            assert_eq!(read_to_end(&mut client).unwrap(), TEST_STR);
        }
        running.shutdown();
        assert!(!path.exists(), "the socket file is removed");
    }
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("cpy-unix");
}

/// From `test_UnixDatagramServer` / `test_ThreadingUnixDatagramServer`:
/// the client binds its own path to receive the reply.
#[test]
fn unix_datagram_servers_answer_bound_clients() {
    init_logging();
    fn unix_datagram_echo(request: &mut UnixDatagramRequest) -> io::Result<()> {
        request.reply_data()
    }
    let dir = tempfile::tempdir().unwrap();
    for threading in [false, true] {
        let path = dir.path().join(format!("dgram-{threading}.sock"));
        let (_server, running) = if threading {
            serve(ThreadingUnixDatagramServer::bind(&path, unix_datagram_echo))
        } else {
            serve(UnixDatagramServer::bind(&path, unix_datagram_echo))
        };
        let client_path = dir.path().join(format!("client-{threading}.sock"));
        let client = std::os::unix::net::UnixDatagram::bind(&client_path).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.send_to(TEST_STR, &path).unwrap();
        let mut reply = [0u8; 64];
        let len = client.recv(&mut reply).unwrap();
        assert_eq!(&reply[..len], TEST_STR);
        running.shutdown();
        assert!(!path.exists(), "the socket file is removed");
    }
}

/// From `BaseServer.handle_request` with `timeout`, for UDP.
#[test]
fn udp_handle_request_honours_the_timeout() {
    init_logging();
    struct Counting(Arc<AtomicUsize>);
    impl RequestHandler<UdpRequest> for Counting {
        fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
            request.reply_data()
        }
        fn handle_timeout(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let timeouts = Arc::new(AtomicUsize::new(0));
    let server = ThreadingUdpServer::builder()
        .timeout(Duration::from_millis(20))
        .bind("127.0.0.1:0", Counting(Arc::clone(&timeouts)))
        .unwrap();
    assert!(!server.handle_request().unwrap());
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    let client = udp_client();
    client.send_to(TEST_STR, server.local_addr()).unwrap();
    assert!(server.handle_request().unwrap());
    let mut reply = [0u8; 64];
    let len = recv_from_only(&client, *server.local_addr(), &mut reply).unwrap();
    assert_eq!(&reply[..len], TEST_STR);
}
