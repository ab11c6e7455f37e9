//! Restarting a server without dropping a connection (feature `restart`).
//!
//! A running server starts a new process of itself (for example a new
//! version of its binary) and hands it its listening sockets. The new
//! process serves on the very same sockets, so the kernel keeps accepting
//! connections throughout: nothing is refused, and connections waiting in
//! the accept queue are taken by whichever process accepts next. Once the
//! new process says it is ready, the old one stops accepting, lets its
//! in-flight requests finish within its grace period, and exits. A new
//! process that fails or is not ready in time is killed, and the old one
//! keeps serving; a new process that cannot serve says why with
//! [`Upgrader::fail`], and the old one's error carries the reason.
//!
//! This is the shape of Cloudflare's `tableflip`: an [`Upgrader`] made at
//! start-up, sockets created through it (inherited when there is a
//! previous process, bound otherwise), [`Upgrader::ready`] once serving,
//! and [`Upgrader::upgrade`] when asked to restart (typically on `SIGHUP`):
//!
//! ```no_run
//! use socketserver::restart::Upgrader;
//! use socketserver::{ThreadingTcpServer, echo::Uppercase};
//! use std::thread;
//!
//! let mut upgrader = Upgrader::new()?;
//! let builder = ThreadingTcpServer::builder();
//! // Inherited from the previous process, or bound with the builder's options.
//! let server = upgrader
//!     .listen_tcp("127.0.0.1:9999", &builder)
//!     .and_then(|listener| builder.from_listener(listener, Uppercase))
//!     // The previous process's upgrade fails with this reason.
//!     .inspect_err(|e| upgrader.fail(e))?;
//! let stop = server.shutdown_handle();
//! let serving = thread::spawn(move || server.serve_forever());
//! upgrader.ready()?; // the previous process, if any, stops and drains now
//!
//! // Wait for SIGHUP (here with signal-hook), then restart.
//! let mut hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
//! hangups.forever().next();
//! match upgrader.upgrade() {
//!     Ok(pid) => println!("process {pid} serves now; draining"),
//!     Err(e) => eprintln!("restart failed, still serving: {e}"),
//! }
//! stop.shutdown(); // stop accepting, drain within the grace period
//! serving.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How the sockets travel is described in the `handover` module: they are
//! inherited across `exec` at their own descriptor numbers, announced in
//! `SOCKETSERVER_HANDOVER_*` variables, and no other process ever receives
//! them. Under systemd the new process becomes the service's main process
//! by sending `MAINPID=` with `READY=1` (`systemd::ready` does); the unit
//! needs `NotifyAccess=all` (see `deploy/`).

mod handover;
mod moves;

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::control::drain::Destination;
use crate::control::{Control, ServerHandle};
use crate::server::{Builder, ModeMarker};
use crate::socket::{PassedSocket, SocketKind, check_kind};
use handover::Successor;

/// How long [`Upgrader::upgrade`] waits for the new process to be ready
/// unless told otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an old process serves the connections it keeps after a
/// restart, unless told otherwise ([`Upgrader::drain_limit`]).
pub const DEFAULT_DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Set by the first [`Upgrader::new`].
static CREATED: AtomicBool = AtomicBool::new(false);

/// Hands a server's listening sockets to a new process of itself and
/// tells each process when to serve and when to go. One per process; see
/// the [module documentation](self) for the whole sequence.
pub struct Upgrader {
    program: PathBuf,
    ready_timeout: Duration,
    parent: Option<Parent>,
    /// Inherited sockets nobody has asked for yet.
    inherited: Vec<(String, OwnedFd)>,
    /// The sockets this process serves on, passed on by `upgrade`: copies
    /// of the descriptors the servers own.
    sockets: Vec<(String, OwnedFd)>,
    ready: bool,
    successor: Option<Successor>,
    drain_limit: Duration,
    /// The servers [`attach`](Self::attach)ed, by their sockets' names.
    attached: Vec<(String, Arc<Control>)>,
}

