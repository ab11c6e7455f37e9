//! The datagram server: one loop for UDP and Unix-domain datagram sockets,
//! in both modes.
//!
//! # Dispatch design
//! The serial mode receives on the loop thread (waiting in `poll` on the
//! socket and the shutdown waker) and serves each datagram there.
//!
//! The threading mode lets its workers receive on the shared socket
//! themselves: each worker blocks in `recvfrom`, serves the datagram it
//! got, and goes back to receiving. The kernel wakes one blocked receiver
//! per datagram. There is one worker per core to start with, so handlers
//! that compute use every core. Slow handlers are met by growth: a worker
//! that takes a datagram while no other worker is receiving tells the loop
//! thread, which adds a worker (up to the maximum) if after a millisecond
//! still nobody is receiving. The delay matters: adding a worker at once
//! whenever the others are busy mistakes mere preemption for slowness, and
//! on a loaded two-core machine grew 23 workers for 16 clients, which then
//! served fewer datagrams than 2 warm ones. Workers idle for a keep-alive
//! retire, down to the minimum. Each worker keeps one buffer for its life.
//!
//! This design won a measurement against the alternatives
//! (`cargo bench --bench udp_dispatch`: 64-byte ping-pong over loopback on
//! 2 cores, against a plain single-thread `recv_from`/`send_to` loop in the
//! same run; medians of 7 rounds of 2 s, design order rotated per round):
//!
//! | design | 1 client | 16 clients |
//! |---|---|---|
//! | workers on the shared socket, one per core (the default; 2 here) | 0.99x | 1.05x |
//! | workers on the shared socket, 4 | 1.01x | 1.10x |
//! | one receiver handing datagrams to 4 pooled workers | 0.98x | 0.91x |
//! | one `SO_REUSEPORT` socket per worker, 4 | 1.01x | 1.15x |
//!
//! The hand-off pays a thread wake-up and a channel operation per
//! datagram and falls behind as clients multiply. `SO_REUSEPORT` sockets
//! match the shared socket, within this machine's noise, but they pin each
//! client (by a hash of its address) to one socket and so to one worker,
//! which a slow handler then stalls while other workers idle; they cannot
//! grow on demand; any process of the same user can join the group; and
//! the option does not exist for Unix sockets. The shared socket keeps one
//! design for UDP and Unix datagrams and grows when handlers are slow.
//!
//! Shutdown wakes blocked receivers at once: on Linux by shutting the
//! socket's read side (which wakes every receiver, even on an unconnected
//! socket), elsewhere by sending the socket empty datagrams until every
//! worker has seen the request.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backoff::{AcceptFailure, Backoff, classify};
use super::builder::Builder;
use super::control::{Control, ShutdownHandle};
use super::stats::{Counters, Stats};
use super::{Mode, ServerHandle};
use crate::handler::{RequestHandler, process, report, run_hook};
use crate::pool::{Exit, GroupConfig, ThreadGroup, WorkerCounts};
use crate::request::DatagramRequest;
use crate::socket::SocketFile;
use crate::sys::{Waker, wait_readable};
use crate::transport::{DatagramSocket, Received};

/// The default receive buffer: the largest UDP payload over IPv4.
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 65_507;

/// The shortest receive timeout workers use to notice a keep-alive; the
/// OS rejects a zero timeout.
const MIN_KEEP_ALIVE: Duration = Duration::from_millis(1);

/// How long nobody must be receiving before the pool grows.
const GROWTH_DELAY: Duration = Duration::from_millis(1);

/// The socket, owned by whichever call is serving; dropping it closes the
/// socket (once workers are done with it) and removes a Unix socket file.
struct Engine<S: DatagramSocket> {
    socket: Arc<S>,
    _file: Option<SocketFile>,
    /// The serial loop's request, kept between calls.
    spare: Option<DatagramRequest<S>>,
}

/// What the serving threads share.
struct Shared<S: DatagramSocket, H> {
    handler: H,
    server: ServerHandle<S::Addr>,
    capacity: usize,
    /// The address recorded for senders that have none.
    unnamed: S::Addr,
    /// A receive error that ended serving, for `serve_forever` to return.
    failure: Mutex<Option<io::Error>>,
    /// Set by a worker that took a datagram while nobody else was
    /// receiving; cleared by the loop thread when it checks.
    starving: AtomicBool,
    /// Wakes the loop thread to check whether the pool should grow.
    growth: Waker,
}

