//! Readiness through mio: every serving loop waits here, on its listening
//! or datagram socket, its parked connections and a [`Waker`].
//!
//! mio registers descriptors edge-triggered: each arrival is reported
//! once, so a loop drains what an event announced (accept or receive
//! until `WouldBlock`), or remembers that more may be waiting. A parked
//! server's workers all wait on one readiness set at once
//! ([`SharedPoller`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

/// The waker's token; registrations use any other.
const WAKE: Token = Token(usize::MAX);

/// A loop's readiness set, and the events of its last wait.
pub(crate) struct Poller {
    poll: Poll,
    events: Events,
}

/// Wakes a [`Poller`]'s wait from any thread. Wake-ups do not queue: one
/// wake-up ends the wait in progress (or the next one), and the loop then
/// looks at the state that changed (a shutdown flag, a growth request).
#[derive(Debug)]
pub(crate) struct Waker(mio::Waker);

impl Waker {
    pub(crate) fn wake(&self) {
        if let Err(e) = self.0.wake() {
            log::error!("failed to wake the server loop: {e}");
        }
    }
}

impl Poller {
    /// A poller that reports up to `capacity` events per wait, and its
    /// waker.
    pub(crate) fn new(capacity: usize) -> io::Result<(Self, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Waker(mio::Waker::new(poll.registry(), WAKE)?);
        let poller = Poller {
            poll,
            events: Events::with_capacity(capacity.max(1)),
        };
        Ok((poller, Arc::new(waker)))
    }

    /// Where descriptors are registered; can be cloned for other threads.
    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits until something is ready, the waker is woken, or `deadline`
    /// passes (never, without one). A signal does not end the wait early.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What the last wait found ready (the waker left out).
    pub(crate) fn ready(&self) -> impl Iterator<Item = Readiness> + '_ {
        self.events
            .iter()
            .filter(|event| event.token() != WAKE)
            .map(|event| Readiness {
                token: event.token().0,
                closed: event.is_read_closed() || event.is_error(),
            })
    }
}

impl Poller {
    /// The poller, to be waited on by several threads at once (a parked
    /// server's workers); its waker stays valid. Fails if no descriptor is
    /// left for the registry's own (`EMFILE`).
    pub(crate) fn into_shared(self) -> io::Result<SharedPoller> {
        SharedPoller::new(self.poll)
    }
}

/// A readiness set several threads wait on at once, each taking the events
/// its own wait returns: a parked server's workers, each serving inline
/// what it found, with no thread between the poller and the work.
///
/// On Linux the threads call `epoll_wait` on the one epoll set directly;
/// the kernel wakes one waiter per event. Elsewhere (kqueue) the waits
/// take turns behind a lock: the same results, one waiter at a time.
pub(crate) struct SharedPoller {
    #[cfg(target_os = "linux")]
    poll: Poll,
    #[cfg(not(target_os = "linux"))]
    poll: parking_lot::Mutex<Poll>,
    registry: Registry,
}

/// What one wait on a [`SharedPoller`] found: the caller's own buffer.
pub(crate) struct ReadyEvents {
    #[cfg(target_os = "linux")]
    events: Vec<libc::epoll_event>,
    #[cfg(target_os = "linux")]
    len: usize,
    #[cfg(not(target_os = "linux"))]
    events: Events,
    /// The waker was among them.
    woken: bool,
}

impl ReadyEvents {
    /// Room for `capacity` events per wait.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ReadyEvents {
            #[cfg(target_os = "linux")]
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity],
            #[cfg(target_os = "linux")]
            len: 0,
            #[cfg(not(target_os = "linux"))]
            events: Events::with_capacity(capacity),
            woken: false,
        }
    }

    /// Whether the wait found nothing (it timed out).
    pub(crate) fn is_empty(&self) -> bool {
        !self.woken && self.ready().next().is_none()
    }

    /// Whether the waker was woken.
    pub(crate) fn woken(&self) -> bool {
        self.woken
    }

    /// The registrations found ready (the waker left out).
    pub(crate) fn ready(&self) -> impl Iterator<Item = Readiness> + '_ {
        #[cfg(target_os = "linux")]
        return self.events[..self.len]
            .iter()
            .map(|event| {
                let flags = event.events as libc::c_int;
                Readiness {
                    token: event.u64 as usize,
                    closed: flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                }
            })
            .filter(|ready| ready.token != WAKE.0);
        #[cfg(not(target_os = "linux"))]
        return self
            .events
            .iter()
            .filter(|event| event.token() != WAKE)
            .map(|event| Readiness {
                token: event.token().0,
                closed: event.is_read_closed() || event.is_error(),
            });
    }
}

