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
//!
//! A UDP server answers whatever source address a datagram claims, which
//! anyone can forge; a chat room that enrolled any address would send the
//! room's traffic to a victim (reflection). So joining takes a round
//! trip: `JOIN name` is answered `* confirm COOKIE`, and only `JOIN name
//! COOKIE` from the same address, with a cookie only that address has
//! seen, makes a member. The cookie is a keyed hash of the address, the
//! name and the time, so the server keeps no state for a join that is
//! not confirmed. The room holds at most `--max-members`; each source IP
//! gets `--rate-limit` joins and messages a second; and news of joins,
//! leaves and timeouts is gathered and sent every `--announce-every` as
//! one datagram per member, so a burst of n joins costs about n
//! datagrams, not n².
//!
//! `--tutorial` also takes the tutorials' own clients, which send raw
//! text and wait for an answer: a datagram from an unknown address that
//! is not a command joins its sender as `guest-N`, and a guest's every
//! datagram is relayed to all members, the guest included (the answer it
//! waits for). Guests skip the cookie round trip, so keep tutorial mode
//! on loopback.

mod common;

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use common::ServerArgs;
use common::deploy::{Deployment, Program};
use parking_lot::Mutex;
use socketserver::{RequestHandler, UdpRequest};

const PROGRAM: Program = Program {
    name: "chat_server",
    features: &[],
    restartable: false,
};

/// UDP chat room: relays each member's messages to the others.
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// How long a member may stay silent before it is dropped ("30s").
    #[arg(long, default_value = "30s", value_parser = common::parse_timeout)]
    timeout: Duration,
    /// The most members the room holds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    max_members: u64,
    /// Joins and messages a second from one source IP address (bursts of
    /// as many); 0 for no limit.
    #[arg(long, default_value_t = 50)]
    rate_limit: u32,
    /// The socket's receive buffer ("4MiB"): room for a burst of
    /// datagrams while the server catches up (the kernel may cap it:
    /// net.core.rmem_max).
    #[arg(long, default_value = "4MiB", value_parser = common::parse_size)]
    recv_buffer: u64,
    /// How often news of joins, leaves and timeouts goes out ("500ms").
    #[arg(long, default_value = "500ms", value_parser = common::parse_timeout)]
    announce_every: Duration,
    /// Also take the tutorials' clients, which send raw text: a raw
    /// datagram from an unknown address joins it as guest-N.
    #[arg(long)]
    tutorial: bool,
}

/// The name and the cookie (if any) of a `JOIN`. A cookie is 16 hex
/// digits: a last word that is not one is part of the name (and a name
/// with a space is refused).
fn parse_join(rest: &str) -> (&str, Option<&str>) {
    match rest.rsplit_once(' ') {
        Some((name, cookie)) if cookie.len() == 16 && cookie.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (name.trim(), Some(cookie))
        }
        _ => (rest, None),
    }
}

/// The longest member name.
const MAX_NAME: usize = 32;
/// A cookie is valid for the period it was made in and the next.
const COOKIE_PERIOD: Duration = Duration::from_secs(30);
/// The most bytes of names listed in one line of news or `WHO`; the rest
/// are counted. Keeps every datagram the server sends small.
const MAX_LISTED: usize = 1200;

struct Member {
    name: String,
    last_heard: Instant,
    /// The news it joined at: it hears only of what came after.
    joined_at: u64,
    /// Joined by a tutorial client: gets messages (its own too) but no
    /// news, and is told nothing when it times out.
    guest: bool,
}

/// What happened to whom, waiting to be announced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Joined,
    Left,
    TimedOut,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Joined => "joined",
            Change::Left => "left",
            Change::TimedOut => "timed out",
        }
    }
}

/// A change to announce, numbered in the order it happened.
struct News {
    number: u64,
    change: Change,
    name: String,
}

/// Who is in the room, and the news not yet announced.
#[derive(Default)]
struct Room {
    members: HashMap<SocketAddr, Member>,
    names: HashMap<String, SocketAddr>,
    news: Vec<News>,
    /// The number of the latest news.
    latest: u64,
    guests: u64,
}

