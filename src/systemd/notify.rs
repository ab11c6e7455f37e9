//! Telling systemd how the service is doing (`sd_notify(3)`), through the
//! `sd-notify` crate: ready, stopping, a status line, and the watchdog.
//!
//! Every function sends one datagram to the socket named by
//! `NOTIFY_SOCKET`, and does nothing (successfully) when that variable is
//! not set, so a server calls them unconditionally and runs the same with
//! or without systemd.

use std::io;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sd_notify::NotifyState;

const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether a service manager listens for notifications (`NOTIFY_SOCKET`
/// is set).
pub fn is_enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some()
}

/// Says the service is ready (`READY=1`), and that this process is its
/// main process (`MAINPID=`): after a restart that handed the sockets to a
/// new process, the new one becomes the process systemd watches. Accepting
/// `MAINPID=` from a process other than the one systemd started needs
/// `NotifyAccess=all` in the unit.
pub fn ready() -> io::Result<()> {
    send(&[NotifyState::Ready, NotifyState::MainPid(std::process::id())])
}

/// Says the service is shutting down (`STOPPING=1`). A process that has
/// handed its sockets to a successor must not send it: the service goes
/// on.
pub fn stopping() -> io::Result<()> {
    send(&[NotifyState::Stopping])
}

/// A one-line status shown by `systemctl status` (`STATUS=`). Line breaks
/// become spaces, so the text cannot carry other assignments.
pub fn status(text: &str) -> io::Result<()> {
    let line = text.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)])
}

/// Tells the watchdog the service is alive (`WATCHDOG=1`). Send it at
/// least every half of [`watchdog_timeout`], or use [`Watchdog`].
pub fn watchdog() -> io::Result<()> {
    send(&[NotifyState::Watchdog])
}

/// How long systemd waits for a [`watchdog`] ping before it considers the
/// service hung (`WATCHDOG_USEC`, from `WatchdogSec=`), or `None` if the
/// watchdog is off or meant for another process (`WATCHDOG_PID`).
pub fn watchdog_timeout() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero())
}

fn send(state: &[NotifyState<'_>]) -> io::Result<()> {
    sd_notify::notify(state).map_err(|e| {
        let socket = std::env::var_os(NOTIFY_SOCKET).unwrap_or_default();
        io::Error::new(
            e.kind(),
            format!("cannot notify systemd at {}: {e}", socket.to_string_lossy()),
        )
    })
}

/// Pings the watchdog when a ping is due, however often it is asked to: a
/// server calls [`ping_if_due`](Self::ping_if_due) from its loop (its
/// `service_actions` hook, with the builder's `service_interval` set to
/// [`interval`](Self::interval)), so the pings stop when the loop stops.
///
/// ```
/// use socketserver::handler::{Wrap, Wrapped};
/// use socketserver::systemd::Watchdog;
/// use socketserver::{Request, ThreadingTcpServer, echo::Uppercase};
///
/// /// Pings from the serving loop, around any handler.
/// struct Pinger(Option<Watchdog>);
///
/// impl<R: Request> Wrap<R> for Pinger {
///     fn service_actions(&self) {
///         if let Some(watchdog) = &self.0 {
///             watchdog.ping_if_due();
///         }
///     }
/// }
///
/// let watchdog = Watchdog::from_env(); // None unless systemd asked for it
/// let mut builder = ThreadingTcpServer::builder();
/// if let Some(watchdog) = &watchdog {
///     builder = builder.service_interval(watchdog.interval());
/// }
/// let server = builder.bind("127.0.0.1:0", Wrapped(Pinger(watchdog), Uppercase))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl Watchdog {
    /// A watchdog pinger if systemd asked for one ([`watchdog_timeout`]).
    pub fn from_env() -> Option<Watchdog> {
        watchdog_timeout().map(Watchdog::with_timeout)
    }

    /// A pinger for a watchdog with this timeout: it pings every quarter
    /// of it, which leaves room for a loop that wakes late.
    pub fn with_timeout(timeout: Duration) -> Watchdog {
        Watchdog {
            interval: timeout / 4,
            last: Mutex::new(None),
        }
    }

    /// How often a ping is due.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Pings if none was sent for [`interval`](Self::interval); a failed
    /// ping is logged and retried on the next call.
    pub fn ping_if_due(&self) {
        let mut last = self.last.lock();
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.interval) {
            return;
        }
        match watchdog() {
            Ok(()) => *last = Some(now),
            Err(e) => log::warn!("{e}"),
        }
    }
}
