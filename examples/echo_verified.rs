//! An echo server for clients that know a shared key: its handler is
//! wrapped in `Authenticated`, so before the handler sees a connection the
//! server sends 32 random bytes and the client answers HMAC-SHA256(key,
//! bytes). The key never crosses the wire; it comes from the environment,
//! where `ps` does not show it.
//!
//! ```text
//! export SHARED_KEY=some-secret
//! cargo run --features auth --example echo_verified -- server [ADDRESS]   # on 127.0.0.1:7004
//! cargo run --features auth --example echo_verified -- client 127.0.0.1:7004 hello
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use signal_hook::{consts::SIGINT, consts::SIGTERM, iterator::Signals};
use socketserver::auth::{self, Authenticated};
use socketserver::{KeepAliveHandler, Next, TcpRequest, ThreadingTcpServer};

/// Sends each line back; it only ever sees clients that passed the check.
struct Echo;

impl KeepAliveHandler<TcpRequest> for Echo {
    type State = ();

    fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
        let mut line = Vec::new();
        if (&mut *request).take(64 * 1024).read_until(b'\n', &mut line)? == 0 {
            return Ok(Next::Close);
        }
        request.write_all(&line)?;
        Ok(Next::KeepOpen)
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.get(1).map_or("127.0.0.1:7004", String::as_str);
    let key = std::env::var("SHARED_KEY").ok().filter(|key| !key.is_empty());
    let result = match (args.first().map(String::as_str), addr.parse(), key) {
        (Some("server"), Ok(addr), Some(key)) if args.len() <= 2 => serve(addr, key),
        (Some("client"), Ok(addr), Some(key)) if args.len() > 2 => {
            talk(addr, &key, &args[2..]).map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))
        }
        _ => {
            eprintln!("usage: SHARED_KEY=KEY echo_verified server [ADDRESS] | client ADDRESS MESSAGE...");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = result {
        eprintln!("echo_verified: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr, key: String) -> io::Result<()> {
    let server = ThreadingTcpServer::bind(addr, Authenticated::new(key, Echo)?)?;
    let addr = server.local_addr();
    println!("listening on {addr}");
    println!("talk to it: cargo run --features auth --example echo_verified -- client {addr} hello");
    let (stop, mut signals) = (server.shutdown_handle(), Signals::new([SIGINT, SIGTERM])?);
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    server.serve_forever()
}

fn talk(addr: SocketAddr, key: &str, messages: &[String]) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    auth::answer_challenge(&mut stream, key.as_bytes())?; // before anything else
    let mut replies = BufReader::new(stream.try_clone()?).lines();
    for message in messages {
        writeln!(stream, "{message}")?;
        println!("{}", replies.next().ok_or(io::ErrorKind::UnexpectedEof)??);
    }
    Ok(())
}
