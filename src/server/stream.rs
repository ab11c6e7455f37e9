//! The stream server: one accept loop for TCP and Unix-domain sockets, in
//! both modes.
//!
//! The loop waits with `poll` on the listener and the shutdown waker, so a
//! shutdown wakes it at once. It accepts every pending connection, and
//! either serves each on the loop thread (serial mode) or hands it to the
//! worker pool (threading mode). Per-connection socket options are set by
//! the thread that serves the connection, keeping the accept loop lean.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backoff::{AcceptFailure, Backoff, classify};
use super::builder::{Builder, DEFAULT_READ_BUFFER_SIZE};
use super::connections::SlotHandle;
use super::control::{Capacity, Control, FORCE_CLOSE_WAIT, ShutdownHandle, ThreadMark};
use super::stats::{Counters, Stats};
use super::{Mode, ServerHandle};
use crate::handler::{RequestHandler, process, run_hook};
use crate::pool::{OverloadPolicy, Pool, Refusal, Work, WorkerCounts};
use crate::request::StreamRequest;
use crate::socket::SocketFile;
use crate::sys::wait_readable;
use crate::transport::{Connection, Listener};

/// Options applied to each accepted connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionOptions {
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) nodelay: bool,
    pub(crate) read_buffer_size: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            read_timeout: None,
            write_timeout: None,
            nodelay: true,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
        }
    }
}

impl ConnectionOptions {
    fn apply(&self, stream: &impl Connection) -> io::Result<()> {
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        if self.read_timeout.is_some() {
            stream.set_read_timeout(self.read_timeout)?;
        }
        if self.write_timeout.is_some() {
            stream.set_write_timeout(self.write_timeout)?;
        }
        Ok(())
    }
}

/// Serves one connection at a time: shared by the pool's workers and by
/// the serial loop.
pub(crate) struct StreamWork<L: Listener, H: RequestHandler<StreamRequest<L::Stream>>> {
    handler: H,
    server: ServerHandle<L::Addr>,
    options: ConnectionOptions,
}

/// A serving thread's state, kept from one connection to the next.
pub(crate) struct StreamLocal {
    slot: SlotHandle,
    buffer: Vec<u8>,
    /// A pool worker's mark as one of the server's threads. The serial
    /// state has none: it moves between calls, and `serve_forever` and
    /// `handle_request` mark whichever thread is calling.
    _mark: Option<ThreadMark>,
}

impl<L, H> Work for StreamWork<L, H>
where
    L: Listener,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    type Job = (L::Stream, L::Addr);
    type Local = StreamLocal;

    fn start_worker(&self) -> StreamLocal {
        StreamLocal {
            _mark: Some(self.server.control().mark_current_thread()),
            ..self.serial_state()
        }
    }

    fn run(&self, local: &mut StreamLocal, (stream, peer): Self::Job) {
        let control = self.server.control();
        if let Err(e) = self.options.apply(&stream) {
            // Typically the peer reset the connection before it was served.
            Counters::bump(&control.counters.errors);
            log::warn!("cannot set up the connection from {peer:?}: {e}");
        } else {
            let buffer = std::mem::take(&mut local.buffer);
            let mut request = StreamRequest::new(
                stream,
                peer,
                self.server.clone(),
                buffer,
                self.options.read_buffer_size,
            );
            {
                let _in_use = local.slot.hold(request.stream());
                process(&self.handler, &mut request, &control.counters);
            }
            // Closes the connection; the slot no longer names it.
            local.buffer = request.into_buffer();
        }
        control.request_finished();
    }

    fn discard(&self, job: Self::Job) {
        refuse(self.server.control(), job, &Refusal::Closing);
    }
}

impl<L, H> StreamWork<L, H>
where
    L: Listener,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    /// The state of the serial loop, which serves on the calling thread.
    fn serial_state(&self) -> StreamLocal {
        StreamLocal {
            slot: self.server.control().registry.slot(),
            buffer: Vec::new(),
            _mark: None,
        }
    }
}

/// Closes a connection without serving it, counting it as refused.
fn refuse<S: Connection>(control: &Control, (stream, peer): (S, S::Addr), refusal: &Refusal) {
    log::debug!("refusing connection from {peer:?}: {refusal}");
    // Counted before the close, which the peer can observe.
    Counters::bump(&control.counters.refused);
    drop(stream);
    control.request_finished();
}

