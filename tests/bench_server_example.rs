//! The benchmark servers (examples/bench_server.rs), end to end: each
//! kind starts, answers the uppercase echo in its own framing, stops on
//! SIGTERM and reports what scripts/bench-compare.sh reads from it.

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;

use util::{connect, udp_client, udp_round_trip};

/// One exchange in the server's protocol.
fn exchange(kind: &str, addr: SocketAddr) {
    match kind {
        "crate-tcp" | "plain-tcp" => {
            assert_eq!(
                util::round_trip(&mut connect(addr), b"bench me").unwrap(),
                b"BENCH ME"
            );
        }
        "crate-framed" => {
            let mut stream = connect(addr);
            let mut frame = 8u32.to_be_bytes().to_vec();
            frame.extend_from_slice(b"bench me");
            stream.write_all(&frame).unwrap();
            let mut reply = [0u8; 12];
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(&reply[..4], &8u32.to_be_bytes());
            assert_eq!(&reply[4..], b"BENCH ME");
        }
        "crate-udp" | "plain-udp" => {
            assert_eq!(
                udp_round_trip(&udp_client(), addr, b"bench me").unwrap(),
                b"BENCH ME"
            );
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_kind_serves_and_reports_on_sigterm() {
    for kind in ["crate-tcp", "crate-framed", "crate-udp", "plain-tcp", "plain-udp"] {
        let (mut server, addr, lines) =
            util::start_example_server("bench_server", &["--kind", kind, "--grace", "100ms"]);
        exchange(kind, addr);
        server.signal(libc::SIGTERM);
        let output = server.finish();
        assert!(output.status.success(), "{kind}: {output:?}");
        // The rest of its output, to the end (it has exited).
        let report: Vec<String> = std::iter::from_fn(|| lines.recv_timeout(util::TIMEOUT).ok()).collect();
        if kind.starts_with("crate") {
            let took = report
                .iter()
                .find_map(|l| l.strip_prefix("shutdown took ")?.strip_suffix(" us"))
                .unwrap_or_else(|| panic!("{kind}: no shutdown time in {report:?}"));
            took.parse::<u64>().unwrap();
        }
        let rss = report
            .iter()
            .find_map(|l| l.strip_prefix("peak rss ")?.strip_suffix(" KiB"))
            .unwrap_or_else(|| panic!("{kind}: no peak memory in {report:?}"));
        assert!(rss.parse::<u64>().unwrap() > 0, "{kind}: {rss}");
    }
}