impl SharedPoller {
    fn new(poll: Poll) -> io::Result<Self> {
        // A dup of the poller's descriptor: registering needs no lock.
        let registry = poll.registry().try_clone()?;
        Ok(SharedPoller {
            #[cfg(target_os = "linux")]
            poll,
            #[cfg(not(target_os = "linux"))]
            poll: parking_lot::Mutex::new(poll),
            registry,
        })
    }

    /// Where descriptors are registered.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits until something is ready, the waker is woken, or `timeout`
    /// passes (never, without one), filling `into`. A signal ends the wait
    /// early, with nothing found.
    #[cfg(target_os = "linux")]
    pub(crate) fn wait(&self, into: &mut ReadyEvents, timeout: Option<Duration>) -> io::Result<()> {
        let millis = timeout.map_or(-1, |t| {
            // Rounded up: a wait never ends before its time.
            let ms = t.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        });
        into.len = 0;
        into.woken = false;
        // SAFETY: the buffer holds `events.len()` initialised entries, and
        // the epoll descriptor lives as long as `self`.
        let n = unsafe {
            libc::epoll_wait(
                self.poll.as_raw_fd(),
                into.events.as_mut_ptr(),
                i32::try_from(into.events.len()).unwrap_or(i32::MAX),
                millis,
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(error),
            };
        }
        into.len = n as usize;
        into.woken = into.events[..into.len]
            .iter()
            .any(|event| event.u64 == WAKE.0 as u64);
        Ok(())
    }

    /// See the Linux `wait`.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn wait(&self, into: &mut ReadyEvents, timeout: Option<Duration>) -> io::Result<()> {
        into.events.clear();
        match self.poll.lock().poll(&mut into.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        into.woken = into.events.iter().any(|event| event.token() == WAKE);
        Ok(())
    }
}

/// One registration found ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) token: usize,
    /// The peer has closed its end (or the socket failed), possibly with
    /// bytes still unread before the end: this is the last event for it,
    /// so the end must be read even if those bytes are all a reader
    /// wants.
    pub(crate) closed: bool,
}

/// Registers `socket` for readability under `token`.
pub(crate) fn register(registry: &Registry, socket: &impl AsFd, token: usize) -> io::Result<()> {
    let fd = socket.as_fd().as_raw_fd();
    registry.register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
}

/// Removes `socket` from the readiness set; do it before closing a socket
/// that stays registered otherwise.
pub(crate) fn deregister(registry: &Registry, socket: &impl AsFd) -> io::Result<()> {
    let fd = socket.as_fd().as_raw_fd();
    registry.deregister(&mut SourceFd(&fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(5))
    }

    fn tokens(poller: &Poller) -> Vec<usize> {
        poller.ready().map(|ready| ready.token).collect()
    }

    #[test]
    fn the_waker_ends_a_wait() {
        let (mut poller, waker) = Poller::new(8).unwrap();
        poller.wait(Some(Instant::now())).unwrap();
        let started = Instant::now();
        waker.wake();
        poller.wait(Some(started + Duration::from_secs(10))).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the waker did not end the wait"
        );
        assert_eq!(poller.ready().count(), 0);
    }

    #[test]
    fn a_deadline_ends_a_wait() {
        let (mut poller, _waker) = Poller::new(8).unwrap();
        let started = Instant::now();
        poller.wait(Some(started + Duration::from_millis(5))).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn each_arrival_is_reported_once() {
        let (mut poller, _waker) = Poller::new(8).unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        register(poller.registry(), &ours, 7).unwrap();
        theirs.write_all(b"x").unwrap();
        poller.wait(soon()).unwrap();
        assert_eq!(tokens(&poller), [7]);
        // Edge-triggered: nothing new, nothing reported...
        poller.wait(Some(Instant::now())).unwrap();
        assert_eq!(poller.ready().count(), 0);
        // ...until more bytes come, even with the first still unread.
        theirs.write_all(b"y").unwrap();
        poller.wait(soon()).unwrap();
        assert_eq!(tokens(&poller), [7]);
        deregister(poller.registry(), &ours).unwrap();
    }

    #[test]
    fn an_end_of_stream_is_reported_with_the_bytes_before_it() {
        let (mut poller, _waker) = Poller::new(8).unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        register(poller.registry(), &ours, 7).unwrap();
        theirs.write_all(b"x").unwrap();
        poller.wait(soon()).unwrap();
        assert_eq!(
            poller.ready().collect::<Vec<_>>(),
            [Readiness {
                token: 7,
                closed: false
            }]
        );
        // A last request and the end together: one event says both.
        theirs.write_all(b"y").unwrap();
        theirs.shutdown(std::net::Shutdown::Write).unwrap();
        poller.wait(soon()).unwrap();
        assert_eq!(
            poller.ready().collect::<Vec<_>>(),
            [Readiness {
                token: 7,
                closed: true
            }]
        );
        deregister(poller.registry(), &ours).unwrap();
    }
}
