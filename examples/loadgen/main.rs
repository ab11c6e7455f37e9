//! The load generator: many concurrent clients against an uppercase echo
//! server, every reply checked, latency from an HDR histogram.
//!
//! ```text
//! cargo run --release --example loadgen                 # the main job: an in-process
//!                                                       # ThreadingTcpServer, 64 clients, 10 s
//! cargo run --release --example loadgen -- udp --connections 16
//! cargo run --release --example loadgen -- tcp --target 127.0.0.1:9999 --rate 20000 --json
//! cargo run --release --example loadgen -- sweep --from 5000 --to 200000 --steps 12 --plot latency.svg
//! ```
//!
//! Modes: `tcp` (ping-pong on long-lived connections), `churn` (connect,
//! one round trip, close), `udp` (datagram ping-pong), `framed`
//! (ping-pong with length-prefixed frames), `idle` (open the connections,
//! one round trip on each, then keep them; with `--hold`, until the
//! server closes them), `slow` (a byte at a time). Without `--target` it
//! starts the crate's matching server in this process. With `--pipeline
//! N` (tcp and framed modes) each connection writes N requests at once
//! and checks the N replies one by one (batch.rs). Targets must be
//! loopback addresses unless `--allow-remote` is given. It sends nothing
//! after `--warmup` + `--duration`, and waits for the last replies at most
//! `--timeout` more.
//!
//! Exit status: 0 when the run passed; 1 when it failed (a wrong reply;
//! failed requests beyond `--max-error-rate`, none by default; a latency
//! or throughput threshold missed; or it could not run), each failure
//! named in the report; 2 for options it cannot run with.
//!
//! `loadgen sweep` runs the open loop at rising rates, each after its own
//! warm-up, tabulates offered against achieved rate and latency, marks
//! the knee where the server stops keeping up, and with `--plot FILE`
//! draws the latency against throughput chart; `loadgen plot` draws one
//! chart from several sweeps saved with `--json`.
//!
//! With `--tls` the tcp and churn clients speak TLS (rustls; session
//! resumption on unless `--no-resume`) and the report counts full and
//! resumed handshakes per second: to a `--target`, trusting the CA in
//! `--tls-ca FILE`; without one, to the in-process server, which then
//! serves TLS (feature `tls`) with a certificate made at start, in memory,
//! by a CA the clients alone trust.
//!
//! With `--proxy-v1` or `--proxy-v2` (feature `proxy-protocol`) every
//! connection begins with a PROXY protocol header claiming a client
//! address of its own (198.51.100.x), as a load balancer would send it:
//! for servers behind one (`uppercase_tcp_server --proxy-protocol
//! 127.0.0.1`), to measure what the header costs. The in-process server
//! then requires the header from 127.0.0.0/8 and ::1.

mod batch;
mod clients;
#[path = "../common/mod.rs"]
mod common;
mod deadline;
mod evented;
#[path = "../../tests/util/tls.rs"]
mod pki;
mod plot;
mod progress;
mod record;
mod schedule;
mod sweep;
mod tls;
mod udp;
mod verdict;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use socketserver::echo::{FramedUppercase, Uppercase};
use socketserver::server::ModeMarker;
use socketserver::{Builder, Mode as ServerMode, Server, Stats, TcpServer, ThreadingUdpServer};

use batch::Encoding;
use clients::{IdleOutcome, Plan, ProxyVersion};
use record::{Live, Recorder, Totals, Window, merge_json};
use schedule::Kept;
use tls::TlsClient;
use verdict::Thresholds;

/// Load-tests an uppercase echo server with many concurrent clients.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Open-loop runs at rising rates, each after its own warm-up: offered
    /// against achieved rate and latency, and the knee where the server
    /// stops keeping up (achieved under 95% of offered, or p99 over
    /// --max-p99).
    Sweep(Box<sweep::SweepArgs>),
    /// Draws one latency against throughput chart from sweeps saved with
    /// `loadgen sweep --json`.
    Plot(plot::PlotArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ping-pong on long-lived TCP connections.
    Tcp,
    /// Connect, one round trip, close, repeatedly.
    Churn,
    /// Datagram ping-pong.
    Udp,
    /// Ping-pong with length-prefixed frames.
    Framed,
    /// Open connections, one round trip each, then keep them open.
    Idle,
    /// Slow clients: each connection sends one byte every --interval
    /// (event-driven, whatever --driver says).
    Slow,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Churn => "churn",
            Mode::Udp => "udp",
            Mode::Framed => "framed",
            Mode::Idle => "idle",
            Mode::Slow => "slow",
        }
    }
}

