//! The state a server shares with its threads and with the handles users
//! hold: the shutdown request and how to wake the loop for it, the phase
//! of the serving loop, the counters and the registry of sockets in use.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::sync::Arc;
#[cfg(feature = "restart")]
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

pub(crate) mod drain;
pub(crate) mod registry;
pub(crate) mod stats;

#[cfg(feature = "restart")]
use self::drain::Adopter;
use self::drain::{Destination, DrainHook};
use self::registry::{Registry, force_close};
use self::stats::Counters;
pub use self::stats::Stats;
use crate::pool::WorkerCounts;
use crate::sys::Waker;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The server whose loop or worker this thread is, 0 for none; lets
    /// `shutdown()` called from a handler return instead of waiting for
    /// its own thread to finish.
    static CURRENT_SERVER: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Serving,
}

/// Shared by a server, its threads and its handles.
pub(crate) struct Control {
    id: u64,
    requested: AtomicBool,
    phase: Mutex<Phase>,
    phase_changed: Condvar,
    /// Wakes the serving loop's wait.
    waker: Arc<Waker>,
    /// Dropped on shutdown, which disconnects `stop` and wakes any thread
    /// blocked in a channel select on it (a submitter waiting for room).
    stop_sender: Mutex<Option<Sender<()>>>,
    stop: Receiver<()>,
    /// Notified when a connection ends under the limit, and on shutdown.
    capacity_lock: Mutex<()>,
    capacity_freed: Condvar,
    max_active: Option<u64>,
    grace: Duration,
    /// The serial servers run handlers on the loop thread, so a separate
    /// thread must enforce the grace period for them.
    serial: bool,
    /// Run once, by the thread that requests shutdown or a drain: they
    /// stop accepting at once, even while a serial loop is busy in a
    /// handler.
    stop_accepting_hooks: Mutex<Vec<ShutdownHook>>,
    /// Run once, by the thread that requests shutdown.
    shutdown_hooks: Mutex<Vec<ShutdownHook>>,
    /// Set once draining begins (see [`drain`](Self::drain)).
    draining: AtomicBool,
    /// What the serving mode does when a drain begins.
    drain_hooks: Mutex<Vec<DrainHook>>,
    /// Takes in connections a restart moves here (a parked server).
    #[cfg(feature = "restart")]
    adopter: Mutex<Option<Weak<dyn Adopter>>>,
    pub(crate) counters: Counters,
    pub(crate) registry: Arc<Registry>,
}

