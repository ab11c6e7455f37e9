//! The datagram servers: UDP and Unix-domain datagram sockets, in both
//! modes.
//!
//! The serial mode receives on the loop thread (waiting in the loop's
//! poller on the socket and the waker) and serves each datagram there.
//! The threading mode lets workers receive on the shared socket themselves
//! (see [`receivers`] for that design and why it won); its loop thread only
//! grows the pool, runs the service actions and waits for shutdown.
//! `handle_request` serves on the calling thread in both modes.

mod receivers;

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use self::receivers::Receivers;
use super::backoff::{AcceptFailure, Backoff, classify};
use super::builder::Transport;
use super::core::{Batch, Core, Engine, Wake, handler_hooks, server_front};
use super::lifecycle;
use super::options::ServerConfig;
use super::{BindTo, Builder, Mode, ModeMarker, NoHandler, ServerHandle, Serves};
use crate::config::DEFAULT_MAX_WORKERS;
use crate::control::Control;
use crate::handler::{Lifecycle, Looping, RequestHandler, ToLifecycle};
use crate::pool::WorkerCounts;
use crate::request::DatagramRequest;
use crate::socket::SocketFile;
use crate::sys::{Poller, Received, poller};
use crate::transport::DatagramSocket;

/// The poller token of the datagram socket.
const SOCKET: usize = 0;

/// A datagram-socket server, generic over the transport `S` and the mode
/// `M`. Use it through its aliases: [`UdpServer`](crate::UdpServer),
/// [`ThreadingUdpServer`](crate::ThreadingUdpServer),
/// [`UnixDatagramServer`](crate::UnixDatagramServer) and
/// [`ThreadingUnixDatagramServer`](crate::ThreadingUnixDatagramServer).
///
/// Dropping a server that is not serving closes its socket (and removes a
/// Unix socket's file).
pub struct DatagramServer<S: DatagramSocket, M, H> {
    core: Core<S::Addr>,
    handler: Arc<H>,
    mode: Mode,
    _mode: PhantomData<fn() -> M>,
}

server_front!(DatagramServer<S: DatagramSocket, M, H>, S::Addr);

impl<S: DatagramSocket + Transport, M: ModeMarker> DatagramServer<S, M, NoHandler> {
    /// A builder for this kind of server, to set options before binding.
    pub fn builder() -> Builder<S, M> {
        Builder::new()
    }
}

impl<S: DatagramSocket, M: ModeMarker, H> DatagramServer<S, M, H>
where
    H: RequestHandler<DatagramRequest<S>>,
{
    /// Binds `addr` (an address for UDP, a path for a Unix socket, as
    /// [`Builder::bind`] says) with the default options and returns the
    /// server, ready to serve. Port 0 picks a free port (see
    /// [`local_addr`](Self::local_addr)).
    pub fn bind<A>(addr: A, handler: H) -> io::Result<Self>
    where
        S: Transport + BindTo<A> + Serves<H, Looping, Server<M> = Self>,
    {
        Builder::<S, M>::new().bind(addr, handler)
    }

    pub(crate) fn new(
        socket: S,
        file: Option<SocketFile>,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Self> {
        if config.mode == Mode::Parked {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a datagram server serves in serial or threading mode, not parked",
            ));
        }
        let local_addr = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        let (poller, waker) = Poller::new(64)?;
        poller::register(poller.registry(), &socket, SOCKET)?;
        let control = Control::new(
            config.grace,
            None,
            false,
            Arc::new(WorkerCounts::default()),
            waker,
        );
        // No connections to let finish: a drain is a stop.
        let stopping = Arc::downgrade(&control);
        control.on_drain(Box::new(move |_| {
            if let Some(control) = stopping.upgrade() {
                control.request_shutdown();
            }
        }));
        let server = ServerHandle::new(control, local_addr);
        let handler = Arc::new(handler);
        let life = Arc::new(<H as ToLifecycle<DatagramRequest<S>, Looping>>::lifecycle(
            Arc::clone(&handler),
        ));
        let hooks = handler_hooks(&life, |life| life.service_actions(), |life| life.handle_timeout());
        let service = Arc::new(DatagramService {
            life,
            server: server.clone(),
            capacity: config.max_datagram_size,
            unnamed: S::unnamed()?,
            failure: Mutex::new(None),
            starving: AtomicBool::new(false),
        });
        let dispatch = if config.mode == Mode::Serial {
            DatagramDispatch::Serial
        } else {
            // One worker per core unless told otherwise; someone must
            // always be receiving.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut group = config.group(cores, DEFAULT_MAX_WORKERS);
            group.min_workers = group.min_workers.max(1);
            DatagramDispatch::Receivers(Receivers::new(group))
        };
        let socket = Arc::new(socket);
        let engine = Box::new(DatagramEngine {
            request: service.new_request(Arc::clone(&socket)),
            socket,
            _file: file,
            poller,
            service,
            pending: false,
            backoff: Backoff::default(),
            dispatch,
        });
        Ok(DatagramServer {
            core: Core::new(engine, server, hooks, config.timeout, config.service_interval),
            handler,
            mode: config.mode,
            _mode: PhantomData,
        })
    }
}

