//! Configuring a server before it binds.
//!
//! One builder type serves every server. Its transport type parameter
//! decides which options exist (`nodelay` only for TCP, `reuse_port` only
//! for IP sockets, `permissions` only for Unix sockets); the mode is a
//! value ([`Builder::mode`]), and the options of one mode are left alone
//! by the others. The options themselves, their defaults and their checks
//! live in [`config`](crate::config). One `bind` and one `from_listener`
//! build every server: [`BindTo`] says what each socket type binds to,
//! [`Serves`] which server it makes with a handler.

use std::io;
use std::marker::PhantomData;
use std::net::{TcpListener, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::time::Duration;

use super::datagram::DatagramServer;
use super::options::ServerConfig;
use super::stream::StreamServer;
use super::{AnyMode, Mode, ModeMarker};
use crate::config::OverloadPolicy;
use crate::handler::{Looping, RequestHandler, StreamHandler};
use crate::request::{DatagramRequest, StreamRequest};
use crate::socket::{self, SocketFile, SocketOptions};
use crate::transport::{DatagramSocket, Listener, Sealed};

/// Transports with IP-level options (TCP and UDP).
pub trait IpTransport: Sealed {}
impl IpTransport for TcpListener {}
impl IpTransport for UdpSocket {}

/// Transports bound to a filesystem path (Unix-domain sockets).
pub trait UnixTransport: Sealed {}
impl UnixTransport for UnixListener {}
impl UnixTransport for UnixDatagram {}

/// Builds a server: `T` is the transport (e.g. [`TcpListener`]) and `M`
/// the [`ModeMarker`] that names its mode. Get one from the server type,
/// set options, then `bind`:
///
/// ```
/// use socketserver::{OverloadPolicy, TcpRequest, ThreadingTcpServer};
/// use std::time::Duration;
///
/// let server = ThreadingTcpServer::builder()
///     .max_workers(512)
///     .read_timeout(Duration::from_secs(30))
///     .overload_policy(OverloadPolicy::Reject)
///     .shutdown_grace(Duration::from_secs(1))
///     .bind("127.0.0.1:0", |_req: &mut TcpRequest| Ok(()))?;
/// assert_ne!(server.local_addr().port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The mode starts as the server type says ([`ThreadingTcpServer`](crate::ThreadingTcpServer)
/// is threading); [`mode`](Self::mode) chooses another at run time, with
/// the same handler:
///
/// ```
/// use socketserver::{Mode, ThreadingTcpServer, echo::Uppercase};
///
/// let parked = std::env::args().any(|arg| arg == "--parked");
/// let mode = if parked { Mode::Parked } else { Mode::Threading };
/// let server = ThreadingTcpServer::builder().mode(mode).bind("127.0.0.1:0", Uppercase)?;
/// assert_eq!(server.mode(), mode);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Options are checked together when the server is built: `bind` (or
/// `from_listener`) fails with `InvalidInput` for a combination that
/// cannot work, such as more minimum than maximum workers.
///
/// Options Python's `socketserver` has map as follows: `request_queue_size`
/// is [`backlog`](Self::backlog), `allow_reuse_address` is
/// [`reuse_address`](Self::reuse_address), `allow_reuse_port` is
/// [`reuse_port`](Self::reuse_port), `timeout` is
/// [`timeout`](Self::timeout), `max_packet_size` is
/// [`max_datagram_size`](Self::max_datagram_size),
/// `StreamRequestHandler.timeout` is [`read_timeout`](Self::read_timeout)
/// and `disable_nagle_algorithm` is [`nodelay`](Self::nodelay).
#[must_use = "a builder does nothing until `bind` is called"]
#[derive(Clone, Debug)]
pub struct Builder<T, M> {
    config: ServerConfig,
    _marker: PhantomData<fn() -> (T, M)>,
}

impl<T: Transport, M: ModeMarker> Builder<T, M> {
    /// A builder for `T`'s servers in `M`'s mode, with the defaults (for
    /// code generic over the transport; `ThreadingTcpServer::builder()`
    /// and the like are the same).
    pub fn new() -> Self {
        Builder {
            config: ServerConfig::new(T::default_options(), M::MODE),
            _marker: PhantomData,
        }
    }
}

impl<T: Transport, M: ModeMarker> Default for Builder<T, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, M: ModeMarker> Builder<T, M> {
    /// Serves in `mode` instead of the one the server type names: the
    /// built server is a `StreamServer<_, AnyMode, _>` (or
    /// `DatagramServer`), whatever `mode` is. A datagram server cannot be
    /// parked: building one fails with `InvalidInput`.
    pub fn mode(self, mode: Mode) -> Builder<T, AnyMode> {
        let mut config = self.config;
        config.mode = mode;
        Builder {
            config,
            _marker: PhantomData,
        }
    }

    /// Binds `addr` with these options (port 0 picks a free port; a Unix
    /// path as the servers' `bind` says) and returns the server, ready to
    /// serve. Which server depends on the socket type and the handler
    /// ([`Serves`]): a stream server takes a [`RequestHandler`] or a
    /// [`KeepAliveHandler`](crate::KeepAliveHandler), a datagram server a
    /// [`RequestHandler`].
    pub fn bind<A, H, S>(self, addr: A, handler: H) -> io::Result<T::Server<M>>
    where
        T: BindTo<A> + Serves<H, S>,
    {
        self.config.validate()?;
        let (socket, file) = T::bind(addr, &self.config.socket)?;
        T::serve(socket, file, handler, self.config)
    }

    /// Serves on a socket created elsewhere (systemd socket activation, a
    /// parent process, a restart): a listener, or a datagram socket.
    /// Options that apply before `bind` are not applied to it;
    /// per-connection ones are. A Unix socket's file is left alone.
    pub fn from_listener<H, S>(self, socket: T, handler: H) -> io::Result<T::Server<M>>
    where
        T: Serves<H, S>,
    {
        self.config.validate()?;
        T::serve(socket, None, handler, self.config)
    }

    /// How long in-flight requests may run on after a shutdown is
    /// requested before their connections are force-closed (default
    /// [`DEFAULT_SHUTDOWN_GRACE`](crate::config::DEFAULT_SHUTDOWN_GRACE)).
    /// Zero closes them at once.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// How long `handle_request` waits for a request before it calls
    /// `handle_timeout` and returns (default: forever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Also call `service_actions` at least this often while idle
    /// (default: only after requests; the loop never wakes up otherwise).
    pub fn service_interval(mut self, interval: Duration) -> Self {
        self.config.service_interval = Some(interval);
        self
    }

    /// Sets the socket's receive buffer size (`SO_RCVBUF`). For a datagram
    /// server this is how many datagrams can wait while every worker is
    /// busy before the kernel drops them.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.config.socket.recv_buffer_size = Some(bytes);
        self
    }

    /// Sets the socket's send buffer size (`SO_SNDBUF`).
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.config.socket.send_buffer_size = Some(bytes);
        self
    }
}

