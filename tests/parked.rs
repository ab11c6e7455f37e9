//! The parked servers: between requests a connection waits in the
//! server's readiness set, and workers serve one request at a time.

mod util;

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::echo::{FramedUppercase, Uppercase};
use socketserver::framing::{BufStream, Framed};
use socketserver::{
    KeepAliveHandler, Next, OverloadPolicy, ParkedTcpServer, ParkedUnixStreamServer, Server, TcpRequest,
    ThreadingTcpServer, UnixStreamRequest,
};
use util::{TIMEOUT, connect, eventually, init_logging, read_to_end, round_trip, serve};

/// Answers each line with its number on the connection; "bye" closes,
/// "panic" panics.
#[derive(Default)]
struct Counter {
    opened: AtomicUsize,
    closed: Arc<AtomicUsize>,
    serviced: Arc<AtomicUsize>,
}

impl KeepAliveHandler<TcpRequest> for Counter {
    type State = u64;

    fn open(&self, request: &mut TcpRequest) -> io::Result<u64> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        writeln!(request, "hello")?;
        Ok(0)
    }

    fn handle_one(&self, request: &mut TcpRequest, seen: &mut u64) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        let line = line.trim_end();
        if line == "panic" {
            panic!("asked to");
        }
        *seen += 1;
        writeln!(request, "{seen} {line}")?;
        Ok(if line == "bye" {
            Next::Close
        } else {
            Next::KeepOpen
        })
    }

    fn close(&self, _seen: u64) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }

    fn service_actions(&self) {
        self.serviced.fetch_add(1, Ordering::SeqCst);
    }
}

/// A line client for [`Counter`].
struct LineClient {
    reader: std::io::BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineClient {
    fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = connect(addr);
        let mut client = LineClient {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert_eq!(client.line(), "hello");
        client
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.writer, "{line}").unwrap();
        self.line()
    }
}

#[test]
fn state_survives_between_requests_and_the_connection_waits_parked() {
    init_logging();
    let (server, running) = serve(ParkedTcpServer::bind("127.0.0.1:0", Counter::default()));
    let addr = *server.local_addr();
    let mut a = LineClient::connect(addr);
    let mut b = LineClient::connect(addr);
    assert_eq!(a.ask("x"), "1 x");
    assert_eq!(a.ask("y"), "2 y");
    assert_eq!(b.ask("z"), "1 z");
    assert_eq!(a.ask("w"), "3 w");
    eventually("both connections wait parked", || server.stats().parked == 2);
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.active), (2, 2), "{stats:?}");
    drop((a, b));
    eventually("the closed connections are gone", || server.stats().active == 0);
    assert_eq!(server.stats().parked, 0);
    running.shutdown();
}

#[test]
fn close_after_a_request_closes_and_gives_the_state_back() {
    init_logging();
    let handler = Counter::default();
    let server = ParkedTcpServer::bind("127.0.0.1:0", handler).unwrap();
    let addr = *server.local_addr();
    let (handle, running) = serve(Ok(server));
    let mut client = LineClient::connect(addr);
    assert_eq!(client.ask("one"), "1 one");
    assert_eq!(client.ask("bye"), "2 bye");
    assert_eq!(read_to_end(&mut client.reader).unwrap(), b"", "closed after bye");
    eventually("the connection is counted out", || handle.stats().active == 0);
    running.shutdown();
}

/// A client whose last request comes with the end of its stream (it
/// closes, or shuts its write side, right after sending it) is answered
/// and closed at once, its `close()` run: the readiness event that brought
/// the request brought the end of stream too, and no other event follows
/// it. The idle timeout is far beyond the test's bound, so a connection
/// left parked fails it.
#[test]
fn a_client_that_closes_right_after_its_last_request_is_closed_at_once() {
    init_logging();
    let handler = Counter::default();
    let closed = Arc::clone(&handler.closed);
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .idle_timeout(Duration::from_secs(60))
            .bind("127.0.0.1:0", handler),
    );
    let addr = *server.local_addr();
    const CLIENTS: usize = 20;
    for i in 0..CLIENTS {
        let mut client = LineClient::connect(addr);
        assert_eq!(client.ask("first"), "1 first", "client {i}");
        writeln!(client.writer, "last").unwrap();
        if i % 2 == 0 {
            // Closes at once: the reply may meet a closed socket.
            drop(client);
        } else {
            client.writer.shutdown(std::net::Shutdown::Write).unwrap();
            assert_eq!(client.line(), "2 last", "client {i}");
            assert_eq!(
                read_to_end(&mut client.reader).unwrap(),
                b"",
                "client {i}: then closed"
            );
        }
    }
    eventually("every connection is closed", || {
        let stats = server.stats();
        closed.load(Ordering::SeqCst) == CLIENTS && stats.active == 0 && stats.parked == 0
    });
    assert_eq!(
        server.stats().timed_out,
        0,
        "closed for the end of stream, not for idling"
    );
    running.shutdown();
}

