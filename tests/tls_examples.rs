//! The examples over TLS, end to end, as child processes with
//! certificates made at test time: `uppercase_tcp_server --tls-cert
//! --tls-key` in every mode (threading, --serial, --parked, --unix) serving
//! `uppercase_tcp_client --tls-ca`; a client that does not trust the
//! server's CA, a server certificate that has expired, mutual TLS
//! (required and optional), files that are missing or do not match, each
//! failing with a message that says why and a non-zero status; a client
//! leaving without close_notify, named in the server's log; the remote
//! shell with its key check inside mutual TLS; file transfer over mutual
//! TLS.
#![cfg(feature = "tls")]

#[path = "util/tls.rs"]
mod pki;
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use pki::TestPki;
use socketserver::tls::rustls::pki_types::ServerName;
use socketserver::tls::rustls::{ClientConnection, StreamOwned};
use util::{Process, TIMEOUT};

/// An example server started with `args`, its address as it printed it,
/// and its log, read on a thread.
struct Server {
    process: Process,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl Server {
    fn start(name: &str, args: &[&str]) -> Server {
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let (process, addr, reader) =
            util::start_logged_example_server(name, &[args, &["--grace", "100ms"]].concat(), move |line| {
                lines.lock().push(line)
            });
        Server {
            process,
            addr,
            log,
            reader,
        }
    }

    /// Where a client reaches it: `--port N`, or `--unix PATH`.
    fn client_args(&self) -> Vec<String> {
        match self.addr.parse::<std::net::SocketAddr>() {
            Ok(addr) => vec!["--port".into(), addr.port().to_string()],
            Err(_) => vec!["--unix".into(), self.addr.clone()],
        }
    }

    /// Waits (bounded) until its log has a line containing `text`: what it
    /// says of a connection that is over for the client may come a moment
    /// later.
    fn wait_for(&self, text: &str) {
        util::eventually(&format!("the log says {text:?}"), || {
            self.log.lock().iter().any(|line| line.contains(text))
        });
    }

    /// The first line of its log containing `text`, waiting for it
    /// (bounded).
    fn line_with(&self, text: &str) -> String {
        self.wait_for(text);
        let log = self.log.lock();
        log.iter().find(|line| line.contains(text)).unwrap().clone()
    }

    /// Stops it with SIGTERM, checks it exited cleanly, returns its log.
    fn stop(mut self) -> String {
        self.process.signal(libc::SIGTERM);
        let status = self.process.finish().status;
        self.reader.join().unwrap();
        let log = self.log.lock().join("\n");
        assert!(status.success(), "{status}: {log}");
        log
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(pki: &TestPki, file: &str) -> String {
    pki.path(file).to_str().unwrap().to_owned()
}

/// `--tls-cert NAME.pem --tls-key NAME.key`: the options that present
/// one of the test certificates (the server's to serve, the client's for
/// mutual TLS, the expired one).
fn presenting(pki: &TestPki, name: &str) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        path(pki, &format!("{name}.pem")),
        "--tls-key".into(),
        path(pki, &format!("{name}.key")),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs uppercase_tcp_client against `server` with `args` and sends
/// `message` twice.
fn uppercase_client(server: &Server, args: &[&str], message: &str) -> Output {
    let reach = server.client_args();
    let reach = strs(&reach);
    let args = [&reach[..], args, &["--message", message, "--count", "2"]].concat();
    util::run_example("uppercase_tcp_client", &args)
}

fn assert_echoed(output: &Output, message: &str) {
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", message.to_uppercase()).repeat(2),
        "{output:?}"
    );
}

fn assert_refused(output: &Output, says: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(stderr(output).contains(says), "expected {says:?}: {output:?}");
}

/// A rustls client that sends a message, reads its echo, then closes the
/// connection under the session, without close_notify.
fn leave_without_close_notify<S: Read + Write>(pki: &TestPki, sock: S, close: impl FnOnce(&S)) {
    let session =
        ClientConnection::new(pki.client_config(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut stream = StreamOwned::new(session, sock);
    stream.write_all(b"cut short").unwrap();
    let mut reply = [0u8; 9];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"CUT SHORT");
    close(&stream.sock);
}

#[test]
fn uppercase_server_and_client_over_tls_in_every_mode() {
    util::init_logging();
    let pki = TestPki::generate();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("upper-tls.sock");
    let socket = socket.to_str().unwrap();
    let modes: [&[&str]; 5] = [
        &["--port", "0"],
        &["--port", "0", "--serial"],
        &["--port", "0", "--parked"],
        &["--unix", socket],
        &["--unix", socket, "--parked"],
    ];
    let tls = presenting(&pki, "server");
    let tls = strs(&tls);
    let (ca, untrusted) = (path(&pki, "ca.pem"), path(&pki, "untrusted-ca.pem"));
    for mode in modes {
        let server = Server::start("uppercase_tcp_server", &[mode, &tls].concat());
        assert_echoed(
            &uppercase_client(&server, &["--tls-ca", &ca], "hello tls"),
            "hello tls",
        );
        // A CA that did not issue the server's certificate.
        assert_refused(
            &uppercase_client(&server, &["--tls-ca", &untrusted], "hello"),
            &format!("the server's certificate was not issued by a CA in {untrusted}"),
        );
        // A client that vanishes without close_notify.
        match server.addr.parse() {
            Ok(addr) => leave_without_close_notify(&pki, util::connect(addr), |sock: &TcpStream| {
                sock.shutdown(Shutdown::Both).unwrap()
            }),
            Err(_) => {
                let sock = UnixStream::connect(&server.addr).unwrap();
                sock.set_read_timeout(Some(TIMEOUT)).unwrap();
                leave_without_close_notify(&pki, sock, |sock: &UnixStream| {
                    sock.shutdown(Shutdown::Both).unwrap()
                })
            }
        }
        server.wait_for("failed: TLS handshake with");
        // It had its answer: no warning, but the handler saw it.
        let left = server.line_with("the peer closed the connection without a TLS close_notify");
        assert!(left.contains(" DEBUG "), "{mode:?}: {left}");
        assert!(
            left.contains("since the server's last answer"),
            "{mode:?}: {left}"
        );
        let log = server.stop();
        assert!(
            // The handshake refused; a client leaving after its answer is
            // no failed request.
            log.contains("stopped after 3 connections (1 errors, 0 panics)"),
            "{mode:?}: {log}"
        );
        assert!(log.contains("received fatal alert: UnknownCA"), "{mode:?}: {log}");
    }
}

#[test]
fn a_client_in_clear_against_a_tls_server_fails_instead_of_printing_its_alert() {
    let pki = TestPki::generate();
    let tls = presenting(&pki, "server");
    let server = Server::start(
        "uppercase_tcp_server",
        &[&["--port", "0"][..], &strs(&tls)].concat(),
    );
    // Five bytes, as many as the start of the server's alert.
    let output = uppercase_client(&server, &[], "hello");
    assert_refused(&output, "is not the message in uppercase");
    assert!(
        stderr(&output).contains(&server.addr),
        "names the server: {output:?}"
    );
    server.wait_for("failed: TLS handshake with");
    server.stop();
}

/// The other way round: a TLS client against a server in clear, whose
/// echo of the ClientHello is no ServerHello. The client says so in one
/// line of its own; rustls's own warning about it is not printed too.
#[test]
fn a_tls_client_against_a_server_in_clear_says_so_in_one_line() {
    let pki = TestPki::generate();
    let server = Server::start("uppercase_tcp_server", &["--port", "0"]);
    let output = uppercase_client(&server, &["--tls-ca", &path(&pki, "ca.pem")], "hello");
    assert_refused(&output, "the server does not speak TLS");
    let stderr = stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("rustls"), "{stderr}");
    server.stop();
}

#[test]
fn uppercase_mutual_tls_required_and_optional() {
    let pki = TestPki::generate();
    let ca = path(&pki, "ca.pem");
    let identity = presenting(&pki, "client");
    let identity = strs(&identity);
    for mode in [&[][..], &["--parked"]] {
        let tls = [
            presenting(&pki, "server"),
            vec!["--tls-client-ca".into(), ca.clone()],
        ]
        .concat();
        let tls = strs(&tls);
        let server = Server::start("uppercase_tcp_server", &[&["--port", "0"], mode, &tls].concat());
        assert_echoed(
            &uppercase_client(&server, &[&["--tls-ca", &ca][..], &identity].concat(), "mutual"),
            "mutual",
        );
        assert_refused(
            &uppercase_client(&server, &["--tls-ca", &ca], "no certificate"),
            "the server requires a client certificate: pass --tls-cert and --tls-key",
        );
        // A certificate the server's CA did not issue (the server's own
        // certificate is no client certificate either).
        let stranger = [
            "--tls-ca",
            &ca,
            "--tls-cert",
            &path(&pki, "server.pem"),
            "--tls-key",
            &path(&pki, "server.key"),
        ];
        assert_refused(
            &uppercase_client(&server, &stranger, "wrong certificate"),
            "the server refused our client certificate",
        );
        server.wait_for("peer sent no certificates");
        server.wait_for("does not allow extended key usage for client authentication");
        // Who the client is, with its connection (at debug level).
        let known = server.line_with("client certificate CN=socketserver test client");
        assert!(known.contains(" DEBUG "), "{known}");
        assert!(known.contains("connection from "), "{known}");
        let log = server.stop();
        assert!(log.contains("client certificates from a CA in"), "{log}");
        assert!(log.contains("stopped after 3 connections (2 errors"), "{log}");

        let optional = [&tls[..], &["--tls-client-auth", "optional"]].concat();
        let server = Server::start(
            "uppercase_tcp_server",
            &[&["--port", "0"], mode, &optional].concat(),
        );
        assert_echoed(
            &uppercase_client(&server, &["--tls-ca", &ca], "anonymous"),
            "anonymous",
        );
        assert_echoed(
            &uppercase_client(&server, &[&["--tls-ca", &ca][..], &identity].concat(), "known"),
            "known",
        );
        server.wait_for("no client certificate");
        server.wait_for("client certificate CN=socketserver test client");
        let log = server.stop();
        assert!(log.contains("stopped after 2 connections (0 errors"), "{log}");
    }
}

#[test]
fn an_expired_server_certificate_is_refused_by_the_client() {
    let pki = TestPki::generate();
    let tls = presenting(&pki, "expired");
    let tls = strs(&tls);
    let server = Server::start("uppercase_tcp_server", &[&["--port", "0"][..], &tls].concat());
    assert_refused(
        &uppercase_client(&server, &["--tls-ca", &path(&pki, "ca.pem")], "hello"),
        "the server's certificate has expired",
    );
    server.stop();
}

#[test]
fn files_that_are_missing_or_do_not_match_are_named() {
    let pki = TestPki::generate();
    let missing = pki.path("missing.pem");
    let missing = missing.to_str().unwrap();
    let (cert, key, ca) = (
        path(&pki, "server.pem"),
        path(&pki, "server.key"),
        path(&pki, "ca.pem"),
    );
    let client_key = path(&pki, "client.key");
    // An encrypted key: only its marker matters, it is never decrypted.
    let encrypted = pki.path("encrypted.key");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGjMF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let encrypted = encrypted.to_str().unwrap();
    let decrypt = format!("`openssl pkcs8 -in {encrypted} -out key.pem`");
    for (args, says) in [
        (
            vec!["--tls-cert", missing, "--tls-key", &key],
            format!("--tls-cert: cannot read TLS certificate file {missing}"),
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", missing],
            format!("--tls-key: cannot read TLS private key file {missing}"),
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &client_key],
            format!("the private key in {client_key} does not match the certificate in {cert}"),
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &key, "--tls-client-ca", missing],
            format!("--tls-client-ca: cannot read TLS CA certificate file {missing}"),
        ),
        // A key where the clients' CA is expected.
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &client_key,
            ],
            format!("--tls-client-ca: no certificate in {client_key}"),
        ),
        // A certificate file where a key is expected.
        (vec!["--tls-cert", &cert, "--tls-key", &ca], ca.clone()),
        (
            vec!["--tls-cert", &cert, "--tls-key", encrypted],
            format!("--tls-key: the private key in {encrypted} is encrypted"),
        ),
        (vec!["--tls-cert", &cert, "--tls-key", encrypted], decrypt.clone()),
    ] {
        let output = util::run_example("uppercase_tcp_server", &[&["--port", "0"], &args[..]].concat());
        assert!(!output.status.success(), "{args:?}: {output:?}");
        assert!(stderr(&output).contains(&says), "{args:?}: {output:?}");
        if args.contains(&"--tls-client-ca") {
            // A CA file has no key to be swapped with.
            assert!(!stderr(&output).contains("swapped"), "{args:?}: {output:?}");
        }
    }
    for (args, says) in [
        (vec!["--tls-ca", missing], missing.to_owned()),
        (vec!["--tls-ca", &key], key.clone()),
        (
            vec!["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &client_key],
            format!("the private key in {client_key} does not match the certificate in {cert}"),
        ),
        (
            vec!["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", encrypted],
            decrypt.clone(),
        ),
    ] {
        let output = util::run_example(
            "uppercase_tcp_client",
            &[&["--port", "9", "--message", "x"], &args[..]].concat(),
        );
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert!(stderr(&output).contains(&says), "{args:?}: {output:?}");
    }
}

