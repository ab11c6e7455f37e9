//! The worker pool behind the threading servers.
//!
//! Python's `ThreadingMixIn` starts a thread per request. This pool keeps
//! workers and reuses them: they are created on demand up to a maximum,
//! idle ones retire after a keep-alive (down to a minimum), and beyond the
//! maximum a bounded queue holds jobs until a worker is free.
//!
//! # Hand-off
//! Submitting a job costs one atomic decrement and one channel send; no
//! lock and no allocation. The atomic `idle` counter is the number of
//! workers waiting on the channel minus the jobs sitting in it. A submitter
//! decrements it first: if the old value was positive a waiting worker is
//! certain to take the job; otherwise it spawns a worker (if below the
//! maximum) and the job waits in the channel for whichever worker is free
//! first. A worker that times out may only retire if it can take itself
//! off the count while the count is positive; when it is not, a job is on
//! its way to the waiting workers and it waits on. Jobs travel only through
//! the channel, so a failed thread spawn never loses one.
//!
//! # Bookkeeping
//! Only live workers are tracked (their join handles, removed by workers
//! that retire), so nothing grows with the number of jobs served.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};

/// The work a pool's workers do: the server's request processing.
pub(crate) trait Work: Send + Sync + 'static {
    /// One unit of work: an accepted connection or a datagram.
    type Job: Send + 'static;
    /// State a worker keeps across jobs (buffers, its force-close slot).
    type Local;

    /// Builds a worker's state; runs on the worker thread when it starts.
    fn start_worker(&self) -> Self::Local;
    /// Does one job.
    fn run(&self, local: &mut Self::Local, job: Self::Job);
    /// Disposes of a job that will never run (the pool was abandoned).
    fn discard(&self, job: Self::Job);
}

impl<W: Work> Work for Arc<W> {
    type Job = W::Job;
    type Local = W::Local;

    fn start_worker(&self) -> W::Local {
        (**self).start_worker()
    }

    fn run(&self, local: &mut W::Local, job: W::Job) {
        (**self).run(local, job)
    }

    fn discard(&self, job: W::Job) {
        (**self).discard(job)
    }
}

/// What the server does with a new request when every worker is busy, the
/// pool is at its maximum and the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverloadPolicy {
    /// Wait for room (the default). The accept loop stops accepting, so new
    /// clients wait in the kernel's listen backlog and nothing is dropped;
    /// a datagram server stops reading, so datagrams wait in the socket's
    /// receive buffer.
    #[default]
    Block,
    /// Refuse the request at once: a connection is closed without being
    /// served (counted in [`Stats::refused`](crate::Stats::refused)); a
    /// datagram is dropped (counted likewise). Keeps latency bounded for
    /// the clients that are served, at the price of failing the others.
    Reject,
}

/// Sizing and naming of the worker pool.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) overload: OverloadPolicy,
    pub(crate) name_prefix: String,
    pub(crate) stack_size: Option<usize>,
}

/// The default maximum number of workers. Each connection holds a worker
/// for its whole life, so this is the number of clients served at once;
/// it is set as high as a thread-per-connection server would reach in
/// practice.
pub const DEFAULT_MAX_WORKERS: usize = 16_384;
/// The default idle time after which a worker above the minimum retires.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The default number of requests that may wait for a worker when every
/// worker is busy and the pool is at its maximum.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            min_workers: 0,
            max_workers: DEFAULT_MAX_WORKERS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            overload: OverloadPolicy::Block,
            name_prefix: "socketserver-worker".to_owned(),
            stack_size: None,
        }
    }
}

impl PoolConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_workers == 0 {
            return Err("max_workers must be at least 1".into());
        }
        if self.min_workers > self.max_workers {
            return Err(format!(
                "min_workers ({}) exceeds max_workers ({})",
                self.min_workers, self.max_workers
            ));
        }
        Ok(())
    }
}

