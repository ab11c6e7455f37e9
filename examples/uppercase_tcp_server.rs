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
//!
//! Over TLS (feature `tls`), in every mode, with client certificates
//! (mutual TLS) if asked:
//!
//! ```text
//! cargo run --example gen_tls_cert -- --out-dir target/tls
//! cargo run --features tls --example uppercase_tcp_server -- \
//!     --tls-cert target/tls/server.pem --tls-key target/tls/server.key \
//!     [--tls-client-ca target/tls/ca.pem [--tls-client-auth optional]]
//! cargo run --example uppercase_tcp_client -- --tls-ca target/tls/ca.pem \
//!     [--tls-cert target/tls/client.pem --tls-key target/tls/client.key] --message hello
//! ```
//!
//! In production (each with its crate feature; a binary built without it
//! says how to build it when asked):
//!
//! ```text
//! # Behind HAProxy or nginx: connections from 127.0.0.1 must begin with a
//! # PROXY protocol header, whose client address becomes the connection's.
//! cargo run --features proxy-protocol --example uppercase_tcp_server -- --proxy-protocol 127.0.0.1
//! # systemd socket activation (the socket passed, READY=1, the watchdog).
//! cargo build --features systemd --example uppercase_tcp_server
//! systemd-socket-activate -l 127.0.0.1:9999 target/debug/examples/uppercase_tcp_server
//! # Restart without dropping a connection: SIGHUP starts a new process on
//! # the same socket; this one drains and exits.
//! cargo build --features restart --example uppercase_tcp_server
//! target/debug/examples/uppercase_tcp_server &
//! kill -HUP %1
//! ```
//!
//! The socket comes from the previous process after a restart, else from
//! systemd (the first socket passed: a TCP listener, or with `--unix` a
//! Unix one), else from binding `--host`:`--port` (or `--unix`). The
//! server prints "listening on ADDR", then "ready pid N" once it serves,
//! and "exited pid N after K connections" at the end: scripts and tests
//! follow a restart's generations by these lines (a restarted process
//! writes to the same output).

mod common;

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::deploy::{Deployment, Program, ProxyArgs, RestartOptions, Site};
use common::tls::ServerTlsArgs;
use common::{ServerArgs, ShowAddr};
use socketserver::echo::Uppercase;
use socketserver::server::Listener;

const PROGRAM: Program = Program {
    name: "uppercase_tcp_server",
    features: &[],
    restartable: true,
};

/// Uppercase echo server over TCP or a Unix socket (the socketserver
/// tutorials' example).
#[derive(Parser, Debug)]
#[command(name = "uppercase_tcp_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Listen on a Unix socket at this path instead of TCP.
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
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    restart: RestartOptions,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::UPPERCASE_TCP_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    deployment.restart_options(&args.restart)?;
    match &args.unix {
        None => serve::<TcpListener>(args, deployment, &args.server.address()?),
        Some(path) => serve::<UnixListener>(args, deployment, path),
    }
}

/// Serves on an `L` (TCP, or a Unix socket) at `at`, in the mode the
/// options ask for: the server is built here, once, whatever the mode.
fn serve<L>(args: &Args, deployment: &mut Deployment, at: &L::At) -> io::Result<()>
where
    L: Listener + Site,
    L::Addr: ShowAddr,
{
    let mut builder = args.server.builder::<L>(args.server.mode(args.parked));
    if let Some(timeout) = args.idle_timeout {
        builder = builder.idle_timeout(timeout);
    }
    if let Some(timeout) = args.request_timeout {
        builder = builder.request_timeout(timeout);
    }
    let builder = deployment.watch(builder, None);
    let builder = args.tls.apply(&PROGRAM, builder)?;
    let builder = deployment.proxy_protocol(builder, &args.proxy, args.unix.is_some())?;
    let listener = deployment.socket(&builder, at)?;
    let server = builder.from_listener(listener, deployment.watched(Uppercase))?;
    deployment.serve(server, "connections")
}
