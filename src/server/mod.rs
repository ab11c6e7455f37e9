//! The servers, and the generic types behind their names.
//!
//! Python builds `ThreadingTCPServer` by mixing `ThreadingMixIn` into
//! `TCPServer`. Here the serving skeleton is written once (its
//! `serve_forever` and `handle_request`), one engine per transport kind
//! (stream, datagram) takes requests in, and the [`Mode`], a value chosen
//! when the server is built, decides how they are dispatched: serially on
//! the loop thread, on a pool of workers (a connection holds its worker
//! for its life), or parked (a connection waits in the loop between
//! requests and a worker serves one request at a time). The names users
//! write ([`TcpServer`], [`ThreadingUdpServer`], ...) are aliases whose
//! [`ModeMarker`] picks the mode; the types here are for code generic
//! over them.

mod backoff;
mod base;
mod builder;
mod core;
mod datagram;
pub(crate) mod lifecycle;
mod options;
mod stream;
mod wind_down;

use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};

pub use crate::control::Stats;
pub use crate::control::{ServerHandle, ShutdownHandle};
pub use crate::transport::{Connection, DatagramSocket, Listener};
pub use base::Server;
pub use builder::{BindTo, Builder, IpTransport, Serves, Transport, UnixTransport};
pub use datagram::DatagramServer;
pub use stream::StreamServer;

use crate::transport::Sealed;

/// How a server serves its clients, chosen when it is built: by the
/// server type's name ([`ThreadingTcpServer`] is threading), or at run
/// time with [`Builder::mode`].
///
/// | mode | a connection holds | fits |
/// |---|---|---|
/// | `Serial` | the server's one thread, for its life | tests, one client at a time (Python's `TCPServer`) |
/// | `Threading` | a pooled worker, for its life | a few thousand busy clients, long conversations (Python's `ThreadingTCPServer`) |
/// | `Parked` | a worker only while a request is served; between requests nothing but its socket | many mostly idle clients, slow clients, keep-alive protocols |
///
/// Every stream server runs both handler styles; parking between
/// requests needs a per-request handler ([`KeepAliveHandler`](crate::KeepAliveHandler)).
/// Datagram servers are serial or threading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// One request at a time, on the thread that runs the loop.
    Serial,
    /// Each connection (datagram) on a pooled worker.
    Threading,
    /// Connections wait in the loop's readiness set between requests;
    /// pooled workers serve one request at a time.
    Parked,
}

impl Mode {
    /// The mode's name, as `Debug` output and logs show it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Serial => "serial",
            Mode::Threading => "threading",
            Mode::Parked => "parked",
        }
    }
}

mod marker {
    /// What a mode marker means inside the crate; not nameable outside.
    pub trait DefaultMode {
        /// The mode a builder starts with.
        const MODE: super::Mode;
    }
}

/// The type-level name of a server's mode, which picks the mode its
/// `bind` and `builder` start with: [`Serial`], [`Threading`], [`Parked`],
/// or [`AnyMode`] for a mode chosen at run time with [`Builder::mode`].
/// The server keeps its mode as a value; the marker only names it.
pub trait ModeMarker: Sealed + marker::DefaultMode + Send + Sync + 'static {}

macro_rules! mode_marker {
    ($(#[$doc:meta])* $name:ident => $mode:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub enum $name {}
        impl Sealed for $name {}
        impl marker::DefaultMode for $name {
            const MODE: Mode = $mode;
        }
        impl ModeMarker for $name {}
    };
}

mode_marker!(
    /// [`Mode::Serial`]: Python's `TCPServer` and `UDPServer`.
    Serial => Mode::Serial
);
mode_marker!(
    /// [`Mode::Threading`]: Python's `ThreadingMixIn`, with threads reused
    /// and bounded.
    Threading => Mode::Threading
);
mode_marker!(
    /// [`Mode::Parked`]: the half-sync/half-async shape of Jetty's and
    /// Tomcat's NIO connectors.
    Parked => Mode::Parked
);
mode_marker!(
    /// A mode chosen at run time ([`Builder::mode`]); threading unless
    /// one is chosen.
    AnyMode => Mode::Threading
);

/// TCP, one connection at a time (Python's `TCPServer`).
pub type TcpServer<H> = StreamServer<TcpListener, Serial, H>;
/// TCP, each connection on a pooled worker (Python's `ThreadingTCPServer`).
pub type ThreadingTcpServer<H> = StreamServer<TcpListener, Threading, H>;
/// TCP, connections parked between requests, requests served on pooled
/// workers: many mostly idle clients, slow clients, keep-alive protocols.
pub type ParkedTcpServer<H> = StreamServer<TcpListener, Parked, H>;
/// UDP, one datagram at a time (Python's `UDPServer`).
pub type UdpServer<H> = DatagramServer<UdpSocket, Serial, H>;
/// UDP, datagrams served by pooled workers (Python's `ThreadingUDPServer`).
pub type ThreadingUdpServer<H> = DatagramServer<UdpSocket, Threading, H>;
/// Unix-domain stream socket, one connection at a time.
pub type UnixStreamServer<H> = StreamServer<UnixListener, Serial, H>;
/// Unix-domain stream socket, each connection on a pooled worker.
pub type ThreadingUnixStreamServer<H> = StreamServer<UnixListener, Threading, H>;
/// Unix-domain stream socket, connections parked between requests.
pub type ParkedUnixStreamServer<H> = StreamServer<UnixListener, Parked, H>;
/// Unix-domain datagram socket, one datagram at a time.
pub type UnixDatagramServer<H> = DatagramServer<UnixDatagram, Serial, H>;
/// Unix-domain datagram socket, datagrams served by pooled workers.
pub type ThreadingUnixDatagramServer<H> = DatagramServer<UnixDatagram, Threading, H>;

/// Stands for the handler in `ThreadingTcpServer::builder()` and the like,
/// which are called before the handler is chosen; it serves nothing.
#[derive(Clone, Copy, Debug)]
pub enum NoHandler {}
