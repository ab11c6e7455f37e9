//! The servers: a stream loop, in two modes.
//!
//! Python builds `ThreadingTCPServer` by mixing `ThreadingMixIn` into
//! `TCPServer`. Here the loop is written once per transport kind and takes
//! the mode as a type parameter: [`Serial`] serves each request on the
//! loop thread, [`Threading`] hands it to a worker pool. The public names
//! ([`TcpServer`], [`ThreadingTcpServer`], ...) are aliases of those
//! combinations.

mod backoff;
mod builder;
mod connections;
mod control;
pub(crate) mod stats;
mod stream;

use std::io;
use std::net::{TcpListener, ToSocketAddrs};

pub use builder::{Builder, DEFAULT_READ_BUFFER_SIZE, DEFAULT_SHUTDOWN_GRACE, IpTransport};
pub use control::{FORCE_CLOSE_WAIT, ServerHandle, ShutdownHandle};
pub use stats::Stats;
pub use stream::StreamServer;

use crate::handler::RequestHandler;
use crate::request::TcpRequest;
use crate::socket::SocketOptions;
use crate::transport::Sealed;

/// How a server runs its handlers: [`Serial`] or [`Threading`].
pub trait Mode: Sealed + Send + Sync + 'static {
    #[doc(hidden)]
    const THREADING: bool;
}

/// Serves one request at a time on the thread that runs the loop, like
/// Python's `TCPServer`.
#[derive(Clone, Copy, Debug)]
pub struct Serial;
impl Sealed for Serial {}
impl Mode for Serial {
    const THREADING: bool = false;
}

/// Serves each request on a pooled worker thread, like Python's
/// `ThreadingMixIn` but with threads reused and bounded.
#[derive(Clone, Copy, Debug)]
pub struct Threading;
impl Sealed for Threading {}
impl Mode for Threading {
    const THREADING: bool = true;
}

/// TCP, one connection at a time (Python's `TCPServer`).
pub type TcpServer<H> = StreamServer<TcpListener, Serial, H>;
/// TCP, each connection on a pooled worker (Python's `ThreadingTCPServer`).
pub type ThreadingTcpServer<H> = StreamServer<TcpListener, Threading, H>;

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
        Builder::with_socket(SocketOptions::stream())
    }
}

impl<M: Mode, H: RequestHandler<TcpRequest>> StreamServer<TcpListener, M, H> {
    /// Binds `addr` with the default options and returns the server, ready
    /// to serve. Port 0 picks a free port (see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: impl ToSocketAddrs, handler: H) -> io::Result<Self> {
        StreamServer::<TcpListener, M, NoHandler>::builder().bind(addr, handler)
    }
}
