//! `poll(2)` and a socketpair waker.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Which of the descriptors passed to [`wait_readable`] are ready, as a bit
/// set (bit `i` for descriptor `i`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Readiness(u32);

impl Readiness {
    pub(crate) fn is_ready(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Blocks until at least one descriptor is readable (or in error, which a
/// following read or accept will report), or until `timeout` passes.
///
/// Interrupted waits are resumed with the time that is left, so a signal
/// never shortens or lengthens the wait.
pub(crate) fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Readiness> {
    assert!(fds.len() <= 8, "wait_readable takes at most 8 descriptors");
    let mut pollfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 8];
    for (slot, fd) in pollfds.iter_mut().zip(fds) {
        slot.fd = fd.as_raw_fd();
        slot.events = libc::POLLIN;
    }
    let pollfds = &mut pollfds[..fds.len()];
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let millis = match deadline {
            None => -1,
            Some(deadline) => poll_millis(deadline.saturating_duration_since(Instant::now())),
        };
        // SAFETY: `pollfds` is a valid, exclusively borrowed array of
        // `pollfds.len()` initialised entries for the duration of the call.
        let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
        if rc >= 0 {
            let mut ready = 0u32;
            for (i, p) in pollfds.iter().enumerate() {
                if p.revents != 0 {
                    ready |= 1 << i;
                }
            }
            return Ok(Readiness(ready));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Milliseconds for `poll`, rounded up so a sub-millisecond remainder waits
/// instead of spinning, and capped at what an `int` holds.
fn poll_millis(left: Duration) -> libc::c_int {
    let millis = left.as_nanos().div_ceil(1_000_000);
    millis.min(libc::c_int::MAX as u128) as libc::c_int
}

/// Wakes a thread blocked in [`wait_readable`] from any other thread.
///
/// A connected socket pair: waking writes one byte, which makes the read end
/// readable until it is drained. Shutdown is final, so the byte is never
/// drained; a full buffer (impossible after one byte) is ignored.
#[derive(Debug)]
pub(crate) struct Waker {
    read: UnixStream,
    write: UnixStream,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Waker { read, write })
    }

    pub(crate) fn wake(&self) {
        match (&self.write).write(&[1]) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => log::error!("failed to wake the server loop: {e}"),
        }
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Consumes pending wake-ups, for a waker that is used more than once.
    pub(crate) fn drain(&self) {
        let mut sink = [0u8; 64];
        while matches!((&self.read).read(&mut sink), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_makes_poll_return() {
        let waker = Waker::new().unwrap();
        let ready = wait_readable(&[waker.as_fd()], Some(Duration::ZERO)).unwrap();
        assert!(ready.is_empty());
        waker.wake();
        let ready = wait_readable(&[waker.as_fd()], Some(Duration::from_secs(5))).unwrap();
        assert!(ready.is_ready(0));
    }

    #[test]
    fn drained_waker_is_quiet_until_woken_again() {
        let waker = Waker::new().unwrap();
        waker.wake();
        waker.wake();
        waker.drain();
        assert!(
            wait_readable(&[waker.as_fd()], Some(Duration::ZERO))
                .unwrap()
                .is_empty()
        );
        waker.wake();
        assert!(
            wait_readable(&[waker.as_fd()], Some(Duration::ZERO))
                .unwrap()
                .is_ready(0)
        );
    }

    #[test]
    fn timeout_expires_without_readiness() {
        let waker = Waker::new().unwrap();
        let ready = wait_readable(&[waker.as_fd()], Some(Duration::from_millis(1))).unwrap();
        assert!(ready.is_empty());
    }

    #[test]
    fn sub_millisecond_timeouts_round_up() {
        assert_eq!(poll_millis(Duration::from_micros(1)), 1);
        assert_eq!(poll_millis(Duration::ZERO), 0);
        assert_eq!(poll_millis(Duration::from_secs(u64::MAX)), libc::c_int::MAX);
    }
}
