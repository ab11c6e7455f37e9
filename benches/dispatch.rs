//! What dispatching a request costs, in-process, against the plain
//! standard-library servers (benches/fixtures/plain.rs).
//!
//! - `connection`: connect, one 64-byte round trip, close. Through
//!   `ThreadingTcpServer` (a pooled worker takes each connection),
//!   `TcpServer` (served on the loop thread) and a plain server that
//!   starts a thread per connection.
//! - `hand-off`: connect, then wait for the first byte the handler writes
//!   the moment it starts. The difference between `ThreadingTcpServer`
//!   and `TcpServer` is the pool's hand-off latency.
//! - `datagram`: one 64-byte datagram round trip through
//!   `ThreadingUdpServer`, `UdpServer` and a plain `recv_from` loop.
//!
//! ```text
//! cargo bench --bench dispatch
//! ```

#[path = "fixtures/plain.rs"]
mod plain;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use socketserver::echo::Uppercase;
use socketserver::{
    Server, ShutdownHandle, TcpRequest, TcpServer, ThreadingTcpServer, ThreadingUdpServer, UdpServer,
};

const LOCAL: &str = "127.0.0.1:0";
const MESSAGE: [u8; 64] = [b'a'; 64];

/// Serves on a background thread; stop with the handle.
fn start<S: Server<Addr = SocketAddr>>(server: S) -> (SocketAddr, ShutdownHandle) {
    let addr = *server.local_addr();
    let stop = server.shutdown_handle();
    thread::spawn(move || server.serve_forever().unwrap());
    (addr, stop)
}

fn one_connection(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(&MESSAGE).unwrap();
    let mut reply = [0u8; 64];
    stream.read_exact(&mut reply).unwrap();
}

fn connection(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection");
    let (addr, stop) = start(ThreadingTcpServer::bind(LOCAL, Uppercase).unwrap());
    group.bench_function("ThreadingTcpServer", |b| b.iter(|| one_connection(addr)));
    stop.shutdown();
    let (addr, stop) = start(TcpServer::bind(LOCAL, Uppercase).unwrap());
    group.bench_function("TcpServer", |b| b.iter(|| one_connection(addr)));
    stop.shutdown();
    let server = plain::tcp_thread_per_connection(LOCAL.parse().unwrap()).unwrap();
    group.bench_function("plain thread per connection", |b| {
        b.iter(|| one_connection(server.addr))
    });
    server.stop();
    group.finish();
}

fn greet(request: &mut TcpRequest) -> std::io::Result<()> {
    request.write_all(b"!")
}

fn first_byte(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).unwrap();
}

fn hand_off(c: &mut Criterion) {
    let mut group = c.benchmark_group("hand-off");
    let (addr, stop) = start(ThreadingTcpServer::bind(LOCAL, greet).unwrap());
    group.bench_function("ThreadingTcpServer", |b| b.iter(|| first_byte(addr)));
    stop.shutdown();
    let (addr, stop) = start(TcpServer::bind(LOCAL, greet).unwrap());
    group.bench_function("TcpServer", |b| b.iter(|| first_byte(addr)));
    stop.shutdown();
    group.finish();
}

fn datagram(c: &mut Criterion) {
    let mut group = c.benchmark_group("datagram");
    let round_trip = |addr: SocketAddr| {
        let client = UdpSocket::bind(LOCAL).unwrap();
        client.connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        move || {
            client.send(&MESSAGE).unwrap();
            let mut reply = [0u8; 64];
            client.recv(&mut reply).unwrap();
        }
    };
    let (addr, stop) = start(ThreadingUdpServer::bind(LOCAL, Uppercase).unwrap());
    let mut once = round_trip(addr);
    group.bench_function("ThreadingUdpServer", |b| b.iter(&mut once));
    stop.shutdown();
    let (addr, stop) = start(UdpServer::bind(LOCAL, Uppercase).unwrap());
    let mut once = round_trip(addr);
    group.bench_function("UdpServer", |b| b.iter(&mut once));
    stop.shutdown();
    let server = plain::udp_loop(LOCAL.parse().unwrap()).unwrap();
    let mut once = round_trip(server.addr);
    group.bench_function("plain recv_from loop", |b| b.iter(&mut once));
    server.stop();
    group.finish();
}

criterion_group!(benches, connection, hand_off, datagram);
criterion_main!(benches);
