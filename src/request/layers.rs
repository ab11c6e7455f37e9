//! What may sit between a stream request and its socket, set up when the
//! connection opens and kept with it from one request to the next: the
//! PROXY header a trusted proxy sent and the check that refuses one from
//! anybody else (feature `proxy-protocol`), the TLS session (feature
//! `tls`). Every read and write of a request goes through here.
//!
//! Without the features it is empty, and costs nothing.

use std::io::{self, IoSlice};
use std::marker::PhantomData;

#[cfg(feature = "proxy-protocol")]
use crate::proxy_protocol::ProxyHeader;
#[cfg(feature = "tls")]
use crate::tls::{TlsInfo, TlsSession};
use crate::transport::Connection;

/// A connection's layers. `A` is its address type.
pub(crate) struct Layers<A> {
    /// The header a trusted proxy sent, and the proxy's own address.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) proxied: Option<Box<Proxied<A>>>,
    /// The connection's first bytes are still to be checked: from a peer
    /// that is not a trusted proxy, a PROXY header is refused.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) screen_proxy_header: bool,
    /// The connection's TLS, once a handshake has begun.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<Tls>>,
    _address: PhantomData<fn() -> A>,
}

impl<A> Default for Layers<A> {
    fn default() -> Self {
        Layers {
            #[cfg(feature = "proxy-protocol")]
            proxied: None,
            #[cfg(feature = "proxy-protocol")]
            screen_proxy_header: false,
            #[cfg(feature = "tls")]
            tls: None,
            _address: PhantomData,
        }
    }
}

/// A connection that came through a trusted proxy.
#[cfg(feature = "proxy-protocol")]
pub(crate) struct Proxied<A> {
    pub(crate) header: ProxyHeader,
    /// The proxy's address: the socket's peer.
    pub(crate) proxy: A,
}

/// A connection's TLS session.
#[cfg(feature = "tls")]
pub(crate) struct Tls {
    pub(crate) session: TlsSession,
    /// What was negotiated: set when the handshake completes.
    pub(crate) info: Option<TlsInfo>,
    /// When the handshake must be over by.
    pub(crate) deadline: std::time::Instant,
}

impl<A> Layers<A> {
    /// The TLS session, if there is one.
    #[cfg(feature = "tls")]
    fn session(&mut self) -> Option<&mut TlsSession> {
        self.tls.as_mut().map(|tls| &mut tls.session)
    }

    /// Whether the connection speaks TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Reads what the client sent, waiting (up to the socket's read
    /// timeout) until something comes: plaintext under TLS.
    pub(crate) fn read<S: Connection>(&mut self, stream: &S, out: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.session() {
            return session.read(stream, out);
        }
        stream.read_shared(out)
    }

    /// Reads what the client has sent, never waiting: `WouldBlock` when
    /// nothing has come.
    pub(crate) fn read_now<S: Connection>(&mut self, stream: &S, out: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.session() {
            return session.read_now(stream, out);
        }
        crate::sys::recv_now(stream, out)
    }

    /// Whether more may be waiting after a read of `n` bytes into `room`
    /// bytes, that no readiness event will announce: the socket read took
    /// all it asked for, or (TLS) decrypted bytes wait in the session.
    pub(crate) fn more_after(&self, n: usize, room: usize) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.session.maybe_more();
        }
        n == room
    }

    pub(crate) fn write<S: Connection>(&mut self, stream: &S, buf: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.session() {
            return session.write(stream, buf);
        }
        stream.write_shared(buf)
    }

    pub(crate) fn write_vectored<S: Connection>(
        &mut self,
        stream: &S,
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.session() {
            return session.write_vectored(stream, bufs);
        }
        stream.write_vectored_shared(bufs)
    }

    pub(crate) fn flush<S: Connection>(&mut self, stream: &S) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.session() {
            return session.flush(stream);
        }
        let _ = stream;
        Ok(())
    }

    /// Ends the connection's layers cleanly before it closes: TLS's
    /// `close_notify`, once the handshake is done. Never waits on a client
    /// that does not read; errors are only logged.
    pub(crate) fn close<S: Connection>(&mut self, stream: &S) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls
            && tls.info.is_some()
            && let Err(e) = tls.session.close_now(stream)
        {
            log::debug!("could not send TLS close_notify: {e}");
        }
        let _ = stream;
    }
}
