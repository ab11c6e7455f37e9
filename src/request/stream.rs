//! The request a stream server hands its handler: one connection (or, on a
//! parked server, one request on a connection that stays open).

use std::fmt;
use std::io::{self, BufRead, IoSlice, IoSliceMut, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::Layers;
use super::read_buffer::ReadBuffer;
use crate::control::ServerHandle;
use crate::handler::Request;
use crate::transport::Connection;

/// The request of a TCP server.
pub type TcpRequest = StreamRequest<TcpStream>;
/// The request of a Unix-domain stream server.
pub type UnixStreamRequest = StreamRequest<UnixStream>;

/// One accepted connection, for the whole of its life (or, on a parked
/// server, for one request).
///
/// It reads and writes like the stream itself ([`Read`], [`Write`]), and
/// offers buffered reading ([`BufRead`]: `read_line`, `lines`,
/// `read_until`) the way Python's `StreamRequestHandler.rfile` does.
/// Reads go through a read-ahead buffer (the worker's, reused from one
/// connection to the next) with the rules of [`std::io::BufReader`]:
/// reads at least as large as its starting size bypass it. The buffer
/// follows the traffic: it doubles while reads fill it (up to the
/// builder's `max_read_buffer_size`) and shrinks back, memory given back,
/// when they stay small. A handler that sends back what it read can do so
/// from the buffer itself ([`fill_buf_mut`](Self::fill_buf_mut),
/// [`write_buffered`](Self::write_buffered)). Writes go straight to the
/// socket, unbuffered, like Python's default `wfile`: send each reply in
/// one `write_all` (or a vectored write), not in many small pieces.
///
/// The server closes the connection after the handler's `finish`. The
/// socket itself is only lent out ([`stream`](Self::stream)): a handler
/// can read it, write it and set its options, but never replace or drop
/// it, so a forced close at shutdown always reaches the connection being
/// served, never a descriptor number the OS has since given to another
/// socket:
///
/// ```compile_fail,E0599
/// # fn swap(request: &mut socketserver::TcpRequest, other: std::net::TcpStream) {
/// let old = std::mem::replace(request.stream_mut(), other); // no such method
/// # }
/// ```
pub struct StreamRequest<S: Connection> {
    stream: Arc<S>,
    peer: S::Addr,
    server: ServerHandle<S::Addr>,
    buffer: ReadBuffer,
    pos: usize,
    filled: usize,
    traffic: Traffic,
    /// The last read from the socket took all it asked for, so more may be
    /// waiting there: a parked server must not wait for the socket to
    /// become readable again (it will not say so twice).
    maybe_more: bool,
    layers: Layers<S::Addr>,
}

/// Bytes that crossed a connection, for the debug log of its end.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) read: u64,
    pub(crate) written: u64,
}

/// A connection between two requests, without a thread or a buffer:
/// what a parked server keeps, and what a restart could hand over. The
/// next request picks it up with [`StreamRequest::attach`].
pub(crate) struct Detached<S: Connection> {
    pub(crate) stream: Arc<S>,
    pub(crate) peer: S::Addr,
    /// Bytes read ahead beyond the last request; empty (no allocation)
    /// unless the client sent ahead.
    pub(crate) unread: Vec<u8>,
    pub(crate) traffic: Traffic,
    /// More bytes may be waiting in the socket that no readiness event
    /// will announce.
    pub(crate) maybe_more: bool,
    pub(crate) layers: Layers<S::Addr>,
}

/// What a trusted proxy's header makes of a connection whose socket's
/// peer is `peer`: the peer becomes the client the header names, if the
/// address type can hold it, and the proxy is remembered.
#[cfg(feature = "proxy-protocol")]
fn proxied<A: crate::transport::PeerAddress + Clone>(
    peer: &mut A,
    header: crate::proxy_protocol::ProxyHeader,
) -> Box<super::Proxied<A>> {
    let client = header.source().and_then(A::from_ip);
    let proxy = match client {
        Some(client) => std::mem::replace(peer, client),
        None => peer.clone(),
    };
    Box::new(super::Proxied { header, proxy })
}

