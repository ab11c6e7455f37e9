//! One connection's TLS session, run over a blocking socket it borrows
//! for each call.
//!
//! rustls does the protocol and keeps two buffers of its own: records read
//! but not yet decrypted (at most one partial record is ever left there,
//! since every read is followed by decrypting all complete records), and
//! plaintext decrypted but not yet read. The second is what a parked
//! server must watch: bytes there will never make the socket readable
//! again ([`TlsSession::has_buffered_plaintext`]). Every method sends what
//! rustls queued before it returns (handshake flights, session tickets,
//! alerts, key updates, the records of a write), so no session ever holds
//! records it owes the peer when it is put aside.

use std::io::{self, IoSlice, Read, Write};
use std::time::Instant;

use rustls::ServerConnection;

use super::TlsInfo;
use super::TlsTruncated;
use super::io::{Arrived, Blocking, Counted, Immediate};
use crate::deadline::{ReadDeadline, with_read_deadline};
use crate::transport::Connection;

/// The TLS side of one connection. The socket stays with the request; each
/// call borrows it. The socket must be in blocking mode: a non-blocking one
/// would turn the blocking methods' waits into spinning.
pub(crate) struct TlsSession {
    connection: ServerConnection,
    /// Decrypted bytes rustls holds that no read has taken yet.
    plaintext: usize,
    /// The last read from the socket filled what rustls asked for: more
    /// may be waiting there.
    socket_full: bool,
    /// Plaintext was read since the last write: a truncation now may have
    /// cut a request short ([`TlsTruncated::between_requests`]).
    unanswered: bool,
}

impl TlsSession {
    pub(crate) fn new(connection: ServerConnection) -> Self {
        TlsSession {
            connection,
            plaintext: 0,
            socket_full: false,
            unanswered: false,
        }
    }

    /// Runs the whole handshake, blocking, within `deadline`: before each
    /// read the socket's read timeout is set to the time left (and put back
    /// as it was at the end), so a client trickling its hello byte by byte
    /// cannot stretch it. Writes are bounded by the socket's write timeout.
    ///
    /// Fails with `TimedOut` past the deadline, `InvalidData` wrapping
    /// rustls's [`rustls::Error`] for anything the peer sent that is not a
    /// valid handshake (garbage, an alert such as an unknown CA, a missing
    /// client certificate), `UnexpectedEof` if the peer closes first, or
    /// the socket's error.
    pub(crate) fn handshake<S: Connection>(&mut self, sock: &S, deadline: Instant) -> io::Result<()> {
        with_read_deadline(sock, deadline, |bounded| self.handshake_until(sock, bounded))
    }

    fn handshake_until<S: Connection>(&mut self, sock: &S, bounded: &ReadDeadline<'_>) -> io::Result<()> {
        loop {
            self.send_pending(sock)?;
            if !self.connection.is_handshaking() {
                return Ok(());
            }
            bounded.arm_or(handshake_timed_out)?;
            match self.read_tls_from(Blocking(sock)) {
                Ok(0) => return Err(eof_in_handshake()),
                Ok(_) => self.process(sock)?,
                Err(e) => bounded.retry(e)?,
            }
        }
    }

