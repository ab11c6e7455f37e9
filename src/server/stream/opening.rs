//! What a stream server does with a new connection before its handler
//! sees it, on the worker that serves it (never on the accept loop, which
//! a slow client must not hold): with the PROXY protocol on, read a
//! trusted proxy's header, or arm the check that refuses one from anybody
//! else; with TLS on, the handshake. Both serving modes open their
//! connections here.

use std::io;

use crate::request::StreamRequest;
use crate::server::options::ConnectionOptions;
use crate::transport::Connection;

/// How the TLS handshake is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// To its end, blocking the worker (within its deadline): the
    /// per-connection mode, whose worker is the connection's anyway.
    Whole,
    /// Only started: a parked server advances it as bytes arrive
    /// ([`step_handshake`]), parking the connection in between.
    Started,
}

/// Opens a connection's layers. An error means the connection must not be
/// served: report it and close the connection.
pub(crate) fn open_layers<S: Connection>(
    options: &ConnectionOptions,
    request: &mut StreamRequest<S>,
    handshake: Handshake,
) -> io::Result<()> {
    #[cfg(feature = "proxy-protocol")]
    if let Some(trusted) = &options.proxies {
        read_proxy_header(
            trusted,
            options.proxy_header_timeout,
            speaks_tls(options),
            request,
        )?;
    }
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &options.tls {
        let session = acceptor.session()?;
        request.start_tls(session, acceptor.handshake_deadline());
        if handshake == Handshake::Whole {
            let done = request.finish_tls_handshake();
            return done.map_err(|e| handshake_failed(request, e));
        }
    }
    let _ = (options, request, handshake);
    Ok(())
}

/// Advances a started TLS handshake without waiting (see
/// [`Handshake::Started`]): true once it is done (or there is none),
/// false while it needs more from the client.
pub(crate) fn step_handshake<S: Connection>(request: &mut StreamRequest<S>) -> io::Result<bool> {
    #[cfg(feature = "tls")]
    return request
        .step_tls_handshake()
        .map_err(|e| handshake_failed(request, e));
    #[cfg(not(feature = "tls"))]
    {
        let _ = request;
        Ok(true)
    }
}

#[cfg(feature = "proxy-protocol")]
fn speaks_tls(options: &ConnectionOptions) -> bool {
    #[cfg(feature = "tls")]
    return options.tls.is_some();
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        false
    }
}

/// The error of a TLS handshake a parked server's deadline cut short,
/// counted and worded as a per-connection server's handshake timeout is,
/// for `handle_error`.
pub(crate) fn handshake_too_late<S: Connection>(request: &StreamRequest<S>) -> io::Error {
    #[cfg(feature = "tls")]
    return handshake_failed(request, crate::tls::handshake_timed_out());
    // Only a TLS handshake is ever unfinished.
    #[cfg(not(feature = "tls"))]
    {
        let _ = request;
        io::Error::new(io::ErrorKind::TimedOut, "the connection was not opened in time")
    }
}

/// Counts a failed handshake and says whose it was, and what the client
/// probably is when its first bytes were no TLS record at all.
#[cfg(feature = "tls")]
fn handshake_failed<S: Connection>(request: &StreamRequest<S>, error: io::Error) -> io::Error {
    use crate::tls::rustls::{Error, InvalidMessage};
    request.server().control().counters.tls_handshake_failures.bump();
    let not_tls = matches!(
        error.get_ref().and_then(|inner| inner.downcast_ref::<Error>()),
        Some(Error::InvalidMessage(InvalidMessage::InvalidContentType))
    );
    let hint = if not_tls {
        " (it sent no TLS record: a client speaking plain TCP?)"
    } else {
        ""
    };
    io::Error::new(
        error.kind(),
        format!(
            "TLS handshake with {:?} failed: {error}{hint}",
            request.peer_addr()
        ),
    )
}

/// From a trusted proxy: the header, within `timeout`, which then tells
/// the request who the client is. From anybody else: no header allowed.
#[cfg(feature = "proxy-protocol")]
fn read_proxy_header<S: Connection>(
    trusted: &crate::proxy_protocol::TrustedProxies,
    timeout: std::time::Duration,
    tls: bool,
    request: &mut StreamRequest<S>,
) -> io::Result<()> {
    use crate::proxy_protocol::read_header;
    use crate::transport::PeerAddress;

    let peer = request.peer_addr().clone();
    let from_proxy = match peer.ip() {
        Some(ip) => trusted.contains(ip),
        None => trusted.trusts_unix_peers(),
    };
    if !from_proxy {
        // Under TLS the first bytes are a handshake: a header there fails
        // it anyway.
        if !tls {
            request.refuse_proxy_header();
        }
        return Ok(());
    }
    // The header comes off the socket itself: nothing is read ahead yet.
    let deadline = std::time::Instant::now() + timeout;
    let header = read_header(request.stream(), deadline).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("no valid PROXY header from the proxy {peer:?}: {e}"),
        )
    })?;
    match header.source() {
        Some(client) => log::debug!("connection from {client} through the proxy {peer:?}"),
        None => log::debug!("connection from the proxy {peer:?} itself ({:?})", header.command),
    }
    if header.command == crate::proxy_protocol::Command::Local {
        request.server().control().counters.health_checks.bump();
    }
    request.set_proxied(header);
    Ok(())
}