impl Room {
    /// Records a change to announce; returns its number.
    fn record(&mut self, change: Change, name: &str) -> u64 {
        self.latest += 1;
        self.news.push(News {
            number: self.latest,
            change,
            name: name.to_owned(),
        });
        self.latest
    }

    fn remove(&mut self, addr: &SocketAddr) -> Option<Member> {
        let member = self.members.remove(addr)?;
        self.names.remove(&member.name);
        Some(member)
    }
}

/// Per source IP: a token bucket of `rate` tokens a second, holding at
/// most `rate`.
struct RateLimiter {
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    /// Takes a token for `ip`; false if it has none left.
    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let rate = self.rate;
        let (tokens, since) = self.buckets.entry(ip).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*since).as_secs_f64() * rate).min(rate);
        *since = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets the addresses whose buckets have filled up again.
    fn forget_idle(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets
            .retain(|_, (tokens, since)| *tokens + now.duration_since(*since).as_secs_f64() * rate < rate);
    }
}

/// The room: who is in it, and when each was last heard from.
struct ChatRoom {
    room: Mutex<Room>,
    limiter: Mutex<RateLimiter>,
    timeout: Duration,
    max_members: usize,
    announce_every: Duration,
    tutorial: bool,
    /// Keys the cookies: random for each run of the server.
    cookie_key: RandomState,
    started: Instant,
    /// When the news and the timeouts are next due.
    next_news: Mutex<Instant>,
    next_expiry: Mutex<Instant>,
    /// The server's socket, for what is sent outside a request; taken
    /// from the first request.
    socket: OnceLock<UdpSocket>,
    /// Datagrams sent, for the operator (logged at the end).
    sent: Arc<AtomicU64>,
}

/// Names, comma-separated, until `MAX_LISTED` bytes; then how many more
/// of the `total`.
fn listed<'a>(names: impl Iterator<Item = &'a str>, total: usize) -> String {
    let mut line = String::new();
    let mut shown = 0;
    for name in names {
        if line.len() + name.len() > MAX_LISTED {
            break;
        }
        if shown > 0 {
            line.push_str(", ");
        }
        line.push_str(name);
        shown += 1;
    }
    if shown < total {
        line.push_str(&format!(" and {} more", total - shown));
    }
    line
}

/// The most news items looked at for the names of one line: a line lists
/// some names and counts the rest, so its cost stays flat however much
/// happened.
const NEWS_SCANNED: usize = 400;

const CHANGES: [Change; 3] = [Change::Joined, Change::Left, Change::TimedOut];

/// A round of news, and how many changes of each kind it has from each
/// position on, so that the news since any moment is summed up in
/// bounded time.
struct Round {
    news: Vec<News>,
    /// `left[i][k]`: the changes of kind `CHANGES[k]` in `news[i..]`.
    left: Vec<[usize; 3]>,
}

impl Round {
    fn new(news: Vec<News>) -> Round {
        let mut left = vec![[0usize; 3]; news.len() + 1];
        for (i, item) in news.iter().enumerate().rev() {
            left[i] = left[i + 1];
            left[i][CHANGES.iter().position(|c| *c == item.change).unwrap_or(0)] += 1;
        }
        Round { news, left }
    }

    /// One line of the news numbered after `after`: "* bob joined" for one
    /// change, else grouped ("* joined: bob, carol; left: dave").
    fn line_after(&self, after: u64) -> Option<String> {
        let start = self.news.partition_point(|n| n.number <= after);
        let since = &self.news[start..];
        match since {
            [] => None,
            [one] => Some(format!("* {} {}", one.name, one.change.verb())),
            _ => {
                let mut groups = Vec::new();
                for (k, change) in CHANGES.iter().enumerate() {
                    let total = self.left[start][k];
                    if total == 0 {
                        continue;
                    }
                    let names = since
                        .iter()
                        .take(NEWS_SCANNED)
                        .filter(|n| n.change == *change)
                        .map(|n| n.name.as_str());
                    groups.push(format!("{}: {}", change.verb(), listed(names, total)));
                }
                Some(format!("* {}", groups.join("; ")))
            }
        }
    }
}

