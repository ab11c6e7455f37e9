//! The tutorials' remote command runner, the program they use to show
//! sticky packets, done properly.
//!
//! **A teaching example that runs arbitrary shell commands for whoever
//! holds the key.** It refuses to start without one, binds 127.0.0.1
//! unless told otherwise, makes every connection pass an HMAC-SHA256
//! challenge first, kills commands that outlive a time limit, and caps
//! the output it keeps. Do not expose it to a network you do not trust.
//!
//! ```text
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_server
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client
//! ```
//!
//! Each command is a message `{"command": "..."}`; each reply is a message
//! whose header has `exit_code` (or `signal`), `timed_out`, `truncated`
//! and `stdout` (the length of the standard output), and whose body is
//! the standard output followed by the standard error. Framing keeps a
//! 10 MB output whole and apart from the next command's: the sticky
//! packets of the tutorials cannot happen.

mod common;

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use common::ServerArgs;
use serde_json::json;
use socketserver::auth::Authenticated;
use socketserver::message::MessageStream;
use socketserver::{RequestHandler, TcpRequest, ThreadingTcpServer};

/// Remote command runner (a teaching example: it runs arbitrary commands
/// for whoever holds the key).
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// The shared key clients must prove they hold.
    #[arg(long, env = "REMOTE_SHELL_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Milliseconds a command may run before it is killed.
    #[arg(long, default_value_t = 10_000)]
    time_limit_ms: u64,
    /// The most bytes kept of each of a command's outputs.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    output_cap: usize,
}

/// Runs each command it is sent and replies with its result.
struct Shell {
    time_limit: Duration,
    output_cap: usize,
}

/// What came of a command.
struct Outcome {
    status: Option<ExitStatus>,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
}

/// Reads `pipe` to its end, keeping at most `cap` bytes (the rest is read
/// and dropped, so the command never blocks on a full pipe).
fn read_capped(mut pipe: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) | Err(_) => return (kept, truncated),
            Ok(n) => {
                let room = cap - kept.len();
                kept.extend_from_slice(&chunk[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
}

impl Shell {
    fn run(&self, command: &str) -> io::Result<Outcome> {
        let deadline = Instant::now() + self.time_limit;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a time-out kills what it started too.
            .process_group(0)
            .spawn()?;
        let group = child.id() as libc::pid_t;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let cap = self.output_cap;
        let (outputs_tx, outputs) = mpsc::channel();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            stdout.map(|p| Box::new(p) as Box<dyn Read + Send>),
            stderr.map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for (index, pipe) in pipes.into_iter().enumerate() {
            let tx = outputs_tx.clone();
            thread::spawn(move || {
                let _ = tx.send((index, pipe.map(|p| read_capped(p, cap)).unwrap_or_default()));
            });
        }
        let (done_tx, done) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            status
        });
        let timed_out = done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err();
        // Kill the group whether or not the command ended in time: a
        // background job it left (`sleep 100 &`) would otherwise run on
        // and hold the output pipes open.
        // SAFETY: signals the process group this handler started.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let status = waiter
            .join()
            .map_err(|_| io::Error::other("the waiter panicked"))??;
        // The pipes close once every process holding them is gone; one that
        // left the group (setsid) could hold them forever, so wait no longer
        // than a moment past the deadline.
        let mut streams = [(Vec::new(), false), (Vec::new(), false)];
        let mut complete = 0;
        let last_call = deadline.max(Instant::now()) + Duration::from_millis(200);
        while complete < 2 {
            match outputs.recv_timeout(last_call.saturating_duration_since(Instant::now())) {
                Ok((index, read)) => {
                    streams[index] = read;
                    complete += 1;
                }
                Err(_) => {
                    log::warn!(
                        "{command:?}: a process outside its group still holds its output; giving up on it"
                    );
                    break;
                }
            }
        }
        let [(stdout, out_cut), (stderr, err_cut)] = streams;
        Ok(Outcome {
            status: Some(status),
            timed_out,
            stdout,
            stderr,
            truncated: out_cut || err_cut || complete < 2,
        })
    }
}

impl RequestHandler<TcpRequest> for Shell {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let peer = request.peer_addr().to_string();
        let mut messages = MessageStream::new(request);
        while let Some(header) = messages.read_header()? {
            let command = header.get_str("command")?.to_owned();
            log::info!("{peer}: running {command:?}");
            let outcome = match self.run(&command) {
                Ok(outcome) => outcome,
                Err(e) => Outcome {
                    status: None,
                    timed_out: false,
                    stdout: Vec::new(),
                    stderr: format!("cannot run the command: {e}\n").into_bytes(),
                    truncated: false,
                },
            };
            let status = outcome.status;
            let reply = json!({
                "exit_code": status.and_then(|s| s.code()),
                "signal": status.and_then(|s| s.signal()),
                "timed_out": outcome.timed_out,
                "truncated": outcome.truncated,
                "stdout": outcome.stdout.len(),
            });
            let mut body = outcome.stdout;
            body.extend_from_slice(&outcome.stderr);
            messages.write_message_bytes(&reply, &body)?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args = Args::parse();
    common::exit("remote_shell_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let key = args.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to start without a key: set REMOTE_SHELL_KEY or pass --key",
        )
    })?;
    if args.server.host != "127.0.0.1" && args.server.host != "::1" && args.server.host != "localhost" {
        log::warn!(
            "listening beyond loopback: anyone who can reach the port and holds the key runs commands"
        );
    }
    let shell = Shell {
        time_limit: Duration::from_millis(args.time_limit_ms),
        output_cap: args.output_cap,
    };
    let server = args
        .server
        .sized(ThreadingTcpServer::builder())
        .shutdown_grace(args.server.grace())
        .bind(args.server.address(), Authenticated::new(key, shell)?)?;
    common::serve_until_signal(server, "connections")
}
