//! A restart moves a parked server's connections to the new process, with
//! the handler's state and the bytes read ahead for them; what cannot move
//! stays in the old process, which serves it to its end and then returns.
//!
//! One program plays both processes (so it runs without the test
//! harness): run by `cargo test`, it is the old process, its server and
//! its clients; the restart starts it again as the new process, which it
//! tells by the handover's variables.
//!
//! The handler numbers each connection's lines and answers with its
//! process id: a reply says which process served it and whether the count
//! went on where it was.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socketserver::restart::Upgrader;
use socketserver::{KeepAliveHandler, Next, ParkedTcpServer, ServerHandle, TcpRequest};

/// Every blocking read and wait of the test is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The socket's name in the handover.
const NAME: &str = "lines";
/// Connections that move while idle.
const IDLE: usize = 20;

/// Set by the old process once its restart has succeeded: a request that
/// waits for it is in flight across the hand-over.
static RESTARTED: AtomicBool = AtomicBool::new(false);

/// Numbers the lines of each connection: "PID N LINE". The line `hold`
/// is answered only once the restart has succeeded; after the line `stay`
/// the connection's state cannot be written down, so it cannot move;
/// `quit` stops the server.
struct Lines;

#[derive(Default)]
struct Count {
    seen: u64,
    stays: bool,
}

impl KeepAliveHandler<TcpRequest> for Lines {
    type State = Count;

