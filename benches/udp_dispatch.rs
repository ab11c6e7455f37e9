//! How ThreadingUdpServer's dispatch design was chosen, and how it does.
//!
//! Runs 64-byte UDP ping-pong over loopback, at 1 and 16 concurrent
//! clients, against six servers one after the other, in one invocation:
//!
//! - `plain loop`: one thread, `recv_from` then `send_to` (the baseline);
//! - `ThreadingUdpServer`: this crate (workers receive on the shared
//!   socket), with its default of one worker per core, and with 4;
//! - `UdpServer`: this crate's serial server (loop thread polls, receives);
//! - `hand-off`: a prototype where one thread receives and hands each
//!   datagram to 4 pooled workers through a channel;
//! - `SO_REUSEPORT`: a prototype with 4 sockets on one port, a worker each.
//!
//! ```text
//! cargo bench --bench udp_dispatch                 # 5 rounds of 1 s per design
//! UDP_BENCH_MS=3000 UDP_BENCH_ROUNDS=9 cargo bench --bench udp_dispatch
//! ```
//!
//! Prints a markdown table: the median datagrams per second of each design,
//! and the median of its per-round ratios against the plain loop. The
//! order of the designs rotates from round to round, so none always runs
//! first or after the same neighbour; on a small machine a single run
//! swings by tens of percent with where the scheduler puts the threads.
//! Loopback only; every run stops by itself.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[path = "fixtures/plain.rs"]
mod plain;

use socketserver::echo::Uppercase;
use socketserver::{Server, ThreadingUdpServer, UdpServer};

const SIZE: usize = 64;
/// How often the prototypes' threads look at their stop flag.
const PROTOTYPE_TICK: Duration = Duration::from_millis(50);

/// A server under test, stopped by `stop`.
struct Running {
    addr: SocketAddr,
    stop: Box<dyn FnOnce()>,
}

fn uppercase_reply(socket: &UdpSocket, buf: &mut [u8], len: usize, to: SocketAddr) {
    buf[..len].make_ascii_uppercase();
    let _ = socket.send_to(&buf[..len], to);
}

fn ticking_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PROTOTYPE_TICK)).unwrap();
    socket
}

/// Threads that run until the returned flag is set.
fn prototype(addr: SocketAddr, threads: Vec<JoinHandle<()>>, flag: Arc<AtomicBool>) -> Running {
    Running {
        addr,
        stop: Box::new(move || {
            flag.store(true, Ordering::Release);
            for thread in threads {
                thread.join().unwrap();
            }
        }),
    }
}

fn plain_loop() -> Running {
    let server = plain::udp_loop(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    Running {
        addr: server.addr,
        stop: Box::new(move || server.stop()),
    }
}

fn hand_off(workers: usize) -> Running {
    let socket = Arc::new(ticking_socket());
    let addr = socket.local_addr().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let (jobs, queue) = crossbeam_channel::bounded::<(Vec<u8>, usize, SocketAddr)>(256);
    let (recycle, buffers) = crossbeam_channel::bounded::<Vec<u8>>(512);
    for _ in 0..512 {
        recycle.send(vec![0u8; 65_507]).unwrap();
    }
    let mut threads: Vec<JoinHandle<()>> = (0..workers)
        .map(|_| {
            let (queue, socket, recycle) = (queue.clone(), Arc::clone(&socket), recycle.clone());
            thread::spawn(move || {
                while let Ok((mut buf, len, from)) = queue.recv() {
                    uppercase_reply(&socket, &mut buf, len, from);
                    let _ = recycle.send(buf);
                }
            })
        })
        .collect();
    let stop = Arc::clone(&flag);
    threads.push(thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            let mut buf = buffers.recv().unwrap();
            match socket.recv_from(&mut buf) {
                Ok((len, from)) => jobs.send((buf, len, from)).unwrap(),
                Err(_) => recycle.send(buf).unwrap(),
            }
        }
    }));
    prototype(addr, threads, flag)
}

