//! Draining: a server that stops accepting but serves the connections it
//! has until their clients are done with them, up to a limit; and, when a
//! restart drains it, moves the connections that can move to the new
//! process ([`Destination`]), which takes them in ([`Adopter`]).
//!
//! The serving modes differ only in what they do when the drain begins
//! (their [`DrainHook`]): a parked server hands its idle connections over;
//! the others keep serving theirs on their threads. What they share is
//! here: the listener closes at once, and the server stops as a
//! `shutdown` stops it (grace period included) once its last connection
//! is gone, or at the limit.

use std::io;
use std::os::fd::BorrowedFd;
#[cfg(feature = "restart")]
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// What travels with a connection a restart moves, besides its socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MovedConnection {
    /// Bytes the old process read ahead beyond the last request.
    pub(crate) unread: Vec<u8>,
    /// More bytes may wait in the socket that no readiness event will
    /// announce: read before waiting.
    pub(crate) maybe_more: bool,
    /// The PROXY header the connection came with, in its wire format
    /// (feature `proxy-protocol`).
    pub(crate) proxy_header: Option<Vec<u8>>,
    /// The handler's state, as its `save_state` wrote it.
    pub(crate) state: Vec<u8>,
    /// When it left the old process's poller, on the system's monotonic
    /// clock (in nanoseconds): the new process tells how long it was
    /// in transit.
    pub(crate) left_at: u64,
}

/// Where a draining server's movable connections go: the new process of
/// a restart.
pub(crate) trait Destination: Send + Sync {
    /// Hands the connection on `socket` over, with what goes with it.
    /// `Ok` once it is the other process's; on an error it is still this
    /// one's.
    fn send(&self, socket: BorrowedFd<'_>, moved: &MovedConnection) -> io::Result<()>;

    /// Says where it goes, for the logs ("process 1234").
    fn describe(&self) -> &str;
}

/// A server that can take in connections another process moved to it.
#[cfg(feature = "restart")]
pub(crate) trait Adopter: Send + Sync {
    /// Serves the connection on `socket` from now on, as it was left.
    fn adopt(&self, socket: OwnedFd, moved: MovedConnection) -> io::Result<()>;
}

/// What a serving mode does when draining begins, given where movable
/// connections go (if anywhere).
pub(crate) type DrainHook = Box<dyn FnOnce(Option<Arc<dyn Destination>>) + Send>;
