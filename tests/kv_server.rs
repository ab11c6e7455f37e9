//! kv_server (examples/kv_server/) driven by Redis's own clients in both
//! serving modes: redis-cli running each command, a `--pipe` load,
//! redis-benchmark; then pipelining, commands split across writes, and
//! hostile input (a bulk length of 2^63, 10,000 nested arrays, a claimed
//! 60 MiB value that never comes): a clear error, the connection closed,
//! memory flat, the other clients served.
//!
//! Needs `redis-cli` and `redis-benchmark` (the Debian package
//! `redis-tools`; `.ci/run` installs it). Without them the tests fail
//! saying what to install.

mod util;

use std::net::SocketAddr;
use std::path::PathBuf;

use util::resp::{Client, command, words};
use util::tools::{data_kib, find_tool, rss_kib, run_tool, succeeded, tool, unread_by_server};
use util::{Process, start_example_server};

/// The two ways kv_server serves.
const MODES: [&[&str]; 2] = [&[], &["--threading"]];

fn redis_cli() -> PathBuf {
    tool("redis-cli", "redis-tools")
}

/// What `redis-cli` prints for one command (human-readable replies).
fn cli(addr: SocketAddr, args: &[&str]) -> String {
    let port = addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port, "--no-raw"];
    all.extend(args);
    let output = run_tool(&redis_cli(), &all, b"");
    succeeded(&format!("redis-cli {}", args.join(" ")), output)
        .trim_end()
        .to_owned()
}

/// Each command, as redis-cli shows its reply.
const SCRIPT: &[(&str, &str)] = &[
    ("PING", "PONG"),
    ("ECHO hello", "\"hello\""),
    ("SET k v EX 100", "OK"),
    ("GET k", "\"v\""),
    ("TTL k", "(integer) 100"),
    ("SET k v2 XX GET", "\"v\""),
    ("SET n 1 NX", "OK"),
    ("SET n 2 NX", "(nil)"),
    ("SET k v3 PX 100000", "OK"),
    ("GETSET k v4", "\"v3\""),
    ("PTTL k", "(integer) -1"),
    ("EXISTS k n nope", "(integer) 2"),
    ("DEL n nope", "(integer) 1"),
    ("INCR c", "(integer) 1"),
    ("INCRBY c 10", "(integer) 11"),
    ("DECR c", "(integer) 10"),
    ("DECRBY c 4", "(integer) 6"),
    ("INCR k", "(error) ERR value is not an integer or out of range"),
    ("MSET a 1 b 2", "OK"),
    ("MGET a b nope", "1) \"1\"\n2) \"2\"\n3) (nil)"),
    ("APPEND a 23", "(integer) 3"),
    ("STRLEN a", "(integer) 3"),
    ("EXPIRE a 100", "(integer) 1"),
    ("TTL a", "(integer) 100"),
    ("PEXPIRE b 100000", "(integer) 1"),
    ("PERSIST a", "(integer) 1"),
    ("TTL a", "(integer) -1"),
    ("PTTL nope", "(integer) -2"),
    ("KEYS a", "1) \"a\""),
    ("DBSIZE", "(integer) 4"),
    ("SELECT 0", "OK"),
    ("CONFIG GET save", "1) \"save\"\n2) \"\""),
    ("CONFIG GET appendonly", "1) \"appendonly\"\n2) \"no\""),
    ("CLIENT SETNAME tester", "OK"),
    ("GET", "(error) ERR wrong number of arguments for 'get' command"),
    (
        "NOPE x",
        "(error) ERR unknown command 'NOPE', with args beginning with: 'x'",
    ),
    (
        "HELLO 3",
        "(error) ERR unknown command `HELLO`, with args beginning with: `3`,",
    ),
    ("FLUSHDB", "OK"),
    ("DBSIZE", "(integer) 0"),
    ("SET x 1", "OK"),
    ("FLUSHALL", "OK"),
    ("QUIT", "OK"),
];

#[test]
fn a_missing_tool_names_its_package() {
    let dir = tempfile::tempdir().unwrap();
    let error = find_tool("no-such-tool", "some-package", dir.path().to_str().unwrap()).unwrap_err();
    assert!(error.contains("apt-get install some-package"), "{error}");
    assert!(error.contains(".ci/run"), "{error}");
}

#[test]
fn redis_cli_runs_every_command() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("kv_server", mode);
        for (line, expected) in SCRIPT {
            let args: Vec<&str> = line.split(' ').collect();
            assert_eq!(cli(addr, &args), *expected, "{line} ({mode:?})");
        }
    }
}

#[test]
fn redis_cli_pipes_ten_thousand_sets() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("kv_server", mode);
        let mut load = Vec::new();
        for i in 0..10_000 {
            load.extend(command(&[
                b"SET",
                format!("key:{i}").as_bytes(),
                format!("value:{i}").as_bytes(),
            ]));
        }
        let port = addr.port().to_string();
        let output = run_tool(&redis_cli(), &["-h", "127.0.0.1", "-p", &port, "--pipe"], &load);
        let report = succeeded("redis-cli --pipe", output);
        assert!(report.contains("errors: 0, replies: 10000"), "{report}");
        assert_eq!(cli(addr, &["DBSIZE"]), "(integer) 10000");
        assert_eq!(cli(addr, &["GET", "key:9999"]), "\"value:9999\"");
    }
}

