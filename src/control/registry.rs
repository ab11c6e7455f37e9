//! Tracking the sockets in use, so shutdown can force them closed.
//!
//! Each thread that serves requests (a pool worker, or the serial loop)
//! owns one [`Slot`], registered once for the thread's life. Serving a
//! connection puts a shared reference to its socket in the slot and takes
//! it out before the connection closes. The slot holds the socket itself,
//! not a descriptor number, so a forced close always shuts that very
//! socket and can never hit a number the OS has since given to another.
//! That is one uncontended lock per connection and none per request within
//! it.
//!
//! A thread that waits for the next request of a per-request handler
//! marks its slot idle meanwhile (two atomic stores per request): when
//! shutdown begins, idle sockets are shut for reading at once, so the
//! wait ends and the connection closes without waiting out the grace
//! period, while busy ones finish their request.

use std::collections::HashMap;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socket2::SockRef;

/// A socket that can be shut from another thread.
pub(crate) type SharedSocket = Arc<dyn AsFd + Send + Sync>;

/// The socket a thread is serving, if any, and whether the thread is
/// waiting for its next request.
#[derive(Default)]
struct Slot {
    socket: Mutex<Option<SharedSocket>>,
    idle: AtomicBool,
}

impl Slot {
    fn force_close(&self, how: Shutdown) {
        if let Some(socket) = &*self.socket.lock() {
            shut(socket, how);
        }
    }

    /// Shuts the socket's reading side if the thread waits between
    /// requests: its read returns end-of-file (after any bytes that had
    /// already arrived), and the thread closes the connection.
    fn close_if_idle(&self) {
        if self.idle.load(Ordering::SeqCst)
            && let Some(socket) = &*self.socket.lock()
        {
            shut(socket, Shutdown::Read);
        }
    }
}

/// Shuts the socket's reading (`Shutdown::Read`), which wakes a thread
/// blocked reading it to an end of stream and leaves it free to write
/// (TLS's close_notify) and close the socket itself; or both directions,
/// which also wakes a thread blocked writing, with an error, and ends the
/// connection for the peer at once.
pub(crate) fn shut(socket: &impl AsFd, how: Shutdown) {
    match SockRef::from(socket).shutdown(how) {
        Ok(()) => {}
        // Already disconnected by the peer.
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {}
        Err(e) => log::warn!("cannot force-close a connection: {e}"),
    }
}

/// How long, once a forced close has shut the reading of the connections
/// still served, their handlers have to return and close them themselves
/// before the rest of each connection is shut. A handler blocked reading
/// returns at once; the wait only bounds one that goes on writing, or is
/// stuck elsewhere.
const OWN_CLOSE_WAIT: Duration = Duration::from_millis(100);

/// A forced close in two steps, so that every connection whose handler is
/// blocked reading closes as at any other time, TLS's close_notify
/// included: `force(Shutdown::Read)` wakes such handlers to an end of
/// stream; then, unless `finished_by(deadline)` reports that the handlers
/// have all returned within [`OWN_CLOSE_WAIT`], `force(Shutdown::Both)`
/// cuts off the rest (a handler blocked writing, or stuck elsewhere, whose
/// client must not wait for it). True if the handlers returned.
pub(crate) fn force_close(
    mut force: impl FnMut(Shutdown),
    finished_by: impl FnOnce(Instant) -> bool,
) -> bool {
    force(Shutdown::Read);
    if finished_by(Instant::now() + OWN_CLOSE_WAIT) {
        return true;
    }
    force(Shutdown::Both);
    false
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
    /// Set when shutdown begins: no thread waits for a new request.
    closing_idle: AtomicBool,
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

    /// Shuts every socket in use (see [`shut`] for what `how` does), and
    /// from now on, whole, the sockets slots take later (a worker picking
    /// up a queued connection). A forced close shuts the reading first, so
    /// that handlers blocked reading close their connections themselves,
    /// then everything, for the handlers that did not.
    pub(crate) fn force_close_all(&self, how: Shutdown) {
        self.closing.store(true, Ordering::Release);
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        for slot in slots {
            slot.force_close(how);
        }
    }

    /// Closes the connections waiting between two requests, now and from
    /// now on (a thread about to wait sees the flag instead): shutdown has
    /// begun.
    pub(crate) fn close_idle(&self) {
        // SeqCst here and in `SlotHandle::idle`: either this sees a slot
        // idle, or that thread sees the flag.
        self.closing_idle.store(true, Ordering::SeqCst);
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        for slot in slots {
            slot.close_if_idle();
        }
    }

    /// True once a forced close has begun.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

/// A thread's registered slot.
pub(crate) struct SlotHandle {
    registry: Arc<Registry>,
    id: u64,
    slot: Arc<Slot>,
}

impl SlotHandle {
    /// Records `socket` as in use until the guard drops.
    pub(crate) fn hold(&self, socket: SharedSocket) -> InUse<'_> {
        let mut held = self.slot.socket.lock();
        // Read under the slot's lock: a forced close sets the flag before
        // it visits the slots, so either it sees this socket or this sees
        // the flag.
        if self.registry.is_closing() {
            shut(&socket, Shutdown::Both);
        }
        *held = Some(socket);
        InUse { slot: &self.slot }
    }
}

