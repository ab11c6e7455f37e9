//! Echo servers that misbehave on purpose, deterministically, for the
//! load generator's tests: they answer requests of a known size with the
//! uppercase of what came, except where their [`TcpFault`] or
//! [`UdpFault`] says otherwise, and count what they did, so a test can
//! hold loadgen's report against the truth.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{ServerHandle, TcpRequest, ThreadingTcpServer};

use super::{Running, serve};

/// How a TCP server misbehaves. Requests are counted across all
/// connections, from 1.
#[derive(Clone, Copy, Debug)]
pub enum TcpFault {
    /// Every reply after this pause: a connection gets at most one reply
    /// per pause, whatever it asks for.
    Delay(Duration),
    /// Every n-th request gets no reply; the connection stays open.
    DropEvery(u64),
    /// Every reply one byte at a time, this pause after each byte.
    Trickle(Duration),
    /// Every n-th reply lacks its last byte; the connection stays open.
    ShortEvery(u64),
    /// Requests are answered two at a time, in reverse order: every reply
    /// right, each on another's place (for pipelined clients).
    SwapPairs,
}

/// What a server did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests received whole.
    pub requests: AtomicU64,
    /// Requests answered (shortened replies and UDP replays included).
    pub replied: AtomicU64,
    /// Requests left without a reply.
    pub dropped: AtomicU64,
}

impl Counts {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// A TCP echo server with a fault, serving on a background thread until
/// dropped.
pub struct FaultyTcp {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    _handle: ServerHandle<SocketAddr>,
    running: Option<Running>,
}

impl FaultyTcp {
    /// Serves requests of `size` bytes on 127.0.0.1, misbehaving as
    /// `fault` says.
    pub fn start(size: usize, fault: TcpFault) -> Self {
        let counts = Arc::new(Counts::default());
        let seen = Arc::clone(&counts);
        let (handle, running) = serve(ThreadingTcpServer::bind(
            "127.0.0.1:0",
            move |request: &mut TcpRequest| serve_connection(request, size, fault, &seen),
        ));
        FaultyTcp {
            addr: *handle.local_addr(),
            counts,
            _handle: handle,
            running: Some(running),
        }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultyTcp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
        }
    }
}

/// Answers one connection's requests until the client goes.
fn serve_connection(
    request: &mut TcpRequest,
    size: usize,
    fault: TcpFault,
    counts: &Counts,
) -> io::Result<()> {
    let mut message = vec![0; size];
    // SwapPairs: the first of a pair, held back until the second is in.
    let mut held: Option<Vec<u8>> = None;
    loop {
        if request.read_exact(&mut message).is_err() {
            return Ok(()); // the client went
        }
        let n = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
        message.make_ascii_uppercase();
        if let TcpFault::SwapPairs = fault {
            match held.take() {
                None => held = Some(message.clone()),
                Some(first) => {
                    request.write_all(&[&message[..], &first[..]].concat())?;
                    counts.replied.fetch_add(2, Ordering::SeqCst);
                }
            }
            continue;
        }
        let reply: &[u8] = match fault {
            TcpFault::DropEvery(every) if n.is_multiple_of(every) => {
                counts.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            TcpFault::ShortEvery(every) if n.is_multiple_of(every) => &message[..size - 1],
            TcpFault::Delay(pause) => {
                thread::sleep(pause);
                &message
            }
            TcpFault::Trickle(pause) => {
                for byte in &message {
                    request.write_all(std::slice::from_ref(byte))?;
                    thread::sleep(pause);
                }
                counts.replied.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            _ => &message,
        };
        request.write_all(reply)?;
        counts.replied.fetch_add(1, Ordering::SeqCst);
    }
}

/// How a UDP server misbehaves. Datagrams are counted across all
/// clients, from 1.
#[derive(Clone, Copy, Debug)]
pub enum UdpFault {
    /// Every n-th datagram gets no reply.
    DropEvery(u64),
    /// Every n-th reply lacks its last byte.
    ShortEvery(u64),
    /// Each client's first datagram is answered; later ones are not, and
    /// while any is waiting the first reply is sent again every period: a
    /// stale reply that keeps coming.
    ReplayStale(Duration),
}

/// A UDP echo server with a fault, on a thread of its own, until dropped.
pub struct FaultyUdp {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// How often the server's loop looks at the stop flag and its replays.
const TICK: Duration = Duration::from_millis(5);

impl FaultyUdp {
    pub fn start(fault: UdpFault) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(TICK)).unwrap();
        let addr = socket.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&counts), Arc::clone(&stop));
        let thread = thread::spawn(move || serve_datagrams(&socket, fault, &seen, &stopped));
        FaultyUdp {
            addr,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultyUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the UDP server panicked");
        }
    }
}

/// A client of the stale-replay server: its first reply, and when to send
/// it again (once it has a request waiting).
struct Stale {
    reply: Vec<u8>,
    next: Option<Instant>,
}

fn serve_datagrams(socket: &UdpSocket, fault: UdpFault, counts: &Counts, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 65_536];
    let mut stale: HashMap<SocketAddr, Stale> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        if let UdpFault::ReplayStale(period) = fault {
            let now = Instant::now();
            for (peer, client) in &mut stale {
                if let Some(next) = client.next.filter(|&next| next <= now) {
                    let _ = socket.send_to(&client.reply, peer);
                    counts.replied.fetch_add(1, Ordering::SeqCst);
                    client.next = Some(next + period);
                }
            }
        }
        let (len, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(_) => continue, // the tick, or an ICMP error from a client gone
        };
        let n = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = buffer[..len].to_ascii_uppercase();
        let reply = match fault {
            UdpFault::DropEvery(every) if n.is_multiple_of(every) => None,
            UdpFault::ShortEvery(every) if n.is_multiple_of(every) => Some(&reply[..len - 1]),
            UdpFault::ReplayStale(period) => match stale.get_mut(&peer) {
                Some(client) => {
                    client.next.get_or_insert(Instant::now() + period);
                    None
                }
                None => {
                    stale.insert(
                        peer,
                        Stale {
                            reply: reply.clone(),
                            next: None,
                        },
                    );
                    Some(&reply[..])
                }
            },
            _ => Some(&reply[..]),
        };
        match reply {
            Some(reply) => {
                let _ = socket.send_to(reply, peer);
                counts.replied.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                counts.dropped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