/// Holds the request "wait" until the test opens the gate; answers every
/// line with its number on the connection; counts the closes.
struct Gated {
    entered: Mutex<mpsc::Sender<()>>,
    gate: Mutex<mpsc::Receiver<()>>,
    closed: Arc<AtomicUsize>,
}

impl KeepAliveHandler<TcpRequest> for Gated {
    type State = u64;

    fn handle_one(&self, request: &mut TcpRequest, seen: &mut u64) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        let line = line.trim_end();
        if line == "wait" {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.gate.lock().unwrap().recv_timeout(TIMEOUT);
        }
        *seen += 1;
        writeln!(request, "{seen} {line}")?;
        Ok(Next::KeepOpen)
    }

    fn close(&self, _seen: u64) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// A request and the end of stream behind it that both come while a
/// worker serves the request before them: the other worker takes their
/// readiness event for a busy connection, and no event follows an end.
/// The connection is answered both requests and closed, not parked with
/// its end unread until the idle timeout (60 s, beyond the test's bound).
#[test]
fn a_request_and_the_end_that_come_while_busy_are_both_seen() {
    init_logging();
    let (entered_tx, entered) = mpsc::channel();
    let (open_gate, gate) = mpsc::channel();
    let closed = Arc::new(AtomicUsize::new(0));
    let handler = Gated {
        entered: Mutex::new(entered_tx),
        gate: Mutex::new(gate),
        closed: Arc::clone(&closed),
    };
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(2)
            .idle_timeout(Duration::from_secs(60))
            .bind("127.0.0.1:0", handler),
    );
    let addr = *server.local_addr();
    let mut busy = connect(addr);
    // One round trip first: parked once, the connection is in the poller.
    busy.write_all(b"first\n").unwrap();
    let mut reply = String::new();
    io::BufReader::new(&busy).read_line(&mut reply).unwrap();
    assert_eq!(reply, "1 first\n");
    busy.write_all(b"wait\n").unwrap();
    entered
        .recv_timeout(TIMEOUT)
        .expect("the first request reaches the handler");
    // While a worker holds the connection: its last request, and its end.
    busy.write_all(b"last\n").unwrap();
    busy.shutdown(Shutdown::Write).unwrap();
    // The poller reports in order: by the time the other worker answers a
    // connection made after those, it has taken their event.
    let mut other = connect(addr);
    other.write_all(b"hi\n").unwrap();
    reply.clear();
    io::BufReader::new(&other).read_line(&mut reply).unwrap();
    assert_eq!(reply, "1 hi\n");
    open_gate.send(()).unwrap();
    let mut replies = String::new();
    busy.read_to_string(&mut replies)
        .expect("both requests answered, then the connection closed by the server");
    assert_eq!(replies, "2 wait\n3 last\n");
    eventually("its close() ran", || closed.load(Ordering::SeqCst) == 1);
    assert_eq!(server.stats().timed_out, 0);
    running.shutdown();
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    init_logging();
    let idle = Duration::from_millis(200);
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .idle_timeout(idle)
            .bind("127.0.0.1:0", Counter::default()),
    );
    let addr = *server.local_addr();
    let mut client = LineClient::connect(addr);
    // Before the request: the server parks the connection after it.
    let quiet_since = Instant::now();
    assert_eq!(client.ask("a"), "1 a");
    // The server closes it; the read ends with end-of-file.
    assert_eq!(read_to_end(&mut client.reader).unwrap(), b"");
    let waited = quiet_since.elapsed();
    assert!(waited >= idle, "closed after {waited:?}, before the idle timeout");
    assert!(waited < idle + Duration::from_secs(3), "closed after {waited:?}");
    eventually("it is counted as timed out", || server.stats().timed_out == 1);
    // An active client is not closed: requests keep it alive.
    let mut busy = LineClient::connect(addr);
    let until = Instant::now() + idle * 3;
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        assert_eq!(busy.ask("ping"), format!("{n} ping"));
        thread::sleep(idle / 4);
    }
    running.shutdown();
}