/// The listening socket (and a Unix socket's file), shared by the loop
/// and the shutdown hook that closes it the moment shutdown is requested:
/// a serial loop may then be busy in a handler for the whole grace
/// period, and clients must be refused meanwhile, not left in the backlog.
/// The loop holds the lock only while it waits and accepts.
struct ListenerSlot<L>(Mutex<Option<(L, Option<SocketFile>)>>);

impl<L> ListenerSlot<L> {
    /// Closes the listener and removes its socket file.
    fn close(&self) {
        drop(self.0.lock().take());
    }
}

/// The listener and the dispatch, owned by whichever call is serving.
struct Engine<L: Listener, H: RequestHandler<StreamRequest<L::Stream>>> {
    listener: Arc<ListenerSlot<L>>,
    /// Threading mode: the workers.
    pool: Option<Pool<Arc<StreamWork<L, H>>>>,
    /// Serial mode: the loop's state, kept between calls so that serving
    /// a request does not register a slot or drop the read buffer.
    serial: Option<StreamLocal>,
}

/// A stream-socket server, generic over the transport `L` and the mode
/// `M`. Use it through its aliases: [`TcpServer`](crate::TcpServer),
/// [`ThreadingTcpServer`](crate::ThreadingTcpServer),
/// [`UnixStreamServer`](crate::UnixStreamServer) and
/// [`ThreadingUnixStreamServer`](crate::ThreadingUnixStreamServer).
///
/// Dropping a server that is not serving closes its socket; if requests it
/// handed to workers (through `handle_request`) are still running, it
/// first shuts down as [`ShutdownHandle::shutdown`] does, grace period
/// included.
pub struct StreamServer<L, M, H>
where
    L: Listener,
    M: Mode,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    /// `None` while a call is serving, and after shutdown.
    engine: Mutex<Option<Engine<L, H>>>,
    work: Arc<StreamWork<L, H>>,
    timeout: Option<Duration>,
    service_interval: Option<Duration>,
    overload: OverloadPolicy,
    _mode: PhantomData<fn() -> M>,
}

