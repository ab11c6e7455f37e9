//! A round of the loop: the work of whichever thread holds the poller.
//!
//! One round waits in the poller (unless something is ready already), then
//! takes in everything ready: parked connections with a request, those
//! queued again, deadlines, new connections. What it finds becomes jobs.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::table::{Conn, Expired, Key, Table};
use crate::config::OverloadPolicy;
use crate::handler::Lifecycle;
use crate::pool::Refusal;
use crate::request::StreamRequest;
use crate::server::core::Batch;
use crate::server::stream::connection::refuse;
use crate::server::stream::listener::LISTENER;
use crate::server::stream::{EngineBase, accept_each};
use crate::transport::Listener;

/// A worker's job.
pub(crate) enum Job<L: Listener, S> {
    /// A new connection, to verify, open and serve or park.
    Open {
        key: Key,
        stream: Arc<L::Stream>,
        peer: L::Addr,
    },
    /// A connection that may have a request waiting: the poller said it
    /// became readable, or it had one read ahead.
    Ready(Conn<L, S>),
    /// Not work: the worker that gets it is to take the poller, because
    /// the one that held it is busy serving.
    Lead,
    /// Not work: the worker that gets it exits. A stopping server queues
    /// one per worker behind every job it queued, so a worker never exits
    /// while a request waits (an empty queue is not enough: the stopping
    /// thread may still be queuing what the poller holds).
    Stop,
}

/// The poller and what only its holder touches.
pub(crate) struct Lead<L: Listener, S> {
    pub(crate) base: EngineBase<L>,
    expired: Vec<Expired<L, S>>,
    scratch: Vec<u32>,
}

impl<L: Listener, S: Send + 'static> Lead<L, S> {
    pub(crate) fn new(base: EngineBase<L>) -> Self {
        Lead {
            base,
            expired: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Whether new connections may be accepted now.
    fn may_accept(&mut self, now: Instant) -> bool {
        self.base.accept_due(now)
            && !(self.base.overload == OverloadPolicy::Block && self.base.control.at_capacity())
    }

    /// One round: waits until something is ready (or `deadline` passes, or
    /// the waker is woken), then turns all that is ready into `jobs`
    /// (at most one new connection for [`Batch::One`]).
    pub(crate) fn round<F: Lifecycle<StreamRequest<L::Stream>, State = S>>(
        &mut self,
        shared: &Shared<L, F>,
        deadline: Option<Instant>,
        batch: Batch,
        jobs: &mut Vec<Job<L, S>>,
    ) -> io::Result<()> {
        let control = Arc::clone(&self.base.control);
        let now = Instant::now();
        let next_deadline = shared.table.lock().next_deadline();
        let ready_now = self.may_accept(now) || next_deadline.is_some_and(|at| at <= now);
        let mut fresh_events = false;
        if !ready_now && !control.is_shutdown_requested() {
            let until = [deadline, next_deadline, self.base.retry_at]
                .into_iter()
                .flatten()
                .min();
            self.base.poller.wait(until)?;
            fresh_events = true;
        }
        let now = Instant::now();
        let busy_until = now + shared.deadlines.request_timeout;
        // Even when the wait ended for shutdown: the poller reports each
        // readiness once, so a request that came with the wake-up would
        // otherwise be closed unread when the server stops.
        let stopping = control.is_shutdown_requested();
        {
            let mut table = shared.table.lock();
            if fresh_events {
                self.ready_jobs(&mut table, busy_until, jobs);
            }
            if !stopping {
                table.expire(now, &mut self.scratch, &mut self.expired);
            }
        }
        if stopping {
            return Ok(());
        }
        shared.close_expired(&mut self.expired);
        if self.may_accept(now) {
            self.accept(shared, busy_until, batch, jobs)?;
        }
        Ok(())
    }

    /// The last look at the poller, when the server stops: parked
    /// connections whose clients have sent a request meanwhile become jobs
    /// (served within the grace period) instead of being closed unread.
    /// Accepts nothing.
    pub(crate) fn collect_ready<F: Lifecycle<StreamRequest<L::Stream>, State = S>>(
        &mut self,
        shared: &Shared<L, F>,
        jobs: &mut Vec<Job<L, S>>,
    ) -> io::Result<()> {
        self.base.poller.wait(Some(Instant::now()))?;
        let busy_until = Instant::now() + shared.deadlines.request_timeout;
        self.ready_jobs(&mut shared.table.lock(), busy_until, jobs);
        Ok(())
    }

    /// What the last wait reported: parked connections with something to
    /// read become jobs (busy until `busy_until`); the listener marks new
    /// connections pending.
    fn ready_jobs(&mut self, table: &mut Table<L, S>, busy_until: Instant, jobs: &mut Vec<Job<L, S>>) {
        for ready in self.base.poller.ready() {
            if ready.token == LISTENER {
                self.base.pending = true;
            } else if let Some(key) = Key::from_token(ready.token)
                && let Some(conn) = table.take_ready(key, busy_until, ready.closed)
            {
                jobs.push(Job::Ready(conn));
            }
        }
    }

    /// Accepts the pending connections: each becomes a job that opens it.
    fn accept<F: Lifecycle<StreamRequest<L::Stream>, State = S>>(
        &mut self,
        shared: &Shared<L, F>,
        busy_until: Instant,
        batch: Batch,
        jobs: &mut Vec<Job<L, S>>,
    ) -> io::Result<()> {
        let overload = self.base.overload;
        accept_each(&mut self.base, batch, |control, (stream, peer)| {
            // Counted in already, so at capacity means beyond it.
            if overload == OverloadPolicy::Reject && control.over_capacity() {
                return refuse(control, (stream, peer), &Refusal::Overloaded);
            }
            let stream = Arc::new(stream);
            let key = shared.table.lock().insert(Arc::clone(&stream), busy_until);
            jobs.push(Job::Open { key, stream, peer });
        })?;
        Ok(())
    }
}
