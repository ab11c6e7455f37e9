//! The load generator, run for real: every mode against a correct server
//! finds no failures, a server that answers wrong is caught, a target off
//! loopback is refused, and open-loop pacing keeps to its schedule.

mod util;

use std::io::{self, Read, Write};
use std::process::Output;

use serde_json::Value;
use socketserver::echo::Uppercase;
use socketserver::{TcpRequest, ThreadingTcpServer};
use util::loadgen::failures;
use util::{init_logging, serve};

fn loadgen(args: &[&str]) -> Output {
    util::loadgen::run(args).output
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("loadgen printed no JSON ({e}): {output:?}"))
}

#[test]
fn every_mode_runs_clean_against_the_crate_servers() {
    let short = [
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--connections",
        "4",
        "--json",
    ];
    for mode in ["tcp", "churn", "udp", "framed"] {
        let output = loadgen(&[&[mode][..], &short].concat());
        assert!(output.status.success(), "{mode}: {output:?}");
        let report = report(&output);
        assert_eq!(report["mode"], mode);
        assert!(report["ops"].as_u64().unwrap() > 0, "{mode}: {report}");
        assert_eq!(failures(&report), 0, "{mode}: {report}");
        assert!(report["latency_us"]["p50"].as_u64().unwrap() > 0);
    }
}

#[test]
fn the_text_report_names_its_counts() {
    let run = one_client(&[]);
    assert!(run.output.status.success(), "{:?}", run.output);
    let text = run.stdout();
    assert!(
        text.contains(": 1 client, 64-byte messages, closed loop"),
        "{text}"
    );
    assert!(
        text.contains("failures     0 mismatched, 0 short, 0 errors, 0 timeouts, 0 lost"),
        "{text}"
    );
}

/// A short run of one client against the in-process server, with `extra`
/// options.
fn one_client(extra: &[&str]) -> util::loadgen::Run {
    let short = [
        "tcp",
        "--connections",
        "1",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
    ];
    util::loadgen::run(&[&short[..], extra].concat())
}

#[test]
fn a_threshold_missed_fails_the_run_and_names_itself() {
    let run = one_client(&["--max-p99", "1us", "--json"]);
    assert_eq!(run.code(), Some(1), "{:?}", run.output);
    let report = run.report();
    assert_eq!(report["passed"], false, "{report}");
    let failed = report["failed"][0].as_str().unwrap();
    assert!(
        failed.starts_with("p99 ") && failed.ends_with("over --max-p99 1us"),
        "{report}"
    );
    assert!(run.stderr().contains("--max-p99"), "{}", run.stderr());
    // Met, it passes.
    let run = one_client(&["--max-p99", "10s"]);
    assert_eq!(run.code(), Some(0), "{:?}", run.output);
    assert!(run.stdout().contains("verdict      passed"), "{}", run.stdout());
}

#[test]
fn the_parked_server_and_the_event_driven_clients_run_clean() {
    let short = ["--duration", "300ms", "--warmup", "100ms", "--json"];
    for args in [
        &["tcp", "--parked", "--connections", "8"][..],
        &["churn", "--parked", "--connections", "4"],
        &["framed", "--parked", "--connections", "4"],
        &[
            "tcp",
            "--driver",
            "epoll",
            "--threads",
            "2",
            "--connections",
            "32",
        ],
        &["tcp", "--parked", "--driver", "epoll", "--connections", "32"],
        &["slow", "--parked", "--connections", "50", "--interval", "100ms"],
    ] {
        let output = loadgen(&[args, &short[..]].concat());
        assert!(output.status.success(), "{args:?}: {output:?}");
        let report = report(&output);
        assert!(report["ops"].as_u64().unwrap() > 0, "{args:?}: {report}");
        assert_eq!(failures(&report), 0, "{args:?}: {report}");
        if args.contains(&"--parked") {
            assert_eq!(
                report["server"],
                if args[0] == "framed" {
                    "in-process ParkedTcpServer (framed)"
                } else {
                    "in-process ParkedTcpServer"
                }
            );
        }
    }
    // The slow clients each send once per interval: about 50 x 3 here.
    let output = loadgen(&[
        "slow",
        "--parked",
        "--connections",
        "50",
        "--interval",
        "100ms",
        "--duration",
        "300ms",
        "--warmup",
        "0ms",
        "--json",
    ]);
    let ops = report(&output)["ops"].as_u64().unwrap();
    assert!(
        (100..=250).contains(&ops),
        "{ops} replies from 50 slow clients in 300 ms"
    );
}

