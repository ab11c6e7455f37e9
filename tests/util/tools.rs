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
    status_kib(pid, "VmRSS")
}

/// The private memory a process has mapped (`VmData`), in KiB: it grows
/// with an allocation the process never touches, which RSS does not show.
pub fn data_kib(pid: u32) -> u64 {
    status_kib(pid, "VmData")
}

/// A size in KiB from /proc/PID/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
}

/// Bytes `clients` have sent to `server` that the server has not read
/// yet: what waits in the clients' send queues and in the server's
/// receive queues (from /proc/net/tcp). `None` until every client's
/// connection shows on the server's side. IPv4 only.
pub fn unread_by_server(server: SocketAddr, clients: &[SocketAddr]) -> Option<u64> {
    let hex = |addr: SocketAddr| match addr {
        // The kernel prints the address as the number its network-order
        // bytes make in this machine's order, and the port as a number.
        SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_ne_bytes(v4.ip().octets()), v4.port()),
        SocketAddr::V6(_) => panic!("unread_by_server reads IPv4 sockets only, not {addr}"),
    };
    let (server, clients) = (hex(server), clients.iter().map(|&c| hex(c)).collect::<Vec<_>>());
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let (mut found, mut unread) = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<_> = line.split_whitespace().collect();
        let [_, local, remote, _, queues, ..] = fields[..] else {
            continue;
        };
        let queue = |i: usize| {
            let hex = queues
                .split(':')
                .nth(i)
                .expect("tx_queue:rx_queue in /proc/net/tcp");
            u64::from_str_radix(hex, 16).expect("a hex queue length in /proc/net/tcp")
        };
        if local == server && clients.iter().any(|c| c == remote) {
            found += 1;
            unread += queue(1);
        } else if remote == server && clients.iter().any(|c| c == local) {
            unread += queue(0);
        }
    }
    (found == clients.len()).then_some(unread)
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
