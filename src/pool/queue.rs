//! The connection queue: how a stream server hands connections to
//! workers.
//!
//! Workers are created on demand up to the group's maximum, idle ones
//! retire after the keep-alive (down to the minimum), and beyond the
//! maximum a bounded queue holds connections until a worker is free.
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

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, TrySendError};

use super::group::{Exit, GroupConfig, ThreadGroup, WorkerCounts};
use crate::config::{DEFAULT_QUEUE_CAPACITY, OverloadPolicy};

/// The work a pool's workers do: the server's request processing.
pub(crate) trait Work: Send + Sync + 'static {
    /// One unit of work: an accepted connection.
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

/// A connection pool's configuration: its threads, its queue, its policy.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) group: GroupConfig,
    pub(crate) queue_capacity: usize,
    pub(crate) overload: OverloadPolicy,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            group: GroupConfig::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            overload: OverloadPolicy::Block,
        }
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

struct PoolInner<W: Work> {
    work: W,
    jobs: Receiver<W::Job>,
    group: Arc<ThreadGroup>,
    /// Set when queued jobs are to be discarded rather than run.
    abandoned: AtomicBool,
}

/// A pool of worker threads running `W`'s jobs.
///
/// Dropping it closes it without waiting: workers finish their current job
/// and whatever is queued, then exit on their own. Servers close their pool
/// explicitly, with a grace period, before it is dropped.
pub(crate) struct Pool<W: Work> {
    shared: Arc<PoolInner<W>>,
    /// Dropped to close the pool: workers drain the queue, then exit.
    sender: Option<Sender<W::Job>>,
    /// Disconnects when shutdown is requested; wakes a blocked submitter.
    stop: Receiver<()>,
    overload: OverloadPolicy,
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
        let min = config.group.min_workers;
        let mut pool = Pool {
            shared: Arc::new(PoolInner {
                work,
                jobs,
                group: ThreadGroup::new(config.group, counts),
                abandoned: AtomicBool::new(false),
            }),
            sender: Some(sender),
            stop,
            overload: config.overload,
        };
        for _ in 0..min {
            if let Err(e) = PoolInner::spawn(&pool.shared) {
                pool.close();
                return Err(e);
            }
        }
        Ok(pool)
    }

    fn counts(&self) -> &WorkerCounts {
        &self.shared.group.counts
    }

    /// Takes back the claim `submit` made on an idle worker (or the debt
    /// it ran up) for a job that is not going into the queue after all.
    fn withdraw_claim(&self) {
        self.counts().idle.fetch_add(1, Ordering::AcqRel);
    }

    /// Hands `job` to a worker, starting one if none is idle. Follows the
    /// overload policy when the pool is saturated; a refused job is given
    /// back so the caller can close it and account for it.
    pub(crate) fn submit(&self, job: W::Job) -> Result<(), (W::Job, Refusal)> {
        let Some(sender) = &self.sender else {
            return Err((job, Refusal::Closing));
        };
        let group = &self.shared.group;
        let had_idle = self.counts().idle.fetch_sub(1, Ordering::AcqRel) > 0;
        let mut may_reject = false;
        if !had_idle {
            match PoolInner::spawn(&self.shared) {
                Ok(true) => {}
                Ok(false) => may_reject = true,
                Err(_) if group.counts.live() == 0 => {
                    self.withdraw_claim();
                    return Err((job, Refusal::NoWorkers));
                }
                // The job waits for the workers there are.
                Err(_) => {}
            }
        }
        match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                if may_reject && self.overload == OverloadPolicy::Reject {
                    self.withdraw_claim();
                    return Err((job, Refusal::Overloaded));
                }
                self.send_blocking(sender, job)
            }
            Err(TrySendError::Disconnected(job)) => {
                self.withdraw_claim();
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
        let refused = if operation.index() == send_index {
            match operation.send(sender, job) {
                Ok(()) => return Ok(()),
                Err(e) => e.into_inner(),
            }
        } else {
            let _ = operation.recv(&self.stop);
            job
        };
        self.withdraw_claim();
        Err((refused, Refusal::Closing))
    }

    /// Stops taking jobs. Workers finish what is queued, then exit.
    pub(crate) fn close(&mut self) {
        self.sender = None;
    }

    /// Makes workers discard queued jobs instead of running them.
    pub(crate) fn abandon(&self) {
        self.shared.abandoned.store(true, Ordering::Release);
    }

    /// The pool's threads, to wait for and join.
    pub(crate) fn group(&self) -> &ThreadGroup {
        &self.shared.group
    }
}

