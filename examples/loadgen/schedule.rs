//! When requests go out: at once (closed loop), or on a fixed schedule
//! (open loop, `--rate`), where latency counts from when each request was
//! due so that a stalled server cannot hide the queue it builds up.
//!
//! A schedule the clients cannot keep (the server answers slower than
//! asked) is not caught up after the end: the run stops at the end of the
//! window, and what was due but never sent is reported, as wrk2 does.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::record::{Sent, Window};

/// One client's schedule.
pub struct Pacer {
    /// The next slot (open loop).
    next: Instant,
    interval: Option<Duration>,
    window: Window,
}

/// Where a client stands with its schedule.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// A request is due: send it now.
    Now(Sent),
    /// The next one is due then.
    At(Instant),
    /// The run is over.
    Over,
}

/// How far one client, or all, fell behind an open-loop schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Behind {
    /// Requests due in the window that were never sent.
    pub unsent: u64,
    /// How long the oldest of them had been due when the run ended.
    pub by: Duration,
}

impl Behind {
    pub fn add(&mut self, other: Behind) {
        self.unsent += other.unsent;
        self.by = self.by.max(other.by);
    }

    /// The requests behind, for slots of `batch` requests each.
    pub fn times(self, batch: u64) -> Behind {
        Behind {
            unsent: self.unsent * batch,
            by: self.by,
        }
    }
}

/// Where client `client` of `clients` starts within the first interval:
/// evenly apart, so no two fire together.
pub fn offset(interval: Duration, client: usize, clients: usize) -> Duration {
    interval.mul_f64(client as f64 / clients.max(1) as f64)
}

impl Pacer {
    /// Client `client` of `clients`, one request per `interval` each (open
    /// loop) or as fast as replies come (closed loop, no interval).
    pub fn new(interval: Option<Duration>, window: Window, client: usize, clients: usize) -> Self {
        let first = Instant::now() + interval.map_or(Duration::ZERO, |i| offset(i, client, clients));
        Pacer {
            next: first,
            interval,
            window,
        }
    }

    /// Waits until the next request is due and says when it was due and
    /// went out; `None` when the run is over, on schedule or not.
    pub fn next(&mut self) -> Option<Sent> {
        loop {
            let now = Instant::now();
            match self.turn(now) {
                Turn::Now(sent) => return Some(sent),
                Turn::At(due) => thread::sleep(due - now),
                Turn::Over => return None,
            }
        }
    }

    /// The next request if it is due at `now`, without waiting: for a
    /// client that waits for many connections at once (`--driver epoll`).
    pub fn turn(&mut self, now: Instant) -> Turn {
        if now >= self.window.end {
            return Turn::Over;
        }
        let Some(interval) = self.interval else {
            return Turn::Now(Sent { due: now, at: now });
        };
        let due = self.next;
        if due >= self.window.end {
            return Turn::Over;
        }
        if due > now {
            return Turn::At(due);
        }
        self.next += interval;
        // Sent when due, or now if behind: before the end either way.
        Turn::Now(Sent { due, at: now })
    }

    /// How far behind the schedule was when the run ended.
    pub fn behind(&self) -> Behind {
        let Some(interval) = self.interval else {
            return Behind::default();
        };
        let end = self.window.end;
        if self.next >= end {
            return Behind::default();
        }
        // The first slot not sent that lies in the window.
        let mut first = self.next;
        if first < self.window.start {
            let skipped = (self.window.start - first)
                .as_nanos()
                .div_ceil(interval.as_nanos().max(1));
            first += interval * skipped as u32;
        }
        let unsent = match end.checked_duration_since(first) {
            Some(left) => left.as_nanos().div_ceil(interval.as_nanos().max(1)) as u64,
            None => 0,
        };
        Behind {
            unsent,
            by: end - self.next,
        }
    }
}

/// How an open-loop run kept its schedule: what was asked, and how far
/// behind the clients ended.
pub struct Kept {
    /// Requests a second asked for.
    pub offered: f64,
    /// Requests due in the window.
    pub due: u64,
    pub behind: Behind,
}

impl Kept {
    pub fn new(offered: f64, window: Duration, behind: Behind) -> Self {
        Kept {
            offered,
            due: (offered * window.as_secs_f64()).round() as u64,
            behind,
        }
    }

    /// Whether every request due in the window was sent.
    pub fn kept(&self) -> bool {
        self.behind.unsent == 0
    }

    /// The report's line, with the rate `achieved`.
    pub fn text(&self, achieved: f64) -> String {
        if self.kept() {
            return format!(
                "schedule     kept: {:.0} requests/s asked, {achieved:.0}/s answered\n",
                self.offered
            );
        }
        format!(
            "schedule     NOT KEPT: {:.0} requests/s asked, {achieved:.0}/s answered; {} of the {} requests due \
             in the window were never sent; {:.2} s behind at the end\n",
            self.offered,
            self.behind.unsent,
            self.due,
            self.behind.by.as_secs_f64()
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "offered": self.offered,
            "due": self.due,
            "unsent": self.behind.unsent,
            "behind_us": self.behind.by.as_micros() as u64,
            "kept": self.kept(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_clients_start_apart() {
        let interval = Duration::from_millis(10);
        for clients in [1, 64, 65, 200, 1000] {
            let mut offsets: Vec<Duration> = (0..clients).map(|c| offset(interval, c, clients)).collect();
            offsets.dedup();
            assert_eq!(offsets.len(), clients, "{clients} clients");
            assert!(offsets.iter().all(|&o| o < interval));
        }
    }

    #[test]
    fn a_turn_comes_when_due_and_not_before() {
        let start = Instant::now();
        let window = Window {
            start,
            end: start + Duration::from_secs(1),
        };
        let mut pacer = Pacer::new(Some(Duration::from_millis(10)), window, 1, 2);
        let due = start + Duration::from_millis(5);
        assert!(matches!(pacer.turn(start), Turn::At(at) if at >= due));
        let at = pacer.next;
        // Late: sent now, timed from when it was due.
        let late = at + Duration::from_millis(3);
        assert_eq!(pacer.turn(late), Turn::Now(Sent { due: at, at: late }));
        assert_eq!(pacer.turn(late), Turn::At(at + Duration::from_millis(10)));
        assert_eq!(pacer.turn(window.end), Turn::Over);
    }

    #[test]
    fn a_schedule_not_kept_counts_what_was_never_sent() {
        let start = Instant::now();
        let window = Window {
            start: start + Duration::from_secs(1),
            end: start + Duration::from_secs(2),
        };
        let mut pacer = Pacer::new(Some(Duration::from_millis(10)), window, 0, 1);
        assert_eq!(
            pacer.behind().unsent,
            100,
            "nothing sent yet: all due in the window"
        );
        // Half a second behind at the end: the slots from 1.5 s on, all in
        // the window, were never sent.
        pacer.next = start + Duration::from_millis(1500);
        assert_eq!(
            pacer.behind(),
            Behind {
                unsent: 50,
                by: Duration::from_millis(500)
            }
        );
        // Still in the warm-up: only the window's slots count as unsent.
        pacer.next = start + Duration::from_millis(500);
        assert_eq!(pacer.behind().unsent, 100);
        pacer.next = window.end;
        assert_eq!(pacer.behind(), Behind::default());
    }
}