impl<T: IpTransport, M: ModeMarker> Builder<T, M> {
    /// Sets `SO_REUSEADDR`. On by default for TCP, so a restarted server
    /// can bind while old connections are in `TIME_WAIT`. Off by default
    /// for UDP, as in Python: on Linux it would let a second server bind
    /// the same port and silently take part of the traffic.
    pub fn reuse_address(mut self, reuse: bool) -> Self {
        self.config.socket.reuse_address = reuse;
        self
    }

    /// Sets `SO_REUSEPORT`, so several servers (processes) can bind the
    /// same address and the kernel spreads clients among them (default
    /// off). IP sockets only.
    pub fn reuse_port(mut self, reuse: bool) -> Self {
        self.config.socket.reuse_port = reuse;
        self
    }

    /// Serves IPv4 clients too on an IPv6 address such as `[::]:8080`
    /// (clears `IPV6_V6ONLY`). Off by default: an IPv6 address serves IPv6
    /// only, whatever the OS default. Binding an IPv4 address with this on
    /// is an `InvalidInput` error.
    pub fn dual_stack(mut self, dual: bool) -> Self {
        self.config.socket.dual_stack = dual;
        self
    }
}

impl<T: UnixTransport, M: ModeMarker> Builder<T, M> {
    /// Permission bits for the socket file, e.g. `0o660` to let only the
    /// owner and group connect (default: from the process's umask). Set
    /// before a stream socket listens, so no client connects before.
    pub fn permissions(mut self, mode: u32) -> Self {
        self.config.socket.permissions = Some(mode);
        self
    }
}

