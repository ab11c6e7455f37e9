//! Helpers shared by the integration tests: clients with timeouts, servers
//! on background threads, and bounds on everything that could hang.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use socketserver::{Server, ServerHandle, ShutdownHandle};

#[cfg(target_os = "linux")]
pub mod faulty;
pub mod generations;
pub mod greeter;
pub mod http;
pub mod loadgen;
pub mod resp;
pub mod tools;

/// The README's "Examples to copy" (tests/examples_to_copy.rs): one idea
/// each, at most 80 lines, and a command line of one optional address or
/// path (a role first, for those with a client), so no `--version`.
pub const EXAMPLES_TO_COPY: [&str; 7] = [
    "echo_threading",
    "echo_parked",
    "echo_udp",
    "echo_unix",
    "echo_framed",
    "echo_tls",
    "echo_verified",
];

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

/// What the peer sent before it closed the connection: an orderly end, a
/// reset, or (over TLS) an end without close_notify all count as closed;
/// a time-out fails, for the peer did not close.
pub fn read_until_closed(stream: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    match stream.read_to_end(&mut all) {
        Ok(_) => {}
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            "the connection was not closed: {e}"
        ),
    }
    all
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

/// The uppercase echo as a looping handler: the whole conversation in
/// one `handle`, as Python writes it, where `echo::Uppercase` serves one
/// request at a time. A connection it serves is never idle between
/// requests, so shutdown waits for it within the grace period.
pub fn looping_uppercase(request: &mut socketserver::TcpRequest) -> io::Result<()> {
    loop {
        let bytes = request.fill_buf_mut()?;
        if bytes.is_empty() {
            return Ok(());
        }
        bytes.make_ascii_uppercase();
        let n = bytes.len();
        request.write_buffered(n)?;
    }
}

/// Starts a server (from `bind(...)`, unwrapped here) on a background
/// thread; returns the handle to its address and stats, and the runner
/// that shuts it down.
pub fn serve<S: Server>(server: io::Result<S>) -> (ServerHandle<S::Addr>, Running) {
    let server = server.expect("bind");
    let handle = server.server_handle().clone();
    let running = Running::start(server.shutdown_handle(), move || server.serve_forever());
    (handle, running)
}

/// A TCP server of either mode serving `handler` over TLS with
/// `acceptor`, on a background thread. A parked one has a single worker,
/// so a test sees whether anything holds it.
#[cfg(feature = "tls")]
pub fn tls_tcp_server<H, Style>(
    parked: bool,
    acceptor: socketserver::tls::TlsAcceptor,
    handler: H,
) -> (ServerHandle<SocketAddr>, Running)
where
    H: socketserver::StreamHandler<socketserver::TcpRequest, Style>,
{
    let builder = socketserver::TcpServer::builder().tls(acceptor);
    let builder = match parked {
        true => builder.mode(socketserver::Mode::Parked).workers(1),
        false => builder.mode(socketserver::Mode::Threading),
    };
    serve(builder.bind("127.0.0.1:0", handler))
}

/// A UDP client on loopback with a receive timeout.
pub fn udp_client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    socket
}

/// Sends one datagram to `server` and returns the first reply from it.
pub fn udp_round_trip(client: &UdpSocket, server: SocketAddr, datagram: &[u8]) -> io::Result<Vec<u8>> {
    client.send_to(datagram, server)?;
    let mut reply = vec![0; 65_536];
    let len = recv_from_only(client, server, &mut reply)?;
    reply.truncate(len);
    Ok(reply)
}

/// Receives the next datagram from `from` into `buf`; returns its length.
/// Datagrams from anyone else are skipped (and named in the test's
/// output): the port the OS gave this socket may have been another test's
/// a moment ago, and datagrams sent to that one may still arrive. Each
/// wait has the socket's read timeout, whose error comes back as it is;
/// strays that keep coming end it after [`TIMEOUT`].
pub fn recv_from_only(socket: &UdpSocket, from: SocketAddr, buf: &mut [u8]) -> io::Result<usize> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (len, sender) = socket.recv_from(buf)?;
        if sender == from {
            return Ok(len);
        }
        eprintln!("ignoring a datagram of {len} bytes from {sender}: waiting for one from {from}");
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no datagram from {from} within {TIMEOUT:?}, only from others"),
            ));
        }
    }
}

/// A child process killed if the test fails before it ends.
pub struct Process(Option<Child>);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Process {
    pub fn spawn(command: &mut Command) -> Self {
        Process(Some(command.spawn().expect("start the child process")))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// The process's id (valid while it runs: it is our child).
    pub fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    pub fn signal(&mut self, signal: libc::c_int) {
        let pid = self.child().id() as libc::pid_t;
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// The child's standard output, line by line, on a channel (so reads
    /// can be bounded in time).
    pub fn stdout_lines(&mut self) -> Receiver<String> {
        let stdout = self.child().stdout.take().expect("stdout is piped");
        let (tx, lines) = bounded(64);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        lines
    }

    /// Waits, bounded, for the process to end and collects its output.
    pub fn finish(mut self) -> Output {
        let child = self.0.take().unwrap();
        let pid = child.id();
        let (tx, rx) = bounded(1);
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                // SAFETY: kills our own child process, which hung.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!("the child process did not exit within {TIMEOUT:?}");
            }
        }
    }
}

