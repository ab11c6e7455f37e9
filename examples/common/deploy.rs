//! Running an example server for real: the socket systemd passed (socket
//! activation), READY=1, STOPPING=1 and the watchdog when systemd runs
//! the server (feature `systemd`), a restart on SIGHUP that hands the
//! listening socket to a new process of the server (feature `restart`,
//! uppercase_tcp_server), and the PROXY protocol option (feature
//! `proxy-protocol`). A binary built without one of these features says
//! how to build it when it is asked for what the feature does, and exits
//! with an error.
//!
//! Each server runs in [`Deployment::run`], called first thing in `main`,
//! while the process has one thread (the passed descriptors are adopted
//! and the variables announcing them removed then); it takes its socket
//! through the deployment, wraps its handler with [`Deployment::watched`],
//! and serves with [`Deployment::serve`]. A restarted server that fails
//! before it serves tells the process that started it why: that one's
//! "restart failed" line says it.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
#[cfg(feature = "systemd")]
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::handler::{Wrap, Wrapped};
use socketserver::server::{Listener, ModeMarker, Transport};
use socketserver::{Builder, Request, Server};

use super::{ShowAddr, context};

/// An example server: its name and the features it is always built with,
/// for the messages that say how to build it with more.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub name: &'static str,
    /// Its `required-features` in Cargo.toml.
    pub features: &'static [&'static str],
    /// Whether SIGHUP restarts it (uppercase_tcp_server), rather than
    /// stopping it.
    pub restartable: bool,
}

impl Program {
    /// The error for `what`, asked of a binary built without `feature`.
    pub fn needs_feature(&self, what: &str, feature: &str) -> io::Error {
        let features: Vec<&str> = self.features.iter().copied().chain([feature]).collect();
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{what} needs the `{feature}` feature, and this {} was built without it: \
                 build it with `cargo build --features {} --example {}`",
                self.name,
                features.join(","),
                self.name
            ),
        )
    }
}

/// What a server takes over from its environment at start, and how it
/// answers signals: see the [module documentation](self).
pub struct Deployment {
    program: Program,
    signals: Signals,
    /// A Unix socket file this server created (or inherited from the
    /// process that did) and removes when it stops, unless it handed the
    /// socket to a new process: the path and the file's inode.
    socket_file: Option<(PathBuf, u64)>,
    #[cfg(feature = "systemd")]
    activated: socketserver::systemd::ListenFds,
    #[cfg(feature = "systemd")]
    watchdog: Option<Arc<socketserver::systemd::Watchdog>>,
    #[cfg(feature = "restart")]
    upgrader: Option<socketserver::restart::Upgrader>,
    /// The name the server's socket is registered under for restarts.
    #[cfg(feature = "restart")]
    restart_name: Option<String>,
}

/// The options of a restartable server's restarts (feature `restart`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RestartOptions {
    /// How long the new process started by SIGHUP gets to be ready before
    /// it is killed and this one goes on serving (default 60s). Feature
    /// `restart`.
    #[arg(long, value_parser = super::parse_timeout)]
    pub ready_timeout: Option<Duration>,
    /// How long the old process, after a restart, serves the connections
    /// it keeps (TLS ones, and with the threading or serial modes every
    /// open one: a parked server moves the others to the new process);
    /// then they close as on a stop (default 10m). Feature `restart`.
    #[arg(long, value_parser = super::parse_timeout)]
    pub drain: Option<Duration>,
    /// The executable SIGHUP starts, with the same arguments (default:
    /// this one, as it was at start), for deployments that repoint a
    /// symbolic link to a new version. Feature `restart`.
    #[arg(long, value_name = "PATH")]
    pub program: Option<PathBuf>,
}

/// How a server's signals ended its serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// SIGTERM, SIGINT (or SIGHUP for a server that does not restart), or
    /// the server stopped by itself.
    Stop,
    /// SIGHUP: a new process serves on the socket now.
    HandedOver,
}

impl Deployment {
    /// Runs a server: takes over what this process was started with (see
    /// [`start`](Self::start)), then `serve`s with the deployment. If that
    /// fails before the server serves, and a restart started this process,
    /// the process that started it is told why (its restart fails with the
    /// reason), whatever becomes of this process's own output.
    pub fn run(program: Program, serve: impl FnOnce(&mut Deployment) -> io::Result<()>) -> io::Result<()> {
        let mut deployment = Deployment::start(program)?;
        let served = serve(&mut deployment);
        #[cfg(feature = "restart")]
        if let (Err(e), Some(upgrader)) = (&served, &mut deployment.upgrader) {
            upgrader.fail(e);
        }
        served
    }

