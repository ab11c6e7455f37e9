//! TCP and UDP sockets.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::SocketOptions;

/// Resolves `addr` and binds a TCP listener to the first address that
/// works, like `std::net::TcpListener::bind`. On failure every socket
/// created along the way has been closed; the last error is returned.
pub(crate) fn bind_tcp(addr: impl ToSocketAddrs, options: &SocketOptions) -> io::Result<TcpListener> {
    each_addr(addr, |addr| {
        // `Socket` closes its descriptor on drop, so every early return
        // releases it: a failed bind leaks nothing.
        let socket = ip_socket(addr, Type::STREAM, Protocol::TCP, options)?;
        socket.bind(&addr.into()).map_err(|e| bind_error(e, addr))?;
        socket.listen(options.backlog)?;
        Ok(socket.into())
    })
}

/// Resolves `addr` and binds a UDP socket to the first address that works.
pub(crate) fn bind_udp(addr: impl ToSocketAddrs, options: &SocketOptions) -> io::Result<UdpSocket> {
    each_addr(addr, |addr| {
        let socket = ip_socket(addr, Type::DGRAM, Protocol::UDP, options)?;
        socket.bind(&addr.into()).map_err(|e| bind_error(e, addr))?;
        Ok(socket.into())
    })
}

/// Tries `f` on each resolved address in turn.
fn each_addr<T>(addr: impl ToSocketAddrs, mut f: impl FnMut(SocketAddr) -> io::Result<T>) -> io::Result<T> {
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

/// Creates an IP socket of the address's family with the pre-bind options
/// set.
fn ip_socket(addr: SocketAddr, ty: Type, protocol: Protocol, options: &SocketOptions) -> io::Result<Socket> {
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
    // On Unix SO_REUSEADDR lets a TCP server rebind over TIME_WAIT
    // connections; it never lets two live TCP listeners share a port
    // (SO_REUSEPORT does that).
    socket.set_reuse_address(options.reuse_address)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    options.apply_buffers(&socket)?;
    Ok(socket)
}

/// Adds the address to a bind error, which otherwise only says
/// "Address already in use".
fn bind_error(error: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {addr}: {error}"))
}