impl<S: Connection> Detached<S> {
    /// A connection a restart moved to this process, open and between two
    /// requests: `peer` is its socket's, and the PROXY header it first
    /// came with (its wire format), if any, makes it the client's again.
    /// A header this build cannot read (without the `proxy-protocol`
    /// feature) or that does not parse is `InvalidData`.
    #[cfg(feature = "restart")]
    #[cfg_attr(not(feature = "proxy-protocol"), allow(unused_mut))]
    pub(crate) fn moved(
        stream: Arc<S>,
        peer: S::Addr,
        unread: Vec<u8>,
        maybe_more: bool,
        proxy_header: Option<&[u8]>,
    ) -> io::Result<Self> {
        let mut moved = Detached {
            stream,
            peer,
            unread,
            traffic: Traffic::default(),
            maybe_more,
            layers: Layers::default(),
        };
        if let Some(bytes) = proxy_header {
            #[cfg(feature = "proxy-protocol")]
            {
                let (header, _) = crate::proxy_protocol::parse(bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the PROXY header of a moved connection: {e}"),
                    )
                })?;
                moved.layers.proxied = Some(proxied(&mut moved.peer, header));
            }
            #[cfg(not(feature = "proxy-protocol"))]
            {
                let _ = bytes;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a moved connection came through a proxy, and this build has no proxy-protocol feature",
                ));
            }
        }
        Ok(moved)
    }

    /// The PROXY header the connection came with, in its wire format, to
    /// move along with it.
    pub(crate) fn proxy_header_bytes(&self) -> io::Result<Option<Vec<u8>>> {
        #[cfg(feature = "proxy-protocol")]
        if let Some(proxied) = &self.layers.proxied {
            return proxied.header.to_bytes().map(Some);
        }
        Ok(None)
    }

    /// Whether the connection can move to another process: no TLS session
    /// (its keys cannot leave this one).
    pub(crate) fn can_move(&self) -> bool {
        !self.layers.is_tls()
    }

    /// Whether its next request can start without waiting for the socket
    /// to say it is readable: bytes are read ahead, or may wait unannounced.
    pub(crate) fn has_more(&self) -> bool {
        !self.unread.is_empty() || self.maybe_more
    }

    /// Ends the connection's layers cleanly (TLS's `close_notify`); the
    /// socket closes when the last reference to it drops.
    pub(crate) fn close_layers(&mut self) {
        self.layers.close(&*self.stream);
    }
}

impl<S: Connection> StreamRequest<S> {
    /// `buffer` is the serving thread's read-ahead, reused.
    pub(crate) fn new(
        stream: Arc<S>,
        peer: S::Addr,
        server: ServerHandle<S::Addr>,
        buffer: ReadBuffer,
    ) -> Self {
        StreamRequest {
            stream,
            peer,
            server,
            buffer,
            pos: 0,
            filled: 0,
            traffic: Traffic::default(),
            maybe_more: false,
            layers: Layers::default(),
        }
    }

    /// Ends the request, giving back the worker's buffer; the connection
    /// closes unless the registry still holds it.
    pub(crate) fn into_buffer(self) -> ReadBuffer {
        self.buffer
    }

    /// The next request on a detached connection, read through `buffer`
    /// (a worker's), which is loaded with what the connection had read
    /// ahead.
    pub(crate) fn attach(conn: Detached<S>, mut buffer: ReadBuffer, server: ServerHandle<S::Addr>) -> Self {
        buffer.load(&conn.unread);
        StreamRequest {
            stream: conn.stream,
            peer: conn.peer,
            server,
            buffer,
            pos: 0,
            filled: conn.unread.len(),
            traffic: conn.traffic,
            maybe_more: conn.maybe_more,
            layers: conn.layers,
        }
    }

    /// Ends the request, keeping the connection (with a copy of what was
    /// read ahead) apart from the buffer, which goes back to its thread.
    pub(crate) fn detach(self) -> (Detached<S>, ReadBuffer) {
        let conn = Detached {
            unread: self.buffer.bytes()[self.pos..self.filled].to_vec(),
            stream: self.stream,
            peer: self.peer,
            traffic: self.traffic,
            maybe_more: self.maybe_more,
            layers: self.layers,
        };
        (conn, self.buffer)
    }

