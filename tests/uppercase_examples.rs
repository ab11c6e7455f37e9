//! The uppercase examples, end to end: the real binaries as child
//! processes, real sockets, a signal to stop. Both transports go through
//! the same checks.

mod util;

use std::io::Read;
use std::net::SocketAddr;
use std::process::Output;

use util::{Process, connect, round_trip, udp_client, udp_round_trip};

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    fn start_server(self, extra: &[&str]) -> (Process, SocketAddr) {
        let mut args = vec!["--grace", "200ms"];
        args.extend_from_slice(extra);
        let name = format!("uppercase_{}_server", self.name());
        let (server, addr, _lines) = util::start_example_server(&name, &args);
        (server, addr)
    }

    fn run_client(self, addr: SocketAddr, args: &[&str], stdin: &[u8]) -> Output {
        let name = format!("uppercase_{}_client", self.name());
        util::run_example_client(&name, addr, args, stdin)
    }

    /// What a plain client (like the tutorials' Python one) sends and gets.
    fn raw_round_trip(self, addr: SocketAddr, message: &[u8]) -> Vec<u8> {
        match self {
            Transport::Tcp => round_trip(&mut connect(addr), message).unwrap(),
            Transport::Udp => udp_round_trip(&udp_client(), addr, message).unwrap(),
        }
    }
}

/// Runs both clients (scripted, then interactive) and a plain client;
/// returns how many requests that made.
fn check_server(transport: Transport, addr: SocketAddr) -> u64 {
    let output = transport.run_client(addr, &["--message", "hello 你好", "--count", "3"], b"");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO 你好\n".repeat(3)
    );

    // Interactive: empty input is skipped, q quits.
    let output = transport.run_client(addr, &[], b"abc\n\nDef ghi\nq\nnot sent\n");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        ">>>: ABC\n>>>: >>>: DEF GHI\n>>>: "
    );

    // Bytes outside ASCII pass through; the largest UDP payload fits.
    assert_eq!(
        transport.raw_round_trip(addr, &[0xff, b'a', 0x00]),
        [0xff, b'A', 0x00]
    );
    let big: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(transport.raw_round_trip(addr, &big), big.to_ascii_uppercase());
    match transport {
        // One connection per client run, one per raw round trip.
        Transport::Tcp => 4,
        // One datagram per message.
        Transport::Udp => 3 + 2 + 2,
    }
}

fn threading_server_then_sigterm(transport: Transport) {
    let (mut server, addr) = transport.start_server(&[]);
    let requests = check_server(transport, addr);
    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    let unit = match transport {
        Transport::Tcp => "connections",
        Transport::Udp => "datagrams",
    };
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!("stopped after {requests} {unit} (0 errors, 0 panics)")),
        "{log}"
    );
}

fn serial_server_then_ctrl_c(transport: Transport) {
    let (mut server, addr) = transport.start_server(&["--serial"]);
    check_server(transport, addr);
    server.signal(libc::SIGINT);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn tcp_threading_server_end_to_end_then_sigterm() {
    threading_server_then_sigterm(Transport::Tcp);
}

#[test]
fn udp_threading_server_end_to_end_then_sigterm() {
    threading_server_then_sigterm(Transport::Udp);
}

#[test]
fn tcp_serial_server_end_to_end_then_ctrl_c() {
    serial_server_then_ctrl_c(Transport::Tcp);
}

#[test]
fn udp_serial_server_end_to_end_then_ctrl_c() {
    serial_server_then_ctrl_c(Transport::Udp);
}

#[test]
fn tcp_parked_server_end_to_end_then_sigterm() {
    let (mut server, addr) =
        Transport::Tcp.start_server(&["--parked", "--workers", "2", "--idle-timeout", "30s"]);
    let requests = check_server(Transport::Tcp, addr);
    // Connections wait between requests holding no thread: many idle
    // clients, each answered, then still served.
    let mut idle: Vec<_> = (0..100).map(|_| connect(addr)).collect();
    for client in &mut idle {
        assert_eq!(round_trip(client, b"idle").unwrap(), b"IDLE");
    }
    assert_eq!(round_trip(&mut idle[42], b"again").unwrap(), b"AGAIN");
    server.signal(libc::SIGTERM);
    // Parked connections are closed at once.
    for client in &mut idle {
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
    }
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!(
            "stopped after {} connections (0 errors, 0 panics)",
            requests + 100
        )),
        "{log}"
    );
}

#[test]
fn a_client_connected_at_sigterm_is_closed_cleanly() {
    let (mut server, addr) = Transport::Tcp.start_server(&[]);
    let mut lingering = connect(addr);
    assert_eq!(round_trip(&mut lingering, b"x").unwrap(), b"X");
    server.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    assert_eq!(lingering.read_to_end(&mut rest).unwrap(), 0);
    assert!(server.finish().status.success());
}

#[test]
fn tcp_client_reports_a_server_that_is_not_there() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let output = Transport::Tcp.run_client(addr, &["--message", "hi"], b"");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("uppercase_tcp_client: "));
}

#[test]
fn udp_client_reports_a_missing_reply() {
    // A bound socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let output = Transport::Udp.run_client(addr, &["--message", "hi", "--timeout", "100ms"], b"");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("no reply from {addr} in time")),
        "{output:?}"
    );
}

#[test]
fn a_unix_socket_server_and_client() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("upper.sock");
    let path_arg = path.to_str().unwrap();
    for serial in [false, true] {
        let mut args = vec!["--unix", path_arg, "--grace", "100ms"];
        if serial {
            args.push("--serial");
        }
        let mut server = Process::spawn(
            std::process::Command::new(util::example_binary("uppercase_tcp_server"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped()),
        );
        let lines = server.stdout_lines();
        assert_eq!(
            lines.recv_timeout(util::TIMEOUT).unwrap(),
            format!("listening on {path_arg}")
        );
        let output = Process::spawn(
            std::process::Command::new(util::example_binary("uppercase_tcp_client"))
                .args([
                    "--unix",
                    path_arg,
                    "--message",
                    "over a unix socket",
                    "--count",
                    "2",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped()),
        )
        .finish();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "OVER A UNIX SOCKET\n".repeat(2)
        );
        server.signal(libc::SIGTERM);
        let log = server.finish();
        assert!(log.status.success(), "{log:?}");
        assert!(
            String::from_utf8_lossy(&log.stderr).contains("stopped after 1 connections"),
            "{log:?}"
        );
        // The socket file goes with the server.
        assert!(!path.exists());
    }
}
