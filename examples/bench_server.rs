//! The servers `scripts/bench-compare.sh` measures, one process each: the
//! crate's uppercase echo servers, and the baselines they are compared
//! with: plain standard-library servers (benches/fixtures/plain.rs), a
//! tokio echo (benches/fixtures/tokio_echo.rs), a tokio-rustls TLS echo
//! (benches/fixtures/tokio_tls.rs), and a hello-world hyper server
//! (benches/fixtures/hyper_hello.rs), which http_server is measured
//! against.
//!
//! ```text
//! cargo run --release --example bench_server -- --kind crate-tcp --port 0
//! cargo run --release --example gen_tls_cert -- --out-dir target/tls
//! cargo run --release --example bench_server -- --kind tokio-tls \
//!     --tls-cert target/tls/server.pem --tls-key target/tls/server.key
//! ```
//!
//! Prints "listening on ADDR" first. On SIGTERM or Ctrl-C a crate server
//! shuts down, timing its own `shutdown()` call, and prints
//! "workers N" (alive when the signal came), "shutdown took N us",
//! "accepted N" (connections, or datagrams) and its peak memory; then it
//! exits.
//!
//! With `--reuse-port` several crate servers share one port (SO_REUSEPORT)
//! and the kernel spreads clients among them (scripts/reuse-port-spread.sh).

mod common;
#[path = "../benches/fixtures/epoll_echo.rs"]
mod epoll_echo;
#[path = "../benches/fixtures/hyper_hello.rs"]
mod hyper_hello;
#[path = "../benches/fixtures/plain.rs"]
mod plain;
#[path = "../benches/fixtures/tokio_echo.rs"]
mod tokio_echo;
#[path = "../benches/fixtures/tokio_tls.rs"]
mod tokio_tls;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use common::deploy::Program;
use common::tls::ServerTlsArgs;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::echo::{FramedUppercase, Uppercase};
use socketserver::server::AnyMode;
use socketserver::{Builder, Mode, Server, TcpServer, ThreadingUdpServer};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    /// ThreadingTcpServer with the uppercase echo.
    CrateTcp,
    /// ThreadingTcpServer with the framed uppercase echo.
    CrateFramed,
    /// ParkedTcpServer with the uppercase echo.
    CrateParked,
    /// ParkedTcpServer with the framed uppercase echo.
    CrateParkedFramed,
    /// ThreadingTcpServer with the uppercase echo over TLS (needs the
    /// `tls` feature, --tls-cert and --tls-key).
    CrateTls,
    /// ParkedTcpServer with the uppercase echo over TLS (the same).
    CrateParkedTls,
    /// ThreadingUdpServer with the uppercase echo.
    CrateUdp,
    /// A std thread-per-connection TCP uppercase echo.
    PlainTcp,
    /// The same, reading into a 64 KiB buffer with TCP_NODELAY on: the
    /// bulk-data baseline.
    PlainTcpBulk,
    /// A std single-thread UDP uppercase echo.
    PlainUdp,
    /// A tokio task-per-connection TCP uppercase echo.
    TokioTcp,
    /// A bare event loop: a thread per core, each with its own epoll set,
    /// the echo served inline (the floor a parked server can approach).
    EpollTcp,
    /// A tokio + tokio-rustls TLS uppercase echo (needs --tls-cert and
    /// --tls-key).
    TokioTls,
    /// A hyper 1 HTTP/1.1 server on tokio answering `hello, world`.
    HyperHttp,
}

/// A server for benchmarks: the crate's or a plain std baseline.
#[derive(Parser, Debug)]
#[command(name = "bench_server", version)]
struct Args {
    /// Which server.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Worker thread stack size ("64KiB"; crate TCP servers).
    #[arg(long, value_parser = common::parse_size)]
    stack: Option<u64>,
    /// Shutdown grace period ("1s"; crate servers).
    #[arg(long, default_value = "1s", value_parser = common::parse_duration)]
    grace: Duration,
    /// The most workers (crate TCP servers; for the parked ones also the
    /// number started).
    #[arg(long)]
    workers: Option<usize>,
    /// The workers started, and kept when idle (crate UDP server).
    #[arg(long)]
    min_workers: Option<usize>,
    /// Set SO_REUSEPORT, so several processes can serve one port (crate
    /// servers).
    #[arg(long)]
    reuse_port: bool,
    /// The most the read-ahead buffer grows to ("64KiB"; crate TCP
    /// servers).
    #[arg(long, value_parser = common::parse_size)]
    max_read_buffer: Option<u64>,
    /// The TLS servers' certificate and key (the crate's take the client
    /// certificate options too).
    #[command(flatten)]
    tls: ServerTlsArgs,
}

const PROGRAM: Program = Program {
    name: "bench_server",
    features: &["tls"],
    restartable: false,
};