impl ChatRoom {
    fn send(&self, socket: &UdpSocket, line: &str, addr: SocketAddr) {
        match socket.send_to(line.as_bytes(), addr) {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => log::debug!("cannot send to {addr}: {e}"),
        }
    }

    fn reply(&self, request: &UdpRequest, line: &str) -> io::Result<()> {
        request.reply(line.as_bytes())?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a member's message to every member but `except`.
    fn relay(&self, socket: &UdpSocket, line: &str, except: Option<SocketAddr>) {
        let targets: Vec<SocketAddr> = self
            .room
            .lock()
            .members
            .keys()
            .copied()
            .filter(|a| Some(*a) != except)
            .collect();
        for addr in targets {
            self.send(socket, line, addr);
        }
    }

    /// The cookie for `addr` joining as `name` in cookie period `period`.
    fn cookie(&self, addr: SocketAddr, name: &str, period: u64) -> String {
        format!("{:016x}", self.cookie_key.hash_one((addr, name, period)))
    }

    fn cookie_period(&self) -> u64 {
        (self.started.elapsed().as_secs() / COOKIE_PERIOD.as_secs()) + 1
    }

    /// True if `cookie` is the one `addr` was sent for joining as `name`,
    /// in this cookie period or the one before.
    fn cookie_is_valid(&self, addr: SocketAddr, name: &str, cookie: &str) -> bool {
        let period = self.cookie_period();
        cookie == self.cookie(addr, name, period) || cookie == self.cookie(addr, name, period - 1)
    }

    /// Why `addr` cannot join as `name` now, if it cannot.
    fn refusal(&self, room: &Room, addr: SocketAddr, name: &str) -> Option<String> {
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_whitespace) {
            return Some(format!("! a name is 1 to {MAX_NAME} characters, without spaces"));
        }
        if name.starts_with("guest-") {
            return Some("! names starting with guest- are for the tutorials' clients".into());
        }
        if room.names.get(name).is_some_and(|holder| *holder != addr) {
            return Some(format!("! the name {name} is taken"));
        }
        if !room.members.contains_key(&addr) && room.members.len() >= self.max_members {
            return Some(format!("! the room is full ({} members)", self.max_members));
        }
        None
    }

    /// `JOIN name` (answered with a cookie) or `JOIN name COOKIE` (a
    /// member, if the cookie is this address's).
    fn join(&self, request: &UdpRequest, rest: &str) -> io::Result<()> {
        let peer = *request.peer_addr();
        let (name, cookie) = parse_join(rest);
        let mut room = self.room.lock();
        if let Some(refusal) = self.refusal(&room, peer, name) {
            drop(room);
            return self.reply(request, &refusal);
        }
        let period = self.cookie_period();
        let Some(cookie) = cookie else {
            drop(room);
            return self.reply(request, &format!("* confirm {}", self.cookie(peer, name, period)));
        };
        if !self.cookie_is_valid(peer, name, cookie) {
            drop(room);
            return self.reply(request, "! that cookie is not valid here; JOIN again");
        }
        let count = match room.members.entry(peer) {
            Entry::Occupied(joined) if joined.get().name != name => {
                let line = format!("! you are in the room as {}; LEAVE first", joined.get().name);
                drop(room);
                return self.reply(request, &line);
            }
            // Joined already (its welcome was lost): welcome it again.
            Entry::Occupied(_) => room.members.len(),
            Entry::Vacant(_) => {
                let joined_at = room.record(Change::Joined, name);
                let member = Member {
                    name: name.to_owned(),
                    last_heard: Instant::now(),
                    joined_at,
                    guest: false,
                };
                room.members.insert(peer, member);
                room.names.insert(name.to_owned(), peer);
                room.members.len()
            }
        };
        drop(room);
        log::info!("{name} joined from {peer}");
        self.reply(request, &format!("* welcome, {name}: {count} in the room"))
    }

