//! TLS for the stream servers, on [rustls](https://docs.rs/rustls) with
//! its default crypto provider (aws-lc-rs). Feature `tls`.
//!
//! A [`TlsAcceptor`] holds the rustls [`ServerConfig`](rustls::ServerConfig)
//! every new connection starts from (a certificate, and optionally client
//! authentication) and the handshake timeout; it can be swapped while the
//! server runs to renew a certificate. Each connection gets its own
//! session, whose handshake runs on the thread that serves the connection,
//! never on the accept loop. Once it is established a handler sees the
//! [`TlsInfo`]: version, cipher suite, ALPN protocol, SNI name and the
//! client's certificates.
//!
//! The files a server needs, read with errors that name the file:
//!
//! - [`TlsAcceptor::from_pem_files`]: a certificate chain and its key;
//! - [`load_certs`], [`load_private_key`], [`load_root_store`] and
//!   [`server_config_from_pem_files`], to build a configuration by hand;
//! - [`client_verifier`] for mutual TLS, with [`ClientAuth::Required`] or
//!   [`ClientAuth::Optional`] client certificates.
//!
//! ```
//! use socketserver::tls::{self, ClientAuth, TlsAcceptor};
//! use socketserver::tls::rustls::ServerConfig;
//! use std::sync::Arc;
//!
//! # let dir = tempfile::tempdir()?;
//! # let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! # let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
//! # std::fs::write(&cert_path, generated.cert.pem())?;
//! # std::fs::write(&key_path, generated.signing_key.serialize_pem())?;
//! # let clients_ca_path = &cert_path;
//! // A server certificate, no client certificates.
//! let acceptor = TlsAcceptor::from_pem_files(&cert_path, &key_path)?;
//!
//! // Mutual TLS: clients must present a certificate from the clients' CA.
//! let roots = tls::load_root_store(clients_ca_path)?;
//! let config = ServerConfig::builder()
//!     .with_client_cert_verifier(tls::client_verifier(roots, ClientAuth::Required)?)
//!     .with_single_cert(tls::load_certs(&cert_path)?, tls::load_private_key(&key_path)?)
//!     .map_err(std::io::Error::other)?;
//! let mutual = TlsAcceptor::new(Arc::new(config));
//! # let _ = (acceptor, mutual);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A peer that closes its connection without TLS's `close_notify` is told
//! apart from a clean end: reads fail with [`TlsTruncated`] (see
//! [`is_truncated`]) instead of returning end-of-file.

mod acceptor;
mod client_auth;
mod identity;
mod info;
mod io;
mod pem;
mod session;
mod truncated;

#[cfg(test)]
mod tests;

pub use acceptor::{DEFAULT_HANDSHAKE_TIMEOUT, TlsAcceptor};
pub use client_auth::{ClientAuth, client_verifier};
pub use info::TlsInfo;
pub use pem::{load_certs, load_private_key, load_root_store, server_config_from_pem_files};
pub(crate) use session::{TlsSession, handshake_timed_out};
pub use truncated::{TlsTruncated, is_truncated};

/// The rustls version this module is built on, for building
/// configurations and reading [`TlsInfo`]'s types.
pub use rustls;
