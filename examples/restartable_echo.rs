//! The uppercase echo server, restartable without dropping a connection
//! and ready for systemd: the wiring of the `restart` and `systemd`
//! features into a server, in one place.
//!
//! ```text
//! cargo run --features restart,systemd --example restartable_echo -- --port 9999
//! kill -HUP <pid>    # a new process takes the socket over; this one drains and exits
//! kill -TERM <pid>   # stop: STOPPING=1 to systemd, drain, exit
//! ```
//!
//! The listening socket comes from the previous process after a restart,
//! else from systemd socket activation (the first socket passed), else
//! from binding `--host`:`--port`. Under systemd it sends READY=1 (with
//! MAINPID, so a restarted process becomes the service's main process),
//! a STATUS line, watchdog pings from its serving loop when `WatchdogSec=`
//! asks for them, and STOPPING=1 on SIGTERM.
//!
//! Each process prints "listening on ADDR", then "ready pid N" once it
//! serves, and "exited pid N after K connections" at the end: scripts and
//! tests follow these lines (a restarted process writes to the same
//! output).

mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::echo::Uppercase;
use socketserver::restart::Upgrader;
use socketserver::systemd::{self, ListenFds, Watchdog};
use socketserver::{RequestHandler, TcpRequest, ThreadingTcpServer};

/// The uppercase echo server, restartable on SIGHUP.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (unless a socket is inherited or activated).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// How long requests being served get to finish after a restart or a
    /// stop, in milliseconds, before they are cut off.
    #[arg(long, default_value_t = 5000)]
    grace_ms: u64,
    /// How long a new process gets to be ready after SIGHUP, in
    /// milliseconds, before it is killed and this one goes on serving.
    #[arg(long, default_value_t = 30_000)]
    ready_timeout_ms: u64,
    /// The executable a restart starts, with the same arguments (default:
    /// this one, as it was at start); for deployments that repoint a
    /// symbolic link to a new version.
    #[arg(long)]
    program: Option<std::path::PathBuf>,
}

/// The name the listening socket is handed over under.
const SOCKET_NAME: &str = "uppercase";

/// The echo, plus watchdog pings from the serving loop: they stop when
/// the loop stops, which is what the watchdog is for.
struct Echo {
    watchdog: Option<Watchdog>,
}

impl RequestHandler<TcpRequest> for Echo {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        Uppercase.handle(request)
    }

    fn service_actions(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.ping_if_due();
        }
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args = Args::parse();
    common::exit("restartable_echo", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    // Both first, while the process has one thread: they adopt inherited
    // descriptors and clear the variables that announced them.
    let mut upgrader = Upgrader::new()?.ready_timeout(Duration::from_millis(args.ready_timeout_ms));
    if let Some(program) = &args.program {
        upgrader = upgrader.program(program);
    }
    let mut activated = ListenFds::take()?;
    let signals = Signals::new([SIGHUP, SIGINT, SIGTERM])?;

    let watchdog = Watchdog::from_env();
    let mut builder = ThreadingTcpServer::builder().shutdown_grace(Duration::from_millis(args.grace_ms));
    if let Some(watchdog) = &watchdog {
        builder = builder.service_interval(watchdog.interval());
    }
    let listener: TcpListener = upgrader.socket(SOCKET_NAME, || match activated.is_empty() {
        true => builder.bind_listener((args.host.as_str(), args.port)),
        false => activated.tcp_listener(0),
    })?;
    drop(activated); // closes any other activated socket
    let server = builder.from_listener(listener, Echo { watchdog })?;
    let addr: SocketAddr = *server.local_addr();
    let stats = server.server_handle().clone();
    let stop = server.shutdown_handle();
    println!("listening on {addr}");
    io::stdout().flush()?;
    let serving = thread::spawn(move || server.serve_forever());

    upgrader.ready()?;
    systemd::ready()?;
    systemd::status(&format!("serving on {addr}"))?;
    println!("ready pid {}", std::process::id());
    io::stdout().flush()?;

    wait_for_stop(signals, &mut upgrader);
    stop.shutdown();
    serving
        .join()
        .map_err(|_| io::Error::other("the serving thread panicked"))??;
    println!(
        "exited pid {} after {} connections",
        std::process::id(),
        stats.stats().accepted
    );
    io::stdout().flush()
}

/// Waits for SIGTERM or SIGINT (a stop) or a SIGHUP that hands over to a
/// new process (a restart). A failed restart is logged and serving goes
/// on.
fn wait_for_stop(mut signals: Signals, upgrader: &mut Upgrader) {
    for signal in signals.forever() {
        if signal != SIGHUP {
            log::info!("stopping");
            if let Err(e) = systemd::stopping() {
                log::warn!("{e}");
            }
            return;
        }
        log::info!("restarting");
        match upgrader.upgrade() {
            Ok(pid) => {
                log::info!("process {pid} serves now; draining");
                return;
            }
            Err(e) => log::error!("restart failed, still serving: {e}"),
        }
    }
}
