//! The tutorials' uppercase echo client.
//!
//! ```text
//! cargo run --example uppercase_tcp_client                        # interactive: type, see it uppercased; q quits
//! cargo run --example uppercase_tcp_client -- --message hi --count 3
//! cargo run --example uppercase_tcp_client -- --unix /tmp/upper.sock --message hi
//! cargo run --example uppercase_tcp_client -- --tls-ca target/tls/ca.pem --message hi   # over TLS
//! ```
//!
//! Over TLS (`--tls-ca`, the CA that issued the server's certificate;
//! `--tls-cert` and `--tls-key` for a server that wants a client
//! certificate) the handshake happens at connect time, and a server the
//! CA did not vouch for is refused with the reason.

mod common;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::tls::{ClientStream, ClientTlsArgs};
use common::{ClientArgs, context};

/// Client for the uppercase echo server over TCP or a Unix socket.
#[derive(Parser, Debug)]
#[command(name = "uppercase_tcp_client", version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    tls: ClientTlsArgs,
    /// Connect to the server's Unix socket at this path instead of TCP.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    unix: Option<PathBuf>,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args: Args = common::parse_args(common::UPPERCASE_TCP_PORT);
    common::exit("uppercase_tcp_client", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let client = &args.client;
    match &args.unix {
        Some(path) => {
            let tls = args.tls.connector("localhost")?;
            let shown = path.display().to_string();
            let stream = UnixStream::connect(path).map_err(context(format!("cannot connect to {shown}")))?;
            stream.set_read_timeout(Some(client.timeout))?;
            stream.set_write_timeout(Some(client.timeout))?;
            converse(client, ClientStream::start(stream, tls.as_ref(), &shown)?, &shown)
        }
        None => {
            let tls = args.tls.connector(&client.host)?;
            let stream = common::connect(&client.host, client.port, client.timeout)?;
            stream.set_read_timeout(Some(client.timeout))?;
            stream.set_write_timeout(Some(client.timeout))?;
            let shown = stream.peer_addr()?.to_string();
            log::info!("connected to {shown}");
            converse(client, ClientStream::start(stream, tls.as_ref(), &shown)?, &shown)
        }
    }
}

/// Sends each message and reads back its uppercase, which is exactly as
/// long.
fn converse(args: &ClientArgs, mut stream: impl Read + Write, server: &str) -> io::Result<()> {
    common::run_client(args, |message| {
        stream.write_all(message.as_bytes()).map_err(context(server))?;
        let mut reply = vec![0; message.len()];
        stream
            .read_exact(&mut reply)
            .map_err(common::reply_error(server))?;
        common::uppercase_reply(server, message, &reply, common::tls::TLS_SERVER_HINT)
    })
}
