//! The stream servers: TCP and Unix-domain sockets, in every mode.
//!
//! One engine takes connections in for all of them: it waits on the
//! listener and the waker in the loop's poller, accepts what is pending,
//! and hands each connection to its dispatch, the one place the modes
//! differ:
//!
//! - serial: the connection is served on the loop thread;
//! - pooled: a worker takes the connection for its whole life;
//! - parked: the connection waits in the loop's poller between requests,
//!   and a worker serves one request at a time (see [`parked`]).

mod connection;
mod listener;
mod opening;
mod parked;

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use self::connection::{Accepted, ConnectionJobs, ConnectionLocal, ConnectionService, refuse};
use self::listener::ListenerSlot;
pub(crate) use self::parked::Life;
use self::parked::ParkedDispatch;
use super::backoff::Backoff;
use super::builder::Transport;
use super::core::{Batch, Core, Engine, Hooks, Wake, handler_hooks, server_front};
use super::options::ServerConfig;
use super::wind_down::drain;
use super::{BindTo, Builder, Mode, ModeMarker, NoHandler, ServerHandle};
use crate::config::{DEFAULT_MAX_WORKERS, DEFAULT_PARKED_MAX_WORKERS, OverloadPolicy};
use crate::control::{Capacity, Control};
use crate::handler::{Lifecycle, StreamHandler};
use crate::pool::{Pool, PoolConfig, Refusal, WorkerCounts};
use crate::request::StreamRequest;
use crate::socket::SocketFile;
use crate::sys::Poller;
use crate::transport::Listener;

/// A stream-socket server, generic over the transport `L` (TCP or a Unix
/// socket), the [`ModeMarker`] `M` that names its mode, and the handler
/// `H`. Use it through its aliases: [`TcpServer`](crate::TcpServer),
/// [`ThreadingTcpServer`](crate::ThreadingTcpServer),
/// [`ParkedTcpServer`](crate::ParkedTcpServer) and their Unix twins
/// ([`UnixStreamServer`](crate::UnixStreamServer),
/// [`ThreadingUnixStreamServer`](crate::ThreadingUnixStreamServer),
/// [`ParkedUnixStreamServer`](crate::ParkedUnixStreamServer)). Every
/// one of them runs either handler style, a looping
/// [`RequestHandler`](crate::RequestHandler) or a per-request
/// [`KeepAliveHandler`](crate::KeepAliveHandler): switching modes is
/// changing the type's name (or calling [`Builder::mode`]).
///
/// Dropping a server that is not serving closes its socket; if requests it
/// handed to workers (through `handle_request`) are still running, it
/// first shuts down as [`ShutdownHandle::shutdown`](crate::ShutdownHandle::shutdown)
/// does, grace period included.
pub struct StreamServer<L: Listener, M, H> {
    core: Core<L::Addr>,
    handler: Arc<H>,
    mode: Mode,
    _mode: PhantomData<fn() -> M>,
}

server_front!(StreamServer<L: Listener, M, H>, L::Addr);

impl<L: Listener + Transport, M: ModeMarker> StreamServer<L, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<L, M> {
        Builder::new()
    }
}

impl<L: Listener, M: ModeMarker, H> StreamServer<L, M, H> {
    /// Binds `addr` (an address for TCP, a path for a Unix socket, as
    /// [`Builder::bind`] says) with the default options and returns the
    /// server, ready to serve. Port 0 picks a free port (see
    /// [`local_addr`](Self::local_addr)). `handler` is a
    /// [`RequestHandler`](crate::RequestHandler) or a
    /// [`KeepAliveHandler`](crate::KeepAliveHandler).
    pub fn bind<A, S>(addr: A, handler: H) -> io::Result<Self>
    where
        L: Transport + BindTo<A>,
        H: StreamHandler<StreamRequest<L::Stream>, S>,
    {
        Builder::<L, M>::new().bind(addr, handler)
    }

