//! The PROXY protocol, versions 1 and 2: the header a load balancer
//! (HAProxy, nginx's stream proxy, a cloud balancer) puts in front of a
//! connection to say who the real client is.
//!
//! Behind a proxy every connection comes from the proxy's address. With
//! the PROXY protocol the proxy first sends a short header carrying the
//! client's and the original destination's addresses (v1: one text line;
//! v2: binary, with optional TLVs such as the TLS facts of the client's
//! connection or a unique ID), then relays the client's bytes unchanged.
//! This module implements HAProxy's specification (`doc/proxy-protocol.txt`)
//! with its limits: a v1 line of at most 107 bytes including its CRLF with
//! `TCP4`, `TCP6` or `UNKNOWN`; a v2 header with the 12-byte signature,
//! version 2, the `LOCAL` and `PROXY` commands, the `AF_UNSPEC`, `AF_INET`,
//! `AF_INET6` and `AF_UNIX` families over `STREAM` or `DGRAM`, and TLVs (a
//! CRC32C TLV is verified).
//!
//! | piece | what it is for |
//! |---|---|
//! | [`parse`] | a header from bytes: the header and its length, or [`ParseError::Incomplete`] / [`ParseError::Invalid`] |
//! | [`read_header`] | a header from a connected blocking stream, within a deadline, leaving the bytes after it unread |
//! | [`ProxyHeader::to_v1`], [`to_v2`](ProxyHeader::to_v2) | the bytes of a header, for clients, tests and load generators |
//! | [`TrustedProxies`] | the peers that must send a header |
//! | [`looks_like_proxy_header`] | spotting a header from a peer that may not send one |
//!
//! # Trust
//!
//! A header can claim any address, so only the proxies themselves may send
//! one, and a receiver never guesses whether one is there (the
//! specification forbids it). The rule, per connection:
//!
//! - the peer is in [`TrustedProxies`]: the header is required; read it with
//!   [`read_header`] before anything else, and refuse the connection if it
//!   is missing, invalid or late;
//! - any other peer is served directly, under its own address, but a
//!   connection that begins with a PROXY signature
//!   ([`looks_like_proxy_header`]) is refused: it is someone trying to
//!   claim another address.
//!
//! ```
//! use socketserver::proxy_protocol::{Command, ProxyHeader, TrustedProxies, parse};
//! use std::net::SocketAddr;
//!
//! let client: SocketAddr = "203.0.113.7:51234".parse().unwrap();
//! let server: SocketAddr = "192.0.2.1:443".parse().unwrap();
//!
//! // What HAProxy's `send-proxy-v2` puts in front of the client's bytes.
//! let mut wire = ProxyHeader::new_v2(client, server).with_unique_id(b"req-42").to_v2()?;
//! wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
//!
//! let (header, len) = parse(&wire)?;
//! assert_eq!(header.command, Command::Proxy);
//! assert_eq!(header.source(), Some(client));
//! assert_eq!(header.destination(), Some(server));
//! assert_eq!(header.unique_id(), Some(&b"req-42"[..]));
//! assert_eq!(&wire[len..], b"GET / HTTP/1.1\r\n");
//!
//! let trusted: TrustedProxies = "10.0.0.0/8, ::1".parse()?;
//! assert!(trusted.contains("10.1.2.3".parse().unwrap()));
//! assert!(trusted.contains("::ffff:10.1.2.3".parse().unwrap()));
//! assert!(!trusted.contains("192.0.2.9".parse().unwrap()));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # In a server
//!
//! Every stream server applies the rule itself when given the trusted
//! proxies, in both serving modes, before `verify_request`:
//! [`Builder::proxy_protocol`](crate::Builder::proxy_protocol). The
//! request's `peer_addr` is then the client's, `proxy_addr` the proxy's and
//! `proxy_header` the whole header.
//!
//! # Applying it by hand
//!
//! On a socket of your own, or in a handler of a server without the
//! option, the same rule reads: before anything else is read (the header
//! must come off the socket itself, not out of a read-ahead buffer):
//!
//! ```
//! use socketserver::proxy_protocol::{ProxyHeader, TrustedProxies, looks_like_proxy_header, read_header};
//! use socketserver::{TcpRequest, ThreadingTcpServer};
//! use std::io::{self, BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use std::thread;
//! use std::time::{Duration, Instant};
//!
//! let trusted: TrustedProxies = "127.0.0.1".parse()?;
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", move |req: &mut TcpRequest| {
//!     let peer = *req.peer_addr();
//!     let client = if trusted.contains(peer.ip()) {
//!         let header = read_header(req.stream(), Instant::now() + Duration::from_secs(5))?;
//!         header.source().unwrap_or(peer) // LOCAL or UNKNOWN: the connection's own
//!     } else if looks_like_proxy_header(req.fill_buf()?) == Some(true) {
//!         return Err(io::Error::new(io::ErrorKind::PermissionDenied, "PROXY header from an untrusted peer"));
//!     } else {
//!         peer
//!     };
//!     writeln!(req, "hello, {client}")
//! })?;
//! let addr = *server.local_addr();
//! let stop = server.shutdown_handle();
//! let serving = thread::spawn(move || server.serve_forever());
//!
//! // The proxy (here: us, from 127.0.0.1) speaks for a client elsewhere.
//! let mut proxy = TcpStream::connect(addr)?;
//! proxy.set_read_timeout(Some(Duration::from_secs(5)))?;
//! proxy.write_all(&ProxyHeader::new_v2("203.0.113.7:51234".parse().unwrap(), addr).to_v2()?)?;
//! let mut reply = String::new();
//! BufReader::new(proxy).read_line(&mut reply)?;
//! assert_eq!(reply, "hello, 203.0.113.7:51234\n");
//!
//! stop.shutdown();
//! serving.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Requires the `proxy-protocol` feature.

