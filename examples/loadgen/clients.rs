//! One loop per mode, each run by one client thread. Every reply is
//! checked against the uppercase of what was sent; every failure is
//! recorded. Every loop ends by itself at the end of the window.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::framing::Framed;

use crate::record::{Live, Recorder, Window};
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
    pub live: Arc<Live>,
    /// `--tls`: the tcp and churn clients speak TLS.
    pub tls: Option<Arc<TlsClient>>,
    /// `--source`: the local address connections come from (to spread
    /// many connections over several loopback addresses, 127.0.0.x).
    pub source: Option<IpAddr>,
    /// `--proxy-v1`, `--proxy-v2`: each connection begins with a PROXY
    /// protocol header claiming a client address of its own.
    pub proxy: Option<ProxyVersion>,
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

    fn pacer(&self, client: usize) -> Pacer {
        // Spread the clients' schedules over one interval.
        let offset = self
            .interval
            .map_or(Duration::ZERO, |i| i.mul_f64((client % 64) as f64 / 64.0));
        Pacer {
            next: Instant::now() + offset,
            interval: self.interval,
            end: self.window.end,
        }
    }

    /// A connection for connection `id` (a client's number), which has
    /// sent its PROXY header if the plan says so.
    pub(crate) fn connect(&self, id: usize) -> io::Result<TcpStream> {
        let stream = match self.source {
            None => TcpStream::connect_timeout(&self.target, self.timeout)?,
            Some(source) => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(self.target),
                    socket2::Type::STREAM,
                    None,
                )?;
                socket.bind(&SocketAddr::new(source, 0).into())?;
                socket.connect_timeout(&self.target.into(), self.timeout)?;
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

/// When the next request goes out. Closed loop: at once. Open loop (a
/// rate): on a fixed schedule, and latency counts from the scheduled time,
/// so a server that stalls cannot hide the queue it builds up.
struct Pacer {
    next: Instant,
    interval: Option<Duration>,
    end: Instant,
}

impl Pacer {
    /// The time the next request counts from, or `None` when the run is
    /// over.
    fn next(&mut self) -> Option<Instant> {
        let Some(interval) = self.interval else {
            let now = Instant::now();
            return (now < self.end).then_some(now);
        };
        let scheduled = self.next;
        if scheduled >= self.end {
            return None;
        }
        self.next += interval;
        let now = Instant::now();
        if scheduled > now {
            thread::sleep(scheduled - now);
        }
        Some(scheduled)
    }
}

/// A request and the reply it must get. The first bytes carry a sequence
/// number in lowercase letters, so a late UDP reply can be told from the
/// current one; the uppercase echo turns them into capitals.
pub(crate) struct Message {
    pub(crate) sent: Vec<u8>,
    pub(crate) expected: Vec<u8>,
    seq: u64,
}

/// How many leading bytes carry the sequence number.
fn seq_digits(size: usize) -> usize {
    size.min(8)
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
        self.seq += 1;
        let mut n = self.seq;
        for i in 0..seq_digits(self.sent.len()) {
            let digit = (n % 26) as u8;
            self.sent[i] = b'a' + digit;
            self.expected[i] = b'A' + digit;
            n /= 26;
        }
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
}

/// Ping-pong on one connection, reconnecting after a failure.
/// `exchange` sends the message and reads the reply into the buffer.
fn ping_pong<C>(
    plan: &Plan,
    client: usize,
    connect: impl Fn(TcpStream) -> io::Result<C>,
    mut exchange: impl FnMut(&mut C, &[u8], &mut Vec<u8>) -> io::Result<()>,
) -> Recorder {
    let mut recorder = plan.recorder();
    let mut message = Message::new(plan.size, client);
    let mut reply = vec![0; plan.size];
    let mut pacer = plan.pacer(client);
    let mut connection: Option<C> = None;
    while let Some(began) = pacer.next() {
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match plan.connect(client).and_then(&connect) {
                Ok(conn) => connection.insert(conn),
                Err(e) => {
                    recorder.error(&e);
                    plan.pause_after_failure();
                    continue;
                }
            },
        };
        message.advance();
        match exchange(conn, &message.sent, &mut reply) {
            Ok(()) if reply == message.expected => recorder.success(began),
            Ok(()) => {
                // Out of step: start again on a new connection.
                recorder.mismatch();
                connection = None;
            }
            Err(e) => {
                recorder.error(&e);
                connection = None;
            }
        }
    }
    recorder
}

/// Raw ping-pong: the reply is exactly as long as the request.
pub fn tcp(plan: &Plan, client: usize) -> Recorder {
    if let Some(tls) = &plan.tls {
        return ping_pong(
            plan,
            client,
            |stream| tls.wrap(stream),
            |conn, sent, reply| conn.exchange(tls, Instant::now(), sent, reply),
        );
    }
    ping_pong(plan, client, Ok, |stream, sent, reply| {
        stream.write_all(sent)?;
        stream.read_exact(reply)
    })
}

