//! The handler trait: where a user's code lives.
//!
//! Python makes a new handler object per request and calls `setup`,
//! `handle` and `finish` on it, while hooks such as `verify_request` live on
//! the server class. Here one handler value serves every request (it is
//! shared by the worker threads, hence `&self`), per-request state lives in
//! the request or in `handle`'s locals, and the server hooks are default
//! methods of the same trait, so a whole server is one `impl` block.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};

/// What every request offers its handler's hooks: the peer's address.
pub trait Request {
    /// The peer's address type: [`std::net::SocketAddr`] for TCP and UDP,
    /// [`std::os::unix::net::SocketAddr`] for Unix sockets.
    type Addr: fmt::Debug;

    /// The address of the client that sent the request.
    fn peer_addr(&self) -> &Self::Addr;
}

/// Serves requests of type `R`: implement [`handle`](Self::handle), and
/// override the other methods where the defaults do not suit.
///
/// A closure `Fn(&mut R) -> io::Result<()>` is a handler too.
///
/// The order for each request is `verify_request`, then `setup`, then
/// `handle`, then `finish`. `finish` runs whenever `setup` succeeded, even
/// if `handle` failed or panicked. Errors and panics from any of them go
/// to `handle_error`; they end that request only, never the server.
///
/// ```
/// use socketserver::{RequestHandler, TcpRequest};
/// use std::io::{self, BufRead, Write};
///
/// /// Answers each line with its length.
/// struct LineLength;
///
/// impl RequestHandler<TcpRequest> for LineLength {
///     fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
///         let mut line = String::new();
///         while request.read_line(&mut line)? > 0 {
///             writeln!(request, "{}", line.trim_end().len())?;
///             line.clear();
///         }
///         Ok(())
///     }
///
///     fn verify_request(&self, request: &TcpRequest) -> bool {
///         request.peer_addr().ip().is_loopback()
///     }
/// }
/// ```
pub trait RequestHandler<R: Request>: Send + Sync + 'static {
    /// Decides whether to serve the request at all; `false` closes the
    /// connection (or drops the datagram) before any other method runs,
    /// and counts it in [`Stats::refused`](crate::Stats::refused).
    ///
    /// Runs on the thread that would serve the request, so it may block
    /// (for a challenge-response exchange, say) without stalling the
    /// accept loop of a threading server.
    fn verify_request(&self, request: &R) -> bool {
        let _ = request;
        true
    }

    /// Runs before [`handle`](Self::handle). An error here skips `handle`
    /// and `finish`.
    fn setup(&self, request: &mut R) -> io::Result<()> {
        let _ = request;
        Ok(())
    }

    /// Serves the request. For a stream server this is the whole
    /// conversation with one client: return when it is over and the
    /// server closes the connection.
    fn handle(&self, request: &mut R) -> io::Result<()>;

    /// Runs after [`handle`](Self::handle), even if it failed or panicked.
    fn finish(&self, request: &mut R) -> io::Result<()> {
        let _ = request;
        Ok(())
    }

    /// Reports an error from `setup`, `handle` or `finish`, or a panic in
    /// any of them (an error wrapping a [`HandlerPanic`]). The default
    /// logs it with the peer's address: at `warn` level when the peer
    /// caused it (it went away or timed out), at `error` level otherwise.
    /// The server goes on serving either way.
    fn handle_error(&self, request: &R, error: &io::Error) {
        log_request_error(request.peer_addr(), error);
    }

    /// Called by `handle_request` when no request arrived within the
    /// server's timeout.
    fn handle_timeout(&self) {}

    /// Called by the serving loop after each batch of requests, and every
    /// service interval if the server has one; in a threading datagram
    /// server, whose workers receive for themselves, only on the interval.
    /// For periodic housekeeping.
    fn service_actions(&self) {}
}

/// Implements every [`RequestHandler`] method but `verify_request` by
/// calling the same method of the handler `$inner` evaluates to: for
/// wrappers that check something before a connection is served (such as
/// `auth::Authenticated`) and must pass everything else through. Kept
/// beside the trait, so a method added to the trait is added here too,
/// and no wrapper silently stops forwarding it.
#[cfg_attr(not(feature = "auth"), allow(unused_macros))]
macro_rules! forward_handler_hooks {
    ($request:ty, |$this:ident| $inner:expr) => {
        fn setup(&self, request: &mut $request) -> std::io::Result<()> {
            let $this = self;
            $inner.setup(request)
        }

        fn handle(&self, request: &mut $request) -> std::io::Result<()> {
            let $this = self;
            $inner.handle(request)
        }

        fn finish(&self, request: &mut $request) -> std::io::Result<()> {
            let $this = self;
            $inner.finish(request)
        }

        fn handle_error(&self, request: &$request, error: &std::io::Error) {
            let $this = self;
            $inner.handle_error(request, error)
        }

        fn handle_timeout(&self) {
            let $this = self;
            $inner.handle_timeout()
        }

        fn service_actions(&self) {
            let $this = self;
            $inner.service_actions()
        }
    };
}
#[cfg_attr(not(feature = "auth"), allow(unused_imports))]
pub(crate) use forward_handler_hooks;