#[test]
fn a_stalled_request_is_cut_off_and_frees_its_worker() {
    init_logging();
    let request_timeout = Duration::from_millis(300);
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(1)
            .request_timeout(request_timeout)
            .bind("127.0.0.1:0", FramedUppercase),
    );
    let addr = *server.local_addr();
    // Half a frame: a length of 10, then 3 bytes, then nothing.
    let mut stalled = connect(addr);
    stalled.write_all(&10u32.to_be_bytes()).unwrap();
    stalled.write_all(b"abc").unwrap();
    eventually("the only worker is busy with it", || {
        let stats = server.stats();
        stats.active == 1 && stats.parked == 0
    });
    // Another client waits for that one worker, then is served.
    let started = Instant::now();
    let mut framed = Framed::buffered(connect(addr));
    framed.write_frame(b"hello").unwrap();
    assert_eq!(framed.read_frame().unwrap().unwrap(), b"HELLO");
    let waited = started.elapsed();
    assert!(waited < request_timeout + Duration::from_secs(3), "{waited:?}");
    // The stalled one was closed.
    let mut rest = Vec::new();
    match stalled.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty()),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    eventually("the cut-off is counted", || server.stats().timed_out >= 1);
    assert!(
        server.stats().errors >= 1,
        "the timeout is reported to handle_error"
    );
    running.shutdown();
}

#[test]
fn pipelined_requests_already_buffered_are_all_served() {
    init_logging();
    let (server, running) = serve(ParkedTcpServer::bind("127.0.0.1:0", FramedUppercase));
    let mut stream = connect(*server.local_addr());
    let mut wire = Vec::new();
    for word in ["one", "two", "three", "four"] {
        socketserver::framing::write_frame(&mut wire, word.as_bytes(), &Default::default()).unwrap();
    }
    // All four in one write: the first read takes them all.
    stream.write_all(&wire).unwrap();
    let mut framed = Framed::new(BufStream::new(stream));
    for word in ["ONE", "TWO", "THREE", "FOUR"] {
        assert_eq!(framed.read_frame().unwrap().unwrap(), word.as_bytes());
    }
    running.shutdown();
}

#[test]
fn a_new_connection_sending_more_than_a_buffer_keeps_being_served() {
    init_logging();
    // One worker: each connection's first bytes overflow its buffer, so it
    // goes back to the queue before it was ever parked; once drained it
    // must still be watched for its next request.
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(1)
            .bind("127.0.0.1:0", FramedUppercase),
    );
    let mut wire = Vec::new();
    for _ in 0..4096 {
        socketserver::framing::write_frame(&mut wire, b"burst", &Default::default()).unwrap();
    }
    for _ in 0..8 {
        let stream = connect(*server.local_addr());
        let mut writer = stream.try_clone().unwrap();
        let mut framed = Framed::new(BufStream::new(stream));
        let burst = wire.clone();
        let sender = thread::spawn(move || writer.write_all(&burst).map(|()| writer));
        for _ in 0..4096 {
            assert_eq!(framed.read_frame().unwrap().unwrap(), b"BURST");
        }
        let mut writer = sender.join().unwrap().unwrap();
        socketserver::framing::write_frame(&mut writer, b"later", &Default::default()).unwrap();
        assert_eq!(
            framed.read_frame().unwrap().unwrap(),
            b"LATER",
            "the drained connection is parked and watched"
        );
    }
    running.shutdown();
}

