//! One loop per TCP mode, each run by one client thread (the UDP ones are
//! in udp.rs). Every reply is checked against the uppercase of what was
//! sent; every failure is recorded. Every loop sends nothing after the
//! end of the window, and waits for its last reply at most `--timeout`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::batch::{Batch, Encoding, Link, exchange, unsent};
use crate::deadline::Deadlined;
use crate::record::{Failed, Failure, Live, Recorder, Sent, Window, timed_out};
use crate::schedule::Pacer;
use crate::tls::TlsClient;

/// Pause after a failed connection before trying again, so a dead server
/// is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// What every client thread needs to know.
pub struct Plan {
    pub target: SocketAddr,
    pub size: usize,
    pub timeout: Duration,
    pub window: Window,
    /// Open-loop pacing: one request per this interval, per client.
    pub interval: Option<Duration>,
    /// How many clients share the load (open-loop schedules are spread
    /// over all of them).
    pub clients: usize,
    pub live: Arc<Live>,
    /// `--tls`: the tcp and churn clients speak TLS.
    pub tls: Option<Arc<TlsClient>>,
    /// `--source`: the local address connections come from (to spread
    /// many connections over several loopback addresses, 127.0.0.x).
    pub source: Option<IpAddr>,
    /// `--proxy-v1`, `--proxy-v2`: each connection begins with a PROXY
    /// protocol header claiming a client address of its own.
    pub proxy: Option<ProxyVersion>,
    /// `--pipeline`: the requests a connection writes at once.
    pub pipeline: usize,
    /// Raw requests, or frames (framed mode).
    pub encoding: Encoding,
}

/// Which PROXY protocol header connections begin with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text line (HAProxy's `send-proxy`).
    V1,
    /// The binary header (HAProxy's `send-proxy-v2`).
    V2,
}

impl ProxyVersion {
    pub fn name(self) -> &'static str {
        match self {
            ProxyVersion::V1 => "v1",
            ProxyVersion::V2 => "v2",
        }
    }
}

/// The client address connection `id` claims in its PROXY header, one of
/// its own for the first 16 million: 198.51.100.1-254 (TEST-NET-2) and a
/// port from 1024 for an IPv4 target, 2001:db8::/96 (documentation)
/// for an IPv6 one.
pub fn claimed_client(id: usize, target: SocketAddr) -> SocketAddr {
    let port = 1024 + (id / 254 % 64_512) as u16;
    match target {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::new(198, 51, 100, 1 + (id % 254) as u8).into(), port),
        SocketAddr::V6(_) => {
            let host = (id % (1 << 32)) as u128 + 1;
            SocketAddr::new(Ipv6Addr::from_bits(0x2001_0db8 << 96 | host).into(), port)
        }
    }
}

/// The PROXY header of a connection from `client` to `target`.
#[cfg(feature = "proxy-protocol")]
fn proxy_header(version: ProxyVersion, client: SocketAddr, target: SocketAddr) -> io::Result<Vec<u8>> {
    use socketserver::proxy_protocol::ProxyHeader;
    match version {
        ProxyVersion::V1 => ProxyHeader::new_v1(client, target).to_v1(),
        ProxyVersion::V2 => ProxyHeader::new_v2(client, target).to_v2(),
    }
}

/// Built without the feature there is no encoder (`run` refuses the
/// options before any client starts).
#[cfg(not(feature = "proxy-protocol"))]
fn proxy_header(_: ProxyVersion, _: SocketAddr, _: SocketAddr) -> io::Result<Vec<u8>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "PROXY headers need the `proxy-protocol` feature",
    ))
}

impl Plan {
    pub(crate) fn recorder(&self) -> Recorder {
        Recorder::new(self.window, Arc::clone(&self.live))
    }

    /// Client `client`'s schedule: a batch at each slot.
    pub(crate) fn pacer(&self, client: usize) -> Pacer {
        Pacer::new(self.interval, self.window, client, self.clients)
    }

    /// Client `client`'s batch of requests, in the run's size and
    /// encoding.
    pub(crate) fn batch(&self, client: usize) -> Batch {
        Batch::new(self.size, client, self.pipeline, self.encoding)
    }

    /// A connection for connection `id` (a client's number), made by
    /// `deadline`, which has sent its PROXY header if the plan says so.
    pub(crate) fn connect(&self, id: usize, deadline: Instant) -> io::Result<TcpStream> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no connection within --timeout",
            ));
        }
        let stream = match self.source {
            None => TcpStream::connect_timeout(&self.target, left)?,
            Some(source) => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(self.target),
                    socket2::Type::STREAM,
                    None,
                )?;
                socket.bind(&SocketAddr::new(source, 0).into())?;
                socket.connect_timeout(&self.target.into(), left)?;
                socket.into()
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        if let Some(version) = self.proxy {
            let client = claimed_client(id, self.target);
            (&stream).write_all(&proxy_header(version, client, self.target)?)?;
        }
        Ok(stream)
    }

    pub(crate) fn pause_after_failure(&self) {
        let left = self.window.end.saturating_duration_since(Instant::now());
        thread::sleep(RETRY_PAUSE.min(left));
    }
}

