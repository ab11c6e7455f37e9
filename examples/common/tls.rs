//! TLS on the examples' command lines.
//!
//! Servers take `--tls-cert FILE --tls-key FILE` (PEM) and, for mutual
//! TLS, `--tls-client-ca FILE` with `--tls-client-auth required|optional`
//! ([`ServerTlsArgs`]). Serving TLS is the crate's `tls` feature: a server
//! built without it that is asked to says how to build it and exits with
//! an error.
//!
//! Clients take `--tls-ca FILE`, and `--tls-cert FILE --tls-key FILE` to
//! present a certificate, and `--tls-name NAME` ([`ClientTlsArgs`]). They
//! speak TLS through rustls directly, so they need no feature. Their
//! errors say what went wrong in the words of the options: a server whose
//! certificate no CA in the `--tls-ca` file issued, one that names another
//! host, one that has expired, a server that wants a client certificate.
//!
//! Every error names the file (or the server) it failed on.

use std::fmt::Display;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned,
};
use socketserver::Builder;
use socketserver::server::{Listener, ModeMarker};

use super::deploy::Program;

/// Whether a mutual-TLS server refuses clients without a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// A client without a valid certificate fails its handshake.
    #[default]
    Required,
    /// A client without a certificate is served; one that presents a
    /// certificate must present a valid one.
    Optional,
}

/// A server's TLS options. Without `--tls-cert` the server speaks plain
/// TCP (or plain Unix sockets).
#[derive(clap::Args, Debug, Default)]
pub struct ServerTlsArgs {
    /// Serve TLS with the certificate chain in this PEM file (the server's
    /// certificate first, then intermediates; `gen_tls_cert` makes one to
    /// try). Needs --tls-key. Feature `tls`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients present a certificate issued by a CA in this
    /// PEM file.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: refuse clients without a certificate
    /// (`required`, the default) or serve them too (`optional`).
    #[arg(long, value_enum, value_name = "WHEN", requires = "tls_client_ca")]
    pub tls_client_auth: Option<ClientAuth>,
}

impl ServerTlsArgs {
    /// Whether the server is to speak TLS.
    pub fn enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// `builder`, serving TLS as the options say; unchanged without
    /// `--tls-cert`. Built without the `tls` feature, asking for TLS is an
    /// error that says how to build `program` with it.
    pub fn apply<L: Listener, M: ModeMarker>(
        &self,
        program: &Program,
        builder: Builder<L, M>,
    ) -> io::Result<Builder<L, M>> {
        if !self.enabled() {
            return Ok(builder);
        }
        #[cfg(feature = "tls")]
        {
            let _ = program;
            Ok(builder.tls(self.acceptor()?))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = builder;
            Err(program.needs_feature("TLS (--tls-cert)", "tls"))
        }
    }

    /// The acceptor for the options' files; errors name the file.
    #[cfg(feature = "tls")]
    pub fn acceptor(&self) -> io::Result<socketserver::tls::TlsAcceptor> {
        use socketserver::tls::{self, TlsAcceptor};

        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs both --tls-cert FILE and --tls-key FILE",
            ));
        };
        // Each file on its own first, so that an error names its option;
        // then both, which checks that the key is the certificate's.
        tls::load_certs(cert).map_err(super::context("--tls-cert"))?;
        tls::load_private_key(key).map_err(super::context("--tls-key"))?;
        let served = tls::server_config_from_pem_files(cert, key)?;
        let Some(client_ca) = &self.tls_client_ca else {
            log::info!("TLS: serving {}", cert.display());
            return Ok(TlsAcceptor::new(Arc::new(served)));
        };
        let auth = self.tls_client_auth.unwrap_or_default();
        let verifier = tls::client_verifier(
            tls::load_root_store(client_ca).map_err(super::context("--tls-client-ca"))?,
            match auth {
                ClientAuth::Required => tls::ClientAuth::Required,
                ClientAuth::Optional => tls::ClientAuth::Optional,
            },
        )
        .map_err(super::context(format!("--tls-client-ca {}", client_ca.display())))?;
        let config = tls::rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::clone(&served.cert_resolver));
        log::info!(
            "TLS: serving {}; client certificates from a CA in {} {}",
            cert.display(),
            client_ca.display(),
            match auth {
                ClientAuth::Required => "required",
                ClientAuth::Optional => "accepted (optional)",
            }
        );
        Ok(TlsAcceptor::new(Arc::new(config)))
    }
}

/// A client's TLS options. Without `--tls-ca` the client speaks plain TCP
/// (or a plain Unix socket). Global, so that a client with subcommands
/// (file_client) takes them before or after its subcommand.
#[derive(clap::Args, Debug, Default)]
pub struct ClientTlsArgs {
    /// Speak TLS, trusting the server if a CA in this PEM file issued its
    /// certificate (`gen_tls_cert`'s ca.pem).
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Present the client certificate in this PEM file to a server that
    /// asks for one (mutual TLS). Needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"], global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry (a host name or an IP
    /// address). Default: --host, or localhost over a Unix socket.
    #[arg(long, value_name = "NAME", requires = "tls_ca", global = true)]
    pub tls_name: Option<String>,
}