impl Control {
    pub(crate) fn new(
        grace: Duration,
        max_active: Option<usize>,
        serial: bool,
        workers: Arc<WorkerCounts>,
        waker: Arc<Waker>,
    ) -> Arc<Self> {
        let (stop_sender, stop) = crossbeam_channel::bounded(0);
        Arc::new(Control {
            id: NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
            requested: AtomicBool::new(false),
            phase: Mutex::new(Phase::Idle),
            phase_changed: Condvar::new(),
            waker,
            stop_sender: Mutex::new(Some(stop_sender)),
            stop,
            capacity_lock: Mutex::new(()),
            capacity_freed: Condvar::new(),
            max_active: max_active.map(|m| m as u64),
            grace,
            serial,
            stop_accepting_hooks: Mutex::new(Vec::new()),
            shutdown_hooks: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            drain_hooks: Mutex::new(Vec::new()),
            #[cfg(feature = "restart")]
            adopter: Mutex::new(None),
            counters: Counters {
                workers,
                ..Counters::default()
            },
            registry: Arc::default(),
        })
    }

    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    /// Wakes the serving loop (to look at a flag it owns).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Sleeps for `pause`, or until shutdown is requested; true if it was.
    pub(crate) fn sleep_unless_shutdown(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        let mut guard = self.capacity_lock.lock();
        while !self.is_shutdown_requested() {
            if self.capacity_freed.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
        self.is_shutdown_requested()
    }

    pub(crate) fn stop_signal(&self) -> Receiver<()> {
        self.stop.clone()
    }

    pub(crate) fn is_shutdown_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Requests shutdown and wakes everything that waits: the loop's poll,
    /// a submitter blocked on a full queue, the connection-limit gate.
    pub(crate) fn request_shutdown(self: &Arc<Self>) {
        if self.requested.swap(true, Ordering::AcqRel) {
            return;
        }
        self.wake();
        self.stop_sender.lock().take();
        {
            let _guard = self.capacity_lock.lock();
            self.capacity_freed.notify_all();
        }
        self.stop_accepting();
        let hooks = std::mem::take(&mut *self.shutdown_hooks.lock());
        for hook in hooks {
            hook();
        }
        if self.serial && *self.phase.lock() == Phase::Serving {
            self.spawn_grace_watchdog();
        }
    }

    /// Runs the hooks that stop accepting, once.
    fn stop_accepting(&self) {
        let hooks = std::mem::take(&mut *self.stop_accepting_hooks.lock());
        for hook in hooks {
            hook();
        }
    }

    /// Runs `hook` when the server stops accepting: when shutdown or a
    /// drain is requested (at once if one was), on the requesting thread.
    pub(crate) fn on_stop_accepting(&self, hook: ShutdownHook) {
        let mut hooks = self.stop_accepting_hooks.lock();
        if self.is_shutdown_requested() || self.is_draining() {
            drop(hooks);
            hook();
        } else {
            hooks.push(hook);
        }
    }

    /// Runs `hook` when a drain begins (never, once shutdown is
    /// requested).
    pub(crate) fn on_drain(&self, hook: DrainHook) {
        self.drain_hooks.lock().push(hook);
    }

    /// Lets a restart move connections to this server, through `adopter`
    /// (held weakly: the server owns it).
    #[cfg(feature = "restart")]
    pub(crate) fn set_adopter(&self, adopter: Weak<dyn Adopter>) {
        *self.adopter.lock() = Some(adopter);
    }

    /// What takes in connections a restart moves here, if the server
    /// can, and is not stopping.
    #[cfg(feature = "restart")]
    pub(crate) fn adopter(&self) -> Option<Arc<dyn Adopter>> {
        if self.is_shutdown_requested() {
            return None;
        }
        self.adopter.lock().as_ref().and_then(Weak::upgrade)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Stops accepting, and lets the connections open finish by
    /// themselves: each is served until its client (or the handler) ends
    /// it. Once none is left, or at `limit`, the server stops as
    /// `request_shutdown` stops it (the grace period included). Movable
    /// connections go to `destination`, if there is one and the serving
    /// mode can move them. Does nothing once shutdown or a drain was
    /// requested. Returns at once.
    pub(crate) fn drain(self: &Arc<Self>, limit: Duration, destination: Option<Arc<dyn Destination>>) {
        if self.is_shutdown_requested() || self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        let deadline = Instant::now() + limit;
        self.stop_accepting();
        let hooks = std::mem::take(&mut *self.drain_hooks.lock());
        for hook in hooks {
            hook(destination.clone());
        }
        self.wake();
        let control = Arc::clone(self);
        let watcher = thread::Builder::new()
            .name("socketserver-drain".into())
            .spawn(move || control.watch_drain(deadline, limit));
        if let Err(e) = watcher {
            log::error!("cannot start the drain's watcher ({e}); stopping now");
            self.request_shutdown();
        }
    }

    /// Waits until no connection is left, or `deadline`, then stops the
    /// server.
    fn watch_drain(self: &Arc<Self>, deadline: Instant, limit: Duration) {
        // A connection's end notifies; the bounded wait is a safety net.
        const RECHECK: Duration = Duration::from_millis(250);
        let mut guard = self.capacity_lock.lock();
        while self.counters.active.get() > 0 && !self.is_shutdown_requested() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.capacity_freed
                .wait_until(&mut guard, deadline.min(now + RECHECK));
        }
        drop(guard);
        if self.is_shutdown_requested() {
            return;
        }
        match self.counters.active.get() {
            0 => log::info!("drained: no connection left; stopping"),
            open => log::info!("drain limit ({limit:?}) reached with {open} connection(s) open; stopping"),
        }
        self.request_shutdown();
    }

    /// Runs `hook` when shutdown is requested (at once if it already was),
    /// on the requesting thread, after the loop has been woken.
    pub(crate) fn on_shutdown(&self, hook: ShutdownHook) {
        let mut hooks = self.shutdown_hooks.lock();
        if self.is_shutdown_requested() {
            drop(hooks);
            hook();
        } else {
            hooks.push(hook);
        }
    }

    /// Force-closes the serial loop's connection if it outlives the grace
    /// period (in two steps, see [`force_close`]).
    fn spawn_grace_watchdog(self: &Arc<Self>) {
        let control = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("socketserver-grace".into())
            .spawn(move || {
                let deadline = Instant::now() + control.grace;
                if !control.wait_idle_until(deadline) {
                    force_close(
                        |how| control.registry.force_close_all(how),
                        |deadline| control.wait_idle_until(deadline),
                    );
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the shutdown watchdog ({e}); closing connections now");
            self.registry.force_close_all(Shutdown::Both);
        }
    }

    /// Waits until the serving loop has stopped (or `deadline` passes);
    /// true if it stopped.
    fn wait_idle_until(&self, deadline: Instant) -> bool {
        let mut phase = self.phase.lock();
        while *phase == Phase::Serving {
            if self.phase_changed.wait_until(&mut phase, deadline).timed_out() {
                return *phase != Phase::Serving;
            }
        }
        true
    }

    /// Waits until the serving loop has stopped, unless called from one of
    /// the server's own threads (a handler), which cannot wait for itself.
    pub(crate) fn wait_stopped(&self) {
        if self.is_current_thread() {
            return;
        }
        let mut phase = self.phase.lock();
        while *phase == Phase::Serving {
            self.phase_changed.wait(&mut phase);
        }
    }

    /// Enters the serving phase for `serve_forever`. `Ok(None)`: shutdown
    /// was already requested, so there is nothing to serve.
    pub(crate) fn begin_serving(self: &Arc<Self>) -> io::Result<Option<Serving>> {
        let mut phase = self.phase.lock();
        if self.is_shutdown_requested() {
            return Ok(None);
        }
        if *phase == Phase::Serving {
            return Err(already_serving());
        }
        *phase = Phase::Serving;
        Ok(Some(Serving {
            control: Arc::clone(self),
            _thread: self.mark_current_thread(),
        }))
    }

    /// Marks the calling thread as one of this server's until the guard
    /// drops.
    pub(crate) fn mark_current_thread(&self) -> ThreadMark {
        ThreadMark {
            previous: CURRENT_SERVER.with(|c| c.replace(self.id)),
            _this_thread: PhantomData,
        }
    }

    fn is_current_thread(&self) -> bool {
        CURRENT_SERVER.with(|c| c.get()) == self.id
    }

    /// Counts a request in (accepted and active).
    pub(crate) fn request_started(&self) {
        self.counters.accepted.bump();
        self.counters.active.up();
    }

    /// Counts a request out, and lets the loop accept again if it was
    /// waiting at the connection limit. True if it was at the limit.
    pub(crate) fn request_finished(&self) -> bool {
        let before = self.counters.active.down();
        let was_full = self.max_active.is_some_and(|max| before >= max);
        if was_full || (before == 1 && self.is_draining()) {
            let _guard = self.capacity_lock.lock();
            self.capacity_freed.notify_all();
        }
        was_full
    }

    /// Blocks while the connection limit is reached, until `deadline` if
    /// there is one.
    pub(crate) fn wait_for_capacity(&self, deadline: Option<Instant>) -> Capacity {
        let outcome = || {
            if self.is_shutdown_requested() {
                Capacity::ShuttingDown
            } else {
                Capacity::Room
            }
        };
        let Some(max) = self.max_active else {
            return outcome();
        };
        let full = || self.counters.active.get() >= max;
        if full() {
            let mut guard = self.capacity_lock.lock();
            while full() && !self.is_shutdown_requested() {
                match deadline {
                    None => self.capacity_freed.wait(&mut guard),
                    Some(deadline) => {
                        if self.capacity_freed.wait_until(&mut guard, deadline).timed_out() {
                            return if full() { Capacity::TimedOut } else { outcome() };
                        }
                    }
                }
            }
        }
        outcome()
    }

    /// True if more connections than the limit are counted in: the one
    /// just counted in is past it.
    pub(crate) fn over_capacity(&self) -> bool {
        self.max_active
            .is_some_and(|max| self.counters.active.get() > max)
    }

    /// True if the connection limit is reached right now.
    pub(crate) fn at_capacity(&self) -> bool {
        self.max_active
            .is_some_and(|max| self.counters.active.get() >= max)
    }
}

/// Closes over what to do when shutdown is requested.
pub(crate) type ShutdownHook = Box<dyn FnOnce() + Send>;

/// What waiting for room under the connection limit ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capacity {
    /// There is room for another connection.
    Room,
    /// Shutdown was requested.
    ShuttingDown,
    /// The deadline passed while the server was full.
    TimedOut,
}

fn already_serving() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "the server is already serving on another thread",
    )
}

