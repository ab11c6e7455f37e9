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
//!
//! Under systemd (feature `systemd`) it serves on the socket passed by
//! socket activation, if any:
//! `systemd-socket-activate --datagram -l 127.0.0.1:9998 target/debug/examples/uppercase_udp_server`.

mod common;

use std::net::UdpSocket;
use std::process::ExitCode;

use clap::Parser;
use common::ServerArgs;
use common::deploy::{Deployment, Program};
use socketserver::echo::Uppercase;

const PROGRAM: Program = Program {
    name: "uppercase_udp_server",
    features: &[],
    restartable: false,
};

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
    let result = Deployment::run(PROGRAM, |deployment| serve(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn serve(args: &ServerArgs, deployment: &mut Deployment) -> std::io::Result<()> {
    let builder = deployment.watch(args.builder::<UdpSocket>(args.mode(false)), None);
    let socket = deployment.socket(&builder, &args.address()?)?;
    let server = builder.from_listener(socket, deployment.watched(Uppercase))?;
    deployment.serve(server, "datagrams")
}
