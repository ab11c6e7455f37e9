//! Running under systemd: socket activation and service notification
//! (feature `systemd`).
//!
//! - [`ListenFds`] adopts the sockets a `.socket` unit (or
//!   `systemd-socket-activate`) passed, checked for what they are, and
//!   hands them out as std sockets for `Builder::from_listener`.
//! - [`ready`], [`stopping`], [`status`] and the watchdog ([`watchdog`],
//!   [`Watchdog`]) tell systemd how the service is doing; without
//!   `NOTIFY_SOCKET` they do nothing, so a server calls them always.
//!
//! ```no_run
//! use socketserver::systemd::{self, ListenFds};
//! use socketserver::{ThreadingTcpServer, echo::Uppercase};
//!
//! let mut activated = ListenFds::take()?;
//! let builder = ThreadingTcpServer::builder();
//! let server = match activated.is_empty() {
//!     true => builder.bind("127.0.0.1:9999", Uppercase)?,
//!     false => builder.from_listener(activated.tcp_listener(0)?, Uppercase)?,
//! };
//! systemd::ready()?;
//! let stop = server.shutdown_handle();
//! // On SIGTERM: systemd::stopping(), then stop.shutdown().
//! server.serve_forever()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The unit files in `deploy/` show the systemd side.

mod activation;
mod notify;

pub use activation::{ListenFds, Which};
pub use notify::{Watchdog, is_enabled, ready, status, stopping, watchdog, watchdog_timeout};
