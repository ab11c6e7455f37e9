//! The handover between two generations of a server: what the old process
//! passes to the new one, and how the new one says it is ready.
//!
//! The old process starts the new one (the same program, the same
//! arguments) with the listening sockets left open across `exec` at their
//! own descriptor numbers, plus one end of a socket pair, the control
//! socket. Four variables say what is where:
//!
//! | variable | value |
//! |---|---|
//! | `SOCKETSERVER_HANDOVER_PID` | the old process, which the new one checks is its parent |
//! | `SOCKETSERVER_HANDOVER_FDS` | the sockets' descriptor numbers, comma-separated |
//! | `SOCKETSERVER_HANDOVER_NAMES` | their names, one per line |
//! | `SOCKETSERVER_HANDOVER_CONTROL` | the control socket's descriptor number |
//! | `SOCKETSERVER_HANDOVER_MOVES` | the moves socket's descriptor number (see the `moves` module) |
//!
//! The new process writes one byte on the control socket when it serves,
//! or, when it cannot, another byte and why, before it closes the socket
//! and exits: the old process's error then says why, even if the new
//! one's own output is lost. The old one keeps its end open until it
//! exits, so the new one reads end-of-file exactly when the old one is
//! gone. Everything else stays
//! close-on-exec: no other process ever receives these descriptors.

use std::env;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::moves;
use crate::deadline::{ReadDeadline, with_read_deadline};
use crate::socket::{SocketKind, parse_number};
use crate::sys::fd::{adopt_inherited, pass_on_exec, remove_env_if_single_threaded};

const PID: &str = "SOCKETSERVER_HANDOVER_PID";
const FDS: &str = "SOCKETSERVER_HANDOVER_FDS";
const NAMES: &str = "SOCKETSERVER_HANDOVER_NAMES";
const CONTROL: &str = "SOCKETSERVER_HANDOVER_CONTROL";
const MOVES: &str = "SOCKETSERVER_HANDOVER_MOVES";

/// Variables a successor must not inherit: the sockets systemd passed are
/// this process's (and arrive through the handover instead), and a
/// watchdog meant for this process is the successor's once it takes over.
const SYSTEMD_LISTEN: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// The byte a new process sends when it is ready.
const READY: u8 = b'R';

/// The byte a new process sends, followed by why, when it cannot serve.
const FAILED: u8 = b'F';

/// The most of a failing new process's reason that is passed on: enough
/// for any error message, not enough to fill a log.
const MAX_REASON: usize = 4096;

/// How long a new process that has given up on the handover gets to exit
/// by itself (and print why), before it is killed: so the error reports
/// its own exit status.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// How often the exit of such a process is looked for meanwhile.
const EXIT_POLL: Duration = Duration::from_millis(2);

/// Checks that `name` can travel in `SOCKETSERVER_HANDOVER_NAMES`.
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains(['\n', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket name {name:?} must be non-empty, without line breaks or NUL"),
        ));
    }
    Ok(())
}

/// What a process received from the one that started it.
pub(crate) struct Inherited {
    pub(crate) parent_pid: u32,
    pub(crate) sockets: Vec<(String, OwnedFd)>,
    pub(crate) control: UnixStream,
    /// Where the previous process moves connections (absent if it is of
    /// a version that does not).
    pub(crate) moves: Option<OwnedFd>,
}

/// Takes over what the previous process passed, if this process was
/// started by a handover: `None` if the variables are absent, or name a
/// process that is not this one's parent (they were inherited from
/// further up, and the descriptors are not ours).
pub(crate) fn receive() -> io::Result<Option<Inherited>> {
    let received = receive_from_env();
    remove_env_if_single_threaded(&[PID, FDS, NAMES, CONTROL, MOVES]);
    received
}

