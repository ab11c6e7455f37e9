//! Handlers: where a user's code lives.
//!
//! Python makes a new handler object per request and calls `setup`,
//! `handle` and `finish` on it, while hooks such as `verify_request` live on
//! the server class. Here one handler value serves every request (it is
//! shared by the worker threads, hence `&self`), per-request state lives in
//! the request, in `handle`'s locals or in a connection's
//! [`State`](KeepAliveHandler::State), and the server hooks are default
//! methods of the same trait, so a whole server is one `impl` block.
//!
//! # Two styles, every stream server
//!
//! A stream handler comes in one of two styles, and every stream server
//! (serial, threading or parked) runs either, unchanged:
//!
//! - **Per request**, [`KeepAliveHandler`]: `handle_one` reads one
//!   request, answers it and says what [`Next`]; the server loops. Write
//!   this one when the protocol has requests (lines, frames, commands,
//!   HTTP): on a parked server a connection then waits between requests
//!   holding no thread, and every server can end a connection at a
//!   request boundary (shutdown closes the idle ones at once).
//! - **Looping**, [`RequestHandler`]: `handle` is the whole conversation,
//!   as in Python. Right for a protocol with no request boundary (a
//!   shell, a stream of events). On a parked server such a connection
//!   holds its worker for its life, as on a threading server.
//!
//! A server's `bind` takes either ([`StreamHandler`] says which a type
//! is); a type that implements both for the same request is ambiguous,
//! so implement one. Datagram servers take a [`RequestHandler`]: one
//! datagram is one request.
//!
//! The life of a connection is the same whichever server serves it:
//! `verify_request`, then `setup` (looping) or `open` (per request),
//! then `handle` or each `handle_one`, then `finish` (looping, even after
//! a failure) or `close` (per request, whatever ended it). Errors and
//! panics go to `handle_error` and are counted in
//! [`Stats`](crate::Stats) the same way by every server.
//!
//! # Wrapping a handler
//!
//! Code that adds a check or a first exchange around any handler (the
//! `auth` feature's `Authenticated`, a watchdog) implements [`Wrap`];
//! [`Wrapped`] runs it around a handler of either style and forwards
//! everything else.

mod style;
mod wrap;

pub(crate) use style::{Lifecycle, ToLifecycle};
pub use style::{Looping, PerRequest, StreamHandler};
pub use wrap::{Wrap, Wrapped};

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

    /// Whether the request came on a connection a trusted proxy opened
    /// for itself rather than for a client: a PROXY protocol header with
    /// the `LOCAL` command, as HAProxy's health checks send (feature
    /// `proxy-protocol`). A proxy ends its checks as it likes, often with
    /// a reset once it has its answer, so a peer error on such a
    /// connection is no failed request: it still goes to `handle_error`,
    /// whose default logs it at debug level, and the server counts the
    /// connection in [`Stats::health_checks`](crate::Stats::health_checks),
    /// not in its errors. False by default.
    fn is_health_check(&self) -> bool {
        false
    }
}

/// Serves requests of type `R`: implement [`handle`](Self::handle), and
/// override the other methods where the defaults do not suit.
///
/// For a stream server `handle` is the whole conversation with one
/// client (the looping style; see the [module documentation](self) for
/// when to write a [`KeepAliveHandler`] instead); for a datagram server,
/// one datagram. A closure `Fn(&mut R) -> io::Result<()>` is a handler
/// too.
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
    /// logs `request from PEER failed: ERROR`, at a level that says whose
    /// doing it was:
    ///
    /// - `error`: the server's side failed (an error of the handler's own,
    ///   a file it could not write) or a handler panicked;
    /// - `warn`: the peer's doing: it reset the connection or went away
    ///   mid-request, timed out, or sent what cannot be served
    ///   (`ConnectionReset`, `BrokenPipe`, `UnexpectedEof`, `TimedOut`,
    ///   `InvalidData`, ...), a failed TLS handshake included;
    /// - `debug`: an end that cut nothing short: a TLS client that left
    ///   without `close_notify` having sent nothing since its answer
    ///   (`tls::TlsTruncated::between_requests`,
    ///   feature `tls`), or a proxy's health check going away
    ///   ([`Request::is_health_check`]).
    ///
    /// The server goes on serving either way. An override can hand the
    /// errors it does not treat itself to [`log_error`], this default.
    fn handle_error(&self, request: &R, error: &io::Error) {
        log_error(request, error);
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

impl<R, F> RequestHandler<R> for F
where
    R: Request,
    F: Fn(&mut R) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, request: &mut R) -> io::Result<()> {
        self(request)
    }
}

