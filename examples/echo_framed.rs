//! Framed messages, the cure for "sticky packets": TCP carries bytes, not
//! messages, and two sends can arrive as one read. A frame puts a message's
//! length in front of it (Python: `struct.pack('!I', len(m)) + m`). This
//! client sends its messages in one write, stuck together: one answer each.
//!
//! ```text
//! cargo run --example echo_framed -- server [ADDRESS]     # on 127.0.0.1:7002
//! cargo run --example echo_framed -- client 127.0.0.1:7002 hello world
//! ```

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use signal_hook::{consts::SIGINT, consts::SIGTERM, iterator::Signals};
use socketserver::framing::Framed;
use socketserver::{KeepAliveHandler, Next, ParkedTcpServer, TcpRequest};

/// Answers each message with its uppercase. One request is one frame.
struct Shout;

impl KeepAliveHandler<TcpRequest> for Shout {
    type State = ();

    fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
        let mut framed = Framed::new(request); // refuses frames over 16 MiB
        let Some(message) = framed.read_frame()? else {
            return Ok(Next::Close); // the client closed between two messages
        };
        framed.write_frame(&message.to_ascii_uppercase())?;
        Ok(Next::KeepOpen)
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.get(1).map_or("127.0.0.1:7002", String::as_str);
    let result = match (args.first().map(String::as_str), addr.parse()) {
        (Some("server"), Ok(addr)) if args.len() <= 2 => serve(addr),
        (Some("client"), Ok(addr)) if args.len() > 2 => {
            talk(addr, &args[2..]).map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))
        }
        _ => {
            eprintln!("usage: echo_framed server [ADDRESS] | echo_framed client ADDRESS MESSAGE...");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = result {
        eprintln!("echo_framed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr) -> io::Result<()> {
    let server = ParkedTcpServer::bind(addr, Shout)?; // a bind error names the address
    let addr = server.local_addr();
    println!("listening on {addr}");
    println!("talk to it: cargo run --example echo_framed -- client {addr} hello world");
    let (stop, mut signals) = (server.shutdown_handle(), Signals::new([SIGINT, SIGTERM])?);
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    server.serve_forever()
}

fn talk(addr: SocketAddr, messages: &[String]) -> io::Result<()> {
    let mut wire = Framed::new(Vec::new()); // the frames, back to back
    messages.iter().try_for_each(|m| wire.write_frame(m.as_bytes()))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut framed = Framed::buffered(stream);
    framed.get_mut().write_all(wire.get_ref())?; // one write: stuck together
    for _ in messages {
        let answer = framed.read_frame()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        println!("{}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}