#[test]
fn a_flooding_client_does_not_starve_the_others() {
    init_logging();
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(1)
            .bind("127.0.0.1:0", FramedUppercase),
    );
    let addr = *server.local_addr();
    // One client sends frames as fast as it can, pipelined, and reads
    // its replies on another thread.
    let flood = connect(addr);
    let mut flood_reader = Framed::new(BufStream::new(flood.try_clone().unwrap()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (mut flood, stop) = (flood.try_clone().unwrap(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut wire = Vec::new();
            for _ in 0..64 {
                socketserver::framing::write_frame(&mut wire, b"flood", &Default::default()).unwrap();
            }
            while !stop.load(Ordering::Acquire) {
                if flood.write_all(&wire).is_err() {
                    break;
                }
            }
        })
    };
    let replies = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (stop, replies) = (Arc::clone(&stop), Arc::clone(&replies));
        thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match flood_reader.read_frame() {
                    Ok(Some(reply)) => {
                        assert_eq!(reply, b"FLOOD");
                        replies.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
        })
    };
    eventually("the flood is being served", || {
        replies.load(Ordering::Relaxed) >= 64
    });
    // Meanwhile, others are served in turn.
    let before = replies.load(Ordering::Relaxed);
    let mut worst = Duration::ZERO;
    for round in 0..20 {
        let mut other = Framed::buffered(connect(addr));
        let started = Instant::now();
        let message = format!("round {round}");
        other.write_frame(message.as_bytes()).unwrap();
        assert_eq!(
            other.read_frame().unwrap().unwrap(),
            message.to_uppercase().as_bytes()
        );
        worst = worst.max(started.elapsed());
    }
    let during = replies.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Release);
    let _ = flood.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    reader.join().unwrap();
    // Closed with replies unread: the server's writes to it fail at once.
    drop(flood);
    // Served between the flood's requests, not after all of them; and the
    // flood went on meanwhile.
    assert!(worst < Duration::from_secs(2), "a fresh client waited {worst:?}");
    assert!(during > 0, "the flood stopped being served while the others were");
    running.shutdown();
}

/// A handler whose state is large (96 KiB, held by value between
/// requests) and which lingers a little after each reply: a client that
/// answers at once has sent its next request by then, so a worker serves
/// several of the connection's requests in a row.
struct Lingering;

/// [`Lingering`]'s state: a request count, and bytes it marks as it goes.
struct Big {
    seen: u64,
    marks: [u8; 96 * 1024],
}

impl Default for Big {
    fn default() -> Self {
        Big {
            seen: 0,
            marks: [0; 96 * 1024],
        }
    }
}

impl KeepAliveHandler<TcpRequest> for Lingering {
    type State = Big;

    fn handle_one(&self, request: &mut TcpRequest, state: &mut Big) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        // The mark the request before left, at the far end of the state.
        let before = state.marks[state.marks.len() - 1 - state.seen as usize % 1024];
        state.seen += 1;
        let at = state.marks.len() - 1 - state.seen as usize % 1024;
        state.marks[at] = state.seen as u8;
        writeln!(request, "{} {before}", state.seen)?;
        request.flush()?;
        thread::sleep(Duration::from_micros(100));
        Ok(Next::KeepOpen)
    }
}

/// Requests served one after another on a worker, each read as soon as
/// the one before is answered, keep one copy of the handler's state, not
/// one per request: a 96 KiB state behind a quick client does not run a
/// worker out of stack, and it survives from request to request.
#[test]
fn requests_served_in_a_row_keep_a_large_state_once() {
    init_logging();
    talk_to_lingering(
        ParkedTcpServer::builder()
            .workers(1)
            .bind("127.0.0.1:0", Lingering),
    );
    // The same handler on a threading server, which holds the state on
    // a connection's thread.
    talk_to_lingering(ThreadingTcpServer::bind("127.0.0.1:0", Lingering));
}

fn talk_to_lingering<S: Server<Addr = std::net::SocketAddr>>(server: io::Result<S>) {
    let (server, running) = serve(server);
    // Two clients, each on its own thread: each sends its next request as
    // soon as it has its reply.
    let addr = *server.local_addr();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let stream = connect(addr);
                let mut reader = io::BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                for n in 1..=500u64 {
                    writer.write_all(b"next\n").unwrap();
                    let mut reply = String::new();
                    reader.read_line(&mut reply).unwrap();
                    assert_eq!(reply, format!("{n} {}\n", (n - 1) as u8));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(server.stats().errors, 0);
    running.shutdown();
}

/// Answers a line, then takes 5 ms more.
struct Slow;

impl KeepAliveHandler<TcpRequest> for Slow {
    type State = ();

    fn handle_one(&self, request: &mut TcpRequest, _state: &mut ()) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        write!(request, "{line}")?;
        request.flush()?;
        // Busy after the reply: by the time it returns, the client has
        // sent its next request, which the worker may read at once.
        thread::sleep(Duration::from_millis(5));
        Ok(Next::KeepOpen)
    }
}

