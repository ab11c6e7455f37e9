//! Creating listening sockets with socket2, with the options set before
//! `bind` where they must be.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// The default listen backlog: the platform's `SOMAXCONN` (4096 on current
/// Linux), not Python's 5. The kernel caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: i32 = libc::SOMAXCONN;

/// Options applied to a socket before it is bound.
#[derive(Clone, Debug)]
pub(crate) struct SocketOptions {
    pub(crate) reuse_address: bool,
    pub(crate) reuse_port: bool,
    pub(crate) dual_stack: bool,
    pub(crate) backlog: i32,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
}

impl SocketOptions {
    /// Defaults for a stream listener: address reuse on, so a restarted
    /// server can bind while old connections sit in `TIME_WAIT`.
    pub(crate) fn stream() -> Self {
        SocketOptions {
            reuse_address: true,
            reuse_port: false,
            dual_stack: false,
            backlog: DEFAULT_BACKLOG,
            recv_buffer_size: None,
            send_buffer_size: None,
        }
    }
}

/// Resolves `addr` and binds a TCP listener to the first address that
/// works, like `std::net::TcpListener::bind`. On failure every socket
/// created along the way has been closed; the last error is returned.
pub(crate) fn bind_tcp(addr: impl ToSocketAddrs, options: &SocketOptions) -> io::Result<TcpListener> {
    each_addr(addr, |addr| tcp_listener(addr, options))
}

/// Tries `f` on each resolved address in turn.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolved to nothing")))
}

fn tcp_listener(addr: SocketAddr, options: &SocketOptions) -> io::Result<TcpListener> {
    // `Socket` closes its descriptor on drop, so every early return below
    // releases it: a failed bind leaks nothing.
    let socket = ip_socket(addr, Type::STREAM, Protocol::TCP, options)?;
    socket.bind(&addr.into()).map_err(|e| bind_error(e, addr))?;
    socket.listen(options.backlog)?;
    Ok(socket.into())
}

/// Creates an IP socket of the address's family with the pre-bind options
/// set. Shared by the TCP and UDP servers.
pub(crate) fn ip_socket(
    addr: SocketAddr,
    ty: Type,
    protocol: Protocol,
    options: &SocketOptions,
) -> io::Result<Socket> {
    if options.dual_stack && addr.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("dual-stack needs an IPv6 address, got {addr}"),
        ));
    }
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // Set explicitly: the OS default differs (Linux: dual-stack,
        // the BSDs: v6-only), and a server should not depend on it.
        socket.set_only_v6(!options.dual_stack)?;
    }
    // On Unix SO_REUSEADDR only lets a server rebind over TIME_WAIT
    // connections; it never lets two live listeners share a port (that is
    // SO_REUSEPORT's job), so it is safe to have on.
    socket.set_reuse_address(options.reuse_address)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(size) = options.recv_buffer_size {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = options.send_buffer_size {
        socket.set_send_buffer_size(size)?;
    }
    Ok(socket)
}

/// Adds the address to a bind error, which otherwise only says
/// "Address already in use".
fn bind_error(error: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {addr}: {error}"))
}
