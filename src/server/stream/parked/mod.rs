//! The parked mode: between two requests a connection waits in the loop's
//! poller, holding no thread and no buffer; a worker serves it one request
//! at a time.
//!
//! This is the half-sync/half-async shape of Jetty's and Tomcat's NIO
//! connectors and Thrift's THsHaServer, with the loop run by the workers
//! themselves, as Jetty's "eat what you kill" and the leader/followers
//! pattern do:
//!
//! ```text
//! one poller = listener + waker + parked connections; a table with a timer wheel
//! the worker holding the poller (the leader), one round:
//!   listener readable  -> accept -> a job that opens it (verify, open, first read)
//!   parked readable    -> take it out of the table -> a job
//!   deadline passed    -> close an idle connection / cut a stalled request off
//!   then: queue all jobs but one, wake an idle worker to take the poller,
//!         and serve that one job itself: no hand-off between threads
//! worker with a job: serve ONE request with blocking Read/Write -> park it again (or close)
//! monitor (the serve_forever thread): deadlines when every worker is busy,
//!   growing the pool when the workers stop making progress, shutdown
//! ```
//!
//! Handing each request from a loop thread to a worker costs a thread
//! wake-up on every request; measured here it served a third of what the
//! per-connection mode does. The thread that the readiness event wakes
//! serves the request itself, and the wake-up of the next leader happens
//! in parallel, off the request's path.
//!
//! A worker parks a connection again itself, by putting it back in the
//! table: no poller call. Readiness is edge-triggered and registered once;
//! an edge that comes while a worker has the connection is remembered in
//! the table, and parking it then queues it again at once (see
//! [`table`]); so does an end of stream that came with the request just
//! served, which no later edge would announce. A connection with bytes read ahead (a pipelined next
//! request), or whose last read filled the buffer, is not parked but put
//! in line behind the others, so one connection that always has data
//! cannot keep a worker while others wait. Queued jobs come before the
//! poller: a worker never waits in it while jobs wait in the queue, and
//! when queued work has kept every worker from it for a moment, one takes
//! in what is ready without waiting and queues it behind. Buffers belong
//! to workers; a connection keeps only what it had read ahead, and only
//! until it is queued again.
//!
//! Deadlines cost nothing per connection: the table's timer wheel holds
//! one deadline per connection (idle while parked, request while busy),
//! moved in O(1), and the loop looks only at what falls due. A request
//! past its deadline has its socket shut, which wakes the worker blocked
//! on it; the worker then closes it.

mod lead;
pub(crate) mod table;
mod wheel;
mod worker;

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::Registry;
use parking_lot::Mutex;

use self::lead::{Job, Lead};
use self::table::{Expired, Table};
use super::EngineBase;
use super::connection::ConnectionService;
use crate::handler::Lifecycle;
use crate::pool::{GroupConfig, ThreadGroup};
use crate::request::StreamRequest;
use crate::server::core::{Batch, Wake};
use crate::server::options::ParkedOptions;
use crate::server::wind_down::wind_down;
use crate::transport::Listener;

/// How long every worker may be busy, with no request started, before the
/// pool grows: the workers there are seem stuck (in handlers that block on
/// something slow), not merely busy.
const GROWTH_DELAY: Duration = Duration::from_millis(5);

/// How long the poller may go unwatched while workers serve queued work:
/// then one of them takes in what is ready before its next job.
const GLANCE_GAP: Duration = Duration::from_micros(200);

/// How often the monitor looks at deadlines and at the workers' progress.
const MONITOR_TICK: Duration = wheel::TICK;

/// The lifecycle of a stream server's handler, named for short.
pub(crate) trait Life<L: Listener>: Lifecycle<StreamRequest<L::Stream>> {}
impl<L: Listener, F: Lifecycle<StreamRequest<L::Stream>>> Life<L> for F {}

/// What the workers, the poller's holder and the monitor share. `F` is
/// the handler's lifecycle.
pub(crate) struct Shared<L: Listener, F: Life<L>> {
    table: Mutex<Table<L, F::State>>,
    /// The poller, for whoever leads; `None` once the server stops.
    lead: Mutex<Option<Lead<L, F::State>>>,
    registry: Registry,
    /// The handler's lifecycle, the server, the connections' options.
    service: Arc<ConnectionService<L, F>>,
    deadlines: ParkedOptions,
    jobs: Sender<Job<L, F::State>>,
    queue: Receiver<Job<L, F::State>>,
    group: Arc<ThreadGroup>,
    /// Workers lead only while `serve_forever` runs (`handle_request` leads
    /// on the calling thread).
    serving: AtomicBool,
    /// Workers exit once they find no job.
    stopping: AtomicBool,
    /// Workers waiting for a job.
    followers: AtomicUsize,
    /// A worker holds the poller.
    leading: AtomicBool,
    /// Jobs started: the workers' progress, for the monitor.
    progress: AtomicU64,
    /// When the last round with the poller ended, in nanoseconds since
    /// `epoch`.
    last_round: AtomicU64,
    epoch: Instant,
    /// A listener error that ended serving, for `serve_forever` to return.
    failure: Mutex<Option<io::Error>>,
}