/// What one run does: the options of a run, and of each step of a sweep.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// What the clients do.
    #[arg(value_enum, default_value_t = Mode::Tcp)]
    mode: Mode,
    /// The server to test (host:port). Without it, the crate's server for
    /// the mode runs in this process.
    #[arg(long)]
    target: Option<String>,
    /// Concurrent clients (connections, or UDP sockets).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Message size ("64", "1KiB").
    #[arg(long, default_value = "64", value_parser = common::parse_size)]
    size: u64,
    /// Requests each connection writes at once (tcp and framed modes):
    /// N messages of --size bytes, each its own, in one write; then the N
    /// replies, each checked and timed on its own. With --rate, a batch
    /// of N goes out at each slot.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pipeline: u64,
    /// How long to measure ("10s", "500ms").
    #[arg(long, default_value = "10s", value_parser = common::parse_timeout)]
    duration: Duration,
    /// How long to load the server before measuring starts ("1s"; not
    /// for idle).
    #[arg(long, default_value = "1s", value_parser = common::parse_duration)]
    warmup: Duration,
    /// Requests per second across all clients, on a fixed schedule (open
    /// loop: latency counts from when a request was due). Without it,
    /// each client sends as soon as it has its reply (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// How long a request may take, from connecting or sending to the
    /// last byte of its reply, before it counts as a timeout, a short
    /// reply or a UDP loss ("2s").
    #[arg(long, default_value = "2s", value_parser = common::parse_timeout)]
    timeout: Duration,
    /// Idle mode: after the round trips, keep the connections until the
    /// server closes them or the run ends.
    #[arg(long)]
    hold: bool,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    allow_remote: bool,
    /// Speak TLS (tcp and churn modes). To a --target, trusting
    /// --tls-ca; the server's certificate must name the target's host.
    /// Without --target the in-process server serves TLS with a
    /// certificate made at start (feature `tls`).
    #[arg(long)]
    tls: bool,
    /// With --tls and --target: the CA certificates (PEM) the TLS clients
    /// trust.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "target"])]
    tls_ca: Option<PathBuf>,
    /// TLS: a full handshake on every connection (no session resumption).
    #[arg(long, requires = "tls")]
    no_resume: bool,
    /// How the clients are driven: a thread per connection, or a few
    /// event-driven threads (tcp and framed modes, no TLS; with or without --rate).
    #[arg(long, value_enum, default_value_t = Driver::Threads)]
    driver: Driver,
    /// With `--driver epoll`: how many client threads (default: one per
    /// core).
    #[arg(long)]
    threads: Option<usize>,
    /// Slow mode: how often each connection sends its byte ("1s").
    #[arg(long, default_value = "1s", value_parser = common::parse_timeout)]
    interval: Duration,
    /// The local address connections come from (to spread many over
    /// several loopback addresses: 127.0.0.2, 127.0.0.3, ...).
    #[arg(long)]
    source: Option<std::net::IpAddr>,
    /// The in-process server parks connections between requests
    /// (ParkedTcpServer; tcp, churn, framed and idle modes).
    #[arg(long, conflicts_with = "target")]
    parked: bool,
    /// Each connection begins with a PROXY protocol v1 header (a text
    /// line) claiming a client address of its own, 198.51.100.x (not in
    /// udp mode). Feature `proxy-protocol`.
    #[arg(long, conflicts_with = "proxy_v2")]
    proxy_v1: bool,
    /// The same with a binary v2 header, as HAProxy's send-proxy-v2
    /// sends it.
    #[arg(long)]
    proxy_v2: bool,
    #[command(flatten)]
    thresholds: Thresholds,
}

