//! The load generator against servers that misbehave on purpose
//! (tests/util/faulty.rs): stalls, dropped replies, trickled replies,
//! short replies, lost and stale UDP replies. Each server counts what it
//! did, and the report must agree with it; every run must end within
//! warm-up + duration + timeout (and a loose 5 s for a loaded machine).

mod util;

use std::time::Duration;

use util::faulty::{Counts, FaultyTcp, FaultyUdp, TcpFault, UdpFault};
use util::loadgen::{Run, count, run};

/// Slack for a loaded machine on top of the bound a run must end within.
const SLACK: Duration = Duration::from_secs(5);

/// Runs loadgen against `target` with `args`, warm-up and duration and
/// timeout as given, `--json`; checks that it ended within its bound.
fn run_against(target: &str, warmup: &str, duration: &str, timeout: &str, args: &[&str]) -> Run {
    let fixed = [
        "--target",
        target,
        "--warmup",
        warmup,
        "--duration",
        duration,
        "--timeout",
        timeout,
        "--json",
    ];
    let run = run(&[args, &fixed[..]].concat());
    let parse = |text: &str| humantime::parse_duration(text).unwrap();
    let bound = parse(warmup) + parse(duration) + parse(timeout) + SLACK;
    assert!(
        run.took < bound,
        "{args:?} ran {:?}, longer than warm-up + duration + timeout + {SLACK:?}",
        run.took
    );
    run
}

#[test]
fn failures_in_the_warm_up_are_not_counted() {
    util::init_logging();
    // Every 10th datagram is dropped: one client in a closed loop loses
    // exactly every 10th of its requests, in the warm-up as in the window.
    let server = FaultyUdp::start(UdpFault::DropEvery(10));
    let run = run_against(
        &server.target(),
        "300ms",
        "300ms",
        "30ms",
        &["udp", "--connections", "1"],
    );
    let report = run.report();
    let (ops, lost) = (count(&report, "ops"), count(&report, "lost"));
    let sent = ops + lost;
    assert!(lost >= 2, "{report}");
    assert!(
        (sent / 10..=sent.div_ceil(10)).contains(&lost),
        "{lost} lost of {sent} sent in the window, where every 10th is dropped: {report}"
    );
}

#[test]
fn a_reply_must_come_whole_within_the_timeout() {
    util::init_logging();
    // 16 bytes at one per 100 ms: 1.6 s a reply, against a 500 ms timeout.
    let server = FaultyTcp::start(16, TcpFault::Trickle(Duration::from_millis(100)));
    for args in [
        &["tcp"][..],
        &["churn"],
        &["tcp", "--driver", "epoll", "--threads", "1"],
    ] {
        let run = run_against(
            &server.target(),
            "0s",
            "1s",
            "500ms",
            &[args, &["--connections", "1", "--size", "16"]].concat(),
        );
        let report = run.report();
        assert_eq!(
            count(&report, "ops"),
            0,
            "{args:?}: a reply slower than the timeout succeeded: {report}"
        );
        assert!(
            count(&report, "timeouts") + count(&report, "short") >= 1,
            "{args:?}: {report}"
        );
    }
}

#[test]
fn stale_udp_replies_do_not_keep_a_run_going() {
    util::init_logging();
    // The first request is answered; then its reply comes again every
    // 50 ms and no other does.
    let server = FaultyUdp::start(UdpFault::ReplayStale(Duration::from_millis(50)));
    let run = run_against(
        &server.target(),
        "0s",
        "500ms",
        "300ms",
        &["udp", "--connections", "1"],
    );
    let report = run.report();
    assert_eq!(count(&report, "ops"), 1, "{report}");
    assert!(count(&report, "lost") >= 1, "{report}");
    assert!(count(&report, "late") >= 1, "{report}");
}

#[test]
fn udp_open_loop_keeps_its_schedule_through_losses() {
    util::init_logging();
    // 100 requests a second on one socket, every 10th dropped: a loss must
    // neither hold up the requests behind it nor be counted twice.
    let server = FaultyUdp::start(UdpFault::DropEvery(10));
    let run = run_against(
        &server.target(),
        "0s",
        "1s",
        "1500ms",
        &["udp", "--connections", "1", "--rate", "100"],
    );
    let report = run.report();
    let counts = &server.counts;
    assert_eq!(count(&report, "lost"), Counts::get(&counts.dropped), "{report}");
    assert_eq!(count(&report, "ops"), Counts::get(&counts.replied), "{report}");
    assert!(count(&report, "ops") > 0, "{report}");
    // A request behind a loss waited for it if its latency reached the
    // timeout; on schedule, none comes near.
    let max = report["latency_us"]["max"].as_u64().unwrap();
    assert!(
        max < 1_500_000,
        "a reply took {max} µs: it waited for a lost one: {report}"
    );
}