impl<S: DatagramSocket, M, H> DatagramServer<S, M, H> {
    /// Serves until shutdown is requested, then stops receiving, lets the
    /// requests being served finish within the grace period, joins the
    /// workers, closes the socket, and returns.
    ///
    /// Returns at once, successfully, if shutdown was requested before.
    /// Fails with `ResourceBusy` if the server is already serving on
    /// another thread, and with the error if the socket fails (after the
    /// same orderly stop). A datagram that arrives as shutdown begins is
    /// not served.
    pub fn serve_forever(&self) -> io::Result<()> {
        self.core.serve_forever()
    }

    /// Serves at most one datagram, on the calling thread in both modes:
    /// waits (up to the server's timeout) for one and serves it. Returns
    /// `Ok(true)` if a datagram was served, `Ok(false)` if the timeout
    /// passed (after calling `handle_timeout`) or shutdown was requested.
    pub fn handle_request(&self) -> io::Result<bool> {
        self.core.handle_request()
    }
}

/// How the datagram engine serves.
enum DatagramDispatch<S: DatagramSocket> {
    /// Each datagram is served on the loop thread (`UdpServer`).
    Serial,
    /// Workers receive on the shared socket and serve what they receive
    /// (`ThreadingUdpServer`); the loop thread adds workers when they are
    /// all busy.
    Receivers(Receivers<S>),
}

/// What the loop thread and the receiving workers share: how to receive,
/// serve and report.
pub(crate) struct DatagramService<S: DatagramSocket, F> {
    life: Arc<F>,
    server: ServerHandle<S::Addr>,
    capacity: usize,
    /// The address recorded for senders that have none.
    unnamed: S::Addr,
    /// A receive error that ended serving, for `serve_forever` to return.
    failure: Mutex<Option<io::Error>>,
    /// Set by a worker that took a datagram while nobody else was
    /// receiving; cleared by the loop thread when it checks.
    starving: AtomicBool,
}

impl<S, F> DatagramService<S, F>
where
    S: DatagramSocket,
    F: Lifecycle<DatagramRequest<S>>,
{
    fn control(&self) -> &Arc<Control> {
        self.server.control()
    }

    fn new_request(&self, socket: Arc<S>) -> DatagramRequest<S> {
        DatagramRequest::new(socket, self.server.clone(), self.capacity, self.unnamed.clone())
    }

    /// Handles a failed receive: transient errors are counted, exhaustion
    /// backs off, anything else is returned.
    fn receive_failed(&self, error: io::Error, backoff: &mut Backoff) -> io::Result<()> {
        let control = self.control();
        match classify(&error) {
            AcceptFailure::Transient => {
                control.counters.receive_errors.bump();
                log::debug!("recv failed: {error}");
                Ok(())
            }
            AcceptFailure::Exhausted => {
                backoff.pause(control, "recv", &error);
                Ok(())
            }
            AcceptFailure::Fatal => {
                control.counters.receive_errors.bump();
                Err(error)
            }
        }
    }

    /// Serves one received datagram, or reports it if it did not fit.
    fn serve(&self, request: &mut DatagramRequest<S>, received: Received) {
        let control = self.control();
        control.request_started();
        let counters = &control.counters;
        match received {
            Received::Whole(_) => lifecycle::run_whole(&*self.life, request, counters),
            Received::Truncated(size) => {
                let size = size.map_or_else(|| "more than".to_owned(), |s| s.to_string());
                let error = io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "dropped a datagram of {size} bytes: larger than the {}-byte receive buffer",
                        request.capacity()
                    ),
                );
                lifecycle::fail(&*self.life, request, error, counters)
            }
        }
        control.request_finished();
    }
}

