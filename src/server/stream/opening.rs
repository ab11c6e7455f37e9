//! What a stream server does with a new connection before its handler
//! sees it, on the worker that serves it (never on the accept loop, which
//! a slow client must not hold): with the PROXY protocol on, read a
//! trusted proxy's header, or arm the check that refuses one from anybody
//! else. Both serving modes open their connections here.

use std::io;

use crate::config::ConnectionOptions;
use crate::request::StreamRequest;
use crate::transport::Connection;

/// Opens a connection's layers. An error means the connection must not be
/// served: report it and close the connection.
pub(crate) fn open_layers<S: Connection>(
    options: &ConnectionOptions,
    request: &mut StreamRequest<S>,
) -> io::Result<()> {
    #[cfg(feature = "proxy-protocol")]
    if let Some(trusted) = &options.proxies {
        read_proxy_header(trusted, options.proxy_header_timeout, request)?;
    }
    #[cfg(not(feature = "proxy-protocol"))]
    let _ = (options, request);
    Ok(())
}

/// From a trusted proxy: the header, within `timeout`, which then tells
/// the request who the client is. From anybody else: no header allowed.
#[cfg(feature = "proxy-protocol")]
fn read_proxy_header<S: Connection>(
    trusted: &crate::proxy_protocol::TrustedProxies,
    timeout: std::time::Duration,
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
        request.refuse_proxy_header();
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
    request.set_proxied(header);
    Ok(())
}