impl<L: Listener, F: Life<L>> Shared<L, F> {
    fn push(&self, job: Job<L, F::State>) {
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = self.jobs.send(job);
    }

    /// Records a failure of the listening socket and stops serving.
    fn listener_failed(&self, error: io::Error) {
        self.failure.lock().get_or_insert(error);
        self.control().request_shutdown();
    }

    fn since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Notes that a round with the poller has just ended.
    fn rounded(&self) {
        self.last_round.store(self.since_epoch(), Ordering::Relaxed);
    }

    /// Whether the poller has gone unwatched long enough that a worker
    /// with queued work should glance at it first.
    fn round_due(&self) -> bool {
        self.serving.load(Ordering::Acquire)
            && !self.leading.load(Ordering::Acquire)
            && self.since_epoch() >= self.last_round.load(Ordering::Relaxed) + GLANCE_GAP.as_nanos() as u64
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
    found: Vec<Job<L, F::State>>,
    expired: Vec<Expired<L, F::State>>,
    scratch: Vec<u32>,
    /// Progress as of `since`, while no worker was free.
    stalled: Option<(u64, Instant)>,
}

impl<L: Listener, F: Life<L>> ParkedDispatch<L, F> {
    /// Takes `base` (its poller and listener go to the leaders) and starts
    /// the minimum of workers.
    pub(crate) fn new(
        service: Arc<ConnectionService<L, F>>,
        base: EngineBase<L>,
        deadlines: ParkedOptions,
        group: GroupConfig,
    ) -> io::Result<Self> {
        let control = Arc::clone(service.control());
        let (jobs, queue) = crossbeam_channel::unbounded();
        let min_workers = group.min_workers;
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::new(Instant::now(), Arc::clone(&control))),
            registry: base.poller.registry().try_clone()?,
            lead: Mutex::new(Some(Lead::new(base))),
            service,
            deadlines,
            jobs,
            queue,
            group: ThreadGroup::new(group, Arc::clone(&control.counters.workers)),
            serving: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            followers: AtomicUsize::new(0),
            leading: AtomicBool::new(false),
            progress: AtomicU64::new(0),
            last_round: AtomicU64::new(0),
            epoch: Instant::now(),
            failure: Mutex::new(None),
        });
        let dispatch = ParkedDispatch {
            shared,
            dispatched: false,
            found: Vec::new(),
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

    /// `serve_forever` begins: the workers lead from now on.
    pub(crate) fn start(&mut self) {
        self.shared.serving.store(true, Ordering::Release);
        if !self.shared.leading.load(Ordering::Acquire) {
            self.shared.push(Job::Lead);
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
            {
                let mut guard = shared.lead.lock();
                let Some(lead) = guard.as_mut() else {
                    return Ok(Wake::Shutdown);
                };
                lead.round(&shared, deadline, Batch::One, &mut self.found)?;
            }
            if !self.found.is_empty() {
                for job in self.found.drain(..) {
                    shared.push(job);
                }
                self.dispatched = true;
                return Ok(Wake::Ready);
            }
            if deadline.is_some_and(|at| at <= Instant::now()) {
                return Ok(Wake::Timeout);
            }
        }
    }

    /// While the workers serve: deadlines the leader may not be there to
    /// see (when every worker is busy), growth, shutdown.
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
            shared
                .table
                .lock()
                .expire(now, &mut self.scratch, &mut self.expired);
            shared.close_expired(&mut self.expired);
            self.watch_leading();
            self.watch_growth(now);
            if deadline.is_some_and(|at| at <= now) {
                return Ok(Wake::Timeout);
            }
            let until = deadline.map_or(now + MONITOR_TICK, |at| at.min(now + MONITOR_TICK));
            control.sleep_unless_shutdown(until.saturating_duration_since(now));
        }
    }

    /// Wakes an idle worker to take the poller if none holds it: the last
    /// holder went to serve a request without handing it on.
    fn watch_leading(&self) {
        let shared = &self.shared;
        if !shared.leading.load(Ordering::Acquire)
            && shared.followers.load(Ordering::Acquire) > 0
            && shared.queue.is_empty()
        {
            shared.push(Job::Lead);
        }
    }

    /// Grows the pool when no worker is free (leading or waiting) and none
    /// has started a job for a while: they are stuck, not just busy.
    fn watch_growth(&mut self, now: Instant) {
        let shared = &self.shared;
        let free = shared.followers.load(Ordering::Acquire) > 0 || shared.leading.load(Ordering::Acquire);
        if free && shared.group.counts.live() > 0 {
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
        shared.stopping.store(true, Ordering::Release);
        // The leader was woken by the shutdown request. A last look at the
        // poller queues the requests parked connections received meanwhile
        // (closing those unread would lose them, and reset the
        // connection). Closing the poller then drops every registration
        // at once, cheaper than one call per connection; the listener
        // closes with it.
        if let Some(mut lead) = shared.lead.lock().take() {
            let mut ready = Vec::new();
            if let Err(e) = lead.collect_ready(&shared, &mut ready) {
                log::debug!("cannot look for requests sent meanwhile: {e}");
            }
            for job in ready {
                shared.push(job);
            }
            lead.base.listener.close();
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