impl<L: Listener, M: ModeMarker> Builder<L, M> {
    /// The listen backlog: connections the kernel holds before `accept`
    /// (default [`DEFAULT_BACKLOG`](crate::config::DEFAULT_BACKLOG), capped
    /// by the kernel's own limit).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.config.socket.backlog = backlog;
        self
    }

    /// A read on a connection that waits longer than this fails with
    /// `WouldBlock`/`TimedOut`, which ends the request (default: no
    /// timeout). Protects against clients that stall. On a threading or
    /// serial server it bounds the wait for a per-request handler's next
    /// request too; a parked server has [`idle_timeout`](Self::idle_timeout)
    /// for that.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection.read_timeout = Some(timeout);
        self
    }

    /// A write on a connection that waits longer than this fails (default:
    /// no timeout). Protects against clients that stop reading.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection.write_timeout = Some(timeout);
        self
    }

    /// The starting size of the read-ahead buffer (default
    /// [`DEFAULT_READ_BUFFER_SIZE`](crate::config::DEFAULT_READ_BUFFER_SIZE),
    /// or [`DEFAULT_PARKED_READ_BUFFER_SIZE`](crate::config::DEFAULT_PARKED_READ_BUFFER_SIZE)
    /// for a parked server's workers). One per worker, allocated the first
    /// time a handler reads through it; reads at least this large skip it.
    /// It doubles while reads fill it, up to
    /// [`max_read_buffer_size`](Self::max_read_buffer_size), and shrinks
    /// back when they stay small. Zero is refused when the server is built.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.config.connection.read_buffer_size = Some(bytes);
        self
    }

    /// The most the read-ahead buffer grows to under bulk traffic (default
    /// [`DEFAULT_MAX_READ_BUFFER_SIZE`](crate::config::DEFAULT_MAX_READ_BUFFER_SIZE));
    /// never below its starting size. Set it to the starting size for a
    /// buffer that never grows.
    pub fn max_read_buffer_size(mut self, bytes: usize) -> Self {
        self.config.connection.max_read_buffer_size = bytes;
        self
    }

    /// Serves clients that come through a proxy speaking the PROXY
    /// protocol (HAProxy's `send-proxy` or `send-proxy-v2`, nginx's
    /// `proxy_protocol on`), versions 1 and 2 (feature `proxy-protocol`).
    ///
    /// A connection from one of the `trusted` proxies must begin with a
    /// header, read on the worker before `verify_request` within
    /// [`proxy_header_timeout`](Self::proxy_header_timeout); the request's
    /// [`peer_addr`](crate::StreamRequest::peer_addr) is then the client's
    /// address from the header (on an IP listener), the proxy's stays
    /// available as [`proxy_addr`](crate::StreamRequest::proxy_addr), and
    /// the whole header, TLVs included, as
    /// [`proxy_header`](crate::StreamRequest::proxy_header). A missing,
    /// invalid or late header is reported to `handle_error` and closes the
    /// connection. A header from any other peer is refused the same way
    /// when the connection's first bytes are read: nobody else may claim an
    /// address. A `LOCAL` header (the proxy's own health check) or an
    /// `UNKNOWN` one leaves the peer address as it is.
    ///
    /// On a Unix-domain listener, peers are trusted with
    /// [`TrustedProxies::with_unix_peers`](crate::proxy_protocol::TrustedProxies::with_unix_peers);
    /// the client's IP address is then in `proxy_header().source()`.
    ///
    /// ```
    /// use socketserver::proxy_protocol::TrustedProxies;
    /// use socketserver::{TcpRequest, ThreadingTcpServer};
    /// use std::io::Write;
    /// use std::time::Duration;
    ///
    /// let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse()?;
    /// let server = ThreadingTcpServer::builder()
    ///     .proxy_protocol(trusted)                          // these peers must send a header
    ///     .proxy_header_timeout(Duration::from_secs(5))     // the default
    ///     .bind("127.0.0.1:0", |req: &mut TcpRequest| {
    ///         // peer_addr(): the client's; proxy_addr(): the proxy's;
    ///         // proxy_header(): the TLVs (unique ID, the client's TLS facts).
    ///         let (client, proxy) = (*req.peer_addr(), req.proxy_addr().copied());
    ///         writeln!(req, "hello, {client} (via {proxy:?})")
    ///     })?;
    /// println!("listening on {}", server.local_addr());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "proxy-protocol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "proxy-protocol")))]
    pub fn proxy_protocol(mut self, trusted: crate::proxy_protocol::TrustedProxies) -> Self {
        self.config.connection.proxies = Some(trusted);
        self
    }

    /// How long a trusted proxy has to send its PROXY header (default
    /// [`DEFAULT_PROXY_HEADER_TIMEOUT`](crate::config::DEFAULT_PROXY_HEADER_TIMEOUT));
    /// see [`proxy_protocol`](Self::proxy_protocol).
    #[cfg(feature = "proxy-protocol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "proxy-protocol")))]
    pub fn proxy_header_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection.proxy_header_timeout = timeout;
        self
    }

    /// Serves every connection over TLS, with `acceptor`'s configuration
    /// (feature `tls`): TCP or Unix sockets, in every serving mode.
    ///
    /// The handshake runs on the worker that serves the connection, never
    /// on the accept loop, within the acceptor's handshake timeout (10 s
    /// by default); a parked server drives it without holding a worker
    /// while the client is slow. A failed or late handshake is reported to
    /// `handle_error` (at warn level by default: the peer's fault), counted
    /// in [`Stats::tls_handshake_failures`](crate::Stats::tls_handshake_failures),
    /// and closes that connection only. Then the handler reads and writes
    /// plaintext as usual, `verify_request` included, and
    /// [`tls_info`](crate::StreamRequest::tls_info) says what was
    /// negotiated and who the client is (mutual TLS). The server ends each
    /// connection with `close_notify`; a client that closes without one is
    /// reported as [truncation](crate::tls::is_truncated), not as a clean
    /// end. [`TlsAcceptor::swap`](crate::tls::TlsAcceptor::swap) on a clone
    /// of the acceptor renews the certificate for new connections while
    /// the server runs. With the PROXY protocol on, the proxy's header comes
    /// first, in the clear, as HAProxy sends it.
    ///
    /// ```
    /// use socketserver::tls::TlsAcceptor;
    /// use socketserver::{TcpRequest, ThreadingTcpServer};
    /// use std::io::Write;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    /// # std::fs::write(&cert_path, generated.cert.pem())?;
    /// # std::fs::write(&key_path, generated.signing_key.serialize_pem())?;
    /// let acceptor = TlsAcceptor::from_pem_files(&cert_path, &key_path)?;
    /// let server = ThreadingTcpServer::builder()
    ///     .tls(acceptor.clone()) // keep a clone to swap certificates later
    ///     .bind("127.0.0.1:0", |req: &mut TcpRequest| {
    ///         let version = req.tls_info().and_then(|tls| tls.protocol_version());
    ///         writeln!(req, "hello over {version:?}")
    ///     })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, acceptor: crate::tls::TlsAcceptor) -> Self {
        self.config.connection.tls = Some(acceptor);
        self
    }

    /// Threading mode: how many connections may wait for a worker when
    /// all are busy and the pool is at its maximum (default
    /// [`DEFAULT_QUEUE_CAPACITY`](crate::config::DEFAULT_QUEUE_CAPACITY)).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.pool.queue_capacity = capacity;
        self
    }

    /// Threading and parked modes: what happens to a connection when the
    /// connection limit is reached, or (threading mode) the pool and its
    /// queue are full (default: [`OverloadPolicy::Block`]).
    pub fn overload_policy(mut self, policy: OverloadPolicy) -> Self {
        self.config.pool.overload = policy;
        self
    }

    /// Threading and parked modes: the most connections open at once
    /// (default: no limit besides, in
    /// threading mode, [`max_workers`](Self::max_workers) and the queue).
    /// At the limit the server stops accepting (under
    /// [`OverloadPolicy::Block`]) or closes new connections at once (under
    /// [`OverloadPolicy::Reject`]).
    pub fn max_connections(mut self, count: usize) -> Self {
        self.config.max_connections = Some(count);
        self
    }

    /// Parked mode: how long a connection may wait for its next request
    /// before the server closes it (default
    /// [`DEFAULT_IDLE_TIMEOUT`](crate::config::DEFAULT_IDLE_TIMEOUT)).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.parked.idle_timeout = timeout;
        self
    }

    /// Parked mode, per-request handlers: how long one request may take,
    /// from its first bytes (or the connection's arrival, for `open`) to
    /// the handler's return, before the server cuts the connection off
    /// (default
    /// [`DEFAULT_REQUEST_TIMEOUT`](crate::config::DEFAULT_REQUEST_TIMEOUT)).
    /// A client that sends half a request and stalls releases its worker
    /// then. A request that one wait in the poller found with others (up
    /// to 16) is served after those before it, its time already counting;
    /// each of them may add up to 1 ms of its own connection's next
    /// requests (a worker reads those at once while they come quickly).
    /// Set it well above sixteen times a slow request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.parked.request_timeout = timeout;
        self
    }
}

