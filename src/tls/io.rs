//! A server's socket seen as the `Read`/`Write` rustls moves records
//! through, without owning it: the request owns the socket, the session
//! borrows it for each call.

use std::io::{self, IoSlice, Read, Write};

use crate::server::Connection;

/// Blocking reads and writes through the socket's shared-reference I/O,
/// bounded by the socket's timeouts.
pub(super) struct Blocking<'a, S>(pub(super) &'a S);

impl<S: Connection> Read for Blocking<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_shared(buf)
    }
}

impl<S: Connection> Write for Blocking<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_shared(buf)
    }

    // rustls hands over every queued record at once.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored_shared(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads of what has arrived, never waiting for more: `WouldBlock` when
/// nothing is there, whatever the socket's mode.
pub(super) struct Arrived<'a, S>(pub(super) &'a S);

impl<S: Connection> Read for Arrived<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::sys::recv_now(self.0, buf)
    }
}
