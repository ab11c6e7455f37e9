//! Taking in the connections a restart moves here from the old process
//! (see `moving` for the old process's side).
//!
//! Each one becomes a busy connection queued for a worker, which serves
//! what was read ahead or is waiting in the socket, or else parks it: from
//! its next request on it is served as if it had been accepted here.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::intake::Job;
use super::table::{Conn, Phase};
use super::{Life, Shared};
use crate::control::drain::{Adopter, MovedConnection};
use crate::handler::catch;
use crate::request::Detached;
use crate::server::lifecycle;
use crate::server::stream::connection::{apply, log_opened};
use crate::transport::{Connection, Listener};

impl<L: Listener, F: Life<L>> Adopter for Shared<L, F> {
    fn adopt(&self, socket: OwnedFd, moved: MovedConnection) -> io::Result<()> {
        let (stream, peer) = L::Stream::from_moved(socket)?;
        if let Err(e) = apply(&self.service.options, &stream) {
            log::debug!("cannot set the options of the connection from {peer:?} taken over: {e}");
        }
        let life = &*self.service.life;
        let state = match catch(|| life.restore(&moved.state)) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("restore_state failed for the connection from {peer:?}: {e}"),
                ));
            }
            Err(panicked) => {
                return Err(io::Error::other(format!(
                    "restore_state panicked for the connection from {peer:?}: {panicked}"
                )));
            }
        };
        let stream = Arc::new(stream);
        let link = match Detached::moved(
            Arc::clone(&stream),
            peer.clone(),
            moved.unread,
            moved.maybe_more,
            moved.proxy_header.as_deref(),
        ) {
            Ok(link) => link,
            Err(e) => {
                lifecycle::close(life, state, &self.control().counters);
                return Err(e);
            }
        };
        let opened = log_opened(&link.peer);
        let control = self.control();
        control.counters.adopted.bump();
        control.counters.active.up();
        let key = self.table.lock().insert(stream, self.busy_from_now());
        // A worker serves what it has sent, or parks it.
        self.push_all([Job::Ready(Conn {
            key,
            link,
            phase: Phase::Open(Box::new(state)),
            opened,
            registered: false,
        })]);
        Ok(())
    }
}
