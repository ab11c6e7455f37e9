//! Taking work in: the jobs of a parked server, and whichever worker the
//! listener's readiness (or a wake-up once there is room again) reaches
//! accepting what is pending, under one lock, with a job to open each.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::table::{Conn, Key};
use super::wheel::Tick;
use super::{Life, Shared};
use crate::config::OverloadPolicy;
use crate::pool::Refusal;
use crate::server::core::Batch;
use crate::server::stream::connection::refuse;
use crate::server::stream::listener::LISTENER;
use crate::server::stream::{EngineBase, accept_each};
use crate::sys::ReadyEvents;
use crate::transport::Listener;

/// A worker's job: what it serves that no readiness event brought it.
pub(crate) enum Job<L: Listener, S> {
    /// A new connection, to open (verify, open, first read) and serve or
    /// park.
    Open {
        key: Key,
        stream: Arc<L::Stream>,
        peer: L::Addr,
    },
    /// A connection that may have a request waiting: it had one read
    /// ahead, or bytes came while a worker had it.
    Ready(Conn<L, S>),
    /// Not work: the worker that gets it looks at the poller again (the
    /// server has started serving).
    Poll,
    /// Not work: the worker that gets it exits. A stopping server queues
    /// one per worker behind every job it queued (an empty queue is not
    /// enough: the stopping thread may still be queuing what the poller
    /// held). A worker still busy may queue more behind them: a worker
    /// that gets its stop while connections are queued puts it back.
    Stop,
}

impl<L: Listener, S> Job<L, S> {
    /// A connection to open or serve, as opposed to an order to a worker.
    pub(super) fn is_work(&self) -> bool {
        matches!(self, Job::Open { .. } | Job::Ready(_))
    }
}

impl<L: Listener> EngineBase<L> {
    /// Whether new connections may be accepted now.
    fn may_accept(&mut self, now: Instant) -> bool {
        self.accept_due(now) && !(self.overload == OverloadPolicy::Block && self.control.at_capacity())
    }

    /// Whether connections wait to be accepted that no readiness event will
    /// announce again (a back-off, or the connection limit, stopped the
    /// last batch), for the monitor to look at when that may have changed.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending
    }
}

impl<L: Listener, F: Life<L>> Shared<L, F> {
    /// Turns what a wait found into `jobs`: parked connections with
    /// something to read (busy until `busy_until`), and new connections
    /// when the listener (or a wake-up: there may be room again) says so,
    /// at most one of those for [`Batch::One`].
    pub(super) fn take_in(
        &self,
        found: &ReadyEvents,
        busy_until: Tick,
        batch: Batch,
        jobs: &mut Vec<Job<L, F::State>>,
    ) -> io::Result<()> {
        let mut listener = found.woken();
        {
            let mut table = self.table.lock();
            for ready in found.ready() {
                if ready.token == LISTENER {
                    listener = true;
                } else if let Some(key) = Key::from_token(ready.token)
                    && let Some(conn) = table.take_ready(key, busy_until, ready.closed)
                {
                    jobs.push(Job::Ready(conn));
                }
            }
        }
        if listener {
            self.accept(
                found.ready().any(|ready| ready.token == LISTENER),
                busy_until,
                batch,
                jobs,
            )?;
        }
        Ok(())
    }

    /// Accepts the pending connections, if it may: each becomes a job that
    /// opens it. `arrived`: the listener said more came.
    pub(super) fn accept(
        &self,
        arrived: bool,
        busy_until: Tick,
        batch: Batch,
        jobs: &mut Vec<Job<L, F::State>>,
    ) -> io::Result<()> {
        let mut intake = self.intake.lock();
        intake.pending |= arrived;
        if self.control().is_shutdown_requested() || !intake.may_accept(Instant::now()) {
            return Ok(());
        }
        let overload = intake.overload;
        accept_each(&mut intake, batch, |control, (stream, peer)| {
            // Counted in already, so at capacity means beyond it.
            if overload == OverloadPolicy::Reject && control.over_capacity() {
                return refuse(control, (stream, peer), &Refusal::Overloaded);
            }
            let stream = Arc::new(stream);
            let key = self.table.lock().insert(Arc::clone(&stream), busy_until);
            jobs.push(Job::Open { key, stream, peer });
        })?;
        Ok(())
    }

    /// The last look at the poller, when the server stops: parked
    /// connections whose clients have sent a request meanwhile become jobs
    /// (served within the grace period) instead of being closed unread.
    /// Accepts nothing.
    pub(super) fn collect_ready(&self, jobs: &mut Vec<Job<L, F::State>>) -> io::Result<()> {
        let mut found = ReadyEvents::with_capacity(1024);
        let mut woken = false;
        loop {
            self.poller.wait(&mut found, Some(std::time::Duration::ZERO))?;
            woken |= found.woken();
            if found.ready().next().is_none() {
                break;
            }
            let busy_until = self.busy_from_now();
            let mut table = self.table.lock();
            for ready in found.ready() {
                if let Some(key) = Key::from_token(ready.token)
                    && let Some(conn) = table.take_ready(key, busy_until, ready.closed)
                {
                    jobs.push(Job::Ready(conn));
                }
            }
        }
        if woken {
            // Meant for a worker (stopping workers wake each other).
            self.control().wake();
        }
        Ok(())
    }
}
