//! Port life-cycle behaviours from CPython's `test_socketserver.py`: the
//! listening socket is closed after drop and after serving ends, and a
//! server can rebind its port at once.
//!
//! These tests check that a port is free (or refused) after a server
//! closes, which another test binding port 0 at the same moment could
//! falsify by being handed that very port. Cargo runs test binaries one at
//! a time, so these live in a binary of their own, and take `PORTS` to
//! run one at a time within it.

mod util;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use parking_lot::Mutex;
use socketserver::{TcpRequest, TcpServer, ThreadingTcpServer};
use util::{Running, TIMEOUT, connect, init_logging, read_to_end, serve};

static PORTS: Mutex<()> = Mutex::new(());

fn line_echo(request: &mut TcpRequest) -> io::Result<()> {
    let mut line = Vec::new();
    std::io::BufRead::read_until(request, b'\n', &mut line)?;
    request.write_all(&line)
}

/// From `test_socket_closed` / `server_close`: dropping the server closes
/// its listening socket.
#[test]
fn socket_is_closed_after_drop() {
    init_logging();
    let _ports = PORTS.lock();
    let server = TcpServer::bind("127.0.0.1:0", line_echo).unwrap();
    let addr = *server.local_addr();
    drop(server);
    let refused = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

/// The listening socket is closed when `serve_forever` returns after a
/// shutdown, even while the server value lives on.
#[test]
fn socket_is_closed_when_serving_ends() {
    init_logging();
    let _ports = PORTS.lock();
    let server = Arc::new(ThreadingTcpServer::bind("127.0.0.1:0", line_echo).unwrap());
    let addr = *server.local_addr();
    let serving = Arc::clone(&server);
    Running::start(server.shutdown_handle(), move || serving.serve_forever()).shutdown();
    let refused = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    assert!(
        server.serve_forever().is_ok(),
        "serve_forever after shutdown returns at once"
    );
}

/// Replies once and closes first, so the server's side of each connection
/// ends in TIME_WAIT on the server's port.
fn reply_and_close(request: &mut TcpRequest) -> io::Result<()> {
    request.write_all(b"bye")
}

fn leave_time_wait_behind(addr: SocketAddr) {
    let mut client = connect(addr);
    assert_eq!(read_to_end(&mut client).unwrap(), b"bye");
}

/// From `allow_reuse_address`: a server can bind its port again right
/// after the previous one closed, despite connections in TIME_WAIT; with
/// address reuse off, the same rebind fails (so the test can tell).
#[test]
fn server_can_rebind_its_port_right_after_closing() {
    init_logging();
    let _ports = PORTS.lock();
    let (first, running) = serve(TcpServer::bind("127.0.0.1:0", reply_and_close));
    let addr = *first.local_addr();
    leave_time_wait_behind(addr);
    running.shutdown();

    let without_reuse = TcpServer::builder()
        .reuse_address(false)
        .bind(addr, reply_and_close);
    assert_eq!(
        without_reuse.unwrap_err().kind(),
        io::ErrorKind::AddrInUse,
        "TIME_WAIT should block a rebind without SO_REUSEADDR"
    );
    let (_second, running) = serve(TcpServer::bind(addr, reply_and_close));
    leave_time_wait_behind(addr);
    running.shutdown();
}