/// Places `fds` at 3, 4, ... in the child, without close-on-exec, as
/// systemd does (and as HAProxy's `bind fd@3` expects).
pub fn place_fds(command: &mut Command, fds: Vec<RawFd>) {
    assert!(fds.len() <= 8);
    let first_free = 3 + fds.len() as RawFd;
    let place = move || {
        // Each source is first copied above the target range, so placing
        // one never overwrites another that is still to be placed.
        let mut high = [0 as RawFd; 8];
        for (slot, &fd) in high.iter_mut().zip(&fds) {
            // SAFETY: fcntl and dup2 are async-signal-safe; failures are
            // reported as the spawn's error.
            *slot = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first_free) };
            if *slot < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for (i, &fd) in high[..fds.len()].iter().enumerate() {
            // SAFETY: as above; dup2 clears close-on-exec on the copy.
            if unsafe { libc::dup2(fd, 3 + i as RawFd) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only calls async-signal-safe functions and does
    // not allocate.
    unsafe {
        command.pre_exec(place);
    }
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

/// Asserts that no thread named with `prefix` is left. `pthread_join`
/// returns when the kernel clears the thread's id, a moment before the
/// thread leaves /proc/self/task, so a joined thread may still show there
/// briefly: this waits (bounded) for the listing to catch up.
#[cfg(target_os = "linux")]
pub fn assert_no_threads_named(prefix: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = threads_named(prefix);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "threads left running: {left:?}");
        thread::sleep(Duration::from_millis(1));
    }
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

/// Starts an example server with `--port 0` and reads the address it
/// prints first ("listening on ADDR"). The rest of its standard output
/// stays on the returned channel.
pub fn start_example_server(name: &str, args: &[&str]) -> (Process, SocketAddr, Receiver<String>) {
    let (server, addr, lines) = start_example(name, &[&["--port", "0"], args].concat(), &[]);
    (server, addr.parse().unwrap(), lines)
}

/// Starts an example server with `args` and `env` (and `RUST_LOG=info`),
/// and reads where it listens from its first line ("listening on ADDR"):
/// an address, or a Unix socket's path. The rest of its standard output
/// stays on the returned channel; its log (standard error) is in the
/// output [`Process::finish`] returns.
pub fn start_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Process, String, Receiver<String>) {
    let mut server = Process::spawn(
        Command::new(example_binary(name))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let lines = server.stdout_lines();
    let addr = listening_on(&lines);
    (server, addr, lines)
}

/// What an example server's first output line, "listening on ADDR", says
/// it listens on.
pub fn listening_on(lines: &Receiver<String>) -> String {
    let first = lines
        .recv_timeout(TIMEOUT)
        .expect("the server prints its address");
    first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned()
}

/// Starts an example server with `RUST_LOG=debug` and hands each line of
/// its log (standard error) to `on_line` on a thread, so a chatty log
/// never fills the pipe; the thread ends when the process does. Returns
/// the process, the address it listens on, and the thread.
pub fn start_logged_example_server(
    name: &str,
    args: &[&str],
    mut on_line: impl FnMut(String) + Send + 'static,
) -> (Process, String, thread::JoinHandle<()>) {
    let mut process = Process::spawn(
        Command::new(example_binary(name))
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let stderr = process.child().stderr.take().unwrap();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            on_line(line);
        }
    });
    let addr = listening_on(&process.stdout_lines());
    (process, addr, reader)
}

/// One request on `stream`, as a churn client makes it: send `message`,
/// check the reply is its uppercase, close our side, and check the server
/// closes after us with nothing more.
pub fn one_uppercase_request(mut stream: TcpStream, message: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(message.as_bytes())?;
    let mut reply = vec![0u8; message.len()];
    stream.read_exact(&mut reply)?;
    if reply != message.to_ascii_uppercase().as_bytes() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("wrong reply {:?}", String::from_utf8_lossy(&reply)),
        ));
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "extra bytes"));
    }
    Ok(())
}

/// Runs an example with `args` and no input, and collects its output
/// (bounded in time).
pub fn run_example(name: &str, args: &[&str]) -> Output {
    run_example_with_env(name, args, &[])
}

/// [`run_example`] with `env` added to its environment.
pub fn run_example_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Process::spawn(
        Command::new(example_binary(name))
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .finish()
}

/// Runs an example client against `addr` with `stdin` as its input, and
/// collects its output (bounded in time).
pub fn run_example_client(name: &str, addr: SocketAddr, args: &[&str], stdin: &[u8]) -> Output {
    let port = addr.port().to_string();
    let mut client = Process::spawn(
        Command::new(example_binary(name))
            .args(["--port", &port])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    client.child().stdin.take().unwrap().write_all(stdin).unwrap();
    client.finish()
}

/// Path of an example's binary, built first: `cargo test --test NAME`
/// does not build examples, and a stale binary would test old code. The
/// build is a quick no-op when the binary is current, and runs once per
/// example per test process.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--all-features", "--example", name]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
        built.push(name.to_owned());
    }
    path
}
