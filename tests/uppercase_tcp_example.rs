//! The uppercase TCP examples, end to end: the real binaries as child
//! processes, real sockets, a signal to stop.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::thread;

use crossbeam_channel::{Receiver, bounded};
use util::{TIMEOUT, connect, round_trip};

/// A child process killed if the test fails before it ends.
struct Process(Option<Child>);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Process {
    fn spawn(command: &mut Command) -> Self {
        Process(Some(command.spawn().expect("start the example")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    fn signal(&mut self, signal: libc::c_int) {
        let pid = self.child().id() as libc::pid_t;
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits, bounded, for the process to end and collects its output.
    fn finish(mut self) -> Output {
        let child = self.0.take().unwrap();
        let pid = child.id();
        let (tx, rx) = bounded(1);
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                // SAFETY: kills our own child process, which hung.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!("the example did not exit within {TIMEOUT:?}");
            }
        }
    }
}

/// Starts the server example on a free port; returns it and its address.
fn start_server(extra: &[&str]) -> (Process, SocketAddr, Receiver<String>) {
    let mut server = Process::spawn(
        Command::new(util::example_binary("uppercase_tcp_server"))
            .args(["--port", "0", "--grace-ms", "200"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout: ChildStdout = server.child().stdout.take().unwrap();
    let (lines_tx, lines) = bounded(16);
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = lines
        .recv_timeout(TIMEOUT)
        .expect("the server prints its address");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    (server, addr, lines)
}

fn run_client(addr: SocketAddr, args: &[&str], stdin: &[u8]) -> Output {
    let port = addr.port().to_string();
    let mut client = Process::spawn(
        Command::new(util::example_binary("uppercase_tcp_client"))
            .args(["--port", &port])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    client.child().stdin.take().unwrap().write_all(stdin).unwrap();
    client.finish()
}

fn check_server(addr: SocketAddr) {
    // Scripted client.
    let output = run_client(addr, &["--message", "hello 你好", "--count", "3"], b"");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO 你好\n".repeat(3)
    );

    // Interactive client: empty input is skipped, q quits.
    let output = run_client(addr, &[], b"abc\n\nDef ghi\nq\nnot sent\n");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        ">>>: ABC\n>>>: >>>: DEF GHI\n>>>: "
    );

    // A plain client, like the tutorials' Python one.
    let mut raw = connect(addr);
    assert_eq!(round_trip(&mut raw, b"mixed Case\n").unwrap(), b"MIXED CASE\n");
    assert_eq!(
        round_trip(&mut raw, &[0xff, b'a', 0x00]).unwrap(),
        [0xff, b'A', 0x00]
    );
}

#[test]
fn threading_server_and_clients_end_to_end_then_sigterm() {
    let (mut server, addr, _lines) = start_server(&[]);
    check_server(addr);
    // A client still connected when the signal comes is closed cleanly.
    let mut lingering = connect(addr);
    assert_eq!(round_trip(&mut lingering, b"x").unwrap(), b"X");
    server.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    assert_eq!(lingering.read_to_end(&mut rest).unwrap(), 0);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("stopped after 4 connections (0 errors, 0 panics)"),
        "{log}"
    );
}

#[test]
fn serial_server_end_to_end_then_ctrl_c() {
    let (mut server, addr, _lines) = start_server(&["--serial"]);
    check_server(addr);
    server.signal(libc::SIGINT);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn client_reports_a_server_that_is_not_there() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let output = run_client(addr, &["--message", "hi"], b"");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("uppercase_tcp_client: "));
}