    /// Takes over what this process was started with: the sockets a
    /// previous process handed over (a restart, for a restartable program
    /// built with `restart`), the sockets systemd passed (`LISTEN_FDS`,
    /// with `systemd`), and SIGINT, SIGTERM and SIGHUP. Call it first in
    /// `main` (through [`run`](Self::run)).
    ///
    /// Built without `systemd`, sockets passed to this process are an
    /// error saying how to build it; a `NOTIFY_SOCKET` only a warning,
    /// since the server works without notifying.
    fn start(program: Program) -> io::Result<Deployment> {
        #[cfg(feature = "restart")]
        let upgrader = match program.restartable {
            true => Some(socketserver::restart::Upgrader::new()?),
            false => None,
        };
        #[cfg(feature = "systemd")]
        let activated = socketserver::systemd::ListenFds::take()?;
        #[cfg(not(feature = "systemd"))]
        check_not_under_systemd(&program)?;
        let signals =
            Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(context("cannot install the signal handlers"))?;
        Ok(Deployment {
            program,
            signals,
            socket_file: None,
            #[cfg(feature = "systemd")]
            activated,
            #[cfg(feature = "systemd")]
            watchdog: socketserver::systemd::Watchdog::from_env().map(Arc::new),
            #[cfg(feature = "restart")]
            upgrader,
            #[cfg(feature = "restart")]
            restart_name: None,
        })
    }

    /// The restart options: how long a new process gets to be ready, how
    /// long the old one serves the connections it keeps, and the program
    /// a restart starts (default: this one). Given to a binary built
    /// without `restart`, they are an error saying how to build it.
    pub fn restart_options(&mut self, options: &RestartOptions) -> io::Result<()> {
        let RestartOptions {
            ready_timeout,
            drain,
            program,
        } = options;
        #[cfg(feature = "restart")]
        if let Some(mut upgrader) = self.upgrader.take() {
            if let Some(timeout) = ready_timeout {
                upgrader = upgrader.ready_timeout(*timeout);
            }
            if let Some(limit) = drain {
                upgrader = upgrader.drain_limit(*limit);
            }
            if let Some(program) = program {
                upgrader = upgrader.program(program);
            }
            self.upgrader = Some(upgrader);
            return Ok(());
        }
        let option = match (ready_timeout, drain, program) {
            (Some(_), _, _) => "--ready-timeout",
            (_, Some(_), _) => "--drain",
            (_, _, Some(_)) => "--program",
            (None, None, None) => return Ok(()),
        };
        Err(self.program.needs_feature(option, "restart"))
    }

    /// The socket to serve on `at`: inherited from the previous process
    /// after a restart (a restartable program built with `restart`), else
    /// the first socket systemd passed, else bound with `builder`'s
    /// options. Serve it with `from_listener`.
    ///
    /// A Unix socket file this process bound is removed when serving
    /// stops, unless the socket was handed to a new process: the file
    /// outlives each process of a restart, and goes with the last.
    pub fn socket<T: Site, M: ModeMarker>(&mut self, builder: &Builder<T, M>, at: &T::At) -> io::Result<T> {
        let bind = || T::bind(builder, at).map_err(context(format!("cannot listen on {}", T::describe(at))));
        let activated = self.activated::<T>()?;
        let passed = activated.is_some();
        #[cfg(feature = "restart")]
        let socket = match &mut self.upgrader {
            Some(upgrader) => {
                let name = T::restart_name(self.program.name, at);
                let socket = upgrader.socket(&name, || match activated {
                    Some(socket) => Ok(socket),
                    None => bind(),
                })?;
                self.restart_name = Some(name);
                socket
            }
            None => match activated {
                Some(socket) => socket,
                None => bind()?,
            },
        };
        #[cfg(not(feature = "restart"))]
        let socket = match activated {
            Some(socket) => socket,
            None => bind()?,
        };
        if let Some(path) = T::file(at).filter(|_| !passed) {
            let inode = std::fs::metadata(path)
                .map_err(context(format!("cannot find the socket file {}", path.display())))?
                .ino();
            self.socket_file = Some((path.to_owned(), inode));
        }
        Ok(socket)
    }

    /// The first socket systemd passed, claimed as a `T`, or `None`.
    /// Built without `systemd`: none was passed ([`start`](Self::start)
    /// refuses to run otherwise).
    fn activated<T: Site>(&mut self) -> io::Result<Option<T>> {
        #[cfg(feature = "systemd")]
        return claim_first(&mut self.activated);
        #[cfg(not(feature = "systemd"))]
        Ok(None)
    }

