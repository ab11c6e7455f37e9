//! A member of `chat_server`'s room: prints what others say as it
//! arrives, while you type.
//!
//! ```text
//! cargo run --release --example chat_client -- --name alice
//! ```
//!
//! Type a line to say it; `/who` lists the members; `/quit` (or end of
//! input) leaves. It works the same with input from a pipe, for scripts
//! and tests. While it runs it tells the server it is alive every
//! `--keepalive`, so only a client that has gone away times out.
//!
//! Joining is a round trip (the server answers `JOIN name` with a cookie
//! that the client sends back). When the server forgets the client (it
//! timed the client out, or it restarted), the client joins again on its
//! own. When it cannot join (the name is taken or not allowed, the room
//! is full, no server answers, or what answers is not a chat room), it
//! says why and exits with status 1.

mod common;

use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

/// How long to wait for an answer to a join before asking again.
const JOIN_RETRY: Duration = Duration::from_secs(1);
/// How many times to ask before giving up.
const JOIN_ATTEMPTS: u32 = 5;
/// How much of an answer that is not the chat protocol an error quotes.
const QUOTED_ANSWER: usize = 80;

/// Chat room client.
#[derive(Parser, Debug)]
#[command(name = "chat_client", version)]
struct Args {
    /// Server address: an IP address (127.0.0.1, ::1 or [::1]) or a host
    /// name.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long)]
    port: u16,
    /// Your name in the room (no spaces).
    #[arg(long)]
    name: String,
    /// How often to tell the server it is still here ("5s"); "0s" never.
    #[arg(long, default_value = "5s", value_parser = common::parse_duration)]
    keepalive: Duration,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args: Args = common::parse_args(common::CHAT_PORT);
    common::exit("chat_client", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let server = common::resolve(&args.host, args.port)?;
    let socket = common::connected_udp_socket(server)?;
    let done = Arc::new(AtomicBool::new(false));
    let (joined_tx, joined) = mpsc::channel();
    let reader = {
        let member = Membership {
            socket: socket.try_clone()?,
            server,
            name: args.name.clone(),
            keepalive: (!args.keepalive.is_zero()).then_some(args.keepalive),
        };
        let done = Arc::clone(&done);
        thread::spawn(move || member.listen(&done, joined_tx))
    };
    let stop = |done: &AtomicBool| {
        done.store(true, Ordering::Release);
        reader
            .join()
            .map_err(|_| io::Error::other("the reader thread panicked"))?
    };
    match joined.recv() {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            stop(&done)?;
            return Err(io::Error::other(format!("cannot join as {}: {why}", args.name)));
        }
        // The reader ended without a word: its error says why.
        Err(_) => return stop(&done),
    }
    for line in io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        let datagram = match line {
            "" => continue,
            "/quit" => break,
            "/who" => "WHO".to_owned(),
            text => format!("MSG {text}"),
        };
        socket
            .send(datagram.as_bytes())
            .map_err(common::reply_error(server))?;
    }
    let _ = socket.send(b"LEAVE");
    stop(&done)
}

/// The client's side of its membership: joining (again when needed),
/// keeping alive, printing what the room says.
struct Membership {
    socket: UdpSocket,
    server: SocketAddr,
    name: String,
    keepalive: Option<Duration>,
}

/// A join under way.
struct Joining {
    asked: Instant,
    attempts: u32,
    /// The last answer that was not the chat protocol (its start).
    foreign_answer: Option<String>,
}

impl Joining {
    /// The first attempt, just asked.
    fn first() -> Joining {
        Joining {
            asked: Instant::now(),
            attempts: 1,
            foreign_answer: None,
        }
    }
}

/// Whether `line` is one a chat server sends: `[name] text`, `* news` or
/// `! error`.
fn from_a_chat_room(line: &str) -> bool {
    line.starts_with('[') || line.starts_with("* ") || line.starts_with("! ")
}

impl Membership {
    /// Sends a join (a lost or refused datagram is asked again later).
    fn ask_to_join(&self, cookie: Option<&str>) {
        let datagram = match cookie {
            Some(cookie) => format!("JOIN {} {cookie}", self.name),
            None => format!("JOIN {}", self.name),
        };
        let _ = self.socket.send(datagram.as_bytes());
    }

