//! What to do when `accept` (or `recv`) fails.
//!
//! Some failures belong to one connection that died in the backlog and the
//! loop simply goes on; resource exhaustion (out of descriptors, buffers
//! or memory) would make the loop spin, since the listener stays readable,
//! so it backs off, logs, and tries again; anything else means the socket
//! itself is broken and serving stops with the error.

use std::io;
use std::time::Duration;

use crate::control::Control;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// One connection's problem (aborted in the backlog, interrupted):
    /// accept the next.
    Transient,
    /// The process or system is out of a resource: wait, then retry.
    Exhausted,
    /// The listening socket is unusable.
    Fatal,
}

pub(crate) fn classify(error: &io::Error) -> AcceptFailure {
    match error.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Exhausted,
        // accept(2) on Linux passes on network errors already pending on
        // the new socket; they concern that connection only.
        Some(
            libc::ECONNABORTED
            | libc::EINTR
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ETIMEDOUT
            | libc::ECONNRESET,
        ) => AcceptFailure::Transient,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(libc::ENONET) => AcceptFailure::Transient,
        _ => AcceptFailure::Fatal,
    }
}

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// Exponential backoff over a run of resource-exhaustion failures.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u64,
    pause: Duration,
}

impl Backoff {
    /// Records a failure and waits before the next try; the wait ends at
    /// once if shutdown is requested.
    pub(crate) fn pause(&mut self, control: &Control, what: &str, error: &io::Error) {
        let pause = self.record(control, what, error);
        control.sleep_unless_shutdown(pause);
    }

    /// Records a failure and returns how long to wait before the next try,
    /// for a loop that has other work meanwhile. Logs the first failure of
    /// a run at `warn` level and the rest at `debug`.
    pub(crate) fn record(&mut self, control: &Control, what: &str, error: &io::Error) -> Duration {
        control.counters.receive_errors.bump();
        self.failures += 1;
        self.pause = if self.failures == 1 {
            FIRST_PAUSE
        } else {
            (self.pause * 2).min(LONGEST_PAUSE)
        };
        if self.failures == 1 {
            log::warn!("{what} failed: {error}; backing off (pending clients wait in the backlog)");
        } else {
            log::debug!("{what} failed again ({error}); retrying in {:?}", self.pause);
        }
        self.pause
    }

    /// Ends a run of failures after a success.
    pub(crate) fn succeeded(&mut self, what: &str) {
        if self.failures > 0 {
            log::info!("{what} works again after {} failed attempts", self.failures);
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::EMFILE)), AcceptFailure::Exhausted);
        assert_eq!(classify(&os(libc::ENFILE)), AcceptFailure::Exhausted);
        assert_eq!(classify(&os(libc::ENOBUFS)), AcceptFailure::Exhausted);
        assert_eq!(classify(&os(libc::ENOMEM)), AcceptFailure::Exhausted);
        assert_eq!(classify(&os(libc::ECONNABORTED)), AcceptFailure::Transient);
        assert_eq!(classify(&os(libc::EINTR)), AcceptFailure::Transient);
        assert_eq!(classify(&os(libc::EBADF)), AcceptFailure::Fatal);
        assert_eq!(classify(&os(libc::EINVAL)), AcceptFailure::Fatal);
    }
}