/// Live and idle worker counts, shared with the server's stats.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounts {
    live: AtomicUsize,
    /// Waiting workers minus queued jobs; negative when jobs wait.
    idle: AtomicIsize,
}

impl WorkerCounts {
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed).max(0) as usize
    }
}

/// Why a job was handed back instead of queued.
pub(crate) enum Refusal {
    /// The pool is saturated and the policy is [`OverloadPolicy::Reject`].
    Overloaded,
    /// The pool is closing (shutdown was requested while waiting for room).
    Closing,
    /// No worker exists and none could be started.
    NoWorkers,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Overloaded => "every worker is busy and the queue is full",
            Refusal::Closing => "the server is shutting down",
            Refusal::NoWorkers => "no worker thread could be started",
        })
    }
}

struct Shared<W: Work> {
    work: W,
    config: PoolConfig,
    jobs: Receiver<W::Job>,
    counts: Arc<WorkerCounts>,
    next_id: AtomicUsize,
    /// Join handles of live workers; a retiring worker removes its own.
    handles: Mutex<HashMap<usize, JoinHandle<()>>>,
    /// Signalled when `live` drops to zero.
    all_exited: Condvar,
    exit_lock: Mutex<()>,
    /// Set when queued jobs are to be discarded rather than run.
    abandoned: AtomicBool,
    /// Set once a spawn failure has been logged, until a spawn succeeds.
    spawn_failing: AtomicBool,
}

/// A pool of worker threads running `W`'s jobs.
///
/// Dropping it closes it without waiting: workers finish their current job
/// and whatever is queued, then exit on their own. Servers close their pool
/// explicitly, with a grace period, before it is dropped.
pub(crate) struct Pool<W: Work> {
    shared: Arc<Shared<W>>,
    /// Dropped to close the pool: workers drain the queue, then exit.
    sender: Option<Sender<W::Job>>,
    /// Disconnects when shutdown is requested; wakes a blocked submitter.
    stop: Receiver<()>,
}

