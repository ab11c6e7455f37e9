//! What may sit between a stream request and its socket, set up when the
//! connection opens and kept with it from one request to the next: the
//! PROXY header a trusted proxy sent (feature `proxy-protocol`), and the
//! check that refuses one from anybody else.
//!
//! Without the features it is empty, and costs nothing.

use std::marker::PhantomData;

#[cfg(feature = "proxy-protocol")]
use crate::proxy_protocol::ProxyHeader;

/// A connection's layers. `A` is its address type.
pub(crate) struct Layers<A> {
    /// The header a trusted proxy sent, and the proxy's own address.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) proxied: Option<Box<Proxied<A>>>,
    /// The connection's first bytes are still to be checked: from a peer
    /// that is not a trusted proxy, a PROXY header is refused.
    #[cfg(feature = "proxy-protocol")]
    pub(crate) screen_proxy_header: bool,
    _address: PhantomData<fn() -> A>,
}

impl<A> Default for Layers<A> {
    fn default() -> Self {
        Layers {
            #[cfg(feature = "proxy-protocol")]
            proxied: None,
            #[cfg(feature = "proxy-protocol")]
            screen_proxy_header: false,
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
