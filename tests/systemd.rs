//! Socket activation and notification (feature `systemd`).
//!
//! The checks on passed sockets run a probe (tests/bin/activation_probe.rs)
//! as a child process with descriptors placed at 3, 4, ... and LISTEN_*
//! set as systemd would, so wrong pids, kinds, families and names are
//! covered without systemd. Then `systemd-socket-activate` (Debian package
//! `systemd`) activates the probe and every example server for real (TCP,
//! UDP and Unix sockets), and a Unix datagram socket standing in for
//! systemd's NOTIFY_SOCKET receives the servers' notifications.
#![cfg(all(feature = "systemd", feature = "restart", target_os = "linux"))]

mod util;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use crossbeam_channel::{Receiver, bounded};
use socket2::{Domain, Socket, Type};
use util::generations::Generations;
use util::{Process, TIMEOUT, connect, example_binary, place_fds, round_trip};

/// What LISTEN_PID says.
#[derive(Clone, Copy)]
enum ListenPid {
    /// The probe's own pid, as systemd sets it.
    Probe,
    /// Another process's.
    Other(u32),
}

/// Runs the probe with `fds` at 3, 4, ..., LISTEN_FDS set to their count
/// (unless `vars` sets it), the other `vars`, and `claims`; returns its
/// output lines.
fn probe(fds: &[&dyn AsFd], pid: ListenPid, vars: &[(&str, &str)], claims: &[&str]) -> Vec<String> {
    let count = fds.len().to_string();
    let export_pid = match pid {
        ListenPid::Probe => "export LISTEN_PID=$$".to_owned(),
        ListenPid::Other(pid) => format!("export LISTEN_PID={pid}"),
    };
    let mut command = Command::new("/bin/sh");
    // `exec` keeps the shell's pid, so $$ is the probe's pid.
    command
        .arg("-c")
        .arg(format!(r#"{export_pid}; exec "$0" "$@""#))
        .arg(example_binary("activation_probe"))
        .args(["--fds", &count])
        .args(claims)
        .env_remove("LISTEN_FDNAMES")
        .env("LISTEN_FDS", &count)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    place_fds(
        &mut command,
        fds.iter().map(|fd| fd.as_fd().as_raw_fd()).collect(),
    );
    let output = Process::spawn(&mut command).finish();
    assert!(output.status.success(), "probe failed: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The line starting with `prefix`.
fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"))
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn sockets_of_every_kind_are_adopted_by_name() {
    let dir = temp_dir();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unix = UnixListener::bind(dir.path().join("ctl.sock")).unwrap();
    let unix_dgram = UnixDatagram::bind(dir.path().join("log.sock")).unwrap();
    let lines = probe(
        &[&tcp, &udp, &unix, &unix_dgram],
        ListenPid::Probe,
        &[("LISTEN_FDNAMES", "web:dns:ctl:log")],
        &["unix-dgram:log", "tcp:web", "udp:dns", "unix:ctl"],
    );
    assert_eq!(
        line(&lines, "take:"),
        "take: ok [fd 3 (name 'web'): a TCP listener, fd 4 (name 'dns'): a UDP socket, \
         fd 5 (name 'ctl'): a Unix stream listener, fd 6 (name 'log'): a Unix datagram socket]"
    );
    assert_eq!(
        line(&lines, "tcp:web"),
        format!("tcp:web: ok {}", tcp.local_addr().unwrap())
    );
    assert_eq!(
        line(&lines, "udp:dns"),
        format!("udp:dns: ok {}", udp.local_addr().unwrap())
    );
    assert!(line(&lines, "unix:ctl").contains("ctl.sock"), "{lines:#?}");
    assert!(line(&lines, "unix-dgram:log").contains("log.sock"), "{lines:#?}");
    // Children of the server see neither the variables nor the sockets.
    assert_eq!(
        line(&lines, "env"),
        "env LISTEN_PID=unset LISTEN_FDS=unset LISTEN_FDNAMES=unset"
    );
    for fd in 3..=6 {
        assert_eq!(
            line(&lines, &format!("cloexec {fd}:")),
            format!("cloexec {fd}: yes")
        );
    }
}

#[test]
fn a_socket_of_another_kind_is_refused_saying_what_it_is() {
    let dir = temp_dir();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unix = UnixListener::bind(dir.path().join("ctl.sock")).unwrap();
    let not_listening = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    not_listening
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let lines = probe(
        &[&udp, &unix, &not_listening, &file, &tcp],
        ListenPid::Probe,
        &[("LISTEN_FDNAMES", "web:ctl:idle:file:tcp")],
        &[
            "tcp:web", "tcp:ctl", "tcp:idle", "tcp:file", "unix:tcp", "udp:web", "tcp:tcp",
        ],
    );
    let expected = [
        "tcp:web: error: fd 3 (name 'web') is a UDP socket, not a TCP listener",
        "tcp:ctl: error: fd 4 (name 'ctl') is a Unix stream listener, not a TCP listener",
        "tcp:idle: error: fd 5 (name 'idle') is a TCP socket that is not listening, not a TCP listener",
        "tcp:file: error: fd 6 (name 'file') is not a socket, not a TCP listener",
        "unix:tcp: error: fd 7 (name 'tcp') is a TCP listener, not a Unix stream listener",
    ];
    for expected in expected {
        let claim = expected.split(": ").next().unwrap();
        assert_eq!(line(&lines, &format!("{claim}:")), expected);
    }
    // A refused claim leaves the socket for the right one.
    assert_eq!(
        line(&lines, "udp:web"),
        format!("udp:web: ok {}", udp.local_addr().unwrap())
    );
    assert_eq!(
        line(&lines, "tcp:tcp"),
        format!("tcp:tcp: ok {}", tcp.local_addr().unwrap())
    );
}

#[test]
fn sockets_meant_for_another_process_are_left_alone() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let lines = probe(&[&tcp], ListenPid::Other(1), &[], &["tcp:0"]);
    assert_eq!(line(&lines, "take:"), "take: ok []");
    let refused = line(&lines, "tcp:0");
    assert!(
        refused.contains("none was passed: LISTEN_PID is 1, not this process"),
        "{refused}"
    );
    // Not adopted: the descriptor is not ours to mark.
    assert_eq!(line(&lines, "cloexec 3:"), "cloexec 3: no");
    assert_eq!(
        line(&lines, "env"),
        "env LISTEN_PID=unset LISTEN_FDS=unset LISTEN_FDNAMES=unset"
    );
}

#[test]
fn names_and_counts_must_agree() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lines = probe(&[&tcp, &udp], ListenPid::Probe, &[("LISTEN_FDNAMES", "web")], &[]);
    assert_eq!(
        line(&lines, "take:"),
        "take: error: LISTEN_FDNAMES has 1 names for LISTEN_FDS=2"
    );
    let lines = probe(&[&tcp], ListenPid::Probe, &[("LISTEN_FDS", "one")], &[]);
    assert_eq!(
        line(&lines, "take:"),
        r#"take: error: LISTEN_FDS="one" is not a number"#
    );
}

#[test]
fn a_descriptor_that_is_not_open_is_an_error_naming_it() {
    let lines = probe(&[], ListenPid::Probe, &[("LISTEN_FDS", "1")], &[]);
    let error = line(&lines, "take:");
    assert!(
        error.starts_with("take: error: LISTEN_FDS=1, name 'unknown': inherited fd 3: Bad file descriptor"),
        "{error}"
    );
}

#[test]
fn unnamed_sockets_are_claimed_by_index_or_as_unknown_and_only_once() {
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let lines = probe(
        &[&first, &second],
        ListenPid::Probe,
        &[],
        &[
            "kind:0",
            "tcp:unknown",
            "tcp:unknown",
            "tcp:unknown",
            "tcp:0",
            "tcp:5",
        ],
    );
    assert_eq!(line(&lines, "kind:0"), "kind:0: ok a TCP listener");
    let claims: Vec<&String> = lines.iter().filter(|l| l.starts_with("tcp:unknown")).collect();
    assert_eq!(
        claims,
        [
            &format!("tcp:unknown: ok {}", first.local_addr().unwrap()),
            &format!("tcp:unknown: ok {}", second.local_addr().unwrap()),
            &"tcp:unknown: error: fd 3 (name 'unknown') has already been claimed".to_owned(),
        ]
    );
    assert_eq!(
        line(&lines, "tcp:0"),
        "tcp:0: error: fd 3 (name 'unknown') has already been claimed"
    );
    assert_eq!(
        line(&lines, "tcp:5"),
        "tcp:5: error: no socket number 5 (counting from 0) was passed by systemd \
         (passed: fd 3 (name 'unknown'), fd 4 (name 'unknown'))"
    );
}

#[test]
fn one_name_for_several_kinds_finds_the_kind_asked_for() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lines = probe(
        &[&tcp, &udp],
        ListenPid::Probe,
        &[("LISTEN_FDNAMES", "app.socket:app.socket")],
        &["udp:app.socket", "tcp:app.socket", "udp:other"],
    );
    assert_eq!(
        line(&lines, "udp:app.socket"),
        format!("udp:app.socket: ok {}", udp.local_addr().unwrap())
    );
    assert_eq!(
        line(&lines, "tcp:app.socket"),
        format!("tcp:app.socket: ok {}", tcp.local_addr().unwrap())
    );
    assert!(
        line(&lines, "udp:other").starts_with("udp:other: error: no socket named 'other' was passed"),
        "{lines:#?}"
    );
}

// --- with systemd-socket-activate --------------------------------------

/// systemd-socket-activate's path; fails the test, saying what to
/// install, if it is missing.
fn socket_activate() -> &'static str {
    const PATH: &str = "/usr/bin/systemd-socket-activate";
    assert!(
        Path::new(PATH).exists(),
        "{PATH} is missing: install the Debian package `systemd` (apt-get install systemd)"
    );
    PATH
}

