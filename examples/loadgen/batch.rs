//! A batch: the requests a connection writes at once (`--pipeline N`,
//! one by default) and the replies they must get. The requests go out in
//! one write, each a message of its own (a sequence number of its own,
//! so a reply to another request of the batch is caught). Replies are
//! read as they come, each checked against its own request, and each
//! request's latency runs from the batch's write (on an open-loop
//! schedule, from when the batch was due) to the arrival of its own
//! reply.
//!
//! A wrong reply fails its request and the batch goes on: the next reply
//! is read where it should be. A reply cut off (the connection closed or
//! failed, or the deadline passed) fails its request and, the same way,
//! every request behind it, none of whose replies came. Either way the
//! connection is given up after the batch: it may be out of step.
//!
//! Both drivers use it: the blocking clients through [`exchange`], the
//! event-driven ones a read or write at a time.

use std::io::{self, Read, Write};
use std::time::Instant;

use socketserver::framing::{self, FrameConfig};

use crate::clients::{Message, cut_off};
use crate::deadline::Deadlined;
use crate::record::{Failed, Failure, Recorder, Sent, timed_out};

/// How a request goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// As it is (tcp mode).
    Raw,
    /// As a length-prefixed frame in the crate's default framing (framed
    /// mode, `echo::FramedUppercase`); the reply is a frame too.
    Framed,
}

/// The requests of one connection's batch, and how far it has got.
pub struct Batch {
    /// Every request's message in turn: its sequence number is moved to
    /// the request being written or checked.
    message: Message,
    count: usize,
    /// The bytes of one request (and of its reply) on the wire.
    unit: usize,
    /// The bytes of a frame's length prefix (none raw).
    prefix: usize,
    /// The first sequence number of this batch, and of the next.
    first_seq: u64,
    next_seq: u64,
    /// The requests as written, one after the other.
    requests: Vec<u8>,
    /// The replies as read.
    replies: Vec<u8>,
    written: usize,
    got: usize,
    /// Replies checked (or failed) so far.
    judged: usize,
    /// When the batch was due and went out, and its deadline, while it
    /// awaits replies.
    in_flight: Option<(Sent, Instant)>,
    /// The first failure among its requests.
    failed: Option<Failure>,
}

/// Why a batch's replies stopped coming before the last.
pub enum Cause {
    /// The server closed the connection.
    Closed,
    /// The deadline passed.
    Deadline,
    /// The connection failed (or never was).
    Broken(Failed),
}

impl Cause {
    /// The failure of a reply of `len` bytes of which `got` came.
    fn failure(&self, got: usize, len: usize) -> Failed {
        match self {
            Cause::Closed => cut_off(got, len, true),
            Cause::Deadline => cut_off(got, len, false),
            Cause::Broken(failed) => failed.clone(),
        }
    }
}

impl From<io::Error> for Cause {
    fn from(error: io::Error) -> Self {
        if timed_out(&error) {
            Cause::Deadline
        } else {
            Cause::Broken(error.into())
        }
    }
}

impl Batch {
    /// `count` requests of `size` bytes from client `client`.
    pub fn new(size: usize, client: usize, count: usize, encoding: Encoding) -> Self {
        let message = Message::new(size, client);
        let mut one = Vec::with_capacity(size + 8);
        match encoding {
            Encoding::Raw => one.extend_from_slice(&message.sent),
            // Writing into memory fails only for a frame over the maximum,
            // which `validate` refuses before any client starts.
            Encoding::Framed => framing::write_frame(&mut one, &message.sent, &FrameConfig::default())
                .expect("--size within the frame maximum"),
        }
        let unit = one.len();
        Batch {
            message,
            count,
            unit,
            prefix: unit - size,
            first_seq: 0,
            next_seq: 1,
            requests: one.repeat(count),
            replies: vec![0; unit * count],
            written: 0,
            got: 0,
            judged: 0,
            in_flight: None,
            failed: None,
        }
    }

    /// How many requests a batch has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Begins the next batch, due and sent as `sent`, its replies due by
    /// `deadline`: fresh sequence numbers, nothing written or read yet.
    pub fn start(&mut self, sent: Sent, deadline: Instant) {
        self.first_seq = self.next_seq;
        self.next_seq += self.count as u64;
        let digits = self.message.digits();
        for index in 0..self.count {
            self.message.set_seq(self.first_seq + index as u64);
            let at = index * self.unit + self.prefix;
            self.requests[at..at + digits].copy_from_slice(&self.message.sent[..digits]);
        }
        self.written = 0;
        self.got = 0;
        self.judged = 0;
        self.failed = None;
        self.in_flight = Some((sent, deadline));
    }