fn receive_from_env() -> io::Result<Option<Inherited>> {
    let Some(pid) = env::var(PID).ok() else {
        return Ok(None);
    };
    let parent_pid: u32 = parse_number(PID, &pid)?;
    let actual_parent = std::os::unix::process::parent_id();
    if parent_pid != actual_parent {
        log::warn!(
            "{PID} is {parent_pid} but this process's parent is {actual_parent}: \
             not started by a handover (or the old process died first); ignoring it"
        );
        return Ok(None);
    }
    let fds = env::var(FDS).unwrap_or_default();
    let numbers = fds
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| parse_number::<RawFd>(FDS, n))
        .collect::<io::Result<Vec<_>>>()?;
    let names = env::var(NAMES).unwrap_or_default();
    let names: Vec<&str> = names.split('\n').filter(|n| !n.is_empty()).collect();
    if names.len() != numbers.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{NAMES} has {} names for {} sockets in {FDS}",
                names.len(),
                numbers.len()
            ),
        ));
    }
    let control_number = parse_number::<RawFd>(CONTROL, &env::var(CONTROL).unwrap_or_default())?;
    let control = adopt_inherited(control_number)?;
    check_kind_of_control(&control, control_number)?;
    let moves = match env::var(MOVES) {
        Ok(number) => {
            let number = parse_number::<RawFd>(MOVES, &number)?;
            Some(adopt_inherited(number)?)
        }
        Err(_) => None,
    };
    let mut sockets = Vec::with_capacity(numbers.len());
    for (number, name) in numbers.into_iter().zip(names) {
        let fd = adopt_inherited(number).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("socket '{name}' from process {parent_pid}: {e}"),
            )
        })?;
        sockets.push((name.to_owned(), fd));
    }
    Ok(Some(Inherited {
        parent_pid,
        sockets,
        control: UnixStream::from(control),
        moves,
    }))
}

fn check_kind_of_control(control: &OwnedFd, number: RawFd) -> io::Result<()> {
    match SocketKind::of(control.as_fd())? {
        SocketKind::UnixNotListening => Ok(()),
        kind => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{CONTROL}: fd {number} is {kind}, not a connected Unix stream socket"),
        )),
    }
}

/// Tells the previous process that this one serves. Afterwards the control
/// socket only tells whether the previous process has exited. If it has
/// exited already (it was killed during the handover), there is nobody to
/// tell, and this process serves on regardless.
pub(crate) fn signal_ready(control: &UnixStream) -> io::Result<()> {
    match (&*control).write_all(&[READY]) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            log::warn!("the previous process exited before this one was ready");
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot tell the previous process we are ready: {e}"),
            ));
        }
    }
    control.set_nonblocking(true)
}

/// Tells the previous process that this one cannot serve, and why (cut at
/// [`MAX_REASON`] bytes), and closes the control socket. A previous
/// process that is gone already cannot be told: that is not an error.
pub(crate) fn signal_failed(control: UnixStream, reason: &str) {
    let reason = &reason.as_bytes()[..reason.len().min(MAX_REASON)];
    let mut message = Vec::with_capacity(1 + reason.len());
    message.push(FAILED);
    message.extend_from_slice(reason);
    if let Err(e) = (&control).write_all(&message) {
        log::debug!("cannot tell the previous process why this one fails: {e}");
    }
}

/// Whether the process at the other end of `control` has exited (after
/// [`signal_ready`], which made the socket non-blocking).
pub(crate) fn has_exited(control: &UnixStream) -> io::Result<bool> {
    let mut byte = [0u8; 1];
    match (&*control).read(&mut byte) {
        Ok(0) => Ok(true),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected data from the previous process on the handover control socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(true),
        Err(e) => Err(e),
    }
}

/// A process started by [`start_successor`] that said it is ready.
///
/// Its control socket stays open for as long as this value lives, which
/// should be until this process exits: the successor learns that this
/// process is gone from its closing. The successor is not waited for:
/// when this process exits it is reparented, so no zombie is left.
#[derive(Debug)]
pub(crate) struct Successor {
    child: Child,
    _control: UnixStream,
    /// This process's end of the moves socket.
    moves: Arc<OwnedFd>,
}

