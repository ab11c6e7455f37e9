//! Counters a running server keeps, and the snapshot users read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

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
    /// Requests accepted and not finished yet, including queued ones; on a
    /// parked server, the connections open (parked or being served).
    pub active: u64,
    /// Connections waiting between two requests in a parked server's
    /// readiness set, holding no thread (0 for the other servers).
    pub parked: u64,
    /// Requests turned away: by `verify_request`, or because the server
    /// was overloaded under [`OverloadPolicy::Reject`](crate::OverloadPolicy::Reject)
    /// or shutting down.
    pub refused: u64,
    /// Errors returned by `setup`, `handle` or `finish` (`open` or
    /// `handle_one`), or reported by a transport (a truncated datagram, a
    /// reply that could not be sent, a failed TLS handshake). Ends that cut
    /// nothing short are reported to `handle_error` but not counted: a
    /// proxy's health check going away, a TLS client leaving without
    /// `close_notify` after its answer.
    pub errors: u64,
    /// Panics caught in handler code.
    pub panics: u64,
    /// Failures to take a request in: of `accept` on a stream server, of
    /// `recv` on a datagram server, including the resource exhaustion (out
    /// of file descriptors or memory) the server backed off from.
    pub receive_errors: u64,
    /// Parked connections closed by a deadline: idle too long between
    /// requests, or a request not finished in time.
    pub timed_out: u64,
    /// TLS handshakes that failed or were not finished within the
    /// handshake timeout (feature `tls`; also counted in `errors`, or in
    /// `timed_out` for a parked server's). The connections were closed
    /// without reaching the handler.
    pub tls_handshake_failures: u64,
    /// Connections a trusted proxy opened for itself rather than for a
    /// client: a PROXY header with the `LOCAL` command, as HAProxy's
    /// health checks send (feature `proxy-protocol`); also counted in
    /// `accepted`. A proxy may end its checks with a reset: a peer error
    /// ending one is no failed request, logged at debug level and not
    /// counted in `errors` (see [`Request::is_health_check`](crate::Request::is_health_check)).
    pub health_checks: u64,
    /// Connections a restart moved from this (old) process to the new one,
    /// between two of their requests (a parked server's; feature
    /// `restart`, see `restart::Upgrader::attach`).
    /// They left without closing: not counted in `errors`.
    pub handed_over: u64,
    /// Connections this (new) process took over from the old one in a
    /// restart; not counted in `accepted`.
    pub adopted: u64,
    /// Worker threads alive (0 for the serial servers).
    pub workers: usize,
    /// Worker threads waiting for a request.
    pub idle_workers: usize,
}

/// One counter on a cache line of its own: workers bump the counters per
/// request, and counters sharing a line would make every core's bump
/// evict every other core's.
#[derive(Debug, Default)]
pub(crate) struct Counter(CachePadded<AtomicU64>);

impl Counter {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge that goes up and down (requests active, connections parked).
#[derive(Debug, Default)]
pub(crate) struct Gauge(CachePadded<AtomicU64>);

impl Gauge {
    /// Adds one; returns the value before.
    pub(crate) fn up(&self) -> u64 {
        self.0.fetch_add(1, Ordering::AcqRel)
    }

    /// Takes one off; returns the value before.
    pub(crate) fn down(&self) -> u64 {
        self.0.fetch_sub(1, Ordering::AcqRel)
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, value: u64) {
        self.0.store(value, Ordering::Release);
    }
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: Counter,
    pub(crate) active: Gauge,
    pub(crate) parked: Gauge,
    pub(crate) refused: Counter,
    pub(crate) errors: Counter,
    pub(crate) panics: Counter,
    pub(crate) receive_errors: Counter,
    pub(crate) timed_out: Counter,
    pub(crate) tls_handshake_failures: Counter,
    pub(crate) health_checks: Counter,
    pub(crate) handed_over: Counter,
    pub(crate) adopted: Counter,
    pub(crate) workers: Arc<WorkerCounts>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.get(),
            active: self.active.get(),
            parked: self.parked.get(),
            refused: self.refused.get(),
            errors: self.errors.get(),
            panics: self.panics.get(),
            receive_errors: self.receive_errors.get(),
            timed_out: self.timed_out.get(),
            tls_handshake_failures: self.tls_handshake_failures.get(),
            health_checks: self.health_checks.get(),
            handed_over: self.handed_over.get(),
            adopted: self.adopted.get(),
            workers: self.workers.live(),
            idle_workers: self.workers.idle(),
        }
    }
}
