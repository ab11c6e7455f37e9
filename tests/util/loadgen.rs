//! Runs the load generator as a user would, and reads what it reports.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Process, example_binary};

/// One finished run of loadgen.
pub struct Run {
    pub output: Output,
    /// How long the process ran.
    pub took: Duration,
}

impl Run {
    /// The JSON report (`--json`).
    pub fn report(&self) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("loadgen printed no JSON ({e}): {:?}", self.output))
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs loadgen with `args`, its output piped, bounded in time.
pub fn run(args: &[&str]) -> Run {
    let started = Instant::now();
    let output = Process::spawn(
        Command::new(example_binary("loadgen"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    Run {
        output,
        took: started.elapsed(),
    }
}

/// A report's counter.
pub fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {key:?} in {report}"))
}

/// Requests that failed, of every kind.
pub fn failures(report: &Value) -> u64 {
    ["mismatches", "short", "errors", "timeouts", "lost"]
        .iter()
        .map(|key| report[key].as_u64().unwrap_or(0))
        .sum()
}
