//! The request a stream server hands its handler: one connection.

use std::fmt;
use std::io::{self, BufRead, IoSlice, IoSliceMut, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use crate::handler::Request;
use crate::server::ServerHandle;
use crate::transport::Connection;

/// The request of a TCP server.
pub type TcpRequest = StreamRequest<TcpStream>;
/// The request of a Unix-domain stream server.
pub type UnixStreamRequest = StreamRequest<UnixStream>;

/// One accepted connection, for the whole of its life.
///
/// It reads and writes like the stream itself ([`Read`], [`Write`]), and
/// offers buffered reading ([`BufRead`]: `read_line`, `lines`,
/// `read_until`) the way Python's `StreamRequestHandler.rfile` does.
/// Reads go through a read-ahead buffer (the worker's, reused from one
/// connection to the next) with the same rules as [`std::io::BufReader`]:
/// reads at least as large as the buffer bypass it. Writes go straight to
/// the socket, unbuffered, like Python's default `wfile`: send each reply
/// in one `write_all` (or a vectored write), not in many small pieces.
///
/// The server closes the connection after the handler's `finish`.
pub struct StreamRequest<S: Connection> {
    stream: S,
    peer: S::Addr,
    server: ServerHandle<S::Addr>,
    buffer: Vec<u8>,
    capacity: usize,
    pos: usize,
    filled: usize,
}

impl<S: Connection> StreamRequest<S> {
    /// `buffer` is reused storage for read-ahead; it grows to `capacity`
    /// the first time buffered reading needs it.
    pub(crate) fn new(
        stream: S,
        peer: S::Addr,
        server: ServerHandle<S::Addr>,
        buffer: Vec<u8>,
        capacity: usize,
    ) -> Self {
        StreamRequest {
            stream,
            peer,
            server,
            buffer,
            capacity: capacity.max(1),
            pos: 0,
            filled: 0,
        }
    }

    /// Closes the connection and gives the read-ahead storage back for the
    /// next one.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// The client's address.
    pub fn peer_addr(&self) -> &S::Addr {
        &self.peer
    }

    /// The server serving this request: its address, shutdown, stats.
    pub fn server(&self) -> &ServerHandle<S::Addr> {
        &self.server
    }

    /// The connected socket, for its options (timeouts, `peer_addr`,
    /// `try_clone`). Reading from it directly skips the bytes already
    /// read ahead; see [`buffered`](Self::buffered).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The connected socket, mutably. Reading from it directly skips the
    /// bytes already read ahead; see [`buffered`](Self::buffered).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Bytes read ahead from the socket and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer[self.pos..self.filled]
    }
}

impl<S: Connection> Request for StreamRequest<S> {
    type Addr = S::Addr;

    fn peer_addr(&self) -> &S::Addr {
        &self.peer
    }
}

impl<S: Connection> Read for StreamRequest<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.filled && out.len() >= self.capacity {
            return self.stream.read(out);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.pos == self.filled && total >= self.capacity {
            return self.stream.read_vectored(bufs);
        }
        let n = self.fill_buf()?.read_vectored(bufs)?;
        self.consume(n);
        Ok(n)
    }
}

impl<S: Connection> BufRead for StreamRequest<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            if self.buffer.len() < self.capacity {
                self.buffer.resize(self.capacity, 0);
            }
            let n = self.stream.read(&mut self.buffer[..self.capacity])?;
            self.pos = 0;
            self.filled = n;
        }
        Ok(&self.buffer[self.pos..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

impl<S: Connection> Write for StreamRequest<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<S: Connection> fmt::Debug for StreamRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamRequest")
            .field("peer", &self.peer)
            .field("buffered", &(self.filled - self.pos))
            .finish()
    }
}
