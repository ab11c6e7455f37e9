//! The listening socket of a stream server, and taking connections from it.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::Registry;
use parking_lot::Mutex;

use super::connection::Accepted;
use crate::control::Control;
use crate::server::backoff::{AcceptFailure, Backoff, classify};
use crate::socket::SocketFile;
use crate::sys::poller;
use crate::transport::Listener;

/// The poller token of the listening socket.
pub(crate) const LISTENER: usize = 0;

/// The listening socket (and a Unix socket's file), shared by the loop and
/// the shutdown hook that closes it the moment shutdown is requested: a
/// serial loop may then be busy in a handler for the whole grace period,
/// and clients must be refused meanwhile, not left in the backlog. The
/// socket is only closed, never shut down: another process may share it
/// (a restart hand-over), and must go on accepting.
pub(crate) struct ListenerSlot<L> {
    open: Mutex<Option<(L, Option<SocketFile>)>>,
    registry: Registry,
}

impl<L: Listener> ListenerSlot<L> {
    /// Registers `listener` with the loop's poller and shares it.
    pub(crate) fn new(listener: L, file: Option<SocketFile>, registry: &Registry) -> io::Result<Arc<Self>> {
        listener.set_nonblocking(true)?;
        poller::register(registry, &listener, LISTENER)?;
        Ok(Arc::new(ListenerSlot {
            open: Mutex::new(Some((listener, file))),
            registry: registry.try_clone()?,
        }))
    }

    /// Closes the listener (out of the poller first) and removes its
    /// socket file. Idempotent.
    pub(crate) fn close(&self) {
        if let Some((listener, file)) = self.open.lock().take() {
            if let Err(e) = poller::deregister(&self.registry, &listener) {
                log::debug!("cannot take the listener out of the poller: {e}");
            }
            drop(listener);
            drop(file);
        }
    }

    /// Accepts one connection: `None` when there is none to take now (or
    /// the listener is closed). Resource exhaustion (out of descriptors,
    /// say) is recorded in `backoff`, which sets when to try again.
    pub(crate) fn accept(
        &self,
        control: &Control,
        backoff: &mut Backoff,
        retry_at: &mut Option<Instant>,
    ) -> io::Result<Option<Accepted<L>>> {
        loop {
            let accepted = match self.open.lock().as_ref() {
                Some((listener, _)) => listener.accept_blocking_stream(),
                None => return Ok(None),
            };
            match accepted {
                Ok(accepted) => {
                    backoff.succeeded("accept");
                    return Ok(Some(accepted));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => match classify(&e) {
                    AcceptFailure::Transient => {
                        control.counters.receive_errors.bump();
                        log::debug!("accept failed for one connection: {e}");
                    }
                    AcceptFailure::Exhausted => {
                        // The listener stays readable: wait before trying
                        // again rather than spin.
                        *retry_at = Some(Instant::now() + backoff.record(control, "accept", &e));
                        return Ok(None);
                    }
                    AcceptFailure::Fatal => {
                        control.counters.receive_errors.bump();
                        return Err(e);
                    }
                },
            }
        }
    }
}
