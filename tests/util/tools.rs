//! The outside programs some tests run (redis-server, redis-cli, curl,
//! wrk), and what tests read of a server process from /proc.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::Process;

/// The executable `name` in `path`'s directories (a PATH value) or in
/// /usr/sbin and /usr/bin; the error names the Debian `package` to
/// install.
pub fn find_tool(name: &str, package: &str, path: &str) -> Result<PathBuf, String> {
    std::env::split_paths(path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is not installed: this test runs the real one. Install the Debian package \
                 `{package}` (apt-get install {package}), or run .ci/run, which installs it"
            )
        })
}

/// The executable `name` from the Debian `package`; a missing one fails
/// the test, saying what to install.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    find_tool(name, package, &path).unwrap_or_else(|message| panic!("{message}"))
}

/// A loopback port nobody listens on now, for a program that cannot be
/// given port 0 (redis-server takes 0 to mean "no TCP").
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A process's resident memory, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The bytes a server has not yet read from its connections to
/// `clients` (the receive queues of the server's ends, from
/// /proc/net/tcp): 0 once it has read all they sent. IPv4 only; a client
/// whose connection the server has closed counts nothing.
pub fn unread_by_server(server: SocketAddr, clients: &[SocketAddr]) -> u64 {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        SocketAddr::V6(_) => panic!("unread_by_server reads IPv4 sockets only, not {addr}"),
    };
    let (local, remotes) = (hex(server), clients.iter().map(|&c| hex(c)).collect::<Vec<_>>());
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() > 4 && fields[1] == local && remotes.iter().any(|r| r == fields[2]))
        .map(|fields| {
            let rx = fields[4]
                .split(':')
                .nth(1)
                .expect("tx_queue:rx_queue in /proc/net/tcp");
            u64::from_str_radix(rx, 16).expect("a hex receive queue in /proc/net/tcp")
        })
        .sum()
}

/// Runs `program` with `args` and `stdin` as its input, bounded in time,
/// and collects its output.
pub fn run_tool(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut process = Process::spawn(
        Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut input = process.child().stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written on a thread: a large input must not block on a full pipe
    // while the program's output fills the other.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&stdin);
    });
    let output = process.finish();
    let _ = writer.join();
    output
}

/// A tool's output, checked to have succeeded.
pub fn succeeded(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
