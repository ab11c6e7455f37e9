//! The examples to copy (README "Examples to copy"), end to end: each
//! binary started as a child process on a free port (or a path in a
//! temporary directory), talked to over loopback, answers checked, then
//! stopped by a signal and its exit status checked; what a user would
//! otherwise take on trust is checked too: the threading and parked echo
//! differ in one word, each file is at most 80 lines as the README says,
//! failures exit 1 naming the address, wrong arguments exit 2.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Output;

use crossbeam_channel::Receiver;
use util::{EXAMPLES_TO_COPY, Process, TIMEOUT, connect, round_trip, udp_client, udp_round_trip};

fn source(example: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{example}.rs"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Identifiers whole, every other character on its own: the words a diff
/// of two programs would show.
fn tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        match (start, word) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                tokens.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
        if !word {
            tokens.push(&text[i..i + c.len_utf8()]);
        }
    }
    tokens.extend(start.map(|s| &text[s..]));
    tokens
}

#[test]
fn echo_threading_and_echo_parked_differ_in_one_word() {
    let (threading, parked) = (source("echo_threading"), source("echo_parked"));
    let (a, b) = (tokens(&threading), tokens(&parked));
    let differences: Vec<(&str, &str)> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (*x, *y))
        .collect();
    assert_eq!(a.len(), b.len(), "the files differ in more than a word");
    assert_eq!(differences, [("ThreadingTcpServer", "ParkedTcpServer")]);
}

/// The README's table row of `example`: its cells.
fn readme_row(readme: &str, example: &str) -> Vec<String> {
    let start = format!("| [`{example}`](examples/{example}.rs) |");
    let row = readme
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("README lists no {example} in Examples to copy"));
    row.split(" | ")
        .map(|cell| cell.trim_matches(['|', ' ']).to_owned())
        .collect()
}

#[test]
fn each_is_at_most_80_lines_of_plain_rust_as_the_readme_says() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for example in EXAMPLES_TO_COPY {
        let text = source(example);
        let lines = text.lines().count();
        assert!(lines <= 80, "{example} has {lines} lines");
        assert!(
            !text.contains("mod common") && !text.contains("clap"),
            "{example}"
        );
        let row = readme_row(&readme, example);
        assert_eq!(row[2], lines.to_string(), "README's line count of {example}");
        assert!(row[3].contains(&format!("--example {example}")), "{row:?}");
    }
}

/// Stops an example server with `signal` and checks it exits 0.
fn stop(mut server: Process, signal: libc::c_int) -> Output {
    server.signal(signal);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    output
}

/// The line after "listening on": how to talk to the server.
fn talk_line(lines: &Receiver<String>) -> String {
    let line = lines.recv_timeout(TIMEOUT).expect("a line on how to talk to it");
    line.strip_prefix("talk to it: ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned()
}

fn assert_usage_error(example: &str, args: &[&str]) {
    let output = util::run_example_with_env(example, args, &[("SHARED_KEY", "k")]);
    assert_eq!(output.status.code(), Some(2), "{example} {args:?}: {output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with("usage: "),
        "{output:?}"
    );
}

#[test]
fn echo_threading_and_echo_parked_echo_lines_and_stop_on_sigterm() {
    for example in ["echo_threading", "echo_parked"] {
        let (server, addr, lines) = util::start_example(example, &["127.0.0.1:0"], &[]);
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        assert_eq!(talk_line(&lines), format!("nc 127.0.0.1 {}", addr.port()));
        let idle = connect(addr); // holds a thread on one server, not on the other
        let mut client = connect(addr);
        assert_eq!(
            round_trip(&mut client, b"hello\nw\xc3\xb6rld\n").unwrap(),
            b"hello\nw\xc3\xb6rld\n"
        );
        // A line longer than the handler reads at once comes back whole
        // (written on a thread of its own: the answer flows meanwhile).
        let long: Vec<u8> = [vec![b'a'; 200_000], b"\n".to_vec()].concat();
        let mut writer = client.try_clone().unwrap();
        let sent = long.clone();
        let writing = std::thread::spawn(move || writer.write_all(&sent));
        let mut reply = vec![0; long.len()];
        client.read_exact(&mut reply).unwrap();
        writing.join().unwrap().unwrap();
        assert!(reply == long, "the long line came back changed");
        drop((idle, client));
        let log = String::from_utf8_lossy(&stop(server, libc::SIGTERM).stderr).into_owned();
        assert!(log.contains("connection from 127.0.0.1:"), "{log}");
    }
}

#[test]
fn a_server_that_cannot_serve_names_the_address_and_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (example, args) in [
        ("echo_threading", vec![addr.as_str()]),
        ("echo_parked", vec![addr.as_str()]),
        ("echo_framed", vec!["server", addr.as_str()]),
        ("echo_tls", vec![addr.as_str()]),
    ] {
        let output = util::run_example(example, &args);
        assert_eq!(output.status.code(), Some(1), "{example}: {output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&addr),
            "{output:?}"
        );
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap().to_string();
    let output = util::run_example("echo_udp", &[&addr]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&addr),
        "{output:?}"
    );
}

