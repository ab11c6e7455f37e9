//! The request a datagram server hands its handler: one datagram.

use std::fmt;
use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use crate::control::ServerHandle;
use crate::handler::Request;
use crate::sys::{Received, recv_datagram};
use crate::transport::DatagramSocket;

/// The request of a UDP server.
pub type UdpRequest = DatagramRequest<UdpSocket>;
/// The request of a Unix-domain datagram server.
pub type UnixDatagramRequest = DatagramRequest<UnixDatagram>;

/// One received datagram, its sender, and a way to answer through the
/// server's socket.
///
/// Replying is up to the handler: unlike Python's `DatagramRequestHandler`,
/// nothing is sent back unless the handler sends it. Each worker keeps one
/// request and its buffer for all the datagrams it serves, so receiving
/// allocates nothing.
///
/// ```
/// use socketserver::{UdpRequest, UdpServer};
///
/// // Answers each datagram with its length, as text.
/// let server = UdpServer::bind("127.0.0.1:0", |req: &mut UdpRequest| {
///     let reply = req.data().len().to_string();
///     req.reply(reply.as_bytes())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DatagramRequest<S: DatagramSocket> {
    buffer: Vec<u8>,
    len: usize,
    peer: S::Addr,
    unnamed: S::Addr,
    socket: Arc<S>,
    server: ServerHandle<S::Addr>,
}

impl<S: DatagramSocket> DatagramRequest<S> {
    /// A request ready to receive datagrams of up to `capacity` bytes;
    /// `unnamed` is the address recorded for senders without one.
    pub(crate) fn new(
        socket: Arc<S>,
        server: ServerHandle<S::Addr>,
        capacity: usize,
        unnamed: S::Addr,
    ) -> Self {
        DatagramRequest {
            buffer: vec![0; capacity],
            len: 0,
            peer: unnamed.clone(),
            unnamed,
            socket,
            server,
        }
    }

    /// Receives the next datagram into this request.
    pub(crate) fn receive(&mut self) -> io::Result<Received> {
        let (received, from) = recv_datagram(&*self.socket, &mut self.buffer)?;
        self.peer = S::from_sock_addr(&from).unwrap_or_else(|| self.unnamed.clone());
        self.len = match received {
            Received::Whole(len) => len,
            Received::Truncated(_) => self.buffer.len(),
        };
        Ok(received)
    }

    /// The buffer's size: the largest datagram received whole.
    pub(crate) fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// The datagram's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// The datagram's bytes, to change in place before
    /// [`reply_data`](Self::reply_data).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[..self.len]
    }

    /// The sender's address.
    pub fn peer_addr(&self) -> &S::Addr {
        &self.peer
    }

    /// The server serving this request: its address, shutdown, stats.
    pub fn server(&self) -> &ServerHandle<S::Addr> {
        &self.server
    }

    /// The server's socket, shared by all workers: for options, or to send
    /// to several peers (as a chat room does).
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// Sends `datagram` to the sender through the server's socket.
    ///
    /// Fails with `NotConnected` if the sender has no address to answer to
    /// (a Unix client that did not bind its socket to a path), with
    /// `WouldBlock` if the reply cannot go at once (see
    /// [`send_to`](Self::send_to)), and with `WriteZero` if the OS sent
    /// less than the whole datagram.
    pub fn reply(&self, datagram: &[u8]) -> io::Result<()> {
        if !S::can_reply_to(&self.peer) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the sender's socket has no address to reply to (bind the client socket to a path)",
            ));
        }
        self.send_to(datagram, &self.peer)
    }

    /// Sends the datagram's own bytes, as changed through
    /// [`data_mut`](Self::data_mut), back to the sender: an echo without a
    /// copy.
    pub fn reply_data(&self) -> io::Result<()> {
        self.reply(self.data())
    }

    /// Sends `datagram` to `addr` through the server's socket.
    ///
    /// Never blocks: if the datagram cannot go at once (a Unix peer that
    /// does not read has a full receive queue, or the socket's send buffer
    /// is full) it is dropped and this fails with `WouldBlock`, so one
    /// client that never reads cannot stall the workers serving everyone
    /// else. Datagram delivery is not guaranteed anyway.
    pub fn send_to(&self, datagram: &[u8], addr: &S::Addr) -> io::Result<()> {
        let sent = self.socket.send_to_addr(datagram, addr).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "dropped a {}-byte datagram to {addr:?}: it cannot take more now (a peer that does not read, or a full send buffer)",
                        datagram.len()
                    ),
                )
            } else {
                e
            }
        })?;
        if sent < datagram.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", datagram.len()),
            ));
        }
        Ok(())
    }
}

impl<S: DatagramSocket> Request for DatagramRequest<S> {
    type Addr = S::Addr;

    fn peer_addr(&self) -> &S::Addr {
        &self.peer
    }
}

impl<S: DatagramSocket> fmt::Debug for DatagramRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramRequest")
            .field("peer", &self.peer)
            .field("len", &self.len)
            .finish()
    }
}