/// A datagram-socket server, generic over the transport `S` and the mode
/// `M`. Use it through its aliases: [`UdpServer`](crate::UdpServer),
/// [`ThreadingUdpServer`](crate::ThreadingUdpServer),
/// [`UnixDatagramServer`](crate::UnixDatagramServer) and
/// [`ThreadingUnixDatagramServer`](crate::ThreadingUnixDatagramServer).
///
/// Dropping a server that is not serving closes its socket (and removes a
/// Unix socket's file).
pub struct DatagramServer<S, M, H>
where
    S: DatagramSocket,
    M: Mode,
    H: RequestHandler<DatagramRequest<S>>,
{
    /// `None` while a call is serving, and after shutdown.
    engine: Mutex<Option<Engine<S>>>,
    shared: Arc<Shared<S, H>>,
    group: GroupConfig,
    timeout: Option<Duration>,
    service_interval: Option<Duration>,
    _mode: PhantomData<fn() -> M>,
}

impl<S, M, H> DatagramServer<S, M, H>
where
    S: DatagramSocket,
    M: Mode,
    H: RequestHandler<DatagramRequest<S>>,
{
    pub(crate) fn new(
        socket: S,
        file: Option<SocketFile>,
        handler: H,
        config: Builder<S, M>,
    ) -> io::Result<Self> {
        let local_addr = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        let counts = Arc::new(WorkerCounts::default());
        let control = Control::new(config.grace, None, false, counts)?;
        let mut group = config.pool.group;
        if !config.min_workers_set {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            group.min_workers = cores.min(group.max_workers);
        }
        // Someone must always be receiving.
        group.min_workers = group.min_workers.max(1);
        group.max_workers = group.max_workers.max(group.min_workers);
        Ok(DatagramServer {
            engine: Mutex::new(Some(Engine {
                socket: Arc::new(socket),
                _file: file,
                spare: None,
            })),
            shared: Arc::new(Shared {
                handler,
                server: ServerHandle::new(control, local_addr),
                capacity: config.max_datagram_size,
                unnamed: S::unnamed()?,
                failure: Mutex::new(None),
                starving: AtomicBool::new(false),
                growth: Waker::new()?,
            }),
            group,
            timeout: config.timeout,
            service_interval: config.service_interval,
            _mode: PhantomData,
        })
    }

    fn control(&self) -> &Arc<Control> {
        self.shared.server.control()
    }

    /// The address the server is bound to: with port 0, the port the OS
    /// chose.
    pub fn local_addr(&self) -> &S::Addr {
        self.shared.server.local_addr()
    }

    /// The handle handlers see: address, shutdown, stats.
    pub fn server_handle(&self) -> &ServerHandle<S::Addr> {
        &self.shared.server
    }

    /// A handle that stops the server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shared.server.shutdown_handle()
    }

    /// A snapshot of the server's counters; `accepted` counts datagrams.
    pub fn stats(&self) -> Stats {
        self.shared.server.stats()
    }

    /// The handler, for reading state it keeps.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

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
        let control = Arc::clone(self.control());
        let Some(_serving) = control.begin_serving()? else {
            // Shutdown came first, and it is final: close the socket now.
            drop(self.engine.lock().take());
            return Ok(());
        };
        let Some(mut engine) = self.engine.lock().take() else {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the server is busy in handle_request on another thread",
            ));
        };
        let result = if M::THREADING {
            self.serve_threading(&engine)
        } else {
            self.serve_serial(&mut engine)
        };
        let failure = self.shared.failure.lock().take();
        match failure.map_or(result, Err) {
            Err(e) => {
                log::error!("serving stopped: the socket failed: {e}");
                // The socket is gone: later calls return at once.
                control.request_shutdown();
                Err(e)
            }
            ok => ok,
        }
    }

    fn serve_serial(&self, engine: &mut Engine<S>) -> io::Result<()> {
        let control = self.control();
        let mut request = self.spare_request(engine);
        let mut backoff = Backoff::default();
        let result = loop {
            if control.is_shutdown_requested() {
                break Ok(());
            }
            let ready = match wait_readable(
                &[engine.socket.as_fd(), control.waker().as_fd()],
                self.service_interval,
            ) {
                Ok(ready) => ready,
                Err(e) => break Err(e),
            };
            if ready.is_ready(1) || control.is_shutdown_requested() {
                break Ok(());
            }
            if ready.is_ready(0) {
                // Serve every datagram waiting, then poll again.
                loop {
                    match self.shared.receive_one(&mut request, &mut backoff) {
                        Ok(Some(received)) => self.shared.serve(&mut request, received),
                        Ok(None) => break,
                        Err(e) => {
                            engine.spare = Some(request);
                            return Err(e);
                        }
                    }
                    if control.is_shutdown_requested() {
                        break;
                    }
                }
            }
            run_hook("service_actions", || self.shared.handler.service_actions());
        };
        engine.spare = Some(request);
        result
    }

    fn serve_threading(&self, engine: &Engine<S>) -> io::Result<()> {
        let control = self.control();
        let socket = &engine.socket;
        // Workers block in recv; the timeout lets idle ones retire.
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(self.group.keep_alive.max(MIN_KEEP_ALIVE)))?;
        let group = ThreadGroup::new(self.group.clone(), Arc::clone(&control.counters.workers));
        let mut started = Ok(());
        for _ in 0..group.config.min_workers {
            group.reserve();
            started = Shared::spawn_receiver(&self.shared, &group, socket);
            if started.is_err() {
                control.request_shutdown();
                break;
            }
        }
        let waited = if started.is_ok() {
            self.supervise(&group, socket)
        } else {
            Ok(())
        };
        if waited.is_err() {
            control.request_shutdown();
        }
        self.stop_receivers(socket, &group);
        started.and(waited)
    }

    /// The loop thread's job while workers serve: grow the pool when asked
    /// and it is still needed, run the service actions, wait for shutdown.
    fn supervise(&self, group: &Arc<ThreadGroup>, socket: &Arc<S>) -> io::Result<()> {
        let control = self.control();
        let shared = &self.shared;
        let mut next_service = self.service_interval.map(|interval| Instant::now() + interval);
        loop {
            let left = next_service.map(|at| at.saturating_duration_since(Instant::now()));
            let ready = wait_readable(&[control.waker().as_fd(), shared.growth.as_fd()], left)?;
            if control.is_shutdown_requested() {
                return Ok(());
            }
            if ready.is_ready(1) {
                shared.growth.drain();
                // Give the busy workers a moment; only a lasting shortage
                // of receivers is worth a thread.
                wait_readable(&[control.waker().as_fd()], Some(GROWTH_DELAY))?;
                shared.starving.store(false, Ordering::Release);
                if group.counts.idle() == 0 && group.reserve() {
                    let _ = Shared::spawn_receiver(shared, group, socket);
                }
            }
            if let (Some(at), Some(interval)) = (next_service, self.service_interval)
                && Instant::now() >= at
            {
                run_hook("service_actions", || shared.handler.service_actions());
                next_service = Some(Instant::now() + interval);
            }
        }
    }

    /// Wakes the workers blocked receiving, lets the requests in flight
    /// finish within the grace period, and joins the workers.
    fn stop_receivers(&self, socket: &S, group: &ThreadGroup) {
        let deadline = Instant::now() + self.control().grace();
        let stopped = if cfg!(any(target_os = "linux", target_os = "android")) {
            wake_by_shutdown(socket);
            group.wait_exited(deadline)
        } else {
            wake_by_datagrams(socket, group, deadline)
        };
        if stopped {
            group.join();
        } else {
            log::error!(
                "{} worker(s) still serving after the grace period; leaving them detached",
                group.counts.live()
            );
        }
    }

    fn spare_request(&self, engine: &mut Engine<S>) -> DatagramRequest<S> {
        engine
            .spare
            .take()
            .unwrap_or_else(|| self.shared.new_request(Arc::clone(&engine.socket)))
    }

    /// Serves at most one datagram, on the calling thread in both modes:
    /// waits (up to the server's timeout) for one and serves it. Returns
    /// `Ok(true)` if a datagram was served, `Ok(false)` if the timeout
    /// passed (after calling `handle_timeout`) or shutdown was requested.
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

    fn handle_one(&self, engine: &mut Engine<S>) -> io::Result<bool> {
        let control = self.control();
        let mut request = self.spare_request(engine);
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::default();
        let result = loop {
            if control.is_shutdown_requested() {
                break Ok(false);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let ready = match wait_readable(&[engine.socket.as_fd(), control.waker().as_fd()], left) {
                Ok(ready) => ready,
                Err(e) => break Err(e),
            };
            if ready.is_ready(1) {
                break Ok(false);
            }
            if ready.is_empty() {
                run_hook("handle_timeout", || self.shared.handler.handle_timeout());
                break Ok(false);
            }
            match self.shared.receive_one(&mut request, &mut backoff) {
                Ok(Some(received)) => {
                    self.shared.serve(&mut request, received);
                    break Ok(true);
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        engine.spare = Some(request);
        result
    }
}

impl<S, H> Shared<S, H>
where
    S: DatagramSocket,
    H: RequestHandler<DatagramRequest<S>>,
{
    fn control(&self) -> &Arc<Control> {
        self.server.control()
    }

    fn new_request(&self, socket: Arc<S>) -> DatagramRequest<S> {
        DatagramRequest::new(socket, self.server.clone(), self.capacity, self.unnamed.clone())
    }

    /// Receives one datagram from a non-blocking socket. `None`: nothing
    /// to take now (none waiting, one connection's error, or a back-off
    /// after resource exhaustion).
    fn receive_one(
        &self,
        request: &mut DatagramRequest<S>,
        backoff: &mut Backoff,
    ) -> io::Result<Option<Received>> {
        match request.receive() {
            Ok(received) => {
                backoff.succeeded("recv");
                Ok(Some(received))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => self.receive_failed(e, backoff).map(|()| None),
        }
    }

    /// Handles a failed receive: transient errors are counted, exhaustion
    /// backs off, anything else is returned.
    fn receive_failed(&self, error: io::Error, backoff: &mut Backoff) -> io::Result<()> {
        let control = self.control();
        match classify(&error) {
            AcceptFailure::Transient => {
                Counters::bump(&control.counters.accept_errors);
                log::debug!("recv failed: {error}");
                Ok(())
            }
            AcceptFailure::Exhausted => backoff.pause(control, "recv", &error),
            AcceptFailure::Fatal => {
                Counters::bump(&control.counters.accept_errors);
                Err(error)
            }
        }
    }

    /// Serves one received datagram, or reports it if it did not fit.
    fn serve(&self, request: &mut DatagramRequest<S>, received: Received) {
        let control = self.control();
        control.request_started();
        match received {
            Received::Whole(_) => process(&self.handler, request, &control.counters),
            Received::Truncated(size) => {
                let size = size.map_or_else(|| "more than".to_owned(), |s| s.to_string());
                let error = io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "dropped a datagram of {size} bytes: larger than the {}-byte receive buffer",
                        request.capacity()
                    ),
                );
                report(&self.handler, request, &control.counters, error);
            }
        }
        control.request_finished();
    }

    fn spawn_receiver(shared: &Arc<Self>, group: &Arc<ThreadGroup>, socket: &Arc<S>) -> io::Result<()> {
        let (worker, workers, socket) = (Arc::clone(shared), Arc::clone(group), Arc::clone(socket));
        group.spawn(move || worker.receive_loop(&workers, socket))
    }

    /// A threading worker's life: receive, serve, repeat.
    fn receive_loop(self: &Arc<Self>, group: &Arc<ThreadGroup>, socket: Arc<S>) -> Exit {
        let control = self.control();
        let _mark = control.mark_current_thread();
        let mut request = self.new_request(Arc::clone(&socket));
        let idle = &group.counts.idle;
        let mut backoff = Backoff::default();
        loop {
            if control.is_shutdown_requested() {
                return Exit::Stopped;
            }
            idle.fetch_add(1, Ordering::AcqRel);
            let received = request.receive();
            let others_receiving = idle.fetch_sub(1, Ordering::AcqRel) > 1;
            if control.is_shutdown_requested() {
                // Either the shutdown wake-up, or a datagram that arrived
                // as shutdown began; serving stops either way.
                return Exit::Stopped;
            }
            match received {
                Ok(received) => {
                    backoff.succeeded("recv");
                    if !others_receiving && !self.starving.swap(true, Ordering::AcqRel) {
                        // Nobody is left receiving: the loop thread decides
                        // whether to add a worker.
                        self.growth.wake();
                    }
                    self.serve(&mut request, received);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    // A keep-alive without datagrams.
                    if others_receiving && group.try_retire() {
                        return Exit::Retired;
                    }
                }
                Err(e) => {
                    if let Err(fatal) = self.receive_failed(e, &mut backoff) {
                        self.failure.lock().get_or_insert(fatal);
                        control.request_shutdown();
                        return Exit::Stopped;
                    }
                }
            }
        }
    }
}

/// Shuts the socket's read side. On Linux this wakes every thread blocked
/// receiving on it, even when it is not connected (which the call reports
/// as `ENOTCONN` after doing it).
fn wake_by_shutdown(socket: &impl AsFd) {
    if let Err(e) = socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Read)
        && e.kind() != io::ErrorKind::NotConnected
    {
        log::warn!("cannot shut the socket's read side: {e}");
    }
}

/// Sends the socket empty datagrams, one per worker still alive, until all
/// have exited or `deadline` passes. Datagrams can be lost when the
/// receive buffer is full, hence the rounds. True if they all exited.
fn wake_by_datagrams<S: DatagramSocket>(socket: &S, group: &ThreadGroup, deadline: Instant) -> bool {
    const ROUND: Duration = Duration::from_millis(20);
    loop {
        for _ in 0..group.counts.live() {
            if let Err(e) = socket.poke() {
                log::warn!("cannot wake the datagram workers: {e}");
                return group.wait_exited(deadline);
            }
        }
        let now = Instant::now();
        if group.wait_exited((now + ROUND).min(deadline)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

impl<S, M, H> Drop for DatagramServer<S, M, H>
where
    S: DatagramSocket,
    M: Mode,
    H: RequestHandler<DatagramRequest<S>>,
{
    fn drop(&mut self) {
        if self.engine.get_mut().take().is_some() {
            // Not serving: make a later shutdown() return at once.
            self.control().request_shutdown();
        }
    }
}

impl<S, M, H> fmt::Debug for DatagramServer<S, M, H>
where
    S: DatagramSocket,
    M: Mode,
    H: RequestHandler<DatagramRequest<S>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("local_addr", self.local_addr())
            .field("threading", &M::THREADING)
            .finish_non_exhaustive()
    }
}

impl<S, M, H> super::Server for DatagramServer<S, M, H>
where
    S: DatagramSocket,
    M: Mode,
    H: RequestHandler<DatagramRequest<S>>,
{
    type Addr = S::Addr;

    fn server_handle(&self) -> &ServerHandle<S::Addr> {
        DatagramServer::server_handle(self)
    }

    fn serve_forever(&self) -> io::Result<()> {
        DatagramServer::serve_forever(self)
    }

    fn handle_request(&self) -> io::Result<bool> {
        DatagramServer::handle_request(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// The portable wake-up, exercised here even where Linux's is used.
    #[test]
    fn datagram_wake_up_stops_blocked_receivers() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let config = GroupConfig {
            max_workers: 4,
            ..GroupConfig::default()
        };
        let group = ThreadGroup::new(config, Arc::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..4 {
            assert!(group.reserve());
            let (socket, stop) = (Arc::clone(&socket), Arc::clone(&stop));
            group
                .spawn(move || {
                    let mut buf = [0u8; 16];
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        let _ = socket.recv_from(&mut buf);
                    }
                    Exit::Stopped
                })
                .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        assert!(wake_by_datagrams(
            &*socket,
            &group,
            Instant::now() + Duration::from_secs(10)
        ));
        group.join();
    }
}