/// Lines read from `reader` on a thread, so reads can be bounded. Every
/// line is also copied to the test's output, and reading goes on when
/// nobody waits for lines any more: a writer never meets a closed pipe.
fn lines_of(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = bounded(1024);
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let _ = tx.try_send(line);
        }
    });
    lines
}

/// Waits for a line starting with `prefix`, skipping others.
fn wait_for_line(lines: &Receiver<String>, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line starting with {prefix:?} within {TIMEOUT:?}"),
        }
    }
}

/// An activator listening on a free TCP or UDP port of 127.0.0.1: returns
/// the process, its port and its standard output. The port is picked
/// free first; if another process takes it meanwhile, another is picked.
fn activate(datagram: bool, fdname: &str, program: &Path, args: &[&str]) -> (Process, u16, Receiver<String>) {
    for _ in 0..5 {
        let port = if datagram {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let address = format!("127.0.0.1:{port}");
        let mut command = Command::new(socket_activate());
        if datagram {
            command.arg("--datagram");
        }
        command
            .args(["--listen", &address, "--fdname", fdname, "--setenv=RUST_LOG=info"])
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut activator = Process::spawn(&mut command);
        let stdout = activator.stdout_lines();
        let stderr = lines_of(activator.child().stderr.take().unwrap());
        match stderr.recv_timeout(TIMEOUT) {
            Ok(line) if line.starts_with(&format!("Listening on {address}")) => {
                return (activator, port, stdout);
            }
            Ok(line) if line.contains("in use") => continue,
            other => panic!("systemd-socket-activate did not start listening: {other:?}"),
        }
    }
    panic!("no free port found for systemd-socket-activate in 5 tries");
}

/// The address an activated example server says it listens on: the
/// activator's, not `--port 1` (which it must not bind).
fn assert_listens_on_the_passed_socket(stdout: &Receiver<String>, port: u16) {
    assert_eq!(
        wait_for_line(stdout, "listening on"),
        format!("listening on 127.0.0.1:{port}")
    );
}

/// SIGTERM to an activated server (systemd-socket-activate execs it, so
/// it has the activator's pid); it must stop cleanly.
fn stop(mut server: Process) {
    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}

/// An activator listening on a Unix socket at `path`: returns the
/// process and its standard output.
fn activate_unix(path: &Path, fdname: &str, program: &Path, args: &[&str]) -> (Process, Receiver<String>) {
    let mut activator = Process::spawn(
        Command::new(socket_activate())
            .arg("--listen")
            .arg(path)
            .args(["--fdname", fdname])
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = activator.stdout_lines();
    let stderr = lines_of(activator.child().stderr.take().unwrap());
    wait_for_line(&stderr, "Listening on");
    (activator, stdout)
}

#[test]
fn systemd_socket_activate_starts_the_uppercase_tcp_server_on_its_socket_in_every_mode() {
    let program = example_binary("uppercase_tcp_server");
    for mode in [&[][..], &["--serial"], &["--parked"]] {
        let mut args = vec!["--port", "1"];
        args.extend_from_slice(mode);
        let (server, port, stdout) = activate(false, "uppercase", &program, &args);
        // systemd-socket-activate starts the program on the first
        // connection, which waits in the backlog meanwhile.
        let mut client = connect(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(
            round_trip(&mut client, b"activated").unwrap(),
            b"ACTIVATED",
            "{mode:?}"
        );
        assert_listens_on_the_passed_socket(&stdout, port);
        wait_for_line(&stdout, "ready pid");
        drop(client);
        stop(server);
    }
}

#[test]
fn systemd_socket_activate_passes_a_unix_socket_to_the_uppercase_tcp_server() {
    let dir = temp_dir();
    let path = dir.path().join("upper.sock");
    // Not the path it serves on: the passed socket is.
    let unused = dir.path().join("unused.sock");
    let (server, stdout) = activate_unix(
        &path,
        "upper",
        &example_binary("uppercase_tcp_server"),
        &["--unix", unused.to_str().unwrap()],
    );
    let mut client = UnixStream::connect(&path).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut client, b"over unix").unwrap();
    let mut reply = [0u8; 9];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"OVER UNIX");
    assert_eq!(
        wait_for_line(&stdout, "listening on"),
        format!("listening on {}", path.display())
    );
    assert!(!dir.path().join("unused.sock").exists());
    drop(client);
    stop(server);
    // systemd's socket file is systemd's to remove.
    assert!(path.exists());
}

#[test]
fn systemd_socket_activate_starts_the_uppercase_udp_server_on_its_socket() {
    let program = example_binary("uppercase_udp_server");
    for mode in [&[][..], &["--serial"]] {
        let mut args = vec!["--port", "1"];
        args.extend_from_slice(mode);
        let (server, port, stdout) = activate(true, "uppercase", &program, &args);
        // The first datagram starts the program and is answered.
        let client = util::udp_client();
        let server_addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(
            util::udp_round_trip(&client, server_addr, b"datagram").unwrap(),
            b"DATAGRAM",
            "{mode:?}"
        );
        assert_listens_on_the_passed_socket(&stdout, port);
        stop(server);
    }
}

#[test]
fn every_example_server_adopts_the_socket_systemd_passes() {
    let files = temp_dir();
    let dir = files.path().to_str().unwrap();
    let servers: [(&str, bool, &[&str]); 4] = [
        ("file_server", false, &["--dir", dir]),
        ("remote_shell_server", false, &["--key", "k"]),
        ("chat_server", true, &[]),
        ("uppercase_udp_server", true, &[]),
    ];
    for (name, datagram, extra) in servers {
        let mut args = vec!["--port", "1"];
        args.extend_from_slice(extra);
        let (server, port, stdout) = activate(datagram, name, &example_binary(name), &args);
        let client = if datagram {
            // Anything wakes it; a chat server answers a JOIN.
            let client = util::udp_client();
            let server_addr = SocketAddr::from(([127, 0, 0, 1], port));
            client.send_to(b"JOIN systemd", server_addr).unwrap();
            let mut reply = [0u8; 256];
            let len = util::recv_from_only(&client, server_addr, &mut reply).expect("a reply");
            assert!(len > 0, "{name}");
            None
        } else {
            Some(connect(SocketAddr::from(([127, 0, 0, 1], port))))
        };
        assert_listens_on_the_passed_socket(&stdout, port);
        drop(client);
        stop(server);
    }
}

#[test]
fn systemd_socket_activate_passes_udp_sockets() {
    let probe = example_binary("activation_probe");
    let (activator, port, stdout) = activate(true, "dns", &probe, &["--fds", "1", "udp:dns"]);
    // A datagram is what starts the program.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"wake up", ("127.0.0.1", port)).unwrap();
    assert_eq!(wait_for_line(&stdout, "cloexec 3"), "cloexec 3: yes");
    assert_eq!(
        wait_for_line(&stdout, "udp:dns"),
        format!("udp:dns: ok 127.0.0.1:{port}")
    );
    assert!(activator.finish().status.success());
}

#[test]
fn systemd_socket_activate_passes_unix_sockets() {
    let dir = temp_dir();
    let path = dir.path().join("ctl.sock");
    let (activator, stdout) = activate_unix(
        &path,
        "ctl",
        &example_binary("activation_probe"),
        &["--fds", "1", "unix:ctl"],
    );
    let _client = UnixStream::connect(&path).unwrap();
    let claimed = wait_for_line(&stdout, "unix:ctl");
    assert!(
        claimed.starts_with("unix:ctl: ok") && claimed.contains("ctl.sock"),
        "{claimed}"
    );
    assert!(activator.finish().status.success());
}

// --- notification ------------------------------------------------------

/// A stand-in for systemd's notification socket, and the variables that
/// point a server at it, with a 400 ms watchdog (a ping every 100 ms).
struct Notify {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

impl Notify {
    fn new() -> Notify {
        let dir = temp_dir();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        Notify {
            _dir: dir,
            path,
            socket,
        }
    }

    /// `command` run as systemd would run a `Type=notify` service with
    /// `WatchdogSec=`.
    fn service<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("NOTIFY_SOCKET", &self.path)
            .env("WATCHDOG_USEC", "400000")
            .env_remove("WATCHDOG_PID")
    }

    /// Receives notifications like systemd: one datagram each, bounded.
    fn next(&self) -> String {
        let mut buffer = [0u8; 4096];
        let len = self
            .socket
            .recv(&mut buffer)
            .expect("a notification within the timeout");
        String::from_utf8(buffer[..len].to_vec()).unwrap()
    }

    /// The next notification that is not a watchdog ping.
    fn next_state(&self) -> String {
        loop {
            let message = self.next();
            if message != "WATCHDOG=1\n" {
                return message;
            }
        }
    }

    /// READY=1 with process `pid` as the main one, then the status line.
    fn expect_serving(&self, pid: u32) {
        assert_eq!(self.next_state(), format!("READY=1\nMAINPID={pid}\n"));
        let status = self.next_state();
        assert!(status.starts_with("STATUS=serving on 127.0.0.1:"), "{status:?}");
    }

    /// Three watchdog pings in a row, from an idle server's loop.
    fn expect_pings(&self) {
        for _ in 0..3 {
            assert_eq!(self.next(), "WATCHDOG=1\n");
        }
    }
}

#[test]
fn the_server_notifies_ready_status_watchdog_and_stopping_and_a_restart_hands_over_main_pid() {
    let notify = Notify::new();
    let mut server = Generations::start(
        notify
            .service(&mut Command::new(example_binary("uppercase_tcp_server")))
            .args(["--port", "0", "--grace", "500ms", "--ready-timeout", "10s"])
            .env("RUST_LOG", "info"),
    );
    let first = server.wait_ready();
    notify.expect_serving(first);
    // The idle server's loop keeps the watchdog fed.
    notify.expect_pings();

    // A restart: the new process becomes the main process; the old one
    // does not say STOPPING, since the service goes on.
    server.signal(libc::SIGHUP);
    let second = server.wait_ready();
    assert_ne!(second, first);
    notify.expect_serving(second);
    assert_eq!(server.wait_exit(first), Some(0), "the old process's exit code");
    notify.socket.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 4096];
    while let Ok(len) = notify.socket.recv(&mut buffer) {
        assert_eq!(&buffer[..len], b"WATCHDOG=1\n", "sent during the handover");
    }
    notify.socket.set_nonblocking(false).unwrap();

    // SIGTERM to the new one: STOPPING=1, then it exits.
    server.signal(libc::SIGTERM);
    assert_eq!(notify.next_state(), "STOPPING=1\n");
    server.wait_for_line(&format!("exited pid {second}"));
    assert_eq!(server.wait_exit(second), Some(0), "the new process's exit code");
}

#[test]
fn a_datagram_server_notifies_ready_feeds_the_watchdog_from_its_loop_and_says_stopping() {
    let notify = Notify::new();
    let mut server = Process::spawn(
        notify
            .service(&mut Command::new(example_binary("uppercase_udp_server")))
            .args(["--port", "0", "--grace", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    notify.expect_serving(server.child().id());
    // The threading datagram server's workers run its service actions
    // on the interval, idle or not.
    notify.expect_pings();
    server.signal(libc::SIGTERM);
    assert_eq!(notify.next_state(), "STOPPING=1\n");
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}
