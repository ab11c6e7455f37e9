//! The tutorials' UDP "QQ chat room", done properly: members join with a
//! name, every message is relayed to every other member with the sender's
//! name, members silent past a timeout are dropped, and joining, leaving
//! and timing out are announced.
//!
//! ```text
//! cargo run --release --example chat_server                    # 127.0.0.1:9996
//! cargo run --release --example chat_client -- --name alice    # in other terminals
//! cargo run --release --example chat_client -- --name bob
//! ```
//!
//! The protocol is one UTF-8 line per datagram. Clients send `JOIN name`,
//! `MSG text`, `WHO`, `PING` (to show they are alive) and `LEAVE`. The
//! server sends `[name] text` for a member's message, `* ...` for news
//! (joins, leaves, timeouts, the member list) and `! ...` for errors.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{ServerArgs, context};
use parking_lot::Mutex;
use socketserver::{Builder, Mode, RequestHandler, ThreadingUdpServer, UdpRequest, UdpServer};

/// UDP chat room: relays each member's messages to the others.
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// How long a member may stay silent before it is dropped ("30s").
    #[arg(long, default_value = "30s", value_parser = common::parse_timeout)]
    timeout: Duration,
}

/// The longest member name.
const MAX_NAME: usize = 32;

struct Member {
    name: String,
    last_heard: Instant,
}

/// The room: who is in it, and when each was last heard from.
struct ChatRoom {
    members: Mutex<HashMap<SocketAddr, Member>>,
    timeout: Duration,
    /// The server's socket, for the timeout announcements made outside a
    /// request; taken from the first request.
    socket: OnceLock<UdpSocket>,
}

impl ChatRoom {
    /// Sends `line` to every member but `except`.
    fn broadcast(&self, socket: &UdpSocket, line: &str, except: Option<SocketAddr>) {
        let targets: Vec<SocketAddr> = self
            .members
            .lock()
            .keys()
            .copied()
            .filter(|a| Some(*a) != except)
            .collect();
        for addr in targets {
            if let Err(e) = socket.send_to(line.as_bytes(), addr) {
                log::warn!("cannot relay to {addr}: {e}");
            }
        }
    }

    /// The member's name, refreshing when it was last heard from.
    fn heard(&self, addr: SocketAddr) -> Option<String> {
        let mut members = self.members.lock();
        let member = members.get_mut(&addr)?;
        member.last_heard = Instant::now();
        Some(member.name.clone())
    }

    fn join(&self, request: &UdpRequest, name: &str) -> io::Result<()> {
        let peer = *request.peer_addr();
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_whitespace) {
            return request
                .reply(format!("! a name is 1 to {MAX_NAME} characters, without spaces").as_bytes());
        }
        let count = {
            let mut members = self.members.lock();
            if members.iter().any(|(addr, m)| m.name == name && *addr != peer) {
                drop(members);
                return request.reply(format!("! the name {name} is taken").as_bytes());
            }
            members.insert(
                peer,
                Member {
                    name: name.to_owned(),
                    last_heard: Instant::now(),
                },
            );
            members.len()
        };
        log::info!("{name} joined from {peer}");
        request.reply(format!("* welcome, {name}: {count} in the room").as_bytes())?;
        self.broadcast(request.socket(), &format!("* {name} joined"), Some(peer));
        Ok(())
    }

    fn leave(&self, request: &UdpRequest) -> io::Result<()> {
        let peer = *request.peer_addr();
        let Some(member) = self.members.lock().remove(&peer) else {
            return Ok(());
        };
        log::info!("{} left", member.name);
        self.broadcast(request.socket(), &format!("* {} left", member.name), None);
        Ok(())
    }

    fn who(&self) -> String {
        let mut names: Vec<String> = self.members.lock().values().map(|m| m.name.clone()).collect();
        names.sort();
        format!("* in the room: {}", names.join(", "))
    }
}

impl RequestHandler<UdpRequest> for ChatRoom {
    fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
        if self.socket.get().is_none() {
            let _ = self.socket.set(request.socket().try_clone()?);
        }
        let line = String::from_utf8_lossy(request.data()).trim().to_owned();
        let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let rest = rest.trim();
        let peer = *request.peer_addr();
        match command {
            "JOIN" => self.join(request, rest),
            "LEAVE" => self.leave(request),
            other => {
                let Some(name) = self.heard(peer) else {
                    return request.reply(b"! join first: JOIN name");
                };
                match other {
                    "MSG" if !rest.is_empty() => {
                        self.broadcast(request.socket(), &format!("[{name}] {rest}"), Some(peer));
                        Ok(())
                    }
                    "MSG" | "PING" => Ok(()),
                    "WHO" => request.reply(self.who().as_bytes()),
                    _ => request.reply(b"! unknown command; use MSG, WHO, PING or LEAVE"),
                }
            }
        }
    }

    /// Drops the members silent for too long.
    fn service_actions(&self) {
        let Some(socket) = self.socket.get() else { return };
        let expired: Vec<(SocketAddr, String)> = {
            let mut members = self.members.lock();
            let now = Instant::now();
            let gone: Vec<SocketAddr> = members
                .iter()
                .filter(|(_, m)| now - m.last_heard > self.timeout)
                .map(|(addr, _)| *addr)
                .collect();
            gone.into_iter()
                .filter_map(|addr| members.remove(&addr).map(|m| (addr, m.name)))
                .collect()
        };
        for (addr, name) in expired {
            log::info!("{name} ({addr}) timed out");
            let _ = socket.send_to(b"* you timed out; JOIN again", addr);
            self.broadcast(socket, &format!("* {name} timed out"), None);
        }
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::CHAT_PORT);
    common::exit("chat_server", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let timeout = args.timeout;
    let room = ChatRoom {
        members: Mutex::new(HashMap::new()),
        timeout,
        socket: OnceLock::new(),
    };
    if args.server.serial {
        serve(UdpServer::builder(), &args.server, timeout, room)
    } else {
        serve(
            args.server.sized(ThreadingUdpServer::builder()),
            &args.server,
            timeout,
            room,
        )
    }
}

fn serve<M: Mode>(
    builder: Builder<UdpSocket, M>,
    args: &ServerArgs,
    timeout: Duration,
    room: ChatRoom,
) -> io::Result<()> {
    let addr = args.address()?;
    let server = builder
        .shutdown_grace(args.grace)
        // Look for silent members several times per timeout.
        .service_interval((timeout / 4).max(Duration::from_millis(10)))
        .bind(addr, room)
        .map_err(context(format!("cannot listen on {addr}")))?;
    common::serve_until_signal(server, "datagrams")
}