/// The engine of the datagram servers.
pub(crate) struct DatagramEngine<S: DatagramSocket, F> {
    socket: Arc<S>,
    _file: Option<SocketFile>,
    poller: Poller,
    service: Arc<DatagramService<S, F>>,
    /// What the loop thread receives into, kept between calls so that
    /// receiving allocates nothing.
    request: DatagramRequest<S>,
    /// The socket may hold datagrams not received yet: the last batch
    /// stopped early, and edge-triggered readiness will not announce them
    /// again.
    pending: bool,
    backoff: Backoff,
    dispatch: DatagramDispatch<S>,
}

impl<S, F> DatagramEngine<S, F>
where
    S: DatagramSocket,
    F: Lifecycle<DatagramRequest<S>>,
{
    /// The receiving workers, if they are running.
    fn receivers(&mut self) -> Option<&mut Receivers<S>> {
        match &mut self.dispatch {
            DatagramDispatch::Receivers(receivers) if receivers.running() => Some(receivers),
            _ => None,
        }
    }

    /// Receives one datagram on the loop thread: `None` when none is
    /// waiting.
    fn receive(&mut self) -> io::Result<Option<Received>> {
        loop {
            match self.request.receive() {
                Ok(received) => {
                    self.backoff.succeeded("recv");
                    return Ok(Some(received));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = false;
                    return Ok(None);
                }
                Err(e) => self.service.receive_failed(e, &mut self.backoff)?,
            }
            if self.service.control().is_shutdown_requested() {
                return Ok(None);
            }
        }
    }
}

impl<S, F> Engine for DatagramEngine<S, F>
where
    S: DatagramSocket,
    F: Lifecycle<DatagramRequest<S>>,
{
    fn start(&mut self) -> io::Result<()> {
        let DatagramDispatch::Receivers(receivers) = &mut self.dispatch else {
            return Ok(());
        };
        // Workers receive for themselves: the loop no longer watches the
        // socket, or it would wake for every datagram.
        poller::deregister(self.poller.registry(), &*self.socket)?;
        receivers.start(&self.service, &self.socket)
    }

    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        loop {
            let control = self.service.control();
            if control.is_shutdown_requested() {
                return match self.service.failure.lock().take() {
                    Some(failure) => Err(failure),
                    None => Ok(Wake::Shutdown),
                };
            }
            let running = matches!(&self.dispatch, DatagramDispatch::Receivers(r) if r.running());
            if running && self.service.starving.load(Ordering::Acquire) {
                return Ok(Wake::Grow);
            }
            if self.pending && !running {
                return Ok(Wake::Ready);
            }
            if deadline.is_some_and(|at| at <= Instant::now()) {
                return Ok(Wake::Timeout);
            }
            self.poller.wait(deadline)?;
            if self.poller.ready().next().is_some() {
                self.pending = true;
            }
        }
    }

    fn serve(&mut self, batch: Batch) -> io::Result<bool> {
        let mut took = false;
        while let Some(received) = self.receive()? {
            took = true;
            self.service.serve(&mut self.request, received);
            if batch == Batch::One || self.service.control().is_shutdown_requested() {
                // More may be waiting.
                self.pending = true;
                break;
            }
        }
        Ok(took)
    }

    fn grow(&mut self) {
        let control = Arc::clone(self.service.control());
        let (service, socket) = (Arc::clone(&self.service), Arc::clone(&self.socket));
        if let Some(receivers) = self.receivers() {
            receivers.grow(&control, &service, &socket);
        }
    }

    fn stop(self: Box<Self>) {
        if let DatagramDispatch::Receivers(receivers) = self.dispatch {
            receivers.stop(&*self.socket, self.service.control().grace());
        }
    }
}