/// The serving phase of one `serve_forever` call; ends on drop.
pub(crate) struct Serving {
    control: Arc<Control>,
    _thread: ThreadMark,
}

impl Drop for Serving {
    fn drop(&mut self) {
        *self.control.phase.lock() = Phase::Idle;
        self.control.phase_changed.notify_all();
    }
}

/// Restores the thread's previous server mark on drop. Not `Send`: the
/// mark belongs to the thread that made it.
pub(crate) struct ThreadMark {
    previous: u64,
    _this_thread: PhantomData<*const ()>,
}

impl Drop for ThreadMark {
    fn drop(&mut self) {
        CURRENT_SERVER.with(|c| c.set(self.previous));
    }
}

/// Stops a server from any thread. Cheap to clone.
///
/// ```
/// use socketserver::{TcpRequest, ThreadingTcpServer};
/// use std::thread;
///
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", |_req: &mut TcpRequest| Ok(()))?;
/// let stopper = server.shutdown_handle();
/// let serving = thread::spawn(move || server.serve_forever());
/// // Returns once serve_forever has finished, or at once if it has not
/// // started yet (it then returns as soon as it does).
/// stopper.shutdown();
/// serving.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    control: Arc<Control>,
}

impl ShutdownHandle {
    pub(crate) fn new(control: Arc<Control>) -> Self {
        ShutdownHandle { control }
    }

