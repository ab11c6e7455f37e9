//! What each client thread records, and the totals made from all of them.
//!
//! One rule decides what a run counts: a request counts if it was sent in
//! the measured window. Its reply, its failure and its latency all count
//! by that rule, so every counter has the same denominator and the
//! warm-up shows in none of them.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::schedule::Behind;

/// The measured part of a run: requests sent in it count; the warm-up
/// before it only warms.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn length(&self) -> Duration {
        self.end - self.start
    }

    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }
}

/// When a request was due and when it went out. In a closed loop both are
/// the moment it went out; on an open-loop schedule it is due at its
/// slot, latency counts from there, and it goes out then or, when the
/// clients run behind, as soon as they get to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub due: Instant,
    pub at: Instant,
}

impl Sent {
    /// A request going out now, due now.
    pub fn now() -> Self {
        let now = Instant::now();
        Sent { due: now, at: now }
    }
}

/// Why a request got no good reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A reply with the wrong bytes.
    Mismatch,
    /// A reply that stopped short of the request's length.
    Short,
    /// A failed connect, read or write.
    Error,
    /// No reply (or connection) within the timeout.
    Timeout,
    /// A datagram whose reply never came.
    Lost,
}

/// A failed request: how, and what happened, for the report's last
/// failure line.
#[derive(Clone, Debug)]
pub struct Failed {
    pub kind: Failure,
    pub what: String,
}

impl Failed {
    pub fn new(kind: Failure, what: impl Into<String>) -> Self {
        Failed {
            kind,
            what: what.into(),
        }
    }
}

/// Whether an I/O error is a wait that ran out (a socket timeout reports
/// `WouldBlock`).
pub fn timed_out(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl From<io::Error> for Failed {
    fn from(error: io::Error) -> Self {
        let kind = if timed_out(&error) {
            Failure::Timeout
        } else {
            Failure::Error
        };
        Failed::new(kind, error.to_string())
    }
}

/// Counters the progress line reads while the run goes on (warm-up
/// included).
#[derive(Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub failures: AtomicU64,
}

/// What happened to the requests sent in the window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Correct replies, whole within the timeout.
    pub ops: u64,
    pub mismatches: u64,
    pub short: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub lost: u64,
    /// UDP replies to earlier requests (given up on, or duplicates) that
    /// came after the warm-up; not failures.
    pub late: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ops += other.ops;
        self.mismatches += other.mismatches;
        self.short += other.short;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.lost += other.lost;
        self.late += other.late;
    }

    fn count(&mut self, failure: Failure) {
        *match failure {
            Failure::Mismatch => &mut self.mismatches,
            Failure::Short => &mut self.short,
            Failure::Error => &mut self.errors,
            Failure::Timeout => &mut self.timeouts,
            Failure::Lost => &mut self.lost,
        } += 1;
    }

    /// Requests that failed, of every kind.
    pub fn failed(&self) -> u64 {
        self.mismatches + self.short + self.errors + self.timeouts + self.lost
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 minute, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One client thread's record.
pub struct Recorder {
    latency_us: Histogram<u64>,
    window: Window,
    live: Arc<Live>,
    pub counts: Counts,
    pub last_failure: Option<String>,
    behind: Behind,
}

impl Recorder {
    pub fn new(window: Window, live: Arc<Live>) -> Self {
        Recorder {
            latency_us: new_histogram(),
            window,
            live,
            counts: Counts::default(),
            last_failure: None,
            behind: Behind::default(),
        }
    }

    /// A correct reply, whole within the timeout, to the request `sent`.
    pub fn success(&mut self, sent: Sent) {
        self.live.ops.fetch_add(1, Ordering::Relaxed);
        if self.window.contains(sent.at) {
            self.counts.ops += 1;
            let micros = sent.due.elapsed().as_micros().clamp(1, 60_000_000) as u64;
            self.latency_us.saturating_record(micros);
        }
    }

    /// A request that got no good reply.
    pub fn fail(&mut self, sent: Sent, failed: impl Into<Failed>) {
        let failed = failed.into();
        self.live.failures.fetch_add(1, Ordering::Relaxed);
        if self.window.contains(sent.at) {
            self.counts.count(failed.kind);
            self.last_failure = Some(failed.what);
        }
    }

    /// A reply to an earlier request, arriving now.
    pub fn late(&mut self) {
        if Instant::now() >= self.window.start {
            self.counts.late += 1;
        }
    }

    /// How far behind its open-loop schedule the client ended.
    pub fn behind(&mut self, behind: Behind) {
        self.behind.add(behind);
    }

    /// Adds another record of the same client (a socket's sender and
    /// receiver threads keep one each).
    pub fn absorb(&mut self, other: Recorder) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with equal bounds");
        self.counts.add(&other.counts);
        self.behind.add(other.behind);
        if other.last_failure.is_some() {
            self.last_failure = other.last_failure;
        }
    }
}

