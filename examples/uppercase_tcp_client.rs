//! The tutorials' uppercase echo client.
//!
//! ```text
//! cargo run --example uppercase_tcp_client                        # interactive: type, see it uppercased; q quits
//! cargo run --example uppercase_tcp_client -- --message hi --count 3
//! ```

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use clap::Parser;
use common::ClientArgs;

/// Client for the uppercase echo server over TCP.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args = Args::parse().client;
    common::exit("uppercase_tcp_client", run(&args))
}

fn run(args: &ClientArgs) -> io::Result<()> {
    let mut stream = TcpStream::connect(args.address())?;
    stream.set_read_timeout(Some(args.timeout()?))?;
    log::info!("connected to {}", stream.peer_addr()?);
    common::run_client(args, |message| {
        // The reply is exactly as long as the message.
        stream.write_all(message.as_bytes())?;
        let mut reply = vec![0; message.len()];
        stream.read_exact(&mut reply).map_err(common::reply_error)?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    })
}
