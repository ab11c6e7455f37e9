//! The parked mode: between two requests a connection waits in the loop's
//! poller, holding no thread and no buffer; a worker serves it one request
//! at a time.
//!
//! This is the half-sync/half-async shape of Jetty's and Tomcat's NIO
//! connectors and Thrift's THsHaServer, with the loop run by the workers
//! themselves: every worker waits in the one poller at once, and serves
//! what its own wait found, inline, as a bare event loop would ("eat what
//! you kill"):
//!
//! ```text
//! one poller = listener + waker + parked connections; a table with a timer wheel
//! each worker, in a loop:
//!   a queued job first (a new connection to open, a request read ahead)
//!   else wait in the poller (the kernel wakes one waiter per event), then
//!     parked readable   -> take it out of the table -> serve its request inline
//!     listener readable -> accept -> queue a job to open each (and wake a waiter)
//! serving ONE request: blocking Read/Write -> its next request, if it has
//!   come already (see below) -> else park it again (or close)
//! monitor (the serve_forever thread): deadlines, accepting after a back-off,
//!   growing the pool when the workers stop making progress, shutdown
//! ```
//!
//! Each wait takes a few events at most, so a worker that a handler holds
//! up long holds up only those; the others go on waiting and serving. No
//! thread stands between the poller and the work: the thread the kernel
//! wakes for a request is the one that serves it. (The loop used to be
//! led by one worker at a time, which handed events to the others through
//! a queue: measured against a bare epoll loop, that hand-off cost a
//! quarter of the throughput.)
//!
//! A worker parks a connection again itself, by putting it back in the
//! table: no poller call. Readiness is edge-triggered and registered once;
//! an edge that comes while a worker has the connection is remembered in
//! the table, and parking it then queues it again at once (see
//! [`table`]); so does an end of stream that came with the request just
//! served, which no later edge would announce. A connection with bytes
//! read ahead (a pipelined next request), or whose last read filled the
//! buffer, is not parked but put in line behind the others, so one
//! connection that always has data cannot keep a worker while others
//! wait. Buffers belong to workers; a connection keeps only what it had
//! read ahead, and only until it is queued again.
//!
//! Before parking a connection it has answered, a worker reads it once
//! more without waiting: a client with a thread of its own has often sent
//! its next request by then (the reply woke it, and it ran first), and
//! serving that on the spot saves the poller's round trip; that is what
//! the threading mode gets from a worker blocked in `read`. A worker
//! tries this while more than two such reads in three find a request
//! and otherwise only now and then (an event-driven client answers
//! later); never while jobs wait in the queue; and for at most 32
//! requests or 1 ms of one connection in a row, each under its own
//! request deadline (the other connections its wait found wait
//! meanwhile). The handler's state is boxed, so a chain or a trip through
//! the table moves a pointer, not a large state.
//!
//! Deadlines cost nothing per connection: the table's timer wheel holds
//! one deadline per connection (idle while parked, request while busy),
//! moved in O(1), and the monitor looks only at what falls due. A request
//! past its deadline has its socket shut, which wakes the worker blocked
//! on it; the worker then closes it.

#[cfg(feature = "restart")]
mod adopt;
mod intake;
mod moving;
pub(crate) mod table;
mod wheel;
mod worker;

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use self::intake::Job;
use self::table::{Expired, Table};
use self::wheel::{Clock, Tick};
use super::EngineBase;
use super::connection::ConnectionService;
use crate::control::drain::Destination;
use crate::handler::Lifecycle;
use crate::pool::{GroupConfig, ThreadGroup};
use crate::request::StreamRequest;
use crate::server::core::{Batch, Wake};
use crate::server::options::ParkedOptions;
use crate::server::wind_down::wind_down;
use crate::sys::{Poller, ReadyEvents, SharedPoller};
use crate::transport::Listener;

/// How long every worker may be busy, with no request started, before the
/// pool grows: the workers there are seem stuck (in handlers that block on
/// something slow), not merely busy.
const GROWTH_DELAY: Duration = Duration::from_millis(5);

/// How long the poller may go unwatched while workers serve queued work
/// (a connection that always has a request read ahead, say): then one of
/// them looks at it, without waiting, before its next job.
const GLANCE_GAP: Duration = Duration::from_micros(200);

/// How often the monitor looks at deadlines and at the workers' progress.
const MONITOR_TICK: Duration = wheel::TICK;

/// The most events one wait takes: what a worker held up in a handler
/// holds up with it.
const EVENTS_PER_WAIT: usize = 16;

