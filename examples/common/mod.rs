//! What the examples share: command-line options (hosts, per-example
//! default ports, durations such as "500ms" and sizes such as "64MiB"),
//! logging, errors that name what failed, serving until Ctrl-C or
//! SIGTERM under systemd or not ([`deploy`]), TLS options for servers and
//! clients ([`tls`]), and the tutorials' client loop. Each example uses
//! part of it.
#![allow(dead_code)]

pub mod deploy;
pub mod tls;

use std::fmt::Display;
use std::io::{self, BufRead, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use socketserver::server::{AnyMode, Transport};
use socketserver::{Builder, Mode};

/// Default ports, one per example server, so any two of them can run side
/// by side. Each client defaults to its server's.
pub const UPPERCASE_TCP_PORT: u16 = 9999;
pub const UPPERCASE_UDP_PORT: u16 = 9998;
pub const FILE_PORT: u16 = 9997;
pub const CHAT_PORT: u16 = 9996;
pub const REMOTE_SHELL_PORT: u16 = 9995;
pub const KV_PORT: u16 = 9994;
pub const HTTP_PORT: u16 = 9993;

/// Installs `env_logger`, at `default` level unless `RUST_LOG` says
/// otherwise. rustls's own warnings are left out by default: every TLS
/// failure is reported already, by a client in the words of its options
/// and by a server's `handle_error`, and rustls's line would only repeat
/// it in its own terms (`RUST_LOG=rustls=warn` brings them back).
pub fn init_logging(default: &str) {
    let filter = format!("{default},rustls=error");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).init();
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

/// Parses the command line into `A`, whose `--port` defaults to
/// `default_port` (shown by `--help`).
pub fn parse_args<A: clap::Parser>(default_port: u16) -> A {
    // clap keeps default values for the life of the program.
    let port: &'static str = Box::leak(default_port.to_string().into_boxed_str());
    let command = A::command().mut_arg("port", |arg| arg.default_value(port).required(false));
    let mut matches = command.get_matches();
    A::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
}

/// Prefixes an error with what it failed on, keeping its kind:
/// `.map_err(context(format!("cannot connect to {addr}")))`.
pub fn context(what: impl Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A duration on the command line: a number and its unit, as in "500ms",
/// "10s", "2m" or "1h 30m". Zero is allowed ("0s").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (write a duration with its unit, such as 500ms or 10s)"))
}

/// A duration that must be longer than zero (a timeout, a limit).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err("must be longer than zero".into()),
        duration => Ok(duration),
    }
}

/// A duration as the options write it ("1s 500ms").
pub fn show_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// A size on the command line: a number of bytes with an optional unit,
/// as in "4096", "64KiB", "64MiB", "1GiB" (powers of 1024) or "10MB"
/// (powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size, such as 4096 or 64MiB"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text} is too large"));
    }
    Ok(bytes as u64)
}

/// A size as the options write it: "64MiB", "1500B".
pub fn show_size(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// The address of `host` (an IP address, bracketed or not, or a name) and
/// `port`; errors name the host.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (bare, port)
        .to_socket_addrs()
        .map_err(context(format!("cannot resolve host {host:?}")))?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("host {host:?} has no address")))
}

/// A TCP connection to `host`:`port`, within `timeout`; errors name the
/// address. With TCP_NODELAY: every client here writes a request and then
/// waits for its answer, and Nagle's algorithm would hold the request's
/// last small segment back until the server's delayed ACK, some 40 ms
/// later (a TLS session, which writes a record at a time, met it on every
/// small upload).
pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addr = resolve(host, port)?;
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(context(format!("cannot connect to {addr}")))?;
    stream.set_nodelay(true).map_err(context(format!(
        "cannot set TCP_NODELAY on the connection to {addr}"
    )))?;
    Ok(stream)
}

/// Where and how a server example listens. Its `--port` default is set
/// by [`parse_args`].
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on: an IP address (127.0.0.1, ::1 or [::1]) or a
    /// host name.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long)]
    pub port: u16,
    /// Serve one request at a time on the main thread instead of on a
    /// worker pool.
    #[arg(long)]
    pub serial: bool,
    /// Most requests served at once (worker pool size limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// How long requests being served get to finish after Ctrl-C or
    /// SIGTERM before they are cut off ("500ms", "2s").
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub grace: Duration,
}

impl ServerArgs {
    /// The address to listen on.
    pub fn address(&self) -> io::Result<SocketAddr> {
        resolve(&self.host, self.port)
    }

    /// The mode `--serial` (or, where a server offers it, `parked`) asks
    /// for; threading otherwise.
    pub fn mode(&self, parked: bool) -> Mode {
        match (self.serial, parked) {
            (true, _) => Mode::Serial,
            (false, true) => Mode::Parked,
            (false, false) => Mode::Threading,
        }
    }