#[test]
fn above_capacity_the_report_says_what_was_achieved() {
    util::init_logging();
    // Two connections, 10 ms a reply: at most 200 replies a second,
    // against 2000 asked for.
    let server = FaultyTcp::start(64, TcpFault::Delay(Duration::from_millis(10)));
    for driver in ["threads", "epoll"] {
        let run = run_against(
            &server.target(),
            "200ms",
            "1s",
            "1s",
            &["tcp", "--driver", driver, "--connections", "2", "--rate", "2000"],
        );
        let report = run.report();
        let throughput = report["throughput"].as_f64().unwrap();
        assert!(
            throughput <= 210.0,
            "{driver}: {throughput}/s reported from a server that does 200/s: {report}"
        );
        let schedule = &report["schedule"];
        assert_eq!(schedule["kept"], false, "{driver}: {report}");
        assert_eq!(schedule["due"], 2000, "{driver}: {report}");
        assert!(count(schedule, "unsent") >= 1500, "{driver}: {report}");
        assert!(count(schedule, "behind_us") > 0, "{driver}: {report}");
    }
}

#[test]
fn lost_and_short_replies_fail_the_run() {
    util::init_logging();
    let client = ["--connections", "1", "--size", "32"];
    // One reply in 20 never comes.
    let dropping = FaultyTcp::start(32, TcpFault::DropEvery(20));
    let run = run_against(
        &dropping.target(),
        "0s",
        "300ms",
        "100ms",
        &[&["tcp"][..], &client].concat(),
    );
    let report = run.report();
    assert_eq!(
        count(&report, "timeouts"),
        Counts::get(&dropping.counts.dropped),
        "{report}"
    );
    assert!(count(&report, "timeouts") >= 1, "{report}");
    assert_eq!(run.code(), Some(1), "{:?}", run.output);
    assert_eq!(report["passed"], false, "{report}");
    assert!(run.stderr().contains("timeouts"), "{}", run.stderr());

    // The same failures under a threshold that tolerates them.
    let run = run_against(
        &dropping.target(),
        "0s",
        "300ms",
        "100ms",
        &[&["tcp", "--max-error-rate", "50%"][..], &client].concat(),
    );
    assert!(count(&run.report(), "timeouts") >= 1);
    assert_eq!(run.code(), Some(0), "{:?}", run.output);

    // One reply in 20 lacks its last byte, on a connection kept open.
    let short = FaultyTcp::start(32, TcpFault::ShortEvery(20));
    let run = run_against(
        &short.target(),
        "0s",
        "300ms",
        "100ms",
        &[&["tcp"][..], &client].concat(),
    );
    let report = run.report();
    let requests = Counts::get(&short.counts.requests);
    assert_eq!(
        count(&report, "short"),
        requests / 20,
        "{requests} requests: {report}"
    );
    assert!(count(&report, "short") >= 1, "{report}");
    assert_eq!(count(&report, "timeouts"), 0, "{report}");
    assert_eq!(run.code(), Some(1), "{:?}", run.output);

    // One datagram in 20 comes back a byte short.
    let short = FaultyUdp::start(UdpFault::ShortEvery(20));
    let run = run_against(
        &short.target(),
        "0s",
        "300ms",
        "100ms",
        &[&["udp"][..], &client].concat(),
    );
    let report = run.report();
    assert!(count(&report, "short") >= 1, "{report}");
    assert_eq!(count(&report, "lost"), 0, "{report}");
    assert_eq!(run.code(), Some(1), "{:?}", run.output);
}

#[test]
fn both_drivers_count_every_dropped_reply() {
    util::init_logging();
    for driver in ["threads", "epoll"] {
        // Every 25th reply never comes; each stalls its connection for the
        // timeout, so some are still awaited when the run ends.
        let server = FaultyTcp::start(64, TcpFault::DropEvery(25));
        let run = run_against(
            &server.target(),
            "0s",
            "1s",
            "300ms",
            &["tcp", "--connections", "4", "--driver", driver, "--threads", "2"],
        );
        let report = run.report();
        let counts = &server.counts;
        assert!(Counts::get(&counts.dropped) >= 1, "{driver}: {report}");
        assert_eq!(
            count(&report, "timeouts"),
            Counts::get(&counts.dropped),
            "{driver}: every dropped reply is a timeout: {report}"
        );
        assert_eq!(
            count(&report, "ops"),
            Counts::get(&counts.replied),
            "{driver}: every reply is counted: {report}"
        );
    }
}