/// How the load generator drives its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Driver {
    /// A blocking thread per connection.
    Threads,
    /// A few threads driving many connections each through epoll.
    Epoll,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let cli = Cli::parse();
    let result = match &cli.command {
        None => run(&cli.run),
        Some(Command::Sweep(sweep)) => sweep::run(sweep),
        Some(Command::Plot(plot)) => plot::run(plot).map_err(Error::from),
    };
    match result {
        Ok(code) => code,
        Err(Error::Usage(message)) => {
            eprintln!("loadgen: {message}");
            ExitCode::from(2)
        }
        Err(Error::Run(e)) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why loadgen did not run to the end: options it cannot run with (exit
/// status 2), or a failure setting up or running (1).
#[derive(Debug)]
pub enum Error {
    Usage(String),
    Run(io::Error),
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Run(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::Run(error) => error.fmt(f),
        }
    }
}

pub fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

const PARKED_UDP: &str = "--parked: a UDP server has no connections to park";

impl Args {
    /// The PROXY header the connections begin with, if any.
    fn proxy(&self) -> Option<ProxyVersion> {
        match (self.proxy_v1, self.proxy_v2) {
            (true, _) => Some(ProxyVersion::V1),
            (_, true) => Some(ProxyVersion::V2),
            _ => None,
        }
    }

    /// The requests a connection writes at once.
    fn pipeline(&self) -> usize {
        self.pipeline as usize
    }

    /// The warm-up, none in idle mode.
    fn warmup(&self) -> Duration {
        if self.mode == Mode::Idle {
            Duration::ZERO
        } else {
            self.warmup
        }
    }
}

/// The crate's server for the mode, serving in this process.
struct InProcess {
    name: &'static str,
    stop: Box<dyn FnOnce() -> io::Result<Stats>>,
}

fn start<S: Server<Addr = SocketAddr>>(server: S, name: &'static str) -> (SocketAddr, InProcess) {
    let addr = *server.local_addr();
    let stop_handle = server.shutdown_handle();
    let stats = server.server_handle().clone();
    let serving = thread::spawn(move || server.serve_forever());
    let stop = Box::new(move || {
        stop_handle.shutdown();
        serving
            .join()
            .map_err(|_| io::Error::other("the server panicked"))??;
        Ok(stats.stats())
    });
    (addr, InProcess { name, stop })
}

/// How the in-process server is set up besides its mode.
struct InProcessOptions {
    parked: bool,
    /// Require a PROXY header from the clients.
    proxy: bool,
    /// Serve TLS with this configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
}

fn start_in_process(mode: Mode, options: &InProcessOptions) -> io::Result<(SocketAddr, InProcess)> {
    let local = "127.0.0.1:0";
    let (server_mode, name, framed) = match options.parked {
        true => (
            ServerMode::Parked,
            "in-process ParkedTcpServer",
            "in-process ParkedTcpServer (framed)",
        ),
        false => (
            ServerMode::Threading,
            "in-process ThreadingTcpServer",
            "in-process ThreadingTcpServer (framed)",
        ),
    };
    let tcp = || {
        let builder = TcpServer::builder().mode(server_mode);
        serving_tls(behind_proxies(builder, options.proxy)?, options.tls.as_ref())
    };
    Ok(match mode {
        Mode::Tcp | Mode::Churn | Mode::Idle | Mode::Slow => start(tcp()?.bind(local, Uppercase)?, name),
        Mode::Framed => start(tcp()?.bind(local, FramedUppercase)?, framed),
        Mode::Udp if options.parked => return Err(io::Error::new(io::ErrorKind::InvalidInput, PARKED_UDP)),
        Mode::Udp => start(
            ThreadingUdpServer::bind(local, Uppercase)?,
            "in-process ThreadingUdpServer",
        ),
    })
}

/// With `proxy`, the in-process server requires a PROXY header from the
/// loopback addresses the clients come from.
fn behind_proxies<M: ModeMarker>(
    builder: Builder<TcpListener, M>,
    proxy: bool,
) -> io::Result<Builder<TcpListener, M>> {
    if !proxy {
        return Ok(builder);
    }
    #[cfg(feature = "proxy-protocol")]
    {
        let trusted = socketserver::proxy_protocol::TrustedProxies::parse(["127.0.0.0/8", "::1"])?;
        Ok(builder.proxy_protocol(trusted))
    }
    #[cfg(not(feature = "proxy-protocol"))]
    Err(PROGRAM.needs_feature("--proxy-v1 and --proxy-v2", "proxy-protocol"))
}

/// With `config`, the in-process server serves TLS.
fn serving_tls<M: ModeMarker>(
    builder: Builder<TcpListener, M>,
    config: Option<&Arc<rustls::ServerConfig>>,
) -> io::Result<Builder<TcpListener, M>> {
    let Some(config) = config else {
        return Ok(builder);
    };
    #[cfg(feature = "tls")]
    return Ok(builder.tls(socketserver::tls::TlsAcceptor::new(Arc::clone(config))));
    #[cfg(not(feature = "tls"))]
    {
        let _ = (builder, config);
        Err(PROGRAM.needs_feature("--tls without --target (a TLS server in-process)", "tls"))
    }
}

/// This program, as errors about a missing feature name it.
const PROGRAM: common::deploy::Program = common::deploy::Program {
    name: "loadgen",
    features: &[],
    restartable: false,
};

/// A certificate for the in-process TLS server, made now, in memory, by a
/// CA made for the run: the server's configuration, and the clients' that
/// trusts that CA alone.
fn in_process_pki() -> io::Result<(Arc<rustls::ServerConfig>, rustls::ClientConfig)> {
    let ca = pki::Ca::new("loadgen in-process CA");
    let server = ca.issue_server(&pki::SERVER_NAMES);
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(server.chain(), server.key())
        .map_err(|e| io::Error::other(format!("cannot serve the generated certificate: {e}")))?;
    Ok((Arc::new(config), ca.client_config()))
}

fn resolve(target: &str, allow_remote: bool) -> Result<SocketAddr, Error> {
    let addr = target
        .to_socket_addrs()
        .map_err(|e| usage(format!("--target {target}: {e}")))?
        .next()
        .ok_or_else(|| usage(format!("--target {target} resolved to nothing")))?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(usage(format!(
            "refusing to load-test {addr}, which is not a loopback address; pass --allow-remote if you mean it"
        )));
    }
    Ok(addr)
}