    /// A server on `listener`, in the mode `config` says.
    pub(crate) fn new<S>(
        listener: L,
        file: Option<SocketFile>,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Self>
    where
        H: StreamHandler<StreamRequest<L::Stream>, S>,
    {
        let handler = Arc::new(handler);
        let life = Arc::new(H::lifecycle(Arc::clone(&handler)));
        let hooks: Arc<dyn Hooks> =
            handler_hooks(&life, |life| life.service_actions(), |life| life.handle_timeout());
        let (base, poller, server) = EngineBase::new(listener, file, &config)?;
        let engine = StreamEngine::new(base, poller, life, &server, &config)?;
        Ok(StreamServer {
            core: Core::new(
                Box::new(engine),
                server,
                hooks,
                config.timeout,
                config.service_interval,
            ),
            handler,
            mode: config.mode,
            _mode: PhantomData,
        })
    }

    /// Serves until shutdown is requested (through a
    /// [`ShutdownHandle`](crate::ShutdownHandle), or a handler's
    /// [`ServerHandle::shutdown`]), then stops accepting, lets in-flight
    /// requests finish within the grace period, force-closes what is left,
    /// joins the workers, closes the listening socket, and returns.
    /// Connections waiting between two requests of a per-request handler
    /// are closed at once, in every mode.
    ///
    /// Returns at once, successfully, if shutdown was requested before.
    /// Fails with `ResourceBusy` if the server is already serving on
    /// another thread, and with the error if the listening socket fails
    /// (after the same orderly stop). Running out of file descriptors or
    /// memory is not such an error: the loop backs off and goes on.
    pub fn serve_forever(&self) -> io::Result<()> {
        self.core.serve_forever()
    }

    /// Serves at most one request: waits (up to the server's timeout) for
    /// a connection and serves it (serial mode) or hands it to a worker
    /// (threading and parked modes; a parked server takes whatever is
    /// ready: a new connection, or a request on a parked one). Returns
    /// `Ok(true)` if a request was taken, `Ok(false)` if the timeout passed
    /// (after calling `handle_timeout`) or shutdown was requested. Under
    /// [`max_connections`](crate::Builder::max_connections) it waits for
    /// room first, within the same timeout.
    pub fn handle_request(&self) -> io::Result<bool> {
        self.core.handle_request()
    }
}

/// How the stream engine serves what it accepts: the one place the modes
/// differ. `F` is the handler's lifecycle.
enum StreamDispatch<L: Listener, F: Life<L>> {
    /// Each connection is served on the loop thread (`TcpServer`).
    Serial {
        base: EngineBase<L>,
        poller: Poller,
        service: Arc<ConnectionService<L, F>>,
        /// Kept between calls, so a connection costs no slot registration
        /// and no buffer allocation.
        local: ConnectionLocal,
    },
    /// Each connection goes to a pooled worker for its whole life
    /// (`ThreadingTcpServer`).
    Pooled {
        base: EngineBase<L>,
        poller: Poller,
        pool: Pool<ConnectionJobs<L, F>>,
    },
    /// Connections wait in the poller between requests; workers take
    /// turns with the poller and serve one request at a time
    /// (`ParkedTcpServer`). The poller and listener are in there.
    Parked(ParkedDispatch<L, F>),
}

/// What every stream engine has: the listener (in the loop's poller), and
/// the bookkeeping of taking connections from it.
pub(crate) struct EngineBase<L: Listener> {
    pub(crate) listener: Arc<ListenerSlot<L>>,
    pub(crate) control: Arc<Control>,
    pub(crate) overload: OverloadPolicy,
    /// The listener may hold connections not accepted yet: the last batch
    /// stopped early, and edge-triggered readiness will not announce them
    /// again.
    pub(crate) pending: bool,
    pub(crate) backoff: Backoff,
    /// After running out of descriptors or memory: no accepting before.
    pub(crate) retry_at: Option<Instant>,
}

impl<L: Listener> EngineBase<L> {
    /// Sets up the loop's poller, the server's shared state, and the
    /// shutdown hook that closes the listener.
    pub(crate) fn new(
        listener: L,
        file: Option<SocketFile>,
        config: &ServerConfig,
    ) -> io::Result<(Self, Poller, ServerHandle<L::Addr>)> {
        let local_addr = listener.local_addr()?;
        let (poller, waker) = Poller::new(1024)?;
        let listener = ListenerSlot::new(listener, file, poller.registry())?;
        // The serial loop runs handlers itself, so a watchdog must enforce
        // the grace period for it.
        let control = Control::new(
            config.grace,
            config.max_connections,
            config.mode == Mode::Serial,
            Arc::new(WorkerCounts::default()),
            waker,
        );
        let closing = Arc::clone(&listener);
        control.on_stop_accepting(Box::new(move || closing.close()));
        // Connections waiting between two requests have nothing to
        // finish: they close at once, not at the end of the grace period.
        let registry = Arc::clone(&control.registry);
        control.on_shutdown(Box::new(move || registry.close_idle()));
        let base = EngineBase {
            listener,
            control: Arc::clone(&control),
            overload: config.pool.overload,
            pending: false,
            backoff: Backoff::default(),
            retry_at: None,
        };
        Ok((base, poller, ServerHandle::new(control, local_addr)))
    }

    /// Waits for connections to accept; see [`Engine::wait`]. A loop that
    /// is full under [`OverloadPolicy::Block`] waits for room first.
    fn wait(&mut self, poller: &mut Poller, deadline: Option<Instant>) -> io::Result<Wake> {
        loop {
            if self.control.is_shutdown_requested() {
                return Ok(Wake::Shutdown);
            }
            if self.overload == OverloadPolicy::Block && self.control.at_capacity() {
                match self.control.wait_for_capacity(deadline) {
                    // Connections may have arrived meanwhile.
                    Capacity::Room => self.pending = true,
                    Capacity::ShuttingDown => return Ok(Wake::Shutdown),
                    Capacity::TimedOut => return Ok(Wake::Timeout),
                }
            }
            let now = Instant::now();
            if self.accept_due(now) {
                return Ok(Wake::Ready);
            }
            if deadline.is_some_and(|at| at <= now) {
                return Ok(Wake::Timeout);
            }
            let until = match (deadline, self.retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            poller.wait(until)?;
            if poller.ready().next().is_some() {
                self.pending = true;
            }
        }
    }

    /// Whether connections are pending and may be accepted at `now`: a
    /// back-off that is over makes them pending again (the listener may
    /// hold some still).
    pub(crate) fn accept_due(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            self.pending = true;
        }
        self.pending && self.retry_at.is_none()
    }

