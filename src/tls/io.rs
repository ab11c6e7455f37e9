//! A server's socket seen as the `Read`/`Write` rustls moves records
//! through, without owning it: the request owns the socket, the session
//! borrows it for each call.

use std::io::{self, IoSlice, Read, Write};

use crate::transport::Connection;

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

/// A reader that remembers whether its last read filled the buffer it was
/// given: then more may wait in the socket, which will not say so again
/// (readiness is reported once per arrival).
pub(super) struct Counted<R> {
    pub(super) inner: R,
    pub(super) full: bool,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.full = n > 0 && n == buf.len();
        Ok(n)
    }
}

/// Writes of what the socket takes now, never waiting: `WouldBlock` when
/// its send buffer is full, whatever the socket's mode.
pub(super) struct Immediate<'a, S>(pub(super) &'a S);

impl<S: Connection> Write for Immediate<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::sys::send_now(self.0, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
