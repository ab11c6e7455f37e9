//! What the examples share: command-line options, logging, serving until
//! Ctrl-C or SIGTERM, and the tutorials' client loop. Each example uses
//! part of it.
#![allow(dead_code)]

use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use socketserver::server::Threading;
use socketserver::{Builder, Server};

/// Installs `env_logger`, at `default` level unless `RUST_LOG` says
/// otherwise.
pub fn init_logging(default: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).init();
}

/// Turns a program's result into its exit code, printing the error.
pub fn exit(program: &str, result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where and how a server example listens.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 9999)]
    pub port: u16,
    /// Serve one request at a time on the main thread instead of on a
    /// worker pool.
    #[arg(long)]
    pub serial: bool,
    /// Most requests served at once (worker pool size limit).
    #[arg(long)]
    pub workers: Option<usize>,
    /// How long requests being served get to finish after Ctrl-C, in
    /// milliseconds, before they are cut off.
    #[arg(long, default_value_t = 1000)]
    pub grace_ms: u64,
}

impl ServerArgs {
    pub fn address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }

    /// Applies `--workers` to a threading server's builder.
    pub fn sized<T>(&self, builder: Builder<T, Threading>) -> Builder<T, Threading> {
        match self.workers {
            Some(workers) => builder.max_workers(workers),
            None => builder,
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then stops cleanly and logs what was
/// served. Prints "listening on ADDR" first: tests and scripts read it to
/// learn the port.
pub fn serve_until_signal<S: Server>(server: S, requests: &str) -> io::Result<()> {
    let stop = server.shutdown_handle();
    ctrlc::set_handler(move || {
        log::info!("stopping");
        stop.request_shutdown();
    })
    .map_err(io::Error::other)?;
    println!("listening on {:?}", server.local_addr());
    io::stdout().flush()?;
    server.serve_forever()?;
    let stats = server.stats();
    log::info!(
        "stopped after {} {requests} ({} errors, {} panics)",
        stats.accepted,
        stats.errors,
        stats.panics
    );
    Ok(())
}

/// Where a client example connects, and what it sends.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 9999)]
    pub port: u16,
    /// Send this message instead of reading from the keyboard.
    #[arg(long)]
    pub message: Option<String>,
    /// How many times to send --message.
    #[arg(long, default_value_t = 1, requires = "message")]
    pub count: usize,
    /// Seconds to wait for each reply (fractions allowed).
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

impl ClientArgs {
    pub fn address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    pub fn timeout(&self) -> io::Result<Duration> {
        Duration::try_from_secs_f64(self.timeout)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--timeout: {e}")))
    }
}

/// The tutorials' client: sends `--message` `--count` times, or else
/// reads lines at a `>>>: ` prompt (empty ones skipped, `q` quits), and
/// prints each reply. A reply that times out is reported and, at the
/// prompt, the client goes on.
pub fn run_client(args: &ClientArgs, mut exchange: impl FnMut(&str) -> io::Result<String>) -> io::Result<()> {
    if let Some(message) = &args.message {
        for _ in 0..args.count {
            println!("{}", exchange(message)?);
        }
        return Ok(());
    }
    let mut lines = io::stdin().lock().lines();
    loop {
        print!(">>>: ");
        io::stdout().flush()?;
        let Some(line) = lines.next().transpose()? else {
            return Ok(());
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            continue;
        }
        if line == "q" {
            return Ok(());
        }
        match exchange(line) {
            Ok(reply) => println!("{reply}"),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
}

/// Gives a failed read of a reply a message a user understands.
pub fn reply_error(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "no reply from the server in time")
        }
        io::ErrorKind::UnexpectedEof => io::Error::new(error.kind(), "the server closed the connection"),
        io::ErrorKind::ConnectionRefused => {
            io::Error::new(error.kind(), "nothing is listening at that address")
        }
        _ => error,
    }
}

/// A UDP socket connected to `server`, so only the server's datagrams get
/// through: bound to any local address of the server's family.
pub fn connected_udp_socket(server: impl ToSocketAddrs) -> io::Result<UdpSocket> {
    let server = server
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the host resolved to nothing"))?;
    let any = match server {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(server)?;
    Ok(socket)
}
