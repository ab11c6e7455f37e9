//! The servers, and the generic types behind their names.
//!
//! Python builds `ThreadingTCPServer` by mixing `ThreadingMixIn` into
//! `TCPServer`. Here the serving skeleton is written once (its
//! `serve_forever` and `handle_request`), one engine per transport kind
//! (stream, datagram) takes requests in, and the mode, a type parameter,
//! decides how they are dispatched: [`Serial`] serves each request on the
//! loop thread, [`Threading`] on a pool of workers (a connection holds
//! its worker for its life), [`Parked`] on a pool of workers one request at
//! a time (a connection waits in the loop between requests). The names users write
//! ([`TcpServer`],
//! [`ThreadingUdpServer`], ...) are aliases of
//! those combinations; the types here are for code generic over them.

mod backoff;
mod base;
mod builder;
pub(crate) mod connections;
pub(crate) mod control;
mod core;
mod datagram;
pub(crate) mod stats;
mod stream;

use std::io;
use std::net::{TcpListener, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;

pub use crate::transport::{Connection, DatagramSocket, Listener};
pub use base::Server;
pub use builder::{Builder, IpTransport, UnixTransport};
pub use control::{ServerHandle, ShutdownHandle};
pub use datagram::DatagramServer;
pub use stats::Stats;
pub use stream::StreamServer;

use crate::handler::{KeepAliveHandler, RequestHandler};
use crate::request::{TcpRequest, UdpRequest, UnixDatagramRequest, UnixStreamRequest};
use crate::socket::SocketOptions;
use crate::transport::Sealed;
pub(crate) use kind::Dispatch;

mod kind {
    /// How a server dispatches what it takes in, chosen by its mode when
    /// it is built. Public in a private module: not nameable outside.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Dispatch {
        /// On the loop thread.
        Serial,
        /// On pooled workers.
        Pooled,
        /// On pooled workers, one request at a time, connections parked
        /// in the loop between requests.
        Parked,
    }

    /// What a mode means inside the crate; not nameable outside.
    pub trait ModeKind {
        /// How its servers dispatch.
        const DISPATCH: Dispatch;
        /// Its name, for `Debug`.
        const NAME: &'static str;
    }
}

/// How a server runs its handlers: [`Serial`], [`Threading`] or
/// [`Parked`].
pub trait Mode: Sealed + kind::ModeKind + Send + Sync + 'static {}

/// The modes whose servers take a [`RequestHandler`], as Python's do:
/// [`Serial`] and [`Threading`]. A stream server's handler then serves a
/// whole connection, a datagram server's one datagram.
pub trait RequestMode: Mode {}

/// The modes that run requests on a pool of worker threads, sized through
/// the builder: [`Threading`] and [`Parked`].
pub trait Pooled: Mode {}

/// Serves one request at a time on the thread that runs the loop, like
/// Python's `TCPServer` and `UDPServer`.
#[derive(Clone, Copy, Debug)]
pub struct Serial;
impl Sealed for Serial {}
impl kind::ModeKind for Serial {
    const DISPATCH: Dispatch = Dispatch::Serial;
    const NAME: &'static str = "serial";
}
impl Mode for Serial {}
impl RequestMode for Serial {}

/// Serves requests on pooled worker threads, like Python's
/// `ThreadingMixIn` but with threads reused and bounded.
#[derive(Clone, Copy, Debug)]
pub struct Threading;
impl Sealed for Threading {}
impl kind::ModeKind for Threading {
    const DISPATCH: Dispatch = Dispatch::Pooled;
    const NAME: &'static str = "threading";
}
impl Mode for Threading {}
impl RequestMode for Threading {}
impl Pooled for Threading {}

/// Serves one request at a time on pooled workers; between requests a
/// connection waits in the loop's readiness set, holding no thread and no
/// buffer (the half-sync/half-async shape of Jetty's and Tomcat's NIO
/// connectors). Its handlers are [`KeepAliveHandler`]s.
#[derive(Clone, Copy, Debug)]
pub struct Parked;
impl Sealed for Parked {}
impl kind::ModeKind for Parked {
    const DISPATCH: Dispatch = Dispatch::Parked;
    const NAME: &'static str = "parked";
}
impl Mode for Parked {}
impl Pooled for Parked {}