    /// Asks to join again, unless `join` has had its attempts; then says
    /// why it failed: no answer, or answers that were not the chat
    /// protocol.
    fn ask_again(&self, join: &mut Joining) -> Result<(), String> {
        if join.attempts >= JOIN_ATTEMPTS {
            return Err(match &join.foreign_answer {
                Some(answer) => format!("{} is not a chat room: it answered {answer:?}", self.server),
                None => format!("no answer from {}", self.server),
            });
        }
        join.attempts += 1;
        join.asked = Instant::now();
        self.ask_to_join(None);
        Ok(())
    }

    /// Gives up on joining: tells `run` if it is still waiting for the
    /// first join, else says why and exits (the room cannot be rejoined).
    fn cannot_join(&self, joined: &mut Option<Sender<Result<(), String>>>, why: String) {
        match joined.take() {
            Some(tell) => {
                let _ = tell.send(Err(why));
            }
            None => {
                let _ = io::stdout().flush();
                eprintln!("chat_client: cannot join again as {}: {why}", self.name);
                std::process::exit(1);
            }
        }
    }

    /// Prints every line the server sends, joins (and joins again when
    /// the server has forgotten this client), and sends the keep-alives,
    /// until `done`. The first join's outcome goes to `joined`.
    fn listen(&self, done: &AtomicBool, joined: Sender<Result<(), String>>) -> io::Result<()> {
        let mut joined = Some(joined);
        // Wake up often enough to notice `done` and to keep alive on time.
        let tick = self
            .keepalive
            .map_or(Duration::from_millis(100), |k| k.min(Duration::from_millis(100)));
        self.socket.set_read_timeout(Some(tick))?;
        self.ask_to_join(None);
        let mut joining = Some(Joining::first());
        let mut next_ping = self.keepalive.map(|k| Instant::now() + k);
        let mut unreachable = false;
        let mut buffer = vec![0u8; 65_536];
        while !done.load(Ordering::Acquire) {
            match self.socket.recv(&mut buffer) {
                Ok(len) => {
                    unreachable = false;
                    let line = String::from_utf8_lossy(&buffer[..len]).into_owned();
                    if let Some(cookie) = line.strip_prefix("* confirm ") {
                        self.ask_to_join(Some(cookie.trim()));
                    } else if line.starts_with("* welcome") {
                        println!("{line}");
                        if joining.take().is_some()
                            && let Some(tell) = joined.take()
                        {
                            let _ = tell.send(Ok(()));
                        }
                    } else if line.starts_with("! join first") || line.starts_with("* you timed out") {
                        // The server forgot this client (a timeout, or it
                        // restarted): join again.
                        if line.starts_with('*') {
                            println!("{line}");
                        }
                        if joining.is_none() {
                            self.ask_to_join(None);
                            joining = Some(Joining::first());
                        }
                    } else if joining.is_some() && line.starts_with("! slow down") {
                        // Asked again when the retry is due.
                    } else if joining.is_some() && line.starts_with('!') {
                        let why = line.trim_start_matches("! ").to_owned();
                        self.cannot_join(&mut joined, why);
                        return Ok(());
                    } else if !from_a_chat_room(&line)
                        && let Some(join) = &mut joining
                    {
                        // Something else answers (the UDP echo says `JOIN
                        // EVE`): not the room's talk. Asked again at once,
                        // in case it was a stray datagram, until the
                        // attempts are used up.
                        join.foreign_answer = Some(line.chars().take(QUOTED_ANSWER).collect());
                        if let Err(why) = self.ask_again(join) {
                            self.cannot_join(&mut joined, why);
                            return Ok(());
                        }
                    } else {
                        println!("{line}");
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    if !unreachable {
                        eprintln!("chat_client: nothing is listening at {}", self.server);
                        unreachable = true;
                    }
                }
                Err(e) => return Err(common::context(self.server)(e)),
            }
            if let Some(join) = &mut joining {
                if join.asked.elapsed() >= JOIN_RETRY
                    && let Err(why) = self.ask_again(join)
                {
                    self.cannot_join(&mut joined, why);
                    return Ok(());
                }
            } else if let (Some(at), Some(every)) = (next_ping, self.keepalive)
                && Instant::now() >= at
            {
                let _ = self.socket.send(b"PING");
                next_ping = Some(at + every);
            }
        }
        Ok(())
    }
}