/// The time between one client's batches for `rate` requests a second
/// across `clients`, `batch` requests a batch.
fn interval(rate: f64, clients: usize, batch: usize) -> Result<Duration, Error> {
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(usage("--rate must be a positive number of requests per second"));
    }
    Duration::try_from_secs_f64((clients * batch) as f64 / rate)
        .map_err(|e| usage(format!("--rate {rate}: {e}")))
}

/// Refuses options that cannot go together, before anything starts.
fn validate(args: &Args) -> Result<(), Error> {
    if args.connections == 0 || args.size == 0 {
        return Err(usage("--connections and --size must be at least 1"));
    }
    if args.mode == Mode::Udp && args.size > 65_507 {
        return Err(usage("--size: a UDP datagram carries at most 65,507 bytes"));
    }
    let size = usize::try_from(args.size).map_err(|_| usage("--size is too large"))?;
    if args.mode == Mode::Framed && size > socketserver::framing::DEFAULT_MAX_FRAME_LEN {
        return Err(usage(format!(
            "--size: a frame carries at most {} bytes",
            socketserver::framing::DEFAULT_MAX_FRAME_LEN
        )));
    }
    if let Some(rate) = args.rate {
        interval(rate, args.connections, args.pipeline())?;
    }
    if args.pipeline > 1 {
        if !matches!(args.mode, Mode::Tcp | Mode::Framed) {
            return Err(usage("--pipeline works in the tcp and framed modes"));
        }
        // Each request of a batch is a message of its own: a reply to
        // another one of them must not pass for its own.
        let distinct = clients::seq_modulus(size);
        if args.pipeline > distinct {
            return Err(usage(format!(
                "--pipeline {}: {size}-byte messages can be only {distinct} different ones",
                args.pipeline
            )));
        }
    }
    if args.mode == Mode::Udp && args.parked {
        return Err(usage(PARKED_UDP));
    }
    if let Some(version) = args.proxy() {
        if !cfg!(feature = "proxy-protocol") {
            return Err(usage(
                PROGRAM
                    .needs_feature("--proxy-v1 and --proxy-v2", "proxy-protocol")
                    .to_string(),
            ));
        }
        if args.mode == Mode::Udp {
            return Err(usage(format!(
                "--proxy-{}: a PROXY header begins a connection; udp mode has none",
                version.name()
            )));
        }
    }
    if args.tls && !matches!(args.mode, Mode::Tcp | Mode::Churn) {
        return Err(usage("--tls works in the tcp and churn modes"));
    }
    if args.driver == Driver::Epoll
        && (!matches!(args.mode, Mode::Tcp | Mode::Framed | Mode::Slow) || args.tls)
    {
        return Err(usage(
            "--driver epoll drives the tcp and framed modes, without TLS",
        ));
    }
    if args.tls && args.target.is_some() && args.tls_ca.is_none() {
        return Err(usage(
            "--tls with --target needs --tls-ca FILE: the CA that issued the target's certificate",
        ));
    }
    if args.tls && args.target.is_none() && !cfg!(feature = "tls") {
        return Err(usage(
            PROGRAM
                .needs_feature("--tls without --target (a TLS server in-process)", "tls")
                .to_string(),
        ));
    }
    Ok(())
}