impl<R, F> RequestHandler<R> for F
where
    R: Request,
    F: Fn(&mut R) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, request: &mut R) -> io::Result<()> {
        self(request)
    }
}

/// The error [`RequestHandler::handle_error`] receives when handler code
/// panicked, wrapped in an [`io::Error`] of kind `Other`.
///
/// ```
/// # use socketserver::HandlerPanic;
/// fn describe(error: &std::io::Error) -> String {
///     match error.get_ref().and_then(|e| e.downcast_ref::<HandlerPanic>()) {
///         Some(panic) => format!("a bug: {}", panic.message()),
///         None => format!("an error: {error}"),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct HandlerPanic {
    message: String,
}

impl HandlerPanic {
    fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a non-string panic payload".to_owned()
        };
        HandlerPanic { message }
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HandlerPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler panicked: {}", self.message)
    }
}

impl Error for HandlerPanic {}

/// True for errors the peer causes by going away or being too slow.
pub(crate) fn is_peer_error(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
            | TimedOut
            | WouldBlock
            | InvalidData
    )
}

fn log_request_error(peer: &dyn fmt::Debug, error: &io::Error) {
    if is_peer_error(error) {
        log::warn!("request from {peer:?} failed: {error}");
    } else {
        log::error!("error serving {peer:?}: {error}");
    }
}

/// Runs `f`, turning a panic into an error.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, io::Error> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| io::Error::other(HandlerPanic::from_payload(payload.as_ref())))
}

fn is_panic(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<HandlerPanic>())
}

/// How one request went, for the server to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "the server counts what happened"]
pub(crate) struct Outcome {
    /// `verify_request` turned it away.
    pub(crate) refused: bool,
    /// Errors reported to `handle_error`.
    pub(crate) errors: u32,
    /// Panics caught (and reported to `handle_error`).
    pub(crate) panics: u32,
}

impl Outcome {
    fn and(self, other: Outcome) -> Outcome {
        Outcome {
            refused: self.refused || other.refused,
            errors: self.errors + other.errors,
            panics: self.panics + other.panics,
        }
    }
}

/// Takes one request through `verify_request`, `setup`, `handle` and
/// `finish`, reporting failures to `handle_error`. Never panics and never
/// fails: whatever happens stays with this request, and is returned for
/// the server to count.
pub(crate) fn process<R: Request, H: RequestHandler<R>>(handler: &H, request: &mut R) -> Outcome {
    match catch(|| handler.verify_request(request)) {
        Ok(true) => {}
        Ok(false) => {
            log::debug!("refused request from {:?}", request.peer_addr());
            return Outcome {
                refused: true,
                ..Outcome::default()
            };
        }
        Err(panicked) => return report(handler, request, panicked),
    }
    if let Err(e) = catch(|| handler.setup(request)).and_then(|r| r) {
        return report(handler, request, e);
    }
    let handled = catch(|| handler.handle(request)).and_then(|r| r);
    let finished = catch(|| handler.finish(request)).and_then(|r| r);
    [handled.err(), finished.err()]
        .into_iter()
        .flatten()
        .fold(Outcome::default(), |outcome, error| {
            outcome.and(report(handler, request, error))
        })
}

/// Hands a failure to `handle_error`, containing a panic there too, and
/// says what to count.
pub(crate) fn report<R: Request, H: RequestHandler<R>>(
    handler: &H,
    request: &R,
    error: io::Error,
) -> Outcome {
    report_with(request, &error, |request, error| {
        handler.handle_error(request, error)
    })
}

/// [`report`] for any `handle_error`.
pub(crate) fn report_with<R: Request>(
    request: &R,
    error: &io::Error,
    handle_error: impl FnOnce(&R, &io::Error),
) -> Outcome {
    if let Err(panicked) = catch(|| handle_error(request, error)) {
        log::error!(
            "handle_error panicked ({panicked}) while reporting for {:?}: {error}",
            request.peer_addr()
        );
    }
    if is_panic(error) {
        Outcome {
            panics: 1,
            ..Outcome::default()
        }
    } else {
        Outcome {
            errors: 1,
            ..Outcome::default()
        }
    }
}

/// Runs a server-level hook (`handle_timeout`, `service_actions`), logging
/// a panic instead of letting it take the serving loop down.
pub(crate) fn run_hook(name: &str, hook: impl FnOnce()) {
    if let Err(panicked) = catch(hook) {
        log::error!("{name} panicked: {panicked}");
    }
}
