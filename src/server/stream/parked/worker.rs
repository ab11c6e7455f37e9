//! What a worker of a parked server does: serve what is queued; when
//! nothing is, wait in the poller with the other workers and serve what
//! the wait found, inline.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::intake::Job;
use super::table::{Conn, Expired, Key, Parking, Phase};
use super::{EVENTS_PER_WAIT, Life, Shared};
use crate::config::DEFAULT_PARKED_READ_BUFFER_SIZE;
use crate::control::Control;
use crate::handler::Next;
use crate::pool::Exit;
use crate::request::{ReadBuffer, StreamRequest};
use crate::server::core::Batch;
use crate::server::lifecycle;
use crate::server::stream::connection::{apply, log_closed, log_opened, setup_failed};
use crate::server::stream::opening::{Handshake, handshake_too_late, open_layers, step_handshake};
use crate::sys::{ReadyEvents, poller};
use crate::transport::Listener;

/// A worker's own state.
pub(super) struct WorkerLocal<L: Listener, S> {
    buffer: ReadBuffer,
    /// What its last wait in the poller found.
    found: ReadyEvents,
    /// The jobs that became.
    jobs: Vec<Job<L, S>>,
    /// Whether reading a connection's next request right after answering
    /// one has been paying off.
    again: ReadAgain,
}

/// Whether a worker that has answered a request reads the connection's
/// next one at once, before parking it. A client that answers its reply
/// at once (a thread per connection, which the reply's wake-up often
/// runs before the worker goes on) has sent it by then: serving it on the
/// spot saves the poller's round trip. A client that answers later (an
/// event loop going through its other connections first) has not: the
/// read finds nothing, and costs a system call. So it is tried while it
/// pays, and otherwise only now and then, to notice a change.
struct ReadAgain {
    /// Raised by a read that found a request, lowered by one that did not.
    credit: u8,
    /// Answers since the last try with no credit.
    since_probe: u8,
}

impl ReadAgain {
    /// The credit a read that found a request adds, the credit one that
    /// found nothing takes, and the most credit. A read that finds a
    /// request saves a trip through the poller (about two system calls'
    /// worth), one that finds nothing costs a system call: it is tried
    /// while more than two reads in three find one. Measured: with a
    /// thread per client connection, 83% to 88% do; with an event-loop
    /// client, 34% to 39%, and it tries after 5% of its answers.
    const HIT: u8 = 1;
    const MISS: u8 = 2;
    const MOST: u8 = 16;
    /// With no credit, one answer in this many tries all the same.
    const PROBE_EVERY: u8 = 32;

    fn new() -> Self {
        ReadAgain {
            credit: Self::MOST,
            since_probe: 0,
        }
    }

    fn worth_trying(&mut self) -> bool {
        if self.credit > 0 {
            return true;
        }
        self.since_probe += 1;
        if self.since_probe < Self::PROBE_EVERY {
            return false;
        }
        self.since_probe = 0;
        true
    }

    fn found(&mut self, request: bool) {
        self.credit = match request {
            true => (self.credit + Self::HIT).min(Self::MOST),
            false => self.credit.saturating_sub(Self::MISS),
        };
    }
}

/// The most requests of one connection a worker serves in a row, reading
/// each as soon as it has answered the one before, before it parks the
/// connection and lets the poller choose again: one busy client cannot
/// keep a worker from the others.
const MOST_IN_A_ROW: u32 = 32;

/// How long after its first read of a connection's next request a worker
/// still reads the one after. Other connections wait meanwhile: those the
/// same wait in the poller found, their request deadlines running, and
/// those it has not seen. Each is held up by at most this and one request
/// more per connection ahead of it; reading again is for quick requests.
const MOST_TIME_IN_A_ROW: Duration = Duration::from_millis(1);