    /// Reads what has arrived into the read-ahead buffer without waiting:
    /// `WouldBlock` if nothing has, `Ok(0)` at end of stream.
    pub(crate) fn fill_now(&mut self) -> io::Result<usize> {
        if self.pos < self.filled {
            return Ok(self.filled - self.pos);
        }
        let room = self.buffer.room();
        let size = room.len();
        let n = match self.layers.read_now(&*self.stream, room) {
            Ok(n) => n,
            Err(e) => {
                self.maybe_more = false;
                return Err(e);
            }
        };
        self.filled_from_socket(n, size);
        if n > 0 && self.screening() {
            // Decided now if it can be; if not, the handler's first read
            // waits for the rest of the signature.
            self.screen_proxy_header(false)?;
        }
        Ok(n)
    }

    /// The bytes read and written so far.
    pub(crate) fn traffic(&self) -> Traffic {
        self.traffic
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
    /// `try_clone`) or to read and write it directly (`&TcpStream` is
    /// `Read` and `Write`). Reading from it directly skips the bytes
    /// already read ahead; see [`buffered`](Self::buffered).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The socket, shared: the server's force-close registry holds it
    /// while a handler runs, so a forced close always reaches this very
    /// socket, never a descriptor number reused by another.
    pub(crate) fn shared_stream(&self) -> &Arc<S> {
        &self.stream
    }

    /// Bytes read ahead from the socket and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer.bytes()[self.pos..self.filled]
    }

    /// The bytes read ahead, reading first (blocking) if there are none,
    /// as [`fill_buf`](BufRead::fill_buf), but mutable: a handler that
    /// answers with its input transformed can change them in place and
    /// send them with [`write_buffered`](Self::write_buffered), with no
    /// copy at all. Empty at the end of the stream.
    ///
    /// ```
    /// use socketserver::{TcpRequest, ThreadingTcpServer};
    ///
    /// // The uppercase echo, zero-copy: the read-ahead buffer goes back out.
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", |req: &mut TcpRequest| {
    ///     loop {
    ///         let bytes = req.fill_buf_mut()?;
    ///         if bytes.is_empty() {
    ///             return Ok(());
    ///         }
    ///         bytes.make_ascii_uppercase();
    ///         let n = bytes.len();
    ///         req.write_buffered(n)?;
    ///     }
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fill_buf_mut(&mut self) -> io::Result<&mut [u8]> {
        self.fill_buf()?;
        Ok(&mut self.buffer.bytes_mut()[self.pos..self.filled])
    }

    /// Writes the first `n` bytes read ahead to the connection (all of
    /// them, as `write_all`) and consumes them: the second half of
    /// [`fill_buf_mut`](Self::fill_buf_mut). `n` is capped at what is
    /// buffered.
    pub fn write_buffered(&mut self, n: usize) -> io::Result<()> {
        let end = self.pos + n.min(self.filled - self.pos);
        while self.pos < end {
            match self
                .layers
                .write(&*self.stream, &self.buffer.bytes()[self.pos..end])
            {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.traffic.written += written as u64;
                    self.pos += written;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The PROXY header the connection's proxy sent, when the server takes
    /// them ([`Builder::proxy_protocol`](crate::Builder::proxy_protocol))
    /// and the connection came through one of its trusted proxies: the
    /// client's and the original destination's addresses, and the v2
    /// TLVs (the client's TLS facts, a unique ID). `None` for a client
    /// that connected directly.
    #[cfg(feature = "proxy-protocol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "proxy-protocol")))]
    pub fn proxy_header(&self) -> Option<&crate::proxy_protocol::ProxyHeader> {
        self.layers.proxied.as_ref().map(|proxied| &proxied.header)
    }

    /// The address of the proxy the connection came through (the socket's
    /// own peer), when it came through one; [`peer_addr`](Self::peer_addr)
    /// is then the client's.
    #[cfg(feature = "proxy-protocol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "proxy-protocol")))]
    pub fn proxy_addr(&self) -> Option<&S::Addr> {
        self.layers.proxied.as_ref().map(|proxied| &proxied.proxy)
    }

    /// Records the header a trusted proxy sent: the peer address becomes
    /// the client's it carries, if the address type can hold it.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) fn set_proxied(&mut self, header: crate::proxy_protocol::ProxyHeader) {
        self.layers.proxied = Some(proxied(&mut self.peer, header));
    }

    /// What the connection's TLS handshake settled, when the server speaks
    /// TLS ([`Builder::tls`](crate::Builder::tls)): protocol version,
    /// cipher suite, ALPN protocol, SNI name, and the client's certificate
    /// chain if it sent one (mutual TLS). Available from `verify_request`
    /// on. `None` on a plain connection.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_info(&self) -> Option<&crate::tls::TlsInfo> {
        self.layers.tls.as_ref().and_then(|tls| tls.info.as_ref())
    }

    /// Whether the request's bytes go through a TLS session.
    #[cfg(feature = "auth")]
    pub(crate) fn is_tls(&self) -> bool {
        self.layers.is_tls()
    }

    /// Starts the connection's TLS session, to be completed by `deadline`.
    #[cfg(feature = "tls")]
    pub(crate) fn start_tls(&mut self, session: crate::tls::TlsSession, deadline: std::time::Instant) {
        self.layers.tls = Some(Box::new(super::layers::Tls {
            session,
            info: None,
            deadline,
        }));
    }

    /// When the TLS handshake under way must be over by.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_deadline(&self) -> Option<std::time::Instant> {
        self.layers
            .tls
            .as_ref()
            .filter(|tls| tls.info.is_none())
            .map(|tls| tls.deadline)
    }

