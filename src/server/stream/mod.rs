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
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use self::connection::{
    Accepted, ConnectionJobs, ConnectionLocal, ConnectionService, ServeConnection, refuse,
};
use self::listener::ListenerSlot;
use self::parked::ParkedDispatch;
use super::backoff::Backoff;
use super::connections::force_close;
use super::control::{Capacity, Control};
use super::core::{Batch, Core, Engine, Hooks, Wake, handler_hooks, server_front};
use super::{Dispatch, Mode, Parked, RequestMode, ServerHandle};
use crate::config::{
    DEFAULT_MAX_WORKERS, DEFAULT_PARKED_MAX_WORKERS, FORCE_CLOSE_WAIT, OverloadPolicy, ServerConfig,
};
use crate::handler::{KeepAliveHandler, RequestHandler};
use crate::pool::{Pool, PoolConfig, Refusal, ThreadGroup, WorkerCounts};
use crate::request::StreamRequest;
use crate::socket::SocketFile;
use crate::sys::Poller;
use crate::transport::Listener;

/// A stream-socket server, generic over the transport `L` and the mode
/// `M`. Use it through its aliases: [`TcpServer`](crate::TcpServer),
/// [`ThreadingTcpServer`](crate::ThreadingTcpServer),
/// [`UnixStreamServer`](crate::UnixStreamServer) and
/// [`ThreadingUnixStreamServer`](crate::ThreadingUnixStreamServer).
///
/// Dropping a server that is not serving closes its socket; if requests it
/// handed to workers (through `handle_request`) are still running, it
/// first shuts down as [`ShutdownHandle::shutdown`](crate::ShutdownHandle::shutdown)
/// does, grace period included.
pub struct StreamServer<L: Listener, M: Mode, H> {
    core: Core<L::Addr>,
    handler: Arc<H>,
    _mode: PhantomData<fn() -> M>,
}

server_front!(StreamServer<L: Listener, M, H>, L::Addr);

impl<L: Listener, M: Mode, H> StreamServer<L, M, H> {
    /// Serves until shutdown is requested (through a
    /// [`ShutdownHandle`](crate::ShutdownHandle), or a handler's
    /// [`ServerHandle::shutdown`]), then stops accepting, lets in-flight
    /// requests finish within the grace period, force-closes what is left,
    /// joins the workers, closes the listening socket, and returns.
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
    /// (threading mode). Returns `Ok(true)` if a request was taken,
    /// `Ok(false)` if the timeout passed (after calling `handle_timeout`)
    /// or shutdown was requested. Under
    /// [`max_connections`](crate::Builder::max_connections) it waits for
    /// room first, within the same timeout.
    pub fn handle_request(&self) -> io::Result<bool> {
        self.core.handle_request()
    }
}

impl<L: Listener, M: Mode, H> StreamServer<L, M, H> {
    /// The typed front of an engine.
    fn front(
        engine: StreamEngine<L>,
        server: ServerHandle<L::Addr>,
        handler: Arc<H>,
        hooks: Arc<dyn Hooks>,
        config: &ServerConfig,
    ) -> Self {
        StreamServer {
            core: Core::new(
                Box::new(engine),
                server,
                hooks,
                config.timeout,
                config.service_interval,
            ),
            handler,
            _mode: PhantomData,
        }
    }
}

impl<L: Listener, M: RequestMode, H> StreamServer<L, M, H>
where
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    /// A per-connection server (serial or threading) on `listener`.
    pub(crate) fn new(
        listener: L,
        file: Option<SocketFile>,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Self> {
        let handler = Arc::new(handler);
        let hooks = handler_hooks(&handler, |h| h.service_actions(), |h| h.handle_timeout());
        let (base, server) = EngineBase::new(listener, file, &config, M::DISPATCH)?;
        let service: Arc<dyn ServeConnection<L>> = Arc::new(ConnectionService {
            handler: Arc::clone(&handler),
            server: server.clone(),
            options: config.connection.clone(),
        });
        // A request mode is serial or threading.
        let dispatch = if M::DISPATCH == Dispatch::Serial {
            StreamDispatch::Serial {
                base,
                local: service.local(),
                service,
            }
        } else {
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
            StreamDispatch::Pooled { base, pool }
        };
        Ok(StreamServer::front(
            StreamEngine { dispatch },
            server,
            handler,
            hooks,
            &config,
        ))
    }
}