impl ClientTlsArgs {
    /// The connector the options describe, expecting a server named
    /// `default_name` unless `--tls-name` says otherwise; `None` without
    /// `--tls-ca`.
    pub fn connector(&self, default_name: &str) -> io::Result<Option<TlsConnector>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        let config = client_config(ca, identity)?;
        let name = self.tls_name.as_deref().unwrap_or(default_name);
        TlsConnector::new(Arc::new(config), name, ca, identity.is_some()).map(Some)
    }
}

/// What a client speaking plain TCP adds to an error when its server may
/// be speaking TLS.
pub const TLS_SERVER_HINT: &str = " (a TLS server? pass --tls-ca FILE)";

/// Whether `bytes`, the first a server sent, begin a TLS record (an alert
/// or a handshake message, TLS 1.0 to 1.3): what a TLS server answers a
/// client that spoke plain TCP to it, before it closes.
pub fn starts_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// Reads the certificates in the PEM file `path` (what `option` names
/// it), failing if there are none.
fn read_certs(path: &Path, option: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, option, e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{option} {}: no certificate in it (expected PEM blocks starting with -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// A PEM file's error, naming the file and the option that gave it; a
/// missing file keeps its kind.
fn pem_error(path: &Path, option: &str, error: rustls::pki_types::pem::Error) -> io::Error {
    let kind = match &error {
        rustls::pki_types::pem::Error::Io(e) => e.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, format!("{option} {}: {error}", path.display()))
}

/// The client's private key, from the PEM file `path` (`--tls-key`). An
/// encrypted one is refused with the `openssl` command that writes it out
/// unencrypted, as the servers' (the library's `load_private_key`) is.
fn read_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(super::context(format!("--tls-key {}", path.display())))?;
    let contains = |marker: &str| String::from_utf8_lossy(&pem).contains(marker);
    let command = if contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Some("pkcs8")
    } else if contains("Proc-Type: 4,ENCRYPTED") {
        Some("pkey")
    } else {
        None
    };
    if let Some(command) = command {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "--tls-key {path}: the key is encrypted: write it out unencrypted with \
                 `openssl {command} -in {path} -out key.pem`, and give that file instead",
                path = path.display()
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_error(path, "--tls-key", e))
}

/// The CAs in the PEM file `ca`, as the roots a client trusts.
pub fn root_store(ca: &Path) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(read_certs(ca, "--tls-ca")?);
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("--tls-ca {}: no usable CA certificate in it", ca.display()),
        ));
    }
    Ok(roots)
}

/// A client configuration trusting the CAs in the PEM file `ca` and, with
/// `identity` (a certificate file and its key file), presenting that
/// certificate to servers that ask for one.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> io::Result<ClientConfig> {
    let builder = ClientConfig::builder().with_root_certificates(root_store(ca)?);
    let Some((cert, key)) = identity else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = read_certs(cert, "--tls-cert")?;
    let key_der = read_key(key)?;
    builder.with_client_auth_cert(chain, key_der).map_err(|e| {
        let (cert, key) = (cert.display(), key.display());
        let message = match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                format!("the private key in {key} does not match the certificate in {cert}")
            }
            other => format!("cannot present the certificate in {cert} with the key in {key}: {other}"),
        };
        io::Error::new(io::ErrorKind::InvalidInput, message)
    })
}

/// `name` (a host name or an IP address, brackets allowed) as the name a
/// server's certificate must carry.
pub fn server_name(name: &str) -> io::Result<ServerName<'static>> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} cannot be a TLS server name: {e}"),
        )
    })
}

/// Ends a client's session cleanly: sends close_notify, so that the server
/// sees a clean end rather than a truncation. Best effort: a connection
/// already broken has nothing more to say.
pub fn close_session<S: Read + Write>(stream: &mut StreamOwned<ClientConnection, S>) {
    stream.conn.send_close_notify();
    while stream.conn.wants_write() {
        if stream.conn.write_tls(&mut stream.sock).is_err() {
            break;
        }
    }
    let _ = stream.sock.flush();
}

/// Starts clients' TLS sessions: the configuration, the name the server's
/// certificate must carry, and what the errors mention.
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    facts: Facts,
}

impl TlsConnector {
    /// Sessions on `config` with a server that must be `name` (a host name
    /// or an IP address, brackets allowed); `ca` and `presents_cert` are
    /// for the errors' explanations.
    pub fn new(config: Arc<ClientConfig>, name: &str, ca: &Path, presents_cert: bool) -> io::Result<Self> {
        let server_name = server_name(name)?;
        Ok(TlsConnector {
            facts: Facts {
                ca: ca.to_owned(),
                name: server_name.to_str().into_owned(),
                presents_cert,
            },
            config,
            name: server_name,
        })
    }