impl<L, M, H> StreamServer<L, M, H>
where
    L: Listener,
    M: Mode,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    pub(crate) fn new(
        listener: L,
        file: Option<SocketFile>,
        handler: H,
        config: Builder<L, M>,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let workers = Arc::new(WorkerCounts::default());
        // The serial loop runs handlers itself, so a watchdog must enforce
        // the grace period for it.
        let control = Control::new(
            config.grace,
            config.max_connections,
            !M::THREADING,
            Arc::clone(&workers),
        )?;
        let stop = control.stop_signal();
        let slot = Arc::new(ListenerSlot(Mutex::new(Some((listener, file)))));
        let closing = Arc::clone(&slot);
        control.on_shutdown(Box::new(move || closing.close()));
        let work = Arc::new(StreamWork {
            handler,
            server: ServerHandle::new(control, local_addr),
            options: config.connection,
        });
        let (pool, serial) = if M::THREADING {
            let pool = Pool::new(Arc::clone(&work), config.pool.clone(), workers, stop)?;
            (Some(pool), None)
        } else {
            (None, Some(work.serial_state()))
        };
        Ok(StreamServer {
            engine: Mutex::new(Some(Engine {
                listener: slot,
                pool,
                serial,
            })),
            work,
            timeout: config.timeout,
            service_interval: config.service_interval,
            overload: config.pool.overload,
            _mode: PhantomData,
        })
    }

    fn control(&self) -> &Arc<Control> {
        self.work.server.control()
    }

    /// The address the server is bound to: with port 0, the port the OS
    /// chose.
    pub fn local_addr(&self) -> &L::Addr {
        self.work.server.local_addr()
    }

    /// The handle handlers see: address, shutdown, stats.
    pub fn server_handle(&self) -> &ServerHandle<L::Addr> {
        &self.work.server
    }

    /// A handle that stops the server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.work.server.shutdown_handle()
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        self.work.server.stats()
    }

    /// The handler, for reading state it keeps.
    pub fn handler(&self) -> &H {
        &self.work.handler
    }

    /// Serves until shutdown is requested (through a [`ShutdownHandle`],
    /// or a handler's [`ServerHandle::shutdown`]), then stops accepting,
    /// lets in-flight requests finish within the grace period, force-closes
    /// what is left, joins the workers, closes the listening socket, and
    /// returns.
    ///
    /// Returns at once, successfully, if shutdown was requested before.
    /// Fails with `ResourceBusy` if the server is already serving on
    /// another thread, and with the error if the listening socket fails
    /// (after the same orderly stop). Running out of file descriptors or
    /// memory is not such an error: the loop backs off and goes on.
    pub fn serve_forever(&self) -> io::Result<()> {
        let control = Arc::clone(self.control());
        let Some(_serving) = control.begin_serving()? else {
            // Shutdown came first. It is final: close the listener now, so
            // clients are refused rather than left in the backlog.
            let engine = self.engine.lock().take();
            if let Some(engine) = engine {
                self.stop(engine);
            }
            return Ok(());
        };
        let Some(mut engine) = self.engine.lock().take() else {
            // Another thread is in handle_request.
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the server is busy in handle_request on another thread",
            ));
        };
        let result = self.run_loop(&mut engine);
        if let Err(e) = &result {
            log::error!("serving stopped: the listening socket failed: {e}");
            // The listener is gone: later calls return at once.
            control.request_shutdown();
        }
        self.stop(engine);
        result
    }

    fn run_loop(&self, engine: &mut Engine<L, H>) -> io::Result<()> {
        let control = self.control();
        let mut backoff = Backoff::default();
        loop {
            if self.overload == OverloadPolicy::Block && control.wait_for_capacity(None) != Capacity::Room {
                return Ok(());
            }
            let ready = {
                let slot = engine.listener.0.lock();
                let Some((listener, _)) = slot.as_ref() else {
                    return Ok(());
                };
                wait_readable(
                    &[listener.as_fd(), control.waker().as_fd()],
                    self.service_interval,
                )?
            };
            if ready.is_ready(1) || control.is_shutdown_requested() {
                return Ok(());
            }
            if ready.is_ready(0) {
                self.accept_pending(engine, &mut backoff)?;
            }
            run_hook("service_actions", || self.work.handler.service_actions());
        }
    }

    /// Accepts and dispatches connections until none is pending, the
    /// connection limit is reached, or shutdown is requested.
    fn accept_pending(&self, engine: &mut Engine<L, H>, backoff: &mut Backoff) -> io::Result<()> {
        let control = self.control();
        loop {
            if control.is_shutdown_requested() {
                return Ok(());
            }
            if self.overload == OverloadPolicy::Block && control.at_capacity() {
                return Ok(());
            }
            match self.accept(engine, backoff)? {
                Some(job) => self.dispatch(engine, job),
                None => return Ok(()),
            }
        }
    }

    /// Accepts one connection: `None` when there is none to take now.
    fn accept(
        &self,
        engine: &Engine<L, H>,
        backoff: &mut Backoff,
    ) -> io::Result<Option<(L::Stream, L::Addr)>> {
        let control = self.control();
        loop {
            let accepted = match engine.listener.0.lock().as_ref() {
                Some((listener, _)) => listener.accept_blocking_stream(),
                // Closed by shutdown.
                None => return Ok(None),
            };
            match accepted {
                Ok(job) => {
                    backoff.succeeded("accept");
                    return Ok(Some(job));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => match classify(&e) {
                    AcceptFailure::Transient => {
                        Counters::bump(&control.counters.accept_errors);
                        log::debug!("accept failed for one connection: {e}");
                    }
                    AcceptFailure::Exhausted => {
                        backoff.pause(control, "accept", &e)?;
                        return Ok(None);
                    }
                    AcceptFailure::Fatal => {
                        Counters::bump(&control.counters.accept_errors);
                        return Err(e);
                    }
                },
            }
        }
    }

    fn dispatch(&self, engine: &mut Engine<L, H>, job: (L::Stream, L::Addr)) {
        let control = self.control();
        let reject = self.overload == OverloadPolicy::Reject && control.at_capacity();
        control.request_started();
        let Some(pool) = &engine.pool else {
            let local = engine.serial.get_or_insert_with(|| self.work.serial_state());
            self.work.run(local, job);
            return;
        };
        if reject {
            refuse(control, job, &Refusal::Overloaded);
            return;
        }
        if let Err((job, refusal)) = pool.submit(job) {
            refuse(control, job, &refusal);
        }
    }

    /// Serves at most one request: waits (up to the server's timeout) for
    /// a connection and serves it (serial mode) or hands it to a worker
    /// (threading mode). Returns `Ok(true)` if a request was taken,
    /// `Ok(false)` if the timeout passed (after calling `handle_timeout`)
    /// or shutdown was requested.
    pub fn handle_request(&self) -> io::Result<bool> {
        let control = Arc::clone(self.control());
        let Some(mut engine) = self.engine.lock().take() else {
            return if control.is_shutdown_requested() {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "the server is already serving",
                ))
            };
        };
        let _mark = control.mark_current_thread();
        let result = self.handle_one(&mut engine);
        *self.engine.lock() = Some(engine);
        result
    }

    fn handle_one(&self, engine: &mut Engine<L, H>) -> io::Result<bool> {
        let control = self.control();
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::default();
        let timed_out = || {
            run_hook("handle_timeout", || self.work.handler.handle_timeout());
            Ok(false)
        };
        loop {
            // As serve_forever does: no accepting beyond the limit.
            if self.overload == OverloadPolicy::Block {
                match control.wait_for_capacity(deadline) {
                    Capacity::Room => {}
                    Capacity::ShuttingDown => return Ok(false),
                    Capacity::TimedOut => return timed_out(),
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let ready = {
                let slot = engine.listener.0.lock();
                let Some((listener, _)) = slot.as_ref() else {
                    return Ok(false);
                };
                wait_readable(&[listener.as_fd(), control.waker().as_fd()], left)?
            };
            if ready.is_ready(1) || control.is_shutdown_requested() {
                return Ok(false);
            }
            if ready.is_empty() {
                return timed_out();
            }
            if let Some(job) = self.accept(engine, &mut backoff)? {
                self.dispatch(engine, job);
                return Ok(true);
            }
        }
    }

    /// The orderly stop: close the listener, let the pool drain within the
    /// grace period, force-close what is left, join the workers.
    fn stop(&self, engine: Engine<L, H>) {
        let Engine {
            listener,
            pool,
            serial,
        } = engine;
        listener.close();
        drop(serial);
        let Some(mut pool) = pool else { return };
        let control = self.control();
        let started = Instant::now();
        pool.close();
        let workers = pool.group();
        if !workers.wait_exited(started + control.grace()) {
            let open = control.counters.active.load(std::sync::atomic::Ordering::Relaxed);
            log::info!("grace period over; closing the {open} connections still open");
            pool.abandon();
            control.registry.force_close_all();
            log::debug!("connections shut after {:?}", started.elapsed());
            if !workers.wait_exited(Instant::now() + FORCE_CLOSE_WAIT) {
                log::error!(
                    "{} handler(s) still running after their connections were closed; leaving them detached",
                    control.counters.workers.live()
                );
                return;
            }
        }
        log::debug!("workers done after {:?}", started.elapsed());
        workers.join();
        log::debug!("workers joined after {:?}", started.elapsed());
    }
}

impl<L, M, H> Drop for StreamServer<L, M, H>
where
    L: Listener,
    M: Mode,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    fn drop(&mut self) {
        let Some(engine) = self.engine.get_mut().take() else {
            return;
        };
        // Not serving: make a later shutdown() return at once, and wind
        // down whatever handle_request handed to the pool.
        self.control().request_shutdown();
        self.stop(engine);
    }
}

impl<L, M, H> fmt::Debug for StreamServer<L, M, H>
where
    L: Listener,
    M: Mode,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("local_addr", self.work.server.local_addr())
            .field("threading", &M::THREADING)
            .finish_non_exhaustive()
    }
}

impl<L, M, H> super::Server for StreamServer<L, M, H>
where
    L: Listener,
    M: Mode,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    type Addr = L::Addr;

    fn server_handle(&self) -> &ServerHandle<L::Addr> {
        StreamServer::server_handle(self)
    }

    fn serve_forever(&self) -> io::Result<()> {
        StreamServer::serve_forever(self)
    }

    fn handle_request(&self) -> io::Result<bool> {
        StreamServer::handle_request(self)
    }
}