/// The lifecycle of a stream server's handler, named for short.
pub(crate) trait Life<L: Listener>: Lifecycle<StreamRequest<L::Stream>> {}
impl<L: Listener, F: Lifecycle<StreamRequest<L::Stream>>> Life<L> for F {}

/// What the workers and the monitor share. `F` is the handler's lifecycle.
pub(crate) struct Shared<L: Listener, F: Life<L>> {
    table: Mutex<Table<L, F::State>>,
    /// The readiness set every worker waits in.
    poller: SharedPoller,
    /// The listener and the bookkeeping of accepting from it.
    intake: Mutex<EngineBase<L>>,
    /// The handler's lifecycle, the server, the connections' options.
    service: Arc<ConnectionService<L, F>>,
    deadlines: ParkedOptions,
    /// The table's clock, and the timeouts in its ticks.
    clock: Clock,
    idle_ticks: u64,
    request_ticks: u64,
    jobs: Sender<Job<L, F::State>>,
    queue: Receiver<Job<L, F::State>>,
    group: Arc<ThreadGroup>,
    /// Workers wait in the poller only while `serve_forever` runs
    /// (`handle_request` waits on the calling thread).
    serving: AtomicBool,
    /// The server is stopping: workers serve what is queued, then exit.
    stopping: AtomicBool,
    /// Workers waiting, in the poller or for a job: free to take work.
    free: AtomicUsize,
    /// Workers waiting for a job (not in the poller).
    waiting_for_job: AtomicUsize,
    /// Workers between entering the poller and taking from the table
    /// what their wait found.
    in_poller: AtomicUsize,
    /// Connections queued (to open or to serve) and not taken yet: a
    /// stopping worker exits only when none is left, even one queued
    /// behind its stop by a worker still busy.
    queued_work: AtomicUsize,
    /// Jobs started: the workers' progress, for the monitor.
    progress: AtomicU64,
    /// When a worker last looked at the poller, in nanoseconds since
    /// `epoch`.
    last_look: AtomicU64,
    epoch: Instant,
    /// A listener error that ended serving, for `serve_forever` to return.
    failure: Mutex<Option<io::Error>>,
    /// Where connections go when a restart drains the server.
    destination: OnceLock<Arc<dyn Destination>>,
    /// Connections move there between two requests (until a hand-over
    /// fails).
    moving: AtomicBool,
}

impl<L: Listener, F: Life<L>> Shared<L, F> {
    fn push(&self, job: Job<L, F::State>) {
        if job.is_work() {
            self.queued_work.fetch_add(1, Ordering::AcqRel);
        }
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = self.jobs.send(job);
    }

    /// Queues `jobs` behind the others, and wakes a worker waiting in the
    /// poller to take them if any is there.
    fn push_all(&self, jobs: impl IntoIterator<Item = Job<L, F::State>>) {
        let mut pushed = false;
        for job in jobs {
            self.push(job);
            pushed = true;
        }
        if pushed && self.free.load(Ordering::Acquire) > 0 {
            self.control().wake();
        }
    }

    /// Records a failure of the listening socket and stops serving.
    fn listener_failed(&self, error: io::Error) {
        self.failure.lock().get_or_insert(error);
        self.control().request_shutdown();
    }

