//! Every open connection of a parked server, with its deadline.
//!
//! A connection is either parked (waiting for its next request, owned by
//! the table) or busy (a worker or the job queue has it; the table keeps
//! only its socket, to cut it off at a deadline or a forced close). The
//! table is shared by the poller's holder, the workers and the monitor
//! behind one lock, held for a few pointer moves at a time.
//!
//! The poller reports readiness edge-triggered, and a busy connection's
//! edges are not lost: one that arrives while a worker has the connection
//! is remembered (`missed`), and parking it then queues it again at once;
//! so is an end of stream that came with the request being served.
//! So a worker never re-arms the poller, and a request costs no poller
//! call at all.
//!
//! Each entry's index and generation make its poller token, so an event
//! meant for a connection that has since closed can never reach another
//! that took its place.

use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use socket2::SockRef;

use super::wheel::{Clock, Tick, Wheel};
use crate::control::Control;
use crate::request::Detached;
use crate::server::stream::listener::LISTENER;
use crate::transport::Listener;

/// Where a connection is in its life: its handler state `S` exists once
/// the connection is open.
pub(crate) enum Phase<S> {
    /// Its TLS handshake is under way: not verified, not opened.
    Handshaking,
    /// Opened by the handler, which made its state: on the heap, as a
    /// handler's state may be large and a connection moves between the
    /// table, the queue and the workers' stacks.
    Open(Box<S>),
}

/// A connection between two requests (parked, or queued for a worker):
/// the one value a parked server keeps of it, as hyper's `Conn` is.
pub(crate) struct Conn<L: Listener, S> {
    pub(crate) key: Key,
    /// The socket, its peer and layers, and what was read ahead.
    pub(crate) link: Detached<L::Stream>,
    pub(crate) phase: Phase<S>,
    /// When it was accepted, if its end is to be logged.
    pub(crate) opened: Option<Instant>,
    /// Whether its socket is in the poller already.
    pub(crate) registered: bool,
}

/// Where a connection is.
enum Place<L: Listener, S> {
    Free,
    Parked(Conn<L, S>),
    /// A worker (or the job queue) has it. The socket is kept to shut it at
    /// a deadline (`cut_off` says that happened); `missed` records a
    /// readiness event that came meanwhile; `ended`, that an event said
    /// the client closed its end (no edge follows that one: every parking
    /// queues it again, until a worker reads up to the end and closes it).
    Busy {
        socket: Arc<L::Stream>,
        cut_off: bool,
        missed: bool,
        ended: bool,
    },
}

impl<L: Listener, S> Place<L, S> {
    /// The parked connection, taken out (the place left free); `None`,
    /// the place unchanged, if none is parked here.
    fn take_parked(&mut self) -> Option<Conn<L, S>> {
        match std::mem::replace(self, Place::Free) {
            Place::Parked(conn) => Some(conn),
            other => {
                *self = other;
                None
            }
        }
    }
}

struct Entry<L: Listener, S> {
    generation: u32,
    place: Place<L, S>,
}

/// A connection's identity in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    /// The poller token: never the listener's.
    pub(crate) fn token(self) -> usize {
        ((self.generation as usize) << 32) | (self.index as usize + 1)
    }

    pub(crate) fn from_token(token: usize) -> Option<Key> {
        let index = (token & 0xffff_ffff).checked_sub(1)?;
        (token != LISTENER).then_some(Key {
            index: index as u32,
            generation: (token >> 32) as u32,
        })
    }
}

/// What a deadline found.
pub(crate) enum Expired<L: Listener, S> {
    /// A parked connection idle too long, out of the table: the caller
    /// closes it.
    Idle(Conn<L, S>),
    /// A request not finished in time: its socket was shut; the worker
    /// serving it closes it.
    CutOff,
}

/// What became of a connection handed back after a request.
pub(crate) enum Parking<L: Listener, S> {
    /// It waits for its next request; `register` it with the poller if it
    /// is not yet.
    Parked,
    /// Bytes came while it was busy: it is busy again, to be queued.
    Ready(Conn<L, S>),
    /// A deadline cut it off meanwhile (or the table let it go): close it.
    Closing(Conn<L, S>),
}