/// What the runs of one invocation share: the target, the in-process
/// server if there is one, the TLS clients' configuration for it.
pub struct Setup {
    target: SocketAddr,
    server: Option<InProcess>,
    /// Trust in the in-process TLS server's certificate.
    client_tls: Option<rustls::ClientConfig>,
}

impl Setup {
    /// Checks the options, resolves the target or starts the in-process
    /// server.
    pub fn new(args: &Args) -> Result<Setup, Error> {
        validate(args)?;
        let (server_tls, client_tls) = match args.target {
            None if args.tls => {
                let (server, client) = in_process_pki()?;
                (Some(server), Some(client))
            }
            _ => (None, None),
        };
        let (target, server) = match &args.target {
            Some(target) => (resolve(target, args.allow_remote)?, None),
            None => {
                let options = InProcessOptions {
                    parked: args.parked,
                    proxy: args.proxy().is_some(),
                    tls: server_tls,
                };
                let (addr, server) = start_in_process(args.mode, &options)?;
                (addr, Some(server))
            }
        };
        Ok(Setup {
            target,
            server,
            client_tls,
        })
    }

    /// The server's name in reports.
    pub fn server_name(&self) -> &'static str {
        self.server.as_ref().map_or("external", |server| server.name)
    }

    /// Stops the in-process server, if any, and returns its counters.
    pub fn stop(self) -> Result<Option<(&'static str, Stats)>, Error> {
        match self.server {
            Some(server) => Ok(Some((server.name, (server.stop)()?))),
            None => Ok(None),
        }
    }
}

/// What one run found.
pub struct Outcome {
    pub totals: Totals,
    pub idle: IdleOutcome,
    pub tls: Option<Arc<TlsClient>>,
}

