//! The remote shell examples, end to end: the real server and client as
//! child processes.
#![cfg(all(feature = "message", feature = "auth", target_os = "linux"))]

mod util;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use util::{Process, TIMEOUT, eventually};

const KEY: &str = "a teaching key";

fn client_command(addr: SocketAddr, key: &str, commands: &[&str]) -> Command {
    let mut command = Command::new(util::example_binary("remote_shell_client"));
    command
        .args(["--port", &addr.port().to_string()])
        .env("REMOTE_SHELL_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for c in commands {
        command.args(["--command", c]);
    }
    command
}

fn client(addr: SocketAddr, key: &str, commands: &[&str]) -> Output {
    Process::spawn(&mut client_command(addr, key, commands)).finish()
}

/// Starts the server with the key in its environment; returns it, its
/// address and the rest of its standard output.
fn start_server(args: &[&str]) -> (Process, SocketAddr, Receiver<String>) {
    let mut server = Process::spawn(
        Command::new(util::example_binary("remote_shell_server"))
            .args(["--port", "0"])
            .args(args)
            .env("REMOTE_SHELL_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = server.stdout_lines();
    let first = lines.recv_timeout(TIMEOUT).expect("the server's address");
    let addr = first.strip_prefix("listening on ").unwrap().parse().unwrap();
    (server, addr, lines)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The processes of process group `group` that are still alive (zombies
/// waiting to be reaped do not count), from /proc.
fn group_members(group: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue; // it just ended
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        if fields[0] != "Z" && fields[2].parse::<i32>() == Ok(group) {
            members.push(pid);
        }
    }
    members
}

/// Waits (bounded) for the command that writes its shell's pid, its
/// process group's id, to `file`.
fn group_of_command(file: &Path) -> i32 {
    eventually("the command has started", || {
        fs::read_to_string(file).is_ok_and(|s| s.ends_with('\n'))
    });
    let group: i32 = fs::read_to_string(file).unwrap().trim().parse().unwrap();
    assert!(!group_members(group).is_empty(), "the command is not running");
    group
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
    assert!(stderr(&output).contains("refusing to start without a key"));
}

#[test]
fn commands_run_for_the_right_key_only_whole_and_within_their_time() {
    // Long enough for the 15 MB below on a loaded machine (300 ms was not,
    // and the output was cut at the limit), short enough to test it.
    let (mut server, addr, _lines) = start_server(&["--time-limit", "2s", "--grace", "200ms"]);

    // A wrong key is refused at connect time, before any command runs.
    let refused = client(addr, "not the key", &["touch /tmp/should-not-run"]);
    assert_eq!(refused.status.code(), Some(255), "{refused:?}");
    assert_eq!(
        stderr(&refused),
        format!("remote_shell_client: {addr}: the server refused the key\n")
    );

    // 2,000,000 lines (14.9 MB) arrive whole, and the next command's
    // reply stays separate: no sticky packets.
    let output = client(addr, KEY, &["seq 1 2000000", "echo next"]);
    assert!(output.status.success(), "{:?}", stderr(&output));
    let mut expected = String::with_capacity(15_000_000);
    for n in 1..=2_000_000 {
        expected.push_str(&n.to_string());
        expected.push('\n');
    }
    expected.push_str("next\n");
    assert!(
        output.stdout == expected.as_bytes(),
        "the output was altered: {} bytes of {}; {}",
        output.stdout.len(),
        expected.len(),
        stderr(&output)
    );

    // Standard output and error stay apart; the exit code is reported.
    let output = client(addr, KEY, &["echo out; echo err >&2; exit 3"]);
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(stderr(&output), "err\n[exit code 3]\n");

    // A command that outlives the limit is killed and reported.
    let started = Instant::now();
    let output = client(addr, KEY, &["sleep 30; echo never"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the command was not killed"
    );
    assert_eq!(output.stdout, b"");
    assert!(stderr(&output).contains("[timed out: the command was killed]"));

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
    let log = stderr(&log);
    assert!(log.contains("failed verification"), "{log}");
    assert!(!Path::new("/tmp/should-not-run").exists());
}

#[test]
fn the_client_exits_with_the_remote_status() {
    let (mut server, addr, _lines) = start_server(&["--time-limit", "300ms", "--grace", "200ms"]);
    let status = |commands: &[&str]| client(addr, KEY, commands).status.code();
    assert_eq!(status(&["true"]), Some(0));
    assert_eq!(status(&["exit 7"]), Some(7));
    // Killed by a signal: 128 + its number, as a shell reports it.
    assert_eq!(status(&["kill -KILL $$"]), Some(128 + 9));
    // Killed at the time limit: 124, as timeout(1) reports it.
    assert_eq!(status(&["sleep 30"]), Some(124));
    // The last command's status, as with sh -c 'a; b'.
    assert_eq!(status(&["exit 7", "true"]), Some(0));
    assert_eq!(status(&["true", "exit 5"]), Some(5));
    // Interactive too.
    let mut interactive = Process::spawn(&mut client_command(addr, KEY, &[]));
    interactive
        .child()
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo hi\nexit 9\n")
        .unwrap();
    let output = interactive.finish();
    assert_eq!(output.status.code(), Some(9), "{output:?}");

    // A server that is not there: the client's own failure, 255, naming
    // the address.
    server.signal(libc::SIGTERM);
    assert!(server.finish().status.success());
    let gone = client(addr, KEY, &["true"]);
    assert_eq!(gone.status.code(), Some(255));
    assert!(
        stderr(&gone).contains(&format!("cannot connect to {addr}")),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn a_server_that_stops_is_not_taken_for_a_refused_key() {
    let (mut server, addr, _lines) = start_server(&["--grace", "100ms"]);
    let mut interactive = Process::spawn(&mut client_command(addr, KEY, &[]));
    let mut input = interactive.child().stdin.take().unwrap();
    let output = interactive.stdout_lines();
    input.write_all(b"echo first\n").unwrap();
    // The prompt has no newline: it starts the line the output ends.
    let line = output.recv_timeout(TIMEOUT).unwrap();
    assert!(line.ends_with("first"), "{line}");
    server.signal(libc::SIGTERM);
    assert!(server.finish().status.success());
    input.write_all(b"echo second\n").unwrap();
    drop(input);
    let ended = interactive.finish();
    assert_eq!(ended.status.code(), Some(255));
    let said = stderr(&ended);
    assert!(said.contains("the server closed the connection"), "{said}");
    assert!(!said.contains("key"), "{said}");
}

#[test]
fn a_command_dies_with_its_client() {
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("pid");
    let (mut server, addr, _lines) = start_server(&["--time-limit", "60s", "--grace", "200ms"]);
    let command = format!("echo $$ > {}; sleep 13; echo done", pid_file.display());
    let mut doomed = Process::spawn(&mut client_command(addr, KEY, &[&command]));
    let group = group_of_command(&pid_file);
    doomed.signal(libc::SIGKILL);
    let _ = doomed.finish();
    eventually("the command's process group is gone", || {
        group_members(group).is_empty()
    });
    server.signal(libc::SIGTERM);
    let log = server.finish();
    assert!(log.status.success());
    assert!(
        stderr(&log).contains("the connection closed while"),
        "{}",
        stderr(&log)
    );
}

#[test]
fn a_command_dies_when_the_server_stops() {
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("pid");
    let (mut server, addr, _lines) = start_server(&["--time-limit", "60s", "--grace", "200ms"]);
    let command = format!("echo $$ > {}; sleep 27; echo done", pid_file.display());
    let running = Process::spawn(&mut client_command(addr, KEY, &[&command]));
    let group = group_of_command(&pid_file);
    let stopping = Instant::now();
    server.signal(libc::SIGINT);
    let log = server.finish();
    assert!(log.status.success(), "{log:?}");
    // The grace period first: the command was not killed at once.
    assert!(stopping.elapsed() >= Duration::from_millis(200));
    let log = stderr(&log);
    assert!(!log.contains("detached"), "{log}");
    eventually("the command's process group is gone", || {
        group_members(group).is_empty()
    });
    let output = running.finish();
    assert_eq!(output.status.code(), Some(255), "{output:?}");
}
