//! Blocking reads that must be over by a deadline, however the peer
//! trickles its bytes: the TLS handshake, the auth challenge's answer,
//! a proxy's PROXY header, a restarted process's ready byte.
//!
//! A socket's read timeout bounds one read, not a whole exchange: a peer
//! sending a byte just before each timeout could stretch it for ever. So
//! before each read the timeout is set to the time left, and the timeout
//! the socket had is put back once, at the end; a failure to put it back
//! never hides the exchange's own error. A read that times out (which
//! Unix reports as `WouldBlock`) or is interrupted is tried again, and the
//! clock, not the timer, decides when the deadline has passed: then the
//! exchange fails with `TimedOut`.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::SockRef;

/// A zero timeout means none: the shortest wait set is this.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Runs `exchange` with the reads on `socket` bounded by `deadline`
/// (see [`ReadDeadline`]), then puts the socket's read timeout back as it
/// was. The exchange's error wins over a failure to restore the timeout.
pub(crate) fn with_read_deadline<T>(
    socket: &impl AsFd,
    deadline: Instant,
    exchange: impl FnOnce(&ReadDeadline<'_>) -> io::Result<T>,
) -> io::Result<T> {
    let socket = SockRef::from(socket);
    let previous = socket.read_timeout()?;
    let bounded = ReadDeadline { socket, deadline };
    let result = exchange(&bounded);
    let restored = bounded.socket.set_read_timeout(previous);
    let value = result?;
    restored?;
    Ok(value)
}

/// The deadline of one exchange on a socket: call [`arm`](Self::arm)
/// before each blocking read, and hand each read's error to
/// [`retry`](Self::retry).
pub(crate) struct ReadDeadline<'s> {
    socket: SockRef<'s>,
    deadline: Instant,
}

impl ReadDeadline<'_> {
    /// Sets the socket's read timeout to the time left; `TimedOut` once
    /// the deadline has passed.
    pub(crate) fn arm(&self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.socket.set_read_timeout(Some(left.max(MIN_WAIT)))
    }

    /// [`arm`](Self::arm), with `late()` as the error once the deadline
    /// has passed: the exchange says what it was waiting for.
    pub(crate) fn arm_or(&self, late: impl FnOnce() -> io::Error) -> io::Result<()> {
        self.arm().map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => late(),
            _ => e,
        })
    }

    /// What a read's error means: `Ok` for one to try again after (a
    /// timeout, in either of its kinds, or a signal: the next `arm` says
    /// whether time is up), the error itself otherwise.
    pub(crate) fn retry(&self, error: io::Error) -> io::Result<()> {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(()),
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// Reads exactly `into.len()` bytes by the deadline.
    fn read_all(stream: &UnixStream, into: &mut [u8], bounded: &ReadDeadline<'_>) -> io::Result<()> {
        let mut got = 0;
        while got < into.len() {
            bounded.arm()?;
            match (&*stream).read(&mut into[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) => bounded.retry(e)?,
            }
        }
        Ok(())
    }

    #[test]
    fn a_silent_peer_times_out_and_the_timeout_is_put_back() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 4];
        let deadline = Instant::now() + Duration::from_millis(20);
        let error = with_read_deadline(&ours, deadline, |b| read_all(&ours, &mut buf, b)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(Instant::now() >= deadline);
        assert_eq!(ours.read_timeout().unwrap(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_deadline_covers_the_whole_exchange() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // Half of what is awaited: no single read times out on its own
        // clock, the exchange as a whole does.
        theirs.write_all(b"ab").unwrap();
        let mut buf = [0u8; 4];
        let deadline = Instant::now() + Duration::from_millis(20);
        let error = with_read_deadline(&ours, deadline, |b| read_all(&ours, &mut buf, b)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(
            ours.read_timeout().unwrap(),
            None,
            "no timeout before, none after"
        );
    }

    #[test]
    fn what_arrives_in_time_is_read_and_other_errors_pass_through() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"abcd").unwrap();
        let mut buf = [0u8; 4];
        let deadline = Instant::now() + Duration::from_secs(10);
        with_read_deadline(&ours, deadline, |b| read_all(&ours, &mut buf, b)).unwrap();
        assert_eq!(&buf, b"abcd");
        drop(theirs);
        let error = with_read_deadline(&ours, deadline, |b| read_all(&ours, &mut buf, b)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