/// A request and the reply it must get. The first bytes carry a sequence
/// number in lowercase letters, so a late UDP reply can be told from the
/// current one; the uppercase echo turns them into capitals.
pub struct Message {
    pub(crate) sent: Vec<u8>,
    pub(crate) expected: Vec<u8>,
    pub(crate) seq: u64,
}

/// How many leading bytes carry the sequence number.
fn seq_digits(size: usize) -> usize {
    size.min(8)
}

/// How many different sequence numbers a message of `size` bytes can
/// carry (26 to the power of its digits).
pub fn seq_modulus(size: usize) -> u64 {
    26u64.pow(seq_digits(size) as u32)
}

/// What a reply is, held against the request it may answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The uppercase of the request, whole.
    Right,
    /// A reply of the request's shape to another request: this sequence
    /// number, modulo [`Message::seq_modulus`].
    Other(u64),
    /// Fewer bytes than the request.
    Short,
    /// Anything else.
    Wrong,
}

impl Message {
    pub(crate) fn new(size: usize, client: usize) -> Self {
        let mut sent: Vec<u8> = (0..size).map(|i| b'a' + ((i + client) % 26) as u8).collect();
        if size > 8 {
            sent[8] = b'-';
        }
        let expected = sent.to_ascii_uppercase();
        Message {
            sent,
            expected,
            seq: 0,
        }
    }

    /// Moves to the next sequence number.
    pub(crate) fn advance(&mut self) {
        self.set_seq(self.seq + 1);
    }

    /// Makes this the message with sequence number `seq`.
    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
        let mut n = seq;
        for i in 0..self.digits() {
            let digit = (n % 26) as u8;
            self.sent[i] = b'a' + digit;
            self.expected[i] = b'A' + digit;
            n /= 26;
        }
    }

    /// How many leading bytes carry the sequence number.
    pub(crate) fn digits(&self) -> usize {
        seq_digits(self.sent.len())
    }

    /// Sequence numbers repeat after this many requests.
    pub(crate) fn seq_modulus(&self) -> u64 {
        seq_modulus(self.sent.len())
    }

    /// The sequence number an uppercase reply carries, if it has the
    /// request's shape.
    fn seq_of(&self, reply: &[u8]) -> Option<u64> {
        let digits = seq_digits(self.sent.len());
        if reply.len() != self.sent.len() || reply[digits..] != self.expected[digits..] {
            return None;
        }
        let mut seq = 0u64;
        for &b in reply[..digits].iter().rev() {
            if !b.is_ascii_uppercase() {
                return None;
            }
            seq = seq * 26 + (b - b'A') as u64;
        }
        Some(seq)
    }

    /// What `reply` is to this request.
    pub(crate) fn classify(&self, reply: &[u8]) -> Reply {
        if reply == self.expected {
            return Reply::Right;
        }
        if reply.len() < self.expected.len() {
            return Reply::Short;
        }
        match self.seq_of(reply) {
            Some(seq) => Reply::Other(seq),
            None => Reply::Wrong,
        }
    }

    /// Whether `reply` is this request's, and if not, the failure it
    /// makes.
    pub(crate) fn check(&self, reply: &[u8]) -> Result<(), Failed> {
        match self.classify(reply) {
            Reply::Right => Ok(()),
            _ => Err(self.failure(reply)),
        }
    }

    /// The failure a reply that is not this request's makes: short, or
    /// mismatched.
    pub(crate) fn failure(&self, reply: &[u8]) -> Failed {
        if reply.len() < self.expected.len() {
            Failed::new(
                Failure::Short,
                format!(
                    "a {}-byte reply to a {}-byte request",
                    reply.len(),
                    self.sent.len()
                ),
            )
        } else {
            Failed::new(Failure::Mismatch, "a reply did not match what was sent")
        }
    }
}

/// The failure of a reply cut off after `got` of its `len` bytes: by the
/// server closing the connection (`closed`), or by the deadline.
pub(crate) fn cut_off(got: usize, len: usize, closed: bool) -> Failed {
    match (got, closed) {
        (0, true) => Failed::new(Failure::Error, "the server closed the connection"),
        (0, false) => Failed::new(Failure::Timeout, "no reply within --timeout"),
        (_, true) => Failed::new(
            Failure::Short,
            format!("the connection closed after {got} of {len} reply bytes"),
        ),
        (_, false) => Failed::new(
            Failure::Short,
            format!("{got} of {len} reply bytes came within --timeout"),
        ),
    }
}

/// Ping-pong on one connection, a batch at a time, reconnecting after a
/// failure; `connect` makes a connection of a new stream.
fn ping_pong<C: Link>(plan: &Plan, client: usize, connect: impl Fn(Deadlined) -> io::Result<C>) -> Recorder {
    let mut recorder = plan.recorder();
    let mut batch = plan.batch(client);
    let mut pacer = plan.pacer(client);
    let mut connection: Option<C> = None;
    while let Some(sent) = pacer.next() {
        let deadline = sent.at + plan.timeout;
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match plan
                .connect(client, deadline)
                .and_then(|stream| connect(Deadlined::new(stream, plan.timeout)))
            {
                Ok(conn) => connection.insert(conn),
                Err(e) => {
                    unsent(batch.count(), sent, e.into(), &mut recorder);
                    plan.pause_after_failure();
                    continue;
                }
            },
        };
        if exchange(conn, &mut batch, sent, deadline, &mut recorder).is_err() {
            // Out of step, or cut off: start again on a new connection.
            connection = None;
        }
    }
    recorder.behind(pacer.behind().times(batch.count() as u64));
    recorder
}