impl<W: Work> Pool<W> {
    /// Creates the pool and starts its minimum number of workers.
    pub(crate) fn new(
        work: W,
        config: PoolConfig,
        counts: Arc<WorkerCounts>,
        stop: Receiver<()>,
    ) -> std::io::Result<Self> {
        let (sender, jobs) = crossbeam_channel::bounded(config.queue_capacity);
        let min = config.min_workers;
        let mut pool = Pool {
            shared: Arc::new(Shared {
                work,
                config,
                jobs,
                counts,
                next_id: AtomicUsize::new(0),
                handles: Mutex::new(HashMap::new()),
                all_exited: Condvar::new(),
                exit_lock: Mutex::new(()),
                abandoned: AtomicBool::new(false),
                spawn_failing: AtomicBool::new(false),
            }),
            sender: Some(sender),
            stop,
        };
        for _ in 0..min {
            pool.shared.reserve_live();
            if let Err(e) = Shared::spawn(&pool.shared) {
                pool.close();
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// Hands `job` to a worker, starting one if none is idle. Follows the
    /// overload policy when the pool is saturated; a refused job is given
    /// back so the caller can close it and account for it.
    pub(crate) fn submit(&self, job: W::Job) -> Result<(), (W::Job, Refusal)> {
        let shared = &self.shared;
        let Some(sender) = &self.sender else {
            return Err((job, Refusal::Closing));
        };
        let had_idle = shared.counts.idle.fetch_sub(1, Ordering::AcqRel) > 0;
        let mut may_reject = false;
        if !had_idle {
            if shared.reserve_live() {
                if let Err(e) = Shared::spawn(shared) {
                    shared.log_spawn_failure(&e);
                    if shared.counts.live() == 0 {
                        shared.counts.idle.fetch_add(1, Ordering::AcqRel);
                        return Err((job, Refusal::NoWorkers));
                    }
                }
            } else {
                may_reject = true;
            }
        }
        match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                if may_reject && shared.config.overload == OverloadPolicy::Reject {
                    shared.counts.idle.fetch_add(1, Ordering::AcqRel);
                    return Err((job, Refusal::Overloaded));
                }
                self.send_blocking(sender, job)
            }
            Err(TrySendError::Disconnected(job)) => {
                shared.counts.idle.fetch_add(1, Ordering::AcqRel);
                Err((job, Refusal::Closing))
            }
        }
    }

    /// Waits for room in the queue, or for shutdown.
    fn send_blocking(&self, sender: &Sender<W::Job>, job: W::Job) -> Result<(), (W::Job, Refusal)> {
        let mut select = Select::new();
        let send_index = select.send(sender);
        select.recv(&self.stop);
        let operation = select.select();
        if operation.index() == send_index {
            match operation.send(sender, job) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.shared.counts.idle.fetch_add(1, Ordering::AcqRel);
                    return Err((e.into_inner(), Refusal::Closing));
                }
            }
        }
        let _ = operation.recv(&self.stop);
        self.shared.counts.idle.fetch_add(1, Ordering::AcqRel);
        Err((job, Refusal::Closing))
    }

    /// Stops taking jobs. Workers finish what is queued, then exit.
    pub(crate) fn close(&mut self) {
        self.sender = None;
    }

    /// Makes workers discard queued jobs instead of running them.
    pub(crate) fn abandon(&self) {
        self.shared.abandoned.store(true, Ordering::Release);
    }

    /// Waits until every worker has exited or `deadline` passes; true if
    /// they all exited.
    pub(crate) fn wait_exited(&self, deadline: Instant) -> bool {
        let shared = &self.shared;
        let mut guard = shared.exit_lock.lock();
        while shared.counts.live() > 0 {
            if shared.all_exited.wait_until(&mut guard, deadline).timed_out() {
                return shared.counts.live() == 0;
            }
        }
        true
    }

    /// Joins the workers' threads. Call after [`wait_exited`] returned
    /// true, so no join can block for long.
    ///
    /// [`wait_exited`]: Pool::wait_exited
    pub(crate) fn join(&self) {
        let handles = std::mem::take(&mut *self.shared.handles.lock());
        for (_, handle) in handles {
            // A worker's panics are caught around each job; one escaping
            // here would be a bug in the pool itself.
            if handle.join().is_err() {
                log::error!("a worker thread panicked outside a request");
            }
        }
    }
}

