//! What a builder collects, and the checks the options pass together when
//! a server is built. The defaults are public, in [`config`](crate::config).
//!
//! The types are `pub` in this private module: unnameable outside the
//! crate, but usable in the sealed traits that build servers.

use std::io;
use std::time::Duration;

use super::Mode;
use crate::config::*;
use crate::pool::{GroupConfig, PoolConfig};
use crate::socket::SocketOptions;

/// Options applied to each accepted connection.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
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
pub struct ParkedOptions {
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
pub struct ServerConfig {
    /// How requests are dispatched: the one place a server's mode is kept.
    pub(crate) mode: Mode,
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
    pub(crate) fn new(socket: SocketOptions, mode: Mode) -> Self {
        ServerConfig {
            mode,
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
