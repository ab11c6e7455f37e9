//! The server side's TLS settings, shared by every connection and
//! replaceable while the server runs.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rustls::{ServerConfig, ServerConnection};

use super::pem::server_config_from_pem_files;
use super::session::TlsSession;

/// How long a client has to complete its TLS handshake unless
/// [`TlsAcceptor::handshake_timeout`] says otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Turns accepted connections into TLS sessions: the rustls
/// [`ServerConfig`] every new connection starts from, and how long a
/// handshake may take.
///
/// Clones are cheap and share the configuration: [`swap`](Self::swap) on
/// any clone changes what every clone hands out from then on, so a
/// certificate can be renewed without restarting the server. Connections
/// already open keep the configuration they started with.
///
/// ```
/// use socketserver::tls::{self, TlsAcceptor};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # let dir = tempfile::tempdir()?;
/// # let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
/// # let write = |cert: &std::path::Path, key: &std::path::Path| {
/// #     let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// #     std::fs::write(cert, generated.cert.pem())?;
/// #     std::fs::write(key, generated.signing_key.serialize_pem())
/// # };
/// # write(&cert_path, &key_path)?;
/// let acceptor = TlsAcceptor::from_pem_files(&cert_path, &key_path)?
///     .handshake_timeout(Duration::from_secs(5));
///
/// // Later, when the files have been renewed:
/// # write(&cert_path, &key_path)?;
/// acceptor.swap(Arc::new(tls::server_config_from_pem_files(&cert_path, &key_path)?));
///
/// // A file that is not there is named in the error.
/// let missing = TlsAcceptor::from_pem_files("/nonexistent/server.pem", &key_path).unwrap_err();
/// assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
/// assert!(missing.to_string().contains("/nonexistent/server.pem"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<RwLock<Arc<ServerConfig>>>,
    handshake_timeout: Duration,
}

impl TlsAcceptor {
    /// Serves connections with `config`: a certificate (or a resolver
    /// choosing one by SNI), client authentication, ALPN protocols,
    /// session resumption. Build it with
    /// [`ServerConfig::builder`], or from files with
    /// [`server_config_from_pem_files`](super::server_config_from_pem_files).
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor {
            config: Arc::new(RwLock::new(config)),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Serves the certificate chain in the PEM file `cert_chain_path` (the
    /// server's certificate first, then intermediates) with the private
    /// key in the PEM file `key_path`, without client certificates.
    ///
    /// Errors name the file and what was wrong: it is missing or
    /// unreadable (its `io::ErrorKind`), holds no certificate or no key
    /// (`InvalidData`), or the key does not match the certificate
    /// (`InvalidInput`).
    pub fn from_pem_files(cert_chain_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::new(Arc::new(server_config_from_pem_files(
            cert_chain_path,
            key_path,
        )?)))
    }

    /// How long a client has, from the moment its connection is taken up,
    /// to complete the handshake; past it the connection is dropped.
    /// Default: [`DEFAULT_HANDSHAKE_TIMEOUT`] (10 s). Applies to this
    /// acceptor and clones made from it afterwards.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout in force.
    pub fn current_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Replaces the configuration for connections accepted from now on:
    /// a renewed certificate, new client roots. Connections already open
    /// (or handshaking) keep the configuration they started with.
    pub fn swap(&self, config: Arc<ServerConfig>) {
        *self.config.write() = config;
        log::info!("TLS configuration replaced; new connections use it");
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read())
    }

    /// The instant a handshake starting now must be over by.
    pub(crate) fn handshake_deadline(&self) -> Instant {
        Instant::now() + self.handshake_timeout
    }

    /// A new server-side session on the current configuration.
    pub(crate) fn session(&self) -> io::Result<TlsSession> {
        let connection = ServerConnection::new(self.config())
            .map_err(|e| io::Error::other(format!("cannot start a TLS session: {e}")))?;
        Ok(TlsSession::new(connection))
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config();
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("alpn_protocols", &config.alpn_protocols.len())
            .finish_non_exhaustive()
    }
}