#[test]
fn event_driven_clients_refuse_what_they_cannot_do() {
    let output = loadgen(&["churn", "--driver", "epoll", "--duration", "100ms"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "options it cannot run with: {output:?}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--driver epoll drives the tcp and framed modes")
    );
    let output = loadgen(&["udp", "--parked", "--duration", "100ms"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("a UDP server has no connections to park"));
}

#[test]
fn idle_mode_holds_its_connections() {
    let output = loadgen(&[
        "idle",
        "--connections",
        "50",
        "--duration",
        "300ms",
        "--hold",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    assert_eq!(
        (report["connected"].as_u64(), report["ops"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(failures(&report), 0);
    assert!(String::from_utf8_lossy(&output.stderr).contains("holding 50 connections"));
}

/// Echoes without uppercasing: every reply is wrong.
fn plain_echo(request: &mut TcpRequest) -> io::Result<()> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = request.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        request.write_all(&chunk[..n])?;
    }
}

#[test]
fn wrong_replies_are_counted_and_fail_the_run() {
    init_logging();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", plain_echo));
    let target = server.local_addr().to_string();
    let output = loadgen(&[
        "tcp",
        "--target",
        &target,
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--connections",
        "2",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = report(&output);
    assert!(report["mismatches"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["passed"], false, "{report}");
    assert_eq!(report["ops"], 0);
    running.shutdown();
}

#[test]
fn a_run_in_which_every_request_failed_fails() {
    // A port nobody listens on any more: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let output = loadgen(&[
        "tcp",
        "--target",
        &closed,
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--connections",
        "2",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = report(&output);
    assert_eq!(report["ops"], 0, "{report}");
    assert!(report["errors"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn a_target_off_loopback_is_refused() {
    let output = loadgen(&["tcp", "--target", "192.0.2.1:9", "--duration", "100ms"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--allow-remote"),
        "{stderr}"
    );
}

#[test]
fn open_loop_pacing_keeps_to_its_schedule() {
    init_logging();
    let (server, running) = serve(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase));
    let target = server.local_addr().to_string();
    // 200 requests a second for half a second, after no warm-up: the
    // schedule has 100 slots, so never more than 100 requests.
    let output = loadgen(&[
        "tcp",
        "--target",
        &target,
        "--rate",
        "200",
        "--connections",
        "2",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    let ops = report["ops"].as_u64().unwrap();
    assert!(ops > 0 && ops <= 100, "{ops} requests for 100 slots");
    assert_eq!(server.stats().accepted, 2);
    running.shutdown();
}

/// `--proxy-v1` and `--proxy-v2`: every connection begins with a PROXY
/// header claiming a client address of its own, whatever drives it; a
/// server that trusts loopback as its proxy sees those clients, and one
/// whose proxies are elsewhere refuses the headers.
#[cfg(feature = "proxy-protocol")]
#[test]
fn proxy_headers_claim_a_client_address_per_connection() {
    use socketserver::proxy_protocol::TrustedProxies;
    use socketserver::{KeepAliveHandler, Next};
    use std::collections::BTreeSet;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    init_logging();
    let peers = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = Arc::clone(&peers);
    let (server, running) = serve(
        ThreadingTcpServer::builder()
            .proxy_protocol(TrustedProxies::parse(["127.0.0.1"]).unwrap())
            .bind(
                "127.0.0.1:0",
                move |request: &mut TcpRequest| -> std::io::Result<Next> {
                    seen.lock().unwrap().insert(*request.peer_addr());
                    Uppercase.handle_one(request, &mut ())
                },
            ),
    );
    let target = server.local_addr().to_string();
    let runs: [&[&str]; 3] = [
        &["churn", "--proxy-v2"],
        &["tcp", "--proxy-v1"],
        &["tcp", "--proxy-v2", "--driver", "epoll", "--threads", "2"],
    ];
    for run in runs {
        peers.lock().unwrap().clear();
        let output = loadgen(
            &[
                run,
                &[
                    "--target",
                    &target,
                    "--connections",
                    "4",
                    "--duration",
                    "200ms",
                    "--warmup",
                    "0s",
                    "--json",
                ],
            ]
            .concat(),
        );
        assert!(output.status.success(), "{run:?}: {output:?}");
        let report = report(&output);
        assert_eq!(failures(&report), 0, "{run:?}: {report}");
        assert_eq!(report["proxy"], run[1].trim_start_matches("--proxy-"), "{report}");
        let expected: BTreeSet<SocketAddr> = (1..=4)
            .map(|n| format!("198.51.100.{n}:1024").parse().unwrap())
            .collect();
        assert_eq!(*peers.lock().unwrap(), expected, "{run:?}");
    }
    running.shutdown();

    // A server whose proxies are elsewhere refuses every header from
    // loopback.
    let (plain, running) = serve(
        ThreadingTcpServer::builder()
            .proxy_protocol(TrustedProxies::parse(["10.0.0.0/8"]).unwrap())
            .bind("127.0.0.1:0", Uppercase),
    );
    let output = loadgen(&[
        "churn",
        "--proxy-v2",
        "--target",
        &plain.local_addr().to_string(),
        "--connections",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--json",
    ]);
    let report = report(&output);
    assert_eq!(report["ops"], 0, "{report}");
    assert!(report["errors"].as_u64().unwrap() > 0, "{report}");
    running.shutdown();

    let output = loadgen(&["udp", "--proxy-v2", "--duration", "100ms"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("udp mode has none"),
        "{output:?}"
    );
}

/// A run long enough to wait for shows a progress line on a terminal, and
/// none when its standard error is piped or the report is JSON.
#[test]
fn long_runs_show_progress_on_a_terminal_only() {
    use std::fs::File;
    use std::process::{Command, Stdio};

    let long = [
        "tcp",
        "--connections",
        "1",
        "--warmup",
        "500ms",
        "--duration",
        "2500ms",
    ];
    use std::os::fd::AsRawFd;

    let terminal = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    // Only the program under test may hold the terminal open: the other
    // children of this test must not inherit it.
    for fd in [terminal.master.as_raw_fd(), terminal.slave.as_raw_fd()] {
        // SAFETY: sets a flag on descriptors this test owns.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    let mut on_terminal = util::Process::spawn(
        Command::new(util::example_binary("loadgen"))
            .args(long)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(terminal.slave)),
    );
    // The terminal's side, read until the program is gone (the read then
    // fails with EIO).
    let mut screen = File::from(terminal.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = screen.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    // Meanwhile, the same run piped, and as JSON.
    let piped = std::thread::spawn(move || util::loadgen::run(&long));
    let json = util::loadgen::run(&[&long[..], &["--json"]].concat());
    let piped = piped.join().unwrap();
    let output = on_terminal.child().wait().unwrap();
    assert!(output.success());
    drop(on_terminal);
    let screen = util::within(util::TIMEOUT, "reading the terminal", move || {
        reader.join().unwrap()
    });
    assert!(
        screen.contains("replies,") && screen.contains("/s so far"),
        "{screen:?}"
    );
    for run in [piped, json] {
        assert_eq!(run.code(), Some(0), "{:?}", run.output);
        assert_eq!(run.stderr(), "", "no progress line when piped");
    }
}