/// A worker's life: serve what is queued; when nothing is, wait in the
/// poller (while `serve_forever` runs) or for a job.
pub(super) fn worker_main<L: Listener, F: Life<L>>(shared: &Arc<Shared<L, F>>) -> Exit {
    let _mark = shared.control().mark_current_thread();
    let mut local = WorkerLocal {
        buffer: shared
            .service
            .options
            .read_buffer(DEFAULT_PARKED_READ_BUFFER_SIZE),
        found: ReadyEvents::with_capacity(EVENTS_PER_WAIT),
        jobs: Vec::new(),
        again: ReadAgain::new(),
    };
    loop {
        let serving = shared.serving.load(Ordering::Acquire) && !shared.stopping.load(Ordering::Acquire);
        // Queued work could keep every worker from the poller: now and
        // then, serve what is ready there first.
        if serving && !shared.queue.is_empty() && shared.look_due() {
            poll_and_serve(shared, &mut local, Some(Duration::ZERO));
        }
        match shared.queue.try_recv() {
            // Queued behind every job the stopping server queued: one per
            // worker, so none may take two.
            Ok(Job::Stop) if shared.may_stop() => return Exit::Stopped,
            // Meant to bring a worker waiting for a job to the poller:
            // passed on if one waits (this one goes there anyway).
            Ok(Job::Poll) => {
                if shared.waiting_for_job.load(Ordering::SeqCst) > 0 {
                    shared.push(Job::Poll);
                }
            }
            // Looks at the queue again before the poller.
            Ok(Job::Stop) => continue,
            Ok(job) => {
                // More waits behind it while another worker sits in the
                // poller: that one helps.
                if !shared.queue.is_empty() && shared.free.load(Ordering::Acquire) > 0 {
                    shared.control().wake();
                }
                shared.run_queued(&mut local, job);
                continue;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => return Exit::Stopped,
        }
        // A stopping server's workers serve what was queued (requests the
        // clients have sent, connections accepted), within the grace
        // period, then exit; a server not serving hands out its jobs from
        // `handle_request`.
        let idle = if serving {
            poll_and_serve(shared, &mut local, Some(shared.group.config.keep_alive))
        } else {
            wait_for_job(shared, &mut local)
        };
        match idle {
            Idle::Busy => {}
            Idle::Stop => return Exit::Stopped,
            Idle::TimedOut => {
                if shared.group.try_retire() {
                    return Exit::Retired;
                }
            }
        }
    }
}

/// How a worker's wait for work ended.
enum Idle {
    /// It found work (and did it), or there may be some.
    Busy,
    /// Nothing came for the workers' keep-alive: it may retire.
    TimedOut,
    /// It is to exit.
    Stop,
}

/// Waits in the poller (up to `timeout`), with the other workers, and
/// serves what the wait found: the requests of parked connections inline,
/// one after another; new connections are queued (and another worker
/// woken to help open them), the first opened here.
fn poll_and_serve<L: Listener, F: Life<L>>(
    shared: &Arc<Shared<L, F>>,
    local: &mut WorkerLocal<L, F::State>,
    timeout: Option<Duration>,
) -> Idle {
    // In the poller until what the wait found is taken from the table: a
    // stopping server waits for that before closing the parked
    // connections, whose events this wait may have consumed. Counted in
    // before looking at `stopping` (the server stores it before looking
    // at the count): one of the two sees the other.
    shared.in_poller.fetch_add(1, Ordering::SeqCst);
    if shared.stopping.load(Ordering::SeqCst) {
        shared.in_poller.fetch_sub(1, Ordering::SeqCst);
        return Idle::Busy;
    }
    shared.free.fetch_add(1, Ordering::AcqRel);
    let waited = shared.poller.wait(&mut local.found, timeout);
    shared.free.fetch_sub(1, Ordering::AcqRel);
    shared.looked();
    if shared.stopping.load(Ordering::Acquire) {
        // Each woken worker wakes the next one still waiting.
        shared.control().wake();
    }
    let mut jobs = std::mem::take(&mut local.jobs);
    let taken = match waited {
        Ok(()) if local.found.is_empty() => Ok(Idle::TimedOut),
        Ok(()) => {
            let busy_until = shared.busy_from_now();
            shared
                .take_in(&local.found, busy_until, Batch::All, &mut jobs)
                .map(|()| Idle::Busy)
        }
        Err(e) => Err(e),
    };
    shared.in_poller.fetch_sub(1, Ordering::SeqCst);
    match taken {
        Ok(Idle::TimedOut) => {
            local.jobs = jobs;
            return Idle::TimedOut;
        }
        Ok(_) => {}
        Err(e) => shared.listener_failed(e),
    }
    let mut new = Vec::new();
    for job in jobs.drain(..) {
        match job {
            Job::Open { .. } => new.push(job),
            job => shared.run(local, job),
        }
    }
    local.jobs = jobs;
    let mut new = new.into_iter();
    let mine = new.next();
    shared.push_all(new);
    if let Some(job) = mine {
        shared.run(local, job);
    }
    Idle::Busy
}

/// Waits for a job, when the server is not serving from the poller: the
/// jobs `handle_request` found, or a stopping server's.
fn wait_for_job<L: Listener, F: Life<L>>(
    shared: &Arc<Shared<L, F>>,
    local: &mut WorkerLocal<L, F::State>,
) -> Idle {
    // Counted in before looking at `serving` (which `start` stores before
    // queuing its polls, and a worker that takes one looks at this count):
    // a worker never waits here for a poll taken by another.
    shared.waiting_for_job.fetch_add(1, Ordering::SeqCst);
    if shared.serving.load(Ordering::SeqCst) && !shared.stopping.load(Ordering::SeqCst) {
        shared.waiting_for_job.fetch_sub(1, Ordering::SeqCst);
        return Idle::Busy;
    }
    shared.free.fetch_add(1, Ordering::AcqRel);
    let job = shared.queue.recv_timeout(shared.group.config.keep_alive);
    shared.free.fetch_sub(1, Ordering::AcqRel);
    shared.waiting_for_job.fetch_sub(1, Ordering::SeqCst);
    match job {
        Ok(Job::Stop) if shared.may_stop() => Idle::Stop,
        Err(RecvTimeoutError::Disconnected) => Idle::Stop,
        Ok(Job::Poll | Job::Stop) => Idle::Busy,
        Ok(job) => {
            shared.run_queued(local, job);
            Idle::Busy
        }
        Err(RecvTimeoutError::Timeout) => Idle::TimedOut,
    }
}

impl<L: Listener, F: Life<L>> Shared<L, F> {
    pub(super) fn control(&self) -> &Arc<Control> {
        self.service.control()
    }

    /// Does one job: serves a request, or opens a connection. Once
    /// shutdown is requested, each connection closes after the request it
    /// has sent is served (the grace period bounds it: then its socket is
    /// shut, and serving it ends at once).
    pub(super) fn run(&self, local: &mut WorkerLocal<L, F::State>, job: Job<L, F::State>) {
        self.progress.fetch_add(1, Ordering::Relaxed);
        match job {
            Job::Open { key, stream, peer } => self.open(local, key, stream, peer),
            Job::Ready(conn) => Held::take(self, local, conn).advance(local),
            Job::Poll | Job::Stop => {}
        }
    }

    /// Does a job taken from the queue.
    fn run_queued(&self, local: &mut WorkerLocal<L, F::State>, job: Job<L, F::State>) {
        if job.is_work() {
            self.queued_work.fetch_sub(1, Ordering::AcqRel);
        }
        self.run(local, job);
    }

    /// A worker got its stop: whether it may exit, with no connection
    /// queued; if one is, the stop goes back in line behind it.
    fn may_stop(&self) -> bool {
        if self.queued_work.load(Ordering::Acquire) == 0 {
            return true;
        }
        self.push(Job::Stop);
        false
    }

    /// A new connection: set its options and open its layers (a proxy's
    /// header, the start of a TLS handshake), then go on as far as it can.
    fn open(&self, local: &mut WorkerLocal<L, F::State>, key: Key, stream: Arc<L::Stream>, peer: L::Addr) {
        let opened = log_opened(&peer);
        let setup = apply(&self.service.options, &*stream);
        let buffer = std::mem::take(&mut local.buffer);
        let request = StreamRequest::new(stream, peer, self.service.server.clone(), buffer);
        let mut held = Held {
            shared: self,
            key,
            request: Some(request),
            phase: Phase::Handshaking,
            opened,
            registered: false,
        };
        if let Err(e) = setup {
            setup_failed(self.control(), held.request().peer_addr(), &e);
            return held.close(local);
        }
        if let Err(e) = open_layers(&self.service.options, held.request(), Handshake::Started) {
            return held.fail(local, e);
        }
        held.advance(local);
    }

    /// Closes the idle connections a deadline found.
    pub(super) fn close_expired(&self, expired: &mut Vec<Expired<L, F::State>>) {
        for expired in expired.drain(..) {
            self.control().counters.timed_out.bump();
            match expired {
                Expired::Idle(conn) if matches!(conn.phase, Phase::Handshaking) => {
                    self.close_handshaking(conn)
                }
                Expired::Idle(conn) => {
                    log::debug!(
                        "closing the connection from {:?}: idle for the idle timeout ({:?})",
                        conn.link.peer,
                        self.deadlines.idle_timeout
                    );
                    self.close_parked(conn);
                }
                // The worker serving it reports and closes it.
                Expired::CutOff => {}
            }
        }
    }

    /// Closes a connection whose TLS handshake its deadline cut short,
    /// reported to `handle_error` as a per-connection server reports its
    /// handshake timeout (and counted as a failed handshake, and in
    /// `timed_out`, not in `errors`).
    fn close_handshaking(&self, conn: Conn<L, F::State>) {
        let Conn {
            key,
            link,
            opened,
            registered,
            ..
        } = conn;
        let request = StreamRequest::attach(link, ReadBuffer::default(), self.service.server.clone());
        lifecycle::report(&*self.service.life, &request, &handshake_too_late(&request));
        let (link, _) = request.detach();
        self.close_parked(Conn {
            key,
            link,
            phase: Phase::Handshaking,
            opened,
            registered,
        });
    }

    /// Closes a connection the table has let go of already (a deadline,
    /// shutdown): its layers ended (TLS's `close_notify`), the socket
    /// closed, the handler told, the count taken down.
    pub(super) fn close_parked(&self, mut conn: Conn<L, F::State>) {
        conn.link.close_layers();
        let Conn {
            link, phase, opened, ..
        } = conn;
        let (peer, traffic) = (link.peer, link.traffic);
        // The last reference: the connection closes (and leaves the
        // poller with it).
        drop(link.stream);
        if let Phase::Open(state) = phase {
            lifecycle::close(&*self.service.life, *state, &self.control().counters);
        }
        log_closed(&peer, opened, traffic);
        self.finished();
    }

    /// Closes the connection of a job that will not run.
    pub(super) fn discard(&self, job: Job<L, F::State>) {
        match job {
            Job::Open { key, stream, peer } => {
                self.table.lock().remove(key);
                drop(stream);
                log::debug!("connection from {peer:?} closed unserved: the server stopped");
                self.finished();
            }
            Job::Ready(conn) => {
                self.table.lock().remove(conn.key);
                self.close_parked(conn);
            }
            Job::Poll | Job::Stop => {}
        }
    }

    /// A connection has ended: one fewer open.
    pub(super) fn finished(&self) {
        if self.control().request_finished() {
            // The loop was full: it may accept again.
            self.control().wake();
        }
    }
}

/// A connection in a worker's hands: its request, reading through the
/// worker's buffer, and where it is in its life. It leaves the worker
/// parked again ([`keep`](Self::keep)) or closed ([`close`](Self::close));
/// should serving it unwind instead (a bug in the crate: a handler's
/// panics are caught), dropping it gives its table slot and its count
/// back.
struct Held<'a, L: Listener, F: Life<L>> {
    shared: &'a Shared<L, F>,
    key: Key,
    /// Taken when the connection leaves the worker.
    request: Option<StreamRequest<L::Stream>>,
    phase: Phase<F::State>,
    opened: Option<Instant>,
    registered: bool,
}