impl<S: DatagramSocket, M: ModeMarker> Builder<S, M> {
    /// The largest datagram received whole (default
    /// [`DEFAULT_MAX_DATAGRAM_SIZE`](crate::config::DEFAULT_MAX_DATAGRAM_SIZE),
    /// a full UDP payload). A larger one is not served: it is reported to
    /// `handle_error` with its size (its real size on Linux).
    pub fn max_datagram_size(mut self, bytes: usize) -> Self {
        self.config.max_datagram_size = bytes;
        self
    }
}

/// The worker pool: threading and parked modes (a serial server has none).
impl<T, M: ModeMarker> Builder<T, M> {
    /// Workers kept alive even when idle. Threading stream servers default
    /// to 0 and start them when built; parked servers default to one per
    /// core, started when built; datagram servers default to one per core
    /// (never fewer than one, never more than the maximum), all receiving,
    /// and start them when serving.
    pub fn min_workers(mut self, count: usize) -> Self {
        self.config.min_workers = Some(count);
        self
    }

    /// The most workers, so the most requests served at once. In threading
    /// mode (default
    /// [`DEFAULT_MAX_WORKERS`](crate::config::DEFAULT_MAX_WORKERS)) a
    /// connection holds its worker for its whole life; beyond this many,
    /// connections queue and then the overload policy applies, and
    /// datagrams wait in the socket's receive buffer. In parked mode
    /// (default
    /// [`DEFAULT_PARKED_MAX_WORKERS`](crate::config::DEFAULT_PARKED_MAX_WORKERS))
    /// a worker serves one request at a time, and workers beyond the
    /// minimum start only when the running ones stop taking requests.
    pub fn max_workers(mut self, count: usize) -> Self {
        self.config.max_workers = Some(count);
        self
    }