/// Sixteen clients, one worker, slow requests: the worker does not stay
/// with one connection while the others' requests wait (reading a
/// connection's next requests at once stops 1 ms after it starts), so
/// each gets its turn within its request deadline and none is cut off.
/// (Unbounded, a chain of 32 requests would hold the others 160 ms each,
/// and the last of sixteen found by one wait 2.4 s; bounded, each chain
/// is at most two requests, 10 ms, and the last waits about 150 ms: a
/// margin of six times under the deadline, for a busy machine.)
#[test]
fn one_worker_takes_many_busy_connections_in_turn() {
    init_logging();
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(1)
            .request_timeout(Duration::from_secs(1))
            .bind("127.0.0.1:0", Slow),
    );
    let addr = *server.local_addr();
    let clients: Vec<_> = (0..16)
        .map(|client| {
            thread::spawn(move || {
                let stream = connect(addr);
                let mut reader = io::BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                for n in 0..40 {
                    let line = format!("client {client} request {n}\n");
                    writer.write_all(line.as_bytes()).unwrap();
                    let mut reply = String::new();
                    reader.read_line(&mut reply).unwrap();
                    assert_eq!(reply, line, "answered, not cut off");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let stats = server.stats();
    assert_eq!((stats.timed_out, stats.errors), (0, 0));
    running.shutdown();
}

#[test]
fn shutdown_with_parked_connections_is_immediate() {
    init_logging();
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .shutdown_grace(Duration::from_secs(30))
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut clients: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();
    for client in &mut clients {
        assert_eq!(round_trip(client, b"x").unwrap(), b"X");
    }
    eventually("all 200 are parked", || server.stats().parked == 200);
    let took = running.shutdown();
    // No request is in flight: the 30 s grace does not apply.
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for client in &mut clients {
        let mut rest = Vec::new();
        match client.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty()),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
    }
}

#[test]
fn every_worker_waits_in_the_poller_once_serving_begins() {
    init_logging();
    // A request holding one of two workers must not keep the other from
    // serving: both wait in the poller from the start (a worker once sat
    // waiting for a job for its whole keep-alive when the other had taken
    // both calls to the poller). Several servers: each start is a race.
    for round in 0..8 {
        let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        let handler = move |req: &mut TcpRequest| -> io::Result<Next> {
            let mut line = String::new();
            req.read_line(&mut line)?;
            if line == "hold\n" {
                let _ = entered_tx.try_send(());
                // Longer than the other client waits: only the other
                // worker can answer it in time.
                let _ = released.recv_timeout(2 * TIMEOUT);
            }
            req.write_all(line.to_uppercase().as_bytes())?;
            Ok(Next::KeepOpen)
        };
        let (server, running) = serve(ParkedTcpServer::builder().workers(2).bind("127.0.0.1:0", handler));
        let addr = *server.local_addr();
        let mut held = connect(addr);
        held.write_all(b"hold\n").unwrap();
        entered.recv_timeout(TIMEOUT).unwrap();
        let mut other = connect(addr);
        assert_eq!(
            round_trip(&mut other, b"other\n").unwrap_or_else(|e| panic!("round {round}: {e}")),
            b"OTHER\n",
            "round {round}"
        );
        release.send_timeout((), TIMEOUT).unwrap();
        let mut reply = [0u8; 5];
        held.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"HOLD\n");
        running.shutdown();
    }
}

#[test]
fn a_request_in_flight_finishes_within_the_grace_period() {
    init_logging();
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let handler = move |req: &mut TcpRequest| -> io::Result<Next> {
        let mut byte = [0u8; 1];
        req.read_exact(&mut byte)?;
        let _ = entered_tx.try_send(());
        let _ = released.recv_timeout(TIMEOUT);
        req.write_all(b"done")?;
        Ok(Next::KeepOpen)
    };
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .shutdown_grace(Duration::from_secs(10))
            .bind("127.0.0.1:0", handler),
    );
    let mut client = connect(*server.local_addr());
    client.write_all(b"x").unwrap();
    entered.recv_timeout(TIMEOUT).unwrap();
    let stop = running.stop.clone();
    let stopping = thread::spawn(move || stop.shutdown());
    // Shutdown waits for the request; release it, and its reply arrives.
    eventually("shutdown is requested", || server.is_shutdown_requested());
    release.send(()).unwrap();
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"done");
    stopping.join().unwrap();
    running.join();
}