impl<'a, L: Listener, F: Life<L>> Held<'a, L, F> {
    /// A parked or queued connection, taken up by a worker.
    fn take(shared: &'a Shared<L, F>, local: &mut WorkerLocal<L, F::State>, conn: Conn<L, F::State>) -> Self {
        let buffer = std::mem::take(&mut local.buffer);
        let request = StreamRequest::attach(conn.link, buffer, shared.service.server.clone());
        Held {
            shared,
            key: conn.key,
            request: Some(request),
            phase: conn.phase,
            opened: conn.opened,
            registered: conn.registered,
        }
    }

    fn request(&mut self) -> &mut StreamRequest<L::Stream> {
        self.request.as_mut().expect("a held connection has its request")
    }

    /// Goes on with the connection as far as it can without waiting for
    /// its client: the rest of its TLS handshake, its admission, the
    /// request it has sent. Never waits on a client that has sent
    /// nothing: readiness can be stale (bytes a worker already read when
    /// the event came).
    fn advance(mut self, local: &mut WorkerLocal<L, F::State>) {
        let shared = self.shared;
        let (life, counters) = (&*shared.service.life, &shared.control().counters);
        if let Phase::Handshaking = self.phase {
            match step_handshake(self.request()) {
                Ok(true) => {}
                Ok(false) => return self.keep(local),
                Err(e) => return self.fail(local, e),
            }
            match lifecycle::admit(life, self.request(), counters) {
                Ok(Some(state)) => self.phase = Phase::Open(Box::new(state)),
                Ok(None) => return self.close(local),
                Err(e) => return self.fail(local, e),
            }
            if !F::PER_REQUEST {
                return self.converse(local);
            }
        }
        match self.request().fill_now() {
            // The client closed its end: nothing to serve.
            Ok(0) => self.close(local),
            Ok(_) => self.serve(local),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.keep(local),
            Err(e) => self.fail(local, e),
        }
    }