impl SlotHandle {
    /// Marks the thread as waiting for the held connection's next
    /// request, until the guard drops; `None` once shutdown has begun
    /// (close the connection instead of waiting).
    pub(crate) fn idle(&self) -> Option<Idle<'_>> {
        self.slot.idle.store(true, Ordering::SeqCst);
        if self.registry.closing_idle.load(Ordering::SeqCst) {
            self.slot.idle.store(false, Ordering::Relaxed);
            return None;
        }
        Some(Idle { slot: &self.slot })
    }
}

/// A thread waiting for a request; see [`SlotHandle::idle`].
pub(crate) struct Idle<'a> {
    slot: &'a Slot,
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.slot.idle.store(false, Ordering::Release);
    }
}

impl Drop for SlotHandle {
    fn drop(&mut self) {
        if !self.registry.is_closing() {
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
        self.slot.socket.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::thread;
    use std::time::Duration;

    fn shared(stream: &Arc<UnixStream>) -> SharedSocket {
        Arc::clone(stream) as SharedSocket
    }

    #[test]
    fn force_close_wakes_a_blocked_reader() {
        let registry = Arc::new(Registry::default());
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ours = Arc::new(ours);
        let (started_tx, started) = crossbeam_channel::bounded(0);
        let reader = {
            let (registry, ours) = (Arc::clone(&registry), Arc::clone(&ours));
            thread::spawn(move || {
                let slot = registry.slot();
                let _in_use = slot.hold(shared(&ours));
                started_tx.send(()).unwrap();
                let mut buf = [0u8; 1];
                // Blocks until the forced close (or the 10 s timeout).
                (&*ours).read(&mut buf)
            })
        };
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // The reader is blocked in read, or about to be: either way the
        // shutdown ends it with end-of-file, long before its timeout.
        registry.force_close_all(Shutdown::Read);
        let read = reader.join().unwrap();
        assert_eq!(read.unwrap(), 0, "a forced close reads as end-of-file");
    }

    #[test]
    fn a_forced_close_of_the_reading_leaves_the_socket_writable() {
        use std::io::Write;
        let registry = Arc::new(Registry::default());
        let slot = registry.slot();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        theirs.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ours = Arc::new(ours);
        let in_use = slot.hold(shared(&ours));
        registry.force_close_all(Shutdown::Read);
        let mut buf = [0u8; 3];
        assert_eq!((&*ours).read(&mut buf).unwrap(), 0);
        // The owner still says goodbye (a TLS close_notify), then closes.
        (&*ours).write_all(b"bye").unwrap();
        drop(in_use);
        drop(ours);
        theirs.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"bye");
    }

    #[test]
    fn a_socket_taken_after_force_close_is_shut_at_once() {
        let registry = Arc::new(Registry::default());
        let slot = registry.slot();
        registry.force_close_all(Shutdown::Read);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        theirs.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ours = Arc::new(ours);
        let _in_use = slot.hold(shared(&ours));
        let mut buf = [0u8; 1];
        assert_eq!((&*ours).read(&mut buf).unwrap(), 0);
        // Whole: the peer sees the end too, though the socket is open.
        assert_eq!(theirs.read(&mut buf).unwrap(), 0);
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