    /// Sets both [`min_workers`](Self::min_workers) and
    /// [`max_workers`](Self::max_workers): a fixed-size pool.
    pub fn workers(self, count: usize) -> Self {
        self.min_workers(count).max_workers(count)
    }

    /// How long a worker above the minimum waits idle before it retires
    /// (default [`DEFAULT_KEEP_ALIVE`](crate::config::DEFAULT_KEEP_ALIVE)).
    pub fn keep_alive(mut self, idle: Duration) -> Self {
        self.config.pool.group.keep_alive = idle;
        self
    }

    /// Worker threads are named `"{prefix}-{n}"` (default
    /// `"socketserver-worker"`). Linux shows the first 15 bytes in `top`.
    pub fn worker_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.pool.group.name_prefix = prefix.into();
        self
    }

    /// Stack size of worker threads, in bytes (default: the standard
    /// library's, 2 MiB unless `RUST_MIN_STACK` says otherwise). Only the
    /// pages a worker touches cost memory, but a smaller reservation lets
    /// more workers fit in the address space.
    pub fn worker_stack_size(mut self, bytes: usize) -> Self {
        self.config.pool.group.stack_size = Some(bytes);
        self
    }
}

impl<M: ModeMarker> Builder<TcpListener, M> {
    /// Sets `TCP_NODELAY` on every connection (default on, as Go does):
    /// replies go out at once instead of waiting on Nagle's algorithm,
    /// which otherwise stalls a reply written in two pieces by up to the
    /// peer's delayed-ACK timeout (40 ms on Linux).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.config.connection.nodelay = nodelay;
        self
    }
}

impl<T, M: ModeMarker> Builder<T, M> {
    /// Binds a socket at `addr` as `bind` does, with the options that
    /// apply before `bind` (address and port reuse, dual stack, buffers,
    /// backlog, a Unix socket's permissions), and returns it without
    /// making a server: for a socket registered first with a restart
    /// `Upgrader` (feature `restart`) or handed to another process, then
    /// served with [`from_listener`](Self::from_listener). A Unix
    /// socket's file is then the caller's to remove.
    pub fn bind_listener<A>(&self, addr: A) -> io::Result<T>
    where
        T: BindTo<A>,
    {
        let (socket, file) = T::bind(addr, &self.config.socket)?;
        if let Some(file) = file {
            file.keep();
        }
        Ok(socket)
    }
}

