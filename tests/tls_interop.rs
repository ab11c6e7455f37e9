//! The crate's TLS servers against other TLS implementations: Python's
//! `ssl` module (tests/python/tls_client.py) and the `openssl s_client`
//! command line, both OpenSSL, in both serving modes. Certificates are made
//! at test time (tests/util/tls.rs). Covered: the echo over TLS 1.3 and a
//! forced TLS 1.2, mutual TLS with and without the client's certificate, a
//! client that does not trust the server's CA, an expired server
//! certificate (Python and rustls refuse it), garbage instead of a
//! ClientHello, and a client that leaves without close_notify (reported to
//! the handler as truncation).
//!
//! These tests need `python3` and `openssl`; without them they fail
//! saying what to install (`.ci/run` installs both).
#![cfg(feature = "tls")]

#[path = "util/tls.rs"]
mod pki;
mod util;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::bounded;
use parking_lot::Mutex;
use pki::TestPki;
use serde_json::Value;
use socketserver::echo::Uppercase;
use socketserver::server::Connection;
use socketserver::tls::rustls::pki_types::{CertificateDer, ServerName};
use socketserver::tls::rustls::{ClientConnection, ProtocolVersion, ServerConfig, StreamOwned};
use socketserver::tls::{ClientAuth, TlsAcceptor, client_verifier, is_truncated};
use socketserver::{KeepAliveHandler, Next, ServerHandle, StreamRequest};
use util::{Process, TIMEOUT, connect, eventually, init_logging};

/// What the server's handler saw: each connection's TLS version and
/// client certificate (from `verify_request`), and each error reported to
/// it, with whether it was a truncation.
#[derive(Default)]
struct Seen {
    sessions: Vec<(Option<ProtocolVersion>, Option<CertificateDer<'static>>)>,
    errors: Vec<(ErrorKind, String, bool)>,
}

/// The uppercase echo, recording what it sees.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    fn verify<S: Connection>(&self, request: &StreamRequest<S>) -> bool {
        let tls = request.tls_info().expect("a TLS connection");
        let certificate = tls.peer_certificates().first().cloned();
        self.0.lock().sessions.push((tls.protocol_version(), certificate));
        true
    }

    fn record(&self, error: &io::Error) {
        self.0
            .lock()
            .errors
            .push((error.kind(), error.to_string(), is_truncated(error)));
    }

    fn versions(&self) -> Vec<Option<ProtocolVersion>> {
        self.0
            .lock()
            .sessions
            .iter()
            .map(|(version, _)| *version)
            .collect()
    }

    fn certificates(&self) -> Vec<Option<CertificateDer<'static>>> {
        self.0
            .lock()
            .sessions
            .iter()
            .map(|(_, cert)| cert.clone())
            .collect()
    }

    fn errors(&self) -> Vec<(ErrorKind, String, bool)> {
        self.0.lock().errors.clone()
    }
}

impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for Recorder {
    type State = ();

    fn verify_request(&self, request: &StreamRequest<S>) -> bool {
        self.verify(request)
    }

    fn handle_one(&self, request: &mut StreamRequest<S>, state: &mut ()) -> io::Result<Next> {
        Uppercase.handle_one(request, state)
    }

    fn handle_error(&self, _request: &StreamRequest<S>, error: &io::Error) {
        self.record(error);
    }
}

/// One test's TLS server, of either mode, and what it needs.
struct Case {
    parked: bool,
    pki: TestPki,
    recorder: Recorder,
    server: ServerHandle<SocketAddr>,
}

impl Case {
    fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    fn ca(&self) -> PathBuf {
        self.pki.path("ca.pem")
    }
}

/// Runs `test` against a recording TLS echo server of each mode, whose
/// configuration `config` makes from fresh test certificates; shuts it
/// down after.
fn in_both_modes(config: impl Fn(&TestPki) -> Arc<ServerConfig>, test: impl Fn(&Case)) {
    init_logging();
    for parked in [false, true] {
        let pki = TestPki::generate();
        let recorder = Recorder::default();
        let acceptor = TlsAcceptor::new(config(&pki));
        let (server, running) = util::tls_tcp_server(parked, acceptor, recorder.clone());
        test(&Case {
            parked,
            pki,
            recorder,
            server,
        });
        running.shutdown();
    }
}

/// A server configuration that asks clients for a certificate from the
/// test CA (`auth` says whether they must present one).
fn mutual(pki: &TestPki, auth: ClientAuth) -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder()
            .with_client_cert_verifier(client_verifier(pki.ca.roots(), auth).unwrap())
            .with_single_cert(pki.server.chain(), pki.server.key())
            .unwrap(),
    )
}

/// Fails the test, saying what to install, if `program` cannot run.
fn require(program: &str, version_args: &[&str], package: &str) {
    match Command::new(program).args(version_args).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!("`{program} {}` failed: {output:?}", version_args.join(" ")),
        Err(e) => panic!(
            "the TLS interoperability tests need {program}, which cannot run here ({e}): \
             install it (Debian: apt-get install {package}; .ci/run does)"
        ),
    }
}