impl<L: Listener, H> StreamServer<L, Parked, H>
where
    H: KeepAliveHandler<StreamRequest<L::Stream>>,
{
    /// A parked server on `listener`.
    pub(crate) fn new_parked(
        listener: L,
        file: Option<SocketFile>,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Self> {
        let handler = Arc::new(handler);
        let hooks = handler_hooks(&handler, |h| h.service_actions(), |h| h.handle_timeout());
        let (base, server) = EngineBase::new(listener, file, &config, Dispatch::Parked)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parked = ParkedDispatch::new(
            Arc::clone(&handler),
            base,
            server.clone(),
            config.connection.clone(),
            config.parked,
            config.group(cores, DEFAULT_PARKED_MAX_WORKERS),
        )?;
        let engine = StreamEngine {
            dispatch: StreamDispatch::Parked(parked),
        };
        Ok(StreamServer::front(engine, server, handler, hooks, &config))
    }
}

/// How the stream engine serves what it accepts.
enum StreamDispatch<L: Listener> {
    /// Each connection is served on the loop thread (`TcpServer`).
    Serial {
        base: EngineBase<L>,
        service: Arc<dyn ServeConnection<L>>,
        /// Kept between calls, so a connection costs no slot registration
        /// and no buffer allocation.
        local: ConnectionLocal,
    },
    /// Each connection goes to a pooled worker for its whole life
    /// (`ThreadingTcpServer`).
    Pooled {
        base: EngineBase<L>,
        pool: Pool<ConnectionJobs<L>>,
    },
    /// Connections wait in the poller between requests; workers take
    /// turns with the poller and serve one request at a time
    /// (`ParkedTcpServer`). The poller and listener are in there.
    Parked(ParkedDispatch<L>),
}

/// What every stream engine has: the listener in the loop's poller, and
/// the bookkeeping of taking connections from it.
pub(crate) struct EngineBase<L: Listener> {
    pub(crate) listener: Arc<ListenerSlot<L>>,
    pub(crate) poller: Poller,
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
        dispatch: Dispatch,
    ) -> io::Result<(Self, ServerHandle<L::Addr>)> {
        let local_addr = listener.local_addr()?;
        let (poller, waker) = Poller::new(1024)?;
        let listener = ListenerSlot::new(listener, file, poller.registry())?;
        // The serial loop runs handlers itself, so a watchdog must enforce
        // the grace period for it.
        let control = Control::new(
            config.grace,
            config.max_connections,
            dispatch == Dispatch::Serial,
            Arc::new(WorkerCounts::default()),
            waker,
        );
        let closing = Arc::clone(&listener);
        control.on_shutdown(Box::new(move || closing.close()));
        let base = EngineBase {
            listener,
            poller,
            control: Arc::clone(&control),
            overload: config.pool.overload,
            pending: false,
            backoff: Backoff::default(),
            retry_at: None,
        };
        Ok((base, ServerHandle::new(control, local_addr)))
    }

    /// Waits for connections to accept; see [`Engine::wait`]. A loop that
    /// is full under [`OverloadPolicy::Block`] waits for room first.
    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
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
            self.poller.wait(until)?;
            if self.poller.ready().next().is_some() {
                self.pending = true;
            }
        }
    }

    /// Whether connections are pending and may be accepted at `now`: a
    /// back-off that is over makes them pending again (the listener may
    /// hold some still).
    fn accept_due(&mut self, now: Instant) -> bool {
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
pub(crate) struct StreamEngine<L: Listener> {
    dispatch: StreamDispatch<L>,
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

impl<L: Listener> Engine for StreamEngine<L> {
    fn start(&mut self) -> io::Result<()> {
        if let StreamDispatch::Parked(parked) = &mut self.dispatch {
            parked.start();
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        match &mut self.dispatch {
            StreamDispatch::Serial { base, .. } | StreamDispatch::Pooled { base, .. } => base.wait(deadline),
            StreamDispatch::Parked(parked) => parked.wait(deadline),
        }
    }

    fn serve(&mut self, batch: Batch) -> io::Result<bool> {
        match &mut self.dispatch {
            StreamDispatch::Serial { base, service, local } => {
                accept_each(base, batch, |_, accepted| service.serve(local, accepted))
            }
            StreamDispatch::Pooled { base, pool } => {
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
            StreamDispatch::Pooled { base, pool } => {
                base.listener.close();
                let registry = Arc::clone(&base.control.registry);
                drain(pool, &base.control, move |how| registry.force_close_all(how));
            }
            StreamDispatch::Parked(parked) => parked.stop(),
        }
    }
}

/// Waits for `workers` to exit within the grace period that began at
/// `started`; past it, `force` closes what they still serve, in two steps
/// ([`force_close`]), and they get [`FORCE_CLOSE_WAIT`] more. False if
/// some are still running then: they are left detached (and said so),
/// not joined.
pub(crate) fn wind_down(
    workers: &ThreadGroup,
    control: &Control,
    started: Instant,
    force: impl FnMut(Shutdown),
) -> bool {
    if workers.wait_exited(started + control.grace()) {
        return true;
    }
    if force_close(force, |deadline| workers.wait_exited(deadline)) {
        return true;
    }
    if workers.wait_exited(Instant::now() + FORCE_CLOSE_WAIT) {
        return true;
    }
    log::error!(
        "{} handler(s) still running after their connections were closed; leaving them detached",
        workers.counts.live()
    );
    false
}

/// The end of a pool: lets it finish within the grace period, force-closes
/// what is left, joins the workers.
pub(crate) fn drain<W: crate::pool::Work>(
    mut pool: Pool<W>,
    control: &Control,
    mut force_close: impl FnMut(Shutdown),
) {
    let started = Instant::now();
    pool.close();
    let workers = pool.group();
    let done = wind_down(workers, control, started, |how| {
        if how == Shutdown::Read {
            let open = control.counters.active.get();
            log::info!("grace period over; closing the {open} connections still open");
            pool.abandon();
        }
        force_close(how);
        log::debug!("connections shut ({how:?}) after {:?}", started.elapsed());
    });
    if !done {
        return;
    }
    log::debug!("workers done after {:?}", started.elapsed());
    workers.join();
    log::debug!("workers joined after {:?}", started.elapsed());
}
