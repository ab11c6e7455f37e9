//! Datagram ping-pong, one socket per client. Every request carries a
//! sequence number, so a reply is matched to its own request: one that
//! comes after its request was given up on is counted late, never taken
//! for the current one.
//!
//! In a closed loop a socket sends its next datagram when it has the
//! reply to the last, or has given up on it after `--timeout`. On an
//! open-loop schedule (`--rate`) it sends on time whatever is still
//! awaited: a sender thread keeps the schedule and a receiver thread
//! matches replies to the requests in flight, so one lost datagram
//! neither delays the requests behind it nor adds to their latency.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{Message, Plan, Reply};
use crate::deadline::DeadlinedUdp;
use crate::record::{Failed, Failure, Recorder, Sent, timed_out};

/// One client's socket: closed loop, or open loop with `--rate`.
pub fn udp(plan: &Plan, client: usize) -> Recorder {
    let socket = match udp_socket(plan) {
        Ok(socket) => socket,
        Err(e) => {
            let mut recorder = plan.recorder();
            recorder.fail(Sent::now(), e);
            return recorder;
        }
    };
    match plan.interval {
        None => closed_loop(plan, client, socket),
        Some(_) => open_loop(plan, client, socket),
    }
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
    Ok(socket)
}

/// The datagram given up on: no reply by its deadline.
fn lost() -> Failed {
    Failed::new(Failure::Lost, "a datagram's reply never came")
}

fn closed_loop(plan: &Plan, client: usize, socket: UdpSocket) -> Recorder {
    let mut recorder = plan.recorder();
    let mut socket = match DeadlinedUdp::new(socket, plan.timeout) {
        Ok(socket) => socket,
        Err(e) => {
            recorder.fail(Sent::now(), e);
            return recorder;
        }
    };
    let mut message = Message::new(plan.size, client);
    let mut reply = vec![0; plan.size + 1];
    let mut pacer = plan.pacer(client);
    while let Some(sent) = pacer.next() {
        message.advance();
        if let Err(e) = socket.socket.send(&message.sent) {
            recorder.fail(sent, e);
            plan.pause_after_failure();
            continue;
        }
        let deadline = sent.at + plan.timeout;
        // Replies to earlier requests are counted and skipped; the wait
        // for this one's ends at its deadline all the same.
        loop {
            let len = match socket.recv_by(&mut reply, deadline) {
                Ok(len) => len,
                Err(e) if timed_out(&e) => {
                    recorder.fail(sent, lost());
                    break;
                }
                Err(e) => {
                    recorder.fail(sent, e);
                    break;
                }
            };
            match message.classify(&reply[..len]) {
                Reply::Other(_) => recorder.late(),
                Reply::Right if Instant::now() > deadline => {
                    recorder.fail(sent, lost());
                    recorder.late();
                    break;
                }
                Reply::Right => {
                    recorder.success(sent);
                    break;
                }
                Reply::Short | Reply::Wrong => {
                    recorder.fail(sent, message.failure(&reply[..len]));
                    break;
                }
            }
        }
    }
    recorder
}

/// A request in flight on an open-loop socket.
struct InFlight {
    seq: u64,
    sent: Sent,
}

/// What a socket's sender and receiver share.
struct Flights {
    /// In the order sent.
    waiting: Mutex<VecDeque<InFlight>>,
    /// The sender has sent its last request.
    done: AtomicBool,
}

impl Flights {
    fn waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<InFlight>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How often the receiver, waiting for replies, looks for requests past
/// their deadline and for the sender being done.
const TICK: Duration = Duration::from_millis(5);

fn open_loop(plan: &Plan, client: usize, socket: UdpSocket) -> Recorder {
    let flights = Flights {
        waiting: Mutex::new(VecDeque::new()),
        done: AtomicBool::new(false),
    };
    let receiving = match socket
        .try_clone()
        .and_then(|s| s.set_read_timeout(Some(TICK.min(plan.timeout))).map(|()| s))
    {
        Ok(receiving) => receiving,
        Err(e) => {
            let mut recorder = plan.recorder();
            recorder.fail(Sent::now(), e);
            return recorder;
        }
    };
    thread::scope(|scope| {
        let receiver = thread::Builder::new()
            .name(format!("loadgen-udp-rx-{client}"))
            .stack_size(256 * 1024)
            .spawn_scoped(scope, || receive(plan, client, &receiving, &flights));
        let mut recorder = send(plan, client, &socket, &flights);
        flights.done.store(true, Ordering::SeqCst);
        match receiver {
            Ok(receiver) => recorder.absorb(receiver.join().expect("a UDP receiver panicked")),
            Err(e) => recorder.fail(Sent::now(), e),
        }
        recorder
    })
}

/// Sends on schedule until the end of the window.
fn send(plan: &Plan, client: usize, socket: &UdpSocket, flights: &Flights) -> Recorder {
    let mut recorder = plan.recorder();
    let mut message = Message::new(plan.size, client);
    let mut pacer = plan.pacer(client);
    while let Some(sent) = pacer.next() {
        message.advance();
        // In the table before it goes, so a quick reply finds it.
        flights.waiting().push_back(InFlight {
            seq: message.seq,
            sent,
        });
        if let Err(e) = socket.send(&message.sent) {
            flights.waiting().pop_back();
            recorder.fail(sent, e);
        }
    }
    recorder.behind(pacer.behind());
    recorder
}

/// Matches replies to the requests in flight until the sender is done
/// and none is left: each within `--timeout` of its sending, or lost.
fn receive(plan: &Plan, client: usize, socket: &UdpSocket, flights: &Flights) -> Recorder {
    let mut recorder = plan.recorder();
    // Only to read the shape of replies: every request has it.
    let shape = Message::new(plan.size, client);
    let modulus = shape.seq_modulus();
    let mut reply = vec![0; plan.size + 1];
    loop {
        let received = socket.recv(&mut reply);
        let now = Instant::now();
        let mut waiting = flights.waiting();
        match received {
            Ok(len) => {
                let reply = &reply[..len];
                // The shape's own sequence number (0) is one like any other.
                let classified = match shape.classify(reply) {
                    Reply::Right => Reply::Other(0),
                    other => other,
                };
                // Its own request, by sequence number; a reply that
                // cannot say answers the oldest.
                let found = match classified {
                    Reply::Other(seq) => waiting.iter().position(|f| f.seq % modulus == seq),
                    _ => (!waiting.is_empty()).then_some(0),
                };
                match (classified, found.and_then(|at| waiting.remove(at))) {
                    (Reply::Other(_), Some(flight)) if now > flight.sent.at + plan.timeout => {
                        recorder.fail(flight.sent, lost());
                        recorder.late();
                    }
                    (Reply::Other(_), Some(flight)) => recorder.success(flight.sent),
                    (Reply::Other(_), None) => recorder.late(),
                    (_, flight) => {
                        let sent = flight.map_or_else(Sent::now, |f| f.sent);
                        recorder.fail(sent, shape.failure(reply));
                    }
                }
            }
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A refusal (ICMP) answers no request in particular.
                let sent = waiting.pop_front().map_or_else(Sent::now, |f| f.sent);
                recorder.fail(sent, e);
            }
        }
        while let Some(oldest) = waiting.front()
            && now > oldest.sent.at + plan.timeout
        {
            recorder.fail(oldest.sent, lost());
            waiting.pop_front();
        }
        if waiting.is_empty() && flights.done.load(Ordering::SeqCst) {
            return recorder;
        }
    }
}
