//! The tutorials' uppercase echo server: every chunk of bytes a client
//! sends comes back with its ASCII letters uppercased.
//!
//! ```text
//! cargo run --example uppercase_tcp_server                       # 127.0.0.1:9999, worker pool
//! cargo run --example uppercase_tcp_server -- --serial           # one client at a time
//! cargo run --example uppercase_tcp_server -- --parked --workers 4  # idle clients hold no thread
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
use std::time::Duration;

use clap::Parser;
use common::{ServerArgs, context};
use socketserver::echo::Uppercase;
use socketserver::server::{Listener, Parked, RequestMode};
use socketserver::{
    Builder, ParkedTcpServer, ParkedUnixStreamServer, TcpServer, ThreadingTcpServer,
    ThreadingUnixStreamServer, UnixStreamServer,
};

/// Uppercase echo server over TCP or a Unix socket (the socketserver
/// tutorials' example).
#[derive(Parser, Debug)]
#[command(name = "uppercase_tcp_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Listen on a Unix socket at this path instead of TCP
    /// (UnixStreamServer with --serial, ParkedUnixStreamServer with
    /// --parked, else ThreadingUnixStreamServer).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    unix: Option<PathBuf>,
    /// Park connections between requests (ParkedTcpServer): a connection
    /// that sends nothing holds no thread; `--workers` sets how many
    /// requests are served at once.
    #[arg(long, conflicts_with = "serial")]
    parked: bool,
    /// With --parked: close a connection idle this long ("60s").
    #[arg(long, requires = "parked", value_parser = common::parse_timeout)]
    idle_timeout: Option<Duration>,
    /// With --parked: cut off a request not answered this long after its
    /// first bytes ("30s").
    #[arg(long, requires = "parked", value_parser = common::parse_timeout)]
    request_timeout: Option<Duration>,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::UPPERCASE_TCP_PORT);
    common::exit("uppercase_tcp_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let server = &args.server;
    if args.parked {
        return serve_parked(args);
    }
    match (&args.unix, server.serial) {
        (Some(path), true) => serve_unix(UnixStreamServer::builder(), server, path),
        (Some(path), false) => serve_unix(server.sized(ThreadingUnixStreamServer::builder()), server, path),
        (None, true) => serve_tcp(TcpServer::builder(), server),
        (None, false) => serve_tcp(server.sized(ThreadingTcpServer::builder()), server),
    }
}

/// Sets the parked options on a parked server's builder.
fn parked<L: Listener>(args: &Args, builder: Builder<L, Parked>) -> Builder<L, Parked> {
    let mut builder = args
        .server
        .sized_parked(builder)
        .shutdown_grace(args.server.grace);
    if let Some(timeout) = args.idle_timeout {
        builder = builder.idle_timeout(timeout);
    }
    if let Some(timeout) = args.request_timeout {
        builder = builder.request_timeout(timeout);
    }
    builder
}

fn serve_parked(args: &Args) -> io::Result<()> {
    match &args.unix {
        Some(path) => {
            let server = parked(args, ParkedUnixStreamServer::builder())
                .bind(path, Uppercase)
                .map_err(context(format!("cannot listen on {}", path.display())))?;
            common::serve_until_signal(server, "connections")
        }
        None => {
            let addr = args.server.address()?;
            let server = parked(args, ParkedTcpServer::builder())
                .bind(addr, Uppercase)
                .map_err(context(format!("cannot listen on {addr}")))?;
            common::serve_until_signal(server, "connections")
        }
    }
}

fn serve_tcp<M: RequestMode>(builder: Builder<TcpListener, M>, args: &ServerArgs) -> io::Result<()> {
    let addr = args.address()?;
    let server = builder
        .shutdown_grace(args.grace)
        .bind(addr, Uppercase)
        .map_err(context(format!("cannot listen on {addr}")))?;
    common::serve_until_signal(server, "connections")
}

fn serve_unix<M: RequestMode>(
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
