//! The read-ahead buffer follows the traffic: it grows while reads fill
//! it, up to `max_read_buffer_size`, never past it; `fill_buf_mut` and
//! `write_buffered` echo bulk data with nothing lost or reordered, in
//! both serving modes.

mod util;

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use socketserver::echo::Uppercase;
use socketserver::{ParkedTcpServer, TcpRequest, ThreadingTcpServer};
use util::{connect, init_logging, serve};

/// Reads everything the client sends through `fill_buf`, recording the
/// largest read-ahead seen, and answers with the byte count.
fn largest_fill(largest: Arc<AtomicUsize>) -> impl Fn(&mut TcpRequest) -> io::Result<()> + Send + Sync {
    move |request: &mut TcpRequest| {
        let mut total = 0usize;
        loop {
            let n = request.fill_buf()?.len();
            if n == 0 {
                break;
            }
            largest.fetch_max(n, Ordering::SeqCst);
            request.consume(n);
            total += n;
        }
        writeln!(request, "{total}")
    }
}

/// Sends `bytes` and closes the sending side; returns the server's answer.
fn send_all(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_read_ahead_grows_with_bulk_data_up_to_its_limit() {
    init_logging();
    let bulk = vec![b'x'; 4 * 1024 * 1024];
    for (max, grows) in [(64 * 1024, true), (1024, false)] {
        let largest = Arc::new(AtomicUsize::new(0));
        let (server, running) = serve(
            ThreadingTcpServer::builder()
                .read_buffer_size(1024)
                .max_read_buffer_size(max)
                .bind("127.0.0.1:0", largest_fill(Arc::clone(&largest))),
        );
        assert_eq!(send_all(*server.local_addr(), &bulk), format!("{}\n", bulk.len()));
        let seen = largest.load(Ordering::SeqCst);
        assert!(seen <= max, "a fill of {seen} bytes, over the limit of {max}");
        if grows {
            assert!(
                seen > 1024,
                "never grew past its starting 1024 bytes (largest fill {seen})"
            );
        } else {
            assert_eq!(seen, 1024, "a buffer whose limit is its start never grows");
        }
        running.shutdown();
    }
}

/// Sends `messages` of `size` bytes each from one thread while another
/// reads the echo, and checks every byte.
fn echo_bulk(addr: std::net::SocketAddr, size: usize, messages: usize) {
    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sent: Vec<u8> = (0..size * messages)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect();
    let expected = sent.to_ascii_uppercase();
    let sender = thread::spawn(move || writer.write_all(&sent));
    let mut reader = io::BufReader::new(stream);
    let mut got = vec![0u8; expected.len()];
    reader.read_exact(&mut got).unwrap();
    sender.join().unwrap().unwrap();
    assert!(got == expected, "the echo of {messages} x {size} bytes differs");
    // Nothing more than the echo: the server answers only what it got.
    reader.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.fill_buf().unwrap(), b"");
}

#[test]
fn bulk_echo_through_the_read_ahead_loses_nothing_in_both_modes() {
    init_logging();
    let (threading, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase));
    let (parked, parked_running) = serve(
        ParkedTcpServer::builder()
            .workers(2)
            .bind("127.0.0.1:0", Uppercase),
    );
    for addr in [*threading.local_addr(), *parked.local_addr()] {
        echo_bulk(addr, 1024 * 1024, 4);
        echo_bulk(addr, 64 * 1024, 32);
        // Small messages after bulk ones, on fresh connections.
        echo_bulk(addr, 10, 1000);
    }
    running.shutdown();
    parked_running.shutdown();
}
