//! A group of worker threads: naming, stack size, how many are alive, the
//! minimum and maximum, retirement, and joining them at shutdown.
//!
//! Both dispatch strategies sit on it: the connection queue
//! ([`Pool`](super::Pool)) and the datagram receivers. Only live workers
//! are tracked (their join handles, which retiring workers remove), so
//! nothing grows with the number of requests served.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::{DEFAULT_KEEP_ALIVE, DEFAULT_MAX_WORKERS};

/// Sizing and naming of a group's threads.
#[derive(Clone, Debug)]
pub(crate) struct GroupConfig {
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) name_prefix: String,
    pub(crate) stack_size: Option<usize>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_workers: 0,
            max_workers: DEFAULT_MAX_WORKERS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            name_prefix: "socketserver-worker".to_owned(),
            stack_size: None,
        }
    }
}

/// Live and idle worker counts, shared with the server's stats.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounts {
    pub(crate) live: AtomicUsize,
    /// Workers waiting for a request. The connection queue lets it go
    /// negative: it counts waiting workers minus queued jobs.
    pub(crate) idle: AtomicIsize,
}

impl WorkerCounts {
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed).max(0) as usize
    }
}

/// How a worker's main function ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It left through [`ThreadGroup::try_retire`], which counted it out.
    Retired,
    /// The group is stopping.
    Stopped,
}

/// Runs a worker's exit bookkeeping when its thread ends.
struct ExitGuard {
    group: Arc<ThreadGroup>,
    id: usize,
    exit: Exit,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if thread::panicking() {
            log::error!("worker {} panicked outside a request", self.id);
        }
        self.group.exited(self.id, self.exit);
    }
}

/// The threads of one pool.
pub(crate) struct ThreadGroup {
    pub(crate) config: GroupConfig,
    pub(crate) counts: Arc<WorkerCounts>,
    next_id: AtomicUsize,
    handles: Mutex<HashMap<usize, JoinHandle<()>>>,
    exit_lock: Mutex<()>,
    all_exited: Condvar,
    /// Set once a spawn failure has been logged, until a spawn succeeds.
    spawn_failing: AtomicBool,
}

impl ThreadGroup {
    pub(crate) fn new(config: GroupConfig, counts: Arc<WorkerCounts>) -> Arc<Self> {
        Arc::new(ThreadGroup {
            config,
            counts,
            next_id: AtomicUsize::new(0),
            handles: Mutex::new(HashMap::new()),
            exit_lock: Mutex::new(()),
            all_exited: Condvar::new(),
            spawn_failing: AtomicBool::new(false),
        })
    }

