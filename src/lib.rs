//! Python's `socketserver`, done properly: write one handler, get a
//! working TCP, UDP or Unix-socket server that serves its clients on
//! pooled worker threads (or parks idle connections with no thread at
//! all), shuts down at once and cleanly, and survives bad clients.
//!
//! # A server in one handler
//!
//! A handler is the one piece you write. This one answers each line with
//! its uppercase, one request per call; the server does the looping, the
//! threads and the shutdown:
//!
//! ```
//! use socketserver::{KeepAliveHandler, Next, TcpRequest, ThreadingTcpServer};
//! use std::io::{self, BufRead, Write};
//!
//! /// Answers each line with its uppercase; the connection stays open.
//! struct Uppercase;
//!
//! impl KeepAliveHandler<TcpRequest> for Uppercase {
//!     type State = (); // nothing kept between two requests
//!
//!     fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
//!         let mut line = String::new();
//!         if request.read_line(&mut line)? == 0 {
//!             return Ok(Next::Close); // the client has gone
//!         }
//!         request.write_all(line.to_uppercase().as_bytes())?;
//!         Ok(Next::KeepOpen)
//!     }
//! }
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?;
//! let addr = *server.local_addr(); // port 0: the one the OS chose
//! let stop = server.shutdown_handle(); // clone it, move it anywhere
//! let serving = std::thread::spawn(move || server.serve_forever());
//!
//! // A client: one line out, its uppercase back.
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
//! client.write_all(b"hello\n")?;
//! let mut reply = String::new();
//! io::BufReader::new(&client).read_line(&mut reply)?;
//! assert_eq!(reply, "HELLO\n");
//!
//! stop.shutdown(); // wakes the loop at once, drains, joins the workers
//! serving.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A closure is a handler too, and so is a looping [`RequestHandler`]
//! (Python's `handle`: the whole conversation in one call). Errors and
//! panics in a handler end that connection only, go to `handle_error`
//! and are counted in [`Stats`].
//!
//! # Choosing a mode
//!
//! A server is a transport and a [`Mode`]; its type's name says both.
//!
//! | mode | a connection holds | fits | TCP | Unix stream | UDP, Unix datagram |
//! |---|---|---|---|---|---|
//! | serial | the loop thread, for its life | tests, one client at a time (Python's `TCPServer`) | [`TcpServer`] | [`UnixStreamServer`] | [`UdpServer`], [`UnixDatagramServer`] |
//! | threading | a pooled worker, for its life | a few thousand busy clients, long conversations (Python's `ThreadingTCPServer`) | [`ThreadingTcpServer`] | [`ThreadingUnixStreamServer`] | [`ThreadingUdpServer`], [`ThreadingUnixDatagramServer`] |
//! | parked | a worker only while one request is served; between requests nothing but its socket, waiting in epoll | many mostly idle clients, slow or untrusted clients, keep-alive protocols | [`ParkedTcpServer`] | [`ParkedUnixStreamServer`] | |
//!
//! With a per-request handler ([`KeepAliveHandler`]), switching modes is
//! one word, the handler unchanged:
//!
//! ```
//! # use socketserver::echo::Uppercase;
//! use socketserver::{ParkedTcpServer, ThreadingTcpServer};
//!
//! let threading = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?; // a thread per connection
//! let parked = ParkedTcpServer::bind("127.0.0.1:0", Uppercase)?; // a thread per request
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! or, chosen at run time, one builder call:
//! `ThreadingTcpServer::builder().mode(Mode::Parked)` ([`Builder::mode`]).
//! Options (workers, timeouts, backlog, socket options, overload policy)
//! go through each type's `builder()`; the defaults are in [`config`].
//! The generic types behind the names (`StreamServer`, `DatagramServer`,
//! the mode markers) are in [`server`], for code generic over servers;
//! the handler traits and their lifecycle in [`handler`].
//!
//! # The manual
//!
//! [`manual`] has the rest, chapter by chapter, every example a doc test:
//!
//! 1. [The handler and its lifecycle](manual::_01_handler)
//! 2. [The three modes, and how to choose](manual::_02_modes)
//! 3. [Datagram and Unix servers](manual::_03_datagram_and_unix)
//! 4. [Framing and sticky packets](manual::_04_framing)
//! 5. [Messages and file transfer](manual::_05_messages)
//! 6. [Client verification](manual::_06_client_verification)
//! 7. [TLS](manual::_07_tls)
//! 8. [The PROXY protocol and load balancers](manual::_08_proxy_protocol)
//! 9. [Running in production](manual::_09_production)
//! 10. [Performance, and how to measure it](manual::_10_performance)
//! 11. [Coming from Python's socketserver](manual::_11_from_python)
//!
//! # Features
//!
//! The default build has the servers, the handlers, [`framing`] and
//! [`echo`]; each feature adds a module (docs.rs marks its items):
//!
//! | feature | module | what |
//! |---|---|---|
//! | `message` | `message` | JSON header + streamed body; file transfer with SHA-256 |
//! | `auth` | `auth` | HMAC-SHA256 challenge-response before any handler runs |
//! | `tls` | `tls` | TLS over rustls: certificates from PEM files, client certificates, rotation; `Builder::tls` |
//! | `proxy-protocol` | `proxy_protocol` | PROXY protocol v1/v2 headers from load balancers; `Builder::proxy_protocol` |
//! | `systemd` | `systemd` | socket activation, readiness, status and watchdog notifications |
//! | `restart` | `restart` | restarting without dropping a connection: the listening sockets handed to a new process |
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
pub mod manual;
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
