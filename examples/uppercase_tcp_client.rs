//! The tutorials' uppercase echo client.
//!
//! ```text
//! cargo run --example uppercase_tcp_client                        # interactive: type, see it uppercased; q quits
//! cargo run --example uppercase_tcp_client -- --message hi --count 3
//! ```

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Client for the uppercase echo server over TCP")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// Send this message instead of reading from the keyboard.
    #[arg(long)]
    message: Option<String>,
    /// How many times to send --message.
    #[arg(long, default_value_t = 1, requires = "message")]
    count: usize,
    /// Seconds to wait for a reply.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uppercase_tcp_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let mut stream = TcpStream::connect((args.host.as_str(), args.port))?;
    stream.set_read_timeout(Some(Duration::from_secs(args.timeout)))?;
    stream.set_nodelay(true)?;
    log::info!("connected to {}", stream.peer_addr()?);
    if let Some(message) = &args.message {
        for _ in 0..args.count {
            println!("{}", exchange(&mut stream, message)?);
        }
        return Ok(());
    }
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!(">>>: ");
        io::stdout().flush()?;
        let Some(line) = lines.next().transpose()? else {
            return Ok(());
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            continue;
        }
        if line == "q" {
            return Ok(());
        }
        println!("{}", exchange(&mut stream, line)?);
    }
}

/// Sends `message` and reads the reply, which is exactly as long.
fn exchange(stream: &mut TcpStream, message: &str) -> io::Result<String> {
    stream.write_all(message.as_bytes())?;
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "no reply from the server in time")
        }
        io::ErrorKind::UnexpectedEof => io::Error::new(e.kind(), "the server closed the connection"),
        _ => e,
    })?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}
