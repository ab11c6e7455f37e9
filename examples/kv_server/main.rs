//! A Redis-protocol (RESP2) key-value store: one per-request handler on
//! the parked server, spoken to by the clients the world uses.
//!
//! ```text
//! cargo run --release --example kv_server                  # 127.0.0.1:9994, parked
//! cargo run --release --example kv_server -- --threading   # a thread per connection
//! redis-cli -p 9994 set greeting hello                     # OK
//! redis-cli -p 9994 get greeting                           # "hello"
//! redis-benchmark -p 9994 -t set,get -n 200000 -c 50 -P 16 -q
//! printf 'PING\r\n' | nc 127.0.0.1 9994                    # +PONG (inline commands work too)
//! ```
//!
//! Commands: PING, ECHO, SET (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET),
//! GET, GETSET, DEL, EXISTS, INCR, INCRBY, DECR, DECRBY, MGET, MSET,
//! APPEND, STRLEN, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX, XX, GT, LT),
//! TTL, PTTL, PERSIST, DBSIZE, FLUSHDB, FLUSHALL, KEYS, SELECT 0, QUIT,
//! and what redis-cli and redis-benchmark ask at start: CONFIG GET,
//! COMMAND (COUNT, DOCS, INFO), CLIENT ID/GETNAME/SETNAME, and HELLO,
//! answered with the error Redis 5 gives (the clients then speak RESP2).
//! Replies and errors are Redis 7's, byte for byte (tests/kv_conformance.rs
//! compares them with a real redis-server). Values are strings; there is
//! one database.
//!
//! Every complete command a client has sent is run in order and the
//! replies go back in one write (pipelining). A command that has not all
//! arrived is kept with the connection, which waits in the poller for the
//! rest, holding no thread. A bulk string's claimed length buys no memory
//! before its bytes arrive; `--max-bulk`, `--max-args` and `--max-command`
//! bound a command, and a request Redis would refuse is answered with
//! Redis's `-ERR Protocol error: ...` and the connection is closed.
//!
//! Keys are spread over 64 shards, each with its own lock. Expired keys go
//! when a command touches them, and a sweep every 100 ms removes the rest.
//! Takes `--unix`, TLS (`--tls-cert`, feature `tls`) and the PROXY
//! protocol (`--proxy-protocol`, feature `proxy-protocol`) as the other
//! servers do. Ctrl-C or SIGTERM stops it; nothing is persisted.

mod commands;
#[path = "../common/mod.rs"]
mod common;
mod glob;
mod reply;
mod resp;
mod store;

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::deploy::{Deployment, Program, Site};
use common::{ProtocolArgs, ShowAddr};
use socketserver::server::{Connection, Listener};
use socketserver::{KeepAliveHandler, Mode, Next, StreamRequest};

use commands::{After, Session, Settings};
use resp::{Limits, Parser, ProtocolError, Step};
use store::{SHARDS, Store, now_ms};

const PROGRAM: Program = Program {
    name: "kv_server",
    features: &[],
    restartable: false,
};

/// How often expired keys nobody touched are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Shards swept each time: all of them every 0.8 s.
const SWEEP_SHARDS: usize = SHARDS / 8;
/// Replies collected before they are sent, in a long pipeline.
const FLUSH_AT: usize = 256 * 1024;
/// The most a connection keeps of its buffers between commands.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A Redis-protocol key-value store.
#[derive(clap::Parser, Debug)]
#[command(name = "kv_server", version)]
struct Args {
    #[command(flatten)]
    serving: ProtocolArgs,
    /// The longest string a client may send or a value grow to ("64MiB"):
    /// Redis's proto-max-bulk-len.
    #[arg(long, default_value = "64MiB", value_parser = common::parse_size)]
    max_bulk: u64,
    /// The most arguments in one command.
    #[arg(long, default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_args: u64,
    /// The most bytes one command may take, all its arguments together
    /// ("256MiB"); at least --max-bulk.
    #[arg(long, default_value = "256MiB", value_parser = common::parse_size)]
    max_command: u64,
    /// Parked mode: close a connection that sends nothing for this long
    /// ("5m").
    #[arg(long, default_value = "5m", value_parser = common::parse_timeout)]
    idle_timeout: Duration,
    /// How long one batch of commands may take to be answered, the
    /// replies' writes included, before the connection is cut ("30s"): a
    /// client that sends and never reads holds nothing for longer.
    #[arg(long, default_value = "30s", value_parser = common::parse_timeout)]
    request_timeout: Duration,
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::KV_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    let limits = limits(args)?;
    match &args.serving.unix {
        None => serve::<TcpListener>(args, limits, deployment, &args.serving.server.address()?),
        Some(path) => serve::<UnixListener>(args, limits, deployment, path),
    }
}

/// The limits the options set, checked together.
fn limits(args: &Args) -> io::Result<Limits> {
    let size = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
    if args.max_command < args.max_bulk {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--max-command ({}) is smaller than --max-bulk ({})",
                common::show_size(args.max_command),
                common::show_size(args.max_bulk)
            ),
        ));
    }
    Ok(Limits {
        max_bulk: size(args.max_bulk),
        max_args: size(args.max_args),
        max_command: size(args.max_command),
    })
}