/// The table.
pub(crate) struct Table<L: Listener, S> {
    entries: Vec<Entry<L, S>>,
    free: Vec<u32>,
    wheel: Wheel,
    parked: usize,
    /// The server's count of parked connections, kept equal to `parked`
    /// here, where it changes.
    control: Arc<Control>,
    /// The server is stopping: nothing is parked any more.
    drained: bool,
}

impl<L: Listener, S> Table<L, S> {
    pub(crate) fn new(clock: Clock, control: Arc<Control>) -> Self {
        Table {
            entries: Vec::new(),
            free: Vec::new(),
            wheel: Wheel::new(clock),
            parked: 0,
            control,
            drained: false,
        }
    }

    /// Sets the number of parked connections, here and in the server's
    /// stats.
    fn set_parked(&mut self, parked: usize) {
        self.parked = parked;
        self.control.counters.parked.set(parked as u64);
    }

    fn entry(&mut self, key: Key) -> Option<&mut Entry<L, S>> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|entry| entry.generation == key.generation)
    }

    /// Busy; with an event missed already, and the client's end seen
    /// closed, if `ended`.
    fn busy(socket: Arc<L::Stream>, ended: bool) -> Place<L, S> {
        Place::Busy {
            socket,
            cut_off: false,
            missed: ended,
            ended,
        }
    }

    /// Records a new connection, busy (about to be opened by a worker)
    /// until `deadline`.
    pub(crate) fn insert(&mut self, socket: Arc<L::Stream>, deadline: Tick) -> Key {
        let place = Self::busy(socket, false);
        let index = match self.free.pop() {
            Some(index) => {
                let entry = &mut self.entries[index as usize];
                entry.generation = entry.generation.wrapping_add(1);
                entry.place = place;
                index
            }
            None => {
                self.entries.push(Entry { generation: 0, place });
                (self.entries.len() - 1) as u32
            }
        };
        self.wheel.set(index, deadline);
        Key {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// A readiness event for `key`: takes the connection for a worker if it
    /// is parked (busy until `deadline`); remembers the event if it is
    /// busy. `None` unless it was parked.
    ///
    /// An event that says the client closed its end (`closed`) is its
    /// last, and the worker may read only the request that came before
    /// the end (or one of several): the connection is queued again each
    /// time it is parked, until a worker reads the end and closes it.
    pub(crate) fn take_ready(&mut self, key: Key, deadline: Tick, closed: bool) -> Option<Conn<L, S>> {
        let entry = self.entry(key)?;
        if let Place::Busy { missed, ended, .. } = &mut entry.place {
            *missed = true;
            *ended |= closed;
            return None;
        }
        let conn = entry.place.take_parked()?;
        entry.place = Self::busy(Arc::clone(&conn.link.stream), closed);
        self.set_parked(self.parked - 1);
        self.wheel.set(key.index, deadline);
        Some(conn)
    }

    /// Takes every parked connection `wanted` picks for a worker, as if
    /// each had a readiness event (busy until `deadline`), into `into`.
    pub(crate) fn take_parked_if(
        &mut self,
        mut wanted: impl FnMut(&Conn<L, S>) -> bool,
        deadline: Tick,
        into: &mut Vec<Conn<L, S>>,
    ) {
        for index in 0..self.entries.len() {
            let entry = &mut self.entries[index];
            if !matches!(&entry.place, Place::Parked(conn) if wanted(conn)) {
                continue;
            }
            let Some(conn) = entry.place.take_parked() else {
                continue;
            };
            entry.place = Self::busy(Arc::clone(&conn.link.stream), false);
            self.set_parked(self.parked - 1);
            self.wheel.set(index as u32, deadline);
            into.push(conn);
        }
    }

    /// Hands back a busy connection after a request: parked until
    /// `idle_until`, or busy again until `busy_until` if bytes came
    /// meanwhile; closing once the server has drained the table.
    pub(crate) fn park(&mut self, conn: Conn<L, S>, idle_until: Tick, busy_until: Tick) -> Parking<L, S> {
        let key = conn.key;
        if self.drained {
            return Parking::Closing(conn);
        }
        let Some(entry) = self.entry(key) else {
            return Parking::Closing(conn);
        };
        match &mut entry.place {
            Place::Busy {
                cut_off: false,
                missed,
                ended,
                ..
            } => {
                if std::mem::take(missed) || *ended {
                    self.wheel.set(key.index, busy_until);
                    return Parking::Ready(conn);
                }
            }
            _ => return Parking::Closing(conn),
        }
        entry.place = Place::Parked(conn);
        self.set_parked(self.parked + 1);
        self.wheel.set(key.index, idle_until);
        Parking::Parked
    }

    /// A busy connection starts another request (one it had read ahead):
    /// busy until `deadline`, or with no deadline at all (`None`: a
    /// looping handler's conversation). False if it must close instead.
    pub(crate) fn renew(&mut self, key: Key, deadline: Option<Tick>) -> bool {
        if self.missed_of_live(key).is_none() {
            return false;
        }
        match deadline {
            Some(deadline) => self.wheel.set(key.index, deadline),
            None => self.wheel.clear(key.index),
        }
        true
    }

    /// A busy connection's worker reads its socket again, for a request
    /// that may have come: busy until `deadline`, and the events missed
    /// so far forgotten, as they were for bytes that read will find (an
    /// event that comes after is remembered again; an end seen is not
    /// forgotten). False if it must close instead.
    pub(crate) fn reading_again(&mut self, key: Key, deadline: Tick) -> bool {
        let Some(missed) = self.missed_of_live(key) else {
            return false;
        };
        *missed = false;
        self.wheel.set(key.index, deadline);
        true
    }

    /// The `missed` flag of `key`'s connection if it is busy and not cut
    /// off, the one state in which a request may start; `None` otherwise.
    fn missed_of_live(&mut self, key: Key) -> Option<&mut bool> {
        match &mut self.entry(key)?.place {
            Place::Busy {
                cut_off: false,
                missed,
                ..
            } => Some(missed),
            _ => None,
        }
    }

    /// Forgets a connection that is closing (whatever its place).
    pub(crate) fn remove(&mut self, key: Key) {
        let Some(entry) = self.entry(key) else { return };
        match std::mem::replace(&mut entry.place, Place::Free) {
            Place::Free => return,
            Place::Parked(_) => self.set_parked(self.parked - 1),
            Place::Busy { .. } => {}
        }
        self.wheel.clear(key.index);
        self.free.push(key.index);
    }

    /// True if a deadline cut the connection's request off.
    pub(crate) fn is_cut_off(&mut self, key: Key) -> bool {
        self.entry(key)
            .is_some_and(|entry| matches!(entry.place, Place::Busy { cut_off: true, .. }))
    }

    /// Handles the deadlines passed by `now`: idle parked connections are
    /// taken out (for the caller to close), requests over time are cut off.
    pub(crate) fn expire(&mut self, now: Instant, scratch: &mut Vec<u32>, into: &mut Vec<Expired<L, S>>) {
        scratch.clear();
        self.wheel.expire(now, scratch);
        for &index in scratch.iter() {
            let entry = &mut self.entries[index as usize];
            if let Place::Busy { socket, cut_off, .. } = &mut entry.place {
                // Wakes the worker blocked on it; the worker closes it.
                let _ = SockRef::from(&**socket).shutdown(Shutdown::Both);
                *cut_off = true;
                into.push(Expired::CutOff);
            } else if let Some(conn) = entry.place.take_parked() {
                self.set_parked(self.parked - 1);
                self.free.push(index);
                into.push(Expired::Idle(conn));
            }
        }
    }

    /// When the next deadline may fall due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Takes every parked connection out, for shutdown; from now on none
    /// is parked again (see [`park`](Self::park)).
    pub(crate) fn drain_idle(&mut self) -> Vec<Conn<L, S>> {
        self.drained = true;
        let mut idle = Vec::with_capacity(self.parked);
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if let Some(conn) = entry.place.take_parked() {
                self.wheel.clear(index as u32);
                self.free.push(index as u32);
                idle.push(conn);
            }
        }
        self.set_parked(0);
        idle
    }

    /// Shuts every busy connection's socket, its reading or all of it (see
    /// [`shut`](crate::server::connections::shut)): the forced close at
    /// the end of the grace period.
    pub(crate) fn shut_busy(&mut self, how: Shutdown) {
        for entry in &mut self.entries {
            if let Place::Busy { socket, cut_off, .. } = &mut entry.place {
                let _ = SockRef::from(&**socket).shutdown(how);
                *cut_off = true;
            }
        }
    }
}
