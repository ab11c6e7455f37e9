//! Python's `socketserver`, done properly: write one handler, get a
//! working TCP, UDP or Unix-socket server that serves its clients on
//! pooled worker threads, shuts down at once and cleanly, and survives bad
//! clients.
//!
//! # A server in a few lines
//!
//! A handler is anything that implements [`RequestHandler`]; a closure
//! will do. This one answers each line with its uppercase:
//!
//! ```
//! use socketserver::{TcpRequest, ThreadingTcpServer};
//! use std::io::{BufRead, Write};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", |req: &mut TcpRequest| {
//!     let mut line = String::new();
//!     while req.read_line(&mut line)? > 0 {
//!         req.write_all(line.to_uppercase().as_bytes())?;
//!         line.clear();
//!     }
//!     Ok(())
//! })?;
//! println!("listening on {}", server.local_addr());
//! # let stop = server.shutdown_handle();
//! # stop.request_shutdown();
//! server.serve_forever()?; // until a ShutdownHandle stops it
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Talking to it, and stopping it
//!
//! `serve_forever` blocks, so run it on a thread of its own and keep a
//! [`ShutdownHandle`]. `shutdown` wakes the loop at once (there is no
//! polling interval), lets in-flight clients finish within a grace
//! period, closes the rest, joins the workers, and returns.
//!
//! ```
//! use socketserver::{ThreadingTcpServer, echo::Uppercase};
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::thread;
//! use std::time::Duration;
//!
//! let server = ThreadingTcpServer::builder()
//!     .shutdown_grace(Duration::from_secs(1))
//!     .bind("127.0.0.1:0", Uppercase)?;
//! let addr = *server.local_addr();
//! let stop = server.shutdown_handle();
//! let serving = thread::spawn(move || server.serve_forever());
//!
//! let mut client = TcpStream::connect(addr)?;
//! client.set_read_timeout(Some(Duration::from_secs(5)))?;
//! client.write_all(b"hello")?;
//! let mut reply = [0u8; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"HELLO");
//! drop(client);
//!
//! stop.shutdown();
//! serving.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # A handler with hooks
//!
//! Implement the trait to use Python's hooks: `setup` and `finish` around
//! `handle`, `verify_request` to turn peers away, `handle_error` to report
//! failures your way. A panic in a handler is caught, reported and counted;
//! only that client's connection is closed.
//!
//! ```
//! use socketserver::{RequestHandler, TcpRequest, TcpServer};
//! use std::io::{self, Write};
//!
//! struct Greeter;
//!
//! impl RequestHandler<TcpRequest> for Greeter {
//!     fn verify_request(&self, req: &TcpRequest) -> bool {
//!         req.peer_addr().ip().is_loopback()
//!     }
//!
//!     fn handle(&self, req: &mut TcpRequest) -> io::Result<()> {
//!         let peer = *req.peer_addr();
//!         writeln!(req, "hello, {peer}")
//!     }
//!
//!     fn handle_error(&self, req: &TcpRequest, error: &io::Error) {
//!         eprintln!("{:?}: {error}", req.peer_addr());
//!     }
//! }
//!
//! let server = TcpServer::bind("127.0.0.1:0", Greeter)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Choosing a server
//!
//! A server is a transport and a [`Mode`]; its type's name says both.
//!
//! | type | serves | like Python's |
//! |---|---|---|
//! | [`TcpServer`] | one connection at a time, on the loop thread | `TCPServer` |
//! | [`ThreadingTcpServer`] | each connection on a pooled worker, for its life | `ThreadingTCPServer` |
//! | [`ParkedTcpServer`] | each request on a pooled worker; between requests a connection waits in epoll, holding no thread | `http.server`'s keep-alive, without a thread per idle client |
//! | [`UdpServer`] | one datagram at a time, on the loop thread | `UDPServer` |
//! | [`ThreadingUdpServer`] | datagrams on workers sharing the socket | `ThreadingUDPServer` |
//! | [`UnixStreamServer`], [`ThreadingUnixStreamServer`], [`ParkedUnixStreamServer`] | Unix-domain streams | the same names |
//! | [`UnixDatagramServer`], [`ThreadingUnixDatagramServer`] | Unix-domain datagrams | the same names |
//!
//! Every stream server runs both handler styles (see [`handler`]): a
//! looping [`RequestHandler`] (the whole conversation in `handle`) and a
//! per-request [`KeepAliveHandler`] (one request per `handle_one`, the
//! server loops). Write a per-request handler and switching modes is one
//! word, in either direction, the handler unchanged:
//!
//! ```
//! use socketserver::{ParkedTcpServer, ThreadingTcpServer, echo::Uppercase};
//!
//! let threading = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?; // a thread per connection
//! let parked = ParkedTcpServer::bind("127.0.0.1:0", Uppercase)?; // 19,000 idle clients in a few MB
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! or, chosen at run time, one builder call:
//! `ThreadingTcpServer::builder().mode(Mode::Parked)`.
//!
//! A datagram handler gets a [`DatagramRequest`] and answers (or not)
//! through the server's socket:
//!
//! ```
//! use socketserver::{ThreadingUdpServer, UdpRequest};
//!
//! let server = ThreadingUdpServer::bind("127.0.0.1:0", |req: &mut UdpRequest| {
//!     req.data_mut().make_ascii_uppercase();
//!     req.reply_data()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Options (worker counts, timeouts, backlog, socket options, overload
//! policy) are set through each type's `builder()`; see [`Builder`], and
//! [`config`] for the defaults. The generic types behind the names
//! (`StreamServer`, `DatagramServer`, the mode markers and transports)
//! are in [`server`], for code generic over servers.
//!
//! # Messages, not bytes
//!
//! TCP is a byte stream: two writes can arrive as one read, and one as two
//! (the tutorials' "sticky packets"). [`framing`] puts a length prefix in
//! front of each message so its boundaries survive; with the `message`
//! feature, `message` adds a JSON header and a streamed
//! body (and file transfer); with the `auth` feature, `auth` verifies
//! clients with an HMAC challenge before any handler runs.
//!
//! ```
//! use socketserver::framing::Framed;
//! use socketserver::{TcpRequest, ThreadingTcpServer};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", |req: &mut TcpRequest| {
//!     let mut framed = Framed::new(req);
//!     while let Some(message) = framed.read_frame()? {
//!         framed.write_frame(&message.to_ascii_uppercase())?;
//!     }
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Messages
//!
//! | module | feature | what |
//! |---|---|---|
//! | [`framing`] | always | length-prefixed frames |
//! | `message` | `message` | JSON header + streamed body; file transfer |
//! | `auth` | `auth` | HMAC-SHA256 challenge-response |
//! | `proxy_protocol` | `proxy-protocol` | PROXY protocol v1/v2 headers from load balancers: parse, read off a socket, encode; trusted proxy networks |
//! | `tls` | `tls` | TLS over rustls: sessions, certificates from PEM files, client certificates, certificate rotation |
//!
//! # Deployment
//!
//! | module | feature | what |
//! |---|---|---|
//! | `systemd` | `systemd` | socket activation (`ListenFds`), readiness, status and watchdog notifications |
//! | `restart` | `restart` | restarting without dropping a connection: the `Upgrader` hands the listening sockets to a new process |
//!
//! Several processes can also share one port with the builder's
//! `reuse_port`; `deploy/` in the repository has systemd units and an
//! HAProxy configuration.
//!
//! # Platforms
//!
//! Unix-like systems (Linux, macOS, the BSDs); the loops wait with mio
//! (epoll, kqueue). Handler panics are caught, so build with
//! `panic = "unwind"` (the default).

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly) marks the items each feature adds.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Unsafe code and libc calls live in `sys` alone; elsewhere libc only
// supplies constants (errno values, `SOMAXCONN`, a send flag).
#![deny(unsafe_code)]

