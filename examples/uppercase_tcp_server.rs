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

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use socketserver::echo::Uppercase;
use socketserver::{Builder, Mode, TcpServer, ThreadingTcpServer};

#[derive(Parser, Debug)]
#[command(about = "Uppercase echo server over TCP (the socketserver tutorials' example)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// Serve one client at a time on the main thread (TcpServer) instead
    /// of a worker pool (ThreadingTcpServer).
    #[arg(long)]
    serial: bool,
    /// Most clients served at once (worker pool size limit).
    #[arg(long)]
    workers: Option<usize>,
    /// How long connected clients get to finish after Ctrl-C, in
    /// milliseconds, before they are disconnected.
    #[arg(long, default_value_t = 1000)]
    grace_ms: u64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let result = if args.serial {
        serve(TcpServer::builder(), &args)
    } else {
        let mut builder = ThreadingTcpServer::builder();
        if let Some(workers) = args.workers {
            builder = builder.max_workers(workers);
        }
        serve(builder, &args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uppercase_tcp_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve<M: Mode>(builder: Builder<TcpListener, M>, args: &Args) -> std::io::Result<()> {
    let server = builder
        .shutdown_grace(Duration::from_millis(args.grace_ms))
        .bind((args.host.as_str(), args.port), Uppercase)?;
    let stop = server.shutdown_handle();
    ctrlc::set_handler(move || {
        log::info!("stopping");
        stop.request_shutdown();
    })
    .map_err(std::io::Error::other)?;
    // Tests and scripts read this line to learn the port.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.serve_forever()?;
    let stats = server.stats();
    log::info!(
        "stopped after {} connections ({} errors, {} panics)",
        stats.accepted,
        stats.errors,
        stats.panics
    );
    Ok(())
}
