//! Restarting without dropping a connection (feature `restart`), end to
//! end: examples/uppercase_tcp_server.rs serves uppercase echo on a
//! ThreadingTcpServer and hands its listener to a new process of itself
//! on SIGHUP, while clients connect, send one request and close, without
//! pause, from several threads.
#![cfg(all(feature = "restart", target_os = "linux"))]

#[cfg(feature = "tls")]
#[path = "util/tls.rs"]
mod pki;
mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use util::generations::Generations;
use util::{TIMEOUT, example_binary, round_trip};

/// Client threads driving churn.
const CLIENTS: usize = 4;
/// Requests served between two restarts, at least: each generation serves.
const REQUESTS_PER_GENERATION: u64 = 300;

/// Starts the echo server; a new process gets `ready_timeout` ("10s") to
/// be ready.
fn start_echo(ready_timeout: &str, extra: &[&str]) -> (Generations, SocketAddr) {
    let mut server = Generations::start(
        Command::new(example_binary("uppercase_tcp_server"))
            .args(["--port", "0", "--grace", "2s"])
            .args(["--ready-timeout", ready_timeout])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC"),
    );
    let addr = server.wait_for_line("listening on ")["listening on ".len()..]
        .parse()
        .unwrap();
    server.wait_ready();
    (server, addr)
}

/// What the churn clients saw.
#[derive(Default, Debug)]
struct Tally {
    served: u64,
    refused: u64,
    failures: Vec<String>,
}

/// Clients that connect, send one request, check the reply and close,
/// again and again, until stopped.
struct Churn {
    tally: Arc<(Mutex<Tally>, Condvar)>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Churn {
    fn start(addr: SocketAddr) -> Churn {
        let tally = Arc::new((Mutex::new(Tally::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..CLIENTS)
            .map(|client| {
                let tally = Arc::clone(&tally);
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let outcome = one_request(addr, &format!("client {client} request {n}"));
                        let (tally, changed) = &*tally;
                        let mut tally = tally.lock();
                        match outcome {
                            Ok(()) => tally.served += 1,
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => tally.refused += 1,
                            Err(e) => tally.failures.push(format!("client {client} request {n}: {e}")),
                        }
                        changed.notify_all();
                    }
                })
            })
            .collect();
        Churn { tally, stop, clients }
    }

    /// Waits (bounded) until `more` requests beyond those served so far
    /// have been served.
    fn wait_for_more(&self, more: u64) {
        let (tally, changed) = &*self.tally;
        let mut tally = tally.lock();
        let target = tally.served + more;
        let deadline = Instant::now() + TIMEOUT;
        while tally.served < target {
            assert!(
                !changed.wait_until(&mut tally, deadline).timed_out(),
                "only {} of {target} requests served within {TIMEOUT:?}: {tally:?}",
                tally.served
            );
        }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().expect("a client thread panicked");
        }
        std::mem::take(&mut *self.tally.0.lock())
    }
}

/// Connect, one request, check the reply, close.
fn one_request(addr: SocketAddr, message: &str) -> std::io::Result<()> {
    util::one_uppercase_request(TcpStream::connect_timeout(&addr, TIMEOUT)?, message)
}

/// The socket inodes a process holds (from /proc/PID/fd).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        // Descriptors come and go while connections do: skip vanished ones.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            inodes.insert(inode.parse().unwrap());
        }
    }
    inodes
}

/// Descriptors above standard error that a process would pass to a
/// program it starts (not close-on-exec), with what they are.
fn inheritable_fds(pid: u32) -> Vec<String> {
    let mut open = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .and_then(|octal| u32::from_str_radix(octal.trim(), 8).ok())
            .unwrap_or(0);
        // O_CLOEXEC as /proc reports it.
        if fd > 2 && flags & 0o2000000 == 0 {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
            open.push(format!("fd {fd} -> {}", target.display()));
        }
    }
    open
}

/// This test process's own inheritable descriptors: a server started from
/// it inherits them (they are not the server's to close), so they are
/// not counted against it.
fn inherited_from_the_test() -> Vec<String> {
    inheritable_fds(std::process::id())
}

#[test]
fn three_restarts_under_churn_refuse_nothing_and_fail_nothing() {
    let (mut server, addr) = start_echo("10s", &[]);
    let outside = inherited_from_the_test();
    let churn = Churn::start(addr);
    churn.wait_for_more(REQUESTS_PER_GENERATION);

    for restart in 1..=3 {
        let old = server.current();
        let old_sockets = socket_inodes(old);
        server.signal(libc::SIGHUP);
        let new = server.wait_ready();
        assert_ne!(new, old, "restart {restart}: the same process said ready again");
        // While both run they share the listening socket, and only it.
        let shared: Vec<_> = socket_inodes(new).intersection(&old_sockets).copied().collect();
        assert_eq!(
            shared.len(),
            1,
            "restart {restart}: sockets shared by old and new: {shared:?}"
        );
        // Nothing of the server's would leak into a program it starts.
        let leaks: Vec<_> = inheritable_fds(new)
            .into_iter()
            .filter(|fd| {
                !outside
                    .iter()
                    .any(|o| o.split(" -> ").next() == fd.split(" -> ").next())
            })
            .collect();
        assert!(
            leaks.is_empty(),
            "restart {restart}: inheritable descriptors {leaks:?}"
        );
        assert_eq!(
            server.wait_exit(old),
            Some(0),
            "restart {restart}: the old process's exit code"
        );
        churn.wait_for_more(REQUESTS_PER_GENERATION);
    }

    let tally = churn.stop();
    assert_eq!(tally.refused, 0, "refused connections: {tally:?}");
    assert!(
        tally.failures.is_empty(),
        "failed requests: {:#?}",
        tally.failures
    );
    let pids: HashSet<u32> = server.pids().iter().copied().collect();
    assert_eq!(pids.len(), 4, "four generations: {:?}", server.pids());
    eprintln!("{} requests served across 3 restarts", tally.served);

    let last = server.current();
    server.signal(libc::SIGTERM);
    server.wait_for_line(&format!("exited pid {last}"));
    assert_eq!(server.wait_exit(last), Some(0));
}