/// Runs tests/python/tls_client.py against `port`, trusting `ca`; returns
/// its report, checked against its exit status.
fn python_client(port: u16, ca: &Path, extra: &[&str]) -> Value {
    require("python3", &["--version"], "python3");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tls_client.py");
    let output = Process::spawn(
        Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(ca)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the Python client printed no report ({e}): {output:?}"));
    assert_eq!(
        output.status.success(),
        report["ok"] == true,
        "exit status and report disagree: {output:?}"
    );
    report
}

fn python_ok(report: &Value, version: &str) {
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["version"], version, "{report}");
    assert_eq!(report["replies"], 3, "{report}");
}

/// Asserts the client failed at `stage` with an OpenSSL reason containing
/// `reason`.
fn python_failed(report: &Value, stage: &str, reason: &str) {
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["stage"], stage, "{report}");
    assert!(
        report["reason"].as_str().unwrap_or_default().contains(reason),
        "expected {reason}: {report}"
    );
}

#[test]
fn python_ssl_clients_are_served_over_tls_1_3_and_1_2_in_both_modes() {
    in_both_modes(TestPki::server_config, |case| {
        python_ok(&python_client(case.port(), &case.ca(), &[]), "TLSv1.3");
        python_ok(&python_client(case.port(), &case.ca(), &["--tls1.2"]), "TLSv1.2");
        // An IP address as the name: the certificate carries 127.0.0.1.
        python_ok(
            &python_client(case.port(), &case.ca(), &["--name", "127.0.0.1"]),
            "TLSv1.3",
        );
        eventually("the connections are closed", || case.server.stats().active == 0);
        assert_eq!(
            case.recorder.versions(),
            [
                Some(ProtocolVersion::TLSv1_3),
                Some(ProtocolVersion::TLSv1_2),
                Some(ProtocolVersion::TLSv1_3)
            ],
            "parked: {}",
            case.parked
        );
        // Python ended each session with close_notify: clean ends.
        assert!(case.recorder.errors().is_empty(), "{:?}", case.recorder.errors());
        assert_eq!(case.server.stats().tls_handshake_failures, 0);
    });
}

#[test]
fn python_mutual_tls_with_a_client_certificate_and_without_one() {
    in_both_modes(
        |pki| mutual(pki, ClientAuth::Required),
        |case| {
            let (cert, key) = (case.pki.path("client.pem"), case.pki.path("client.key"));
            let identity = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
            python_ok(&python_client(case.port(), &case.ca(), &identity), "TLSv1.3");
            python_ok(
                &python_client(case.port(), &case.ca(), &[&identity[..], &["--tls1.2"]].concat()),
                "TLSv1.2",
            );
            // The handler saw the very certificate Python presented.
            let client = Some(case.pki.client.cert.clone());
            assert_eq!(case.recorder.certificates(), [client.clone(), client]);

            // Without one: TLS 1.3 clients learn it after their side of
            // the handshake, from the server's alert; TLS 1.2 ones during it.
            python_failed(
                &python_client(case.port(), &case.ca(), &[]),
                "exchange",
                "CERTIFICATE_REQUIRED",
            );
            let report = python_client(case.port(), &case.ca(), &["--tls1.2"]);
            assert_eq!(report["ok"], false, "{report}");
            eventually("both failures are counted", || {
                case.server.stats().tls_handshake_failures == 2
            });
            // Neither got to the handler.
            assert_eq!(case.recorder.certificates().len(), 2, "parked: {}", case.parked);
            let errors = case.recorder.errors();
            assert_eq!(errors.len(), 2, "{errors:?}");
            assert!(
                errors
                    .iter()
                    .all(|(_, message, _)| message.contains("TLS handshake with 127.0.0.1:")),
                "{errors:?}"
            );
        },
    );
}

#[test]
fn a_python_client_that_does_not_trust_the_ca_refuses_the_server() {
    in_both_modes(TestPki::server_config, |case| {
        let report = python_client(case.port(), &case.pki.path("untrusted-ca.pem"), &[]);
        python_failed(&report, "handshake", "CERTIFICATE_VERIFY_FAILED");
        // The client's alert fails the server's side of the handshake too.
        eventually("the server counts it", || {
            case.server.stats().tls_handshake_failures == 1
        });
        assert!(case.recorder.versions().is_empty(), "parked: {}", case.parked);
    });
}

#[test]
fn an_expired_server_certificate_is_refused_by_python_and_by_rustls() {
    in_both_modes(
        |pki| pki.server_config_for(&pki.expired),
        |case| {
            let report = python_client(case.port(), &case.ca(), &[]);
            python_failed(&report, "handshake", "CERTIFICATE_VERIFY_FAILED");
            assert!(report["error"].as_str().unwrap().contains("expired"), "{report}");

            let name = ServerName::try_from("localhost").unwrap();
            let session = ClientConnection::new(case.pki.client_config(), name).unwrap();
            let mut rustls = StreamOwned::new(session, connect(*case.server.local_addr()));
            let error = rustls
                .write_all(b"hello")
                .and_then(|()| rustls.flush())
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
            assert!(error.to_string().contains("expired"), "{error}");

            eventually("both refusals are counted", || {
                case.server.stats().tls_handshake_failures == 2
            });
            assert!(case.recorder.versions().is_empty());
        },
    );
}