    fn since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Notes that a worker has just looked at the poller.
    /// Waits (until `deadline` at most) for the workers to come out of
    /// the poller, once stopping: the wake-up passes from one to the next,
    /// and each takes what its wait found, so this is short.
    fn wait_out_of_poller(&self, deadline: Instant) {
        while self.in_poller.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                log::warn!("workers still in the poller at the end of the grace period");
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// The deadline of a request starting now.
    fn busy_from_now(&self) -> Tick {
        self.clock.now() + self.request_ticks
    }

    fn looked(&self) {
        self.last_look.store(self.since_epoch(), Ordering::Relaxed);
    }

    /// Whether queued work has kept every worker from the poller long
    /// enough that the next one should look at it first.
    fn look_due(&self) -> bool {
        self.since_epoch() >= self.last_look.load(Ordering::Relaxed) + GLANCE_GAP.as_nanos() as u64
    }

    /// Starts a worker if below the maximum.
    fn spawn_worker(self: &Arc<Self>) -> io::Result<bool> {
        let shared = Arc::clone(self);
        self.group.try_spawn(move || worker::worker_main(&shared))
    }
}

/// The parked dispatch, as the stream engine drives it.
pub(crate) struct ParkedDispatch<L: Listener, F: Life<L>> {
    shared: Arc<Shared<L, F>>,
    /// Jobs the last `handle_request` round found.
    dispatched: bool,
    found: ReadyEvents,
    jobs: Vec<Job<L, F::State>>,
    expired: Vec<Expired<L, F::State>>,
    scratch: Vec<u32>,
    /// Progress as of `since`, while no worker was free.
    stalled: Option<(u64, Instant)>,
}

impl<L: Listener, F: Life<L>> ParkedDispatch<L, F> {
    /// Takes `base` (the listener, for whichever worker accepts) and the
    /// poller (for every worker to wait in), and starts the minimum of
    /// workers.
    pub(crate) fn new(
        service: Arc<ConnectionService<L, F>>,
        base: EngineBase<L>,
        poller: Poller,
        deadlines: ParkedOptions,
        group: GroupConfig,
    ) -> io::Result<Self> {
        let control = Arc::clone(service.control());
        let (jobs, queue) = crossbeam_channel::unbounded();
        let min_workers = group.min_workers;
        let clock = Clock::new(Instant::now());
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::new(clock, Arc::clone(&control))),
            clock,
            idle_ticks: Clock::ticks(deadlines.idle_timeout),
            request_ticks: Clock::ticks(deadlines.request_timeout),
            poller: poller.into_shared()?,
            intake: Mutex::new(base),
            service,
            deadlines,
            jobs,
            queue,
            group: ThreadGroup::new(group, Arc::clone(&control.counters.workers)),
            serving: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            free: AtomicUsize::new(0),
            in_poller: AtomicUsize::new(0),
            waiting_for_job: AtomicUsize::new(0),
            queued_work: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
            last_look: AtomicU64::new(0),
            epoch: Instant::now(),
            failure: Mutex::new(None),
            destination: OnceLock::new(),
            moving: AtomicBool::new(false),
        });
        // A restart's drain moves connections; a restart's new process
        // takes them in.
        let moving = Arc::downgrade(&shared);
        control.on_drain(Box::new(move |destination| {
            if let (Some(shared), Some(destination)) = (moving.upgrade(), destination) {
                shared.start_moving(destination);
            }
        }));
        #[cfg(feature = "restart")]
        control.set_adopter(Arc::downgrade(&shared) as std::sync::Weak<dyn crate::control::drain::Adopter>);
        let dispatch = ParkedDispatch {
            shared,
            dispatched: false,
            found: ReadyEvents::with_capacity(EVENTS_PER_WAIT),
            jobs: Vec::new(),
            expired: Vec::new(),
            scratch: Vec::new(),
            stalled: None,
        };
        for _ in 0..min_workers {
            if let Err(e) = dispatch.shared.spawn_worker() {
                dispatch.shared.stopping.store(true, Ordering::Release);
                for _ in 0..dispatch.shared.group.counts.live() {
                    dispatch.shared.push(Job::Stop);
                }
                return Err(e);
            }
        }
        Ok(dispatch)
    }

    /// `serve_forever` begins: the workers wait in the poller from now on.
    pub(crate) fn start(&mut self) {
        let shared = &self.shared;
        shared.serving.store(true, Ordering::SeqCst);
        for _ in 0..shared.group.counts.live() {
            shared.push(Job::Poll);
        }
    }

    /// `serve_forever`: the monitor's wait. `handle_request`: a round with
    /// the poller on the calling thread, whose jobs the workers serve.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        if self.shared.serving.load(Ordering::Acquire) {
            self.monitor(deadline)
        } else {
            self.round(deadline)
        }
    }

    /// What `handle_request` takes from the round `wait` made.
    pub(crate) fn serve(&mut self, _batch: Batch) -> bool {
        std::mem::take(&mut self.dispatched)
    }

    fn round(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        let shared = Arc::clone(&self.shared);
        loop {
            if shared.control().is_shutdown_requested() {
                return Ok(Wake::Shutdown);
            }
            let now = Instant::now();
            self.expire(now);
            let next = shared.table.lock().next_deadline();
            let until = [deadline, next].into_iter().flatten().min();
            let timeout = until.map(|at| at.saturating_duration_since(now));
            shared.poller.wait(&mut self.found, timeout)?;
            let busy_until = shared.busy_from_now();
            shared.take_in(&self.found, busy_until, Batch::One, &mut self.jobs)?;
            // Pending connections the listener will not announce again.
            if self.jobs.is_empty() && shared.intake.lock().has_pending() {
                shared.accept(false, busy_until, Batch::One, &mut self.jobs)?;
            }
            if !self.jobs.is_empty() {
                shared.push_all(self.jobs.drain(..));
                self.dispatched = true;
                return Ok(Wake::Ready);
            }
            if deadline.is_some_and(|at| at <= Instant::now()) {
                return Ok(Wake::Timeout);
            }
        }
    }

    /// Closes the connections whose deadline has passed by `now`.
    fn expire(&mut self, now: Instant) {
        let shared = &self.shared;
        shared
            .table
            .lock()
            .expire(now, &mut self.scratch, &mut self.expired);
        shared.close_expired(&mut self.expired);
    }

    /// While the workers serve: deadlines, accepting again once a back-off
    /// is over, growth, shutdown.
    fn monitor(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        let shared = Arc::clone(&self.shared);
        let control = Arc::clone(shared.control());
        loop {
            if control.is_shutdown_requested() {
                return match shared.failure.lock().take() {
                    Some(failure) => Err(failure),
                    None => Ok(Wake::Shutdown),
                };
            }
            let now = Instant::now();
            self.expire(now);
            self.watch_intake(now);
            self.watch_queue();
            self.watch_growth(now);
            if deadline.is_some_and(|at| at <= now) {
                return Ok(Wake::Timeout);
            }
            let until = deadline.map_or(now + MONITOR_TICK, |at| at.min(now + MONITOR_TICK));
            control.sleep_unless_shutdown(until.saturating_duration_since(now));
        }
    }

    /// Wakes a worker to accept when connections are pending that the
    /// listener will not announce again: a back-off that is over.
    fn watch_intake(&self, now: Instant) {
        let due = {
            let mut intake = self.shared.intake.lock();
            intake.has_pending() && intake.retry_at.is_some() && intake.accept_due(now)
        };
        if due {
            self.shared.control().wake();
        }
    }

    /// Wakes a worker waiting in the poller when jobs wait in the queue: a
    /// safety net under the wake-ups the workers send each other.
    fn watch_queue(&self) {
        let shared = &self.shared;
        if !shared.queue.is_empty() && shared.free.load(Ordering::Acquire) > 0 {
            shared.control().wake();
        }
    }

    /// Grows the pool when no worker is free and none has started a job
    /// for a while: they are stuck, not just busy.
    fn watch_growth(&mut self, now: Instant) {
        let shared = &self.shared;
        if shared.free.load(Ordering::Acquire) > 0 && shared.group.counts.live() > 0 {
            self.stalled = None;
            return;
        }
        let progress = shared.progress.load(Ordering::Relaxed);
        match self.stalled {
            Some((was, since)) if was == progress => {
                if now >= since + GROWTH_DELAY {
                    if matches!(shared.spawn_worker(), Ok(true)) {
                        log::debug!("every worker is busy and none progresses: one more worker");
                    }
                    self.stalled = Some((progress, now));
                }
            }
            _ => self.stalled = Some((progress, now)),
        }
    }

    /// The orderly stop: idle parked connections close at once, from here;
    /// requests clients have sent (in flight, queued, or just arrived on a
    /// parked connection) are served within the grace period, each
    /// connection closing after its request; then the sockets still busy
    /// are shut.
    pub(crate) fn stop(self) {
        let shared = self.shared;
        let control = Arc::clone(shared.control());
        let started = Instant::now();
        shared.serving.store(false, Ordering::Release);
        shared.stopping.store(true, Ordering::SeqCst);
        // Workers waiting in the poller wake, each waking the next.
        control.wake();
        shared.intake.lock().listener.close();
        // Events a worker's wait has consumed are taken from the table
        // before the parked connections close: else a request that came
        // just then would be closed unread.
        shared.wait_out_of_poller(started + control.grace());
        // A last look at the poller queues the requests parked connections
        // received meanwhile (closing those unread would lose them, and
        // reset the connection).
        let mut ready = Vec::new();
        if let Err(e) = shared.collect_ready(&mut ready) {
            log::debug!("cannot look for requests sent meanwhile: {e}");
        }
        for job in ready {
            shared.push(job);
        }
        let idle = shared.table.lock().drain_idle();
        let closing = idle.len();
        // The kernel's part (a FIN each, and over loopback the peer's side
        // of it too) is most of the time this takes: closing them from
        // several threads was measured no faster.
        for conn in idle {
            shared.close_parked(conn);
        }
        log::debug!("closed {closing} parked connections in {:?}", started.elapsed());
        // Each worker exits when it reaches its stop, queued behind every
        // job queued so far.
        for _ in 0..shared.group.counts.live() {
            shared.push(Job::Stop);
        }
        let workers = &shared.group;
        let done = wind_down(workers, &control, started, |how| {
            if how == Shutdown::Read {
                log::info!("grace period over; closing the requests still being served");
            }
            shared.table.lock().shut_busy(how);
        });
        if !done {
            return;
        }
        workers.join();
        // What the workers left queued closes with the server.
        for job in shared.queue.try_iter() {
            shared.discard(job);
        }
        log::debug!("parked server stopped in {:?}", started.elapsed());
    }
}