/// The process this one took over from.
struct Parent {
    pid: u32,
    /// `None` once the parent is known to have exited.
    control: Option<UnixStream>,
    /// Where it moves connections to this process; taken by the thread
    /// that takes them in.
    moves: Option<OwnedFd>,
}

impl Upgrader {
    /// Takes over the sockets the previous process handed over, if this
    /// process was started by [`upgrade`](Self::upgrade), and prepares to
    /// hand them on. Call it first thing in `main`: the inherited
    /// descriptors are adopted (and made close-on-exec) here, and while
    /// the process has a single thread the handover variables are removed
    /// from its environment.
    ///
    /// At most one per process (`AlreadyExists` otherwise). The new
    /// process is started from [`std::env::current_exe`] as it is now,
    /// so a binary replaced at the same path starts in its new version;
    /// [`program`](Self::program) chooses another path.
    pub fn new() -> io::Result<Upgrader> {
        if CREATED.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "an Upgrader exists already: one per process",
            ));
        }
        let program = std::env::current_exe()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot find this program's path: {e}")))?;
        let (parent, inherited) = match handover::receive()? {
            Some(received) => {
                log::info!(
                    "started by process {} with {} socket(s)",
                    received.parent_pid,
                    received.sockets.len()
                );
                let parent = Parent {
                    pid: received.parent_pid,
                    control: Some(received.control),
                    moves: received.moves,
                };
                (Some(parent), received.sockets)
            }
            None => (None, Vec::new()),
        };
        Ok(Upgrader {
            program,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            parent,
            inherited,
            sockets: Vec::new(),
            ready: false,
            successor: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            attached: Vec::new(),
        })
    }

    /// How long this process, once a restart has handed over to a new
    /// one, goes on serving the connections it keeps (default
    /// [`DEFAULT_DRAIN_LIMIT`], ten minutes): past it, they are closed as
    /// a shutdown closes them (between two requests, or after the grace
    /// period). See [`attach`](Self::attach).
    pub fn drain_limit(mut self, limit: Duration) -> Self {
        self.drain_limit = limit;
        self
    }

    /// How long [`upgrade`](Self::upgrade) waits for the new process to be
    /// ready before killing it (default [`DEFAULT_READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The program [`upgrade`](Self::upgrade) starts, with this process's
    /// arguments (default: this process's executable). Useful when the
    /// executable is reached through a symbolic link that a deployment
    /// repoints.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = path.into();
        self
    }

    /// The process this one took over from, if it was started by an
    /// upgrade.
    pub fn parent_pid(&self) -> Option<u32> {
        self.parent.as_ref().map(|p| p.pid)
    }

    /// The socket called `name`: the one the previous process handed over
    /// under that name, checked to be an `S`, or else a new one from
    /// `create`. Either way it is registered to be handed on by
    /// [`upgrade`](Self::upgrade).
    ///
    /// Use the same name for the same socket in every version of the
    /// program. A name registered twice is an `AlreadyExists` error; an
    /// inherited socket of another kind is an `InvalidInput` error.
    ///
    /// Listeners only (TCP and Unix stream): a datagram socket is an
    /// `Unsupported` error, because the crate's threading datagram servers
    /// shut their socket's read side when they stop (to wake their
    /// receivers at once), which on a shared socket would stop the new
    /// process's receivers too.
    ///
    /// With systemd socket activation (feature `systemd`), the first
    /// process takes its socket from systemd and later ones inherit it:
    ///
    /// ```no_run
    /// # #[cfg(feature = "systemd")]
    /// # fn main() -> std::io::Result<()> {
    /// use socketserver::restart::Upgrader;
    /// use socketserver::systemd::ListenFds;
    /// use socketserver::ThreadingTcpServer;
    ///
    /// let mut upgrader = Upgrader::new()?;
    /// let mut activated = ListenFds::take()?;
    /// let builder = ThreadingTcpServer::builder();
    /// let listener = upgrader.socket("web", || match activated.is_empty() {
    ///     true => builder.bind_listener("127.0.0.1:9999"),
    ///     false => activated.tcp_listener("web"),
    /// })?;
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "systemd"))]
    /// # fn main() {}
    /// ```
    pub fn socket<S: PassedSocket>(
        &mut self,
        name: &str,
        create: impl FnOnce() -> io::Result<S>,
    ) -> io::Result<S> {
        handover::check_name(name)?;
        if !matches!(S::KIND, SocketKind::TcpListener | SocketKind::UnixListener) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "socket '{name}': only listeners can be handed over, not {}",
                    S::KIND
                ),
            ));
        }
        if self.sockets.iter().any(|(registered, _)| registered == name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a socket named '{name}' is registered already"),
            ));
        }
        let socket = match self.inherited.iter().position(|(inherited, _)| inherited == name) {
            Some(index) => {
                let (name, fd) = self.inherited.remove(index);
                let from = self.parent_pid().unwrap_or_default();
                check_kind::<S>(
                    fd.as_fd(),
                    &format!("the socket '{name}' inherited from process {from}"),
                )?;
                log::info!("serving on socket '{name}' inherited from process {from}");
                S::from(fd)
            }
            None => create()?,
        };
        self.sockets
            .push((name.to_owned(), socket.as_fd().try_clone_to_owned()?));
        Ok(socket)
    }

    /// The TCP listener for `addr` (its name too): inherited, or bound with
    /// `builder`'s socket options (see [`Builder::bind_listener`]).
    pub fn listen_tcp<M: ModeMarker>(
        &mut self,
        addr: &str,
        builder: &Builder<TcpListener, M>,
    ) -> io::Result<TcpListener> {
        self.socket(addr, || builder.bind_listener(addr))
    }

    /// The Unix stream listener at `path` (its name too): inherited, or
    /// bound with `builder`'s options (an existing socket file nobody
    /// answers on is replaced, as `bind` does).
    ///
    /// The socket file outlives each process, since the next one serves on
    /// it; after the last one it stays until the next bind replaces it.
    pub fn listen_unix<M: ModeMarker>(
        &mut self,
        path: impl AsRef<Path>,
        builder: &Builder<UnixListener, M>,
    ) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let name = path.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not UTF-8; use Upgrader::socket with a name",
                    path.display()
                ),
            )
        })?;
        self.socket(name, || builder.bind_listener(path))
    }

    /// Ties `server`, which serves on the socket registered as `name`
    /// (by [`listen_tcp`](Self::listen_tcp), [`listen_unix`](Self::listen_unix)
    /// or [`socket`](Self::socket)), to the restarts, so that none of its
    /// connections is cut. Call it before [`ready`](Self::ready).
    ///
    /// - After a successful [`upgrade`](Self::upgrade) the server drains
    ///   by itself (you no longer shut it down): it stops accepting at
    ///   once (the new process accepts), and its open connections are
    ///   served to their natural end, for at most the
    ///   [`drain_limit`](Self::drain_limit); `serve_forever` returns once
    ///   the last is gone. A parked server does better: it moves each
    ///   connection to the new process between two requests, with the
    ///   bytes read ahead for it, its PROXY header and the handler's
    ///   state ([`KeepAliveHandler::save_state`](crate::KeepAliveHandler::save_state));
    ///   only TLS connections, connections of a [`RequestHandler`](crate::RequestHandler)
    ///   and those whose state cannot be written down stay, served here.
    /// - In the new process, connections the old one moves for `name` are
    ///   served by `server`, from their next request on, if it is a
    ///   parked server (others do not take connections in: the old
    ///   process then keeps them).
    ///
    /// `NotFound` if no socket is registered as `name`; `AlreadyExists`
    /// if a server is attached under it already.
    ///
    /// ```no_run
    /// use socketserver::restart::Upgrader;
    /// use socketserver::{ParkedTcpServer, echo::Uppercase};
    ///
    /// let mut upgrader = Upgrader::new()?;
    /// let builder = ParkedTcpServer::builder();
    /// let listener = upgrader.listen_tcp("127.0.0.1:9999", &builder)?;
    /// let server = builder.from_listener(listener, Uppercase)?;
    /// upgrader.attach("127.0.0.1:9999", &server.server_handle())?;
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// upgrader.ready()?;
    /// // On SIGHUP (signal-hook): the new process serves, this one's
    /// // connections move to it, and serve_forever returns once they have.
    /// let mut hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    /// hangups.forever().next();
    /// upgrader.upgrade()?;
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn attach<A>(&mut self, name: &str, server: &ServerHandle<A>) -> io::Result<()> {
        if !self.sockets.iter().any(|(registered, _)| registered == name) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no socket is registered as '{name}': register it (listen_tcp, listen_unix, socket) first"
                ),
            ));
        }
        if self.attached.iter().any(|(attached, _)| attached == name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a server is attached to socket '{name}' already"),
            ));
        }
        self.attached
            .push((name.to_owned(), Arc::clone(server.control())));
        Ok(())
    }

    /// Says this process serves. Inherited sockets it did not ask for are
    /// closed, and the previous process, if any, is told to stop accepting
    /// and drain. Call it once the servers are built (their sockets accept
    /// from then on, even before `serve_forever` runs). Calling it again
    /// does nothing.
    pub fn ready(&mut self) -> io::Result<()> {
        if self.ready {
            return Ok(());
        }
        for (name, _) in self.inherited.drain(..) {
            log::info!("closing inherited socket '{name}': this version does not use it");
        }
        if let Some(parent) = &mut self.parent {
            // Before the ready byte: the previous process reads these once
            // it has that.
            if let Some(moves) = parent.moves.take() {
                take_moved_connections(moves, parent.pid, &self.attached);
            }
            if let Some(control) = &parent.control {
                handover::signal_ready(control)?;
            }
        }
        self.ready = true;
        Ok(())
    }

    /// Says this process cannot serve, and why: the previous process's
    /// [`upgrade`](Self::upgrade) fails with an error that carries
    /// `reason`, so the operator reads it in the old process's log even if
    /// this process's own output is lost (it is stopped soon after). Call
    /// it when starting up fails, before [`ready`](Self::ready); it does
    /// nothing after `ready`, or in a process no upgrade started.
    pub fn fail(&mut self, reason: impl fmt::Display) {
        if self.ready {
            return;
        }
        if let Some(parent) = &mut self.parent
            && let Some(control) = parent.control.take()
        {
            handover::signal_failed(control, &reason.to_string());
        }
    }

    /// Starts a new process of this program with the same arguments and
    /// hands it every registered socket, then waits (up to the ready
    /// timeout) for it to call [`ready`](Self::ready). On success it
    /// returns the new process's id, and the [`attach`](Self::attach)ed
    /// servers drain (their connections move to the new process, or are
    /// served here to their end); shut down any server not attached
    /// (in-flight requests finish within the grace period). The process
    /// should exit once its servers have returned.
    ///
    /// On failure this process keeps serving and may try again: the new
    /// process has been reaped if it started (killed unless it exited by
    /// itself), and the error says why it failed if it said so
    /// ([`fail`](Self::fail)). Also refused: before [`ready`](Self::ready)
    /// (`InvalidInput`), and after a successful upgrade (`AlreadyExists`).
    /// The process this one took over from may still be draining: each
    /// generation drains by itself, up to its drain limit.
    pub fn upgrade(&mut self) -> io::Result<u32> {
        if let Some(successor) = &self.successor {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("already handed over to process {}", successor.pid()),
            ));
        }
        if !self.ready {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not ready yet: call Upgrader::ready once serving, then upgrade",
            ));
        }
        if let Some(pid) = self.draining_parent()? {
            log::info!("the previous process (pid {pid}) is still draining; it goes on");
        }
        let successor = handover::start_successor(
            &self.program,
            std::env::args_os().skip(1),
            &self.sockets,
            self.ready_timeout,
        )?;
        let pid = successor.pid();
        log::info!(
            "handed {} socket(s) to process {pid}; this process stops accepting now",
            self.sockets.len()
        );
        self.drain_attached(&successor);
        self.successor = Some(successor);
        Ok(pid)
    }

    /// Drains the attached servers, moving connections to `successor`
    /// for the sockets it said it takes them for.
    fn drain_attached(&self, successor: &Successor) {
        let pid = successor.pid();
        let takes = match moves::announced(successor.moves().as_fd()) {
            Ok(names) => names,
            Err(e) => {
                log::warn!("cannot read which connections process {pid} takes over ({e}); none moves");
                Default::default()
            }
        };
        for (name, control) in &self.attached {
            let destination: Option<Arc<dyn Destination>> = takes
                .contains(name)
                .then(|| Arc::new(moves::Mover::new(Arc::clone(successor.moves()), name, pid)) as _);
            match destination.is_some() {
                true => log::info!("socket '{name}': connections move to process {pid} between requests"),
                false => log::info!(
                    "socket '{name}': open connections are served here to their end (at most {:?})",
                    self.drain_limit
                ),
            }
            control.drain(self.drain_limit, destination);
        }
    }

    /// The process that took over from this one, after a successful
    /// [`upgrade`](Self::upgrade).
    pub fn successor_pid(&self) -> Option<u32> {
        self.successor.as_ref().map(Successor::pid)
    }

    /// The previous process, if it is still running.
    fn draining_parent(&mut self) -> io::Result<Option<u32>> {
        let Some(parent) = &mut self.parent else {
            return Ok(None);
        };
        let Some(control) = &parent.control else {
            return Ok(None);
        };
        if handover::has_exited(control)? {
            log::debug!("the previous process ({}) has exited", parent.pid);
            parent.control = None;
            return Ok(None);
        }
        Ok(Some(parent.pid))
    }
}