/// Ping-pong on a long-lived connection, raw or framed, over TLS with
/// `--tls`.
pub fn tcp(plan: &Plan, client: usize) -> Recorder {
    match &plan.tls {
        Some(tls) => ping_pong(plan, client, |stream| tls.wrap(stream)),
        None => ping_pong(plan, client, Ok),
    }
}

/// Connect, one round trip, close; again and again.
pub fn churn(plan: &Plan, client: usize) -> Recorder {
    let mut recorder = plan.recorder();
    let mut batch = plan.batch(client);
    let mut pacer = plan.pacer(client);
    while let Some(sent) = pacer.next() {
        let deadline = sent.at + plan.timeout;
        let stream = plan
            .connect(client, deadline)
            .map(|stream| Deadlined::new(stream, plan.timeout));
        let exchanged = match (stream, &plan.tls) {
            // Dropping the connection sends close_notify.
            (Ok(stream), Some(tls)) => match tls.wrap(stream) {
                Ok(mut conn) => exchange(&mut conn, &mut batch, sent, deadline, &mut recorder),
                Err(e) => Err(unsent(batch.count(), sent, e.into(), &mut recorder)),
            },
            (Ok(mut stream), None) => exchange(&mut stream, &mut batch, sent, deadline, &mut recorder),
            (Err(e), _) => Err(unsent(batch.count(), sent, e.into(), &mut recorder)),
        };
        if exchanged == Err(Failure::Error) {
            // Refused, or closed at once.
            plan.pause_after_failure();
        }
    }
    recorder.behind(pacer.behind());
    recorder
}

/// What an idle-connections run found besides latency.
#[derive(Default)]
pub struct IdleOutcome {
    pub connected: u64,
    pub closed_by_server: u64,
}

/// Opens `count` connections and keeps them, does one round trip on each,
/// then (with `hold`) waits until the server closes them or the window
/// ends. Connection `i` is number `client + i * stride` of the run. No
/// connection or round trip begins after the window's end.
pub fn idle(plan: &Plan, client: usize, stride: usize, count: usize, hold: bool) -> (Recorder, IdleOutcome) {
    let mut recorder = plan.recorder();
    let mut outcome = IdleOutcome::default();
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        if Instant::now() >= plan.window.end {
            break;
        }
        let sent = Sent::now();
        match plan.connect(client + i * stride, sent.at + plan.timeout) {
            Ok(stream) => streams.push(Deadlined::new(stream, plan.timeout)),
            Err(e) => recorder.fail(sent, e),
        }
    }
    outcome.connected = streams.len() as u64;
    let mut batch = plan.batch(client);
    for stream in &mut streams {
        let sent = Sent::now();
        if sent.at >= plan.window.end {
            break;
        }
        // Recorded either way; the connection is kept.
        let _ = exchange(stream, &mut batch, sent, sent.at + plan.timeout, &mut recorder);
    }
    if hold {
        // Wait for the server to close each one, until the window ends.
        for stream in &mut streams {
            if Instant::now() >= plan.window.end {
                break;
            }
            stream.set_deadline(Some(plan.window.end));
            let mut byte = [0u8; 1];
            match stream.read(&mut byte) {
                Ok(0) => outcome.closed_by_server += 1,
                Ok(_) => recorder.fail(
                    Sent::now(),
                    Failed::new(
                        Failure::Mismatch,
                        "an idle connection got bytes it did not ask for",
                    ),
                ),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => outcome.closed_by_server += 1,
                Err(e) if timed_out(&e) => break,
                Err(e) => recorder.fail(Sent::now(), e),
            }
        }
    }
    (recorder, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_survive_the_echo() {
        let mut message = Message::new(64, 3);
        for _ in 0..1000 {
            message.advance();
        }
        assert_eq!(message.seq_of(&message.expected), Some(1000));
        assert_eq!(message.seq_of(&message.sent), None);
    }

    #[test]
    fn every_connection_claims_a_client_address_of_its_own() {
        let v4: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let v6: SocketAddr = "[::1]:9999".parse().unwrap();
        for target in [v4, v6] {
            let claimed: std::collections::HashSet<SocketAddr> =
                (0..100_000).map(|id| claimed_client(id, target)).collect();
            assert_eq!(claimed.len(), 100_000);
            assert!(claimed.iter().all(|a| a.is_ipv4() == target.is_ipv4()));
        }
        assert_eq!(claimed_client(0, v4), "198.51.100.1:1024".parse().unwrap());
        assert_eq!(claimed_client(254, v4), "198.51.100.1:1025".parse().unwrap());
        assert_eq!(claimed_client(1, v6), "[2001:db8::2]:1024".parse().unwrap());
    }
}
