//! A test fixture for tests/systemd.rs, built as an example: takes the
//! sockets passed by socket activation, claims them as its arguments say,
//! and prints what happened, one line per step.
//!
//! ```text
//! activation_probe --fds 2 tcp:web udp:1 kind:0
//! ```
//!
//! A claim is `KIND:WHICH`: KIND is `tcp`, `udp`, `unix`, `unix-dgram`
//! (claim as that) or `kind` (only say what it is); WHICH is an index or a
//! name. Output:
//!
//! ```text
//! take: ok [fd 3 (name 'web'): a TCP listener, ...]   or   take: error: MESSAGE
//! env LISTEN_PID=unset LISTEN_FDS=unset LISTEN_FDNAMES=unset
//! cloexec 3: yes                                      (for each of --fds)
//! tcp:web: ok 127.0.0.1:4321                          or   tcp:web: error: MESSAGE
//! ```

use std::io;
use std::process::ExitCode;

use clap::Parser;
use socketserver::systemd::{ListenFds, Which};

/// Claims passed sockets and reports.
#[derive(Parser, Debug)]
struct Args {
    /// How many descriptors from 3 up to report close-on-exec for.
    #[arg(long, default_value_t = 0)]
    fds: i32,
    /// Claims, `KIND:WHICH`.
    claims: Vec<String>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let mut fds = match ListenFds::take() {
        Ok(fds) => {
            println!("take: ok {fds:?}");
            Some(fds)
        }
        Err(e) => {
            println!("take: error: {e}");
            None
        }
    };
    let var = |name| std::env::var(name).unwrap_or_else(|_| "unset".into());
    println!(
        "env LISTEN_PID={} LISTEN_FDS={} LISTEN_FDNAMES={}",
        var("LISTEN_PID"),
        var("LISTEN_FDS"),
        var("LISTEN_FDNAMES")
    );
    for fd in 3..3 + args.fds {
        println!("cloexec {fd}: {}", cloexec(fd));
    }
    for claim in &args.claims {
        let Some(fds) = &mut fds else { break };
        match run_claim(fds, claim) {
            Ok(what) => println!("{claim}: ok {what}"),
            Err(e) => println!("{claim}: error: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn run_claim(fds: &mut ListenFds, claim: &str) -> io::Result<String> {
    let (kind, which) = claim
        .split_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a claim is KIND:WHICH"))?;
    let which = match which.parse::<usize>() {
        Ok(index) => Which::Index(index),
        Err(_) => Which::Name(which),
    };
    match kind {
        "tcp" => Ok(fds.tcp_listener(which)?.local_addr()?.to_string()),
        "udp" => Ok(fds.udp_socket(which)?.local_addr()?.to_string()),
        "unix" => Ok(format!("{:?}", fds.unix_listener(which)?.local_addr()?)),
        "unix-dgram" => Ok(format!("{:?}", fds.unix_datagram(which)?.local_addr()?)),
        "kind" => Ok(fds.kind(which)?.to_string()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown kind {other:?}"),
        )),
    }
}

/// Whether `fd` is close-on-exec, from /proc/self/fdinfo: "yes", "no", or
/// "closed".
fn cloexec(fd: i32) -> &'static str {
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return "closed";
    };
    let flags = info
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|octal| u32::from_str_radix(octal.trim(), 8).ok())
        .unwrap_or(0);
    // O_CLOEXEC as /proc reports it (02000000).
    if flags & 0o2000000 != 0 { "yes" } else { "no" }
}