/// Starts the thread that takes in the connections the previous process
/// moves, for the attached servers that can, after announcing them.
fn take_moved_connections(moves: OwnedFd, from: u32, attached: &[(String, Arc<Control>)]) {
    let mut servers = Vec::new();
    for (name, control) in attached {
        if control.adopter().is_none() {
            continue;
        }
        if let Err(e) = moves::announce(moves.as_fd(), name) {
            log::warn!("cannot ask process {from} for the connections of socket '{name}': {e}");
            continue;
        }
        servers.push((name.clone(), Arc::clone(control)));
    }
    if servers.is_empty() {
        // Nothing announced: the previous process moves nothing.
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("socketserver-takeover".into())
        .spawn(move || moves::take_in(moves, servers, from));
    if let Err(e) = spawned {
        log::error!("cannot start taking connections over from process {from}: {e}");
    }
}

impl fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names =
            |sockets: &[(String, OwnedFd)]| sockets.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("Upgrader")
            .field("program", &self.program)
            .field("parent_pid", &self.parent_pid())
            .field("sockets", &names(&self.sockets))
            .field("unclaimed", &names(&self.inherited))
            .field("ready", &self.ready)
            .field("successor_pid", &self.successor_pid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ThreadingTcpServer, ThreadingUnixStreamServer};
    use std::net::UdpSocket;

    /// One test: an Upgrader is made once per process.
    #[test]
    fn an_upgrader_without_a_parent_binds_registers_and_refuses_what_it_must() {
        let mut upgrader = Upgrader::new().unwrap();
        assert_eq!(Upgrader::new().unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(upgrader.parent_pid(), None);

        let builder = ThreadingTcpServer::builder();
        let listener = upgrader.listen_tcp("127.0.0.1:0", &builder).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
        let again = upgrader.listen_tcp("127.0.0.1:0", &builder).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{again}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restart.sock");
        let unix = upgrader
            .listen_unix(&path, &ThreadingUnixStreamServer::builder())
            .unwrap();
        drop(unix);
        assert!(path.exists(), "the socket file is kept for the next process");

        let udp = upgrader
            .socket("dns", || UdpSocket::bind("127.0.0.1:0"))
            .unwrap_err();
        assert_eq!(udp.kind(), io::ErrorKind::Unsupported, "{udp}");

        let early = upgrader.upgrade().unwrap_err();
        assert_eq!(early.kind(), io::ErrorKind::InvalidInput, "{early}");
        upgrader.ready().unwrap();
        upgrader.ready().unwrap();
        assert_eq!(upgrader.successor_pid(), None);
    }
}
