//! Wrapping a handler of either style in a check or a first exchange,
//! written once: [`Wrapped`] implements both handler traits, so a wrapper
//! forwards nothing by hand and never forgets a hook.

use std::io;

use super::{KeepAliveHandler, Next, Request, RequestHandler};

/// What a wrapper adds around a handler: a check before a connection is
/// served, a first exchange with the client, periodic work. Run it with
/// [`Wrapped`], which passes everything else to the wrapped handler,
/// whatever its style.
///
/// ```
/// use socketserver::handler::{Wrap, Wrapped};
/// use socketserver::{Request, ThreadingTcpServer, TcpRequest, echo::Uppercase};
/// use std::io::{self, Write};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Greets every client, and counts them.
/// #[derive(Default)]
/// struct Greeting(AtomicU64);
///
/// impl Wrap<TcpRequest> for Greeting {
///     fn open(&self, request: &mut TcpRequest) -> io::Result<()> {
///         let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
///         writeln!(request, "welcome, client {n}")
///     }
/// }
///
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", Wrapped(Greeting::default(), Uppercase))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Wrap<R: Request>: Send + Sync + 'static {
    /// Decides whether to serve the connection (or datagram), once the
    /// wrapped handler's own `verify_request` has said yes (a peer it
    /// refuses never gets here). `false` refuses it, as the wrapped
    /// handler's `false` does.
    fn verify_request(&self, request: &R) -> bool {
        let _ = request;
        true
    }

    /// Runs once per connection (per datagram on a datagram server),
    /// before the wrapped handler's `setup` or `open`; an error ends the
    /// connection as theirs do.
    fn open(&self, request: &mut R) -> io::Result<()> {
        let _ = request;
        Ok(())
    }

    /// Runs after the wrapped handler's `service_actions`.
    fn service_actions(&self) {}
}

/// A handler (`.1`) with a [`Wrap`] (`.0`) around it: a
/// [`RequestHandler`] when the handler is one, a [`KeepAliveHandler`]
/// when it is one, so it runs wherever the handler runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wrapped<W, H>(pub W, pub H);

impl<R, W, H> RequestHandler<R> for Wrapped<W, H>
where
    R: Request,
    W: Wrap<R>,
    H: RequestHandler<R>,
{
    fn verify_request(&self, request: &R) -> bool {
        self.1.verify_request(request) && self.0.verify_request(request)
    }

    fn setup(&self, request: &mut R) -> io::Result<()> {
        self.0.open(request)?;
        self.1.setup(request)
    }

    fn handle(&self, request: &mut R) -> io::Result<()> {
        self.1.handle(request)
    }

    fn finish(&self, request: &mut R) -> io::Result<()> {
        self.1.finish(request)
    }

    fn handle_error(&self, request: &R, error: &io::Error) {
        self.1.handle_error(request, error)
    }

    fn handle_timeout(&self) {
        self.1.handle_timeout()
    }

    fn service_actions(&self) {
        self.1.service_actions();
        self.0.service_actions();
    }
}

impl<R, W, H> KeepAliveHandler<R> for Wrapped<W, H>
where
    R: Request,
    W: Wrap<R>,
    H: KeepAliveHandler<R>,
{
    type State = H::State;

    fn verify_request(&self, request: &R) -> bool {
        self.1.verify_request(request) && self.0.verify_request(request)
    }

    fn open(&self, request: &mut R) -> io::Result<H::State> {
        self.0.open(request)?;
        self.1.open(request)
    }

    fn handle_one(&self, request: &mut R, state: &mut H::State) -> io::Result<Next> {
        self.1.handle_one(request, state)
    }

    fn close(&self, state: H::State) {
        self.1.close(state)
    }

    fn handle_error(&self, request: &R, error: &io::Error) {
        self.1.handle_error(request, error)
    }

    fn handle_timeout(&self) {
        self.1.handle_timeout()
    }

    fn service_actions(&self) {
        self.1.service_actions();
        self.0.service_actions();
    }

    /// The wrapper's part was done when the connection opened (a client
    /// verified stays verified): the handler's state is all that moves.
    fn save_state(&self, state: &H::State) -> Option<Vec<u8>> {
        self.1.save_state(state)
    }

    fn restore_state(&self, saved: &[u8]) -> io::Result<H::State> {
        self.1.restore_state(saved)
    }
}
