//! `--timeout` bounds a whole request, from its first byte out to the
//! last byte of its reply, not each read: a server that trickles a reply
//! a byte at a time, or keeps sending stale datagrams, cannot stretch the
//! wait (or the run) past it.
//!
//! Blocking sockets wait with the timeout the socket was given. Setting
//! it before every read would cost a system call per request, so it is
//! shortened only when waiting it out could overshoot the deadline by
//! more than a sixteenth of the timeout; and a reply that comes whole
//! after its deadline is a timeout all the same (the caller checks), so
//! the slack never lets a slow reply pass.

use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The timeout a socket should wait with before a wait that must end by
/// `deadline`: `Ok(None)` if `armed`, the one it has, will do.
fn rearm(armed: Duration, deadline: Instant, slack: Duration) -> io::Result<Option<Duration>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no reply within --timeout",
        ));
    }
    Ok((armed < left || armed > left + slack).then_some(left))
}

/// The slack a wait may overshoot its deadline by: a sixteenth of the
/// timeout.
fn slack(timeout: Duration) -> Duration {
    timeout / 16
}

/// A socket's timeout for one direction, kept in step with its deadline.
struct Armed {
    timeout: Duration,
    slack: Duration,
}

impl Armed {
    fn new(timeout: Duration) -> Self {
        Armed {
            timeout,
            slack: slack(timeout),
        }
    }

    /// Sets the socket's timeout through `set` if the deadline needs it.
    fn before_wait(
        &mut self,
        deadline: Option<Instant>,
        set: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return Ok(());
        };
        if let Some(timeout) = rearm(self.timeout, deadline, self.slack)? {
            set(Some(timeout))?;
            self.timeout = timeout;
        }
        Ok(())
    }
}

/// A TCP stream whose reads and writes give up at a deadline, set per
/// request; TLS sessions and framing sit on top of it unchanged.
pub struct Deadlined {
    stream: TcpStream,
    deadline: Option<Instant>,
    read: Armed,
    write: Armed,
}

impl Deadlined {
    /// `stream`, whose read and write timeouts are both `timeout`.
    pub fn new(stream: TcpStream, timeout: Duration) -> Self {
        Deadlined {
            stream,
            deadline: None,
            read: Armed::new(timeout),
            write: Armed::new(timeout),
        }
    }

    /// Reads and writes from now on fail with `TimedOut` at `deadline`;
    /// `None` lifts it (to close a session cleanly, say).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stream = &self.stream;
        self.read
            .before_wait(self.deadline, |t| stream.set_read_timeout(t))?;
        (&self.stream).read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stream = &self.stream;
        self.write
            .before_wait(self.deadline, |t| stream.set_write_timeout(t))?;
        (&self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&self.stream).flush()
    }
}

/// A connected UDP socket whose receives give up at a deadline.
pub struct DeadlinedUdp {
    pub socket: UdpSocket,
    read: Armed,
}

impl DeadlinedUdp {
    /// `socket`, whose read timeout is `timeout`.
    pub fn new(socket: UdpSocket, timeout: Duration) -> io::Result<Self> {
        socket.set_read_timeout(Some(timeout))?;
        Ok(DeadlinedUdp {
            socket,
            read: Armed::new(timeout),
        })
    }

    /// Receives the next datagram, failing with `TimedOut` once
    /// `deadline` has passed.
    pub fn recv_by(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let socket = &self.socket;
        self.read
            .before_wait(Some(deadline), |t| socket.set_read_timeout(t))?;
        self.socket.recv(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_set_again_only_when_it_must_be() {
        let timeout = Duration::from_secs(16);
        let slack = slack(timeout);
        let soon = Instant::now() + timeout - Duration::from_millis(1);
        // Armed with the whole timeout, a wait just begun keeps it.
        assert_eq!(rearm(timeout, soon, slack).unwrap(), None);
        // Half of it gone: waiting it all out would overshoot.
        let half = Instant::now() + timeout / 2;
        let left = rearm(timeout, half, slack).unwrap().unwrap();
        assert!(left <= timeout / 2);
        // Armed short for an earlier request, a new one needs it longer.
        assert!(rearm(Duration::from_millis(1), soon, slack).unwrap().is_some());
        let past = Instant::now();
        assert_eq!(
            rearm(timeout, past, slack).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }
}