impl<W: Work> Shared<W> {
    /// Counts a new worker in if below the maximum.
    fn reserve_live(&self) -> bool {
        let max = self.config.max_workers;
        self.counts
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            })
            .is_ok()
    }

    /// Starts a worker already counted by `reserve_live`.
    fn spawn(shared: &Arc<Self>) -> std::io::Result<()> {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut builder = thread::Builder::new().name(format!("{}-{id}", shared.config.name_prefix));
        if let Some(size) = shared.config.stack_size {
            builder = builder.stack_size(size);
        }
        let worker = Arc::clone(shared);
        // Hold the lock across the spawn so a worker that retires at once
        // finds its handle to remove.
        let mut handles = shared.handles.lock();
        match builder.spawn(move || worker.worker_main(id)) {
            Ok(handle) => {
                handles.insert(id, handle);
                shared.spawn_failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                drop(handles);
                shared.worker_gone();
                Err(e)
            }
        }
    }

    fn log_spawn_failure(&self, error: &std::io::Error) {
        if !self.spawn_failing.swap(true, Ordering::Relaxed) {
            log::error!(
                "cannot start a worker thread ({error}); requests wait for the {} running workers",
                self.counts.live()
            );
        }
    }

    fn worker_main(&self, id: usize) {
        let mut local = self.work.start_worker();
        let retired = loop {
            match self.next_job() {
                Ok(job) if self.abandoned.load(Ordering::Acquire) => self.work.discard(job),
                Ok(job) => self.work.run(&mut local, job),
                Err(retired) => break retired,
            }
        };
        drop(local);
        if retired {
            // Detach: this thread is about to end and nobody will join it.
            self.handles.lock().remove(&id);
            self.notify_if_none_left(self.counts.live());
        } else {
            self.worker_gone();
        }
    }

    /// Waits for the next job. `Err(retired)`: this worker is to exit,
    /// because it retired (already counted out of `live`) or because the
    /// pool closed and the queue is empty. Its idle count is taken back.
    fn next_job(&self) -> Result<W::Job, bool> {
        self.counts.idle.fetch_add(1, Ordering::AcqRel);
        loop {
            match self.jobs.recv_timeout(self.config.keep_alive) {
                Ok(job) => return Ok(job),
                Err(RecvTimeoutError::Timeout) => {
                    if self.try_retire() {
                        return Err(true);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.counts.idle.fetch_sub(1, Ordering::AcqRel);
                    return Err(false);
                }
            }
        }
    }

    /// Takes an idle worker out of the counts if it may retire: the pool is
    /// above its minimum and no queued job is owed to the waiting workers.
    fn try_retire(&self) -> bool {
        let counts = &self.counts;
        let min = self.config.min_workers;
        if counts.live() <= min {
            return false;
        }
        // The CAS on `idle` refuses while jobs are owed; the one on `live`
        // keeps two workers retiring at once from going below the minimum.
        let unowed = counts
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| {
                (idle > 0).then_some(idle - 1)
            });
        if unowed.is_err() {
            return false;
        }
        let above_min = counts
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live > min).then_some(live - 1)
            });
        if above_min.is_err() {
            counts.idle.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Takes an exiting (or never started) worker out of the live count.
    fn worker_gone(&self) {
        let left = self.counts.live.fetch_sub(1, Ordering::AcqRel) - 1;
        self.notify_if_none_left(left);
    }

    fn notify_if_none_left(&self, left: usize) {
        if left == 0 {
            // Taking the lock orders this after a waiter's check of `live`.
            let _guard = self.exit_lock.lock();
            self.all_exited.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{Receiver as Rx, Sender as Tx, unbounded};

    /// Jobs are channels to answer on, so tests can hold a worker busy.
    struct Echo;
    enum Job {
        Reply(Tx<String>),
        Hold(Rx<()>, Tx<()>),
    }
    impl Work for Echo {
        type Job = Job;
        type Local = ();
        fn start_worker(&self) {}
        fn run(&self, _: &mut (), job: Job) {
            match job {
                Job::Reply(tx) => {
                    let _ = tx.send(thread::current().name().unwrap_or("").to_owned());
                }
                Job::Hold(release, started) => {
                    let _ = started.send(());
                    let _ = release.recv_timeout(Duration::from_secs(10));
                }
            }
        }
        fn discard(&self, _: Job) {}
    }

    fn pool(config: PoolConfig) -> (Pool<Echo>, Tx<()>) {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let pool = Pool::new(Echo, config, Arc::default(), stop_rx).unwrap();
        (pool, stop_tx)
    }

    /// Submits a job that keeps a worker busy until the returned sender is
    /// dropped, and waits until a worker has started it.
    fn hold_worker(pool: &Pool<Echo>, release: &Rx<()>) {
        let (started_tx, started_rx) = unbounded();
        assert!(pool.submit(Job::Hold(release.clone(), started_tx)).is_ok());
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }

    /// Waits (bounded) for a condition that background threads make true.
    fn wait_until(condition: impl Fn() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "{what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish(pool: &mut Pool<Echo>) {
        pool.close();
        assert!(pool.wait_exited(Instant::now() + Duration::from_secs(10)));
        pool.join();
        assert_eq!(pool.shared.counts.live(), 0);
    }

    #[test]
    fn reuses_an_idle_worker() {
        let (mut pool, _stop) = pool(PoolConfig::default());
        let (tx, rx) = unbounded();
        for _ in 0..50 {
            assert!(pool.submit(Job::Reply(tx.clone())).is_ok());
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
            // The worker replies before it is back waiting; a job sent in
            // between would rightly start a second worker.
            wait_until(
                || pool.shared.counts.idle() == 1,
                "the worker never became idle again",
            );
        }
        assert_eq!(pool.shared.counts.live(), 1, "sequential jobs need one worker");
        finish(&mut pool);
    }

    #[test]
    fn grows_on_demand_and_retires_idle_workers() {
        let config = PoolConfig {
            keep_alive: Duration::from_millis(20),
            min_workers: 1,
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        wait_until(
            || pool.shared.counts.idle() == 1,
            "the minimum worker never became idle",
        );
        let (release_tx, release_rx) = unbounded();
        let (started_tx, started_rx) = unbounded();
        for _ in 0..8 {
            assert!(
                pool.submit(Job::Hold(release_rx.clone(), started_tx.clone()))
                    .is_ok()
            );
        }
        for _ in 0..8 {
            started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(pool.shared.counts.live(), 8);
        drop(release_tx);
        // Extra workers retire after the keep-alive; the minimum stays.
        // A retiring worker leaves the count, then removes its handle.
        wait_until(
            || pool.shared.counts.live() == 1 && pool.shared.handles.lock().len() == 1,
            "idle workers never retired, or left their handles",
        );
        finish(&mut pool);
    }

    #[test]
    fn reject_policy_refuses_when_saturated() {
        let config = PoolConfig {
            max_workers: 1,
            queue_capacity: 1,
            overload: OverloadPolicy::Reject,
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        let (release_tx, release_rx) = unbounded();
        hold_worker(&pool, &release_rx);
        // One queued job fits; the next is refused.
        let (started_tx, _started_rx) = unbounded();
        assert!(
            pool.submit(Job::Hold(release_rx.clone(), started_tx.clone()))
                .is_ok()
        );
        let refused = pool.submit(Job::Hold(release_rx.clone(), started_tx));
        assert!(matches!(refused, Err((_, Refusal::Overloaded))));
        drop(release_tx);
        finish(&mut pool);
    }

    #[test]
    fn blocked_submit_returns_on_stop() {
        let config = PoolConfig {
            max_workers: 1,
            queue_capacity: 0,
            ..PoolConfig::default()
        };
        let (mut pool, stop) = pool(config);
        let (release_tx, release_rx) = unbounded();
        hold_worker(&pool, &release_rx);
        thread::scope(|s| {
            let blocked = s.spawn(|| pool.submit(Job::Reply(unbounded().0)));
            drop(stop);
            assert!(matches!(blocked.join().unwrap(), Err((_, Refusal::Closing))));
        });
        drop(release_tx);
        finish(&mut pool);
    }

    #[test]
    fn abandoned_jobs_are_discarded() {
        let config = PoolConfig {
            max_workers: 1,
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        let (release_tx, release_rx) = unbounded();
        hold_worker(&pool, &release_rx);
        let (reply_tx, reply_rx) = unbounded();
        assert!(pool.submit(Job::Reply(reply_tx)).is_ok());
        pool.abandon();
        drop(release_tx);
        finish(&mut pool);
        assert!(reply_rx.try_recv().is_err(), "an abandoned job ran");
    }

    #[test]
    fn workers_carry_the_name_prefix() {
        let config = PoolConfig {
            name_prefix: "unit-pool".into(),
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        let (tx, rx) = unbounded();
        assert!(pool.submit(Job::Reply(tx)).is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "unit-pool-0");
        finish(&mut pool);
    }

    #[test]
    fn rejects_bad_sizes() {
        let config = PoolConfig {
            min_workers: 3,
            max_workers: 2,
            ..PoolConfig::default()
        };
        assert!(config.validate().is_err());
        let config = PoolConfig {
            max_workers: 0,
            ..PoolConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