/// One run of `args` against the setup's target, at `rate` requests a
/// second (open loop) or closed loop: warm-up, then the window, then the
/// replies still in flight.
pub fn measure(args: &Args, setup: &Setup, rate: Option<f64>) -> Result<Outcome, Error> {
    let interval = rate
        .map(|rate| interval(rate, args.connections, args.pipeline()))
        .transpose()?;
    let warmup = args.warmup();
    let started = Instant::now();
    let window = Window {
        start: started + warmup,
        end: started + warmup + args.duration,
    };
    let resume = !args.no_resume;
    let tls = match (&args.tls_ca, &args.target, &setup.client_tls) {
        (Some(ca), Some(target), _) if args.tls => {
            Some(Arc::new(TlsClient::new(ca, host_of(target), resume, window)?))
        }
        (_, None, Some(config)) => Some(Arc::new(TlsClient::with_config(
            config.clone(),
            &setup.target.ip().to_string(),
            resume,
            window,
        )?)),
        _ => None,
    };
    let plan = Arc::new(Plan {
        target: setup.target,
        size: usize::try_from(args.size).map_err(|_| usage("--size is too large"))?,
        timeout: args.timeout,
        window,
        interval,
        clients: args.connections,
        live: Arc::new(Live::default()),
        tls: tls.clone(),
        source: args.source,
        proxy: args.proxy(),
        pipeline: args.pipeline(),
        encoding: match args.mode {
            Mode::Framed => Encoding::Framed,
            _ => Encoding::Raw,
        },
    });
    let clients = spawn_clients(args, &plan)?;
    // Idle mode with --hold says on stderr when every connection has had
    // its round trip, so a script knows the server now holds them all.
    let announce = (args.mode == Mode::Idle && args.hold).then_some(args.connections as u64);
    let show = progress::wanted(args.json, warmup + args.duration);
    progress::wait(
        || clients.iter().all(|c| c.is_finished()),
        &plan.live,
        window,
        show,
        announce,
    );
    let mut idle = IdleOutcome::default();
    let mut recorders = Vec::with_capacity(clients.len());
    for client in clients {
        let (recorder, outcome) = client
            .join()
            .map_err(|_| io::Error::other("a client thread panicked"))?;
        idle.connected += outcome.connected;
        idle.closed_by_server += outcome.closed_by_server;
        recorders.push(recorder);
    }
    Ok(Outcome {
        totals: Totals::merge(recorders, window),
        idle,
        tls,
    })
}

fn run(args: &Args) -> Result<ExitCode, Error> {
    let setup = Setup::new(args)?;
    let target = setup.target;
    let outcome = measure(args, &setup, args.rate)?;
    let server = setup.stop()?;
    let broken = args.thresholds.check(&outcome.totals);
    report(args, target, &outcome, server, &broken);
    if broken.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        eprintln!("loadgen: FAILED: {}", broken.join("; "));
    }
    Ok(ExitCode::FAILURE)
}

type Client = thread::JoinHandle<(Recorder, IdleOutcome)>;

fn spawn_clients(args: &Args, plan: &Arc<Plan>) -> io::Result<Vec<Client>> {
    if args.driver == Driver::Epoll || args.mode == Mode::Slow {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let threads = args.threads.unwrap_or(cores).clamp(1, args.connections);
        let (mode, interval) = (args.mode, args.interval);
        return (0..threads)
            .map(|thread| {
                let plan = Arc::clone(plan);
                // Every `threads`-th client from `thread` on.
                let share: Vec<usize> = (thread..args.connections).step_by(threads).collect();
                thread::Builder::new()
                    .name(format!("loadgen-epoll-{thread}"))
                    .spawn(move || {
                        let recorder = match mode {
                            Mode::Slow => evented::slow(&plan, share, interval),
                            _ => evented::tcp(&plan, share),
                        };
                        (recorder, IdleOutcome::default())
                    })
            })
            .collect();
    }
    // Idle connections are many and quiet: a few threads own them all.
    let threads = if args.mode == Mode::Idle {
        args.connections.min(32)
    } else {
        args.connections
    };
    (0..threads)
        .map(|client| {
            let plan = Arc::clone(plan);
            let (mode, hold, connections) = (args.mode, args.hold, args.connections);
            thread::Builder::new()
                .name(format!("loadgen-{client}"))
                .stack_size(256 * 1024)
                .spawn(move || match mode {
                    // The plan says raw or framed.
                    Mode::Tcp | Mode::Framed => (clients::tcp(&plan, client), IdleOutcome::default()),
                    Mode::Churn => (clients::churn(&plan, client), IdleOutcome::default()),
                    Mode::Udp => (udp::udp(&plan, client), IdleOutcome::default()),
                    Mode::Slow => unreachable!("slow clients are event-driven, spawned above"),
                    Mode::Idle => {
                        // This thread's share of the connections.
                        let share = connections / threads + usize::from(client < connections % threads);
                        clients::idle(&plan, client, threads, share, hold)
                    }
                })
        })
        .collect()
}

