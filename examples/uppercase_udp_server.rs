//! The tutorials' uppercase echo over UDP: every datagram is answered with
//! its uppercase, up to a full 65,507-byte one.
//!
//! ```text
//! cargo run --example uppercase_udp_server                  # 127.0.0.1:9998, worker pool
//! cargo run --example uppercase_udp_server -- --serial      # one datagram at a time
//! ```
//!
//! Talk to it with `uppercase_udp_client`, `nc -u 127.0.0.1 9998`, or the
//! tutorials' Python client. Ctrl-C (or SIGTERM) stops it cleanly.

mod common;

use std::net::UdpSocket;
use std::process::ExitCode;

use clap::Parser;
use common::{ServerArgs, context};
use socketserver::echo::Uppercase;
use socketserver::server::RequestMode;
use socketserver::{Builder, ThreadingUdpServer, UdpServer};

/// Uppercase echo server over UDP (the socketserver tutorials' example).
#[derive(Parser, Debug)]
#[command(name = "uppercase_udp_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args = common::parse_args::<Args>(common::UPPERCASE_UDP_PORT).server;
    let result = if args.serial {
        serve(UdpServer::builder(), &args)
    } else {
        serve(args.sized(ThreadingUdpServer::builder()), &args)
    };
    common::exit("uppercase_udp_server", result)
}

fn serve<M: RequestMode>(builder: Builder<UdpSocket, M>, args: &ServerArgs) -> std::io::Result<()> {
    let addr = args.address()?;
    let server = builder
        .shutdown_grace(args.grace)
        .bind(addr, Uppercase)
        .map_err(context(format!("cannot listen on {addr}")))?;
    common::serve_until_signal(server, "datagrams")
}
