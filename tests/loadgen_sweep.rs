//! `loadgen sweep` and `loadgen plot` run for real: against the crate's
//! in-process server and against an external one whose capacity is known
//! (tests/util/faulty.rs), where the knee must fall where the capacity
//! is; and the chart drawn from both.

mod util;

use std::time::Duration;

use serde_json::Value;
use util::faulty::{FaultyTcp, TcpFault};
use util::loadgen::{count, run};

fn steps(report: &Value) -> &Vec<Value> {
    report["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {report}"))
}

#[test]
fn a_sweep_finds_the_knee_and_draws_the_chart() {
    util::init_logging();
    let dir = tempfile::tempdir().unwrap();
    let short = [
        "--duration",
        "400ms",
        "--warmup",
        "100ms",
        "--timeout",
        "1s",
        "--connections",
        "2",
    ];

    // The crate's server, in-process: every step answered, no failure.
    let run_in_process = run(&[
        &["sweep", "--from", "200", "--to", "800", "--steps", "2", "--json"][..],
        &short,
    ]
    .concat());
    assert_eq!(run_in_process.code(), Some(0), "{:?}", run_in_process.output);
    let in_process = run_in_process.report();
    let offered: Vec<f64> = steps(&in_process)
        .iter()
        .map(|s| s["rate"].as_f64().unwrap())
        .collect();
    assert_eq!(offered, [200.0, 800.0], "{in_process}");
    for step in steps(&in_process) {
        assert!(count(step, "ops") > 0, "{step}");
        assert_eq!(util::loadgen::failures(step), 0, "{step}");
    }
    assert_eq!(in_process["server"], "in-process ThreadingTcpServer");
    let in_process_json = dir.path().join("in-process.json");
    std::fs::write(&in_process_json, &run_in_process.output.stdout).unwrap();

    // A server with two connections that takes 5 ms a reply does 400 a
    // second at most: it keeps up with 100, not with 1000.
    let server = FaultyTcp::start(64, TcpFault::Delay(Duration::from_millis(5)));
    let target = server.target();
    let slow_sweep = [
        &[
            "sweep", "--target", &target, "--from", "100", "--to", "1000", "--steps", "2",
        ][..],
        &["--label", "slow server"],
        &short,
    ]
    .concat();
    let chart = dir.path().join("latency.svg");
    let run_external = run(&[&slow_sweep[..], &["--plot", chart.to_str().unwrap()]].concat());
    assert_eq!(run_external.code(), Some(0), "{:?}", run_external.output);
    let text = run_external.stdout();
    assert!(text.contains("<- knee"), "{text}");
    assert!(
        text.contains("knee         at 1000/s offered") && text.contains("kept up to 100/s"),
        "{text}"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("slow server p99") && svg.contains("knee"),
        "{svg}"
    );

    // Both sweeps in one chart.
    let external_json = dir.path().join("external.json");
    let saved = run(&[&slow_sweep[..], &["--json"]].concat());
    assert_eq!(saved.report()["knee"], 1, "{}", saved.report());
    std::fs::write(&external_json, &saved.output.stdout).unwrap();
    let both = dir.path().join("both.svg");
    let plotted = run(&[
        "plot",
        in_process_json.to_str().unwrap(),
        external_json.to_str().unwrap(),
        "--out",
        both.to_str().unwrap(),
    ]);
    assert_eq!(plotted.code(), Some(0), "{:?}", plotted.output);
    let svg = std::fs::read_to_string(&both).unwrap();
    assert!(
        svg.contains("in-process ThreadingTcpServer p50") && svg.contains("slow server p99.9"),
        "{svg}"
    );
}

#[test]
fn sweep_and_plot_refuse_what_they_cannot_do() {
    let refused = run(&["sweep", "--from", "100", "--to", "10", "--duration", "100ms"]);
    assert_eq!(refused.code(), Some(2), "{:?}", refused.output);
    assert!(refused.stderr().contains("--from"), "{}", refused.stderr());
    let refused = run(&["sweep", "--from", "10", "--to", "100", "--rate", "50"]);
    assert_eq!(refused.code(), Some(2), "{:?}", refused.output);
    let dir = tempfile::tempdir().unwrap();
    let not_a_sweep = dir.path().join("report.json");
    std::fs::write(&not_a_sweep, "{\"ops\": 1}").unwrap();
    let out = dir.path().join("chart.svg");
    let refused = run(&[
        "plot",
        not_a_sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(refused.code(), Some(1), "{:?}", refused.output);
    assert!(
        refused.stderr().contains("report.json has no sweep steps"),
        "{}",
        refused.stderr()
    );
    assert!(!out.exists());
}