/// The remote shell, key in its environment.
#[cfg(all(feature = "message", feature = "auth"))]
fn remote_shell(example: &str, key: &str, args: &[&str]) -> Command {
    let mut command = Command::new(util::example_binary(example));
    command
        .args(args)
        .env("REMOTE_SHELL_KEY", key)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
#[cfg(all(feature = "message", feature = "auth"))]
fn the_remote_shell_checks_its_key_inside_mutual_tls() {
    const KEY: &str = "a key that never crosses the wire in clear";
    let pki = TestPki::generate();
    let ca = path(&pki, "ca.pem");
    let tls = [
        presenting(&pki, "server"),
        vec!["--tls-client-ca".into(), ca.clone()],
    ]
    .concat();
    let tls = strs(&tls);
    let mut server = Process::spawn(&mut remote_shell(
        "remote_shell_server",
        KEY,
        &[&["--port", "0", "--grace", "100ms"][..], &tls].concat(),
    ));
    let lines = server.stdout_lines();
    let addr = util::listening_on(&lines);
    let port = addr.rsplit_once(':').unwrap().1.to_owned();
    let identity = presenting(&pki, "client");
    let identity = strs(&identity);
    let client = |key: &str, tls: &[&str]| {
        let args = [&["--port", &port, "--command", "echo over tls"][..], tls].concat();
        Process::spawn(&mut remote_shell("remote_shell_client", key, &args)).finish()
    };

    let output = client(KEY, &[&["--tls-ca", &ca][..], &identity].concat());
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "over tls\n");

    // The right certificate and the wrong key: the key check still runs.
    let output = client("not the key", &[&["--tls-ca", &ca][..], &identity].concat());
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(stderr(&output).contains("refused the key"), "{output:?}");

    // The right key and no certificate: refused before the key check.
    let output = client(KEY, &["--tls-ca", &ca]);
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(
        stderr(&output).contains("the server requires a client certificate"),
        "{output:?}"
    );

    // The right key in clear, against a TLS server: no challenge comes.
    let output = client(KEY, &["--timeout", "1s"]);
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(
        stderr(&output).contains("no challenge came within 1s (a TLS server? pass --tls-ca FILE)"),
        "{output:?}"
    );
    // Nor before the TLS server gives up on the ClientHello and closes (as
    // this listener does at once, not 10 s later).
    let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closing_port = closing.local_addr().unwrap().port().to_string();
    let closer = std::thread::spawn(move || drop(closing.accept().unwrap()));
    let args = ["--port", &closing_port, "--command", "echo in clear"];
    let output = Process::spawn(&mut remote_shell("remote_shell_client", KEY, &args)).finish();
    closer.join().unwrap();
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(
        stderr(&output).contains(
            "the server closed the connection before sending its challenge (a TLS server? pass --tls-ca FILE)"
        ),
        "{output:?}"
    );

    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    let log = stderr(&output);
    assert!(log.contains("running \"echo over tls\""), "{log}");
    assert_eq!(
        log.matches("running ").count(),
        1,
        "only the first client ran a command: {log}"
    );
}