impl Successor {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn moves(&self) -> &Arc<OwnedFd> {
        &self.moves
    }
}

/// Starts `program` with `args` and `sockets`, and waits
/// up to `timeout` for it to say it is ready. A process that exits first,
/// or is not ready in time, is killed and reaped, and the error says what
/// happened; this process's sockets are untouched either way.
pub(crate) fn start_successor(
    program: &Path,
    args: impl IntoIterator<Item = std::ffi::OsString>,
    sockets: &[(String, OwnedFd)],
    timeout: Duration,
) -> io::Result<Successor> {
    let (ours, theirs) = UnixStream::pair()?;
    let (our_moves, their_moves) = moves::pair()?;
    let mut command = Command::new(program);
    let numbers: Vec<RawFd> = sockets.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    let names: Vec<&str> = sockets.iter().map(|(name, _)| name.as_str()).collect();
    command
        .args(args)
        .env(PID, std::process::id().to_string())
        .env(
            FDS,
            numbers.iter().map(RawFd::to_string).collect::<Vec<_>>().join(","),
        )
        .env(NAMES, names.join("\n"))
        .env(CONTROL, theirs.as_raw_fd().to_string())
        .env(MOVES, their_moves.as_raw_fd().to_string());
    for name in SYSTEMD_LISTEN {
        command.env_remove(name);
    }
    if env::var(WATCHDOG_PID).is_ok_and(|pid| pid == std::process::id().to_string()) {
        // Unset, the watchdog applies to whichever process reads it.
        command.env_remove(WATCHDOG_PID);
    }
    let mut passed = numbers;
    passed.push(theirs.as_raw_fd());
    passed.push(their_moves.as_raw_fd());
    pass_on_exec(&mut command, passed);
    let child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", program.display())))?;
    drop(theirs);
    drop(their_moves);
    let mut child = KillOnDrop(Some(child));
    wait_ready(&ours, child.pid(), timeout, &mut child)?;
    let child = child.0.take().expect("the child is still ours");
    Ok(Successor {
        child,
        _control: ours,
        moves: Arc::new(our_moves),
    })
}

/// Waits for the ready byte; on failure the error says why.
fn wait_ready(control: &UnixStream, pid: u32, timeout: Duration, child: &mut KillOnDrop) -> io::Result<()> {
    with_read_deadline(control, Instant::now() + timeout, |bounded| {
        wait_ready_by(control, pid, timeout, child, bounded)
    })
}

/// [`wait_ready`], its reads bounded.
fn wait_ready_by(
    control: &UnixStream,
    pid: u32,
    timeout: Duration,
    child: &mut KillOnDrop,
    bounded: &ReadDeadline<'_>,
) -> io::Result<()> {
    loop {
        bounded.arm_or(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the new process (pid {pid}) was not ready within {timeout:?}; {}",
                    child.kill_and_reap()
                ),
            )
        })?;
        let mut byte = [0u8; 1];
        match (&*control).read(&mut byte) {
            Ok(1) if byte[0] == READY => return Ok(()),
            Ok(1) if byte[0] == FAILED => {
                let reason = read_reason(control, bounded);
                return Err(io::Error::other(format!(
                    "the new process (pid {pid}) failed before it was ready: {reason}; {}",
                    child.reap()
                )));
            }
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!(
                        "the new process (pid {pid}) closed the handover before it was ready; {}",
                        child.reap()
                    ),
                ));
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the new process (pid {pid}) sent {:#04x} instead of the ready byte; {}",
                        byte[0],
                        child.kill_and_reap()
                    ),
                ));
            }
            Err(e) => bounded.retry(e).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "waiting for the new process (pid {pid}): {e}; {}",
                        child.kill_and_reap()
                    ),
                )
            })?,
        }
    }
}

