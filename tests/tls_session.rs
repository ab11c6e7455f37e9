//! The public side of the `tls` module: configurations from PEM files (and
//! what their errors say), client verifiers, and swapping a configuration.
//! The sessions themselves are tested in src/tls/tests.rs.
#![cfg(feature = "tls")]

#[path = "util/tls.rs"]
mod pki;

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pki::TestPki;
use socketserver::tls::rustls::pki_types::{CertificateDer, ServerName};
use socketserver::tls::rustls::{self, ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use socketserver::tls::{
    self, ClientAuth, DEFAULT_HANDSHAKE_TIMEOUT, TlsAcceptor, client_verifier, load_certs, load_private_key,
    load_root_store, server_config_from_pem_files,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate a rustls client is shown by a server on `config`.
fn presented_certificate(config: Arc<ServerConfig>, pki: &TestPki) -> CertificateDer<'static> {
    let (client_sock, server_sock) = UnixStream::pair().unwrap();
    for end in [&client_sock, &server_sock] {
        end.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
    let server = std::thread::spawn(move || {
        let mut stream = StreamOwned::new(ServerConnection::new(config).unwrap(), server_sock);
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).map(|()| byte)
    });
    let client =
        ClientConnection::new(pki.client_config(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut stream = StreamOwned::new(client, client_sock);
    stream.write_all(b"!").unwrap();
    assert_eq!(&server.join().unwrap().unwrap(), b"!");
    stream.conn.peer_certificates().unwrap()[0].clone()
}

/// Asserts `error` is of `kind` and its message contains each of `parts`.
fn assert_error(error: io::Error, kind: io::ErrorKind, parts: &[&str]) {
    let message = error.to_string();
    assert_eq!(error.kind(), kind, "{message}");
    for part in parts {
        assert!(message.contains(part), "{message:?} does not mention {part:?}");
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn an_acceptor_from_pem_files_presents_that_certificate() {
    let pki = TestPki::generate();
    let acceptor = TlsAcceptor::from_pem_files(pki.path("server.pem"), pki.path("server.key")).unwrap();
    assert_eq!(acceptor.current_handshake_timeout(), DEFAULT_HANDSHAKE_TIMEOUT);
    assert_eq!(presented_certificate(acceptor.config(), &pki), pki.server.cert);
}

#[test]
fn swap_replaces_the_configuration_of_every_clone() {
    let pki = TestPki::generate();
    let acceptor = TlsAcceptor::from_pem_files(pki.path("server.pem"), pki.path("server.key")).unwrap();
    let serving = acceptor.clone().handshake_timeout(Duration::from_secs(3));
    let renewed = pki.ca.issue_server(&["localhost"]);
    let (cert, key) = renewed.write(pki.dir.path(), "renewed").unwrap();
    acceptor.swap(Arc::new(server_config_from_pem_files(cert, key).unwrap()));
    assert_eq!(presented_certificate(serving.config(), &pki), renewed.cert);
    assert_eq!(serving.current_handshake_timeout(), Duration::from_secs(3));
}

#[test]
fn a_missing_file_is_named() {
    let pki = TestPki::generate();
    let missing = pki.path("missing.pem");
    let error = TlsAcceptor::from_pem_files(&missing, pki.path("server.key")).unwrap_err();
    assert_error(
        error,
        io::ErrorKind::NotFound,
        &["certificate file", &shown(&missing)],
    );
    let error = TlsAcceptor::from_pem_files(pki.path("server.pem"), &missing).unwrap_err();
    assert_error(
        error,
        io::ErrorKind::NotFound,
        &["private key file", &shown(&missing)],
    );
    assert_error(
        load_root_store(&missing).unwrap_err(),
        io::ErrorKind::NotFound,
        &[&shown(&missing)],
    );
}

#[test]
fn a_file_without_a_certificate_or_key_is_named() {
    let pki = TestPki::generate();
    let empty = pki.path("empty.pem");
    fs::write(&empty, "").unwrap();
    assert_error(
        load_certs(&empty).unwrap_err(),
        io::ErrorKind::InvalidData,
        &["no certificate in", &shown(&empty)],
    );
    assert_error(
        load_private_key(&empty).unwrap_err(),
        io::ErrorKind::InvalidData,
        &["no private key in", &shown(&empty)],
    );

    // The two files given the wrong way round.
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let error = TlsAcceptor::from_pem_files(&key, &cert).unwrap_err();
    assert_error(
        error,
        io::ErrorKind::InvalidData,
        &["no certificate in", &shown(&key), "swapped"],
    );
    let error = load_private_key(&cert).unwrap_err();
    assert_error(
        error,
        io::ErrorKind::InvalidData,
        &["no private key in", &shown(&cert), "swapped"],
    );
}

/// An encrypted key cannot be served without its passphrase: the error
/// says it is encrypted and how to write it out unencrypted, whichever of
/// OpenSSL's two forms it comes in. (The key material is never read.)
#[test]
fn an_encrypted_key_is_named_as_such_with_the_command_that_decrypts_it() {
    let pki = TestPki::generate();
    let pkcs8 = pki.path("enc.key");
    fs::write(
        &pkcs8,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGjMF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_error(
        load_private_key(&pkcs8).unwrap_err(),
        io::ErrorKind::InvalidData,
        &[
            &shown(&pkcs8),
            "is encrypted",
            &format!("openssl pkcs8 -in {} -out", shown(&pkcs8)),
        ],
    );
    let legacy = pki.path("legacy.key");
    fs::write(
        &legacy,
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,A2D8E813F4C46CEEAF3380DB5C25CA34\n\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_error(
        load_private_key(&legacy).unwrap_err(),
        io::ErrorKind::InvalidData,
        &[
            &shown(&legacy),
            "is encrypted",
            &format!("openssl pkey -in {} -out", shown(&legacy)),
        ],
    );
}

/// A trust store is read from a CA's certificate: a key given instead is
/// named as a key, not as a swapped pair.
#[test]
fn a_key_given_as_a_root_store_is_named_as_a_key() {
    let pki = TestPki::generate();
    let key = pki.path("client.key");
    let error = load_root_store(&key).unwrap_err();
    let message = error.to_string();
    assert_error(
        error,
        io::ErrorKind::InvalidData,
        &[&shown(&key), "holds a private key", "CA certificate"],
    );
    assert!(!message.contains("swapped"), "{message}");
}

#[test]
fn a_file_that_is_not_pem_is_named() {
    let pki = TestPki::generate();
    let broken = pki.path("broken.pem");
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_error(
        load_certs(&broken).unwrap_err(),
        io::ErrorKind::InvalidData,
        &["not a valid PEM file", &shown(&broken)],
    );
    let unterminated = pki.path("unterminated.key");
    fs::write(
        &unterminated,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n",
    )
    .unwrap();
    assert_error(
        load_private_key(&unterminated).unwrap_err(),
        io::ErrorKind::InvalidData,
        &["not a valid PEM file", &shown(&unterminated)],
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_names_both_files() {
    let pki = TestPki::generate();
    let (cert, other_key) = (pki.path("server.pem"), pki.path("client.key"));
    let error = TlsAcceptor::from_pem_files(&cert, &other_key).unwrap_err();
    assert_error(
        error,
        io::ErrorKind::InvalidInput,
        &["does not match", &shown(&cert), &shown(&other_key)],
    );
}

#[test]
fn a_chain_file_keeps_its_order_and_a_root_file_makes_a_store() {
    let pki = TestPki::generate();
    let chain = pki.path("chain.pem");
    fs::write(&chain, format!("{}{}", pki.server.cert_pem, pki.ca.cert_pem)).unwrap();
    assert_eq!(
        load_certs(&chain).unwrap(),
        vec![pki.server.cert.clone(), pki.ca.cert.clone()]
    );
    assert_eq!(load_root_store(pki.path("ca.pem")).unwrap().len(), 1);
    assert_eq!(
        load_private_key(pki.path("server.key")).unwrap(),
        pki.server.key()
    );
}

#[test]
fn client_verifiers_need_roots() {
    let pki = TestPki::generate();
    let roots = load_root_store(pki.path("ca.pem")).unwrap();
    for auth in [ClientAuth::Required, ClientAuth::Optional] {
        let verifier = client_verifier(roots.clone(), auth).unwrap();
        assert!(verifier.offer_client_auth());
        assert_eq!(verifier.client_auth_mandatory(), auth == ClientAuth::Required);
    }
    let error = client_verifier(rustls::RootCertStore::empty(), ClientAuth::Required).unwrap_err();
    assert_error(error, io::ErrorKind::InvalidInput, &["client certificates"]);
}

#[test]
fn truncation_is_recognisable() {
    let truncated = io::Error::from(tls::TlsTruncated::default());
    assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
    assert!(tls::is_truncated(&truncated));
    assert!(!tls::is_truncated(&io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "eof"
    )));
    assert!(truncated.to_string().contains("close_notify"));
}