    /// A builder for a server on `T` in `mode`, with `--grace` and
    /// `--workers` applied: in threading mode the most workers, in parked
    /// mode the number of workers, all started at once.
    pub fn builder<T: Transport>(&self, mode: Mode) -> Builder<T, AnyMode> {
        let builder = Builder::<T, AnyMode>::new().mode(mode).shutdown_grace(self.grace);
        let Some(workers) = self.workers else {
            return builder;
        };
        let workers = usize::try_from(workers).unwrap_or(usize::MAX);
        match mode {
            Mode::Parked => builder.workers(workers),
            _ => builder.max_workers(workers),
        }
    }
}

/// The options of a server of a real protocol (kv_server, http_server):
/// where it listens (TCP, or `--unix`), how it serves (parked unless
/// `--threading` or `--serial`), TLS and the PROXY protocol.
#[derive(clap::Args, Debug)]
pub struct ProtocolArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub tls: tls::ServerTlsArgs,
    /// Listen on a Unix socket at this path instead of TCP.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    pub unix: Option<std::path::PathBuf>,
    /// Serve each connection on a thread of its own (ThreadingTcpServer)
    /// instead of parking it between requests (the default).
    #[arg(long, conflicts_with = "serial")]
    pub threading: bool,
    #[command(flatten)]
    pub proxy: deploy::ProxyArgs,
}

impl ProtocolArgs {
    /// The mode the options ask for.
    pub fn mode(&self) -> Mode {
        self.server.mode(!self.threading)
    }
}

/// How a server prints its address in "listening on ADDR".
pub trait ShowAddr {
    fn show(&self) -> String;
}

impl ShowAddr for SocketAddr {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl ShowAddr for std::os::unix::net::SocketAddr {
    fn show(&self) -> String {
        match self.as_pathname() {
            Some(path) => path.display().to_string(),
            None => "(unnamed)".into(),
        }
    }
}

/// Where a client example connects, and what it sends. Its `--port`
/// default is set by [`parse_args`].
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Server address: an IP address (127.0.0.1, ::1 or [::1]) or a host
    /// name.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long)]
    pub port: u16,
    /// Send this message instead of reading from the keyboard.
    #[arg(long)]
    pub message: Option<String>,
    /// How many times to send --message.
    #[arg(long, default_value_t = 1, requires = "message")]
    pub count: usize,
    /// How long to wait for each reply ("500ms", "5s").
    #[arg(long, default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
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

/// The uppercase echo's `reply` from `server` to `message`, checked: it
/// must be the message in uppercase. Anything else is an error, so that a
/// script never takes another server's bytes (a TLS server's alert, say)
/// for an answer.
/// `hint` says what else `server` may be.
pub fn uppercase_reply(server: impl Display, message: &str, reply: &[u8], hint: &str) -> io::Result<String> {
    if reply == message.to_ascii_uppercase().as_bytes() {
        return Ok(String::from_utf8_lossy(reply).into_owned());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{server}: the reply {:?} is not the message in uppercase: not the uppercase echo{hint}",
            String::from_utf8_lossy(reply)
        ),
    ))
}

/// Gives a failed read of a reply from `server` a message a user
/// understands.
pub fn reply_error(server: impl Display) -> impl Fn(io::Error) -> io::Error {
    move |error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, format!("no reply from {server} in time"))
        }
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => {
            io::Error::new(error.kind(), format!("{server} closed the connection"))
        }
        io::ErrorKind::ConnectionRefused => {
            io::Error::new(error.kind(), format!("nothing is listening at {server}"))
        }
        _ => context(format!("{server}"))(error),
    }
}

/// A UDP socket connected to `addr`, so only its datagrams get through:
/// bound to any local address of its family.
pub fn connected_udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let any = match addr {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let socket = UdpSocket::bind(any).map_err(context(format!("cannot open a UDP socket on {any}")))?;
    socket
        .connect(addr)
        .map_err(context(format!("cannot reach {addr}")))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_connections_do_not_wait_for_nagle() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = connect("127.0.0.1", port, Duration::from_secs(10)).unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[test]
    fn durations_have_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_timeout("0s").is_err());
        assert_eq!(show_duration(Duration::from_millis(1500)), "1s 500ms");
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert_eq!(show_size(64 << 20), "64MiB");
        assert_eq!(show_size(1500), "1500B");
    }

    #[test]
    fn hosts_resolve_bracketed_or_not() {
        assert_eq!(resolve("[::1]", 7).unwrap(), "[::1]:7".parse().unwrap());
        assert_eq!(resolve("::1", 7).unwrap(), "[::1]:7".parse().unwrap());
        assert_eq!(resolve("127.0.0.1", 7).unwrap(), "127.0.0.1:7".parse().unwrap());
        let error = resolve("not-an-ip.invalid", 7).unwrap_err();
        assert!(error.to_string().contains("not-an-ip.invalid"), "{error}");
    }
}
