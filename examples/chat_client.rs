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

mod common;

use std::io::{self, BufRead};
use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

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
    let socket = common::connected_udp_socket(common::resolve(&args.host, args.port)?)?;
    socket.send(format!("JOIN {}", args.name).as_bytes())?;

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let socket = socket.try_clone()?;
        let done = Arc::clone(&done);
        let keepalive = (!args.keepalive.is_zero()).then_some(args.keepalive);
        thread::spawn(move || print_incoming(&socket, &done, keepalive))
    };

    for line in io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        let datagram = match line {
            "" => continue,
            "/quit" => break,
            "/who" => "WHO".to_owned(),
            text => format!("MSG {text}"),
        };
        socket.send(datagram.as_bytes())?;
    }
    socket.send(b"LEAVE")?;
    done.store(true, Ordering::Release);
    reader
        .join()
        .map_err(|_| io::Error::other("the reader thread panicked"))?
}

/// Prints every line the server sends, and sends the keep-alives, until
/// `done`.
fn print_incoming(socket: &UdpSocket, done: &AtomicBool, keepalive: Option<Duration>) -> io::Result<()> {
    // Wake up often enough to notice `done` and to keep alive on time.
    let tick = keepalive.map_or(Duration::from_millis(100), |k| k.min(Duration::from_millis(100)));
    socket.set_read_timeout(Some(tick))?;
    let mut next_ping = keepalive.map(|k| Instant::now() + k);
    let mut buffer = vec![0u8; 65_536];
    while !done.load(Ordering::Acquire) {
        match socket.recv(&mut buffer) {
            Ok(len) => println!("{}", String::from_utf8_lossy(&buffer[..len])),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                eprintln!("chat_client: the server is not answering");
            }
            Err(e) => return Err(e),
        }
        if let (Some(at), Some(every)) = (next_ping, keepalive)
            && Instant::now() >= at
        {
            socket.send(b"PING")?;
            next_ping = Some(at + every);
        }
    }
    Ok(())
}
