//! A UDP echo server: each datagram goes back to whoever sent it.
//!
//! ```text
//! cargo run --example echo_udp                 # on 127.0.0.1:7001
//! cargo run --example echo_udp -- [::1]:7071   # or any address
//! nc -u 127.0.0.1 7001                         # each line is a datagram
//! ```
//!
//! A datagram is a whole request: no connection to keep, no framing to
//! find where a message ends. The workers of a `ThreadingUdpServer` share
//! the socket and each serves the datagrams it receives itself.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::{RequestHandler, ShutdownHandle, ThreadingUdpServer, UdpRequest};

/// Sends each datagram back, unchanged, to the address it came from.
struct Echo;

impl RequestHandler<UdpRequest> for Echo {
    fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
        log::debug!("{} bytes from {}", request.data().len(), request.peer_addr());
        request.reply_data()
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args().nth(1).unwrap_or("127.0.0.1:7001".into());
    let Ok(addr) = arg.parse::<SocketAddr>() else {
        eprintln!("usage: echo_udp [ADDRESS]   (default 127.0.0.1:7001; {arg:?} is no IP:PORT)");
        return ExitCode::from(2);
    };
    if let Err(e) = serve(addr) {
        eprintln!("echo_udp: {e}"); // a bind error names the address
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr) -> io::Result<()> {
    let server = ThreadingUdpServer::bind(addr, Echo)?;
    let addr = server.local_addr(); // the port, if 0 was asked for
    println!("listening on {addr}");
    println!("talk to it: nc -u {} {}", addr.ip(), addr.port());
    stop_on_signals(server.shutdown_handle())?;
    server.serve_forever()
}

/// Ctrl-C or SIGTERM: stop cleanly (serve_forever returns) instead of dying.
fn stop_on_signals(stop: ShutdownHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    Ok(())
}