    /// When the batch in flight went out, and its deadline; `None` when
    /// it has all its replies, or failed.
    pub fn in_flight(&self) -> Option<(Sent, Instant)> {
        self.in_flight
    }

    /// Whether the batch in flight has passed its deadline by `now`.
    pub fn overdue(&self, now: Instant) -> bool {
        self.in_flight.is_some_and(|(_, deadline)| now >= deadline)
    }

    /// What is left to write of the requests.
    pub fn unwritten(&self) -> &[u8] {
        &self.requests[self.written..]
    }

    pub fn wrote(&mut self, n: usize) {
        self.written += n;
    }

    /// Where the replies still to come go.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.replies[self.got..]
    }

    /// `n` more reply bytes came into [`space`](Self::space): checks the
    /// replies now whole, each as its own request's.
    pub fn received(&mut self, n: usize, recorder: &mut Recorder) {
        self.got += n;
        let Some((sent, deadline)) = self.in_flight else {
            return;
        };
        while self.judged < self.count && self.got >= (self.judged + 1) * self.unit {
            let index = self.judged;
            self.judged += 1;
            match self.check(index).and_then(|()| check_deadline(deadline)) {
                Ok(()) => recorder.success(sent),
                Err(failed) => {
                    self.failed.get_or_insert(failed.kind);
                    recorder.fail(sent, failed);
                }
            }
        }
        if self.judged == self.count {
            self.in_flight = None;
        }
    }

    /// Whether reply `index`, whole, is its request's.
    fn check(&mut self, index: usize) -> Result<(), Failed> {
        let at = index * self.unit;
        let reply = &self.replies[at..at + self.unit];
        if reply[..self.prefix] != self.requests[at..at + self.prefix] {
            return Err(Failed::new(
                Failure::Mismatch,
                "a frame's length prefix did not match its request's",
            ));
        }
        self.message.set_seq(self.first_seq + index as u64);
        self.message.check(&reply[self.prefix..])
    }

    /// The replies stopped coming (`cause`): the one cut off and every
    /// one behind it fail. Returns the batch's first failure.
    pub fn cut(&mut self, cause: Cause, recorder: &mut Recorder) -> Failure {
        let Some((sent, _)) = self.in_flight.take() else {
            return self.failed.unwrap_or(Failure::Error);
        };
        let partial = self.got - self.judged * self.unit;
        let failed = cause.failure(partial, self.unit);
        let first = *self.failed.get_or_insert(failed.kind);
        recorder.fail(sent, failed);
        for _ in self.judged + 1..self.count {
            recorder.fail(sent, cause.failure(0, self.unit));
        }
        self.judged = self.count;
        first
    }

    /// The outcome of a batch with all its replies: the first failure, if
    /// any.
    pub fn outcome(&self) -> Result<(), Failure> {
        self.failed.map_or(Ok(()), Err)
    }
}

/// A batch of `count` requests, due as `sent`, that could not go out (no
/// connection): each fails with `failed`. Returns the failure's kind.
pub fn unsent(count: usize, sent: Sent, failed: Failed, recorder: &mut Recorder) -> Failure {
    let kind = failed.kind;
    for _ in 1..count {
        recorder.fail(sent, failed.clone());
    }
    recorder.fail(sent, failed);
    kind
}

/// A whole reply that came after its deadline: a timeout all the same.
fn check_deadline(deadline: Instant) -> Result<(), Failed> {
    if Instant::now() > deadline {
        return Err(Failed::new(
            Failure::Timeout,
            "the reply came whole only after --timeout",
        ));
    }
    Ok(())
}

/// A blocking connection a batch goes out on: raw, or TLS.
pub trait Link: Read + Write {
    /// Reads and writes fail with a timeout from `deadline` on.
    fn set_deadline(&mut self, deadline: Instant);

    /// Reply bytes came for the batch `sent` (TLS counts its handshake
    /// then).
    fn replied(&mut self, _sent: Sent) {}
}

impl Link for Deadlined {
    fn set_deadline(&mut self, deadline: Instant) {
        Deadlined::set_deadline(self, Some(deadline));
    }
}