    fn handle_one(&self, request: &mut TcpRequest, count: &mut Count) -> io::Result<Next> {
        let mut line = String::new();
        if request.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        let line = line.trim_end();
        count.seen += 1;
        match line {
            "hold" => {
                let deadline = Instant::now() + TIMEOUT;
                while !RESTARTED.load(Ordering::Acquire) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            "stay" => count.stays = true,
            "quit" => request.server().shutdown(),
            _ => {}
        }
        writeln!(request, "{} {} {line}", std::process::id(), count.seen)?;
        Ok(Next::KeepOpen)
    }

    fn save_state(&self, count: &Count) -> Option<Vec<u8>> {
        (!count.stays).then(|| count.seen.to_be_bytes().to_vec())
    }

    fn restore_state(&self, saved: &[u8]) -> io::Result<Count> {
        let seen = saved
            .try_into()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a count is 8 bytes"))?;
        Ok(Count {
            seen: u64::from_be_bytes(seen),
            stays: false,
        })
    }
}

/// The server, on the socket named [`NAME`], attached to `upgrader`,
/// serving on a thread of its own.
fn start(upgrader: &mut Upgrader) -> io::Result<(ServerHandle<SocketAddr>, JoinHandle<io::Result<()>>)> {
    let builder = ParkedTcpServer::builder().shutdown_grace(Duration::from_secs(2));
    let listener = upgrader.socket(NAME, || builder.bind_listener("127.0.0.1:0"))?;
    let server = builder.from_listener(listener, Lines)?;
    let handle = server.server_handle().clone();
    upgrader.attach(NAME, &handle)?;
    let serving = thread::spawn(move || server.serve_forever());
    Ok((handle, serving))
}

fn main() -> ExitCode {
    let outcome = match std::env::var_os("SOCKETSERVER_HANDOVER_PID") {
        Some(_) => new_process(),
        None => old_process(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restart_moves ({}): FAILED: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// The new process: serves what it is handed, and new clients, until a
/// client says `quit`.
fn new_process() -> io::Result<()> {
    let mut upgrader = Upgrader::new()?;
    let (server, serving) = start(&mut upgrader)?;
    upgrader.ready()?;
    let served = serving.join().map_err(|_| io::Error::other("serving panicked"))?;
    eprintln!(
        "restart_moves: the new process took over {} connection(s)",
        server.stats().adopted
    );
    served
}

/// The old process: the server and its clients, the restart, and the
/// checks.
fn old_process() -> io::Result<()> {
    let mut upgrader = Upgrader::new()?.ready_timeout(TIMEOUT).drain_limit(TIMEOUT);
    let (server, serving) = start(&mut upgrader)?;
    upgrader.ready()?;
    let addr = *server.local_addr();
    let old = std::process::id();

    // Connections idle between two requests when the restart comes.
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let mut client = Client::connect(addr)?;
        client.round_trip("one", old, 1)?;
        idle.push(client);
    }
    // One whose state cannot be written down: it stays here.
    let mut staying = Client::connect(addr)?;
    staying.round_trip("stay", old, 1)?;
    // One in the middle of a request, its next one sent along (read ahead).
    let mut crossing = Client::connect(addr)?;
    crossing.send("hold\nnext")?;
    wait_until("the held request is being served", || {
        server.stats().active == IDLE as u64 + 2 && server.stats().parked == IDLE as u64 + 1
    })?;

    let new = upgrader.upgrade()?;
    // Whatever fails from here, the new process does not outlive the test.
    let child = Child(new);
    RESTARTED.store(true, Ordering::Release);
    check(new != old, "the restart started a new process")?;
    // The request in flight is answered here; the one read ahead for it,
    // by the new process, which goes on counting.
    crossing.expect(old, 1, "hold")?;
    crossing.expect(new, 2, "next")?;
    wait_until("every movable connection has moved", || {
        server.stats().handed_over == IDLE as u64 + 1
    })?;
    for client in &mut idle {
        client.round_trip("two", new, 2)?;
    }
    // What stays is served here, to its end.
    staying.round_trip("still here", old, 2)?;
    check(
        !serving.is_finished(),
        "the old server serves the connection that stays",
    )?;
    drop(staying);
    wait_until("the old server returns once its last connection is gone", || {
        serving.is_finished()
    })?;
    serving
        .join()
        .map_err(|_| io::Error::other("serving panicked"))??;
    let stats = server.stats();
    check(stats.errors == 0, &format!("no request failed here: {stats:?}"))?;

    // New clients reach the new process; `quit` stops it.
    let mut fresh = Client::connect(addr)?;
    fresh.round_trip("fresh", new, 1)?;
    fresh.round_trip("quit", new, 2)?;
    child.wait_for_exit()
}

/// A client of the line server.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        Ok(Client {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `lines` (separated by newlines) in one write.
    fn send(&mut self, lines: &str) -> io::Result<()> {
        self.writer.write_all(format!("{lines}\n").as_bytes())
    }

    /// Reads a reply and checks it is `pid`'s, line `n` of the
    /// connection, echoing `line`.
    fn expect(&mut self, pid: u32, n: u64, line: &str) -> io::Result<()> {
        let mut reply = String::new();
        self.reader.read_line(&mut reply)?;
        let wanted = format!("{pid} {n} {line}");
        check(
            reply.trim_end() == wanted,
            &format!("the reply {reply:?}, wanted {wanted:?}"),
        )
    }

    fn round_trip(&mut self, line: &str, pid: u32, n: u64) -> io::Result<()> {
        self.send(line)?;
        self.expect(pid, n, line)
    }
}

fn check(condition: bool, what: &str) -> io::Result<()> {
    match condition {
        true => Ok(()),
        false => Err(io::Error::other(what.to_owned())),
    }
}

/// Waits (up to [`TIMEOUT`]) until `done` says so.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("not within {TIMEOUT:?}: {what}"),
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// The new process, this one's child: killed and reaped unless it exited.
struct Child(u32);

impl Child {
    /// Waits (up to [`TIMEOUT`]) for it to exit successfully.
    fn wait_for_exit(self) -> io::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child, with a valid status pointer.
            let reaped = unsafe { libc::waitpid(self.0 as i32, &mut status, libc::WNOHANG) };
            if reaped == self.0 as i32 {
                std::mem::forget(self);
                let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
                return check(ok, &format!("the new process exited with status {status:#x}"));
            }
            if reaped == -1 {
                return Err(io::Error::last_os_error());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other("the new process did not exit"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: a signal to, and a wait for, our own child.
        unsafe {
            libc::kill(self.0 as i32, libc::SIGKILL);
            libc::waitpid(self.0 as i32, std::ptr::null_mut(), 0);
        }
    }
}