/// "1 client", "64 clients".
fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// The host part of `host:port` (brackets of an IPv6 address removed):
/// the name a TLS server's certificate must carry.
fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The description of a run (or a sweep's runs) that heads its report.
pub fn describe(args: &Args, target: SocketAddr, server_name: &str, pacing: &str) -> String {
    let proxy = match args.proxy() {
        Some(version) => format!(" behind PROXY {} headers", version.name()),
        None => String::new(),
    };
    let pipeline = match args.pipeline {
        1 => String::new(),
        n => format!(", {n} pipelined per write"),
    };
    format!(
        "{}{}{proxy} against {target} ({server_name}): {}, {}-byte messages{pipeline}, {pacing}, {} measured after {} warm-up",
        args.mode.name(),
        if args.tls { " over TLS" } else { "" },
        plural(args.connections, "client"),
        args.size,
        common::show_duration(args.duration),
        common::show_duration(args.warmup()),
    )
}

/// What a run was, for the JSON report.
pub fn context(args: &Args, target: SocketAddr, server_name: &str) -> Value {
    json!({
        "mode": args.mode.name(),
        "target": target.to_string(),
        "server": server_name,
        "connections": args.connections,
        "size": args.size,
        "pipeline": args.pipeline,
        "duration": args.duration.as_secs_f64(),
        "warmup": args.warmup().as_secs_f64(),
        "timeout": args.timeout.as_secs_f64(),
        "proxy": args.proxy().map(ProxyVersion::name),
    })
}

/// One run's measurements as JSON: the totals and, under a rate, how the
/// schedule was kept.
pub fn outcome_json(args: &Args, rate: Option<f64>, totals: &Totals) -> Value {
    let mut report = totals.json();
    let kept = rate.map(|rate| Kept::new(rate, args.duration, totals.behind));
    merge_json(
        &mut report,
        json!({
            "rate": rate,
            "schedule": kept.as_ref().map_or(Value::Null, Kept::json),
        }),
    );
    report
}

fn report(
    args: &Args,
    target: SocketAddr,
    outcome: &Outcome,
    server: Option<(&str, Stats)>,
    broken: &[String],
) {
    let server_name = server.as_ref().map_or("external", |(name, _)| name);
    let (totals, idle) = (&outcome.totals, &outcome.idle);
    if args.json {
        let mut report = outcome_json(args, args.rate, totals);
        merge_json(&mut report, context(args, target, server_name));
        report["passed"] = json!(broken.is_empty());
        report["failed"] = json!(broken);
        if args.mode == Mode::Idle {
            report["connected"] = json!(idle.connected);
            report["closed_by_server"] = json!(idle.closed_by_server);
        }
        if let Some(tls) = &outcome.tls {
            report["tls"] = tls.json();
        }
        if let Some((_, stats)) = server {
            report["server_stats"] = json!({
                "accepted": stats.accepted, "refused": stats.refused, "errors": stats.errors,
                "panics": stats.panics, "workers": stats.workers,
                "tls_handshake_failures": stats.tls_handshake_failures,
            });
        }
        println!("{report}");
        return;
    }
    let pacing = match args.rate {
        Some(rate) => format!("open loop at {rate} requests/s"),
        None => "closed loop".to_owned(),
    };
    print!("{}", totals.text(&describe(args, target, server_name, &pacing)));
    if let Some(rate) = args.rate {
        print!(
            "{}",
            Kept::new(rate, args.duration, totals.behind).text(totals.throughput())
        );
    }
    if let Some(tls) = &outcome.tls {
        print!("{}", tls.text());
    }
    if args.mode == Mode::Idle {
        println!(
            "idle         {} connected, {} answered, {} closed by the server",
            idle.connected, totals.counts.ops, idle.closed_by_server
        );
    }
    if let Some((_, stats)) = server {
        let handshakes = match args.tls {
            true => format!(", {} failed TLS handshakes", stats.tls_handshake_failures),
            false => String::new(),
        };
        println!(
            "server       {} accepted, {} errors, {} panics{handshakes}",
            stats.accepted, stats.errors, stats.panics
        );
    }
    match broken {
        [] => println!("verdict      passed"),
        _ => println!("verdict      FAILED: {}", broken.join("; ")),
    }
}
