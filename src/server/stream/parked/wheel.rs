//! Deadlines for many connections at no cost per connection: a hashed
//! timing wheel with intrusive lists.
//!
//! Each item (a connection's index in the parked table) has at most one
//! deadline. Setting, moving and clearing one is O(1): the item is linked
//! into the list of the slot its deadline falls in, and unlinked from its
//! old one. Moving a deadline later touches no list at all: the item
//! stays where it is, its new tick noted, and is moved on when its old
//! slot comes round (a connection busy and idle in turn only ever moves
//! its deadline later, so it is relinked about once per timeout, not twice
//! per request). Advancing the wheel visits only the slots whose time has come
//! (found through a bitmap of non-empty slots) and only the items in them.
//! A deadline beyond the wheel's span waits in the farthest slot and is
//! looked at again when that slot comes round.

use std::time::{Duration, Instant};

/// The wheel's resolution: deadlines fire up to this much late (never
/// early).
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Slots in the wheel: with 10 ms ticks, a span of 40.96 s.
const SLOTS: usize = 4096;

const NIL: u32 = u32::MAX;

/// Where an item is linked, and until when.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    /// The slot whose list holds the item; `NIL` when it has no deadline.
    slot: u32,
    /// The tick the deadline falls in.
    due: u64,
    /// The tick the slot holding the item is looked at: `due`, or earlier
    /// when the deadline moved later since, or it lies beyond the span.
    at: u64,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    slot: NIL,
    due: 0,
    at: 0,
};

/// Nanoseconds in a tick.
const TICK_NANOS: u32 = TICK.as_nanos() as u32;

/// A moment at the wheel's resolution: the ticks since its clock's epoch.
pub(crate) type Tick = u64;

/// Turns instants into ticks and back with integer arithmetic: a request
/// reads the time once and adds its timeouts in ticks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new(epoch: Instant) -> Self {
        Clock { epoch }
    }

    /// The tick `at` falls in.
    pub(crate) fn tick_of(&self, at: Instant) -> Tick {
        let since = at.saturating_duration_since(self.epoch);
        // 64-bit arithmetic: a tick divides a second.
        since.as_secs() * u64::from(1_000_000_000 / TICK_NANOS) + u64::from(since.subsec_nanos() / TICK_NANOS)
    }

    /// The tick now falls in.
    pub(crate) fn now(&self) -> Tick {
        self.tick_of(Instant::now())
    }

    /// `duration` in ticks, rounded up: a deadline so far from a tick is
    /// never early.
    pub(crate) fn ticks(duration: Duration) -> u64 {
        let nanos = duration.as_nanos().div_ceil(u128::from(TICK_NANOS));
        u64::try_from(nanos).unwrap_or(u64::MAX / 2)
    }

    /// The start of `tick`.
    fn instant_of(&self, tick: Tick) -> Instant {
        self.epoch + TICK * u32::try_from(tick).unwrap_or(u32::MAX)
    }
}

/// The wheel. Items are numbered from 0, densely (they are table indices).
pub(crate) struct Wheel {
    clock: Clock,
    heads: Vec<u32>,
    /// Bit `i` set: slot `i` holds at least one item.
    occupied: Vec<u64>,
    links: Vec<Link>,
    /// Every tick before this one has been processed.
    next_tick: u64,
}

impl Wheel {
    pub(crate) fn new(clock: Clock) -> Self {
        Wheel {
            clock,
            heads: vec![NIL; SLOTS],
            occupied: vec![0; SLOTS / 64],
            links: Vec::new(),
            next_tick: 0,
        }
    }

    /// Sets `item`'s deadline (the tick it falls in), replacing any it
    /// had. A deadline already past falls due at the next tick.
    pub(crate) fn set(&mut self, item: u32, deadline: Tick) {
        let index = item as usize;
        if index >= self.links.len() {
            self.links.resize(index + 1, UNLINKED);
        }
        // The tick after the deadline's: never early. Never in a slot
        // already processed: those are not looked at again until the wheel
        // comes round.
        let due = (deadline + 1).max(self.next_tick);
        let link = &mut self.links[index];
        if link.slot != NIL && link.at <= due {
            // Later than where it waits: looked at there, and moved on.
            link.due = due;
            return;
        }
        self.unlink(item);
        self.link(item, due);
    }

    /// Removes `item`'s deadline, if it has one.
    pub(crate) fn clear(&mut self, item: u32) {
        if (item as usize) < self.links.len() {
            self.unlink(item);
        }
    }

    fn link(&mut self, item: u32, due: u64) {
        let at = due.min(self.next_tick + SLOTS as u64 - 1);
        let slot = (at % SLOTS as u64) as usize;
        let head = self.heads[slot];
        self.links[item as usize] = Link {
            prev: NIL,
            next: head,
            slot: slot as u32,
            due,
            at,
        };
        if head != NIL {
            self.links[head as usize].prev = item;
        }
        self.heads[slot] = item;
        self.occupied[slot / 64] |= 1 << (slot % 64);
    }