/// All threads' records, merged.
pub struct Totals {
    latency_us: Histogram<u64>,
    pub counts: Counts,
    pub last_failure: Option<String>,
    pub seconds: f64,
    /// How far behind their open-loop schedules the clients ended.
    pub behind: Behind,
}

impl Totals {
    pub fn merge(recorders: Vec<Recorder>, window: Window) -> Self {
        let mut all = Recorder::new(window, Arc::new(Live::default()));
        for recorder in recorders {
            all.absorb(recorder);
        }
        Totals {
            latency_us: all.latency_us,
            counts: all.counts,
            last_failure: all.last_failure,
            seconds: window.length().as_secs_f64(),
            behind: all.behind,
        }
    }

    /// Correct replies a second: what the server achieved.
    pub fn throughput(&self) -> f64 {
        self.counts.ops as f64 / self.seconds
    }

    /// The latency (µs) under which fraction `q` of the replies came; 0
    /// without replies.
    pub fn percentile_us(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
    }

    /// Failed requests as a fraction of all requests sent in the window
    /// (0 when none was).
    pub fn error_rate(&self) -> f64 {
        let failed = self.counts.failed();
        match self.counts.ops + failed {
            0 => 0.0,
            all => failed as f64 / all as f64,
        }
    }

    /// The report for people.
    pub fn text(&self, what: &str) -> String {
        let us = |v: u64| format_micros(v);
        let mut out = format!(
            "{what}\nthroughput   {:.0} ops/s ({} ops in {:.2} s)\n",
            self.throughput(),
            self.counts.ops,
            self.seconds
        );
        if self.counts.ops > 0 {
            out += &format!(
                "latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})\n",
                us(self.percentile_us(0.5)),
                us(self.percentile_us(0.9)),
                us(self.percentile_us(0.99)),
                us(self.percentile_us(0.999)),
                us(self.latency_us.max()),
                us(self.latency_us.mean() as u64),
            );
        }
        let c = &self.counts;
        out += &format!(
            "failures     {} mismatched, {} short, {} errors, {} timeouts, {} lost ({} late replies)\n",
            c.mismatches, c.short, c.errors, c.timeouts, c.lost, c.late
        );
        if let Some(failure) = &self.last_failure {
            out += &format!("last failure {failure}\n");
        }
        out
    }

    /// The latency percentiles and counters, as the JSON report has them.
    pub fn json(&self) -> Value {
        let c = &self.counts;
        json!({
            "ops": c.ops,
            "seconds": self.seconds,
            "throughput": self.throughput(),
            "latency_us": {
                "p50": self.percentile_us(0.5),
                "p90": self.percentile_us(0.9),
                "p99": self.percentile_us(0.99),
                "p999": self.percentile_us(0.999),
                "max": self.latency_us.max(),
                "mean": self.latency_us.mean(),
            },
            "mismatches": c.mismatches,
            "short": c.short,
            "errors": c.errors,
            "timeouts": c.timeouts,
            "lost": c.lost,
            "late": c.late,
            "error_rate": self.error_rate(),
            "last_error": self.last_failure,
        })
    }
}

/// A latency for people: "85 µs", "2.35 ms".
pub fn format_micros(us: u64) -> String {
    if us >= 1_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// Merges `extra` into the JSON object `report`.
pub fn merge_json(report: &mut Value, extra: Value) {
    if let (Value::Object(report), Value::Object(extra)) = (report, extra) {
        report.extend(extra);
    }
}