/// Runs file_client against `server` with `args`.
#[cfg(feature = "message")]
fn file_client(server: &Server, args: &[&str]) -> Output {
    let reach = server.client_args();
    let reach = strs(&reach);
    util::run_example("file_client", &[&reach[..], &["--quiet"], args].concat())
}

#[test]
#[cfg(feature = "message")]
fn files_travel_over_mutual_tls_and_a_client_without_a_certificate_gets_nothing() {
    let pki = TestPki::generate();
    let ca = path(&pki, "ca.pem");
    let root = tempfile::tempdir().unwrap();
    let (store, downloads) = (root.path().join("store"), root.path().join("downloads"));
    std::fs::create_dir(&downloads).unwrap();
    // Large enough to take many TLS records and several of the transfer's
    // 1 MiB buffers, in varied bytes.
    let original = root.path().join("report.bin");
    let contents: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&original, &contents).unwrap();
    let server_tls = [
        presenting(&pki, "server"),
        vec!["--tls-client-ca".into(), ca.clone()],
    ]
    .concat();
    let server = Server::start(
        "file_server",
        &[
            &["--port", "0", "--dir", store.to_str().unwrap()][..],
            &strs(&server_tls),
        ]
        .concat(),
    );
    let identity = [vec!["--tls-ca".into(), ca.clone()], presenting(&pki, "client")].concat();
    let identity = strs(&identity);

    let output = file_client(
        &server,
        &[&identity[..], &["put", original.to_str().unwrap()]].concat(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(store.join("report.bin")).unwrap(), contents);

    // The options may also follow the subcommand.
    let output = file_client(
        &server,
        &[
            &["get", "report.bin", "--out", downloads.to_str().unwrap()][..],
            &identity,
        ]
        .concat(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(downloads.join("report.bin")).unwrap(), contents);

    let output = file_client(&server, &[&identity[..], &["list"]].concat());
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("report.bin"),
        "{output:?}"
    );

    // Trusting the CA but presenting no certificate: refused in the
    // handshake, nothing listed, nothing stored.
    let output = file_client(
        &server,
        &[
            "--tls-ca",
            &ca,
            "put",
            original.to_str().unwrap(),
            "--name",
            "sneaked.bin",
        ],
    );
    assert_refused(&output, "the server requires a client certificate");
    assert!(
        stderr(&output).contains(&server.addr),
        "names the server: {output:?}"
    );
    assert!(!store.join("sneaked.bin").exists());
    // In clear against the TLS server: the client's header is no
    // ClientHello, and the alert the server answers with is no reply.
    let output = file_client(&server, &["--timeout", "1s", "list"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(
        stderr(&output).contains("(a TLS server? pass --tls-ca FILE)"),
        "{output:?}"
    );
    server.wait_for("peer sent no certificates");
    server.stop();
}