pub mod handler;
mod pool;
mod request;
mod socket;
#[allow(unsafe_code)]
mod sys;
mod transport;

#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub mod auth;
pub mod config;
mod control;
#[cfg(any(
    feature = "tls",
    feature = "auth",
    feature = "proxy-protocol",
    feature = "restart"
))]
mod deadline;
pub mod echo;
pub mod framing;
#[cfg(feature = "message")]
#[cfg_attr(docsrs, doc(cfg(feature = "message")))]
pub mod message;
#[cfg(feature = "proxy-protocol")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy-protocol")))]
pub mod proxy_protocol;
#[cfg(feature = "restart")]
#[cfg_attr(docsrs, doc(cfg(feature = "restart")))]
pub mod restart;
pub mod server;
#[cfg(feature = "systemd")]
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub mod systemd;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

pub use config::OverloadPolicy;
pub use handler::{HandlerPanic, KeepAliveHandler, Next, Request, RequestHandler, StreamHandler};
pub use request::{
    DatagramRequest, StreamRequest, TcpRequest, UdpRequest, UnixDatagramRequest, UnixStreamRequest,
};
pub use server::{
    Builder, Mode, ParkedTcpServer, ParkedUnixStreamServer, Server, ServerHandle, ShutdownHandle, Stats,
    TcpServer, ThreadingTcpServer, ThreadingUdpServer, ThreadingUnixDatagramServer,
    ThreadingUnixStreamServer, UdpServer, UnixDatagramServer, UnixStreamServer,
};
#[cfg(any(feature = "systemd", feature = "restart"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "systemd", feature = "restart"))))]
pub use socket::{PassedSocket, SocketKind};

/// The README's code blocks, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
