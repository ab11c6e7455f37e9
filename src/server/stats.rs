//! Counters a running server keeps, and the snapshot users read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pool::WorkerCounts;

/// A snapshot of a server's counters, from [`ServerHandle::stats`] or a
/// server's `stats()` method.
///
/// [`ServerHandle::stats`]: crate::ServerHandle::stats
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests received: connections accepted, or datagrams read.
    pub accepted: u64,
    /// Requests accepted and not finished yet, including queued ones.
    pub active: u64,
    /// Requests turned away: by `verify_request`, or because the server
    /// was overloaded under [`OverloadPolicy::Reject`](crate::OverloadPolicy::Reject)
    /// or shutting down.
    pub refused: u64,
    /// Errors returned by `setup`, `handle` or `finish`, or reported by a
    /// transport (a truncated datagram).
    pub errors: u64,
    /// Panics caught in handler code.
    pub panics: u64,
    /// Failures of `accept` or `recv`, including the resource exhaustion
    /// (out of file descriptors or memory) the server backed off from.
    pub accept_errors: u64,
    /// Worker threads alive (0 for the serial servers).
    pub workers: usize,
    /// Worker threads waiting for a request.
    pub idle_workers: usize,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) workers: Arc<WorkerCounts>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: load(&self.accepted),
            active: load(&self.active),
            refused: load(&self.refused),
            errors: load(&self.errors),
            panics: load(&self.panics),
            accept_errors: load(&self.accept_errors),
            workers: self.workers.live(),
            idle_workers: self.workers.idle(),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