mod sealed {
    use super::*;

    /// What the builder needs of every socket type.
    pub trait Transport {
        /// The socket options the type's servers start with.
        fn default_options() -> SocketOptions;
    }

    /// How a socket type binds an address of type `A`.
    pub trait Bind<A>: Sized {
        /// Creates the socket and binds it with `options`.
        fn bind(addr: A, options: &SocketOptions) -> io::Result<(Self, Option<SocketFile>)>;
    }

    /// The server a socket type makes with a handler.
    pub trait Serve<H, Style>: Sized {
        /// The server, in the mode `M` names.
        type Server<M: ModeMarker>;
        /// Builds it on `socket`, whose options are checked.
        fn serve<M: ModeMarker>(
            socket: Self,
            file: Option<SocketFile>,
            handler: H,
            config: ServerConfig,
        ) -> io::Result<Self::Server<M>>;
    }
}

/// The socket types a server serves on: [`TcpListener`], [`UdpSocket`],
/// [`UnixListener`] and [`UnixDatagram`].
pub trait Transport: sealed::Transport + Sealed {}
impl<T: sealed::Transport + Sealed> Transport for T {}

/// What a socket type binds: an address ([`ToSocketAddrs`]) for TCP and
/// UDP, a path for Unix sockets. Implemented for the four socket types.
pub trait BindTo<A>: sealed::Bind<A> {}
impl<T: sealed::Bind<A>, A> BindTo<A> for T {}

/// The server a socket type makes with handler `H` (of style `Style`,
/// inferred): a stream server for a listener and any
/// [`StreamHandler`], a datagram server for a datagram socket and a
/// [`RequestHandler`]. Implemented for the four socket types.
pub trait Serves<H, Style>: sealed::Serve<H, Style> {}
impl<T: sealed::Serve<H, S>, H, S> Serves<H, S> for T {}

macro_rules! binds {
    ($socket:ty, $options:expr, |$addr:ident: $bound:path, $opts:ident| $bind:expr) => {
        impl sealed::Transport for $socket {
            fn default_options() -> SocketOptions {
                $options
            }
        }
        impl<A: $bound> sealed::Bind<A> for $socket {
            fn bind($addr: A, $opts: &SocketOptions) -> io::Result<(Self, Option<SocketFile>)> {
                $bind
            }
        }
    };
}

binds!(
    TcpListener,
    SocketOptions::tcp(),
    |addr: ToSocketAddrs, options| Ok((socket::bind_tcp(addr, options)?, None))
);
binds!(
    UdpSocket,
    SocketOptions::without_address_reuse(),
    |addr: ToSocketAddrs, options| Ok((socket::bind_udp(addr, options)?, None))
);
binds!(
    UnixListener,
    SocketOptions::without_address_reuse(),
    |path: AsRef<Path>, options| {
        let (listener, file) = socket::bind_unix_listener(path.as_ref(), options)?;
        Ok((listener, Some(file)))
    }
);
binds!(
    UnixDatagram,
    SocketOptions::without_address_reuse(),
    |path: AsRef<Path>, options| {
        let (socket, file) = socket::bind_unix_datagram(path.as_ref(), options)?;
        Ok((socket, Some(file)))
    }
);

impl<L, H, S> sealed::Serve<H, S> for L
where
    L: Listener,
    H: StreamHandler<StreamRequest<L::Stream>, S>,
{
    type Server<M: ModeMarker> = StreamServer<L, M, H>;

    fn serve<M: ModeMarker>(
        listener: L,
        file: Option<SocketFile>,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<StreamServer<L, M, H>> {
        StreamServer::new(listener, file, handler, config)
    }
}

macro_rules! serves_datagrams {
    ($($socket:ty),*) => {$(
        impl<H: RequestHandler<DatagramRequest<$socket>>> sealed::Serve<H, Looping> for $socket {
            type Server<M: ModeMarker> = DatagramServer<$socket, M, H>;

            fn serve<M: ModeMarker>(
                socket: $socket,
                file: Option<SocketFile>,
                handler: H,
                config: ServerConfig,
            ) -> io::Result<DatagramServer<$socket, M, H>> {
                DatagramServer::new(socket, file, handler, config)
            }
        }
    )*};
}
serves_datagrams!(UdpSocket, UnixDatagram);