fn main() -> ExitCode {
    common::init_logging("warn");
    let args = Args::parse();
    common::exit("bench_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let grace = args.grace;
    let tcp = || pooled(args, Mode::Threading);
    let parked = || pooled(args, Mode::Parked);
    match args.kind {
        Kind::CrateTcp => serve(tcp().bind(addr, Uppercase)?),
        Kind::CrateFramed => serve(tcp().bind(addr, FramedUppercase)?),
        Kind::CrateParked => serve(parked().bind(addr, Uppercase)?),
        Kind::CrateParkedFramed => serve(parked().bind(addr, FramedUppercase)?),
        Kind::CrateTls => serve(with_tls(args, tcp())?.bind(addr, Uppercase)?),
        Kind::CrateParkedTls => serve(with_tls(args, parked())?.bind(addr, Uppercase)?),
        Kind::CrateUdp => {
            let mut builder = ThreadingUdpServer::builder()
                .shutdown_grace(grace)
                .reuse_port(args.reuse_port);
            if let Some(min) = args.min_workers {
                builder = builder.min_workers(min);
            }
            serve(builder.bind(addr, Uppercase)?)
        }
        _ if args.reuse_port => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--reuse-port is for the crate's servers",
        )),
        Kind::PlainTcp => {
            let server = plain::tcp_thread_per_connection(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::PlainTcpBulk => {
            let server = plain::tcp_thread_per_connection_bulk(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::PlainUdp => {
            let server = plain::udp_loop(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::TokioTcp => {
            let server = tokio_echo::echo(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::HyperHttp => {
            let server = hyper_hello::hello(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::EpollTcp => {
            let server = epoll_echo::echo(addr)?;
            serve_baseline(server.addr, || server.stop())
        }
        Kind::TokioTls => {
            let (cert, key) = tls_files(args)?;
            let server = tokio_tls::tls_echo(addr, tokio_tls::config_from_pem(cert, key)?)?;
            serve_baseline(server.addr, || server.stop())
        }
    }
}

/// The certificate and key files a TLS server needs.
fn tls_files(args: &Args) -> io::Result<(&PathBuf, &PathBuf)> {
    match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        _ => {
            let kind = args.kind.to_possible_value().map(|v| v.get_name().to_owned());
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--kind {} needs --tls-cert FILE and --tls-key FILE",
                    kind.unwrap_or_default()
                ),
            ))
        }
    }
}

/// `builder`, serving TLS with the files given (which a TLS kind needs).
fn with_tls<L: socketserver::server::Listener, M: socketserver::server::ModeMarker>(
    args: &Args,
    builder: Builder<L, M>,
) -> io::Result<Builder<L, M>> {
    tls_files(args)?;
    args.tls.apply(&PROGRAM, builder)
}

/// A TCP server's builder in `mode` (threading or parked), with the
/// options both take: `--workers` is the most workers of a threading
/// server, the fixed number of a parked one.
fn pooled(args: &Args, mode: Mode) -> Builder<TcpListener, AnyMode> {
    let mut builder = TcpServer::builder()
        .mode(mode)
        .shutdown_grace(args.grace)
        .reuse_port(args.reuse_port);
    builder = match (args.workers, mode) {
        (Some(workers), Mode::Parked) => builder.workers(workers),
        (Some(workers), _) => builder.max_workers(workers),
        (None, _) => builder,
    };
    if let Some(bytes) = args.stack {
        builder = builder.worker_stack_size(bytes as usize);
    }
    if let Some(bytes) = args.max_read_buffer {
        builder = builder.max_read_buffer_size(bytes as usize);
    }
    builder
}

fn announce(addr: SocketAddr) -> io::Result<()> {
    println!("listening on {addr}");
    io::stdout().flush()
}

/// Serves until a signal, then times `shutdown()`.
fn serve<S: Server<Addr = SocketAddr>>(server: S) -> io::Result<()> {
    // Registered before the address is announced: a signal sent as soon
    // as it is is not missed.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let stop = server.shutdown_handle();
    let handle = server.server_handle().clone();
    let addr = *server.local_addr();
    let serving = std::thread::spawn(move || server.serve_forever());
    announce(addr)?;
    let _ = signals.forever().next();
    println!("workers {}", handle.stats().workers);
    let started = Instant::now();
    stop.shutdown();
    let took = started.elapsed();
    serving
        .join()
        .map_err(|_| io::Error::other("the server thread panicked"))??;
    println!("shutdown took {} us", took.as_micros());
    println!("accepted {}", handle.stats().accepted);
    println!("peak rss {} KiB", peak_rss_kib());
    Ok(())
}

/// Serves a baseline until a signal, then stops it.
fn serve_baseline(addr: SocketAddr, stop: impl FnOnce()) -> io::Result<()> {
    // Registered before the address is announced: a signal sent as soon
    // as it is is not missed.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    announce(addr)?;
    let _ = signals.forever().next();
    stop();
    println!("peak rss {} KiB", peak_rss_kib());
    Ok(())
}

/// The process's peak resident memory (VmHWM), 0 if unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