#[test]
fn wrong_arguments_are_a_usage_error() {
    for example in EXAMPLES_TO_COPY {
        assert_usage_error(example, &["--help"]);
    }
    for example in ["echo_threading", "echo_parked", "echo_udp", "echo_tls"] {
        assert_usage_error(example, &["localhost"]); // an IP and a port, please
    }
    assert_usage_error("echo_framed", &[]);
    assert_usage_error("echo_framed", &["client", "127.0.0.1:7002"]); // no message
    assert_usage_error("echo_verified", &["server", "nowhere"]);
}

#[test]
fn echo_udp_answers_each_datagram_and_stops_on_sigterm() {
    let (server, addr, lines) = util::start_example("echo_udp", &["127.0.0.1:0"], &[]);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert_eq!(talk_line(&lines), format!("nc -u 127.0.0.1 {}", addr.port()));
    let client = udp_client();
    for datagram in [&b"hello"[..], b"", &[0xff; 65_507]] {
        assert_eq!(udp_round_trip(&client, addr, datagram).unwrap(), datagram);
    }
    stop(server, libc::SIGTERM);
}

#[test]
fn echo_unix_serves_its_socket_and_removes_it_on_ctrl_c_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (server, at, lines) = util::start_example("echo_unix", &[path.to_str().unwrap()], &[]);
        assert_eq!(Path::new(&at), path);
        assert_eq!(talk_line(&lines), format!("nc -U {}", path.display()));
        let mut client = UnixStream::connect(&path).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.write_all(b"one\ntwo\n").unwrap();
        let mut reply = [0; 8];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"one\ntwo\n");
        drop(client);
        stop(server, signal);
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

/// The frames of `messages`, back to back, as one buffer.
fn frames(messages: &[&[u8]]) -> Vec<u8> {
    messages
        .iter()
        .flat_map(|m| [&(m.len() as u32).to_be_bytes()[..], m].concat())
        .collect()
}

