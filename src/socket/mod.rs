//! Creating the servers' sockets through socket2, with the options that
//! must come before `bind` set before it.

mod ip;
#[cfg(any(feature = "systemd", feature = "restart"))]
mod passed;
mod unix;

pub(crate) use ip::{bind_tcp, bind_udp};
#[cfg(any(feature = "systemd", feature = "restart"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "systemd", feature = "restart"))))]
pub use passed::{PassedSocket, SocketKind};
#[cfg(any(feature = "systemd", feature = "restart"))]
pub(crate) use passed::{check_kind, parse_number};
pub(crate) use unix::{SocketFile, bind_unix_datagram, bind_unix_listener};

use crate::config::DEFAULT_BACKLOG;

/// Options applied to a socket before it is bound (and, for a Unix
/// socket, right after).
#[derive(Clone, Debug)]
pub struct SocketOptions {
    pub(crate) reuse_address: bool,
    pub(crate) reuse_port: bool,
    pub(crate) dual_stack: bool,
    pub(crate) backlog: i32,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
    /// Mode bits for a Unix socket's file.
    pub(crate) permissions: Option<u32>,
}

impl SocketOptions {
    /// Defaults for a TCP listener: address reuse on, so a restarted
    /// server can bind while old connections sit in `TIME_WAIT`.
    pub(crate) fn tcp() -> Self {
        SocketOptions {
            reuse_address: true,
            reuse_port: false,
            dual_stack: false,
            backlog: DEFAULT_BACKLOG,
            recv_buffer_size: None,
            send_buffer_size: None,
            permissions: None,
        }
    }

    /// Defaults for a UDP socket, and for Unix-domain ones (where address
    /// reuse does not apply): address reuse off, as in Python's
    /// `UDPServer`, because on Linux it would let a second UDP server bind
    /// the same port and silently take part of the traffic.
    pub(crate) fn without_address_reuse() -> Self {
        SocketOptions {
            reuse_address: false,
            ..SocketOptions::tcp()
        }
    }

    /// Sets the buffer sizes, common to every kind of socket.
    fn apply_buffers(&self, socket: &socket2::Socket) -> std::io::Result<()> {
        if let Some(size) = self.recv_buffer_size {
            socket.set_recv_buffer_size(size)?;
        }
        if let Some(size) = self.send_buffer_size {
            socket.set_send_buffer_size(size)?;
        }
        Ok(())
    }
}
