//! Every server option's default, in one place, and the checks a server's
//! options pass when it is built.
//!
//! The options are set through [`Builder`](crate::Builder); these are the
//! values a server uses when they are not.

use std::io;
use std::time::Duration;

use crate::pool::{GroupConfig, PoolConfig};
use crate::socket::SocketOptions;

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

/// Options applied to each accepted connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionOptions {
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) nodelay: bool,
    /// The read-ahead's starting size; `None` for the serving mode's.
    pub(crate) read_buffer_size: Option<usize>,
    pub(crate) max_read_buffer_size: usize,
    /// The PROXY protocol: the proxies that must send a header (`None`:
    /// the protocol is off, nobody's header is looked for).
    #[cfg(feature = "proxy-protocol")]
    pub(crate) proxies: Option<crate::proxy_protocol::TrustedProxies>,
    /// How long a proxy has to send its header.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) proxy_header_timeout: Duration,
    /// TLS for every connection.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsAcceptor>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            read_timeout: None,
            write_timeout: None,
            nodelay: true,
            read_buffer_size: None,
            max_read_buffer_size: DEFAULT_MAX_READ_BUFFER_SIZE,
            #[cfg(feature = "proxy-protocol")]
            proxies: None,
            #[cfg(feature = "proxy-protocol")]
            proxy_header_timeout: DEFAULT_PROXY_HEADER_TIMEOUT,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ConnectionOptions {
    /// A serving thread's read-ahead buffer, starting at `default_size`
    /// unless a size was set.
    pub(crate) fn read_buffer(&self, default_size: usize) -> crate::request::ReadBuffer {
        let start = self.read_buffer_size.unwrap_or(default_size);
        crate::request::ReadBuffer::new(start, self.max_read_buffer_size.max(start))
    }
}

/// The deadlines of a parked server's connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParkedOptions {
    pub(crate) idle_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

impl Default for ParkedOptions {
    fn default() -> Self {
        ParkedOptions {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Everything a builder collects.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) socket: SocketOptions,
    pub(crate) connection: ConnectionOptions,
    pub(crate) pool: PoolConfig,
    /// Workers kept alive when idle; `None` for the server kind's default.
    pub(crate) min_workers: Option<usize>,
    /// The most workers; `None` for the server kind's default.
    pub(crate) max_workers: Option<usize>,
    pub(crate) parked: ParkedOptions,
    pub(crate) max_datagram_size: usize,
    pub(crate) grace: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) service_interval: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

impl ServerConfig {
    pub(crate) fn new(socket: SocketOptions) -> Self {
        ServerConfig {
            socket,
            connection: ConnectionOptions::default(),
            pool: PoolConfig::default(),
            min_workers: None,
            max_workers: None,
            parked: ParkedOptions::default(),
            max_datagram_size: DEFAULT_MAX_DATAGRAM_SIZE,
            grace: DEFAULT_SHUTDOWN_GRACE,
            timeout: None,
            service_interval: None,
            max_connections: None,
        }
    }

    /// Checks the options together; every way of building a server goes
    /// through here.
    pub(crate) fn validate(&self) -> io::Result<()> {
        if self.max_workers == Some(0) {
            return Err(invalid("max_workers must be at least 1"));
        }
        if let (Some(min), Some(max)) = (self.min_workers, self.max_workers)
            && min > max
        {
            return Err(invalid(format!(
                "min_workers ({min}) exceeds max_workers ({max})"
            )));
        }
        if self.parked.idle_timeout.is_zero() || self.parked.request_timeout.is_zero() {
            return Err(invalid(
                "idle_timeout and request_timeout must be longer than zero",
            ));
        }
        if self.max_connections == Some(0) {
            return Err(invalid("max_connections must be at least 1"));
        }
        if self.max_datagram_size == 0 {
            return Err(invalid("max_datagram_size must be at least 1"));
        }
        if self.connection.read_buffer_size == Some(0) || self.connection.max_read_buffer_size == 0 {
            return Err(invalid(
                "read_buffer_size and max_read_buffer_size must be at least 1",
            ));
        }
        #[cfg(feature = "tls")]
        if self
            .connection
            .tls
            .as_ref()
            .is_some_and(|tls| tls.current_handshake_timeout().is_zero())
        {
            return Err(invalid("the TLS handshake timeout must be longer than zero"));
        }
        #[cfg(feature = "proxy-protocol")]
        if self.connection.proxy_header_timeout.is_zero() {
            return Err(invalid("proxy_header_timeout must be longer than zero"));
        }
        Ok(())
    }

    /// The worker group's sizing, with the server kind's defaults for what
    /// was not set: a minimum set alone raises the default maximum, a
    /// maximum set alone lowers the default minimum.
    pub(crate) fn group(&self, default_min: usize, default_max: usize) -> GroupConfig {
        let mut group = self.pool.group.clone();
        group.max_workers = self
            .max_workers
            .unwrap_or_else(|| default_max.max(self.min_workers.unwrap_or(0)));
        group.min_workers = self.min_workers.unwrap_or(default_min).min(group.max_workers);
        group
    }
}
