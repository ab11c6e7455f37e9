//! The read-ahead buffer of stream requests, sized by the traffic.
//!
//! A buffer belongs to the thread that serves with it (a per-connection
//! worker, or a parked server's worker) and is reused from one connection
//! or request to the next. It starts at its smallest size; a fill that
//! takes all the room there is doubles the next fill's room (up to the
//! largest size), so bulk data moves in few, large reads; after a run of
//! fills that used little of it, it halves again and gives the memory
//! back, so a connection that went back to small messages does not keep a
//! large buffer. This is Netty's adaptive receive-buffer rule.

/// Fills in a row that use under a quarter of the room before it shrinks.
const SHRINK_AFTER: u8 = 8;

pub(crate) struct ReadBuffer {
    bytes: Vec<u8>,
    /// The room the next fill reads into.
    size: usize,
    min: usize,
    max: usize,
    /// Fills in a row that used under a quarter of the room.
    small: u8,
}

/// An empty placeholder, for a buffer lent out.
impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer::new(1, 1)
    }
}

impl ReadBuffer {
    /// A buffer of `min` bytes that grows to `max`; nothing is allocated
    /// until the first fill.
    pub(crate) fn new(min: usize, max: usize) -> Self {
        let min = min.max(1);
        ReadBuffer {
            bytes: Vec::new(),
            size: min,
            min,
            max: max.max(min),
            small: 0,
        }
    }

    /// The room for the next fill: the whole buffer, `size()` bytes, with
    /// what lies in it kept (a fill that appends reads into the part after
    /// its bytes).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        if self.bytes.len() < self.size {
            self.bytes.resize(self.size, 0);
        }
        &mut self.bytes[..self.size]
    }

    /// The buffer's bytes (never more than its current size: only `room`
    /// and `load` lengthen them, to the size).
    pub(crate) fn bytes(&self) -> &[u8] {
        debug_assert!(self.bytes.len() <= self.size);
        &self.bytes
    }

    /// The buffer's bytes, to change in place.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.bytes.len() <= self.size);
        &mut self.bytes
    }

    /// The room of the next fill.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.size
    }

    /// The smallest room: reads at least this large skip the buffer.
    pub(crate) fn min(&self) -> usize {
        self.min
    }

    /// Notes a fill that read `n` bytes into the buffer's front: a full
    /// fill grows the next one; a run of small ones (under a quarter)
    /// shrinks it by half, memory given back, the `n` bytes kept.
    pub(crate) fn filled(&mut self, n: usize) {
        if n >= self.size {
            self.small = 0;
            self.size = (self.size * 2).min(self.max);
        } else if n < self.size / 4 && self.size > self.min {
            self.small += 1;
            if self.small >= SHRINK_AFTER {
                self.small = 0;
                self.size = (self.size / 2).max(self.min);
                self.bytes.truncate(self.size);
                self.bytes.shrink_to(self.size);
            }
        } else {
            self.small = 0;
        }
    }

    /// Copies `unread` to the buffer's front: a parked connection's bytes
    /// read ahead, put back for its next request.
    pub(crate) fn load(&mut self, unread: &[u8]) {
        if self.bytes.len() < unread.len() {
            self.bytes.resize(unread.len(), 0);
        }
        self.size = self.size.max(unread.len());
        self.bytes[..unread.len()].copy_from_slice(unread);
    }

    /// Back to the smallest room, memory beyond it given back: the
    /// connection that used it has ended.
    pub(crate) fn reset(&mut self) {
        self.size = self.min;
        self.small = 0;
        if self.bytes.len() > self.min {
            self.bytes.truncate(self.min);
            self.bytes.shrink_to(self.min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_fills_double_the_room_up_to_the_largest() {
        let mut buffer = ReadBuffer::new(8, 40);
        assert_eq!(buffer.room().len(), 8);
        buffer.filled(8);
        assert_eq!(buffer.room().len(), 16);
        buffer.filled(16);
        buffer.filled(32);
        assert_eq!(buffer.size(), 40);
        buffer.filled(40);
        assert_eq!(buffer.size(), 40);
    }

    #[test]
    fn a_run_of_small_fills_halves_it_and_gives_memory_back() {
        let mut buffer = ReadBuffer::new(8, 64);
        for n in [8, 16, 32] {
            buffer.room();
            buffer.filled(n);
        }
        assert_eq!(buffer.room().len(), 64);
        for _ in 0..SHRINK_AFTER - 1 {
            buffer.filled(3);
        }
        assert_eq!(buffer.size(), 64, "one small fill too few");
        // A fill of a fair size breaks the run.
        buffer.filled(20);
        for _ in 0..SHRINK_AFTER {
            buffer.filled(3);
        }
        assert_eq!(buffer.size(), 32);
        assert!(
            buffer.bytes.capacity() <= 32,
            "memory kept: {}",
            buffer.bytes.capacity()
        );
        for _ in 0..4 * SHRINK_AFTER {
            buffer.filled(1);
        }
        assert_eq!(buffer.size(), 8, "never below the smallest");
    }

    #[test]
    fn shrinking_keeps_the_bytes_in_use() {
        let mut buffer = ReadBuffer::new(4, 64);
        buffer.room();
        buffer.filled(4);
        buffer.filled(8);
        buffer.filled(16);
        buffer.room()[..10].copy_from_slice(b"0123456789");
        assert_eq!(buffer.size(), 32);
        for _ in 0..SHRINK_AFTER {
            buffer.filled(2);
        }
        assert_eq!(buffer.size(), 16);
        assert_eq!(&buffer.bytes()[..10], b"0123456789");
    }

    #[test]
    fn reset_returns_to_the_smallest_room() {
        let mut buffer = ReadBuffer::new(8, 1024);
        for _ in 0..6 {
            buffer.room();
            let size = buffer.size();
            buffer.filled(size);
        }
        assert_eq!(buffer.size(), 512);
        buffer.reset();
        assert_eq!(buffer.size(), 8);
        assert!(buffer.bytes.capacity() <= 8);
    }

    #[test]
    fn loading_read_ahead_makes_room_for_it() {
        let mut buffer = ReadBuffer::new(4, 8);
        buffer.load(b"more than eight bytes");
        assert_eq!(buffer.bytes(), b"more than eight bytes");
    }
}