#[test]
fn echo_framed_answers_each_message_of_one_write_and_its_client_prints_them() {
    let (server, addr, lines) = util::start_example("echo_framed", &["server", "127.0.0.1:0"], &[]);
    let talk = talk_line(&lines);
    assert_eq!(
        talk,
        format!("cargo run --example echo_framed -- client {addr} hello world")
    );

    let output = util::run_example(
        "echo_framed",
        &["client", &addr, "hello", "sticky", "", "packets"],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "HELLO\nSTICKY\n\nPACKETS\n"
    );

    // Any client: two frames in one write, two answers.
    let mut client = connect(addr.parse().unwrap());
    let sent = frames(&[b"stuck", b"\x00together\n"]);
    assert_eq!(
        round_trip(&mut client, &sent).unwrap(),
        frames(&[b"STUCK", b"\x00TOGETHER\n"])
    );
    drop(client);
    stop(server, libc::SIGTERM);

    let nobody = format!("127.0.0.1:{}", util::tools::free_port());
    let output = util::run_example("echo_framed", &["client", &nobody, "hello"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&nobody),
        "{output:?}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn echo_tls_serves_with_the_certificate_it_made_and_removes_it_on_exit() {
    use socketserver::tls::rustls::pki_types::ServerName;
    use socketserver::tls::rustls::{ClientConfig, ClientConnection, StreamOwned};
    use std::io::{BufRead, BufReader};
    use std::sync::Arc;

    let (server, addr, lines) = util::start_example("echo_tls", &["127.0.0.1:0"], &[]);
    let talk = talk_line(&lines);
    assert!(
        talk.starts_with("openssl s_client -quiet -verify_return_error -CAfile "),
        "{talk}"
    );
    assert!(talk.ends_with(&format!(" -connect {addr}")), "{talk}");
    let ca_file = talk
        .split(" -CAfile ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    let roots = socketserver::tls::load_root_store(ca_file).unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for name in ["localhost", "127.0.0.1"] {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let session = ClientConnection::new(Arc::new(config.clone()), name).unwrap();
        let mut tls = StreamOwned::new(session, connect(addr.parse().unwrap()));
        tls.write_all(b"hello tls\n").unwrap();
        let mut reply = String::new();
        BufReader::new(&mut tls).read_line(&mut reply).unwrap();
        assert_eq!(reply, "hello tls\n");
        tls.conn.send_close_notify();
        tls.flush().unwrap();
    }
    stop(server, libc::SIGTERM);
    assert!(!Path::new(ca_file).exists(), "{ca_file} left behind");
}

#[cfg(feature = "auth")]
#[test]
fn echo_verified_serves_clients_with_the_key_and_refuses_the_others() {
    let key = [("SHARED_KEY", "the key")];
    let (server, addr, lines) = util::start_example("echo_verified", &["server", "127.0.0.1:0"], &key);
    assert_eq!(
        talk_line(&lines),
        format!("cargo run --features auth --example echo_verified -- client {addr} hello")
    );

    let output = util::run_example_with_env("echo_verified", &["client", &addr, "hello", "again"], &key);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\nagain\n");

    let wrong = [("SHARED_KEY", "another key")];
    let output = util::run_example_with_env("echo_verified", &["client", &addr, "hello"], &wrong);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(&addr) && error.contains("refused the key"),
        "{error}"
    );
    assert!(output.stdout.is_empty());

    // A client that answers the challenge wrong is told so and closed.
    let mut stranger = connect(addr.parse().unwrap());
    stranger.write_all(&[0u8; 32]).unwrap();
    let said = util::read_until_closed(&mut stranger);
    assert_eq!(said.len(), 32 + 9, "{said:?}");
    assert!(said.ends_with(b"#FAILURE#"), "{said:?}");

    let log = String::from_utf8_lossy(&stop(server, libc::SIGTERM).stderr).into_owned();
    let refusals = log
        .lines()
        .filter(|l| l.contains("client 127.0.0.1:") && l.contains("failed verification"));
    assert_eq!(
        refusals.count(),
        2,
        "each refusal logged with the client's address: {log}"
    );

    let output =
        util::run_example_with_env("echo_verified", &["server", "127.0.0.1:0"], &[("SHARED_KEY", "")]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an empty key is a usage error: {output:?}"
    );
}

#[test]
fn the_examples_to_copy_are_the_ones_the_readme_lists() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("## Examples to copy")
        .nth(1)
        .expect("README has Examples to copy");
    let section = section.split("\n## ").next().unwrap();
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| [`")?.split('`').next())
        .collect();
    assert_eq!(listed, EXAMPLES_TO_COPY);
}