/// Starts the batch `sent`: writes its requests in one write and reads
/// its replies, all by `deadline`, recording every request. The first
/// failure, if any: the connection may then be out of step.
pub fn exchange(
    link: &mut impl Link,
    batch: &mut Batch,
    sent: Sent,
    deadline: Instant,
    recorder: &mut Recorder,
) -> Result<(), Failure> {
    batch.start(sent, deadline);
    link.set_deadline(deadline);
    if let Err(e) = link.write_all(batch.unwritten()) {
        return Err(batch.cut(Cause::Broken(e.into()), recorder));
    }
    while batch.in_flight().is_some() {
        match link.read(batch.space()) {
            Ok(0) => return Err(batch.cut(Cause::Closed, recorder)),
            Ok(n) => {
                link.replied(sent);
                batch.received(n, recorder);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(batch.cut(e.into(), recorder)),
        }
    }
    batch.outcome()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::record::{Live, Window};

    fn recorder() -> Recorder {
        let now = Instant::now();
        let window = Window {
            start: now - Duration::from_secs(1),
            end: now + Duration::from_secs(60),
        };
        Recorder::new(window, Arc::new(Live::default()))
    }

    /// The batch's requests, answered as the uppercase echo would.
    fn echoed(batch: &Batch) -> Vec<u8> {
        batch.unwritten().to_ascii_uppercase()
    }

    fn start(batch: &mut Batch) -> Sent {
        let sent = Sent::now();
        batch.start(sent, sent.at + Duration::from_secs(60));
        sent
    }

    #[test]
    fn every_request_of_a_batch_is_a_message_of_its_own() {
        for encoding in [Encoding::Raw, Encoding::Framed] {
            let mut batch = Batch::new(16, 3, 4, encoding);
            start(&mut batch);
            let unit = batch.unit;
            let requests: Vec<&[u8]> = batch.unwritten().chunks(unit).collect();
            assert_eq!(requests.len(), 4);
            for (i, a) in requests.iter().enumerate() {
                assert!(
                    requests[i + 1..].iter().all(|b| a != b),
                    "{encoding:?}: {requests:?}"
                );
            }
            if encoding == Encoding::Framed {
                assert!(requests.iter().all(|r| r[..4] == 16u32.to_be_bytes()));
            }
        }
    }

    #[test]
    fn replies_in_order_pass_and_each_counts() {
        for encoding in [Encoding::Raw, Encoding::Framed] {
            let mut batch = Batch::new(64, 0, 16, encoding);
            let mut recorder = recorder();
            for _ in 0..3 {
                start(&mut batch);
                let replies = echoed(&batch);
                // In pieces that split replies.
                for piece in replies.chunks(100) {
                    batch.space()[..piece.len()].copy_from_slice(piece);
                    batch.received(piece.len(), &mut recorder);
                }
                assert_eq!(batch.in_flight().map(|_| ()), None);
                assert_eq!(batch.outcome(), Ok(()));
            }
            assert_eq!(recorder.counts.ops, 48, "{encoding:?}");
            assert_eq!(recorder.counts.failed(), 0);
        }
    }

    #[test]
    fn two_replies_swapped_are_two_mismatches() {
        let mut batch = Batch::new(32, 0, 4, Encoding::Raw);
        let mut recorder = recorder();
        start(&mut batch);
        let mut replies = echoed(&batch);
        let (first, rest) = replies.split_at_mut(32);
        first.swap_with_slice(&mut rest[..32]);
        batch.space().copy_from_slice(&replies);
        batch.received(replies.len(), &mut recorder);
        assert_eq!(batch.outcome(), Err(Failure::Mismatch));
        assert_eq!((recorder.counts.ops, recorder.counts.mismatches), (2, 2));
    }

    #[test]
    fn a_reply_cut_off_fails_every_request_behind_it() {
        let mut batch = Batch::new(32, 0, 4, Encoding::Raw);
        let mut recorder = recorder();
        start(&mut batch);
        // One reply and a half, then the deadline.
        let replies = echoed(&batch);
        batch.space()[..48].copy_from_slice(&replies[..48]);
        batch.received(48, &mut recorder);
        assert_eq!(batch.cut(Cause::Deadline, &mut recorder), Failure::Short);
        let counts = recorder.counts;
        assert_eq!((counts.ops, counts.short, counts.timeouts), (1, 1, 2));
        // Closed before any reply: errors, all four.
        start(&mut batch);
        assert_eq!(batch.cut(Cause::Closed, &mut recorder), Failure::Error);
        assert_eq!(recorder.counts.errors, 4);
    }
}