    /// Accepts one connection if it may: not past the connection limit
    /// under [`OverloadPolicy::Block`], not while backing off.
    fn accept(&mut self) -> io::Result<Option<Accepted<L>>> {
        if self.control.is_shutdown_requested()
            || (self.overload == OverloadPolicy::Block && self.control.at_capacity())
        {
            return Ok(None);
        }
        let accepted = self
            .listener
            .accept(&self.control, &mut self.backoff, &mut self.retry_at)?;
        if accepted.is_none() && self.retry_at.is_none() {
            self.pending = false;
        }
        Ok(accepted)
    }
}

/// The engine of the stream servers.
pub(crate) struct StreamEngine<L: Listener, F: Life<L>> {
    dispatch: StreamDispatch<L, F>,
}

impl<L: Listener, F: Life<L>> StreamEngine<L, F> {
    /// The engine of `config`'s mode around `base`.
    fn new(
        base: EngineBase<L>,
        poller: Poller,
        life: Arc<F>,
        server: &ServerHandle<L::Addr>,
        config: &ServerConfig,
    ) -> io::Result<Self> {
        let service = Arc::new(ConnectionService {
            life,
            server: server.clone(),
            options: config.connection.clone(),
        });
        let dispatch = match config.mode {
            Mode::Serial => StreamDispatch::Serial {
                base,
                poller,
                local: service.local(),
                service,
            },
            Mode::Threading => {
                let control = server.control();
                let pool_config = PoolConfig {
                    group: config.group(0, DEFAULT_MAX_WORKERS),
                    ..config.pool.clone()
                };
                let pool = Pool::new(
                    ConnectionJobs(service),
                    pool_config,
                    Arc::clone(&control.counters.workers),
                    control.stop_signal(),
                )?;
                StreamDispatch::Pooled { base, poller, pool }
            }
            Mode::Parked => {
                if !F::PER_REQUEST {
                    log::debug!(
                        "a looping handler on a parked server: each connection holds a worker for its \
                         life (at most {} at once), with no request timeout",
                        config.group(0, DEFAULT_PARKED_MAX_WORKERS).max_workers
                    );
                }
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                StreamDispatch::Parked(ParkedDispatch::new(
                    service,
                    base,
                    poller,
                    config.parked,
                    config.group(cores, DEFAULT_PARKED_MAX_WORKERS),
                )?)
            }
        };
        Ok(StreamEngine { dispatch })
    }
}

/// Accepts what is pending (one connection for [`Batch::One`]), counts
/// each in, and hands it to `serve`. True if it accepted any.
fn accept_each<L: Listener>(
    base: &mut EngineBase<L>,
    batch: Batch,
    mut serve: impl FnMut(&Control, Accepted<L>),
) -> io::Result<bool> {
    let mut took = false;
    while let Some(accepted) = base.accept()? {
        took = true;
        base.control.request_started();
        serve(&base.control, accepted);
        if batch == Batch::One {
            break;
        }
    }
    Ok(took)
}

impl<L: Listener, F: Life<L>> Engine for StreamEngine<L, F> {
    fn start(&mut self) -> io::Result<()> {
        if let StreamDispatch::Parked(parked) = &mut self.dispatch {
            parked.start();
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        match &mut self.dispatch {
            StreamDispatch::Serial { base, poller, .. } | StreamDispatch::Pooled { base, poller, .. } => {
                base.wait(poller, deadline)
            }
            StreamDispatch::Parked(parked) => parked.wait(deadline),
        }
    }

    fn serve(&mut self, batch: Batch) -> io::Result<bool> {
        match &mut self.dispatch {
            StreamDispatch::Serial {
                base, service, local, ..
            } => accept_each(base, batch, |_, accepted| service.serve(local, accepted)),
            StreamDispatch::Pooled { base, pool, .. } => {
                let overload = base.overload;
                accept_each(base, batch, |control, accepted| {
                    // Counted in already, so at capacity means beyond it.
                    if overload == OverloadPolicy::Reject && control.over_capacity() {
                        return refuse(control, accepted, &Refusal::Overloaded);
                    }
                    if let Err((accepted, refusal)) = pool.submit(accepted) {
                        refuse(control, accepted, &refusal);
                    }
                })
            }
            StreamDispatch::Parked(parked) => Ok(parked.serve(batch)),
        }
    }

    fn stop(self: Box<Self>) {
        match self.dispatch {
            StreamDispatch::Serial { base, .. } => base.listener.close(),
            StreamDispatch::Pooled { base, pool, .. } => {
                base.listener.close();
                let registry = Arc::clone(&base.control.registry);
                drain(pool, &base.control, move |how| registry.force_close_all(how));
            }
            StreamDispatch::Parked(parked) => parked.stop(),
        }
    }
}