    /// A raw datagram from an unknown address, in tutorial mode: joins it
    /// as a guest. False if it cannot join (a reply says why).
    fn join_guest(&self, request: &UdpRequest) -> io::Result<bool> {
        let peer = *request.peer_addr();
        let mut room = self.room.lock();
        if room.members.len() >= self.max_members {
            drop(room);
            self.reply(
                request,
                &format!("! the room is full ({} members)", self.max_members),
            )?;
            return Ok(false);
        }
        room.guests += 1;
        let name = format!("guest-{}", room.guests);
        let joined_at = room.record(Change::Joined, &name);
        room.names.insert(name.clone(), peer);
        room.members.insert(
            peer,
            Member {
                name: name.clone(),
                last_heard: Instant::now(),
                joined_at,
                guest: true,
            },
        );
        drop(room);
        log::info!("{name} (a tutorial client) joined from {peer}");
        Ok(true)
    }

    fn leave(&self, request: &UdpRequest) {
        let mut room = self.room.lock();
        if let Some(member) = room.remove(request.peer_addr()) {
            log::info!("{} left", member.name);
            room.record(Change::Left, &member.name);
        }
    }

    fn who(&self) -> String {
        let room = self.room.lock();
        let mut names: Vec<&str> = room.members.values().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        let total = names.len();
        format!("* in the room: {}", listed(names.into_iter(), total))
    }

    /// The member at `addr`, refreshing when it was last heard from.
    fn heard(&self, addr: SocketAddr) -> Option<(String, bool)> {
        let mut room = self.room.lock();
        let member = room.members.get_mut(&addr)?;
        member.last_heard = Instant::now();
        Some((member.name.clone(), member.guest))
    }

    /// Sends the news gathered since the last time to every member that
    /// takes news, one datagram each, of what happened since it joined.
    fn announce(&self, socket: &UdpSocket) {
        let (news, recipients) = {
            let mut room = self.room.lock();
            if room.news.is_empty() {
                return;
            }
            let news = std::mem::take(&mut room.news);
            let recipients: Vec<(SocketAddr, u64)> = room
                .members
                .iter()
                .filter(|(_, m)| !m.guest)
                .map(|(addr, m)| (*addr, m.joined_at))
                .collect();
            (news, recipients)
        };
        let round = Round::new(news);
        let first = round.news[0].number;
        let shared = round.line_after(first - 1);
        for (addr, joined_at) in recipients {
            let line = if joined_at < first {
                shared.clone()
            } else {
                // Joined during this round: only what came after.
                round.line_after(joined_at)
            };
            if let Some(line) = line {
                self.send(socket, &line, addr);
            }
        }
    }

    /// Drops the members silent for too long.
    fn expire(&self, socket: &UdpSocket) {
        let now = Instant::now();
        let expired: Vec<(SocketAddr, Member)> = {
            let mut room = self.room.lock();
            let gone: Vec<SocketAddr> = room
                .members
                .iter()
                .filter(|(_, m)| now - m.last_heard > self.timeout)
                .map(|(addr, _)| *addr)
                .collect();
            let expired: Vec<(SocketAddr, Member)> = gone
                .into_iter()
                .filter_map(|addr| room.remove(&addr).map(|m| (addr, m)))
                .collect();
            for (_, member) in &expired {
                room.record(Change::TimedOut, &member.name);
            }
            expired
        };
        for (addr, member) in expired {
            log::info!("{} ({addr}) timed out", member.name);
            if !member.guest {
                self.send(socket, "* you timed out; JOIN again", addr);
            }
        }
        self.limiter.lock().forget_idle(now);
    }

    /// True if `when` has come; then sets it `every` later.
    fn due(when: &Mutex<Instant>, every: Duration) -> bool {
        let mut when = when.lock();
        let now = Instant::now();
        if now < *when {
            return false;
        }
        *when = now + every;
        true
    }
}

