//! scripts/bench-report.py, the report of `scripts/bench-compare.sh`, on
//! a results file written here: what it says of failed runs, and of the
//! kernel's counters recorded beside each run (or not, in an older file).

use std::path::PathBuf;
use std::process::Command;

/// The report of `results` (JSON lines), as bench-compare.sh asks for it;
/// `name` keeps each test's file apart.
fn report(name: &str, results: &str) -> String {
    let dir = std::env::temp_dir().join(format!("bench-report-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("results.jsonl");
    std::fs::write(&file, results).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-report.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(&file)
        .args(["4", "1", "1"])
        .output()
        .expect("python3 runs");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "bench-report.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A loadgen result: `ops` requests, `timeouts` of them unanswered, the
/// longest wait `max_us`.
fn loadgen(ops: u64, timeouts: u64, max_us: u64) -> String {
    format!(
        r#"{{"throughput":{ops},"ops":{ops},"latency_us":{{"p50":60,"p99":120,"max":{max_us}}},"mismatches":0,"short":0,"errors":0,"timeouts":{timeouts},"lost":0}}"#
    )
}

/// wrk's result as the script parses it: no maximum latency.
fn wrk(ops: u64, errors: u64) -> String {
    format!(
        r#"{{"throughput":{ops},"ops":{ops},"latency_us":{{"p50":150,"p99":600}},"mismatches":0,"errors":{errors},"timeouts":0,"lost":0,"output":""}}"#
    )
}

fn run(scenario: &str, server: &str, kernel: &str, result: &str) -> String {
    format!(
        r#"{{"scenario":"{scenario}","server":"{server}","round":1,{kernel}"cpu_ticks":100,"result":{result}}}"#
    )
}

#[test]
fn failed_runs_are_listed_with_the_kernel_counts_beside_them() {
    let counted = r#""listen_overflows":0,"tcp_timeouts":2,"backlog_drops":7,"#;
    let quiet = r#""listen_overflows":0,"tcp_timeouts":0,"backlog_drops":0,"#;
    let results = [
        run(
            "tcp 64 B x1",
            "crate-tcp",
            counted,
            &loadgen(60_000, 1, 1_950_000),
        ),
        run("tcp 64 B x1", "plain-tcp", quiet, &loadgen(61_000, 0, 9_000)),
        r#"{"comparison":"tcp 64 B x1","subject":"crate-tcp","baselines":["plain-tcp"]}"#.to_owned(),
        // A failed wrk run: its report has no maximum latency.
        run("wrk -c64 vs nginx", "http-parked", quiet, &wrk(700_000, 3)),
        run("wrk -c64 vs nginx", "nginx", quiet, &wrk(650_000, 0)),
        r#"{"comparison":"wrk -c64 vs nginx","subject":"http-parked","baseline":"nginx"}"#.to_owned(),
    ]
    .join("\n");
    let report = report("failed", &results);
    assert!(
        report.contains(
            "Client-side failures across the compared runs (mismatches, errors, timeouts, losses): 4;"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "TCP retransmission timeouts meanwhile: 2; packets dropped by the kernel's input backlog: 7"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "- tcp 64 B x1, crate-tcp, round 1: 1 failed, the longest wait 1950.00 ms; \
             the kernel meanwhile: 2 retransmission timeouts, 7 backlog drops, 0 accept-queue drops"
        ),
        "{report}"
    );
    assert!(
        report.contains("- wrk -c64 vs nginx, http-parked, round 1: 3 failed, the longest wait n/a;"),
        "{report}"
    );
    assert!(
        !report.contains("plain-tcp, round 1:"),
        "a run with no failure is not listed: {report}"
    );
}

#[test]
fn results_from_before_the_kernel_counters_say_they_were_not_recorded() {
    let old = r#""listen_overflows":0,"#;
    let results = [
        run("tcp 64 B x1", "crate-tcp", old, &loadgen(60_000, 1, 1_950_000)),
        run("tcp 64 B x1", "plain-tcp", old, &loadgen(61_000, 0, 9_000)),
        r#"{"comparison":"tcp 64 B x1","subject":"crate-tcp","baseline":"plain-tcp"}"#.to_owned(),
    ]
    .join("\n");
    let report = report("old", &results);
    assert!(
        report.contains("TCP retransmission timeouts meanwhile: not recorded; packets dropped by the kernel's input backlog: not recorded"),
        "{report}"
    );
    assert!(
        report.contains("(not recorded) retransmission timeouts, (not recorded) backlog drops"),
        "{report}"
    );
}
