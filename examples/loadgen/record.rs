//! What each client thread records, and the report made from all of them.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The measured part of a run: operations starting in it count towards
/// throughput and latency; the warm-up before it only warms.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub failures: AtomicU64,
}

/// What happened to the requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Correct replies to requests begun in the window.
    pub ops: u64,
    pub mismatches: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub lost: u64,
    /// UDP replies that came after their request was counted lost.
    pub late: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ops += other.ops;
        self.mismatches += other.mismatches;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.lost += other.lost;
        self.late += other.late;
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
    pub last_error: Option<String>,
}

impl Recorder {
    pub fn new(window: Window, live: Arc<Live>) -> Self {
        Recorder {
            latency_us: new_histogram(),
            window,
            live,
            counts: Counts::default(),
            last_error: None,
        }
    }

    /// A correct reply to an operation that began at `began` (its
    /// scheduled time, under pacing).
    pub fn success(&mut self, began: Instant) {
        self.live.ops.fetch_add(1, Ordering::Relaxed);
        if began >= self.window.start && began < self.window.end {
            self.counts.ops += 1;
            let micros = began.elapsed().as_micros().clamp(1, 60_000_000) as u64;
            self.latency_us.saturating_record(micros);
        }
    }

    /// A reply that is not the uppercase of what was sent.
    pub fn mismatch(&mut self) {
        self.counts.mismatches += 1;
        self.failed("a reply did not match what was sent".into());
    }

    /// A failed connect, read or write; timeouts are counted apart.
    pub fn error(&mut self, error: &io::Error) {
        if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            self.counts.timeouts += 1;
        } else {
            self.counts.errors += 1;
        }
        self.failed(error.to_string());
    }

    /// A datagram whose reply never came.
    pub fn lost(&mut self) {
        self.counts.lost += 1;
        self.failed("a datagram's reply never came".into());
    }

    /// A reply that came after its request had been given up on.
    pub fn late(&mut self) {
        self.counts.late += 1;
    }

    fn failed(&mut self, what: String) {
        self.live.failures.fetch_add(1, Ordering::Relaxed);
        self.last_error = Some(what);
    }
}

/// All threads' records, merged.
pub struct Totals {
    latency_us: Histogram<u64>,
    pub counts: Counts,
    pub last_error: Option<String>,
    pub seconds: f64,
}

impl Totals {
    pub fn merge(recorders: Vec<Recorder>, window: Window) -> Self {
        let mut totals = Totals {
            latency_us: new_histogram(),
            counts: Counts::default(),
            last_error: None,
            seconds: window.length().as_secs_f64(),
        };
        for recorder in recorders {
            totals
                .latency_us
                .add(&recorder.latency_us)
                .expect("histograms with equal bounds");
            totals.counts.add(&recorder.counts);
            if recorder.last_error.is_some() {
                totals.last_error = recorder.last_error;
            }
        }
        totals
    }

    pub fn throughput(&self) -> f64 {
        self.counts.ops as f64 / self.seconds
    }

    fn percentile_us(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
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
        out += &format!(
            "failures     {} mismatched, {} errors, {} timeouts, {} lost ({} late replies)\n",
            self.counts.mismatches,
            self.counts.errors,
            self.counts.timeouts,
            self.counts.lost,
            self.counts.late
        );
        if let Some(error) = &self.last_error {
            out += &format!("last failure {error}\n");
        }
        out
    }

    /// The report for programs, with `context` merged in.
    pub fn json(&self, context: Value) -> Value {
        let mut report = json!({
            "ops": self.counts.ops,
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
            "mismatches": self.counts.mismatches,
            "errors": self.counts.errors,
            "timeouts": self.counts.timeouts,
            "lost": self.counts.lost,
            "late": self.counts.late,
            "last_error": self.last_error,
        });
        if let (Value::Object(report), Value::Object(context)) = (&mut report, context) {
            report.extend(context);
        }
        report
    }
}

fn format_micros(us: u64) -> String {
    if us >= 1_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}
