//! `uppercase_tcp_server --proxy-protocol`, run for real in every mode:
//! a trusted proxy's PROXY header (v1 or v2) gives the connection its
//! client, which the debug log names; a connection from the proxy without
//! a header is refused; on a Unix socket the peers are the proxies; a bad
//! address is an error naming it.
#![cfg(feature = "proxy-protocol")]

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use socketserver::proxy_protocol::ProxyHeader;
use util::{Process, TIMEOUT, example_binary};

/// The server, its first output line's address, and its log read on a
/// thread (so a chatty debug log never fills the pipe).
struct Running {
    process: Process,
    listening_on: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

fn start(args: &[&str]) -> Running {
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::clone(&log);
    let (process, listening_on, reader) = util::start_logged_example_server(
        "uppercase_tcp_server",
        &[args, &["--grace", "100ms"]].concat(),
        move |line| lines.lock().push(line),
    );
    Running {
        process,
        listening_on,
        log,
        reader,
    }
}

impl Running {
    /// Stops the server and returns its whole log.
    fn stop(mut self) -> Vec<String> {
        self.process.signal(libc::SIGTERM);
        let status = self.process.finish().status;
        self.reader.join().unwrap();
        let log = std::mem::take(&mut *self.log.lock());
        assert!(status.success(), "{status}: {log:#?}");
        log
    }
}

/// The client the proxy claims.
fn client() -> SocketAddr {
    "203.0.113.7:51234".parse().unwrap()
}

/// Sends `header` then a message; returns what came back before the
/// server closed.
fn through_proxy(mut stream: impl Read + Write, header: &[u8]) -> Vec<u8> {
    stream.write_all(header).unwrap();
    stream.write_all(b"hello").unwrap();
    let mut reply = [0u8; 5];
    match stream.read_exact(&mut reply) {
        Ok(()) => reply.to_vec(),
        Err(_) => Vec::new(),
    }
}

fn tcp(addr: &str) -> TcpStream {
    let stream = util::connect(addr.parse().unwrap());
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

#[test]
fn a_trusted_proxys_header_names_the_client_in_every_mode() {
    for mode in [&[][..], &["--serial"], &["--parked"]] {
        let args = [&["--port", "0", "--proxy-protocol", "127.0.0.1"][..], mode].concat();
        let server = start(&args);
        let addr: SocketAddr = server.listening_on.parse().unwrap();
        let v2 = ProxyHeader::new_v2(client(), addr).to_v2().unwrap();
        assert_eq!(
            through_proxy(tcp(&server.listening_on), &v2),
            b"HELLO",
            "{mode:?}"
        );
        let v1 = ProxyHeader::new_v1(client(), addr).to_v1().unwrap();
        assert_eq!(
            through_proxy(tcp(&server.listening_on), &v1),
            b"HELLO",
            "{mode:?}"
        );
        // From the proxy, a connection without a header is refused.
        assert_eq!(through_proxy(tcp(&server.listening_on), b""), b"", "{mode:?}");
        let log = server.stop();
        let named = log
            .iter()
            .filter(|line| line.contains("connection from 203.0.113.7:51234 through the proxy 127.0.0.1:"))
            .count();
        assert_eq!(named, 2, "{mode:?}: {log:#?}");
        assert!(
            log.iter()
                .any(|line| line.contains("no valid PROXY header from the proxy")),
            "{mode:?}: {log:#?}"
        );
    }
}

/// HAProxy's health check as deploy/haproxy.cfg makes it: a v2 `LOCAL`
/// header, `ping`, `PING` back, then a reset. Twice a second per server,
/// it must not fill the log with warnings nor count as a failed request.
#[test]
fn a_health_check_reset_is_no_warning_and_no_error_in_every_mode() {
    for mode in [&[][..], &["--serial"], &["--parked"]] {
        let args = [&["--port", "0", "--proxy-protocol", "127.0.0.1"][..], mode].concat();
        let server = start(&args);
        for _ in 0..2 {
            let mut check = tcp(&server.listening_on);
            check.write_all(&ProxyHeader::local().to_v2().unwrap()).unwrap();
            check.write_all(b"ping\r\n").unwrap();
            let mut reply = [0u8; 6];
            check.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"PING\r\n", "{mode:?}");
            socket2::SockRef::from(&check)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
        }
        let log = server.stop();
        let warnings: Vec<_> = log
            .iter()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .collect();
        assert!(warnings.is_empty(), "{mode:?}: {warnings:#?}");
        assert!(
            log.iter().any(
                |line| line.contains("stopped after 2 connections (0 errors, 0 panics, 2 health checks)")
            ),
            "{mode:?}: {log:#?}"
        );
    }
}

#[test]
fn on_a_unix_socket_the_peers_are_the_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upper.sock");
    for mode in [&[][..], &["--parked"]] {
        let args = [
            &["--unix", path.to_str().unwrap(), "--proxy-protocol", "127.0.0.1"][..],
            mode,
        ]
        .concat();
        let server = start(&args);
        let destination: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let v2 = ProxyHeader::new_v2(client(), destination).to_v2().unwrap();
        let stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(through_proxy(stream, &v2), b"HELLO", "{mode:?}");
        let log = server.stop();
        assert!(
            log.iter()
                .any(|line| line.contains("connection from 203.0.113.7:51234 through the proxy")),
            "{mode:?}: {log:#?}"
        );
    }
}

#[test]
fn a_bad_proxy_address_is_an_error_naming_it() {
    let output = Process::spawn(
        Command::new(example_binary("uppercase_tcp_server"))
            .args([
                "--port",
                "0",
                "--proxy-protocol",
                "127.0.0.1",
                "--proxy-protocol",
                "10.0.0.1/8",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            r#"--proxy-protocol: invalid proxy address or network "10.0.0.1/8": host bits are set"#
        ),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "it must not have listened: {output:?}");
}