fn reuse_port(workers: usize) -> Running {
    let first = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    first.set_reuse_port(true).unwrap();
    first.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let addr = first.local_addr().unwrap().as_socket().unwrap();
    let mut sockets = vec![UdpSocket::from(first)];
    for _ in 1..workers {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&addr.into()).unwrap();
        sockets.push(socket.into());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let threads = sockets
        .into_iter()
        .map(|socket| {
            socket.set_read_timeout(Some(PROTOTYPE_TICK)).unwrap();
            let stop = Arc::clone(&flag);
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_507];
                while !stop.load(Ordering::Acquire) {
                    if let Ok((len, from)) = socket.recv_from(&mut buf) {
                        uppercase_reply(&socket, &mut buf, len, from);
                    }
                }
            })
        })
        .collect();
    prototype(addr, threads, flag)
}

/// Serves `server` on a thread of its own.
fn library<S: Server<Addr = SocketAddr>>(server: S) -> Running {
    let addr = *server.local_addr();
    let stop = server.shutdown_handle();
    let thread = thread::spawn(move || server.serve_forever().unwrap());
    Running {
        addr,
        stop: Box::new(move || {
            stop.shutdown();
            thread.join().unwrap();
        }),
    }
}

/// Closed-loop ping-pong from `clients` threads for `duration`; every
/// reply is checked. Returns round trips per second.
fn load(addr: SocketAddr, clients: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (done, lost, start) = (Arc::clone(&done), Arc::clone(&lost), Arc::clone(&start));
            thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(addr).unwrap();
                socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                let message = [b'a'; SIZE];
                let mut reply = [0u8; 2 * SIZE];
                start.wait();
                let began = Instant::now();
                let mut count = 0u64;
                while began.elapsed() < duration {
                    socket.send(&message).unwrap();
                    match socket.recv(&mut reply) {
                        Ok(len) => {
                            assert_eq!(&reply[..len], &[b'A'; SIZE][..], "wrong reply");
                            count += 1;
                        }
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                done.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let lost = lost.load(Ordering::Relaxed);
    if lost > 0 {
        eprintln!("  ({lost} datagrams lost and timed out)");
    }
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let duration = Duration::from_millis(env_number("UDP_BENCH_MS", 1000));
    let rounds = env_number("UDP_BENCH_ROUNDS", 5) as usize;
    type Start = fn() -> Running;
    let designs: [(&str, Start); 6] = [
        ("plain loop", plain_loop),
        ("ThreadingUdpServer", || {
            library(ThreadingUdpServer::bind("127.0.0.1:0", Uppercase).unwrap())
        }),
        ("ThreadingUdpServer, 4 workers", || {
            library(
                ThreadingUdpServer::builder()
                    .workers(4)
                    .bind("127.0.0.1:0", Uppercase)
                    .unwrap(),
            )
        }),
        ("UdpServer", || {
            library(UdpServer::bind("127.0.0.1:0", Uppercase).unwrap())
        }),
        ("hand-off (4 workers)", || hand_off(4)),
        ("SO_REUSEPORT (4 sockets)", || reuse_port(4)),
    ];
    println!(
        "{rounds} rounds of {} ms per design, order rotated each round; medians\n",
        duration.as_millis()
    );
    println!("| clients | design | datagrams/s | vs plain loop |");
    println!("|---|---|---|---|");
    for clients in [1, 16] {
        // rates[design][round]
        let mut rates = vec![Vec::new(); designs.len()];
        for round in 0..rounds {
            for offset in 0..designs.len() {
                let index = (round + offset) % designs.len();
                let running = (designs[index].1)();
                rates[index].push(load(running.addr, clients, duration));
                (running.stop)();
            }
        }
        for (index, (name, _)) in designs.iter().enumerate() {
            let mut ratios: Vec<f64> = (0..rounds).map(|r| rates[index][r] / rates[0][r]).collect();
            let rate = median(&mut rates[index].clone());
            println!("| {clients} | {name} | {rate:.0} | {:.2}x |", median(&mut ratios));
        }
    }
}
