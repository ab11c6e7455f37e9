//! `loadgen --pipeline N`: each connection writes N requests at once and
//! checks the N replies one by one. Against the crate's servers (both
//! modes, both drivers, raw and framed) every request counts, and the
//! server answered exactly as many as the report says; against servers
//! that answer a batch wrong (replies swapped, one missing, one short)
//! the run fails, as it does for single requests.

mod util;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use socketserver::echo::FramedUppercase;
use socketserver::{KeepAliveHandler, Mode, Next, ServerHandle, TcpRequest, TcpServer};
use util::faulty::{Counts, FaultyTcp, TcpFault};
use util::loadgen::{Run, count, failures, run};
use util::{Running, init_logging, serve};

/// An uppercase echo of either mode, raw or framed, that counts the
/// requests it answered: bytes for raw requests, frames for framed ones.
struct Counted {
    handle: ServerHandle<std::net::SocketAddr>,
    running: Running,
    answered: Arc<AtomicU64>,
}

impl Counted {
    fn start(mode: Mode, framed: bool) -> Self {
        let answered = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&answered);
        let builder = TcpServer::builder().mode(mode);
        let (handle, running) = if framed {
            serve(builder.bind(
                "127.0.0.1:0",
                move |request: &mut TcpRequest| -> io::Result<Next> {
                    let next = FramedUppercase.handle_one(request, &mut ())?;
                    if let Next::KeepOpen = next {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(next)
                },
            ))
        } else {
            serve(builder.bind(
                "127.0.0.1:0",
                move |request: &mut TcpRequest| -> io::Result<Next> {
                    let bytes = request.fill_buf_mut()?;
                    if bytes.is_empty() {
                        return Ok(Next::Close);
                    }
                    bytes.make_ascii_uppercase();
                    let n = bytes.len();
                    request.write_buffered(n)?;
                    seen.fetch_add(n as u64, Ordering::SeqCst);
                    Ok(Next::KeepOpen)
                },
            ))
        };
        Counted {
            handle,
            running,
            answered,
        }
    }

    fn target(&self) -> String {
        self.handle.local_addr().to_string()
    }

    /// Stops the server; the requests of `size` bytes it answered
    /// (`framed`: frames).
    fn stop(self, size: u64, framed: bool) -> u64 {
        self.running.shutdown();
        let answered = self.answered.load(Ordering::SeqCst);
        if framed {
            return answered;
        }
        assert_eq!(
            answered % size,
            0,
            "{answered} bytes answered: not whole requests"
        );
        answered / size
    }
}

/// Runs loadgen against `target` for `duration`, no warm-up (every
/// request counts), with `args`.
fn pipelined(target: &str, duration: &str, args: &[&str]) -> Run {
    let fixed = [
        "--target",
        target,
        "--warmup",
        "0s",
        "--duration",
        duration,
        "--json",
    ];
    run(&[args, &fixed[..]].concat())
}

/// Batches of four 32-byte requests from `connections` connections,
/// driven by `driver`, against a faulty server.
fn batches_of_four(server: &FaultyTcp, connections: &str, driver: &str, extra: &[&str]) -> Run {
    let args = [
        "tcp",
        "--pipeline",
        "4",
        "--size",
        "32",
        "--connections",
        connections,
        "--driver",
        driver,
    ];
    pipelined(&server.target(), "300ms", &[&args[..], extra].concat())
}

fn ops(report: &Value) -> u64 {
    count(report, "ops")
}

#[test]
fn every_pipelined_request_counts_and_the_server_answered_each() {
    init_logging();
    for mode in [Mode::Threading, Mode::Parked] {
        for (name, framed) in [("tcp", false), ("framed", true)] {
            for driver in ["threads", "epoll"] {
                let server = Counted::start(mode, framed);
                let case = format!("{mode:?} {name} --driver {driver}");
                let run = pipelined(
                    &server.target(),
                    "300ms",
                    &[
                        name,
                        "--pipeline",
                        "16",
                        "--connections",
                        "4",
                        "--size",
                        "48",
                        "--driver",
                        driver,
                        "--threads",
                        "2",
                    ],
                );
                assert_eq!(run.code(), Some(0), "{case}: {:?}", run.output);
                let report = run.report();
                assert_eq!(report["pipeline"], 16, "{case}: {report}");
                assert_eq!(failures(&report), 0, "{case}: {report}");
                let ops = ops(&report);
                assert!(ops > 0, "{case}: {report}");
                assert!(ops.is_multiple_of(16), "{case}: whole batches only: {report}");
                assert_eq!(
                    server.stop(48, framed),
                    ops,
                    "{case}: the server answered what the report counts: {report}"
                );
            }
        }
    }
}

