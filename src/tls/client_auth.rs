//! Mutual TLS: clients that prove who they are with a certificate.

use std::io;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a valid certificate fails the handshake.
    Required,
    /// A client may present none (its
    /// [`peer_certificates`](super::TlsInfo::peer_certificates) are then
    /// empty); one that presents a certificate must present a valid one.
    Optional,
}

/// A verifier of client certificates against `roots` (see
/// [`load_root_store`](super::load_root_store)), for
/// `ServerConfig::builder().with_client_cert_verifier(..)`.
///
/// Fails with `InvalidInput` if `roots` is empty.
///
/// ```
/// use socketserver::tls::{self, ClientAuth};
/// use socketserver::tls::rustls::{RootCertStore, ServerConfig};
///
/// # let ca = rcgen::generate_simple_self_signed(vec!["clients".into()]).unwrap();
/// let mut roots = RootCertStore::empty();
/// # let ca_certificate = ca.cert.der().clone();
/// roots.add(ca_certificate).unwrap(); // or tls::load_root_store("clients-ca.pem")?
/// let verifier = tls::client_verifier(roots, ClientAuth::Required)?;
/// let builder = ServerConfig::builder().with_client_cert_verifier(verifier);
/// // ...then .with_single_cert(chain, key)
///
/// let empty = tls::client_verifier(RootCertStore::empty(), ClientAuth::Optional);
/// assert_eq!(empty.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn client_verifier(
    roots: impl Into<Arc<RootCertStore>>,
    auth: ClientAuth,
) -> io::Result<Arc<dyn ClientCertVerifier>> {
    let builder = WebPkiClientVerifier::builder_with_provider(roots.into(), super::pem::provider());
    let builder = match auth {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    builder.build().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot verify client certificates: {e}"),
        )
    })
}