/// Serves on an `L` (TCP, or a Unix socket) at `at`.
fn serve<L>(args: &Args, limits: Limits, deployment: &mut Deployment, at: &L::At) -> io::Result<()>
where
    L: Listener + Site,
    L::Addr: ShowAddr,
{
    let mode = args.serving.mode();
    let builder = args.serving.server.builder::<L>(mode);
    let builder = match mode {
        Mode::Parked => builder
            .idle_timeout(args.idle_timeout)
            .request_timeout(args.request_timeout),
        // A connection's thread waits for its next command as long as the
        // client likes (Redis's `timeout 0`); a reply nobody reads does
        // not hold it for ever.
        _ => builder.write_timeout(args.request_timeout),
    };
    let builder = deployment.watch(builder, Some(SWEEP_INTERVAL));
    let builder = args.serving.tls.apply(&PROGRAM, builder)?;
    let builder = deployment.proxy_protocol(builder, &args.serving.proxy, args.serving.unix.is_some())?;
    let listener = deployment.socket(&builder, at)?;
    let handler = KvServer {
        store: Arc::new(Store::new()),
        limits,
        settings: Settings {
            max_bulk: limits.max_bulk,
        },
    };
    let store = Arc::clone(&handler.store);
    log::info!("serving in {} mode", mode.name());
    let server = builder.from_listener(listener, deployment.watched(handler))?;
    deployment.serve(server, "connections")?;
    log::info!("{} keys at exit (not persisted)", store.len());
    Ok(())
}

/// The store's handler: one batch of commands per call.
struct KvServer {
    store: Arc<Store>,
    limits: Limits,
    settings: Settings,
}

/// What a connection keeps between its batches.
#[derive(Debug, Default)]
struct Client {
    /// The start of a command that has not all arrived (empty otherwise:
    /// complete commands are read where they arrived, in the read-ahead).
    pending: Vec<u8>,
    parser: Parser,
    session: Session,
}

/// Why a batch of commands ended.
#[derive(Debug)]
enum End {
    /// Every complete command ran; what is left (if anything) is the
    /// start of the next one.
    Drained,
    /// The replies are to be sent before more commands run.
    Full,
    /// QUIT.
    Quit,
    /// The start of an HTTP request.
    Refuse,
    /// A request Redis would refuse.
    Error(ProtocolError),
}

thread_local! {
    /// The replies of the batch being served, sent together: a worker's,
    /// so idle connections keep none.
    static REPLIES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for KvServer {
    type State = Client;

    fn open(&self, _request: &mut StreamRequest<S>) -> io::Result<Client> {
        Ok(Client {
            session: Session::new(),
            ..Client::default()
        })
    }

    fn handle_one(&self, request: &mut StreamRequest<S>, client: &mut Client) -> io::Result<Next> {
        REPLIES.with_borrow_mut(|out| {
            let served = self.serve(request, client, out);
            out.clear();
            if out.capacity() > FLUSH_AT * 2 {
                *out = Vec::new();
            }
            served
        })
    }

    fn service_actions(&self) {
        let removed = self.store.sweep(SWEEP_SHARDS, now_ms());
        if removed > 0 {
            log::debug!("{removed} expired keys removed");
        }
    }
}

impl KvServer {
    /// Runs every complete command the client has sent, in order, and
    /// sends the replies; keeps the start of an incomplete one.
    fn serve<S: Connection>(
        &self,
        request: &mut StreamRequest<S>,
        client: &mut Client,
        out: &mut Vec<u8>,
    ) -> io::Result<Next> {
        loop {
            let end = if client.pending.is_empty() {
                // The common case: commands read where they arrived.
                let input = request.buffered();
                if input.is_empty() {
                    break;
                }
                let (used, end) = self.batch(input, &mut client.parser, &mut client.session, out);
                let len = input.len();
                if matches!(end, End::Drained) && used < len {
                    client.pending.extend_from_slice(&input[used..]);
                    request.consume(len);
                } else {
                    request.consume(used);
                }
                end
            } else {
                // A command began in an earlier batch: the rest joins it.
                let more = request.buffered();
                let len = more.len();
                client.pending.extend_from_slice(more);
                request.consume(len);
                let (used, end) = self.batch(&client.pending, &mut client.parser, &mut client.session, out);
                client.pending.drain(..used);
                end
            };
            match end {
                End::Drained => break,
                End::Full => {
                    request.write_all(out)?;
                    out.clear();
                }
                End::Quit => {
                    request.write_all(out)?;
                    return Ok(Next::Close);
                }
                End::Refuse => {
                    request.write_all(out)?;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a POST or Host: line, an HTTP request (from a browser tricked into it?): \
                         closed unanswered, as Redis does",
                    ));
                }
                End::Error(error) => {
                    reply::error(out, &error.message());
                    request.write_all(out)?;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                }
            }
        }
        if !out.is_empty() {
            request.write_all(out)?;
        }
        if client.pending.is_empty() {
            if client.pending.capacity() > KEEP_CAPACITY {
                client.pending = Vec::new();
            }
            client.parser.trim();
        }
        Ok(Next::KeepOpen)
    }

    /// Runs the complete commands at the front of `input`; how many bytes
    /// they took, and why it stopped.
    fn batch(
        &self,
        input: &[u8],
        parser: &mut Parser,
        session: &mut Session,
        out: &mut Vec<u8>,
    ) -> (usize, End) {
        let mut at = 0;
        loop {
            if out.len() >= FLUSH_AT {
                return (at, End::Full);
            }
            match parser.parse(&input[at..], &self.limits) {
                Ok(Step::Command(len)) => {
                    let args = parser.args(&input[at..]);
                    let after = commands::run(&self.store, &self.settings, session, args, out);
                    at += len;
                    match after {
                        After::Continue => {}
                        After::Quit => return (at, End::Quit),
                        After::Refuse => return (at, End::Refuse),
                    }
                }
                Ok(Step::Empty(len)) => at += len,
                Ok(Step::Incomplete) => return (at, End::Drained),
                Err(error) => return (at, End::Error(error)),
            }
        }
    }
}
