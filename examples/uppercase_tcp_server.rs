//! The tutorials' uppercase echo server: every chunk of bytes a client
//! sends comes back with its ASCII letters uppercased.
//!
//! ```text
//! cargo run --example uppercase_tcp_server                       # 127.0.0.1:9999, worker pool
//! cargo run --example uppercase_tcp_server -- --serial           # one client at a time
//! cargo run --example uppercase_tcp_server -- --unix /tmp/upper.sock   # a Unix socket instead
//! RUST_LOG=debug cargo run --example uppercase_tcp_server -- --port 0
//! ```
//!
//! Talk to it with `uppercase_tcp_client` (`--unix PATH` for the Unix
//! socket), `nc 127.0.0.1 9999`, or the tutorials' Python client. Ctrl-C
//! (or SIGTERM) stops it cleanly; a Unix socket's file is removed then.

mod common;

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::{ServerArgs, context};
use socketserver::echo::Uppercase;
use socketserver::server::Mode;
use socketserver::{Builder, TcpServer, ThreadingTcpServer, ThreadingUnixStreamServer, UnixStreamServer};

/// Uppercase echo server over TCP or a Unix socket (the socketserver
/// tutorials' example).
#[derive(Parser, Debug)]
#[command(name = "uppercase_tcp_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Listen on a Unix socket at this path instead of TCP
    /// (UnixStreamServer with --serial, else ThreadingUnixStreamServer).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    unix: Option<PathBuf>,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::UPPERCASE_TCP_PORT);
    common::exit("uppercase_tcp_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let server = &args.server;
    match (&args.unix, server.serial) {
        (Some(path), true) => serve_unix(UnixStreamServer::builder(), server, path),
        (Some(path), false) => serve_unix(server.sized(ThreadingUnixStreamServer::builder()), server, path),
        (None, true) => serve_tcp(TcpServer::builder(), server),
        (None, false) => serve_tcp(server.sized(ThreadingTcpServer::builder()), server),
    }
}

fn serve_tcp<M: Mode>(builder: Builder<TcpListener, M>, args: &ServerArgs) -> io::Result<()> {
    let addr = args.address()?;
    let server = builder
        .shutdown_grace(args.grace)
        .bind(addr, Uppercase)
        .map_err(context(format!("cannot listen on {addr}")))?;
    common::serve_until_signal(server, "connections")
}

fn serve_unix<M: Mode>(
    builder: Builder<UnixListener, M>,
    args: &ServerArgs,
    path: &PathBuf,
) -> io::Result<()> {
    let server = builder
        .shutdown_grace(args.grace)
        .bind(path, Uppercase)
        .map_err(context(format!("cannot listen on {}", path.display())))?;
    common::serve_until_signal(server, "connections")
}