use std::fmt;
use std::net::SocketAddr;

mod encode;
mod network;
mod parse;
mod read;
mod tlv;

pub use network::{IpNetwork, NetworkParseError, TrustedProxies};
pub use parse::{
    MAX_V1_LEN, MAX_V2_LEN, ParseError, V1_SIGNATURE, V2_SIGNATURE, looks_like_proxy_header, parse,
};
pub use read::read_header;
pub use tlv::{SslInfo, Tlv};

/// A PROXY protocol header: who the client really is, as the proxy saw it.
///
/// The fields are public so a header can be built for sending (see the
/// constructors and [`to_v1`](Self::to_v1) / [`to_v2`](Self::to_v2)); the
/// accessors answer what a receiver asks, following the specification's
/// rules (a `LOCAL` header, or an `UNKNOWN` / `AF_UNSPEC` one, has no
/// client address: use the connection's own).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProxyHeader {
    /// Which format the header came in (or is to be sent in).
    pub version: Version,
    /// `PROXY` (relayed for a client) or `LOCAL` (the proxy's own
    /// connection, e.g. a health check). A v1 header is always `PROXY`.
    pub command: Command,
    /// The addresses the header carries.
    pub addresses: ProxyAddresses,
    /// The v2 TLVs in wire order (always empty for v1).
    pub tlvs: Vec<Tlv>,
}

/// The header's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// The text line: `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary header with the 12-byte signature.
    V2,
}

/// What the connection is, by the proxy's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// The proxy opened the connection for itself (a health check): the
    /// receiver uses the real connection's endpoints and ignores the
    /// addresses.
    Local,
    /// The connection is relayed for a client whose addresses the header
    /// carries.
    Proxy,
}

/// The transport protocol of the client's connection (v2's `STREAM` and
/// `DGRAM`; v1's `TCP4` and `TCP6` are streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `SOCK_STREAM`: TCP or a Unix stream.
    Stream,
    /// `SOCK_DGRAM`: UDP or a Unix datagram socket.
    Datagram,
}

/// The addresses of the client's connection: source is the client,
/// destination the address it connected to.
///
/// The transport sits inside the variants because v2 ties them together:
/// an unspecified family goes with an unspecified transport.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxyAddresses {
    /// v1 `UNKNOWN` or v2 `AF_UNSPEC`: no addresses; the receiver uses the
    /// real connection's.
    Unknown,
    /// IPv4 (`TCP4`, `AF_INET`) or IPv6 (`TCP6`, `AF_INET6`) addresses with
    /// ports. Both are of the same family. IPv6 flow info and scope ID are
    /// not carried by the protocol (always 0 when parsed, ignored when
    /// encoded).
    Inet {
        /// Stream (TCP) or datagram (UDP).
        transport: Transport,
        /// The client.
        source: SocketAddr,
        /// Where the client connected to.
        destination: SocketAddr,
    },
    /// Unix-domain socket addresses (v2 `AF_UNIX` only).
    Unix {
        /// Stream or datagram.
        transport: Transport,
        /// The client's socket address.
        source: UnixAddress,
        /// The socket the client connected to.
        destination: UnixAddress,
    },
}

/// A Unix-domain socket address as v2 carries it: the 108 bytes of
/// `sun_path`.
///
/// Kept whole rather than as a path: a Linux abstract address begins with
/// a NUL byte (so a path cut at the first NUL would lose its name), and
/// keeping every byte makes a parsed header re-encode to the same bytes,
/// which its CRC32C needs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnixAddress([u8; UnixAddress::LEN]);

impl UnixAddress {
    /// The size of `sun_path` in the protocol.
    pub const LEN: usize = 108;

