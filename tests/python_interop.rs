//! Interoperability with Python: the tutorials' protocol (a
//! `struct.pack('i')` header length, a JSON header, a body) spoken by a
//! plain Python 3 script (tests/python/interop.py, standard library only)
//! against a Rust server, and by a Rust client against a Python server.
#![cfg(all(feature = "message", feature = "auth"))]

mod util;

use std::io::{self, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};
use socketserver::auth::{Authenticated, answer_challenge};
use socketserver::framing::BufStream;
use socketserver::message::{MessageConfig, MessageStream};
use socketserver::{TcpRequest, ThreadingTcpServer};
use util::{Process, TIMEOUT, init_logging, serve};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/interop.py")
}

fn python() -> Command {
    let mut command = Command::new("python3");
    command.arg(script());
    command
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers each message with its body's SHA-256 in the header and its
/// uppercase as the body, in the tutorials' format.
fn message_echo(request: &mut TcpRequest) -> io::Result<()> {
    let mut messages = MessageStream::with_config(request, MessageConfig::tutorial());
    while let Some(header) = messages.read_header()? {
        let body = messages.read_body_to_vec(1 << 20)?;
        let reply = json!({"n": header.get("n"), "sha256": sha256_hex(&body)});
        messages.write_message_bytes(&reply, &body.to_ascii_uppercase())?;
    }
    Ok(())
}

fn python_client(port: u16, key: Option<&str>) -> std::process::Output {
    let mut command = python();
    command.args(["client", &port.to_string()]);
    command.args(key);
    Process::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped())).finish()
}

fn run_python_client(port: u16, key: Option<&str>) -> String {
    let output = python_client(port, key);
    assert!(output.status.success(), "python client failed: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_python_client_talks_to_a_rust_server() {
    init_logging();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", message_echo));
    let out = run_python_client(server.local_addr().port(), None);
    assert_eq!(out.trim(), "python client: 4 messages ok");
    running.shutdown();
}

#[test]
fn a_python_client_passes_the_hmac_challenge() {
    init_logging();
    let key = "shared secret";
    let handler = Authenticated::new(key, message_echo).unwrap();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", handler));
    let out = run_python_client(server.local_addr().port(), Some(key));
    assert_eq!(out.trim(), "python client: 4 messages ok");
    assert_eq!(server.stats().refused, 0);
    running.shutdown();
}

#[test]
fn a_python_client_with_a_wrong_key_is_told_at_once() {
    init_logging();
    let handler = Authenticated::new("shared secret", message_echo).unwrap();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", handler));
    let output = python_client(server.local_addr().port(), Some("a guess"));
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "python client: the server refused the key"
    );
    util::eventually("the refusal is counted", || server.stats().refused == 1);
    running.shutdown();
}

/// Starts interop.py's server (challenging with `key`, if any) and
/// returns it with its output lines and its port.
fn python_server(key: Option<&str>) -> (Process, crossbeam_channel::Receiver<String>, u16) {
    let mut python = Process::spawn(python().arg("server").args(key).stdout(Stdio::piped()));
    let lines = python.stdout_lines();
    let port: u16 = lines
        .recv_timeout(TIMEOUT)
        .expect("the python server's port")
        .parse()
        .unwrap();
    (python, lines, port)
}

#[test]
fn a_rust_client_gets_a_python_servers_verdict() {
    init_logging();
    let (python, lines, port) = python_server(Some("shared secret"));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let refused = answer_challenge(&mut stream, b"a guess").unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied, "{refused}");
    assert_eq!(
        lines.recv_timeout(TIMEOUT).unwrap(),
        "python server: refused the key"
    );
    assert!(python.finish().status.success());

    let (python, lines, port) = python_server(Some("shared secret"));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    answer_challenge(&mut stream, b"shared secret").unwrap();
    let mut messages = MessageStream::with_config(BufStream::new(stream), MessageConfig::tutorial());
    messages
        .write_message_bytes(&json!({"n": 0}), b"welcomed")
        .unwrap();
    let header = messages.read_header().unwrap().expect("a reply");
    assert_eq!(header.get_str("sha256").unwrap(), sha256_hex(b"welcomed"));
    drop(messages);
    assert_eq!(
        lines.recv_timeout(TIMEOUT).unwrap(),
        "python server: 1 messages served"
    );
    assert!(python.finish().status.success());
}

#[test]
fn a_rust_client_talks_to_a_python_server() {
    init_logging();
    let (python, lines, port) = python_server(None);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut messages = MessageStream::with_config(BufStream::new(stream), MessageConfig::tutorial());
    let bodies: [&[u8]; 3] = [b"hello from rust", b"", &[b'x'; 200_000]];
    for (n, body) in bodies.iter().enumerate() {
        messages.write_message_bytes(&json!({"n": n}), body).unwrap();
    }
    for (n, body) in bodies.iter().enumerate() {
        let header = messages.read_header().unwrap().expect("a reply");
        assert_eq!(header.get("n"), Some(&json!(n)));
        assert_eq!(header.get_str("sha256").unwrap(), sha256_hex(body));
        let mut reply = Vec::new();
        messages.body().read_to_end(&mut reply).unwrap();
        assert_eq!(reply, body.to_ascii_uppercase());
    }
    drop(messages);
    assert_eq!(
        lines.recv_timeout(TIMEOUT).unwrap(),
        "python server: 3 messages served"
    );
    assert!(python.finish().status.success());
}