    /// Runs the handshake over `stream`, a connection to `server` (as the
    /// errors name it), within the stream's timeouts.
    pub fn connect<S: Read + Write>(&self, stream: S, server: impl Display) -> io::Result<TlsStream<S>> {
        let session = ClientConnection::new(Arc::clone(&self.config), self.name.clone())
            .map_err(|e| io::Error::other(format!("cannot start a TLS session: {e}")))?;
        let mut stream = StreamOwned::new(session, stream);
        while stream.conn.is_handshaking() {
            if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
                let why = match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        "no answer in time (is it a TLS server?)".to_owned()
                    }
                    io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe => {
                        "the server closed the connection (is it a TLS server? does it want a client \
                         certificate, --tls-cert and --tls-key?)"
                            .to_owned()
                    }
                    _ => self.facts.explain(&e).unwrap_or_else(|| e.to_string()),
                };
                return Err(io::Error::new(
                    e.kind(),
                    format!("TLS handshake with {server} failed: {why}"),
                ));
            }
        }
        Ok(TlsStream {
            inner: stream,
            facts: self.facts.clone(),
        })
    }
}

/// What a session's errors mention: the CA file, the server name, whether
/// the client presents a certificate.
#[derive(Clone, Debug)]
struct Facts {
    ca: PathBuf,
    name: String,
    presents_cert: bool,
}

impl Facts {
    /// A TLS error (a rustls error inside `error`) in the options' words;
    /// `None` for any other error.
    fn explain(&self, error: &io::Error) -> Option<String> {
        let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
        let hint = match tls {
            rustls::Error::InvalidCertificate(why) => match why {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "the server's certificate was not issued by a CA in {} (--tls-ca)",
                    self.ca.display()
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    format!(
                        "the server's certificate is not valid for {:?}: pass a name it carries with --tls-name",
                        self.name
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "the server's certificate has expired".to_owned()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet".to_owned()
                }
                _ => "the server's certificate is not acceptable".to_owned(),
            },
            rustls::Error::AlertReceived(alert) if !self.presents_cert => match alert {
                AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure => {
                    "the server requires a client certificate: pass --tls-cert and --tls-key".to_owned()
                }
                _ => "the server refused the session".to_owned(),
            },
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied
                // What rustls sends for a certificate from another CA.
                | AlertDescription::DecryptError,
            ) => "the server refused our client certificate (--tls-cert)".to_owned(),
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => {
                "the server does not speak TLS, or not this TLS".to_owned()
            }
            _ => return Some(format!("TLS: {tls}")),
        };
        Some(format!("{tls}: {hint}"))
    }
}

/// A client's TLS session over `S`: reads and writes plaintext, and ends
/// with close_notify when dropped. Its TLS errors say what went wrong in
/// the options' words.
pub struct TlsStream<S: Read + Write> {
    inner: StreamOwned<ClientConnection, S>,
    facts: Facts,
}

impl<S: Read + Write> TlsStream<S> {
    /// The socket underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner.sock
    }

    /// `error`, explained if it is TLS's.
    fn explained(&self, error: io::Error) -> io::Error {
        match self.facts.explain(&error) {
            Some(explained) => io::Error::new(error.kind(), explained),
            None => error,
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.explained(e))
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// `error` from a write, explained. Over TLS 1.3 a client's handshake
    /// is done before the server has checked its certificate, so a client
    /// the server refuses learns it while it sends: the write fails on a
    /// closed connection, and the reason is the alert the server sent
    /// before closing, still waiting to be read.
    fn write_failed(&mut self, error: io::Error) -> io::Error {
        if matches!(
            error.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ) {
            while let Ok(1..) = self.inner.conn.read_tls(&mut self.inner.sock) {
                if let Err(refused) = self.inner.conn.process_new_packets() {
                    return self.explained(io::Error::new(error.kind(), refused));
                }
            }
        }
        self.explained(error)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.write_failed(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.write_failed(e))
    }
}

impl<S: Read + Write> Drop for TlsStream<S> {
    fn drop(&mut self) {
        close_session(&mut self.inner);
    }
}

/// A client's connection, in plaintext or in a TLS session over it.
pub enum ClientStream<S: Read + Write> {
    Plain(S),
    /// Boxed: a session is a kilobyte, a socket a few bytes.
    Tls(Box<TlsStream<S>>),
}

impl<S: Read + Write> ClientStream<S> {
    /// `stream`, a connection to `server` (as errors name it): over TLS
    /// with `tls` (the handshake done), else in plaintext.
    pub fn start(stream: S, tls: Option<&TlsConnector>, server: impl Display) -> io::Result<Self> {
        Ok(match tls {
            Some(tls) => ClientStream::Tls(Box::new(tls.connect(stream, server)?)),
            None => ClientStream::Plain(stream),
        })
    }
}

impl<S: Read + Write> Read for ClientStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(stream) => stream.read(buf),
            ClientStream::Tls(stream) => stream.read(buf),
        }
    }
}

impl<S: Read + Write> Write for ClientStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(stream) => stream.write(buf),
            ClientStream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(stream) => stream.flush(),
            ClientStream::Tls(stream) => stream.flush(),
        }
    }
}