#[test]
fn redis_benchmark_runs_its_tests_of_these_commands() {
    let benchmark = tool("redis-benchmark", "redis-tools");
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("kv_server", mode);
        let port = addr.port().to_string();
        for pipeline in ["1", "16"] {
            let output = run_tool(
                &benchmark,
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-n",
                    "2000",
                    "-c",
                    "20",
                    "-P",
                    pipeline,
                    "-q",
                    "-t",
                    "ping,set,get,incr,mset",
                ],
                b"",
            );
            let report = succeeded("redis-benchmark", output);
            for test in [
                "PING_INLINE",
                "PING_MBULK",
                "SET",
                "GET",
                "INCR",
                "MSET (10 keys)",
            ] {
                assert!(
                    report.contains(&format!("{test}: ")),
                    "{test} did not run: {report}"
                );
            }
        }
        // INCR ran 4,000 times on one key, in both runs.
        assert_eq!(cli(addr, &["GET", "counter:__rand_int__"]), "\"4000\"");
    }
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("kv_server", mode);
        let mut client = Client::connect(addr);
        let mut batch = Vec::new();
        for i in 0..1000 {
            batch.extend(words(&format!("SET k{i} {i}")));
            batch.extend(words(&format!("GET k{i}")));
        }
        batch.extend(b"PING\r\n");
        let replies = client.exchange(&batch, 2001);
        let mut expected = Vec::new();
        for i in 0..1000 {
            expected.extend(b"+OK\r\n");
            expected.extend(format!("${}\r\n{i}\r\n", i.to_string().len()).bytes());
        }
        expected.extend(b"+PONG\r\n");
        assert_eq!(
            String::from_utf8_lossy(&replies),
            String::from_utf8_lossy(&expected)
        );
    }
}

#[test]
fn a_command_split_across_writes_is_one_command() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("kv_server", mode);
        let mut client = Client::connect(addr);
        let value = "v".repeat(200_000);
        let whole = words(&format!("SET big {value}"));
        // Byte by byte at first, then in large pieces: the connection waits
        // for the rest each time.
        for byte in &whole[..20] {
            client.send(&[*byte]);
        }
        for piece in whole[20..].chunks(65_000) {
            client.send(piece);
        }
        assert_eq!(client.reply().unwrap(), b"+OK\r\n");
        assert_eq!(client.call("STRLEN big"), b":200000\r\n");
        // Inline, split mid-line.
        client.send(b"ECHO \"split");
        client.send(b" line\"\r\n");
        assert_eq!(client.reply().unwrap(), b"$10\r\nsplit line\r\n");
    }
}

/// Sends `hostile` on a connection of its own and returns what the server
/// answered before closing it; checks that another client is served all
/// along and that the server's memory stayed flat.
fn hostile(server: &Process, addr: SocketAddr, hostile: &[u8]) -> String {
    let pid = server.pid();
    let mut bystander = Client::connect(addr);
    assert_eq!(bystander.call("SET kept 1"), b"+OK\r\n");
    let before = rss_kib(pid);
    let mut attacker = Client::connect(addr);
    attacker.send(hostile);
    let answer = String::from_utf8_lossy(&attacker.until_closed()).into_owned();
    assert_eq!(
        bystander.call("GET kept"),
        b"$1\r\n1\r\n",
        "the other client is served"
    );
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < 16 * 1024, "the server grew by {grown} KiB");
    answer
}

#[test]
fn hostile_input_gets_a_clear_error_and_the_door() {
    for mode in MODES {
        let (server, addr, _lines) = start_example_server("kv_server", mode);
        let answer = hostile(&server, addr, b"*2\r\n$3\r\nGET\r\n$9223372036854775808\r\n");
        assert_eq!(answer, "-ERR Protocol error: invalid bulk length\r\n");
        let nested = b"*1\r\n".repeat(10_000);
        let answer = hostile(&server, addr, &nested);
        assert_eq!(answer, "-ERR Protocol error: expected '$', got '*'\r\n");
        let answer = hostile(&server, addr, &b"*".repeat(70_000));
        assert_eq!(answer, "-ERR Protocol error: too big mbulk count string\r\n");
        let answer = hostile(&server, addr, &b"x".repeat(70_000));
        assert_eq!(answer, "-ERR Protocol error: too big inline request\r\n");
        let answer = hostile(&server, addr, b"POST / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(answer, "", "an HTTP request is refused unanswered");
    }
}

#[test]
fn a_claimed_length_buys_no_memory_before_its_bytes() {
    let (server, addr, _lines) =
        start_example_server("kv_server", &["--max-bulk", "512MiB", "--max-command", "1GiB"]);
    let pid = server.pid();
    let (before, mapped_before) = (rss_kib(pid), data_kib(pid));
    // 100 clients each claim a 500 MiB value and send 1 KiB of it.
    let mut claimers = Vec::new();
    for _ in 0..100 {
        let mut client = Client::connect(addr);
        let mut start = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$524288000\r\n".to_vec();
        start.extend([b'x'; 1024]);
        client.send(&start);
        claimers.push(client);
    }
    // The claims get no answer: memory is read once the server has read
    // every byte of them (nothing waits in its receive queues).
    let clients: Vec<_> = claimers
        .iter()
        .map(|c| c.stream().local_addr().unwrap())
        .collect();
    util::eventually("the server has read the claims", || {
        unread_by_server(addr, &clients) == Some(0)
    });
    let mut bystander = Client::connect(addr);
    assert_eq!(bystander.call("PING"), b"+PONG\r\n");
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "100 claims of 500 MiB grew the server by {grown} KiB"
    );
    // Nor reserved (memory reserved and never touched is not resident).
    let mapped = data_kib(pid).saturating_sub(mapped_before);
    assert!(
        mapped < 1024 * 1024,
        "100 claims of 500 MiB made the server map {mapped} KiB more"
    );
    drop(claimers);
    assert_eq!(bystander.call("DBSIZE"), b":0\r\n", "no value was stored");
}