impl<W: Work> PoolInner<W> {
    /// Starts a worker if the group is below its maximum.
    fn spawn(shared: &Arc<Self>) -> std::io::Result<bool> {
        let worker = Arc::clone(shared);
        shared.group.try_spawn(move || worker.worker_main())
    }

    fn worker_main(&self) -> Exit {
        let mut local = self.work.start_worker();
        loop {
            match self.next_job() {
                Ok(job) if self.abandoned.load(Ordering::Acquire) => self.work.discard(job),
                Ok(job) => self.work.run(&mut local, job),
                Err(exit) => return exit,
            }
        }
    }

    /// Waits for the next job. `Err`: this worker is to exit, because it
    /// retired or because the pool closed and the queue is empty; its idle
    /// count is taken back.
    fn next_job(&self) -> Result<W::Job, Exit> {
        let idle = &self.group.counts.idle;
        idle.fetch_add(1, Ordering::AcqRel);
        loop {
            match self.jobs.recv_timeout(self.group.config.keep_alive) {
                Ok(job) => return Ok(job),
                Err(RecvTimeoutError::Timeout) => {
                    if self.try_retire() {
                        return Err(Exit::Retired);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    idle.fetch_sub(1, Ordering::AcqRel);
                    return Err(Exit::Stopped);
                }
            }
        }
    }

    /// Takes an idle worker out of the counts if it may retire: the pool is
    /// above its minimum and no queued job is owed to the waiting workers.
    fn try_retire(&self) -> bool {
        let counts = &self.group.counts;
        if counts.live() <= self.group.config.min_workers {
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
        if !self.group.try_retire() {
            counts.idle.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{Receiver as Rx, Sender as Tx, unbounded};
    use std::thread;
    use std::time::{Duration, Instant};

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

    fn one_worker() -> GroupConfig {
        GroupConfig {
            max_workers: 1,
            ..GroupConfig::default()
        }
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
        assert!(pool.group().wait_exited(Instant::now() + Duration::from_secs(10)));
        pool.group().join();
        assert_eq!(pool.counts().live(), 0);
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
            wait_until(|| pool.counts().idle() == 1, "the worker never became idle again");
        }
        assert_eq!(pool.counts().live(), 1, "sequential jobs need one worker");
        finish(&mut pool);
    }

    #[test]
    fn grows_on_demand_and_retires_idle_workers() {
        let config = PoolConfig {
            group: GroupConfig {
                keep_alive: Duration::from_millis(20),
                min_workers: 1,
                ..GroupConfig::default()
            },
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        wait_until(
            || pool.counts().idle() == 1,
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
        assert_eq!(pool.counts().live(), 8);
        drop(release_tx);
        // Extra workers retire after the keep-alive; the minimum stays.
        // A retiring worker leaves the count, then removes its handle.
        wait_until(
            || pool.counts().live() == 1 && pool.group().handle_count() == 1,
            "idle workers never retired, or left their handles",
        );
        finish(&mut pool);
    }

    #[test]
    fn reject_policy_refuses_when_saturated() {
        let config = PoolConfig {
            group: one_worker(),
            queue_capacity: 1,
            overload: OverloadPolicy::Reject,
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
            group: one_worker(),
            queue_capacity: 0,
            ..PoolConfig::default()
        };
        let (mut pool, stop) = pool(config);
        let (release_tx, release_rx) = unbounded();
        hold_worker(&pool, &release_rx);
        thread::scope(|s| {
            let blocked = s.spawn(|| pool.submit(Job::Reply(unbounded().0)));
            // The submitter owes the job to the pool before it blocks.
            wait_until(
                || pool.counts().idle.load(Ordering::Acquire) < 0,
                "the submitter never queued its job",
            );
            drop(stop);
            assert!(matches!(blocked.join().unwrap(), Err((_, Refusal::Closing))));
        });
        drop(release_tx);
        finish(&mut pool);
    }

    #[test]
    fn abandoned_jobs_are_discarded() {
        let config = PoolConfig {
            group: one_worker(),
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
            group: GroupConfig {
                name_prefix: "unit-pool".into(),
                ..GroupConfig::default()
            },
            ..PoolConfig::default()
        };
        let (mut pool, _stop) = pool(config);
        let (tx, rx) = unbounded();
        assert!(pool.submit(Job::Reply(tx)).is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "unit-pool-0");
        finish(&mut pool);
    }
}
