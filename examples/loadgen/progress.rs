//! The progress line on standard error while a long run goes on (elapsed
//! time, the rate so far in the window, failures so far), only where a
//! person watches: standard error is a terminal, the report is not JSON,
//! and the run lasts long enough to wait for.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::{Live, Window};

/// Runs shorter than this get no progress line.
pub const LONG_RUN: Duration = Duration::from_secs(3);

/// Whether a run of `length` (warm-up included) shows a progress line.
pub fn wanted(json: bool, length: Duration) -> bool {
    !json && length >= LONG_RUN && std::io::stderr().is_terminal()
}

/// Waits until `done()` says every client has finished, showing the
/// progress line meanwhile if `show`. With `announce`, says on standard
/// error "holding N connections" once N requests have been answered or
/// failed (idle mode, for scripts that wait for it).
pub fn wait(done: impl Fn() -> bool, live: &Live, window: Window, show: bool, mut announce: Option<u64>) {
    let progress = if show {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    progress
        .set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    // The live counts when the window opened.
    let mut at_start: Option<(u64, u64)> = None;
    while !done() {
        thread::sleep(Duration::from_millis(if announce.is_some() { 10 } else { 200 }));
        let ops = live.ops.load(Ordering::Relaxed);
        let failures = live.failures.load(Ordering::Relaxed);
        if let Some(count) = announce
            && ops + failures >= count
        {
            progress.suspend(|| eprintln!("holding {ops} connections"));
            announce = None;
        }
        let now = Instant::now();
        if now < window.start {
            progress.set_message("warming up");
        } else {
            let (ops_before, failures_before) = *at_start.get_or_insert((ops, failures));
            let seconds = (now.min(window.end) - window.start).as_secs_f64().max(1e-3);
            progress.set_message(format!(
                "{} replies, {:.0}/s so far, {} failures so far",
                ops - ops_before,
                (ops - ops_before) as f64 / seconds,
                failures - failures_before
            ));
        }
        progress.tick();
    }
    progress.finish_and_clear();
}