    /// The address of `path` (its bytes, NUL-padded to 108), or `None` if it
    /// is longer than 108 bytes.
    pub fn new(path: impl AsRef<[u8]>) -> Option<Self> {
        let path = path.as_ref();
        let mut raw = [0u8; Self::LEN];
        raw.get_mut(..path.len())?.copy_from_slice(path);
        Some(UnixAddress(raw))
    }

    /// The address from all 108 bytes as sent.
    pub fn from_raw(raw: [u8; Self::LEN]) -> Self {
        UnixAddress(raw)
    }

    /// All 108 bytes.
    pub fn as_raw(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The path: the bytes before the first NUL (empty for an unnamed or
    /// an abstract address; see [`as_raw`](Self::as_raw) for those).
    pub fn path_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(Self::LEN);
        &self.0[..end]
    }
}

impl fmt::Debug for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write!(f, "UnixAddress(\"{}\")", self.0[..end].escape_ascii())
    }
}

impl ProxyHeader {
    /// A v1 header for a TCP client at `source` that connected to
    /// `destination` (both IPv4 or both IPv6).
    pub fn new_v1(source: SocketAddr, destination: SocketAddr) -> Self {
        Self::inet(Version::V1, source, destination)
    }

    /// A v2 `PROXY` header for a TCP client at `source` that connected to
    /// `destination` (both IPv4 or both IPv6), without TLVs.
    pub fn new_v2(source: SocketAddr, destination: SocketAddr) -> Self {
        Self::inet(Version::V2, source, destination)
    }

    fn inet(version: Version, source: SocketAddr, destination: SocketAddr) -> Self {
        ProxyHeader {
            version,
            command: Command::Proxy,
            addresses: ProxyAddresses::Inet {
                transport: Transport::Stream,
                source,
                destination,
            },
            tlvs: Vec::new(),
        }
    }

    /// A v2 `LOCAL` header, as a proxy sends with its health checks.
    pub fn local() -> Self {
        ProxyHeader {
            version: Version::V2,
            command: Command::Local,
            addresses: ProxyAddresses::Unknown,
            tlvs: Vec::new(),
        }
    }

    /// A `PROXY` header without addresses: v1 `UNKNOWN`, v2 `AF_UNSPEC`.
    pub fn unknown(version: Version) -> Self {
        ProxyHeader {
            version,
            command: Command::Proxy,
            addresses: ProxyAddresses::Unknown,
            tlvs: Vec::new(),
        }
    }

    /// The header with a TLV of `kind` appended (v2 only). A
    /// [`Tlv::CRC32C`] TLV's value is computed by the encoder; give it 4
    /// bytes of anything.
    pub fn with_tlv(mut self, kind: u8, value: impl Into<Vec<u8>>) -> Self {
        self.tlvs.push(Tlv::new(kind, value));
        self
    }

    /// The header with a [`Tlv::UNIQUE_ID`] TLV appended.
    pub fn with_unique_id(self, id: &[u8]) -> Self {
        self.with_tlv(Tlv::UNIQUE_ID, id)
    }

    /// The real client's address: the source of a `PROXY` header with IP
    /// addresses; `None` for `LOCAL`, unknown or Unix-domain addresses
    /// (use the connection's own peer address then).
    pub fn source(&self) -> Option<SocketAddr> {
        match (self.command, &self.addresses) {
            (Command::Proxy, ProxyAddresses::Inet { source, .. }) => Some(*source),
            _ => None,
        }
    }

    /// The address the client connected to (the proxy's listening address),
    /// under the same rules as [`source`](Self::source).
    pub fn destination(&self) -> Option<SocketAddr> {
        match (self.command, &self.addresses) {
            (Command::Proxy, ProxyAddresses::Inet { destination, .. }) => Some(*destination),
            _ => None,
        }
    }

    /// The value of the first TLV of `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.kind == kind).map(|t| &t.value[..])
    }

    /// The application protocol the client negotiated (TLS ALPN), e.g.
    /// `h2`.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(Tlv::ALPN)
    }

    /// The host name the client asked for (TLS SNI). `None` also for a
    /// value that is not UTF-8, which a parsed header never has.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(Tlv::AUTHORITY).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The proxy's unique ID for the connection, to correlate logs.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(Tlv::UNIQUE_ID)
    }

    /// The TLS facts of the client's connection to the proxy. `None` also
    /// for a malformed SSL TLV, which a parsed header never has.
    pub fn ssl(&self) -> Option<SslInfo<'_>> {
        self.tlv(Tlv::SSL).and_then(|v| SslInfo::parse(v).ok())
    }

    /// The network namespace the proxy received the connection in. `None`
    /// also for a value that is not US-ASCII, which a parsed header never
    /// has.
    pub fn netns(&self) -> Option<&str> {
        self.tlv(Tlv::NETNS)
            .filter(|v| v.is_ascii())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}
