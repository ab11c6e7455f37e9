//! Certificates made at test time with rcgen, so no key ever sits in the
//! repository: a CA, a server certificate for localhost and 127.0.0.1
//! issued by it, a client certificate, an expired server certificate, and
//! a second CA that issued none of them. [`TestPki::generate`] also writes them to a
//! temporary directory as PEM files, for code that loads files.
//!
//! Included with `#[path]` by the TLS unit tests (src/tls), by
//! tests/tls_session.rs and by examples/gen_tls_cert.rs.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The names the test server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate and its private key.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl Identity {
    fn new(cert: rcgen::Certificate, key: &KeyPair) -> Self {
        Identity {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// The private key, PKCS#8.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }

    /// The certificate chain a peer presents: the certificate alone (its
    /// CA is the trust anchor).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone()]
    }

    /// Writes `NAME.pem` (the certificate) and `NAME.key` (the key, readable
    /// by the owner only) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        fs::write(&cert, &self.cert_pem)?;
        write_private(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// A certificate authority that issues test certificates.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn params(common_name: &str, names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("valid subject names");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = params(name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a self-signed CA certificate");
        Ca {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, mut params: CertificateParams, purpose: ExtendedKeyUsagePurpose) -> Identity {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        Identity::new(cert, &key)
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[&str]) -> Identity {
        self.issue(
            params(names.first().copied().unwrap_or("server"), names),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A server certificate for `names` that expired long ago.
    pub fn issue_expired_server(&self, names: &[&str]) -> Identity {
        let mut params = params(names.first().copied().unwrap_or("server"), names);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        self.issue(params, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate named `name`.
    pub fn issue_client(&self, name: &str) -> Identity {
        self.issue(params(name, &[]), ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A root store that trusts this CA alone.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("a valid CA certificate");
        roots
    }

    /// A client configuration that trusts this CA alone.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::builder()
            .with_root_certificates(self.roots())
            .with_no_client_auth()
    }

    /// Writes the CA certificate to `dir/NAME.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> io::Result<PathBuf> {
        let path = dir.join(format!("{name}.pem"));
        fs::write(&path, &self.cert_pem)?;
        Ok(path)
    }
}

/// Everything the TLS tests need, also written as PEM files to a
/// temporary directory: `ca.pem`, `server.pem` + `server.key`,
/// `client.pem` + `client.key`, `expired.pem` + `expired.key`,
/// `untrusted-ca.pem`.
pub struct TestPki {
    pub ca: Ca,
    pub server: Identity,
    pub client: Identity,
    pub expired: Identity,
    /// A CA that issued none of the above: a client trusting it alone
    /// refuses the server.
    pub untrusted_ca: Ca,
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn generate() -> Self {
        let ca = Ca::new("socketserver test CA");
        let server = ca.issue_server(&SERVER_NAMES);
        let client = ca.issue_client("socketserver test client");
        let expired = ca.issue_expired_server(&SERVER_NAMES);
        let untrusted_ca = Ca::new("untrusted test CA");
        let dir = tempfile::tempdir().expect("a temporary directory");
        ca.write(dir.path(), "ca").expect("write ca.pem");
        untrusted_ca
            .write(dir.path(), "untrusted-ca")
            .expect("write untrusted-ca.pem");
        server.write(dir.path(), "server").expect("write server.pem");
        client.write(dir.path(), "client").expect("write client.pem");
        expired.write(dir.path(), "expired").expect("write expired.pem");
        TestPki {
            ca,
            server,
            client,
            expired,
            untrusted_ca,
            dir,
        }
    }

    /// The path of one of the written files, e.g. `"server.key"`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A server configuration presenting `identity`, without client
    /// certificates.
    pub fn server_config_for(&self, identity: &Identity) -> Arc<ServerConfig> {
        Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(identity.chain(), identity.key())
                .expect("a matching certificate and key"),
        )
    }

    /// A server configuration presenting the server certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_for(&self.server)
    }

    /// A client configuration that trusts the test CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::new(self.ca.client_config())
    }

    /// A client configuration that trusts the test CA and presents the
    /// client certificate.
    pub fn client_config_with_cert(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder()
                .with_root_certificates(self.ca.roots())
                .with_client_auth_cert(self.client.chain(), self.client.key())
                .expect("a matching client certificate and key"),
        )
    }
}