/// What a [`KeepAliveHandler`] wants done with the connection once a
/// request is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep it open for its next request (on a parked server it waits in
    /// the server's readiness set, holding no thread and no buffer). Once
    /// the server is shutting down, the connection closes anyway.
    KeepOpen,
    /// Close it (Python's `close_connection = True`).
    Close,
}

/// Serves a connection one request at a time, on any stream server: the
/// per-request style (see the [module documentation](self)).
///
/// The server waits for the client to send something, then calls
/// [`handle_one`](Self::handle_one), which reads one request and answers
/// it with ordinary blocking `Read`, `BufRead` and `Write`, and says
/// whether to keep the connection. This is Python's `http.server` shape
/// (`handle_one_request` in a loop, `close_connection`), with the loop
/// moved into the server:
///
/// - on a parked server ([`ParkedTcpServer`](crate::ParkedTcpServer)),
///   between two requests the connection waits in the server's readiness
///   set with its [`State`](Self::State), holding no worker thread and no
///   buffer, so idle clients cost next to nothing;
/// - on a threading or serial server the connection keeps its thread,
///   which waits for the next request (within the builder's
///   `read_timeout`, if set); when shutdown begins, connections waiting
///   between requests are closed at once, and the others after the
///   request they are in.
///
/// `handle_one` is only called when the client has sent something: a
/// client that closes its end is closed by the server without a call.
/// Errors and panics are reported to [`handle_error`](Self::handle_error)
/// and close that connection only.
///
/// ```
/// use socketserver::{KeepAliveHandler, Next, ParkedTcpServer, TcpRequest};
/// use std::io::{self, BufRead, Write};
///
/// /// Answers each line with its number on the connection.
/// struct Counter;
///
/// impl KeepAliveHandler<TcpRequest> for Counter {
///     /// Lines seen so far on this connection.
///     type State = u64;
///
///     fn handle_one(&self, request: &mut TcpRequest, seen: &mut u64) -> io::Result<Next> {
///         let mut line = String::new();
///         if request.read_line(&mut line)? == 0 {
///             return Ok(Next::Close);
///         }
///         *seen += 1;
///         writeln!(request, "{seen}: {}", line.trim_end())?;
///         Ok(if line.trim_end() == "bye" { Next::Close } else { Next::KeepOpen })
///     }
/// }
///
/// let server = ParkedTcpServer::bind("127.0.0.1:0", Counter)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait KeepAliveHandler<R: Request>: Send + Sync + 'static {
    /// What the handler keeps about one connection between its requests
    /// (a session, counters, a parser's position); `()` for nothing. It
    /// is created by [`open`](Self::open) and owned by the connection.
    type State: Default + Send + 'static;

    /// Decides whether to serve a new connection at all, before `open`;
    /// `false` closes it and counts it in
    /// [`Stats::refused`](crate::Stats::refused). Runs on a worker.
    fn verify_request(&self, request: &R) -> bool {
        let _ = request;
        true
    }

    /// Starts a connection's life, on the thread that serves it, once it is verified, and
    /// makes its state (by default `State::default()`). It may talk to
    /// the client first (a greeting). An error closes the connection.
    fn open(&self, request: &mut R) -> io::Result<Self::State> {
        let _ = request;
        Ok(Self::State::default())
    }

    /// Serves one request: reads it, answers it, and says whether to keep
    /// the connection. Bytes read ahead beyond the request are kept for
    /// the next one, which is then served without waiting for the client.
    fn handle_one(&self, request: &mut R, state: &mut Self::State) -> io::Result<Next>;

    /// Ends a connection's life, whatever closed it (the handler, an
    /// error, the client leaving, a deadline, shutdown): gets its state
    /// back. May run on the serving loop's thread: keep it short, no I/O.
    fn close(&self, state: Self::State) {
        drop(state);
    }

    /// Reports an error from `open` or `handle_one`, or a panic in them;
    /// see [`RequestHandler::handle_error`].
    fn handle_error(&self, request: &R, error: &io::Error) {
        log_error(request, error);
    }

    /// Called by `handle_request` when nothing happened within the
    /// server's timeout.
    fn handle_timeout(&self) {}

    /// Called every service interval, if the server has one (the
    /// builder's `service_interval`), on the `serve_forever` thread: the
    /// workers serve the requests, and a loop of its own would only add
    /// work to each. For periodic housekeeping.
    fn service_actions(&self) {}

    /// Writes a connection's state down so that a restart can move the
    /// connection to the new process, whose
    /// [`restore_state`](Self::restore_state) reads it back
    /// (feature `restart`: a parked server moves its connections
    /// between two requests). `None`: this connection cannot move; it
    /// stays in the old process, which serves it until its client closes
    /// it (or the drain limit comes).
    ///
    /// By default a state that holds no data (a zero-sized type such as
    /// `()`) moves, and any other stays. The state left behind is dropped
    /// without [`close`](Self::close): the connection lives on in the new
    /// process. Runs on a worker of the old process, between two requests.
    ///
    /// ```
    /// use socketserver::{KeepAliveHandler, Next, TcpRequest};
    /// use std::io::{self, BufRead, Write};
    ///
    /// /// Numbers the lines of each connection, across restarts too.
    /// struct Counter;
    ///
    /// impl KeepAliveHandler<TcpRequest> for Counter {
    ///     type State = u64;
    ///
    ///     fn handle_one(&self, request: &mut TcpRequest, seen: &mut u64) -> io::Result<Next> {
    ///         let mut line = String::new();
    ///         if request.read_line(&mut line)? == 0 {
    ///             return Ok(Next::Close);
    ///         }
    ///         *seen += 1;
    ///         writeln!(request, "{seen}: {}", line.trim_end())?;
    ///         Ok(Next::KeepOpen)
    ///     }
    ///
    ///     fn save_state(&self, seen: &u64) -> Option<Vec<u8>> {
    ///         Some(seen.to_le_bytes().to_vec())
    ///     }
    ///
    ///     fn restore_state(&self, saved: &[u8]) -> io::Result<u64> {
    ///         let bytes = saved.try_into().map_err(|_| {
    ///             io::Error::new(io::ErrorKind::InvalidData, "a line count is 8 bytes")
    ///         })?;
    ///         Ok(u64::from_le_bytes(bytes))
    ///     }
    /// }
    /// # assert_eq!(Counter.restore_state(&Counter.save_state(&41).unwrap()).unwrap(), 41);
    /// ```
    fn save_state(&self, state: &Self::State) -> Option<Vec<u8>> {
        let _ = state;
        (std::mem::size_of::<Self::State>() == 0).then(Vec::new)
    }

    /// Reads back, in the new process of a restart, what
    /// [`save_state`](Self::save_state) wrote in the old one: the state
    /// the moved connection goes on with. An error closes the connection
    /// (and is logged). Runs on the thread that takes moved connections
    /// in, before the connection's next request.
    ///
    /// By default a state that holds no data is made anew
    /// (`State::default()`); any other is an `InvalidData` error, since
    /// the default `save_state` never lets such a state move.
    fn restore_state(&self, saved: &[u8]) -> io::Result<Self::State> {
        if std::mem::size_of::<Self::State>() == 0 && saved.is_empty() {
            return Ok(Self::State::default());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "cannot restore a moved connection's state ({} bytes): the handler has no restore_state",
                saved.len()
            ),
        ))
    }
}