    fn unlink(&mut self, item: u32) {
        let Link { prev, next, slot, .. } = self.links[item as usize];
        if slot == NIL {
            return;
        }
        if prev == NIL {
            self.heads[slot as usize] = next;
            if next == NIL {
                self.occupied[slot as usize / 64] &= !(1 << (slot % 64));
            }
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        self.links[item as usize] = UNLINKED;
    }

    /// Collects into `expired` every item whose deadline has passed by
    /// `now`, clearing their deadlines. Items of a slot whose deadline lies
    /// further on (beyond the span) are moved to their next slot.
    pub(crate) fn expire(&mut self, now: Instant, expired: &mut Vec<u32>) {
        let now_tick = self.clock.tick_of(now);
        while let Some(tick) = self.next_occupied_tick().filter(|&tick| tick <= now_tick) {
            self.next_tick = tick + 1;
            // Take the whole list first: items linked again may land in
            // this very slot (one turn of the wheel later).
            let slot = (tick % SLOTS as u64) as usize;
            let mut item = std::mem::replace(&mut self.heads[slot], NIL);
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            while item != NIL {
                let link = self.links[item as usize];
                self.links[item as usize] = UNLINKED;
                if link.due <= now_tick {
                    expired.push(item);
                } else {
                    self.link(item, link.due);
                }
                item = link.next;
            }
        }
        self.next_tick = self.next_tick.max(now_tick + 1);
    }

    /// The tick of the first occupied slot from `next_tick` on (going round
    /// the wheel once).
    fn next_occupied_tick(&self) -> Option<u64> {
        let start = (self.next_tick % SLOTS as u64) as usize;
        for step in 0..=SLOTS / 64 {
            let word_index = (start / 64 + step) % (SLOTS / 64);
            let mut word = self.occupied[word_index];
            if step == 0 {
                // Only the bits from `start` on.
                word &= !0u64 << (start % 64);
            } else if step == SLOTS / 64 {
                // Back at the first word: the bits before `start`.
                word &= (1u64 << (start % 64)).wrapping_sub(1);
            }
            if word != 0 {
                let slot = word_index * 64 + word.trailing_zeros() as usize;
                let ahead = (slot + SLOTS - start) % SLOTS;
                return Some(self.next_tick + ahead as u64);
            }
        }
        None
    }

    /// When the next deadline may fall due: the start of the first
    /// occupied slot's tick. `None` when no item has a deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_occupied_tick().map(|tick| self.clock.instant_of(tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expire(wheel: &mut Wheel, at: Instant) -> Vec<u32> {
        let mut expired = Vec::new();
        wheel.expire(at, &mut expired);
        expired.sort();
        expired
    }

    #[test]
    fn items_expire_at_their_deadline_and_not_before() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        wheel.set(0, Clock::new(start).tick_of(start + Duration::from_millis(50)));
        wheel.set(1, Clock::new(start).tick_of(start + Duration::from_millis(120)));
        wheel.set(2, Clock::new(start).tick_of(start + Duration::from_millis(50)));
        assert!(expire(&mut wheel, start + Duration::from_millis(30)).is_empty());
        assert_eq!(expire(&mut wheel, start + Duration::from_millis(65)), [0, 2]);
        assert!(expire(&mut wheel, start + Duration::from_millis(100)).is_empty());
        assert_eq!(expire(&mut wheel, start + Duration::from_millis(135)), [1]);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn no_deadline_fires_early_even_within_its_tick() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        // Half-way through a tick: the tick's start is before it.
        let deadline = start + Duration::from_millis(55);
        wheel.set(0, Clock::new(start).tick_of(deadline));
        assert!(wheel.next_deadline().unwrap() >= deadline);
        assert!(expire(&mut wheel, start + Duration::from_millis(50)).is_empty());
        assert!(expire(&mut wheel, deadline).is_empty());
        assert_eq!(expire(&mut wheel, deadline + TICK), [0]);
    }

    #[test]
    fn moving_and_clearing_a_deadline() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        wheel.set(0, Clock::new(start).tick_of(start + Duration::from_millis(50)));
        wheel.set(1, Clock::new(start).tick_of(start + Duration::from_millis(50)));
        wheel.set(0, Clock::new(start).tick_of(start + Duration::from_millis(500)));
        wheel.clear(1);
        assert!(expire(&mut wheel, start + Duration::from_millis(100)).is_empty());
        assert_eq!(expire(&mut wheel, start + Duration::from_millis(520)), [0]);
    }

    #[test]
    fn deadlines_beyond_the_span_wait_their_turn() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        let far = start + Duration::from_secs(100);
        wheel.set(7, Clock::new(start).tick_of(far));
        let mut now = start;
        // Advance in big steps, as an idle loop would.
        while now < far - Duration::from_secs(1) {
            now += Duration::from_secs(7);
            assert!(
                expire(&mut wheel, now.min(far - Duration::from_millis(20))).is_empty(),
                "{now:?}"
            );
        }
        assert_eq!(expire(&mut wheel, far + Duration::from_millis(15)), [7]);
    }

    #[test]
    fn next_deadline_points_at_the_first_occupied_slot() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        assert_eq!(wheel.next_deadline(), None);
        wheel.set(3, Clock::new(start).tick_of(start + Duration::from_millis(200)));
        wheel.set(4, Clock::new(start).tick_of(start + Duration::from_secs(2)));
        let next = wheel.next_deadline().unwrap();
        assert!(next >= start + Duration::from_millis(200));
        assert!(next <= start + Duration::from_millis(200) + 2 * TICK);
    }

    #[test]
    fn a_deadline_in_the_past_expires_at_the_next_tick() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        let now = start + Duration::from_secs(1);
        let _ = expire(&mut wheel, now);
        wheel.set(9, Clock::new(start).tick_of(start));
        assert_eq!(expire(&mut wheel, now + TICK), [9]);
    }

    #[test]
    fn many_items_each_expire_once() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Clock::new(start));
        for item in 0..10_000u32 {
            wheel.set(
                item,
                Clock::new(start).tick_of(start + Duration::from_millis(u64::from(item % 997) * 37)),
            );
        }
        let mut seen = Vec::new();
        let mut now = start;
        while now < start + Duration::from_secs(40) {
            now += Duration::from_millis(233);
            wheel.expire(now, &mut seen);
        }
        seen.sort();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }
}
