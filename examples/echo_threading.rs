//! An echo server: each line a client sends comes back to it.
//!
//! ```text
//! cargo run --example echo_threading               # on 127.0.0.1:7000
//! cargo run --example echo_parked -- [::1]:7070    # or any address
//! nc 127.0.0.1 7000                                # type lines; Ctrl-D leaves
//! ```
//!
//! echo_threading.rs and echo_parked.rs differ in one word, the server's
//! type. A `ThreadingTcpServer` gives each connection a worker thread for
//! its whole life; a `ParkedTcpServer` lends one a worker for each
//! request only, and between requests the connection waits in epoll
//! holding no thread, so thousands of idle clients cost almost nothing.
//! The handler stays the same because it serves one request per call.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::{KeepAliveHandler, Next, ShutdownHandle, TcpRequest};

/// Sends each line back. One call serves one request, a line: the server
/// does the looping, which is what lets it park a connection in between.
struct Echo;

/// A longer line goes back in pieces of this size: memory stays bounded.
const MAX_LINE: u64 = 64 * 1024;

impl KeepAliveHandler<TcpRequest> for Echo {
    /// Nothing to remember between two requests of a connection.
    type State = ();

    fn open(&self, request: &mut TcpRequest) -> io::Result<()> {
        log::info!("connection from {}", request.peer_addr());
        Ok(())
    }

    fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
        let mut line = Vec::new();
        if (&mut *request).take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            return Ok(Next::Close); // the client has closed its end
        }
        request.write_all(&line)?;
        Ok(Next::KeepOpen)
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let name = env!("CARGO_BIN_NAME");
    let arg = std::env::args().nth(1).unwrap_or("127.0.0.1:7000".into());
    let Ok(addr) = arg.parse::<SocketAddr>() else {
        eprintln!("usage: {name} [ADDRESS]   (default 127.0.0.1:7000; {arg:?} is no IP:PORT)");
        return ExitCode::from(2);
    };
    if let Err(e) = serve(addr) {
        eprintln!("{name}: {e}"); // a bind error names the address
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr) -> io::Result<()> {
    let server = socketserver::ThreadingTcpServer::bind(addr, Echo)?;
    let addr = server.local_addr(); // the port, if 0 was asked for
    println!("listening on {addr}");
    println!("talk to it: nc {} {}", addr.ip(), addr.port());
    stop_on_signals(server.shutdown_handle())?;
    server.serve_forever()
}

/// Ctrl-C or SIGTERM: stop cleanly (serve_forever returns) instead of dying.
fn stop_on_signals(stop: ShutdownHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    Ok(())
}