    /// Serves the request the client has sent, and those it sends next
    /// while reading again pays (see [`ReadAgain`]), then keeps or closes
    /// the connection.
    fn serve(mut self, local: &mut WorkerLocal<L, F::State>) {
        let shared = self.shared;
        // Requests served in a row, and when it first read again (the
        // clock is read only then, not per request).
        let mut in_a_row = 0;
        let mut began = None;
        // A loop, not a call per request: a chain of calls would grow the
        // stack by a frame per request.
        loop {
            let Phase::Open(state) = &mut self.phase else {
                unreachable!("only an open connection is served");
            };
            let request = self.request.as_mut().expect("a held connection has its request");
            match lifecycle::serve(&*shared.service.life, request, state) {
                Ok(Next::KeepOpen) if !shared.control().is_shutdown_requested() => {}
                Ok(_) => return self.close(local),
                Err(e) => return self.fail(local, e),
            }
            // Its next request, if it has come already (see [`ReadAgain`]);
            // for a bounded time, as the other connections its wait found
            // wait meanwhile, their deadlines running; not while jobs wait
            // in the queue. (`handle_request` serves one request a round:
            // only `serve_forever`'s workers read on.)
            in_a_row += 1;
            let try_now = in_a_row < MOST_IN_A_ROW
                && self.request().buffered().is_empty()
                && shared.serving.load(Ordering::Acquire)
                && shared.queue.is_empty()
                && !shared.is_moving()
                && began.get_or_insert_with(Instant::now).elapsed() < MOST_TIME_IN_A_ROW
                && local.again.worth_trying();
            if !try_now {
                return self.keep(local);
            }
            // A request of its own, a deadline of its own; and the poller's
            // events for the bytes about to be read are forgotten, so that
            // parking it does not queue it again for nothing (one handled
            // after this still does, harmlessly).
            if !shared
                .table
                .lock()
                .reading_again(self.key, shared.busy_from_now())
            {
                return self.close(local);
            }
            match self.request().fill_now() {
                Ok(0) => return self.close(local),
                Ok(_) => local.again.found(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    local.again.found(false);
                    return self.keep(local);
                }
                Err(e) => return self.fail(local, e),
            }
        }
    }