    /// Runs the TLS handshake to its end, blocking within its deadline.
    #[cfg(feature = "tls")]
    pub(crate) fn finish_tls_handshake(&mut self) -> io::Result<()> {
        let Some(tls) = &mut self.layers.tls else {
            return Ok(());
        };
        tls.session.handshake(&*self.stream, tls.deadline)?;
        let info = tls.info.insert(tls.session.info());
        log_established(&self.peer, info);
        Ok(())
    }

    /// Advances the TLS handshake with what has arrived, never waiting:
    /// true once it is complete, false when it needs more from the client.
    #[cfg(feature = "tls")]
    pub(crate) fn step_tls_handshake(&mut self) -> io::Result<bool> {
        let Some(tls) = &mut self.layers.tls else {
            return Ok(true);
        };
        if tls.info.is_some() {
            return Ok(true);
        }
        if !tls.session.handshake_step(&*self.stream)? {
            return Ok(false);
        }
        let info = tls.info.insert(tls.session.info());
        log_established(&self.peer, info);
        // The client's first request may have come with its last flight.
        self.maybe_more = tls.session.maybe_more();
        Ok(true)
    }

    /// Ends the connection's layers cleanly (TLS's `close_notify`), before
    /// the server closes it.
    pub(crate) fn close_layers(&mut self) {
        self.layers.close(&*self.stream);
    }