    /// Counts a new worker in if below the maximum.
    fn reserve(&self) -> bool {
        let max = self.config.max_workers;
        self.counts
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            })
            .is_ok()
    }

    /// Starts a worker running `main` if the group is below its maximum:
    /// `Ok(false)` if it is at the maximum. The worker is counted in before
    /// it starts and out when it ends (or if it cannot start), in this one
    /// call, so the count can never be left wrong. A failure to start is
    /// logged once per run of failures.
    pub(crate) fn try_spawn(
        self: &Arc<Self>,
        main: impl FnOnce() -> Exit + Send + 'static,
    ) -> io::Result<bool> {
        if !self.reserve() {
            return Ok(false);
        }
        self.spawn_reserved(main).map(|()| true)
    }

    fn spawn_reserved(self: &Arc<Self>, main: impl FnOnce() -> Exit + Send + 'static) -> io::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut builder = thread::Builder::new().name(format!("{}-{id}", self.config.name_prefix));
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let group = Arc::clone(self);
        // Hold the lock across the spawn so a worker that retires at once
        // finds its handle to remove.
        let mut handles = self.handles.lock();
        match builder.spawn(move || {
            // Counts the worker out however `main` ends, a panic included.
            let mut guard = ExitGuard {
                group,
                id,
                exit: Exit::Stopped,
            };
            guard.exit = main();
        }) {
            Ok(handle) => {
                handles.insert(id, handle);
                self.spawn_failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                drop(handles);
                self.leave();
                if !self.spawn_failing.swap(true, Ordering::Relaxed) {
                    log::error!(
                        "cannot start a worker thread ({e}); requests wait for the {} running workers",
                        self.counts.live()
                    );
                }
                Err(e)
            }
        }
    }

    /// Counts a worker out if the group is above its minimum; the worker
    /// must then end, returning [`Exit::Retired`].
    pub(crate) fn try_retire(&self) -> bool {
        let min = self.config.min_workers;
        self.counts
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live > min).then_some(live - 1)
            })
            .is_ok()
    }

    fn exited(&self, id: usize, exit: Exit) {
        match exit {
            Exit::Retired => {
                // Detach: this thread is about to end and nobody joins it.
                self.handles.lock().remove(&id);
                self.notify_if_none_left(self.counts.live());
            }
            Exit::Stopped => self.leave(),
        }
    }

    fn leave(&self) {
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

    /// Waits until every worker has exited or `deadline` passes; true if
    /// they all exited.
    pub(crate) fn wait_exited(&self, deadline: Instant) -> bool {
        let mut guard = self.exit_lock.lock();
        while self.counts.live() > 0 {
            if self.all_exited.wait_until(&mut guard, deadline).timed_out() {
                return self.counts.live() == 0;
            }
        }
        true
    }

    /// Joins the workers' threads. Call after [`wait_exited`] returned
    /// true, so no join can block for long.
    ///
    /// [`wait_exited`]: ThreadGroup::wait_exited
    pub(crate) fn join(&self) {
        let handles = std::mem::take(&mut *self.handles.lock());
        for (_, handle) in handles {
            // Requests' panics are caught where they run; one escaping
            // here would be a bug in the pool itself.
            if handle.join().is_err() {
                log::error!("a worker thread panicked outside a request");
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn handle_count(&self) -> usize {
        self.handles.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(min: usize, max: usize) -> Arc<ThreadGroup> {
        let config = GroupConfig {
            min_workers: min,
            max_workers: max,
            name_prefix: "unit-group".into(),
            ..GroupConfig::default()
        };
        ThreadGroup::new(config, Arc::default())
    }

    /// A worker that waits until `release` is dropped.
    fn parked(release: &crossbeam_channel::Receiver<()>) -> impl FnOnce() -> Exit + Send + 'static {
        let release = release.clone();
        move || {
            let _ = release.recv_timeout(Duration::from_secs(10));
            Exit::Stopped
        }
    }

    #[test]
    fn spawning_stops_at_the_maximum() {
        let group = group(0, 2);
        let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
        assert!(group.try_spawn(parked(&release)).unwrap());
        assert!(group.try_spawn(parked(&release)).unwrap());
        assert!(!group.try_spawn(parked(&release)).unwrap());
        assert_eq!(group.counts.live(), 2);
        drop(release_tx);
        assert!(group.wait_exited(Instant::now() + Duration::from_secs(10)));
        group.join();
    }

    #[test]
    fn retire_stops_at_the_minimum() {
        let group = group(1, 4);
        // Counts alone, no threads: retiring only takes a count.
        assert!(group.reserve() && group.reserve());
        assert!(group.try_retire());
        assert!(!group.try_retire());
        assert_eq!(group.counts.live(), 1);
    }

    #[test]
    fn workers_are_named_joined_and_counted_out() {
        let group = group(0, 4);
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..3 {
            let tx = tx.clone();
            let spawned = group
                .try_spawn(move || {
                    let _ = tx.send(thread::current().name().unwrap_or("").to_owned());
                    Exit::Stopped
                })
                .unwrap();
            assert!(spawned);
        }
        let mut names: Vec<String> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["unit-group-0", "unit-group-1", "unit-group-2"]);
        assert!(group.wait_exited(Instant::now() + Duration::from_secs(10)));
        group.join();
        assert_eq!(group.handle_count(), 0);
    }

    #[test]
    fn a_retired_worker_removes_its_handle() {
        let group = group(0, 1);
        let retiring = Arc::clone(&group);
        let spawned = group
            .try_spawn(move || {
                assert!(retiring.try_retire());
                Exit::Retired
            })
            .unwrap();
        assert!(spawned);
        assert!(group.wait_exited(Instant::now() + Duration::from_secs(10)));
        // The handle goes right after the count.
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.handle_count() > 0 {
            assert!(Instant::now() < deadline, "the retired worker kept its handle");
            thread::yield_now();
        }
    }

    #[test]
    fn a_panicking_worker_is_still_counted_out() {
        let group = group(0, 1);
        assert!(group.try_spawn(|| panic!("a bug in a worker loop")).unwrap());
        assert!(group.wait_exited(Instant::now() + Duration::from_secs(10)));
        group.join();
        assert_eq!(group.counts.live(), 0);
    }
}