#[test]
fn a_request_sent_to_a_parked_connection_as_the_server_stops_is_served() {
    init_logging();
    // One worker, held by a request until released.
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let handler = move |req: &mut TcpRequest| -> io::Result<Next> {
        let mut line = String::new();
        if req.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        if line.trim_end() == "hold" {
            let _ = entered_tx.try_send(());
            let _ = released.recv_timeout(TIMEOUT);
        }
        req.write_all(line.to_uppercase().as_bytes())?;
        Ok(Next::KeepOpen)
    };
    let (server, running) = serve(ParkedTcpServer::builder().workers(1).bind("127.0.0.1:0", handler));
    let addr = *server.local_addr();
    let mut parked = std::io::BufReader::new(connect(addr));
    parked.get_mut().write_all(b"first\n").unwrap();
    let mut reply = String::new();
    parked.read_line(&mut reply).unwrap();
    assert_eq!(reply, "FIRST\n");
    let mut holder = connect(addr);
    holder.write_all(b"hold\n").unwrap();
    entered.recv_timeout(TIMEOUT).unwrap();
    // The parked connection's next request arrives while the only worker
    // is busy: nobody watches the poller. Then the server is told to stop.
    parked.get_mut().write_all(b"second\n").unwrap();
    let stop = running.stop.clone();
    let stopping = thread::spawn(move || stop.shutdown());
    eventually("shutdown is requested", || server.is_shutdown_requested());
    release.send(()).unwrap();
    // Served within the grace period, not closed unread.
    reply.clear();
    parked.read_line(&mut reply).unwrap();
    assert_eq!(reply, "SECOND\n");
    assert_eq!(read_to_end(&mut parked).unwrap(), b"", "then closed");
    stopping.join().unwrap();
    running.join();
}

#[test]
fn requests_sent_to_idle_parked_connections_as_the_server_stops_are_all_served() {
    init_logging();
    // The workers wait in the poller, so the requests and the shutdown
    // request reach the same wait: none may be dropped with it.
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(2)
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    let mut clients: Vec<TcpStream> = (0..64).map(|_| connect(addr)).collect();
    for client in &mut clients {
        assert_eq!(round_trip(client, b"first").unwrap(), b"FIRST");
    }
    eventually("every connection is parked", || server.stats().parked == 64);
    for client in &mut clients {
        client.write_all(b"second").unwrap();
    }
    let stopping = {
        let stop = running.stop.clone();
        thread::spawn(move || stop.shutdown())
    };
    for (i, client) in clients.iter_mut().enumerate() {
        let mut reply = [0u8; 6];
        client
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("client {i}: its request was not served: {e}"));
        assert_eq!(&reply, b"SECOND", "client {i}");
        assert_eq!(read_to_end(client).unwrap(), b"", "client {i}: then closed");
    }
    stopping.join().unwrap();
    running.join();
}

#[test]
fn a_panic_closes_only_its_connection() {
    init_logging();
    let (server, running) = serve(ParkedTcpServer::bind("127.0.0.1:0", Counter::default()));
    let addr = *server.local_addr();
    let mut calm = LineClient::connect(addr);
    let mut doomed = LineClient::connect(addr);
    assert_eq!(calm.ask("a"), "1 a");
    writeln!(doomed.writer, "panic").unwrap();
    assert_eq!(read_to_end(&mut doomed.reader).unwrap(), b"");
    assert_eq!(calm.ask("b"), "2 b");
    eventually("the panic is counted", || server.stats().panics == 1);
    running.shutdown();
}