    /// Stops the server and waits until it has stopped.
    ///
    /// Wakes the serving loop at once, stops accepting, gives in-flight
    /// requests the server's grace period to finish, force-closes the
    /// connections still open (stream servers), joins the workers, and
    /// returns when `serve_forever` has done all that.
    ///
    /// A forced close shuts the reading of each connection first: a
    /// handler blocked reading sees the end of the stream (a TLS one too,
    /// not a truncation), returns, and its connection closes as it always
    /// does, a TLS session with `close_notify`. A connection whose handler
    /// has not returned 100 ms later is shut whole: a handler blocked
    /// writing fails, and the client of one stuck elsewhere sees the end.
    ///
    /// - If `serve_forever` is not running (not yet started), returns at
    ///   once; `serve_forever` then returns as soon as it is called, and
    ///   the socket closes then or when the server is dropped.
    /// - Called from one of the server's handlers, it only requests the
    ///   shutdown (a handler cannot wait for itself): the shutdown
    ///   completes once the handler returns.
    /// - A handler stuck outside its socket (in a sleep, a lock, a long
    ///   computation) cannot be interrupted. A threading server leaves it
    ///   running detached, [`FORCE_CLOSE_WAIT`](crate::config::FORCE_CLOSE_WAIT) after its connection was
    ///   closed (stream servers) or at the end of the grace period
    ///   (datagram servers, whose handlers hold no connection to close);
    ///   a serial server waits for it, as Python's does.
    pub fn shutdown(&self) {
        self.control.request_shutdown();
        self.control.wait_stopped();
    }