#[test]
fn pipelined_open_loop_sends_a_batch_at_each_slot() {
    init_logging();
    for driver in ["threads", "epoll"] {
        let server = Counted::start(Mode::Threading, false);
        // 800 requests a second in batches of 4 over 2 connections for half
        // a second: 100 slots, 400 requests at the most.
        let run = pipelined(
            &server.target(),
            "500ms",
            &[
                "tcp",
                "--driver",
                driver,
                "--pipeline",
                "4",
                "--rate",
                "800",
                "--connections",
                "2",
            ],
        );
        assert_eq!(run.code(), Some(0), "{driver}: {:?}", run.output);
        let report = run.report();
        let ops = ops(&report);
        // A closed loop would send thousands.
        assert!(
            ops > 0 && ops <= 400 && ops.is_multiple_of(4),
            "{driver}: {ops} requests for 100 slots of 4: {report}"
        );
        assert_eq!(report["schedule"]["due"], 400, "{driver}: {report}");
        assert_eq!(failures(&report), 0, "{driver}: {report}");
        assert_eq!(server.stop(64, false), ops, "{driver}");
    }
}

#[test]
fn replies_swapped_within_a_batch_are_caught() {
    init_logging();
    // Every reply is the uppercase of a request of the batch, on another
    // request's place: only a message of its own per request tells.
    let server = FaultyTcp::start(32, TcpFault::SwapPairs);
    for driver in ["threads", "epoll"] {
        let run = batches_of_four(&server, "2", driver, &[]);
        assert_eq!(run.code(), Some(1), "{driver}: {:?}", run.output);
        let report = run.report();
        assert_eq!(report["passed"], false, "{driver}: {report}");
        assert_eq!(ops(&report), 0, "{driver}: {report}");
        assert!(count(&report, "mismatches") >= 4, "{driver}: {report}");
        assert_eq!(
            count(&report, "mismatches"),
            failures(&report),
            "{driver}: {report}"
        );
    }
}

#[test]
fn a_missing_or_short_reply_within_a_batch_fails_the_run() {
    init_logging();
    for fault in [TcpFault::DropEvery(7), TcpFault::ShortEvery(7)] {
        for driver in ["threads", "epoll"] {
            let server = FaultyTcp::start(32, fault);
            let run = batches_of_four(&server, "1", driver, &["--timeout", "100ms"]);
            let case = format!("{fault:?} --driver {driver}");
            assert_eq!(run.code(), Some(1), "{case}: {:?}", run.output);
            let report = run.report();
            assert_eq!(report["passed"], false, "{case}: {report}");
            // The 7th request is the 3rd of the 2nd batch: the batch before
            // it passes, and it and the request behind it fail.
            assert!(ops(&report) >= 4, "{case}: {report}");
            assert!(failures(&report) >= 2, "{case}: {report}");
            // Every failure is the reply that went wrong or one read
            // where it should have been.
            let wrong = count(&report, "mismatches") + count(&report, "short") + count(&report, "timeouts");
            assert_eq!(wrong, failures(&report), "{case}: {report}");
            assert!(Counts::get(&server.counts.requests) >= 8, "{case}");
        }
    }
}

#[test]
fn pipelining_is_refused_where_it_cannot_work() {
    for (args, says) in [
        (
            &["churn", "--pipeline", "2"][..],
            "--pipeline works in the tcp and framed modes",
        ),
        (
            &["udp", "--pipeline", "2"],
            "--pipeline works in the tcp and framed modes",
        ),
        (
            &["tcp", "--pipeline", "27", "--size", "1"],
            "1-byte messages can be only 26 different ones",
        ),
        (&["tcp", "--pipeline", "0"], "--pipeline"),
    ] {
        let run = run(&[args, &["--duration", "100ms"][..]].concat());
        assert_eq!(run.code(), Some(2), "{args:?}: {:?}", run.output);
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
    }
}