#[test]
fn verify_request_refuses_before_open() {
    struct LoopbackOnlyNot;
    impl KeepAliveHandler<TcpRequest> for LoopbackOnlyNot {
        type State = ();
        fn verify_request(&self, _request: &TcpRequest) -> bool {
            false
        }
        fn open(&self, _request: &mut TcpRequest) -> io::Result<()> {
            panic!("open ran for a refused connection");
        }
        fn handle_one(&self, _request: &mut TcpRequest, _state: &mut ()) -> io::Result<Next> {
            panic!("handle_one ran for a refused connection");
        }
    }
    init_logging();
    let (server, running) = serve(ParkedTcpServer::bind("127.0.0.1:0", LoopbackOnlyNot));
    let mut client = connect(*server.local_addr());
    assert_eq!(read_to_end(&mut client).unwrap(), b"");
    eventually("the refusal is counted", || server.stats().refused == 1);
    assert_eq!(server.stats().panics, 0);
    running.shutdown();
}

#[test]
fn max_connections_blocks_or_rejects() {
    init_logging();
    for policy in [OverloadPolicy::Block, OverloadPolicy::Reject] {
        let (server, running) = serve(
            ParkedTcpServer::builder()
                .max_connections(2)
                .overload_policy(policy)
                .bind("127.0.0.1:0", Uppercase),
        );
        let addr = *server.local_addr();
        let mut a = connect(addr);
        let mut b = connect(addr);
        assert_eq!(round_trip(&mut a, b"a").unwrap(), b"A");
        assert_eq!(round_trip(&mut b, b"b").unwrap(), b"B");
        let mut c = connect(addr);
        c.write_all(b"c").unwrap();
        match policy {
            OverloadPolicy::Reject => {
                // Closed without being served (reset: it had sent a byte).
                let mut rest = Vec::new();
                match c.read_to_end(&mut rest) {
                    Ok(_) => assert!(rest.is_empty(), "{policy:?}"),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
                }
                eventually("the refusal is counted", || server.stats().refused == 1);
            }
            _ => {
                // Waits in the backlog until a place frees.
                c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                let mut reply = [0u8; 1];
                let waited = c.read_exact(&mut reply).unwrap_err();
                assert!(
                    matches!(waited.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                    "{waited}"
                );
                drop(a);
                c.set_read_timeout(Some(TIMEOUT)).unwrap();
                c.read_exact(&mut reply).unwrap();
                assert_eq!(&reply, b"C");
            }
        }
        running.shutdown();
    }
}

#[test]
fn unix_socket_connections_park_too() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parked.sock");
    let handler = |req: &mut UnixStreamRequest| -> io::Result<Next> {
        let mut line = String::new();
        if req.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        req.write_all(line.to_uppercase().as_bytes())?;
        Ok(Next::KeepOpen)
    };
    let (server, running) = serve(ParkedUnixStreamServer::bind(&path, handler));
    let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for word in ["unix", "parked"] {
        writeln!(writer, "{word}").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), word.to_uppercase());
    }
    eventually("parked between requests", || server.stats().parked == 1);
    running.shutdown();
    assert!(!path.exists(), "the socket file is removed");
}

#[test]
fn handle_request_serves_in_rounds() {
    init_logging();
    let server = ParkedTcpServer::builder()
        .timeout(Duration::from_millis(50))
        .bind("127.0.0.1:0", Uppercase)
        .unwrap();
    let addr = *server.local_addr();
    assert!(!server.handle_request().unwrap(), "nothing to do: a timeout");
    let mut client = connect(addr);
    // The round accepts it; a worker opens it, serves or parks it.
    let deadline = Instant::now() + TIMEOUT;
    while !server.handle_request().unwrap() {
        assert!(Instant::now() < deadline);
    }
    client.write_all(b"hi").unwrap();
    // A round takes the request in; a worker answers it.
    let answering = thread::spawn(move || {
        let mut reply = [0u8; 2];
        client.read_exact(&mut reply).map(|()| reply)
    });
    let deadline = Instant::now() + TIMEOUT;
    while !answering.is_finished() {
        server.handle_request().unwrap();
        assert!(Instant::now() < deadline, "the request was never served");
    }
    assert_eq!(&answering.join().unwrap().unwrap(), b"HI");
}

