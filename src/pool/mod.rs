//! The worker pools behind the threading servers.
//!
//! Python's `ThreadingMixIn` starts a thread per request. These pools keep
//! workers and reuse them. A [`ThreadGroup`] owns the threads (names,
//! stack size, minimum and maximum, retirement, joining); two dispatch
//! strategies sit on it, each chosen for its transport:
//!
//! - streams: [`Pool`], a queue that hands each accepted connection to a
//!   worker, which keeps it for the connection's life;
//! - datagrams: workers that receive on the shared socket themselves (see
//!   the datagram server for why that design won).

mod group;
mod queue;

pub(crate) use group::{Exit, GroupConfig, ThreadGroup, WorkerCounts};
pub(crate) use queue::{Pool, PoolConfig, Refusal, Work};
