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
//!
//! A command runs in a process group of its own, and the whole group is
//! killed when the command ends (so a background job cannot outlive it),
//! when it outlives `--time-limit`, when its client goes away, and when
//! the server shuts down and the grace period is over.
//!
//! Over TLS (`--tls-cert FILE --tls-key FILE`, feature `tls`) nobody on
//! the path reads the commands and their output, or takes the connection
//! over once the key check has passed: the key check then runs inside
//! TLS, as the first thing the client says. With `--tls-client-ca FILE`
//! a client must also present a certificate issued by that CA (mutual
//! TLS) before it gets to the key check:
//!
//! ```text
//! cargo run --example gen_tls_cert -- --out-dir target/tls
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth,tls --example remote_shell_server -- \
//!     --tls-cert target/tls/server.pem --tls-key target/tls/server.key --tls-client-ca target/tls/ca.pem
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client -- \
//!     --tls-ca target/tls/ca.pem --tls-cert target/tls/client.pem --tls-key target/tls/client.key
//! ```
//!
//! `--tutorial` speaks the tutorials' wire format instead, for their own
//! Python clients, after the same key check (the tutorials' HMAC
//! challenge, with SHA-256 and no verdict): a command is whatever one
//! read brings, `q` ends the connection, and each reply is the output
//! (standard output, then standard error) behind a `struct.pack('i')`
//! length. `--tutorial=header` puts a JSON header `{"data_size": N}`
//! between the length and the output, as the tutorials' second version
//! does.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use common::ServerArgs;
use common::deploy::{Deployment, Program};
use common::tls::ServerTlsArgs;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use socketserver::auth::{Authenticated, Verdict};
use socketserver::framing::{FrameConfig, write_frame};
use socketserver::message::MessageStream;
use socketserver::{RequestHandler, TcpRequest};
use std::net::TcpListener;

const PROGRAM: Program = Program {
    name: "remote_shell_server",
    features: &["message", "auth"],
    restartable: false,
};

/// Remote command runner (a teaching example: it runs arbitrary commands
/// for whoever holds the key).
#[derive(Parser, Debug)]
#[command(name = "remote_shell_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// TLS (the key check then runs inside it).
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// The shared key clients must prove they hold.
    #[arg(long, env = "REMOTE_SHELL_KEY", hide_env_values = true)]
    key: Option<String>,
    /// How long a command may run before it is killed ("500ms", "10s").
    #[arg(long, default_value = "10s", value_parser = common::parse_timeout)]
    time_limit: Duration,
    /// The most kept of each of a command's outputs ("64MiB").
    #[arg(long, default_value = "64MiB", value_parser = common::parse_size)]
    output_cap: u64,
    /// Speak the tutorials' wire format (after the key check): replies
    /// behind a struct.pack('i') length (`--tutorial`), or behind a length
    /// and a JSON header with "data_size" (`--tutorial=header`).
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "length",
        value_name = "FRAMING"
    )]
    tutorial: Option<TutorialFraming>,
}

/// How the tutorials' servers frame a command's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TutorialFraming {
    /// struct.pack('i', len(output)), then the output.
    Length,
    /// struct.pack('i', len(header)), the JSON header {"data_size": N},
    /// then the output.
    Header,
}

/// Runs each command it is sent and replies with its result.
struct Shell {
    time_limit: Duration,
    output_cap: usize,
    tutorial: Option<TutorialFraming>,
}

/// What came of a command.
struct Outcome {
    status: Option<ExitStatus>,
    timed_out: bool,
    /// The client went away (or the server closed its connection at
    /// shutdown) while the command ran: nobody is left to reply to.
    client_gone: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
}

impl Outcome {
    /// A command that could not be started.
    fn failed(error: &io::Error) -> Outcome {
        Outcome {
            status: None,
            timed_out: false,
            client_gone: false,
            stdout: Vec::new(),
            stderr: format!("cannot run the command: {error}\n").into_bytes(),
            truncated: false,
        }
    }

