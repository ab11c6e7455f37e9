//! The tutorials' uppercase echo server: every chunk of bytes a client
//! sends comes back with its ASCII letters uppercased.
//!
//! ```text
//! cargo run --example uppercase_tcp_server                 # 127.0.0.1:9999, worker pool
//! cargo run --example uppercase_tcp_server -- --serial     # one client at a time
//! RUST_LOG=debug cargo run --example uppercase_tcp_server -- --port 0
//! ```
//!
//! Talk to it with `uppercase_tcp_client`, `nc 127.0.0.1 9999`, or the
//! tutorials' Python client. Ctrl-C (or SIGTERM) stops it cleanly.

mod common;

use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use common::ServerArgs;
use socketserver::echo::Uppercase;
use socketserver::server::Mode;
use socketserver::{Builder, TcpServer, ThreadingTcpServer};

/// Uppercase echo server over TCP (the socketserver tutorials' example).
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args = Args::parse().server;
    let result = if args.serial {
        serve(TcpServer::builder(), &args)
    } else {
        serve(args.sized(ThreadingTcpServer::builder()), &args)
    };
    common::exit("uppercase_tcp_server", result)
}

fn serve<M: Mode>(builder: Builder<TcpListener, M>, args: &ServerArgs) -> std::io::Result<()> {
    let server = builder
        .shutdown_grace(args.grace())
        .bind(args.address(), Uppercase)?;
    common::serve_until_signal(server, "connections")
}
