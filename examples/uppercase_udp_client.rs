//! The tutorials' uppercase echo client over UDP.
//!
//! ```text
//! cargo run --example uppercase_udp_client                        # interactive; q quits
//! cargo run --example uppercase_udp_client -- --message hi --count 3
//! ```
//!
//! UDP may lose datagrams: a reply that does not come within `--timeout`
//! is reported, and the client goes on (interactive) or fails (scripted).

mod common;

use std::io;
use std::process::ExitCode;

use clap::Parser;
use common::{ClientArgs, context};

/// Client for the uppercase echo server over UDP.
#[derive(Parser, Debug)]
#[command(name = "uppercase_udp_client", version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args = common::parse_args::<Args>(common::UPPERCASE_UDP_PORT).client;
    common::exit("uppercase_udp_client", run(&args))
}

fn run(args: &ClientArgs) -> io::Result<()> {
    let server = common::resolve(&args.host, args.port)?;
    let socket = common::connected_udp_socket(server)?;
    socket.set_read_timeout(Some(args.timeout))?;
    let mut reply = vec![0; 65_536];
    common::run_client(args, |message| {
        socket.send(message.as_bytes()).map_err(context(server))?;
        let len = socket.recv(&mut reply).map_err(common::reply_error(server))?;
        common::uppercase_reply(server, message, &reply[..len], "")
    })
}
