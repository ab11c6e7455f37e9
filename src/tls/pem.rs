//! Certificates, keys and trust roots from PEM files, with errors that
//! name the file and say what was wrong with it.

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};

/// Reads every certificate (`-----BEGIN CERTIFICATE-----` block) in the
/// PEM file at `path`, in file order: for a server, its own certificate
/// first, then the intermediates that lead to a root.
///
/// Fails if the file cannot be read (its `io::ErrorKind`, e.g.
/// `NotFound`), is not valid PEM, or holds no certificate
/// (`InvalidData`); every message names the file.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    read_certs(
        path.as_ref(),
        "certificate file",
        "are the certificate and key files swapped?",
    )
}

/// The certificates in the PEM file at `path`, a `what` as the errors
/// call it; `if_key` is the hint for a file that holds a key instead.
fn read_certs(path: &Path, what: &str, if_key: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(path, e))?;
    if certs.is_empty() {
        let hint = if PrivateKeyDer::from_pem_slice(&pem).is_ok() || encrypted_key(&pem).is_some() {
            format!(" (it holds a private key: {if_key})")
        } else {
            String::new()
        };
        return Err(invalid_data(format!(
            "no certificate in {}: expected PEM blocks starting with -----BEGIN CERTIFICATE-----{hint}",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first private key in the PEM file at `path`: PKCS#8
/// (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
/// (`BEGIN EC PRIVATE KEY`).
///
/// Fails as [`load_certs`] does when the file cannot be read, is not PEM,
/// or holds no private key. An encrypted key (`BEGIN ENCRYPTED PRIVATE
/// KEY`, or OpenSSL's older `Proc-Type: 4,ENCRYPTED` form) is refused
/// with `InvalidData` and the `openssl` command that writes it out
/// unencrypted: a server has nobody to ask for the passphrase.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    let pem = read(path, "private key file")?;
    if let Some(command) = encrypted_key(&pem) {
        return Err(invalid_data(format!(
            "the private key in {path} is encrypted, and a server has nobody to ask for its passphrase: \
             write it out unencrypted (kept readable by the server's user only) with \
             `openssl {command} -in {path} -out key.pem`, and give that file instead",
            path = path.display()
        )));
    }
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let hint = if CertificateDer::pem_slice_iter(&pem).next().is_some() {
                " (it holds a certificate: are the certificate and key files swapped?)"
            } else {
                ""
            };
            Err(invalid_data(format!(
                "no private key in {}: expected a PEM block starting with -----BEGIN PRIVATE KEY-----, \
                 -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----{hint}",
                path.display()
            )))
        }
        Err(e) => Err(not_pem(path, e)),
    }
}

/// Reads the certificates in the PEM file at `path` as trust anchors: the
/// CAs whose clients (or servers) are to be believed.
///
/// Fails as [`load_certs`] does, and if a certificate cannot serve as a
/// trust anchor.
pub fn load_root_store(path: impl AsRef<Path>) -> io::Result<RootCertStore> {
    let path = path.as_ref();
    let mut roots = RootCertStore::empty();
    let certs = read_certs(
        path,
        "CA certificate file",
        "a CA certificate is wanted here, not a key",
    )?;
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            invalid_data(format!(
                "certificate {} in {} cannot be a trust anchor: {e}",
                index + 1,
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// A server configuration presenting the certificate chain in
/// `cert_chain_path` with the key in `key_path`, without client
/// certificates: what [`TlsAcceptor::from_pem_files`](super::TlsAcceptor::from_pem_files)
/// serves, and what to hand [`TlsAcceptor::swap`](super::TlsAcceptor::swap)
/// when the files are renewed.
///
/// Fails as [`load_certs`] and [`load_private_key`] do, and with
/// `InvalidInput` if the key does not belong to the certificate.
pub fn server_config_from_pem_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> io::Result<ServerConfig> {
    let (cert_path, key_path) = (cert_chain_path.as_ref(), key_path.as_ref());
    let certs = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the private key in {} does not match the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
            ),
            other => invalid_data(format!(
                "cannot serve the certificate in {} with the key in {}: {other}",
                cert_path.display(),
                key_path.display()
            )),
        })
}

/// The process's default crypto provider if one was installed, else
/// aws-lc-rs (rustls's default). Asking for it explicitly keeps rustls
/// from panicking when a dependency enables a second provider.
pub(super) fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// If `pem` holds an encrypted private key, the `openssl` subcommand that
/// writes it out unencrypted: `pkcs8` for PKCS#8's `BEGIN ENCRYPTED
/// PRIVATE KEY`, `pkey` for OpenSSL's older form, a PKCS#1 or SEC1 block
/// with a `Proc-Type: 4,ENCRYPTED` header (which the PEM parser would
/// otherwise take for a plain key).
fn encrypted_key(pem: &[u8]) -> Option<&'static str> {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
    if contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Some("pkcs8")
    } else if contains(b"Proc-Type: 4,ENCRYPTED") {
        Some("pkey")
    } else {
        None
    }
}

fn read(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read TLS {what} {}: {e}", path.display()),
        )
    })
}

fn not_pem(path: &Path, error: impl Display) -> io::Error {
    invalid_data(format!("{} is not a valid PEM file: {error}", path.display()))
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