    /// A looping handler's whole conversation, on this worker: no request
    /// deadline may cut it (the grace period of a shutdown still does).
    fn converse(mut self, local: &mut WorkerLocal<L, F::State>) {
        let shared = self.shared;
        if !shared.table.lock().renew(self.key, None) {
            return self.close(local);
        }
        let Phase::Open(state) = &mut self.phase else {
            unreachable!("only an open connection converses");
        };
        let request = self.request.as_mut().expect("a held connection has its request");
        let failure = lifecycle::serve(&*shared.service.life, request, state).err();
        self.end(local, failure)
    }

    /// Parks the connection until its next request (or the rest of its
    /// handshake), or puts it back in line at once if it may have one
    /// already (behind the others: one connection that always has data
    /// cannot keep a worker).
    fn keep(mut self, local: &mut WorkerLocal<L, F::State>) {
        let shared = self.shared;
        let now = shared.clock.now();
        // Waiting for a request: the idle timeout; for the rest of a
        // handshake: its own deadline.
        let idle_until = match self.phase {
            Phase::Open(_) => now + shared.idle_ticks,
            Phase::Handshaking => handshake_deadline(self.request())
                .map_or(now + shared.idle_ticks, |at| shared.clock.tick_of(at)),
        };
        let busy_until = now + shared.request_ticks;
        let mut conn = self.detach(local);
        // A restart drains the server: between two requests is when a
        // connection moves to the new process.
        if shared.is_moving() {
            match shared.hand_over(conn) {
                Ok(()) => return,
                Err(stays) => conn = stays,
            }
        }
        if conn.link.has_more() {
            if shared.table.lock().renew(conn.key, Some(busy_until)) {
                return shared.push(Job::Ready(conn));
            }
            return shared.close_removed(conn);
        }
        // Held across the poller call below: the socket cannot close (and
        // its number be reused) until then, whoever takes it meanwhile.
        let socket = Arc::clone(&conn.link.stream);
        let key = conn.key;
        // In the poller from here on (registered just below if it is not).
        let registered = std::mem::replace(&mut conn.registered, true);
        let parking = shared.table.lock().park(conn, idle_until, busy_until);
        match parking {
            // In the table first, so the first event finds it parked.
            Parking::Parked if !registered => {
                let Err(e) = poller::register(shared.poller.registry(), &*socket, key.token()) else {
                    return;
                };
                log::warn!("cannot watch a parked connection; closing it: {e}");
                let conn = shared.table.lock().take_ready(key, busy_until, false);
                drop(socket);
                if let Some(conn) = conn {
                    shared.close_removed(conn);
                }
            }
            Parking::Parked => {}
            Parking::Ready(conn) => shared.push(Job::Ready(conn)),
            Parking::Closing(conn) => {
                drop(socket);
                shared.close_removed(conn);
            }
        }
    }