    /// `builder` with a service interval short enough for the watchdog
    /// (when systemd asked for one) and for `own`, the server's own.
    pub fn watch<T, M: ModeMarker>(&self, builder: Builder<T, M>, own: Option<Duration>) -> Builder<T, M> {
        #[cfg(feature = "systemd")]
        let watchdog = self.watchdog.as_ref().map(|w| w.interval());
        #[cfg(not(feature = "systemd"))]
        let watchdog: Option<Duration> = None;
        match own.into_iter().chain(watchdog).min() {
            Some(interval) => builder.service_interval(interval),
            None => builder,
        }
    }

    /// `handler`, feeding the watchdog from the serving loop (so a stuck
    /// loop stops the pings, which is what the watchdog is for). Give the
    /// builder to [`watch`](Self::watch) too.
    pub fn watched<H>(&self, handler: H) -> Watched<H> {
        Wrapped(
            Watchdog {
                #[cfg(feature = "systemd")]
                watchdog: self.watchdog.clone(),
            },
            handler,
        )
    }

    /// Applies `--proxy-protocol` (the trusted proxies' addresses or
    /// networks) and `--proxy-header-timeout` to a stream server's
    /// builder. On a Unix socket (`unix_peers`) the socket's peers are the
    /// ones trusted. Built without `proxy-protocol`, asking for it is an
    /// error saying how to build it.
    pub fn proxy_protocol<L: Listener, M: ModeMarker>(
        &self,
        builder: Builder<L, M>,
        options: &ProxyArgs,
        unix_peers: bool,
    ) -> io::Result<Builder<L, M>> {
        let (proxies, header_timeout) = (&options.proxy_protocol, options.proxy_header_timeout);
        if proxies.is_empty() {
            return Ok(builder);
        }
        #[cfg(feature = "proxy-protocol")]
        {
            let trusted = socketserver::proxy_protocol::TrustedProxies::parse(proxies)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--proxy-protocol: {e}")))?
                .with_unix_peers(unix_peers);
            match unix_peers {
                true => log::info!("PROXY protocol: every peer of the Unix socket must send a header"),
                false => log::info!(
                    "PROXY protocol: connections from {} must send a header",
                    proxies.join(", ")
                ),
            }
            let builder = builder.proxy_protocol(trusted);
            Ok(match header_timeout {
                Some(timeout) => builder.proxy_header_timeout(timeout),
                None => builder,
            })
        }
        #[cfg(not(feature = "proxy-protocol"))]
        {
            let _ = (builder, header_timeout, unix_peers);
            Err(self.program.needs_feature("--proxy-protocol", "proxy-protocol"))
        }
    }

