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
//!
//! With `--rate`, each connection keeps its own schedule, as the threads
//! driver's clients do, and the poller wakes for the next batch due.
//!
//! Like the threads driver, it sends nothing after the end of the window
//! and waits for the replies still in flight then, each until its
//! deadline, so that the two drivers count the same server alike.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::batch::{Batch, Cause, Encoding, unsent};
use crate::clients::Plan;
use crate::record::{Recorder, Sent};
use crate::schedule::{Pacer, Turn};

/// One connection and its batch of requests.
struct Conn {
    stream: TcpStream,
    batch: Batch,
}

impl Conn {
    fn open(plan: &Plan, client: usize, deadline: Instant, batch: Batch) -> io::Result<Conn> {
        // A blocking connect (bounded by the deadline), then non-blocking
        // for the ping-pong.
        let stream = plan.connect(client, deadline)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream: TcpStream::from_std(stream),
            batch,
        })
    }

    /// Starts the next batch, due by `deadline`, and writes what it can
    /// of it; false if the connection failed (recorded).
    fn start(&mut self, sent: Sent, deadline: Instant, recorder: &mut Recorder) -> bool {
        self.batch.start(sent, deadline);
        match self.write() {
            Ok(_) => true,
            Err(e) => {
                self.batch.cut(Cause::Broken(e.into()), recorder);
                false
            }
        }
    }

    /// Fails the batch in flight if its deadline has passed by `now`;
    /// true if it did.
    fn expire(&mut self, now: Instant, recorder: &mut Recorder) -> bool {
        if !self.batch.overdue(now) {
            return false;
        }
        self.batch.cut(Cause::Deadline, recorder);
        true
    }

    /// Writes what is left of the requests; true when all of it is out.
    fn write(&mut self) -> io::Result<bool> {
        while !self.batch.unwritten().is_empty() {
            match step(
                self.stream.write(self.batch.unwritten()),
                io::ErrorKind::WriteZero,
            )? {
                Some(n) => self.batch.wrote(n),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Reads what has come of the replies, checking each one whole.
    fn read(&mut self, recorder: &mut Recorder) -> io::Result<()> {
        while self.batch.in_flight().is_some() {
            match step(self.stream.read(self.batch.space()), io::ErrorKind::UnexpectedEof)? {
                Some(n) => self.batch.received(n, recorder),
                None => break,
            }
        }
        Ok(())
    }

    /// Moves the batch in flight on, after an event, recording each
    /// request as its reply comes.
    fn progress(&mut self, recorder: &mut Recorder) -> Progress {
        if self.batch.in_flight().is_none() {
            return Progress::Waiting;
        }
        match self.write().and_then(|_| self.read(recorder)) {
            Ok(()) if self.batch.in_flight().is_some() => Progress::Waiting,
            Ok(()) => match self.batch.outcome() {
                Ok(()) => Progress::Done,
                Err(_) => Progress::Failed,
            },
            Err(e) => {
                let cause = match e.kind() {
                    io::ErrorKind::UnexpectedEof => Cause::Closed,
                    _ => Cause::Broken(e.into()),
                };
                self.batch.cut(cause, recorder);
                Progress::Failed
            }
        }
    }
}

/// Where a connection's batch stands after an event.
enum Progress {
    /// Not all its replies yet (or nothing in flight).
    Waiting,
    /// Every reply came, right and in time.
    Done,
    /// A request failed; the connection is out of step or cut off.
    Failed,
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

/// Waits for events until `until`; a signal ends the wait early, with
/// none.
fn wait(poll: &mut Poll, events: &mut Events, until: Instant) -> io::Result<()> {
    let timeout = until.saturating_duration_since(Instant::now());
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
        recorder.fail(Sent::now(), e);
    }
    recorder
}

/// Opens connection `index` (client number `client`) for `batch` and
/// registers it for `interest`.
fn open(
    plan: &Plan,
    poll: &Poll,
    (index, client): (usize, usize),
    batch: Batch,
    interest: Interest,
) -> io::Result<Conn> {
    let mut conn = Conn::open(plan, client, Instant::now() + plan.timeout, batch)?;
    poll.registry()
        .register(&mut conn.stream, Token(index), interest)?;
    Ok(conn)
}

/// Drives `clients` (the client numbers of this thread), a batch at a
/// time, until the window ends, then until the replies in flight are in
/// or overdue; a connection that fails or times out is replaced. In a
/// closed loop a reply starts the next batch at once; with `--rate`, each
/// client's batches go out on its schedule, timed from when each was due.
pub fn tcp(plan: &Plan, clients: Vec<usize>) -> Recorder {
    with_poller(plan, |poll, recorder| drive_tcp(plan, clients, poll, recorder))
}

fn drive_tcp(plan: &Plan, clients: Vec<usize>, mut poll: Poll, recorder: &mut Recorder) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = clients.iter().map(|_| None).collect();
    let mut pacers: Vec<Pacer> = clients.iter().map(|&client| plan.pacer(client)).collect();
    loop {
        let now = Instant::now();
        // Until when to wait: the next batch due, or the earliest
        // deadline of a request in flight.
        let end = plan.window.end;
        let mut until = (now < end).then_some(end);
        let mut wake_at = |at: Instant| until = Some(until.map_or(at, |until| until.min(at)));
        for (index, ((slot, pacer), &client)) in conns.iter_mut().zip(&mut pacers).zip(&clients).enumerate() {
            if let Some(conn) = slot
                && conn.expire(now, recorder)
            {
                *slot = None;
            }
            let idle = slot.as_ref().is_none_or(|conn| conn.batch.in_flight().is_none());
            if idle {
                match pacer.turn(now) {
                    Turn::Now(sent) => start(plan, &poll, (index, client), slot, sent, recorder),
                    Turn::At(due) => wake_at(due),
                    Turn::Over => {}
                }
            }
            if let Some((_, deadline)) = slot.as_ref().and_then(|conn| conn.batch.in_flight()) {
                wake_at(deadline);
            }
        }
        let Some(until) = until else {
            // The window is over and nothing is in flight.
            for pacer in &pacers {
                recorder.behind(pacer.behind().times(plan.pipeline as u64));
            }
            return Ok(());
        };
        wait(&mut poll, &mut events, until)?;
        for event in events.iter() {
            let index = event.token().0;
            let Some(Some(conn)) = conns.get_mut(index) else {
                continue;
            };
            match conn.progress(recorder) {
                Progress::Waiting => {}
                Progress::Done => {
                    // In a closed loop, the last reply starts the next
                    // batch at once.
                    if let Turn::Now(sent) = pacers[index].turn(Instant::now()) {
                        start(
                            plan,
                            &poll,
                            (index, clients[index]),
                            &mut conns[index],
                            sent,
                            recorder,
                        );
                    }
                }
                // Out of step, or cut off: start again on a new
                // connection.
                Progress::Failed => conns[index] = None,
            }
        }
    }
}

/// Starts a batch sent at `sent` on connection `index` (client number
/// `client`), opening it first if `slot` is empty; empties `slot` if the
/// connection fails.
fn start(
    plan: &Plan,
    poll: &Poll,
    (index, client): (usize, usize),
    slot: &mut Option<Conn>,
    sent: Sent,
    recorder: &mut Recorder,
) {
    let deadline = sent.at + plan.timeout;
    if slot.is_none() {
        let both = Interest::READABLE | Interest::WRITABLE;
        match open(plan, poll, (index, client), plan.batch(client), both) {
            Ok(conn) => *slot = Some(conn),
            Err(e) => {
                unsent(plan.pipeline, sent, e.into(), recorder);
                plan.pause_after_failure();
                return;
            }
        }
    }
    if let Some(conn) = slot
        && !conn.start(sent, deadline, recorder)
    {
        *slot = None;
    }
}

/// Slow clients (`slow` mode): every connection sends one byte every
/// `interval` (their schedules spread over it) and checks the byte that
/// comes back. What a slowloris attack does to a server that gives each
/// connection a thread; a parked server holds them all in its poller. A
/// byte not echoed within `--timeout` is a timeout, and its connection is
/// closed.
pub fn slow(plan: &Plan, clients: Vec<usize>, interval: Duration) -> Recorder {
    with_poller(plan, |poll, recorder| {
        drive_slow(plan, clients, interval, poll, recorder)
    })
}

fn drive_slow(
    plan: &Plan,
    clients: Vec<usize>,
    interval: Duration,
    mut poll: Poll,
    recorder: &mut Recorder,
) -> io::Result<()> {
    let count = clients.len().max(1) as u32;
    let start = Instant::now();
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(clients.len());
    // When each connection sends next.
    let mut next: Vec<Instant> = Vec::with_capacity(clients.len());
    for (index, &client) in clients.iter().enumerate() {
        let sent = Sent::now();
        // One byte at a time, whatever --size says.
        let byte = Batch::new(1, client, 1, Encoding::Raw);
        match open(plan, &poll, (index, client), byte, Interest::READABLE) {
            Ok(conn) => conns.push(Some(conn)),
            Err(e) => {
                recorder.fail(sent, e);
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
        let until = if now < end {
            // Send on every connection whose turn has come, in schedule
            // order; one still waiting for its last byte past the
            // deadline has timed out.
            while !conns.is_empty() {
                let index = cursor % conns.len();
                if next[index] > now {
                    break;
                }
                cursor += 1;
                next[index] += interval;
                let slot = &mut conns[index];
                let Some(conn) = slot.as_mut() else { continue };
                if conn.expire(now, recorder) {
                    *slot = None;
                } else if conn.batch.in_flight().is_none() {
                    let sent = Sent::now();
                    if !conn.start(sent, sent.at + plan.timeout, recorder) {
                        *slot = None;
                    }
                }
            }
            next.get(cursor % conns.len().max(1))
                .copied()
                .unwrap_or(end)
                .min(end)
        } else {
            // The window is over: wait for the bytes in flight, each until
            // its deadline.
            let mut until = None;
            for slot in &mut conns {
                let Some(conn) = slot.as_mut() else { continue };
                if conn.expire(now, recorder) {
                    *slot = None;
                } else if let Some((_, deadline)) = conn.batch.in_flight() {
                    until = Some(until.map_or(deadline, |until: Instant| until.min(deadline)));
                }
            }
            match until {
                Some(until) => until,
                None => return Ok(()),
            }
        };
        wait(&mut poll, &mut events, until)?;
        for event in events.iter() {
            let Some(slot) = conns.get_mut(event.token().0) else {
                continue;
            };
            let Some(conn) = slot.as_mut() else { continue };
            if let Progress::Failed = conn.progress(recorder) {
                *slot = None;
            }
        }
    }
}