    /// Arms the check of the connection's first bytes for a PROXY header
    /// from a peer that may not send one.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) fn refuse_proxy_header(&mut self) {
        self.layers.screen_proxy_header = true;
    }

    /// Whether the connection's first bytes are still to be checked for a
    /// PROXY header (see [`screen_proxy_header`](Self::screen_proxy_header)).
    fn screening(&self) -> bool {
        #[cfg(feature = "proxy-protocol")]
        return self.layers.screen_proxy_header;
        #[cfg(not(feature = "proxy-protocol"))]
        false
    }

    /// Checks the connection's first bytes, in the read-ahead buffer, for
    /// a PROXY header from a peer that is not a trusted proxy: a
    /// `PermissionDenied` error if they are one. While the bytes there are
    /// only the beginning of a signature, `wait` reads on until they
    /// decide it (or the stream ends); without it, the check stays armed.
    #[cfg(feature = "proxy-protocol")]
    fn screen_proxy_header(&mut self, wait: bool) -> io::Result<()> {
        use crate::proxy_protocol::looks_like_proxy_header;
        loop {
            match looks_like_proxy_header(&self.buffer.bytes()[self.pos..self.filled]) {
                Some(true) => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "a PROXY header from {:?}, which is not a trusted proxy: refused",
                            self.peer
                        ),
                    ));
                }
                Some(false) => break,
                None if !wait => return Ok(()),
                None => {}
            }
            // Only the start of a signature so far: read on behind it.
            let room = self.buffer.room();
            if self.pos > 0 {
                room.copy_within(self.pos..self.filled, 0);
                self.filled -= self.pos;
                self.pos = 0;
            }
            if self.filled == room.len() {
                break;
            }
            let n = self.stream.read_shared(&mut room[self.filled..])?;
            if n == 0 {
                break;
            }
            self.traffic.read += n as u64;
            self.filled += n;
            self.maybe_more = self.filled == room.len();
        }
        self.layers.screen_proxy_header = false;
        Ok(())
    }

    #[cfg(not(feature = "proxy-protocol"))]
    fn screen_proxy_header(&mut self, _wait: bool) -> io::Result<()> {
        Ok(())
    }

    /// A read that the server's own forced close at shutdown cut short
    /// ends the stream, TLS or not: on a plain connection that read sees
    /// the end of stream itself, but a TLS session sees no close_notify
    /// and would report a truncation the client never made.
    fn end_if_force_closed(&self, read: io::Result<usize>) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Err(e) = &read
            && crate::tls::is_truncated(e)
            && self.server.control().registry.is_closing()
        {
            return Ok(0);
        }
        read
    }

    /// Notes a fill of the read-ahead from the socket: `n` bytes into a
    /// room of `size`.
    fn filled_from_socket(&mut self, n: usize, size: usize) {
        self.buffer.filled(n);
        self.maybe_more = self.layers.more_after(n, size);
        self.traffic.read += n as u64;
        self.pos = 0;
        self.filled = n;
    }

    fn read_socket(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let read = self.layers.read(&*self.stream, out);
        let n = self.end_if_force_closed(read)?;
        self.maybe_more = self.layers.more_after(n, out.len());
        self.traffic.read += n as u64;
        Ok(n)
    }
}

/// Logs a connection's established TLS session at debug level: what was
/// negotiated, and who the client is by its certificate (mutual TLS).
#[cfg(feature = "tls")]
fn log_established<A: fmt::Debug>(peer: &A, info: &crate::tls::TlsInfo) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let client = match info.client_name() {
        Some(name) => format!("client certificate {name}"),
        None if info.peer_certificates().is_empty() => "no client certificate".to_owned(),
        None => "a client certificate without a name".to_owned(),
    };
    let version = info.protocol_version().map_or("?".into(), |v| format!("{v:?}"));
    let suite = info.cipher_suite().map_or("?".into(), |s| format!("{s:?}"));
    log::debug!("connection from {peer:?}: TLS {version} {suite}, {client}");
}

impl<S: Connection> Request for StreamRequest<S> {
    type Addr = S::Addr;

    fn peer_addr(&self) -> &S::Addr {
        &self.peer
    }

    fn is_health_check(&self) -> bool {
        #[cfg(feature = "proxy-protocol")]
        return self
            .proxy_header()
            .is_some_and(|header| header.command == crate::proxy_protocol::Command::Local);
        #[cfg(not(feature = "proxy-protocol"))]
        false
    }
}

impl<S: Connection> Read for StreamRequest<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.filled && out.len() >= self.buffer.min() && !self.screening() {
            return self.read_socket(out);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.pos == self.filled && total >= self.buffer.min() && !self.screening() && !self.layers.is_tls()
        {
            let n = self.stream.read_vectored_shared(bufs)?;
            self.maybe_more = n == total;
            self.traffic.read += n as u64;
            return Ok(n);
        }
        let n = self.fill_buf()?.read_vectored(bufs)?;
        self.consume(n);
        Ok(n)
    }
}

impl<S: Connection> BufRead for StreamRequest<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.screening() {
            self.screen_proxy_header(true)?;
        }
        if self.pos >= self.filled {
            let room = self.buffer.room();
            let size = room.len();
            let read = self.layers.read(&*self.stream, room);
            let n = self.end_if_force_closed(read)?;
            self.filled_from_socket(n, size);
        }
        Ok(&self.buffer.bytes()[self.pos..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

impl<S: Connection> Write for StreamRequest<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.layers.write(&*self.stream, buf)?;
        self.traffic.written += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.layers.write_vectored(&*self.stream, bufs)?;
        self.traffic.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.layers.flush(&*self.stream)
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