#[test]
fn a_python_client_leaving_without_close_notify_is_reported_as_truncation() {
    in_both_modes(TestPki::server_config, |case| {
        let report = python_client(case.port(), &case.ca(), &["--truncate"]);
        python_ok(&report, "TLSv1.3");
        eventually("the truncation is reported", || {
            !case.recorder.errors().is_empty()
        });
        let errors = case.recorder.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (kind, message, truncated) = &errors[0];
        assert!(truncated, "parked {}: {kind:?}: {message}", case.parked);
        assert_eq!(*kind, ErrorKind::UnexpectedEof);
        assert!(message.contains("close_notify"), "{message}");
    });
}

#[test]
fn garbage_instead_of_a_client_hello_is_dropped_and_counted_and_python_still_served() {
    in_both_modes(TestPki::server_config, |case| {
        // A handshake record whose body is no ClientHello, then bytes that
        // are no TLS record at all.
        let mut fake_hello = vec![0x16, 0x03, 0x01, 0x00, 0x40];
        fake_hello.extend([0xab; 0x40]);
        for garbage in [fake_hello, b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()] {
            let mut raw = connect(*case.server.local_addr());
            raw.write_all(&garbage).unwrap();
            // The server answers with an alert at most, then closes: the
            // read ends (it does not time out).
            let mut answer = Vec::new();
            match raw.read_to_end(&mut answer) {
                Ok(_) => assert!(answer.len() <= 7, "more than an alert: {answer:?}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            }
            if let Some(&content_type) = answer.first() {
                assert_eq!(content_type, 0x15, "an alert record: {answer:?}");
            }
        }
        eventually("both are counted", || {
            case.server.stats().tls_handshake_failures == 2
        });
        let errors = case.recorder.errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        for (kind, message, _) in &errors {
            assert_eq!(*kind, ErrorKind::InvalidData, "{message}");
            assert!(message.starts_with("TLS handshake with 127.0.0.1:"), "{message}");
        }
        python_ok(&python_client(case.port(), &case.ca(), &[]), "TLSv1.3");
    });
}

/// `openssl s_client` against `addr`, trusting `ca` and checking the
/// server's name, with `extra` options: sends a line, returns the line
/// that came back (`None` if none did) and how s_client ended.
fn s_client(addr: SocketAddr, ca: &Path, extra: &[&str]) -> (Option<String>, Output) {
    require("openssl", &["version"], "openssl");
    let mut process = Process::spawn(
        Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
            .arg(ca)
            .args([
                "-verify_return_error",
                "-verify_hostname",
                "localhost",
                "-servername",
                "localhost",
                "-quiet",
                "-no_ign_eof",
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = process.child().stdin.take().unwrap();
    // A refused handshake may close the pipe first.
    let _ = stdin.write_all(b"hello from openssl\n");
    let stdout = process.child().stdout.take().unwrap();
    let (tx, line) = bounded(1);
    thread::spawn(move || {
        let mut first = String::new();
        let read = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(read.ok().filter(|&n| n > 0).map(|_| first));
    });
    let reply = line
        .recv_timeout(TIMEOUT)
        .expect("s_client prints the reply or ends");
    // End of input: s_client closes the session (close_notify) and exits.
    drop(stdin);
    (reply, process.finish())
}

#[test]
fn openssl_s_client_round_trips_over_tls_1_3_and_forced_tls_1_2_in_both_modes() {
    in_both_modes(TestPki::server_config, |case| {
        let addr = *case.server.local_addr();
        for extra in [&[][..], &["-tls1_2"]] {
            let (reply, output) = s_client(addr, &case.ca(), extra);
            assert_eq!(
                reply.as_deref(),
                Some("HELLO FROM OPENSSL\n"),
                "{extra:?}: {output:?}"
            );
            assert!(output.status.success(), "{extra:?}: {output:?}");
        }
        eventually("the connections are closed", || case.server.stats().active == 0);
        assert_eq!(
            case.recorder.versions(),
            [Some(ProtocolVersion::TLSv1_3), Some(ProtocolVersion::TLSv1_2)],
            "parked: {}",
            case.parked
        );
        // s_client ended each session with close_notify.
        assert!(case.recorder.errors().is_empty(), "{:?}", case.recorder.errors());
        assert_eq!(case.server.stats().tls_handshake_failures, 0);

        // A CA that did not issue the server's certificate: with
        // -verify_return_error s_client gives up, with a non-zero status.
        let (reply, output) = s_client(addr, &case.pki.path("untrusted-ca.pem"), &[]);
        assert_eq!(reply, None, "{output:?}");
        assert!(!output.status.success(), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("verify error"),
            "{output:?}"
        );
        eventually("the server counts the refusal", || {
            case.server.stats().tls_handshake_failures == 1
        });
    });
}