impl<R, F> KeepAliveHandler<R> for F
where
    R: Request,
    F: Fn(&mut R) -> io::Result<Next> + Send + Sync + 'static,
{
    type State = ();

    fn handle_one(&self, request: &mut R, _state: &mut ()) -> io::Result<Next> {
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

/// Whether `error` ending `request` is a proxy's health check going away
/// ([`Request::is_health_check`]).
fn is_health_check_end<R: Request + ?Sized>(request: &R, error: &io::Error) -> bool {
    is_peer_error(error) && request.is_health_check()
}

/// Whether `error` ending `request` cut nothing short: a proxy's health
/// check going away, or a TLS client that left without `close_notify`
/// having sent nothing since its last answer (most clients do). The
/// handler still hears of it; it is no failed request, and not counted as
/// one.
pub(crate) fn is_clean_end<R: Request + ?Sized>(request: &R, error: &io::Error) -> bool {
    #[cfg(feature = "tls")]
    if crate::tls::TlsTruncated::of(error).is_some_and(|t| t.between_requests()) {
        return true;
    }
    is_health_check_end(request, error)
}

/// The level the default `handle_error` logs `error` ending `request` at:
/// `Debug` for an end that cut nothing short (a TLS client that left
/// without close_notify having sent nothing since its answer, a proxy's
/// health check going away), `Warn` for the peer's doing
/// ([`is_peer_error`]: it went away mid-request, timed out, sent what
/// cannot be served), `Error` for the rest: the server's side failed, or
/// a handler panicked.
pub(crate) fn error_level<R: Request + ?Sized>(request: &R, error: &io::Error) -> log::Level {
    if is_clean_end(request, error) {
        log::Level::Debug
    } else {
        failure_level(error)
    }
}

/// The level of a failure whatever the request: `Warn` for the peer's
/// doing ([`is_peer_error`]), `Error` for the server's.
pub(crate) fn failure_level(error: &io::Error) -> log::Level {
    if is_peer_error(error) {
        log::Level::Warn
    } else {
        log::Level::Error
    }
}

/// What the default `handle_error` does: logs one line, `request from
/// PEER failed: ERROR`, at the level
/// [`RequestHandler::handle_error`] lists (`debug` for an end that cut
/// nothing short, `warn` for the peer's doing, `error` for the rest). A
/// handler that treats some errors its own way calls it for the others:
///
/// ```
/// use std::io;
/// use socketserver::{KeepAliveHandler, Next, TcpRequest};
///
/// struct Patient;
///
/// impl KeepAliveHandler<TcpRequest> for Patient {
///     type State = ();
///
///     fn handle_one(&self, _: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
///         Ok(Next::Close)
///     }
///
///     // A client that says nothing within the timeout is no failure here.
///     fn handle_error(&self, request: &TcpRequest, error: &io::Error) {
///         if error.kind() == io::ErrorKind::TimedOut {
///             return log::debug!("{:?} said nothing in time", request.peer_addr());
///         }
///         socketserver::handler::log_error(request, error);
///     }
/// }
/// ```
pub fn log_error<R: Request + ?Sized>(request: &R, error: &io::Error) {
    log::log!(
        error_level(request, error),
        "request from {:?} failed: {error}",
        request.peer_addr()
    );
}

/// Runs `f`, turning a panic into an error.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, io::Error> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| io::Error::other(HandlerPanic::from_payload(payload.as_ref())))
}

pub(crate) fn is_panic(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<HandlerPanic>())
}