    /// Requests shutdown without waiting for it to complete.
    pub fn request_shutdown(&self) {
        self.control.request_shutdown();
    }

    /// Stops accepting, and lets the connections already open finish by
    /// themselves, for at most `limit`: each is served until its client
    /// (or the handler) ends it, as if nothing had happened. Once none is
    /// left, or at `limit`, the server stops as
    /// [`shutdown`](Self::shutdown) stops it: connections waiting between
    /// two requests close at once, a request being served gets the grace
    /// period. `serve_forever` returns then. Returns at once; does
    /// nothing once shutdown or a drain was requested.
    ///
    /// This is the old process's part in a restart
    /// (`restart::Upgrader::attach`, feature `restart`, drains for
    /// it, moving what can move); on its own it ends a server without
    /// cutting long-lived connections short. A datagram server, which has
    /// no connections, simply stops.
    ///
    /// ```
    /// use socketserver::{ThreadingTcpServer, echo::Uppercase};
    /// use std::time::Duration;
    ///
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?;
    /// let stop = server.shutdown_handle();
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// stop.drain(Duration::from_secs(600));
    /// // No connection is open: serve_forever returns at once.
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn drain(&self, limit: Duration) {
        self.control.drain(limit, None);
    }

    /// True once shutdown has been requested.
    pub fn is_shutdown_requested(&self) -> bool {
        self.control.is_shutdown_requested()
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &self.is_shutdown_requested())
            .finish()
    }
}

/// What a handler sees of its server: the local address, shutdown and
/// stats. Every request carries one ([`StreamRequest::server`]).
///
/// [`StreamRequest::server`]: crate::StreamRequest::server
pub struct ServerHandle<A> {
    inner: Arc<HandleInner<A>>,
}

struct HandleInner<A> {
    control: Arc<Control>,
    local_addr: A,
}

impl<A> Clone for ServerHandle<A> {
    fn clone(&self) -> Self {
        ServerHandle {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<A> ServerHandle<A> {
    pub(crate) fn new(control: Arc<Control>, local_addr: A) -> Self {
        ServerHandle {
            inner: Arc::new(HandleInner { control, local_addr }),
        }
    }

    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.inner.control
    }

    /// The address the server is bound to (the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> &A {
        &self.inner.local_addr
    }

    /// Stops the server; see [`ShutdownHandle::shutdown`]. From a handler
    /// this requests the shutdown and returns at once.
    pub fn shutdown(&self) {
        self.shutdown_handle().shutdown();
    }

    /// Stops accepting and lets the open connections finish by
    /// themselves, for at most `limit`; see [`ShutdownHandle::drain`].
    pub fn drain(&self, limit: Duration) {
        self.inner.control.drain(limit, None);
    }

    /// A handle that can stop the server from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(Arc::clone(&self.inner.control))
    }

    /// True once shutdown has been requested; a long-running handler can
    /// check it to wind down early.
    pub fn is_shutdown_requested(&self) -> bool {
        self.inner.control.is_shutdown_requested()
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        self.inner.control.counters.snapshot()
    }
}

impl<A: fmt::Debug> fmt::Debug for ServerHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.inner.local_addr)
            .field("shutdown_requested", &self.is_shutdown_requested())
            .finish()
    }
}