/// What a failing new process said went wrong: the rest of what it sent,
/// up to its end (or `deadline`).
fn read_reason(control: &UnixStream, bounded: &ReadDeadline<'_>) -> String {
    let _ = bounded.arm();
    let mut reason = Vec::new();
    // On an error, what arrived before it is kept.
    let _ = control.take(MAX_REASON as u64).read_to_end(&mut reason);
    let reason = String::from_utf8_lossy(&reason).trim().to_owned();
    match reason.is_empty() {
        true => "it did not say why".to_owned(),
        false => reason,
    }
}

/// A child that is killed and reaped unless it is taken out: no failed
/// start leaves a process or a zombie behind.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Reaps a child that has given up on the handover: it gets
    /// [`EXIT_WAIT`] to exit by itself, then is killed. Says how it ended.
    fn reap(&mut self) -> String {
        let deadline = Instant::now() + EXIT_WAIT;
        while let Some(child) = &mut self.0 {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.0 = None;
                    return format!("it exited ({status})");
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(EXIT_POLL),
                Ok(None) | Err(_) => break,
            }
        }
        self.kill_and_reap()
    }

    /// Kills and reaps the child; says how it ended.
    fn kill_and_reap(&mut self) -> String {
        let Some(mut child) = self.0.take() else {
            return "it is gone".into();
        };
        // Killing a process that has exited but is not reaped is harmless,
        // and `wait` then reports its own exit status.
        let _ = child.kill();
        match child.wait() {
            Ok(status) => format!("it has been stopped ({status})"),
            Err(e) => format!("waiting for it failed: {e}"),
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.is_some() {
            let outcome = self.kill_and_reap();
            log::debug!("abandoned new process: {outcome}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn names_that_cannot_travel_are_refused() {
        check_name("127.0.0.1:9999").unwrap();
        for bad in ["", "two\nlines", "nul\0"] {
            assert_eq!(check_name(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn the_successor_finds_the_sockets_at_the_announced_numbers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sockets = vec![("web".to_owned(), OwnedFd::from(listener.try_clone().unwrap()))];
        // Checks what a successor is told, then says it is ready; any
        // mismatch is an exit before ready, which fails the start.
        let script = r#"
            [ "$SOCKETSERVER_HANDOVER_PID" = "$PPID" ] || exit 11
            [ "$SOCKETSERVER_HANDOVER_NAMES" = web ] || exit 12
            [ -S "/proc/$$/fd/$SOCKETSERVER_HANDOVER_FDS" ] || exit 13
            [ -S "/proc/$$/fd/$SOCKETSERVER_HANDOVER_CONTROL" ] || exit 14
            printf R >&"$SOCKETSERVER_HANDOVER_CONTROL"
        "#;
        let args = ["-c", script].map(std::ffi::OsString::from);
        let successor = start_successor(Path::new("/bin/bash"), args, &sockets, Duration::from_secs(10))
            .expect("the successor is ready");
        let Successor { mut child, .. } = successor;
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn a_successor_that_exits_first_is_reaped_and_reported() {
        let args = ["-c", "exit 3"].map(std::ffi::OsString::from);
        let error = start_successor(Path::new("/bin/sh"), args, &[], Duration::from_secs(10)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        let message = error.to_string();
        assert!(message.contains("it exited (exit status: 3)"), "{message}");
        let pid = message
            .split("(pid ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} was not reaped"
        );
    }

    #[test]
    fn a_successor_that_fails_says_why_and_its_exit_is_reported() {
        // Says why, then takes its time to exit: the reason and the exit
        // status are both in the error, however late the exit.
        let script = r#"
            printf 'Fthe key does not match\n' >&"$SOCKETSERVER_HANDOVER_CONTROL"
            exec {SOCKETSERVER_HANDOVER_CONTROL}>&-
            sleep 0.2
            exit 4
        "#;
        let args = ["-c", script].map(std::ffi::OsString::from);
        let error = start_successor(Path::new("/bin/bash"), args, &[], Duration::from_secs(10)).unwrap_err();
        let message = error.to_string();
        assert!(
            message
                .contains("failed before it was ready: the key does not match; it exited (exit status: 4)"),
            "{message}"
        );
    }
}
