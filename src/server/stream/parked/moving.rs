//! Moving connections to another process, and taking them in: how a
//! restart cuts no parked connection.
//!
//! When a restart drains the old process, its parked connections are
//! queued as if each had a request, and the worker that takes one finds
//! nothing to read and hands it over instead of parking it again; a
//! connection busy then is handed over once its request is answered.
//! What moves: the socket, the bytes read ahead, the PROXY header it came
//! with, and the handler's state as `save_state` wrote it. What stays,
//! served here until its client closes it: TLS connections (their keys
//! cannot leave the process), connections still in their handshake, and
//! those whose handler cannot write its state down.
//!
//! The new process's side is in `adopt`.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::intake::Job;
use super::table::{Conn, Phase};
use super::{Life, Shared};
use crate::control::drain::{Destination, MovedConnection};
use crate::handler::catch;
use crate::sys::poller;
use crate::transport::Listener;

impl<L: Listener, F: Life<L>> Shared<L, F> {
    /// A restart drains the server: from now on connections that can move
    /// go to `destination` between two requests, starting with those
    /// parked now.
    pub(super) fn start_moving(&self, destination: Arc<dyn Destination>) {
        if self.destination.set(destination).is_err() {
            return;
        }
        self.moving.store(true, Ordering::Release);
        let busy_until = self.busy_from_now();
        let mut parked = Vec::new();
        self.table
            .lock()
            .take_parked_if(|conn| may_move(conn), busy_until, &mut parked);
        log::debug!("handing {} parked connection(s) over", parked.len());
        self.push_all(parked.into_iter().map(Job::Ready));
    }

    /// Whether connections are to move now.
    pub(super) fn is_moving(&self) -> bool {
        self.moving.load(Ordering::Acquire)
    }

    /// Hands `conn`, between two requests, over to the new process; gives
    /// it back if it cannot move, or the hand-over failed (it stays here).
    pub(super) fn hand_over(&self, mut conn: Conn<L, F::State>) -> Result<(), Conn<L, F::State>> {
        let Some(destination) = self.destination.get() else {
            return Err(conn);
        };
        if !may_move(&conn) {
            return Err(conn);
        }
        let Phase::Open(state) = &conn.phase else {
            return Err(conn);
        };
        let life = &*self.service.life;
        let peer = conn.link.peer.clone();
        let state = match catch(|| life.save(state)) {
            Ok(Some(state)) => state,
            Ok(None) => return Err(conn),
            Err(panicked) => {
                log::error!(
                    "save_state panicked for the connection from {peer:?} ({panicked}); it stays here"
                );
                return Err(conn);
            }
        };
        let proxy_header = match conn.link.proxy_header_bytes() {
            Ok(header) => header,
            Err(e) => {
                log::debug!("the connection from {peer:?} stays here: its PROXY header cannot travel: {e}");
                return Err(conn);
            }
        };
        let moved = MovedConnection {
            unread: std::mem::take(&mut conn.link.unread),
            maybe_more: conn.link.maybe_more,
            proxy_header,
            state,
            left_at: left_at(),
        };
        // Out of this process's poller first: the socket lives on in the
        // other process, and so would its registration here.
        if conn.registered {
            if let Err(e) = poller::deregister(self.poller.registry(), &*conn.link.stream) {
                log::warn!("cannot take the connection from {peer:?} out of the poller ({e}); it stays here");
                conn.link.unread = moved.unread;
                return Err(conn);
            }
            conn.registered = false;
        }
        if let Err(e) = destination.send(conn.link.stream.as_fd(), &moved) {
            conn.link.unread = moved.unread;
            if e.kind() == io::ErrorKind::InvalidInput {
                log::debug!("the connection from {peer:?} stays here: {e}");
                return Err(conn);
            }
            log::warn!(
                "cannot hand the connection from {peer:?} over to {} ({e}); it stays here, and so do the others",
                destination.describe()
            );
            // The other process is gone or stuck: what has not moved
            // stays.
            self.moving.store(false, Ordering::Release);
            return Err(conn);
        }
        self.table.lock().remove(conn.key);
        log::debug!(
            "connection from {peer:?} handed over to {}",
            destination.describe()
        );
        self.control().counters.handed_over.bump();
        // The state lives on in the other process: no `close` here. The
        // socket closes here only: the other process holds it open.
        drop(conn);
        self.finished();
        Ok(())
    }
}

/// Now, for a connection leaving (timed across processes with `restart`).
fn left_at() -> u64 {
    #[cfg(feature = "restart")]
    return crate::sys::monotonic_nanos();
    #[cfg(not(feature = "restart"))]
    0
}

/// Whether a connection could move: open, and without TLS.
pub(super) fn may_move<L: Listener, S>(conn: &Conn<L, S>) -> bool {
    matches!(conn.phase, Phase::Open(_)) && conn.link.can_move()
}
