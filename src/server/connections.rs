//! Tracking the sockets in use, so shutdown can force them closed.
//!
//! Each thread that serves requests (a pool worker, or the serial loop) owns
//! one [`Slot`], registered once for the thread's life. Serving a connection
//! stores its descriptor in the slot and clears it before the socket is
//! closed; both happen under the slot's lock, as does a forced close, so a
//! forced close can never hit a descriptor number that has been reused.
//! That is one uncontended lock per connection and none per request within
//! it.

use std::collections::HashMap;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use socket2::SockRef;

/// The descriptor of the socket a thread is serving, if any.
#[derive(Default)]
struct Slot(Mutex<Option<RawFd>>);

impl Slot {
    fn force_close(&self) {
        let fd = self.0.lock();
        if let Some(fd) = *fd {
            // SAFETY: the descriptor is open: it is cleared from the slot,
            // under this lock, before its socket is closed.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            shut(fd);
        }
    }
}

/// Shuts both directions, which wakes any thread blocked reading or
/// writing the socket; the owner then sees end-of-file or an error.
fn shut(fd: BorrowedFd<'_>) {
    match SockRef::from(&fd).shutdown(Shutdown::Both) {
        Ok(()) => {}
        // Already disconnected by the peer.
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {}
        Err(e) => log::warn!("cannot force-close a connection: {e}"),
    }
}

/// All the slots of one server.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
    /// Set by a forced close. A socket a slot takes after it is shut at
    /// once. And the registry is not used after it, so the workers then
    /// exiting all at once skip unregistering: otherwise a thousand of
    /// them queue on one lock, in a shutdown that is meant to be quick.
    closing: AtomicBool,
}

impl Registry {
    /// Registers a slot for the calling thread; it unregisters on drop.
    pub(crate) fn slot(self: &Arc<Self>) -> SlotHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        self.slots.lock().insert(id, Arc::clone(&slot));
        SlotHandle {
            registry: Arc::clone(self),
            id,
            slot,
        }
    }

    /// Shuts every socket in use, now and (for slots that take one later,
    /// such as a worker picking up a queued connection) from now on.
    pub(crate) fn force_close_all(&self) {
        self.closing.store(true, Ordering::Release);
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        for slot in slots {
            slot.force_close();
        }
    }
}

/// A thread's registered slot.
pub(crate) struct SlotHandle {
    registry: Arc<Registry>,
    id: u64,
    slot: Arc<Slot>,
}

impl SlotHandle {
    /// Records `socket` as in use until the guard drops. Drop the guard
    /// before closing the socket.
    pub(crate) fn hold<'a>(&'a self, socket: &impl AsFd) -> InUse<'a> {
        let fd = socket.as_fd();
        let mut held = self.slot.0.lock();
        // Read under the slot's lock: a forced close sets the flag before
        // it visits the slots, so either it sees this descriptor or this
        // sees the flag.
        if self.registry.closing.load(Ordering::Acquire) {
            shut(fd);
        }
        *held = Some(fd.as_raw_fd());
        InUse { slot: &self.slot }
    }
}

impl Drop for SlotHandle {
    fn drop(&mut self) {
        if !self.registry.closing.load(Ordering::Acquire) {
            self.registry.slots.lock().remove(&self.id);
        }
    }
}

/// A socket recorded in a slot; clears the slot on drop.
pub(crate) struct InUse<'a> {
    slot: &'a Slot,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        *self.slot.0.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn force_close_wakes_a_blocked_reader() {
        let registry = Arc::new(Registry::default());
        let (mut ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let slot = registry.slot();
        let in_use = slot.hold(&ours);
        registry.force_close_all();
        let mut buf = [0u8; 1];
        assert_eq!(
            ours.read(&mut buf).unwrap(),
            0,
            "a forced close reads as end-of-file"
        );
        drop(in_use);
    }

    #[test]
    fn a_socket_taken_after_force_close_is_shut_at_once() {
        let registry = Arc::new(Registry::default());
        let slot = registry.slot();
        registry.force_close_all();
        let (mut ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let _in_use = slot.hold(&ours);
        let mut buf = [0u8; 1];
        assert_eq!(ours.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn slots_unregister_on_drop() {
        let registry = Arc::new(Registry::default());
        let a = registry.slot();
        let b = registry.slot();
        assert_eq!(registry.slots.lock().len(), 2);
        drop(a);
        drop(b);
        assert!(registry.slots.lock().is_empty());
    }
}