    /// Closes the connection after a failure, reported as a timeout if
    /// the request's deadline cut it off.
    fn fail(self, local: &mut WorkerLocal<L, F::State>, error: io::Error) {
        self.end(local, Some(error));
    }

    /// Closes the connection.
    fn close(self, local: &mut WorkerLocal<L, F::State>) {
        self.end(local, None);
    }

    /// Ends the connection: for an open one, `finish` (a looping
    /// handler's) with its request, then the failure that ended it is
    /// reported, as for every server; then the rest as for any connection.
    fn end(mut self, local: &mut WorkerLocal<L, F::State>, failure: Option<io::Error>) {
        let shared = self.shared;
        let (life, counters) = (&*shared.service.life, &shared.control().counters);
        let failure = failure.map(|error| match shared.table.lock().is_cut_off(self.key) {
            true => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "request not finished within the request timeout ({:?}): connection closed",
                    shared.deadlines.request_timeout
                ),
            ),
            false => error,
        });
        let finished = match self.phase {
            Phase::Open(_) => lifecycle::finish(life, self.request()).err(),
            Phase::Handshaking => None,
        };
        for error in failure.into_iter().chain(finished) {
            lifecycle::fail(life, self.request(), error, counters);
        }
        let conn = self.detach(local);
        shared.close_removed(conn);
    }

    /// Takes the connection from the worker, giving the worker its buffer
    /// back.
    fn detach(mut self, local: &mut WorkerLocal<L, F::State>) -> Conn<L, F::State> {
        let request = self.request.take().expect("a held connection has its request");
        let (link, buffer) = request.detach();
        local.buffer = buffer;
        Conn {
            key: self.key,
            link,
            phase: std::mem::replace(&mut self.phase, Phase::Handshaking),
            opened: self.opened,
            registered: self.registered,
        }
    }
}

impl<L: Listener, F: Life<L>> Drop for Held<'_, L, F> {
    fn drop(&mut self) {
        if self.request.take().is_some() {
            log::error!("a connection was dropped while being served; closing it");
            self.shared.table.lock().remove(self.key);
            self.shared.finished();
        }
    }
}

impl<L: Listener, F: Life<L>> Shared<L, F> {
    /// Closes a connection that is (or was) in the table under its key.
    fn close_removed(&self, conn: Conn<L, F::State>) {
        self.table.lock().remove(conn.key);
        self.close_parked(conn);
    }
}

/// When the handshake of a connection still handshaking must be over by.
fn handshake_deadline<S: crate::transport::Connection>(request: &StreamRequest<S>) -> Option<Instant> {
    #[cfg(feature = "tls")]
    return request.tls_deadline();
    #[cfg(not(feature = "tls"))]
    {
        let _ = request;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::ReadAgain;

    #[test]
    fn reading_again_stops_when_it_finds_nothing_and_resumes_when_it_finds_requests() {
        let mut again = ReadAgain::new();
        // It starts trying, and goes on while reads find requests.
        for _ in 0..100 {
            assert!(again.worth_trying());
            again.found(true);
        }
        // Reads that find nothing use its credit up: then it stops.
        let mut tries = 0;
        while again.worth_trying() {
            again.found(false);
            tries += 1;
            assert!(tries <= ReadAgain::MOST, "it kept trying");
        }
        // With no credit it tries once in PROBE_EVERY answers.
        let probes = (0..ReadAgain::PROBE_EVERY as u32 * 10)
            .filter(|_| {
                let tried = again.worth_trying();
                if tried {
                    again.found(false);
                }
                tried
            })
            .count();
        assert_eq!(probes, 10);
        // One probe that finds a request starts it again.
        while !again.worth_trying() {}
        again.found(true);
        assert!(again.worth_trying());
    }
}