/// Echoes a line. After its first reply it waits until the client says it
/// has sent its next request (so that one is in the socket when the
/// handler returns); never longer than TIMEOUT.
struct HoldsUntilSent(Arc<(Mutex<bool>, Condvar)>);

impl KeepAliveHandler<TcpRequest> for HoldsUntilSent {
    type State = ();

    fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        request.write_all(line.as_bytes())?;
        request.flush()?;
        let (open, cv) = &*self.0;
        let guard = open.lock().unwrap();
        let _ = cv.wait_timeout_while(guard, TIMEOUT, |open| !*open).unwrap();
        Ok(Next::KeepOpen)
    }
}

/// `handle_request` "serves at most one request": after the round that
/// took request 1 in, no further request of the connection is served
/// until the next round, even one that has come by the time the handler
/// returns (which `serve_forever`'s workers read at once).
#[test]
fn handle_request_serves_one_request_not_a_chain() {
    init_logging();
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let server = ParkedTcpServer::builder()
        .workers(1)
        .timeout(Duration::from_millis(50))
        .bind("127.0.0.1:0", HoldsUntilSent(Arc::clone(&gate)))
        .unwrap();
    let addr = *server.local_addr();
    let stream = connect(addr);
    let deadline = Instant::now() + TIMEOUT;
    while !server.handle_request().unwrap() {
        assert!(Instant::now() < deadline, "never accepted");
    }
    // Opened and parked before its first request.
    eventually("parked", || server.stats().parked == 1);
    let mut reader = io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    writer.write_all(b"request 1\n").unwrap();
    while !server.handle_request().unwrap() {
        assert!(Instant::now() < deadline, "request 1 never taken");
    }
    // No more rounds from here on: reply 1 comes (within TIMEOUT), and
    // then, for 300 ms, no other.
    let mut answered = 0;
    for n in 1..=5 {
        let mut reply = String::new();
        match reader.read_line(&mut reply) {
            Ok(_) => assert_eq!(reply, format!("request {n}\n")),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("{e}"),
        }
        answered += 1;
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        writer
            .write_all(format!("request {}\n", n + 1).as_bytes())
            .unwrap();
        // Request n+1 is in the server's socket: the handler may return.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }
    assert_eq!(answered, 1, "requests served for one handle_request round");
}

#[test]
fn many_connections_with_random_pauses_get_every_reply() {
    init_logging();
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .workers(4)
            .bind("127.0.0.1:0", FramedUppercase),
    );
    let addr = *server.local_addr();
    const CLIENTS: usize = 100;
    const ROUNDS: usize = 30;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            thread::spawn(move || {
                let mut framed = Framed::buffered(connect(addr));
                let mut seed = client as u64 * 7919 + 1;
                for round in 0..ROUNDS {
                    // A cheap deterministic "random" pause of 0-3 ms.
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    thread::sleep(Duration::from_micros((seed >> 33) % 3000));
                    let message = format!("client {client} round {round} {}", "x".repeat(round * 37));
                    framed.write_frame(message.as_bytes()).unwrap();
                    let reply = framed.read_frame().unwrap().unwrap();
                    assert_eq!(reply, message.to_uppercase().as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.accepted, CLIENTS as u64);
    assert_eq!((stats.errors, stats.panics), (0, 0), "{stats:?}");
    assert!(stats.workers <= 4 + 256, "{stats:?}");
    running.shutdown();
}

#[test]
fn service_actions_run_on_the_service_interval() {
    init_logging();
    let counter = Counter::default();
    let serviced = Arc::clone(&counter.serviced);
    let (server, running) = serve(
        ParkedTcpServer::builder()
            .service_interval(Duration::from_millis(20))
            .bind("127.0.0.1:0", counter),
    );
    // Requests served meanwhile do not stop the housekeeping.
    let mut client = LineClient::connect(*server.local_addr());
    assert_eq!(client.ask("a"), "1 a");
    eventually("service_actions ran several times", || {
        serviced.load(Ordering::SeqCst) >= 3
    });
    assert_eq!(client.ask("b"), "2 b");
    running.shutdown();
}
