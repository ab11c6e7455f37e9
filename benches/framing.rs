//! What framing costs.
//!
//! - `encode` / `decode`: frames per second into and out of memory, at
//!   64 B, 4 KiB and 64 KiB.
//! - `ping-pong`: one 64-byte round trip over loopback to an uppercase
//!   echo server, raw (the client writes the bytes and reads as many back)
//!   and framed (the same bytes as one frame each way, through
//!   `Framed` on both sides), in the same run. The target: framing costs
//!   under 5% of a round trip.
//! - then, outside criterion, the same two round trips interleaved: 15
//!   rounds of 5,000 raw then 5,000 framed (order swapped every other
//!   round), and the median of the per-round ratios. Criterion measures
//!   one function after the other, and on a small machine that order alone
//!   moves a round trip by several percent.
//!
//! ```text
//! cargo bench --bench framing
//! ```

use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use socketserver::echo::{FramedUppercase, Uppercase};
use socketserver::framing::{FrameConfig, Framed, write_frame};
use socketserver::{Server, ShutdownHandle, ThreadingTcpServer};

const SIZES: [usize; 3] = [64, 4 * 1024, 64 * 1024];

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let config = FrameConfig::default();
    for size in SIZES {
        let payload = vec![7u8; size];
        let mut wire = Vec::with_capacity(size + 8);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                wire.clear();
                write_frame(&mut wire, black_box(payload), &config).unwrap();
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let config = FrameConfig::default();
    const FRAMES: usize = 64;
    for size in SIZES {
        let mut wire = Vec::new();
        for _ in 0..FRAMES {
            write_frame(&mut wire, &vec![7u8; size], &config).unwrap();
        }
        group.throughput(Throughput::Bytes((size * FRAMES) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            let mut frame = Vec::new();
            b.iter(|| {
                let mut framed = Framed::new(Cursor::new(black_box(&wire[..])));
                while framed.read_frame_into(&mut frame).unwrap() {}
            })
        });
    }
    group.finish();
}

/// Serves `server` on a thread until the handle is dropped.
fn start<S: Server<Addr = std::net::SocketAddr>>(server: S) -> (TcpStream, ShutdownHandle) {
    let client = TcpStream::connect(server.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let stop = server.shutdown_handle();
    thread::spawn(move || server.serve_forever().unwrap());
    (client, stop)
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping-pong 64 B");
    let message = [b'a'; 64];

    let (mut raw, raw_stop) = start(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase).unwrap());
    let mut reply = [0u8; 64];
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw.write_all(&message).unwrap();
            raw.read_exact(&mut reply).unwrap();
        })
    });

    let (stream, framed_stop) = start(ThreadingTcpServer::bind("127.0.0.1:0", FramedUppercase).unwrap());
    let mut framed = Framed::buffered(stream);
    let mut frame = Vec::new();
    group.bench_function("framed", |b| {
        b.iter(|| {
            framed.write_frame(&message).unwrap();
            framed.read_frame_into(&mut frame).unwrap();
        })
    });
    group.finish();
    drop((raw, framed));
    raw_stop.shutdown();
    framed_stop.shutdown();
}

/// Raw and framed round trips, interleaved; prints the median ratio.
fn interleaved_ratio() {
    const ROUNDS: usize = 15;
    const TRIPS: u32 = 5_000;
    let message = [b'a'; 64];
    let (mut raw, raw_stop) = start(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase).unwrap());
    let (stream, framed_stop) = start(ThreadingTcpServer::bind("127.0.0.1:0", FramedUppercase).unwrap());
    let mut framed = Framed::buffered(stream);
    let mut reply = [0u8; 64];
    let mut frame = Vec::new();
    let mut raw_round = || {
        let started = std::time::Instant::now();
        for _ in 0..TRIPS {
            raw.write_all(&message).unwrap();
            raw.read_exact(&mut reply).unwrap();
        }
        started.elapsed() / TRIPS
    };
    let mut framed_round = || {
        let started = std::time::Instant::now();
        for _ in 0..TRIPS {
            framed.write_frame(&message).unwrap();
            framed.read_frame_into(&mut frame).unwrap();
        }
        started.elapsed() / TRIPS
    };
    let mut ratios = Vec::new();
    let (mut raw_times, mut framed_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (r, f) = if round % 2 == 0 {
            let r = raw_round();
            (r, framed_round())
        } else {
            let f = framed_round();
            (raw_round(), f)
        };
        raw_times.push(r);
        framed_times.push(f);
        ratios.push(f.as_secs_f64() / r.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    raw_times.sort();
    framed_times.sort();
    println!(
        "\ninterleaved 64 B ping-pong ({ROUNDS} rounds x {TRIPS}): raw median {:?}, framed median {:?}, \
         framed/raw median ratio {:.3} (min {:.3}, max {:.3})",
        raw_times[ROUNDS / 2],
        framed_times[ROUNDS / 2],
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1]
    );
    drop((raw, framed));
    raw_stop.shutdown();
    framed_stop.shutdown();
}

criterion_group!(benches, encode, decode, ping_pong);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    interleaved_ratio();
}