/// Runs a server-level hook (`handle_timeout`, `service_actions`), logging
/// a panic instead of letting it take the serving loop down.
pub(crate) fn run_hook(name: &str, hook: impl FnOnce()) {
    if let Err(panicked) = catch(hook) {
        log::error!("{name} panicked: {panicked}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request from a client, or a proxy's health check.
    struct Probe {
        health_check: bool,
    }

    impl Request for Probe {
        type Addr = &'static str;

        fn peer_addr(&self) -> &&'static str {
            &"peer"
        }

        fn is_health_check(&self) -> bool {
            self.health_check
        }
    }

    const CLIENT: Probe = Probe { health_check: false };
    const CHECK: Probe = Probe { health_check: true };

    #[test]
    fn a_failed_requests_level_says_whose_doing_it_was() {
        use log::Level;
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(error_level(&CLIENT, &reset), Level::Warn);
        let ours = io::Error::new(io::ErrorKind::PermissionDenied, "cannot write out.txt");
        assert_eq!(error_level(&CLIENT, &ours), Level::Error);
        let panicked = io::Error::other(HandlerPanic {
            message: "bug".into(),
        });
        assert_eq!(error_level(&CLIENT, &panicked), Level::Error);
        #[cfg(feature = "tls")]
        {
            use crate::tls::TlsTruncated;
            let after_answer = io::Error::from(TlsTruncated::new(true));
            assert_eq!(error_level(&CLIENT, &after_answer), Level::Debug);
            let mid_request = io::Error::from(TlsTruncated::new(false));
            assert_eq!(error_level(&CLIENT, &mid_request), Level::Warn);
        }
    }

    #[test]
    fn a_health_check_going_away_is_no_failed_request() {
        use log::Level;
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(error_level(&CHECK, &reset), Level::Debug);
        // Not counted as an error either (the server counts what this says).
        assert!(is_clean_end(&CHECK, &reset));
        assert!(!is_clean_end(&CLIENT, &reset));
        // The server's own failure on a health check is still an error.
        let ours = io::Error::other("the handler's own failure");
        assert_eq!(error_level(&CHECK, &ours), Level::Error);
        assert!(!is_clean_end(&CHECK, &ours));
    }
}