/// TCP, one connection at a time (Python's `TCPServer`).
pub type TcpServer<H> = StreamServer<TcpListener, Serial, H>;
/// TCP, each connection on a pooled worker (Python's `ThreadingTCPServer`).
pub type ThreadingTcpServer<H> = StreamServer<TcpListener, Threading, H>;
/// TCP, connections parked between requests, requests served on pooled
/// workers: many mostly idle clients, slow clients, keep-alive protocols.
pub type ParkedTcpServer<H> = StreamServer<TcpListener, Parked, H>;
/// UDP, one datagram at a time (Python's `UDPServer`).
pub type UdpServer<H> = DatagramServer<UdpSocket, Serial, H>;
/// UDP, datagrams served by pooled workers (Python's `ThreadingUDPServer`).
pub type ThreadingUdpServer<H> = DatagramServer<UdpSocket, Threading, H>;
/// Unix-domain stream socket, one connection at a time.
pub type UnixStreamServer<H> = StreamServer<UnixListener, Serial, H>;
/// Unix-domain stream socket, each connection on a pooled worker.
pub type ThreadingUnixStreamServer<H> = StreamServer<UnixListener, Threading, H>;
/// Unix-domain stream socket, connections parked between requests.
pub type ParkedUnixStreamServer<H> = StreamServer<UnixListener, Parked, H>;
/// Unix-domain datagram socket, one datagram at a time.
pub type UnixDatagramServer<H> = DatagramServer<UnixDatagram, Serial, H>;
/// Unix-domain datagram socket, datagrams served by pooled workers.
pub type ThreadingUnixDatagramServer<H> = DatagramServer<UnixDatagram, Threading, H>;

/// Stands for the handler in `ThreadingTcpServer::builder()` and the like,
/// which are called before the handler is chosen; it serves nothing.
#[derive(Clone, Copy, Debug)]
pub struct NoHandler;

impl<R: crate::Request> RequestHandler<R> for NoHandler {
    fn handle(&self, _request: &mut R) -> io::Result<()> {
        Ok(())
    }
}

impl<M: Mode> StreamServer<TcpListener, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<TcpListener, M> {
        Builder::with_socket(SocketOptions::tcp())
    }
}

impl<M: RequestMode, H: RequestHandler<TcpRequest>> StreamServer<TcpListener, M, H> {
    /// Binds `addr` with the default options and returns the server, ready
    /// to serve. Port 0 picks a free port (see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: impl ToSocketAddrs, handler: H) -> io::Result<Self> {
        StreamServer::<TcpListener, M, NoHandler>::builder().bind(addr, handler)
    }
}

impl<H: KeepAliveHandler<TcpRequest>> StreamServer<TcpListener, Parked, H> {
    /// Binds `addr` with the default options and returns the server, ready
    /// to serve. Port 0 picks a free port (see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: impl ToSocketAddrs, handler: H) -> io::Result<Self> {
        StreamServer::<TcpListener, Parked, NoHandler>::builder().bind(addr, handler)
    }
}

impl<M: Mode> StreamServer<UnixListener, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<UnixListener, M> {
        Builder::with_socket(SocketOptions::without_address_reuse())
    }
}

impl<M: RequestMode, H: RequestHandler<UnixStreamRequest>> StreamServer<UnixListener, M, H> {
    /// Binds a socket at `path` with the default options; see
    /// [`Builder::bind`](Builder#method.bind-1) for how an existing file
    /// is treated.
    pub fn bind(path: impl AsRef<Path>, handler: H) -> io::Result<Self> {
        StreamServer::<UnixListener, M, NoHandler>::builder().bind(path, handler)
    }
}

impl<H: KeepAliveHandler<UnixStreamRequest>> StreamServer<UnixListener, Parked, H> {
    /// Binds a socket at `path` with the default options, as the other
    /// Unix stream servers do.
    pub fn bind(path: impl AsRef<Path>, handler: H) -> io::Result<Self> {
        StreamServer::<UnixListener, Parked, NoHandler>::builder().bind(path, handler)
    }
}

impl<M: RequestMode> DatagramServer<UdpSocket, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<UdpSocket, M> {
        Builder::with_socket(SocketOptions::without_address_reuse())
    }
}

impl<M: RequestMode, H: RequestHandler<UdpRequest>> DatagramServer<UdpSocket, M, H> {
    /// Binds `addr` with the default options and returns the server, ready
    /// to serve. Port 0 picks a free port (see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: impl ToSocketAddrs, handler: H) -> io::Result<Self> {
        DatagramServer::<UdpSocket, M, NoHandler>::builder().bind(addr, handler)
    }
}

impl<M: RequestMode> DatagramServer<UnixDatagram, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<UnixDatagram, M> {
        Builder::with_socket(SocketOptions::without_address_reuse())
    }
}

impl<M: RequestMode, H: RequestHandler<UnixDatagramRequest>> DatagramServer<UnixDatagram, M, H> {
    /// Binds a socket at `path` with the default options.
    pub fn bind(path: impl AsRef<Path>, handler: H) -> io::Result<Self> {
        DatagramServer::<UnixDatagram, M, NoHandler>::builder().bind(path, handler)
    }
}