    /// Advances the handshake with what has arrived, without ever waiting
    /// for the peer: reads until the socket has nothing more, sends what
    /// rustls answers (those writes may block briefly, bounded by the
    /// socket's write timeout). `Ok(true)` once the handshake is complete,
    /// `Ok(false)` when it needs more bytes from the peer: wait for the
    /// socket to become readable and call again. Errors as for
    /// [`handshake`](Self::handshake), except that there is no timeout of
    /// its own: the caller keeps the deadline.
    ///
    /// The client's first request often arrives with its last handshake
    /// flight: check [`has_buffered_plaintext`](Self::has_buffered_plaintext)
    /// after `Ok(true)` before waiting for the socket.
    pub(crate) fn handshake_step<S: Connection>(&mut self, sock: &S) -> io::Result<bool> {
        loop {
            self.send_pending(sock)?;
            if !self.connection.is_handshaking() {
                return Ok(true);
            }
            match self.read_tls_from(Arrived(sock)) {
                Ok(0) => return Err(eof_in_handshake()),
                Ok(_) => self.process(sock)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads plaintext into `buf`, blocking (up to the socket's read
    /// timeout) while none is decrypted yet; the bytes are copied from
    /// rustls's buffer straight into `buf`.
    ///
    /// `Ok(0)` only once the peer has sent `close_notify` (a clean end);
    /// the request above turns the truncation a server's forced close at
    /// shutdown causes into `Ok(0)` too.
    /// A peer that closes the connection without it is an error of kind
    /// `UnexpectedEof` wrapping [`TlsTruncated`]; corrupt or forged
    /// records are `InvalidData`; a read timeout is the socket's
    /// `WouldBlock`/`TimedOut`.
    pub(crate) fn read<S: Connection>(&mut self, sock: &S, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plaintext(sock, buf, true)
    }

    /// Reads plaintext into `buf` without waiting for the peer: what is
    /// decrypted already, or what the records that have arrived decrypt
    /// to. `WouldBlock` when nothing has arrived; otherwise as
    /// [`read`](Self::read).
    pub(crate) fn read_now<S: Connection>(&mut self, sock: &S, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plaintext(sock, buf, false)
    }

    /// [`read`](Self::read) when `wait`, else [`read_now`](Self::read_now).
    fn read_plaintext<S: Connection>(&mut self, sock: &S, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.connection.reader().read(buf) {
                Ok(n) => {
                    self.plaintext = self.plaintext.saturating_sub(n);
                    self.unanswered |= n > 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.receive(sock, wait)?,
                Err(e) => return Err(reader_error(e, !self.unanswered)),
            }
        }
    }

    /// Whether more plaintext may come without the socket becoming
    /// readable again: rustls holds some, or the last read from the
    /// socket took all it asked for.
    pub(crate) fn maybe_more(&self) -> bool {
        self.plaintext > 0 || self.socket_full
    }

    /// One read of records from the socket into rustls.
    fn read_tls_from(&mut self, reader: impl io::Read) -> io::Result<usize> {
        let mut counted = Counted {
            inner: reader,
            full: false,
        };
        let read = self.connection.read_tls(&mut counted);
        self.socket_full = read.is_ok() && counted.full;
        read
    }

    /// Takes in what the socket has (one read: blocking when `wait`, else
    /// `WouldBlock` when nothing has arrived), decrypts it, and sends what
    /// rustls answered (a key update, an alert).
    fn receive<S: Connection>(&mut self, sock: &S, wait: bool) -> io::Result<()> {
        let read = if wait {
            self.read_tls_from(Blocking(sock))
        } else {
            self.read_tls_from(Arrived(sock))
        };
        match read {
            // At end of stream rustls remembers the EOF; the reader then
            // tells a clean end from a truncation.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.process(sock)?;
        self.send_pending(sock)
    }

    /// Encrypts `buf` (in records of up to 16 KiB) and writes the records
    /// out, blocking up to the socket's write timeout. Returns how much of
    /// `buf` was taken: all of it up to rustls's 64 KiB buffer limit.
    ///
    /// As with a plain socket, an error leaves it unknown how much reached
    /// the peer; the connection should be closed.
    pub(crate) fn write<S: Connection>(&mut self, sock: &S, buf: &[u8]) -> io::Result<usize> {
        let taken = self.connection.writer().write(buf)?;
        self.unanswered &= taken == 0;
        self.send_pending(sock)?;
        Ok(taken)
    }

    /// As [`write`](Self::write), for several buffers: small pieces are
    /// gathered into the same records rather than one record each.
    pub(crate) fn write_vectored<S: Connection>(
        &mut self,
        sock: &S,
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        let taken = self.connection.writer().write_vectored(bufs)?;
        self.unanswered &= taken == 0;
        self.send_pending(sock)?;
        Ok(taken)
    }

    /// Sends any records still queued. Every other method already does
    /// before returning; this retries after a write that failed (a write
    /// timeout).
    pub(crate) fn flush<S: Connection>(&mut self, sock: &S) -> io::Result<()> {
        self.send_pending(sock)
    }

    /// Ends the session cleanly: sends `close_notify` (after anything still
    /// queued), without ever waiting: what the socket does not take at once
    /// is dropped (`WouldBlock`), since a peer that stopped reading will
    /// not read an alert either. The socket itself stays open for its
    /// owner to close.
    pub(crate) fn close_now<S: Connection>(&mut self, sock: &S) -> io::Result<()> {
        self.connection.send_close_notify();
        while self.connection.wants_write() {
            if self.connection.write_tls(&mut Immediate(sock))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Whether a read would return at once without the socket: rustls
    /// holds decrypted plaintext no read has taken yet (two records came
    /// in one segment, a request came with the last handshake flight, or
    /// a read's buffer was smaller than a record). A parked server must
    /// serve such a connection again at once: the socket will not become
    /// readable for bytes already taken from it.
    #[cfg(test)]
    pub(crate) fn has_buffered_plaintext(&self) -> bool {
        self.plaintext > 0
    }

    /// Whether the handshake is still under way.
    #[cfg(test)]
    pub(crate) fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// What was negotiated, and the client's certificates.
    pub(crate) fn info(&self) -> TlsInfo {
        TlsInfo::of(&self.connection)
    }

    /// Decrypts every complete record received. On a protocol error rustls
    /// queues an alert telling the peer why; it is sent as a courtesy.
    fn process<S: Connection>(&mut self, sock: &S) -> io::Result<()> {
        match self.connection.process_new_packets() {
            Ok(state) => {
                self.plaintext = state.plaintext_bytes_to_read();
                Ok(())
            }
            Err(e) => {
                let _ = self.send_pending(sock);
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Writes out every record rustls has queued. Interrupted writes are
    /// retried here: a caller retrying `write` itself would send its bytes
    /// twice.
    fn send_pending<S: Connection>(&mut self, sock: &S) -> io::Result<()> {
        while self.connection.wants_write() {
            match self.connection.write_tls(&mut Blocking(sock)) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket took no TLS record bytes",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A handshake its deadline cut short.
pub(crate) fn handshake_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer did not finish the TLS handshake in time",
    )
}

fn eof_in_handshake() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection during the TLS handshake",
    )
}

/// rustls's reader reports the peer's close without `close_notify` as a
/// bare `UnexpectedEof`; it becomes [`TlsTruncated`], which says whether
/// the peer had sent nothing since the last write (`between_requests`).
fn reader_error(error: io::Error, between_requests: bool) -> io::Error {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        TlsTruncated::new(between_requests).into()
    } else {
        error
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.connection.is_handshaking())
            .field("buffered_plaintext", &self.plaintext)
            .finish()
    }
}
