//! The tcp mode with an event-driven client (`--driver epoll`): a few
//! threads, each driving its share of the connections through mio, as an
//! async client (or a remote load balancer) would, instead of a thread
//! per connection.
//!
//! On a machine where the clients share the cores with the server, a
//! thread per connection makes the scheduler split the cores among
//! hundreds of client threads and the server's few; an event-driven
//! client takes its fair share and no more, which is what comparing
//! servers with few threads (the parked mode, tokio) needs.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::clients::{Message, Plan};
use crate::record::Recorder;

/// One connection's ping-pong state.
struct Conn {
    stream: TcpStream,
    message: Message,
    reply: Vec<u8>,
    /// Reply bytes received so far.
    got: usize,
    /// Request bytes written so far.
    sent: usize,
    began: Instant,
}

impl Conn {
    fn open(plan: &Plan, client: usize) -> io::Result<Conn> {
        // A blocking connect (bounded by the plan's timeout), then
        // non-blocking for the ping-pong.
        let stream = plan.connect(client)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream: TcpStream::from_std(stream),
            message: Message::new(plan.size, client),
            reply: vec![0; plan.size],
            got: 0,
            sent: 0,
            began: Instant::now(),
        })
    }

    /// Starts the next request.
    fn start(&mut self, now: Instant) {
        self.message.advance();
        self.got = 0;
        self.sent = 0;
        self.began = now;
    }

    /// Writes what is left of the request; true when all of it is out.
    fn write(&mut self) -> io::Result<bool> {
        while self.sent < self.message.sent.len() {
            match step(
                self.stream.write(&self.message.sent[self.sent..]),
                io::ErrorKind::WriteZero,
            )? {
                Some(n) => self.sent += n,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Reads what has come of the reply; true when all of it has.
    fn read(&mut self) -> io::Result<bool> {
        while self.got < self.reply.len() {
            match step(
                self.stream.read(&mut self.reply[self.got..]),
                io::ErrorKind::UnexpectedEof,
            )? {
                Some(n) => self.got += n,
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// One non-blocking read or write: the bytes moved (none after a signal),
/// `None` if the socket would block, `at_zero` if it moved nothing.
fn step(result: io::Result<usize>, at_zero: io::ErrorKind) -> io::Result<Option<usize>> {
    match result {
        Ok(0) => Err(at_zero.into()),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(0)),
        Err(e) => Err(e),
    }
}

/// Waits for events until `timeout`; a signal ends the wait early, with
/// none.
fn wait(poll: &mut Poll, events: &mut Events, timeout: std::time::Duration) -> io::Result<()> {
    match poll.poll(events, Some(timeout)) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}

/// Runs a driver with a new poller, recording the error that ends it
/// early (the poller failing), if any.
fn with_poller(plan: &Plan, drive: impl FnOnce(Poll, &mut Recorder) -> io::Result<()>) -> Recorder {
    let mut recorder = plan.recorder();
    if let Err(e) = Poll::new().and_then(|poll| drive(poll, &mut recorder)) {
        recorder.error(&e);
    }
    recorder
}

/// Drives `clients` (the client numbers of this thread) in a closed loop
/// until the window ends; a connection that fails or times out is
/// replaced.
pub fn tcp(plan: &Plan, clients: Vec<usize>) -> Recorder {
    with_poller(plan, |poll, recorder| drive_tcp(plan, clients, poll, recorder))
}

fn drive_tcp(plan: &Plan, clients: Vec<usize>, mut poll: Poll, recorder: &mut Recorder) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = clients.iter().map(|_| None).collect();
    let end = plan.window.end;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        // (Re)connect and send on every connection not in flight; time
        // out those whose reply is overdue.
        for (index, (slot, &client)) in conns.iter_mut().zip(&clients).enumerate() {
            if let Some(conn) = slot
                && now.duration_since(conn.began) > plan.timeout
            {
                recorder.error(&io::Error::new(io::ErrorKind::TimedOut, "no reply in time"));
                *slot = None;
            }
            if slot.is_none() {
                match Conn::open(plan, client) {
                    Ok(mut conn) => {
                        let token = Token(index);
                        let registered = poll.registry().register(
                            &mut conn.stream,
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        );
                        conn.start(now);
                        match registered.and_then(|()| conn.write()) {
                            Ok(_) => *slot = Some(conn),
                            Err(e) => recorder.error(&e),
                        }
                    }
                    Err(e) => {
                        recorder.error(&e);
                        plan.pause_after_failure();
                    }
                }
            }
        }
        let timeout = plan.timeout.min(end.saturating_duration_since(Instant::now()));
        wait(&mut poll, &mut events, timeout)?;
        for event in events.iter() {
            let Token(index) = event.token();
            let Some(slot) = conns.get_mut(index) else {
                continue;
            };
            let Some(conn) = slot.as_mut() else { continue };
            // Write what is left, then read what has come; a reply whole
            // starts the next request at once.
            let progressed = conn.write().and_then(|_| conn.read());
            match progressed {
                Ok(false) => {}
                Ok(true) => {
                    if conn.reply == conn.message.expected {
                        recorder.success(conn.began);
                        let now = Instant::now();
                        if now >= end {
                            continue;
                        }
                        conn.start(now);
                        if let Err(e) = conn.write() {
                            recorder.error(&e);
                            *slot = None;
                        }
                    } else {
                        // Out of step: start again on a new connection.
                        recorder.mismatch();
                        *slot = None;
                    }
                }
                Err(e) => {
                    recorder.error(&e);
                    *slot = None;
                }
            }
        }
    }
}

/// Slow clients (`slow` mode): every connection sends one byte every
/// `interval` (their schedules spread over it) and checks the byte that
/// comes back. What a slowloris attack does to a server that gives each
/// connection a thread; a parked server holds them all in its poller.
pub fn slow(plan: &Plan, clients: Vec<usize>, interval: std::time::Duration) -> Recorder {
    with_poller(plan, |poll, recorder| {
        drive_slow(plan, clients, interval, poll, recorder)
    })
}

fn drive_slow(
    plan: &Plan,
    clients: Vec<usize>,
    interval: std::time::Duration,
    mut poll: Poll,
    recorder: &mut Recorder,
) -> io::Result<()> {
    let count = clients.len().max(1) as u32;
    let start = Instant::now();
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(clients.len());
    // When each connection sends next, and whether it waits for a reply.
    let mut next: Vec<Instant> = Vec::with_capacity(clients.len());
    let mut waiting: Vec<bool> = vec![false; clients.len()];
    for (index, &client) in clients.iter().enumerate() {
        let conn = Conn::open(plan, client).and_then(|mut conn| {
            conn.message = Message::new(1, client);
            conn.reply = vec![0; 1];
            poll.registry()
                .register(&mut conn.stream, Token(index), Interest::READABLE)
                .map(|()| conn)
        });
        match conn {
            Ok(conn) => conns.push(Some(conn)),
            Err(e) => {
                recorder.error(&e);
                conns.push(None);
            }
        }
        next.push(start + interval * index as u32 / count);
    }
    let mut events = Events::with_capacity(1024);
    let end = plan.window.end;
    // Due connections are found by walking the list in schedule order.
    let mut cursor = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        // Send on every connection whose turn has come, in schedule order.
        while !conns.is_empty() {
            let index = cursor % conns.len();
            if next[index] > now {
                break;
            }
            cursor += 1;
            next[index] += interval;
            let Some(conn) = conns[index].as_mut() else {
                continue;
            };
            if waiting[index] {
                continue;
            }
            conn.start(now);
            match conn.write() {
                Ok(_) => waiting[index] = true,
                Err(e) => {
                    recorder.error(&e);
                    conns[index] = None;
                }
            }
        }
        let due = next.get(cursor % conns.len().max(1)).copied().unwrap_or(end);
        let timeout = due.min(end).saturating_duration_since(Instant::now());
        wait(&mut poll, &mut events, timeout)?;
        for event in events.iter() {
            let Token(index) = event.token();
            let Some(Some(conn)) = conns.get_mut(index) else {
                continue;
            };
            match conn.read() {
                Ok(false) => {}
                Ok(true) if conn.reply == conn.message.expected => {
                    recorder.success(conn.began);
                    conn.got = 0;
                    waiting[index] = false;
                }
                Ok(true) => {
                    recorder.mismatch();
                    conns[index] = None;
                }
                Err(e) => {
                    recorder.error(&e);
                    conns[index] = None;
                }
            }
        }
    }
}