impl RequestHandler<UdpRequest> for ChatRoom {
    fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
        if self.socket.get().is_none() {
            let _ = self.socket.set(request.socket().try_clone()?);
        }
        let peer = *request.peer_addr();
        let line = String::from_utf8_lossy(request.data()).trim().to_owned();
        let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let rest = rest.trim();
        let member = self.heard(peer);
        let is_command = matches!(command, "JOIN" | "LEAVE" | "MSG" | "WHO" | "PING");
        let guest_text = match &member {
            Some((_, true)) => true,
            None => self.tutorial && !is_command,
            Some((_, false)) => false,
        };
        // What costs the server a reply or the room a relay is limited per
        // source address; the rest (PING, LEAVE, WHO) is cheap, and so is
        // a confirmed join: its address has proved it is real.
        let confirmed_join = command == "JOIN"
            && match parse_join(rest) {
                (name, Some(cookie)) => self.cookie_is_valid(peer, name, cookie),
                _ => false,
            };
        let limited = guest_text || (matches!(command, "JOIN" | "MSG") && !confirmed_join);
        if limited && !self.limiter.lock().allow(peer.ip(), Instant::now()) {
            return self.reply(request, "! slow down");
        }
        if guest_text {
            let name = match member {
                Some((name, _)) => name,
                None if self.join_guest(request)? => self.heard(peer).map(|(n, _)| n).unwrap_or_default(),
                None => return Ok(()),
            };
            // Everyone, the sender included: its client waits for an answer.
            self.relay(request.socket(), &format!("[{name}] {line}"), None);
            return Ok(());
        }
        match command {
            "JOIN" => self.join(request, rest),
            "LEAVE" => {
                self.leave(request);
                Ok(())
            }
            other => {
                let Some((name, _)) = member else {
                    return self.reply(request, "! join first: JOIN name");
                };
                match other {
                    "MSG" if !rest.is_empty() => {
                        self.relay(request.socket(), &format!("[{name}] {rest}"), Some(peer));
                        Ok(())
                    }
                    "MSG" | "PING" => Ok(()),
                    "WHO" => self.reply(request, &self.who()),
                    _ => self.reply(request, "! unknown command; use MSG, WHO, PING or LEAVE"),
                }
            }
        }
    }

    /// Sends the news, and drops the members silent for too long, each
    /// when it is due.
    fn service_actions(&self) {
        let Some(socket) = self.socket.get() else { return };
        if Self::due(
            &self.next_expiry,
            (self.timeout / 4).max(Duration::from_millis(10)),
        ) {
            self.expire(socket);
        }
        if Self::due(&self.next_news, self.announce_every) {
            self.announce(socket);
        }
    }
}

fn main() -> ExitCode {
    common::init_logging("info");
    let args: Args = common::parse_args(common::CHAT_PORT);
    let result = Deployment::run(PROGRAM, |deployment| run(&args, deployment));
    common::exit(PROGRAM.name, result)
}

fn run(args: &Args, deployment: &mut Deployment) -> io::Result<()> {
    let addr = args.server.address()?;
    if args.tutorial && !addr.ip().is_loopback() {
        log::warn!(
            "tutorial mode beyond loopback ({addr}): a forged raw datagram enrolls any address as a guest"
        );
    }
    let now = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let room = ChatRoom {
        room: Mutex::new(Room::default()),
        limiter: Mutex::new(RateLimiter {
            rate: f64::from(args.rate_limit),
            buckets: HashMap::new(),
        }),
        timeout: args.timeout,
        max_members: usize::try_from(args.max_members).unwrap_or(usize::MAX),
        announce_every: args.announce_every,
        tutorial: args.tutorial,
        cookie_key: RandomState::new(),
        started: now,
        next_news: Mutex::new(now),
        next_expiry: Mutex::new(now),
        socket: OnceLock::new(),
        sent: Arc::clone(&sent),
    };
    let served = serve(args, deployment, addr, room);
    log::info!("sent {} datagrams", sent.load(Ordering::Relaxed));
    served
}

fn serve(args: &Args, deployment: &mut Deployment, addr: SocketAddr, room: ChatRoom) -> io::Result<()> {
    // Often enough for the news and for the timeouts.
    let tick = args
        .announce_every
        .min(args.timeout / 4)
        .max(Duration::from_millis(10));
    let builder = args
        .server
        .builder::<UdpSocket>(args.server.mode(false))
        .recv_buffer_size(usize::try_from(args.recv_buffer).unwrap_or(usize::MAX));
    let builder = deployment.watch(builder, Some(tick));
    let socket = deployment.socket(&builder, &addr)?;
    let server = builder.from_listener(socket, deployment.watched(room))?;
    deployment.serve(server, "datagrams")
}