    /// Serves until SIGTERM or SIGINT, then stops cleanly, and logs what
    /// was served. SIGHUP restarts a restartable server (a new process
    /// takes the socket over, this one drains) and stops any other.
    ///
    /// Prints "listening on ADDR" first (tests and scripts read it to
    /// learn the port); then, under systemd, sends READY=1 and a status
    /// line, and STOPPING=1 on a stop. A restartable server also prints
    /// "ready pid N" once it serves and "exited pid N after K ..." at the
    /// end: a restarted process writes to the same output, and scripts
    /// follow the generations by these lines.
    pub fn serve<S>(&mut self, server: S, requests: &str) -> io::Result<()>
    where
        S: Server,
        S::Addr: ShowAddr,
    {
        let addr = server.local_addr().show();
        let handle = server.server_handle().clone();
        let stop = server.shutdown_handle();
        // Before serving starts: a failure leaves no serving thread behind
        // (the server, dropped, closes its socket and removes its file).
        #[cfg(feature = "restart")]
        if let (Some(upgrader), Some(name)) = (&mut self.upgrader, &self.restart_name) {
            upgrader.attach(name, &handle)?;
        }
        say(&format!("listening on {addr}"));
        // A server that stops by itself (an error) ends the wait for
        // signals.
        let signals = self.signals.handle();
        let serving = thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                let served = server.serve_forever();
                signals.close();
                served
            })
            .map_err(context("cannot start the serving thread"))?;

        let ending = self.announce_ready(&addr).map(|()| self.wait_for_signals());
        match ending {
            // The server drains by itself: it returns once its last
            // connection has moved to the new process or closed.
            Ok(Ending::HandedOver) => self.wait_while_draining(&stop),
            _ => stop.request_shutdown(),
        }
        let served = serving
            .join()
            .map_err(|_| io::Error::other("the serving thread panicked"))?;
        let stats = handle.stats();
        // A proxy's health checks, when it sends any, are told apart.
        let checks = match stats.health_checks {
            0 => String::new(),
            1 => ", 1 health check".to_owned(),
            n => format!(", {n} health checks"),
        };
        log::info!(
            "stopped after {} {requests} ({} errors, {} panics{checks})",
            stats.accepted,
            stats.errors,
            stats.panics
        );
        if ending.as_ref().is_ok_and(|ending| *ending == Ending::Stop) {
            self.remove_socket_file();
        }
        if self.program.restartable {
            say(&format!(
                "exited pid {} after {} {requests}",
                std::process::id(),
                stats.accepted
            ));
        }
        ending.and(served)
    }

    /// Says the server serves: to the previous process (which drains
    /// now), to systemd, and on standard output.
    fn announce_ready(&mut self, addr: &str) -> io::Result<()> {
        #[cfg(feature = "restart")]
        if let Some(upgrader) = &mut self.upgrader {
            upgrader.ready()?;
        }
        #[cfg(feature = "systemd")]
        {
            socketserver::systemd::ready()?;
            socketserver::systemd::status(&format!("serving on {addr}"))?;
        }
        #[cfg(not(feature = "systemd"))]
        let _ = addr;
        if self.program.restartable {
            say(&format!("ready pid {}", std::process::id()));
        }
        Ok(())
    }

    /// Waits for a signal that ends serving here, or for the server to stop
    /// by itself. A restart that fails is logged and serving goes on.
    fn wait_for_signals(&mut self) -> Ending {
        let program = self.program;
        // `forever` ends when the serving thread closes the signals.
        for signal in self.signals.forever() {
            if signal == SIGHUP && program.restartable {
                log::info!("restarting");
                #[cfg(feature = "restart")]
                let restarted = match &mut self.upgrader {
                    Some(upgrader) => upgrader.upgrade(),
                    None => Err(program.needs_feature("a restart (SIGHUP)", "restart")),
                };
                #[cfg(not(feature = "restart"))]
                let restarted: io::Result<u32> = Err(program.needs_feature("a restart (SIGHUP)", "restart"));
                match restarted {
                    Ok(pid) => {
                        log::info!("process {pid} serves now; draining");
                        return Ending::HandedOver;
                    }
                    Err(e) => log::error!("restart failed, still serving: {e}"),
                }
                continue;
            }
            log::info!("stopping");
            #[cfg(feature = "systemd")]
            if let Err(e) = socketserver::systemd::stopping() {
                log::warn!("{e}");
            }
            return Ending::Stop;
        }
        Ending::Stop
    }

    /// After a restart, while the server drains: SIGTERM or SIGINT stop
    /// it (what it still serves gets the grace period); another SIGHUP is
    /// only logged.
    fn wait_while_draining(&mut self, stop: &socketserver::ShutdownHandle) {
        for signal in self.signals.forever() {
            if signal == SIGHUP {
                log::info!("handed over already; draining");
                continue;
            }
            log::info!("stopping while draining");
            stop.request_shutdown();
            return;
        }
    }

    /// Removes the Unix socket file this server bound, if it is still the
    /// same file.
    fn remove_socket_file(&mut self) {
        let Some((path, inode)) = self.socket_file.take() else {
            return;
        };
        if std::fs::metadata(&path).is_ok_and(|m| m.ino() == inode)
            && let Err(e) = std::fs::remove_file(&path)
        {
            log::warn!("cannot remove the socket file {}: {e}", path.display());
        }
    }
}

/// A stream server's PROXY protocol options, applied by
/// [`Deployment::proxy_protocol`].
#[derive(clap::Args, Debug, Default)]
pub struct ProxyArgs {
    /// A proxy (an address, or a network such as 10.0.0.0/8; repeatable)
    /// whose connections begin with a PROXY protocol header, v1 or v2
    /// (HAProxy's send-proxy-v2): the client's address in it becomes the
    /// connection's. Anybody else sending one is refused. With --unix it
    /// trusts the socket's peers. Feature `proxy-protocol`.
    #[arg(long = "proxy-protocol", value_name = "ADDR_OR_NETWORK")]
    pub proxy_protocol: Vec<String>,
    /// How long a proxy has to send its header ("5s").
    #[arg(long, requires = "proxy_protocol", value_parser = super::parse_timeout)]
    pub proxy_header_timeout: Option<Duration>,
}

