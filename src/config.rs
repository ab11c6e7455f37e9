//! Every server option's default, in one place.
//!
//! The options are set through [`Builder`](crate::Builder); these are the
//! values a server uses when they are not.

use std::time::Duration;

/// How long in-flight requests may run on after a shutdown is requested
/// before their connections are force-closed.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long, after a forced close, a server waits for its handlers to
/// return before it gives up on them and lets their threads run detached.
/// Handlers blocked on their socket return at once; only a handler stuck
/// elsewhere (a sleep, a lock, a computation) can outlast it.
pub const FORCE_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The starting size of the read-ahead buffer of a per-connection
/// server's worker (and so of its connection). It doubles while reads fill
/// it, up to [`DEFAULT_MAX_READ_BUFFER_SIZE`], and shrinks back when reads
/// stay small: an idle connection keeps no more than this.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 * 1024;

/// The starting size of a parked server's workers' read-ahead buffers.
/// Parked connections hold no buffer, and the workers are few, so theirs
/// start large.
pub const DEFAULT_PARKED_READ_BUFFER_SIZE: usize = 64 * 1024;

/// The most a read-ahead buffer grows to under bulk traffic.
pub const DEFAULT_MAX_READ_BUFFER_SIZE: usize = 256 * 1024;

/// The largest datagram a datagram server receives whole: the largest UDP
/// payload over IPv4.
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 65_507;

/// The listen backlog: the platform's `SOMAXCONN` (4096 on current
/// Linux), not Python's 5. The kernel caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: i32 = libc::SOMAXCONN;

/// The most workers of a threading server. Each connection holds a worker
/// for its whole life, so this is the number of clients served at once;
/// it is set as high as a thread-per-connection server would reach in
/// practice.
pub const DEFAULT_MAX_WORKERS: usize = 16_384;

/// How long a worker above the minimum waits idle before it retires.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How many connections may wait for a worker when every worker is busy
/// and the pool is at its maximum.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

/// The most workers of a parked server. A worker is busy for one request
/// at a time, not a connection's life, so a few serve many connections;
/// more are started only when the running ones stop making progress
/// (handlers that block on something slow).
pub const DEFAULT_PARKED_MAX_WORKERS: usize = 256;

/// How long a parked server keeps a connection that sends nothing between
/// two requests before it closes it. Nginx uses 75 s, Jetty 30 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a parked server gives one request, from its first bytes to the
/// handler's return, before it cuts the connection off: a client that
/// sends half a request and stalls releases its worker then.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a trusted proxy has to send its PROXY header, from the moment
/// a worker takes the connection (feature `proxy-protocol`). HAProxy sends
/// it with the connection's first bytes; a proxy that takes longer is not
/// one.
pub const DEFAULT_PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a stream server does with a new connection when every worker is
/// busy, the pool is at its maximum and the queue is full (or the
/// connection limit is reached).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverloadPolicy {
    /// Wait for room (the default). The accept loop stops accepting, so new
    /// clients wait in the kernel's listen backlog and nothing is dropped.
    #[default]
    Block,
    /// Refuse the connection at once: it is closed without being served
    /// (counted in [`Stats::refused`](crate::Stats::refused)). Keeps
    /// latency bounded for the clients that are served, at the price of
    /// failing the others.
    Reject,
}
