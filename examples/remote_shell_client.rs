//! The client of `remote_shell_server`: sends command lines, prints what
//! they wrote and how they ended.
//!
//! ```text
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client -- \
//!     --command 'uname -a' --command 'ls -l'
//! ```
//!
//! Interactive, it prompts `》》》:` as the tutorials do; `q` quits. The
//! command's standard output goes to standard output, its standard error
//! to standard error, and a line on standard error reports a non-zero
//! exit, a signal, a time-out or a cut-off output.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use socketserver::auth::answer_challenge;
use socketserver::framing::BufStream;
use socketserver::message::MessageStream;

/// Client for the remote command runner.
#[derive(Parser, Debug)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// The shared key.
    #[arg(long, env = "REMOTE_SHELL_KEY", hide_env_values = true)]
    key: String,
    /// Run this command (repeatable) instead of prompting.
    #[arg(long)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args = Args::parse();
    common::exit("remote_shell_client", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    let mut stream = TcpStream::connect((args.host.as_str(), args.port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    answer_challenge(&mut stream, args.key.as_bytes())?;
    let mut messages = MessageStream::buffered(stream);
    if !args.command.is_empty() {
        for command in &args.command {
            execute(&mut messages, command)?;
        }
        return Ok(());
    }
    let mut lines = io::stdin().lock().lines();
    loop {
        print!("》》》: ");
        io::stdout().flush()?;
        let Some(line) = lines.next().transpose()? else {
            return Ok(());
        };
        match line.trim() {
            "" => continue,
            "q" => return Ok(()),
            command => execute(&mut messages, command)?,
        }
    }
}

/// Runs one command remotely and prints its outputs and how it ended.
fn execute(messages: &mut MessageStream<BufStream<TcpStream>>, command: &str) -> io::Result<()> {
    messages.write_message_bytes(&json!({"command": command}), b"")?;
    let header = messages.read_header().map_err(refused)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the server closed the connection (was the key wrong?)",
        )
    })?;
    let stdout_len = header.get("stdout").and_then(Value::as_u64).unwrap_or(0);
    let mut body = messages.body();
    io::copy(&mut (&mut body).take(stdout_len), &mut io::stdout().lock())?;
    io::copy(&mut body, &mut io::stderr().lock())?;
    io::stdout().flush()?;
    let flag = |key: &str| header.get(key).and_then(Value::as_bool).unwrap_or(false);
    if flag("timed_out") {
        eprintln!("[timed out: the command was killed]");
    } else if let Some(signal) = header.get("signal").and_then(Value::as_i64) {
        eprintln!("[killed by signal {signal}]");
    } else if let Some(code) = header.get("exit_code").and_then(Value::as_i64)
        && code != 0
    {
        eprintln!("[exit code {code}]");
    }
    if flag("truncated") {
        eprintln!("[output cut off at the server's limit]");
    }
    Ok(())
}

/// A connection cut right after the challenge means the key was refused.
fn refused(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the server closed the connection (was the key wrong?)",
        ),
        _ => error,
    }
}