/// Prints one of the lines scripts follow. Nobody reading them any more
/// (a closed pipe) is no reason to stop serving.
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        log::debug!("cannot print {line:?}: {e}");
    }
}

/// The first passed socket, claimed as an `S`, if systemd passed any.
#[cfg(feature = "systemd")]
fn claim_first<S: socketserver::PassedSocket>(
    activated: &mut socketserver::systemd::ListenFds,
) -> io::Result<Option<S>> {
    if activated.is_empty() {
        return Ok(None);
    }
    activated
        .socket(0)
        .map(Some)
        .map_err(context("cannot serve on the socket systemd passed"))
}

/// Built without `systemd`: refuses sockets passed to this process, and
/// warns that a service manager waiting for READY=1 waits in vain.
#[cfg(not(feature = "systemd"))]
fn check_not_under_systemd(program: &Program) -> io::Result<()> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    if for_us && !matches!(count.trim(), "" | "0") {
        return Err(program.needs_feature(
            &format!(
                "serving on the {} socket(s) systemd passed (LISTEN_FDS)",
                count.trim()
            ),
            "systemd",
        ));
    }
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        log::warn!(
            "NOTIFY_SOCKET is set, but {} was built without the `systemd` feature: it sends neither \
             READY=1 nor watchdog pings (a Type=notify unit would time out); build it with \
             `--features systemd`",
            program.name
        );
    }
    Ok(())
}

/// A handler that also feeds the systemd watchdog from the serving loop
/// (its `service_actions`); everything else goes to the handler inside.
pub type Watched<H> = Wrapped<Watchdog, H>;

/// Feeds the systemd watchdog, when systemd asked for one, from the
/// serving loop: around any handler, see [`Deployment::watched`].
pub struct Watchdog {
    #[cfg(feature = "systemd")]
    watchdog: Option<Arc<socketserver::systemd::Watchdog>>,
}

impl<R: Request> Wrap<R> for Watchdog {
    fn service_actions(&self) {
        #[cfg(feature = "systemd")]
        if let Some(watchdog) = &self.watchdog {
            watchdog.ping_if_due();
        }
    }
}

/// A socket that can come from another process (systemd, a restart):
/// every socket type, in a build with `systemd` or `restart`.
#[cfg(any(feature = "systemd", feature = "restart"))]
pub trait Passable: socketserver::PassedSocket {}
#[cfg(any(feature = "systemd", feature = "restart"))]
impl<T: socketserver::PassedSocket> Passable for T {}
/// Built without `systemd` and `restart`: nothing is passed.
#[cfg(not(any(feature = "systemd", feature = "restart")))]
pub trait Passable {}
#[cfg(not(any(feature = "systemd", feature = "restart")))]
impl<T> Passable for T {}

/// A socket type the examples serve on, and what it is bound at: an
/// address for TCP and UDP, a path for a Unix socket.
pub trait Site: Transport + Passable + Sized {
    /// What it is bound at.
    type At: ?Sized;

    /// Binds it with `builder`'s options. A Unix socket file is left for
    /// the deployment to remove.
    fn bind<M: ModeMarker>(builder: &Builder<Self, M>, at: &Self::At) -> io::Result<Self>;

    /// `at`, for messages.
    fn describe(at: &Self::At) -> String;

    /// The file it makes at `at`, if it makes one.
    fn file(at: &Self::At) -> Option<&Path> {
        let _ = at;
        None
    }

    /// The name a restart hands it over by.
    fn restart_name(program: &str, at: &Self::At) -> String {
        let _ = at;
        program.to_owned()
    }
}

/// TCP and UDP sockets are bound at an address.
macro_rules! ip_site {
    ($($socket:ty),*) => {$(
        impl Site for $socket {
            type At = SocketAddr;

            fn bind<M: ModeMarker>(builder: &Builder<Self, M>, at: &SocketAddr) -> io::Result<Self> {
                builder.bind_listener(at)
            }

            fn describe(at: &SocketAddr) -> String {
                at.to_string()
            }
        }
    )*};
}
ip_site!(TcpListener, UdpSocket);

impl Site for UnixListener {
    type At = Path;

    fn bind<M: ModeMarker>(builder: &Builder<Self, M>, at: &Path) -> io::Result<Self> {
        builder.bind_listener(at)
    }

    fn describe(at: &Path) -> String {
        at.display().to_string()
    }

    fn file(at: &Path) -> Option<&Path> {
        Some(at)
    }

    fn restart_name(_program: &str, at: &Path) -> String {
        at.to_string_lossy().into_owned()
    }
}