    /// The standard output, then the standard error.
    fn output(self) -> Vec<u8> {
        let mut output = self.stdout;
        output.extend_from_slice(&self.stderr);
        output
    }
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

/// What ended the wait for a command.
enum Event {
    Exited,
    ClientGone,
}

/// Kills every process of the group; a group already empty is fine.
fn kill_group(group: Pid) {
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => log::warn!("cannot kill process group {group}: {e}"),
    }
}

/// Watches a client's connection while its command runs, and reports
/// when the client closes it, or the server shuts it at shutdown.
struct ClientWatch {
    stop: Option<io::PipeWriter>,
    thread: Option<JoinHandle<()>>,
}

/// The readiness that means the peer closed (or the socket was shut).
#[cfg(any(target_os = "linux", target_os = "android"))]
const HANGUP: PollFlags = PollFlags::from_bits_retain(libc::POLLRDHUP);
/// Without POLLRDHUP, readable-with-nothing-to-read means the same.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const HANGUP: PollFlags = PollFlags::POLLIN;

impl ClientWatch {
    fn start(client: &TcpStream, events: Sender<Event>) -> io::Result<ClientWatch> {
        let socket = client.try_clone()?;
        let (stopped, stop) = io::pipe()?;
        let thread = thread::Builder::new()
            .name("client-watch".into())
            .spawn(move || {
                let mut fds = [
                    PollFd::new(socket.as_fd(), HANGUP),
                    PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
                ];
                loop {
                    match poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) => {}
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            log::warn!("cannot watch the client's connection: {e}");
                            return;
                        }
                    }
                    if fds[1].any().unwrap_or(true) {
                        return; // the command ended first
                    }
                    // nix names no POLLRDHUP, so it reads as unknown bits.
                    let Some(seen) = fds[0].revents() else {
                        let _ = events.send(Event::ClientGone);
                        return;
                    };
                    let closed =
                        if seen.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                            true
                        } else if HANGUP == PollFlags::POLLIN {
                            // Readable: closed if there is nothing to read.
                            matches!(socket.peek(&mut [0u8; 1]), Ok(0) | Err(_))
                        } else {
                            seen.intersects(HANGUP)
                        };
                    if closed {
                        let _ = events.send(Event::ClientGone);
                        return;
                    }
                    if HANGUP == PollFlags::POLLIN && seen.contains(PollFlags::POLLIN) {
                        // Data: a command sent ahead. The client is there,
                        // and the time limit still bounds this one.
                        return;
                    }
                }
            })?;
        Ok(ClientWatch {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        // Closing the pipe's writing end wakes the watcher.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shell {
    /// Runs `command` for `client`, until it ends, outlives the time
    /// limit, or the client goes away; then kills its process group.
    fn run(&self, command: &str, client: &TcpStream) -> io::Result<Outcome> {
        let deadline = Instant::now() + self.time_limit;
        let (events_tx, events) = mpsc::channel();
        let watch = ClientWatch::start(client, events_tx.clone())?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so killing the group kills what it
            // started too.
            .process_group(0)
            .spawn()?;
        let group = Pid::from_raw(child.id() as libc::pid_t);
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
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = events_tx.send(Event::Exited);
            status
        });
        let (timed_out, client_gone) =
            match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Exited) | Err(RecvTimeoutError::Disconnected) => (false, false),
                Ok(Event::ClientGone) => (false, true),
                Err(RecvTimeoutError::Timeout) => (true, false),
            };
        // Kill the group whether or not the command ended: a background
        // job it left (`sleep 100 &`) would otherwise run on and hold the
        // output pipes open.
        kill_group(group);
        drop(watch);
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
            client_gone,
            stdout,
            stderr,
            truncated: out_cut || err_cut || complete < 2,
        })
    }

    /// Runs `command` and logs how it ended.
    fn execute(&self, command: &str, client: &TcpStream, peer: &str) -> Outcome {
        log::info!("{peer}: running {command:?}");
        let outcome = self.run(command, client).unwrap_or_else(|e| Outcome::failed(&e));
        if outcome.client_gone {
            log::info!("{peer}: the connection closed while {command:?} ran; killed it");
        } else if outcome.timed_out {
            log::info!("{peer}: {command:?} outlived the time limit; killed it");
        }
        outcome
    }

    /// The crate's protocol: a message per command, a message per reply.
    fn serve_messages(&self, request: &mut TcpRequest, client: &TcpStream, peer: &str) -> io::Result<()> {
        let mut messages = MessageStream::new(request);
        while let Some(header) = messages.read_header()? {
            let command = header.get_str("command")?.to_owned();
            let outcome = self.execute(&command, client, peer);
            if outcome.client_gone {
                return Ok(());
            }
            let status = outcome.status;
            let reply = json!({
                "exit_code": status.and_then(|s| s.code()),
                "signal": status.and_then(|s| s.signal()),
                "timed_out": outcome.timed_out,
                "truncated": outcome.truncated,
                "stdout": outcome.stdout.len(),
            });
            messages.write_message_bytes(&reply, &outcome.output())?;
        }
        Ok(())
    }

    /// The tutorials' protocol: a command is what one read brings (their
    /// clients send one and wait for its reply), `q` ends the connection,
    /// and the reply is the output behind a length (and a JSON header).
    fn serve_tutorial(
        &self,
        request: &mut TcpRequest,
        client: &TcpStream,
        peer: &str,
        framing: TutorialFraming,
    ) -> io::Result<()> {
        let prefix = FrameConfig::tutorial().with_max_frame_len(i32::MAX as usize);
        let mut received = vec![0u8; 64 * 1024];
        loop {
            let n = match request.read(&mut received) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let command = String::from_utf8_lossy(&received[..n]).trim().to_owned();
            match command.as_str() {
                "q" => return Ok(()),
                "" => continue,
                _ => {}
            }
            let outcome = self.execute(&command, client, peer);
            if outcome.client_gone {
                return Ok(());
            }
            let output = outcome.output();
            if framing == TutorialFraming::Header {
                let header = json!({"data_size": output.len()}).to_string();
                write_frame(request, header.as_bytes(), &prefix)?;
                request.write_all(&output)?;
            } else {
                write_frame(request, &output, &prefix)?;
            }
        }
    }
}