/// A script that stands in for a broken new version.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_new_process_that_fails_or_never_gets_ready_is_stopped_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Each generation would start the same program: the first one's
    // successor is a script that exits at once; see below for the other.
    let exits = script(dir.path(), "exits", "echo 'broken version' >&2; exit 3");
    let (mut server, addr) = start_echo("500ms", &["--program", &exits]);
    let old = server.current();

    server.signal(libc::SIGHUP);
    let failed = server.wait_for_line("*restart failed, still serving");
    assert!(
        failed.contains("closed the handover before it was ready; it exited (exit status: 3)"),
        "{failed}"
    );
    let mut client = util::connect(addr);
    assert_eq!(round_trip(&mut client, b"still here").unwrap(), b"STILL HERE");

    // A successor that hangs: killed after the ready timeout, and reaped.
    std::fs::write(&exits, "#!/bin/sh\nexec sleep 30\n").unwrap();
    let started = Instant::now();
    server.signal(libc::SIGHUP);
    let failed = server.wait_for_line("*restart failed, still serving");
    assert!(
        failed.contains("was not ready within 500ms; it has been stopped (signal: 9 (SIGKILL))"),
        "{failed}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let hung: u32 = failed
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {failed}"));
    assert!(
        !Path::new(&format!("/proc/{hung}")).exists(),
        "process {hung} is left (or a zombie)"
    );
    assert_eq!(round_trip(&mut client, b"and here").unwrap(), b"AND HERE");
    drop(client);

    assert_eq!(server.current(), old);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(old), Some(0));
}

/// Renewing the certificate the manual's way (its production chapter) goes wrong: the key copied
/// over does not match, or is missing. The restart fails, the old
/// process's line gives the new process's own reason and exit status, and
/// the old one goes on. Each case several times: the reason must come
/// every time, not only when the new process happens to print before it
/// is stopped.
#[cfg(feature = "tls")]
#[test]
fn a_restart_that_fails_on_its_certificate_says_why_in_the_old_process_log() {
    let pki = pki::TestPki::generate();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::copy(pki.path("server.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server.key"), &key).unwrap();
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (mut server, _addr) = start_echo("10s", &["--tls-cert", cert_arg, "--tls-key", key_arg]);
    let old = server.current();

    let mismatch = format!("the private key in {key_arg} does not match the certificate in {cert_arg}");
    std::fs::copy(pki.path("client.key"), &key).unwrap();
    for attempt in 1..=3 {
        server.signal(libc::SIGHUP);
        let failed = server.wait_for_line("*restart failed, still serving");
        assert!(
            failed.contains(&format!("failed before it was ready: {mismatch}")),
            "attempt {attempt}: {failed}"
        );
        assert!(
            failed.contains("it exited (exit status: 1)"),
            "attempt {attempt}: {failed}"
        );
    }
    std::fs::remove_file(&key).unwrap();
    for attempt in 1..=3 {
        server.signal(libc::SIGHUP);
        let failed = server.wait_for_line("*restart failed, still serving");
        let reason = failed
            .split("failed before it was ready: ")
            .nth(1)
            .unwrap_or_else(|| panic!("attempt {attempt}: no reason in {failed}"));
        assert!(reason.contains(key_arg), "attempt {attempt}: {failed}");
    }

    assert_eq!(server.current(), old);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(old), Some(0));
}

#[test]
fn the_parked_and_serial_servers_restart_under_churn_too() {
    for mode in ["--parked", "--serial"] {
        let (mut server, addr) = start_echo("10s", &[mode]);
        let churn = Churn::start(addr);
        churn.wait_for_more(100);
        let old = server.current();
        server.signal(libc::SIGHUP);
        let new = server.wait_ready();
        assert_ne!(new, old, "{mode}");
        assert_eq!(
            server.wait_exit(old),
            Some(0),
            "{mode}: the old process's exit code"
        );
        churn.wait_for_more(100);
        let tally = churn.stop();
        assert_eq!(tally.refused, 0, "{mode}: refused connections: {tally:?}");
        assert!(
            tally.failures.is_empty(),
            "{mode}: failed requests: {:#?}",
            tally.failures
        );
        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit(new), Some(0), "{mode}");
    }
}

/// One round trip on a new connection to the Unix socket at `path`.
fn unix_round_trip(path: &Path, message: &[u8]) -> Vec<u8> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

#[test]
fn a_unix_socket_server_restarts_and_its_file_goes_with_the_last_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upper.sock");
    let mut server = Generations::start(
        Command::new(example_binary("uppercase_tcp_server"))
            .arg("--unix")
            .arg(&path)
            .args(["--grace", "2s", "--ready-timeout", "10s"])
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC"),
    );
    let old = server.wait_ready();
    assert_eq!(unix_round_trip(&path, b"before"), b"BEFORE");

    server.signal(libc::SIGHUP);
    let new = server.wait_ready();
    assert_ne!(new, old);
    assert_eq!(server.wait_exit(old), Some(0));
    // The old process handed the socket on: its file stays.
    assert!(path.exists());
    assert_eq!(unix_round_trip(&path, b"after"), b"AFTER");

    server.signal(libc::SIGTERM);
    server.wait_for_line(&format!("exited pid {new}"));
    assert_eq!(server.wait_exit(new), Some(0));
    assert!(!path.exists(), "the last process leaves its socket file");
}
