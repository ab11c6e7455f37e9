//! What a handler may want to know about a connection's TLS session.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, HandshakeKind, ProtocolVersion, ServerConnection};

/// The facts of an established TLS session: what was negotiated, which
/// name the client asked for, and who the client proved to be.
///
/// Taken once the handshake is over; cheap to clone (the client's
/// certificates are shared, not copied).
#[derive(Clone)]
pub struct TlsInfo {
    protocol_version: Option<ProtocolVersion>,
    cipher_suite: Option<CipherSuite>,
    alpn_protocol: Option<Arc<[u8]>>,
    server_name: Option<Arc<str>>,
    peer_certificates: Arc<[CertificateDer<'static>]>,
    handshake_kind: Option<HandshakeKind>,
}

impl TlsInfo {
    pub(crate) fn of(connection: &ServerConnection) -> Self {
        TlsInfo {
            protocol_version: connection.protocol_version(),
            cipher_suite: connection.negotiated_cipher_suite().map(|suite| suite.suite()),
            alpn_protocol: connection.alpn_protocol().map(Arc::from),
            server_name: connection.server_name().map(Arc::from),
            peer_certificates: connection
                .peer_certificates()
                .map_or_else(|| Arc::from([]), Arc::from),
            handshake_kind: connection.handshake_kind(),
        }
    }

    /// The TLS version agreed on (`TLSv1_3` or `TLSv1_2`); `None` only
    /// before the handshake got that far.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.protocol_version
    }

    /// The cipher suite agreed on, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.cipher_suite
    }

    /// The application protocol agreed on through ALPN (e.g. `b"h2"`), if
    /// the server configuration offers some
    /// ([`ServerConfig::alpn_protocols`](rustls::ServerConfig::alpn_protocols))
    /// and the client asked for one of them.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.alpn_protocol.as_deref()
    }

    /// The host name the client asked for (SNI), if it sent one. Clients
    /// send none when they connect to an IP address.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The certificate chain the client presented, its own certificate
    /// first; empty when it presented none. With client authentication
    /// configured (see [`client_verifier`](super::client_verifier)) the
    /// chain has been verified against the configured roots by the time a
    /// handler sees it.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_certificates
    }

    /// Who the client's certificate says it is, for a log line: the
    /// subject's common name, organization and unit (`CN=alice,
    /// O=Example`), or if it has none of those its first DNS name
    /// (`DNS:alice.example`) or URI (`URI:...`). Control characters and
    /// quotes are escaped, as the peer chose them. `None` without a
    /// client certificate.
    pub fn client_name(&self) -> Option<String> {
        super::identity::certificate_name(self.peer_certificates.first()?)
    }

    /// Whether the handshake was a full one or resumed an earlier session
    /// (resumption skips the certificate exchange and costs far less).
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.handshake_kind
    }
}

impl fmt::Debug for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsInfo")
            .field("protocol_version", &self.protocol_version)
            .field("cipher_suite", &self.cipher_suite)
            .field(
                "alpn_protocol",
                &self.alpn_protocol.as_deref().map(String::from_utf8_lossy),
            )
            .field("server_name", &self.server_name)
            .field("peer_certificates", &self.peer_certificates.len())
            .field("handshake_kind", &self.handshake_kind)
            .finish()
    }
}
