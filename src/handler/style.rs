//! The two styles of stream handler, seen by the servers as one
//! lifecycle.
//!
//! A server is generic over its handler's [`Lifecycle`], never over the
//! trait the user implemented: [`ToLifecycle`] turns a [`RequestHandler`]
//! or a [`KeepAliveHandler`] into one. The style is a type parameter of
//! `bind` that the compiler infers from the trait the handler implements
//! (two blanket implementations of one trait would overlap; two of a
//! trait with a style parameter do not).

use std::io;
use std::sync::Arc;

use super::{KeepAliveHandler, Next, Request, RequestHandler};

/// The looping style: a [`RequestHandler`], whose `handle` is a whole
/// conversation. Only named in [`StreamHandler`]'s parameter, which the
/// compiler infers.
#[derive(Clone, Copy, Debug)]
pub enum Looping {}

/// The per-request style: a [`KeepAliveHandler`], whose `handle_one`
/// serves one request. Only named in [`StreamHandler`]'s parameter,
/// which the compiler infers.
#[derive(Clone, Copy, Debug)]
pub enum PerRequest {}

/// A handler a stream server can run: every [`RequestHandler`] (style
/// [`Looping`]) and every [`KeepAliveHandler`] (style [`PerRequest`]).
/// Implemented for them; not to be implemented by hand.
///
/// The style is inferred:
///
/// ```
/// use socketserver::{KeepAliveHandler, Next, ParkedTcpServer, TcpRequest, ThreadingTcpServer};
/// use std::io::{self, BufRead, Write};
///
/// /// One line, one answer.
/// struct Shout;
///
/// impl KeepAliveHandler<TcpRequest> for Shout {
///     type State = ();
///
///     fn handle_one(&self, req: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
///         let mut line = String::new();
///         if req.read_line(&mut line)? == 0 {
///             return Ok(Next::Close);
///         }
///         req.write_all(line.to_uppercase().as_bytes())?;
///         Ok(Next::KeepOpen)
///     }
/// }
///
/// // The same handler on either server: only the type's name changes.
/// let threading = ThreadingTcpServer::bind("127.0.0.1:0", Shout)?;
/// let parked = ParkedTcpServer::bind("127.0.0.1:0", Shout)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait StreamHandler<R: Request, Style>: ToLifecycle<R, Style> + Send + Sync + 'static {}

impl<R: Request, H: RequestHandler<R>> StreamHandler<R, Looping> for H {}
impl<R: Request, H: KeepAliveHandler<R>> StreamHandler<R, PerRequest> for H {}

mod sealed {
    use super::*;

    /// Turns a handler of style `Style` into the lifecycle servers run.
    pub trait ToLifecycle<R: Request, Style> {
        /// The lifecycle.
        type Lifecycle: Lifecycle<R>;

        /// Wraps the (shared) handler.
        fn lifecycle(handler: Arc<Self>) -> Self::Lifecycle;
    }

    /// A connection's life, whatever the handler's style: `verify`, `open`,
    /// `serve` (once, or once per request), `finish` (with the request,
    /// after the last `serve`), `close` (with the state only, whatever
    /// ended the connection). The server catches, reports and counts what
    /// fails (see `server::lifecycle`); these only call the handler.
    pub trait Lifecycle<R: Request>: Send + Sync + 'static {
        /// What a connection keeps between its requests.
        type State: Send + 'static;
        /// Whether a connection has requests the server waits for: `serve`
        /// serves one, and the connection may wait (parked, or idle on its
        /// thread) between them. False: `serve` is the whole conversation.
        const PER_REQUEST: bool;

        fn verify(&self, request: &R) -> bool;
        fn open(&self, request: &mut R) -> io::Result<Self::State>;
        fn serve(&self, request: &mut R, state: &mut Self::State) -> io::Result<Next>;
        fn finish(&self, request: &mut R) -> io::Result<()>;
        fn close(&self, state: Self::State);
        /// The state written down for a restart to move the connection;
        /// `None`: it cannot move.
        fn save(&self, state: &Self::State) -> Option<Vec<u8>>;
        /// A state `save` wrote, read back in the new process.
        fn restore(&self, saved: &[u8]) -> io::Result<Self::State>;
        fn handle_error(&self, request: &R, error: &io::Error);
        fn handle_timeout(&self);
        fn service_actions(&self);
    }
}
pub(crate) use sealed::{Lifecycle, ToLifecycle};

/// A [`RequestHandler`] as a lifecycle: `setup`, one `handle`, `finish`.
pub struct LoopingLife<H>(Arc<H>);

impl<R: Request, H: RequestHandler<R>> ToLifecycle<R, Looping> for H {
    type Lifecycle = LoopingLife<H>;

    fn lifecycle(handler: Arc<Self>) -> LoopingLife<H> {
        LoopingLife(handler)
    }
}

impl<R: Request, H: RequestHandler<R>> Lifecycle<R> for LoopingLife<H> {
    type State = ();
    const PER_REQUEST: bool = false;

    fn verify(&self, request: &R) -> bool {
        self.0.verify_request(request)
    }

    fn open(&self, request: &mut R) -> io::Result<()> {
        self.0.setup(request)
    }

    fn serve(&self, request: &mut R, _state: &mut ()) -> io::Result<Next> {
        self.0.handle(request).map(|()| Next::Close)
    }

    fn finish(&self, request: &mut R) -> io::Result<()> {
        self.0.finish(request)
    }

    fn close(&self, _state: ()) {}

    /// A conversation lives on its thread: it cannot move.
    fn save(&self, _state: &()) -> Option<Vec<u8>> {
        None
    }

    fn restore(&self, _saved: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a RequestHandler's connection cannot move to another process",
        ))
    }

    fn handle_error(&self, request: &R, error: &io::Error) {
        self.0.handle_error(request, error)
    }

    fn handle_timeout(&self) {
        self.0.handle_timeout()
    }

    fn service_actions(&self) {
        self.0.service_actions()
    }
}

/// A [`KeepAliveHandler`] as a lifecycle: `open`, `handle_one` per
/// request, `close`.
pub struct PerRequestLife<H>(Arc<H>);

impl<R: Request, H: KeepAliveHandler<R>> ToLifecycle<R, PerRequest> for H {
    type Lifecycle = PerRequestLife<H>;

    fn lifecycle(handler: Arc<Self>) -> PerRequestLife<H> {
        PerRequestLife(handler)
    }
}

impl<R: Request, H: KeepAliveHandler<R>> Lifecycle<R> for PerRequestLife<H> {
    type State = H::State;
    const PER_REQUEST: bool = true;

    fn verify(&self, request: &R) -> bool {
        self.0.verify_request(request)
    }

    fn open(&self, request: &mut R) -> io::Result<H::State> {
        self.0.open(request)
    }

    fn serve(&self, request: &mut R, state: &mut H::State) -> io::Result<Next> {
        self.0.handle_one(request, state)
    }

    fn finish(&self, _request: &mut R) -> io::Result<()> {
        Ok(())
    }

    fn close(&self, state: H::State) {
        self.0.close(state)
    }

    fn save(&self, state: &H::State) -> Option<Vec<u8>> {
        self.0.save_state(state)
    }

    fn restore(&self, saved: &[u8]) -> io::Result<H::State> {
        self.0.restore_state(saved)
    }

    fn handle_error(&self, request: &R, error: &io::Error) {
        self.0.handle_error(request, error)
    }

    fn handle_timeout(&self) {
        self.0.handle_timeout()
    }

    fn service_actions(&self) {
        self.0.service_actions()
    }
}
