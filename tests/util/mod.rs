//! Helpers shared by the integration tests: clients with timeouts, servers
//! on background threads, and bounds on everything that could hang.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use socketserver::{Mode, RequestHandler, ServerHandle, ShutdownHandle, StreamServer, TcpRequest};

/// The bound on every blocking step of a test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Runs `f` on its own thread and returns its result, failing the test if
/// it takes longer than `limit`.
pub fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = bounded(1);
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// A TCP client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Sends `message` and reads back exactly as many bytes.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(message)?;
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// Reads until end-of-file; fails on timeout.
pub fn read_to_end(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// A server's `serve_forever` running on a background thread.
pub struct Running {
    pub stop: ShutdownHandle,
    done: Receiver<io::Result<()>>,
}

impl Running {
    pub fn start(stop: ShutdownHandle, serve: impl FnOnce() -> io::Result<()> + Send + 'static) -> Self {
        let (tx, done) = bounded(1);
        thread::spawn(move || {
            let _ = tx.send(serve());
        });
        Running { stop, done }
    }

    /// Shuts the server down and waits for `serve_forever` to return; both
    /// bounded. Returns how long `shutdown()` took.
    pub fn shutdown(self) -> Duration {
        let stop = self.stop.clone();
        let took = within(TIMEOUT, "shutdown()", move || {
            let start = Instant::now();
            stop.shutdown();
            start.elapsed()
        });
        self.join();
        took
    }

    /// Waits for `serve_forever` to return on its own and checks it
    /// succeeded.
    pub fn join(self) {
        match self.done.recv_timeout(TIMEOUT) {
            Ok(result) => result.expect("serve_forever failed"),
            Err(_) => panic!("serve_forever did not return within {TIMEOUT:?}"),
        }
    }
}

/// Starts `server` (from `bind(...)`, unwrapped here) on a background
/// thread; returns the handle to its address and stats, and the runner
/// that shuts it down.
pub fn serve<M: Mode, H: RequestHandler<TcpRequest>>(
    server: io::Result<StreamServer<std::net::TcpListener, M, H>>,
) -> (ServerHandle<SocketAddr>, Running) {
    let server = server.expect("bind");
    let handle = server.server_handle().clone();
    let running = Running::start(server.shutdown_handle(), move || server.serve_forever());
    (handle, running)
}

/// Names of this process's threads that start with `prefix` (Linux shows
/// the first 15 bytes of a thread's name).
#[cfg(target_os = "linux")]
pub fn threads_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(name) = std::fs::read_to_string(task.path().join("comm")) {
            let name = name.trim_end().to_owned();
            if name.starts_with(prefix) {
                names.push(name);
            }
        }
    }
    names
}

/// Waits, bounded, until `condition` holds: for state that background
/// threads change and nothing signals (such as thread exits seen in /proc).
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Path of an example's binary, building it if `cargo test` did not (as
/// with `cargo test --test NAME`).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "--all-features", "--example", name]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
    }
    path
}
