//! The remote shell examples, end to end: the real server and client as
//! child processes.
#![cfg(all(feature = "message", feature = "auth"))]

mod util;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::Process;

const KEY: &str = "a teaching key";

fn client(addr: SocketAddr, key: &str, commands: &[&str]) -> Output {
    let mut command = Command::new(util::example_binary("remote_shell_client"));
    command
        .args(["--port", &addr.port().to_string()])
        .env("REMOTE_SHELL_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for c in commands {
        command.args(["--command", c]);
    }
    Process::spawn(&mut command).finish()
}

#[test]
fn the_server_refuses_to_start_without_a_key() {
    let output = Process::spawn(
        Command::new(util::example_binary("remote_shell_server"))
            .args(["--port", "0"])
            .env_remove("REMOTE_SHELL_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to start without a key"));
}

#[test]
fn commands_run_for_the_right_key_only_whole_and_within_their_time() {
    // The server's key comes from its environment, like the client's.
    let mut server = Process::spawn(
        Command::new(util::example_binary("remote_shell_server"))
            .args(["--port", "0", "--time-limit-ms", "300", "--grace-ms", "200"])
            .env("REMOTE_SHELL_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = server.stdout_lines();
    let first = lines.recv_timeout(util::TIMEOUT).expect("the server's address");
    let addr: SocketAddr = first.strip_prefix("listening on ").unwrap().parse().unwrap();

    // A wrong key is refused before any command runs.
    let refused = client(addr, "not the key", &["touch /tmp/should-not-run"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("was the key wrong"),
        "{refused:?}"
    );

    // 2,000,000 lines (14.9 MB) arrive whole, and the next command's
    // reply stays separate: no sticky packets.
    let output = client(addr, KEY, &["seq 1 2000000", "echo next"]);
    assert!(
        output.status.success(),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut expected = String::with_capacity(15_000_000);
    for n in 1..=2_000_000 {
        expected.push_str(&n.to_string());
        expected.push('\n');
    }
    expected.push_str("next\n");
    assert!(output.stdout == expected.as_bytes(), "the output was altered");

    // Standard output and error stay apart; the exit code is reported.
    let output = client(addr, KEY, &["echo out; echo err >&2; exit 3"]);
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n[exit code 3]\n");

    // A command that outlives the limit is killed and reported.
    let started = Instant::now();
    let output = client(addr, KEY, &["sleep 30; echo never"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the command was not killed"
    );
    assert_eq!(output.stdout, b"");
    assert!(String::from_utf8_lossy(&output.stderr).contains("[timed out: the command was killed]"));

    // A background job cannot outlive the command, or hold the reply
    // up by keeping the output open.
    let started = Instant::now();
    let output = client(addr, KEY, &["sleep 30 & echo started"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a background job held the reply"
    );
    assert_eq!(output.stdout, b"started\n");

    server.signal(libc::SIGTERM);
    let log = server.finish();
    assert!(log.status.success());
    let log = String::from_utf8_lossy(&log.stderr);
    assert!(log.contains("failed verification"), "{log}");
    assert!(!std::path::Path::new("/tmp/should-not-run").exists());
}