/// Connect, one round trip, close; again and again.
pub fn churn(plan: &Plan, client: usize) -> Recorder {
    let mut recorder = plan.recorder();
    let mut message = Message::new(plan.size, client);
    let mut reply = vec![0; plan.size];
    let mut pacer = plan.pacer(client);
    while let Some(began) = pacer.next() {
        message.advance();
        let exchanged = plan.connect(client).and_then(|mut stream| match &plan.tls {
            // Dropping the connection sends close_notify.
            Some(tls) => tls.wrap(stream)?.exchange(tls, began, &message.sent, &mut reply),
            None => {
                stream.write_all(&message.sent)?;
                stream.read_exact(&mut reply)
            }
        });
        match exchanged {
            Ok(()) if reply == message.expected => recorder.success(began),
            Ok(()) => recorder.mismatch(),
            Err(e) => {
                recorder.error(&e);
                plan.pause_after_failure();
            }
        }
    }
    recorder
}

/// Ping-pong with frames on one connection.
pub fn framed(plan: &Plan, client: usize) -> Recorder {
    let framed_stream = |stream| Ok(Framed::buffered(stream));
    ping_pong(plan, client, framed_stream, |framed, sent, reply| {
        framed.write_frame(sent)?;
        if framed.read_frame_into(reply)? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ))
        }
    })
}

/// Datagram ping-pong. A reply that does not come within the timeout is
/// counted lost; one that comes later is recognized by its sequence
/// number and counted late, never mistaken for the current reply.
pub fn udp(plan: &Plan, client: usize) -> Recorder {
    let mut recorder = plan.recorder();
    let socket = match udp_socket(plan) {
        Ok(socket) => socket,
        Err(e) => {
            recorder.error(&e);
            return recorder;
        }
    };
    let mut message = Message::new(plan.size, client);
    let mut reply = vec![0; plan.size.max(1) + 1];
    let mut pacer = plan.pacer(client);
    while let Some(began) = pacer.next() {
        message.advance();
        if let Err(e) = socket.send(&message.sent) {
            recorder.error(&e);
            plan.pause_after_failure();
            continue;
        }
        loop {
            match socket.recv(&mut reply) {
                Ok(len) if reply[..len] == message.expected[..] => {
                    recorder.success(began);
                    break;
                }
                Ok(len) => match message.seq_of(&reply[..len]) {
                    Some(seq) if seq != message.seq % 26u64.pow(seq_digits(plan.size) as u32) => {
                        recorder.late()
                    }
                    _ => {
                        recorder.mismatch();
                        break;
                    }
                },
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    recorder.lost();
                    break;
                }
                Err(e) => {
                    recorder.error(&e);
                    break;
                }
            }
        }
    }
    recorder
}

fn udp_socket(plan: &Plan) -> io::Result<UdpSocket> {
    // Loopback for a loopback target, any address otherwise.
    let local: IpAddr = match (plan.target, plan.target.ip().is_loopback()) {
        (SocketAddr::V4(_), true) => Ipv4Addr::LOCALHOST.into(),
        (SocketAddr::V4(_), false) => Ipv4Addr::UNSPECIFIED.into(),
        (SocketAddr::V6(_), true) => Ipv6Addr::LOCALHOST.into(),
        (SocketAddr::V6(_), false) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
    socket.connect(plan.target)?;
    socket.set_read_timeout(Some(plan.timeout))?;
    Ok(socket)
}

/// What an idle-connections run found besides latency.
#[derive(Default)]
pub struct IdleOutcome {
    pub connected: u64,
    pub closed_by_server: u64,
}

/// Opens `count` connections and keeps them, does one round trip on each,
/// then (with `hold`) waits until the server closes them or the window
/// ends. Connection `i` is number `client + i * stride` of the run.
pub fn idle(plan: &Plan, client: usize, stride: usize, count: usize, hold: bool) -> (Recorder, IdleOutcome) {
    let mut recorder = plan.recorder();
    let mut outcome = IdleOutcome::default();
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        if Instant::now() >= plan.window.end {
            break;
        }
        match plan.connect(client + i * stride) {
            Ok(stream) => streams.push(stream),
            Err(e) => recorder.error(&e),
        }
    }
    outcome.connected = streams.len() as u64;
    let mut message = Message::new(plan.size, client);
    let mut reply = vec![0; plan.size];
    for stream in &mut streams {
        message.advance();
        let began = Instant::now();
        match stream
            .write_all(&message.sent)
            .and_then(|()| stream.read_exact(&mut reply))
        {
            Ok(()) if reply == message.expected => recorder.success(began),
            Ok(()) => recorder.mismatch(),
            Err(e) => recorder.error(&e),
        }
    }
    if hold {
        // Wait for the server to close each one, until the window ends.
        for stream in &mut streams {
            let left = plan.window.end.saturating_duration_since(Instant::now());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            let mut byte = [0u8; 1];
            match stream.read(&mut byte) {
                Ok(0) => outcome.closed_by_server += 1,
                Ok(_) => recorder.mismatch(),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => outcome.closed_by_server += 1,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(e) => recorder.error(&e),
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