impl RequestHandler<TcpRequest> for Shell {
    fn handle(&self, request: &mut TcpRequest) -> io::Result<()> {
        let peer = request.peer_addr().to_string();
        // For watching the connection while a command runs.
        let client = request.stream().try_clone()?;
        match self.tutorial {
            None => self.serve_messages(request, &client, &peer),
            Some(framing) => self.serve_tutorial(request, &client, &peer, framing),
        }
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::REMOTE_SHELL_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    let key = args.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to start without a key: set REMOTE_SHELL_KEY or pass --key",
        )
    })?;
    let addr = args.server.address()?;
    if !addr.ip().is_loopback() {
        log::warn!(
            "listening beyond loopback ({addr}): anyone who can reach the port and holds the key runs commands"
        );
        if !args.tls.enabled() {
            log::warn!("without TLS (--tls-cert) anyone on the path reads the commands and their output");
        }
    }
    let output_cap = usize::try_from(args.output_cap).unwrap_or(usize::MAX);
    if args.tutorial.is_some() && output_cap > (i32::MAX as usize) / 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--output-cap: the tutorials' 4-byte length carries at most 2 GiB, so 1GiB per output at most",
        ));
    }
    let shell = Shell {
        time_limit: args.time_limit,
        output_cap,
        tutorial: args.tutorial,
    };
    let mut handler = Authenticated::new(key, shell)?;
    if args.tutorial.is_some() {
        // The tutorials' clients read no verdict: it would be taken for
        // the first reply's length.
        handler = handler.verdict(Verdict::Silent);
    }
    let builder = deployment.watch(args.server.builder::<TcpListener>(args.server.mode(false)), None);
    let builder = args.tls.apply(&PROGRAM, builder)?;
    let listener = deployment.socket(&builder, &addr)?;
    let server = builder.from_listener(listener, deployment.watched(handler))?;
    deployment.serve(server, "connections")
}
