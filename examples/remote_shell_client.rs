//! The client of `remote_shell_server`: sends command lines, prints what
//! they wrote and how they ended.
//!
//! ```text
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client
//! REMOTE_SHELL_KEY=secret cargo run --release --features message,auth --example remote_shell_client -- \
//!     --command 'uname -a' --command 'ls -l'
//! ```
//!
//! Over TLS, `--tls-ca FILE` trusts the server if that CA issued its
//! certificate, and `--tls-cert FILE --tls-key FILE` present a client
//! certificate to a server that wants one; the key check then runs
//! inside TLS.
//!
//! Interactive, it prompts `》》》:` as the tutorials do; `q` quits. The
//! command's standard output goes to standard output, its standard error
//! to standard error, and a line on standard error reports a non-zero
//! exit, a signal, a time-out or a cut-off output.
//!
//! It exits as `ssh` does, so scripts can rely on it: with the status of
//! the last command run (like `sh -c 'a; b'`), 128 + N for a command
//! killed by signal N, 124 for one killed at the server's time limit (as
//! `timeout(1)` does), 127 for one the server could not start, and 255
//! when it fails itself: no connection, a refused key, a server that went
//! away.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::context;
use common::tls::{ClientStream, ClientTlsArgs, TLS_SERVER_HINT};
use serde_json::{Value, json};
use socketserver::auth::answer_challenge;
use socketserver::framing::BufStream;
use socketserver::message::MessageStream;

/// The exit status for a command killed at the server's time limit.
const TIMED_OUT: u8 = 124;
/// The exit status for a command the server could not start (a shell's
/// "command not found").
const CANNOT_RUN: u8 = 127;
/// The exit status when the client itself fails.
const CLIENT_FAILED: u8 = 255;

/// Client for the remote command runner.
#[derive(Parser, Debug)]
#[command(name = "remote_shell_client", version)]
struct Args {
    /// Server address: an IP address (127.0.0.1, ::1 or [::1]) or a host
    /// name.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long)]
    port: u16,
    /// The shared key.
    #[arg(long, env = "REMOTE_SHELL_KEY", hide_env_values = true)]
    key: String,
    /// Run this command (repeatable) instead of prompting.
    #[arg(long)]
    command: Vec<String>,
    /// How long to wait for the server: to connect, and for each reply
    /// ("30s", "2m"); longer than the server's --time-limit.
    #[arg(long, default_value = "2m", value_parser = common::parse_timeout)]
    timeout: Duration,
    #[command(flatten)]
    tls: ClientTlsArgs,
}

fn main() -> ExitCode {
    common::init_logging("warn");
    let args: Args = common::parse_args(common::REMOTE_SHELL_PORT);
    match run(&args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("remote_shell_client: {e}");
            ExitCode::from(CLIENT_FAILED)
        }
    }
}

/// Connects (over TLS with `--tls-ca`), passes the key check, and runs
/// the commands; returns the last one's exit status.
fn run(args: &Args) -> io::Result<u8> {
    let tls = args.tls.connector(&args.host)?;
    let stream = common::connect(&args.host, args.port, args.timeout)?;
    let server = stream.peer_addr()?;
    stream.set_read_timeout(Some(args.timeout))?;
    stream.set_write_timeout(Some(args.timeout))?;
    let mut stream = ClientStream::start(stream, tls.as_ref(), server)?;
    answer_challenge(&mut stream, args.key.as_bytes()).map_err(|e| match e.kind() {
        // A TLS server waits for a ClientHello: no challenge ever comes,
        // and at its handshake timeout it closes.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if tls.is_none() => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{server}: no challenge came within {}{TLS_SERVER_HINT}",
                common::show_duration(args.timeout)
            ),
        ),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset if tls.is_none() => {
            io::Error::new(e.kind(), format!("{server}: {e}{TLS_SERVER_HINT}"))
        }
        _ => context(server)(e),
    })?;
    let mut messages = MessageStream::buffered(stream);
    let mut status = 0;
    if !args.command.is_empty() {
        for command in &args.command {
            status = execute(&mut messages, command).map_err(context(server))?;
        }
        return Ok(status);
    }
    let mut lines = io::stdin().lock().lines();
    loop {
        print!("》》》: ");
        io::stdout().flush()?;
        let Some(line) = lines.next().transpose()? else {
            return Ok(status);
        };
        match line.trim() {
            "" => continue,
            "q" => return Ok(status),
            command => status = execute(&mut messages, command).map_err(context(server))?,
        }
    }
}

/// Runs one command remotely, prints its outputs and how it ended, and
/// returns its exit status.
fn execute<S: Read + Write>(messages: &mut MessageStream<BufStream<S>>, command: &str) -> io::Result<u8> {
    messages
        .write_message_bytes(&json!({"command": command}), b"")
        .map_err(common::reply_error("the server"))?;
    let header = messages
        .read_header()
        .map_err(common::reply_error("the server"))?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"))?;
    let stdout_len = header.get("stdout").and_then(Value::as_u64).unwrap_or(0);
    let mut body = messages.body();
    io::copy(&mut (&mut body).take(stdout_len), &mut io::stdout().lock())?;
    io::copy(&mut body, &mut io::stderr().lock())?;
    io::stdout().flush()?;
    let flag = |key: &str| header.get(key).and_then(Value::as_bool).unwrap_or(false);
    if flag("truncated") {
        eprintln!("[output cut off at the server's limit]");
    }
    let status = if flag("timed_out") {
        eprintln!("[timed out: the command was killed]");
        TIMED_OUT
    } else if let Some(signal) = header.get("signal").and_then(Value::as_i64) {
        eprintln!("[killed by signal {signal}]");
        u8::try_from(128 + signal).unwrap_or(CLIENT_FAILED)
    } else {
        match header.get("exit_code").and_then(Value::as_i64) {
            Some(0) => 0,
            Some(code) => {
                eprintln!("[exit code {code}]");
                u8::try_from(code).unwrap_or(1)
            }
            None => {
                eprintln!("[the command could not run]");
                CANNOT_RUN
            }
        }
    };
    Ok(status)
}
