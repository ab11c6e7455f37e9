//! What every example shares on its command line: `--version`, one style
//! for durations and sizes, a default port of its own, hosts written as
//! the servers print them, and errors that name what they failed on.
#![cfg(all(feature = "message", feature = "auth"))]

mod util;

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};

use util::Process;

/// The servers and the port each listens on by default, with its client.
const SERVERS: [(&str, &str, u16); 5] = [
    ("uppercase_tcp_server", "uppercase_tcp_client", 9999),
    ("uppercase_udp_server", "uppercase_udp_client", 9998),
    ("file_server", "file_client", 9997),
    ("chat_server", "chat_client", 9996),
    ("remote_shell_server", "remote_shell_client", 9995),
];

fn run(example: &str, args: &[&str]) -> Output {
    Process::spawn(
        Command::new(util::example_binary(example))
            .args(args)
            .env("REMOTE_SHELL_KEY", "k")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every example as Cargo finds it: examples/NAME.rs and
/// examples/NAME/main.rs.
fn every_example() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let example = if path.is_dir() {
                path.join("main.rs").is_file().then(|| path.file_name())?
            } else {
                (path.extension()? == "rs").then(|| path.file_stem())?
            };
            example.and_then(|name| name.to_str()).map(str::to_owned)
        })
        .collect();
    examples.sort();
    examples
}

#[test]
fn every_example_tells_its_version() {
    let examples = every_example();
    // Those the test knows of must be found: a listing gone wrong must
    // not pass for no example at all.
    let known = SERVERS.iter().flat_map(|(s, c, _)| [*s, *c]);
    for known in known.chain(["loadgen", "gen_tls_cert", "bench_server"]) {
        assert!(examples.iter().any(|e| e == known), "{known} not in {examples:?}");
    }
    // The examples to copy are kept to their one idea: their command line
    // is an address, and anything else a usage error (their own test).
    for example in examples
        .iter()
        .filter(|e| !util::EXAMPLES_TO_COPY.contains(&e.as_str()))
    {
        let output = run(example, &["--version"]);
        assert!(output.status.success(), "{example}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{example} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn each_server_has_its_own_default_port_and_its_client_the_same() {
    for (server, client, port) in SERVERS {
        for example in [server, client] {
            let help = run(example, &["--help"]);
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            let port_line = help
                .lines()
                .skip_while(|l| !l.contains("--port <PORT>"))
                .take(4)
                .collect::<String>();
            assert!(
                port_line.contains(&format!("[default: {port}]")),
                "{example}: {port_line}"
            );
        }
    }
}

#[test]
fn durations_carry_their_unit_and_timeouts_must_be_positive() {
    let output = run("uppercase_tcp_server", &["--port", "0", "--grace", "10"]);
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains("--grace") && said.contains("such as 500ms or 10s"),
        "{said}"
    );

    let output = run("uppercase_udp_client", &["--message", "x", "--timeout", "0s"]);
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains("--timeout") && said.contains("longer than zero"),
        "{said}"
    );

    let output = run(
        "remote_shell_server",
        &["--port", "0", "--output-cap", "12 parsecs"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--output-cap"), "{}", stderr(&output));
}

#[test]
fn a_bracketed_ipv6_host_works_as_the_servers_print_it() {
    let (mut server, addr, _lines) =
        util::start_example_server("uppercase_tcp_server", &["--host", "[::1]", "--grace", "100ms"]);
    assert!(addr.is_ipv6(), "{addr}");
    let output = util::run_example_client(
        "uppercase_tcp_client",
        addr,
        &["--host", "[::1]", "--message", "over ipv6"],
        b"",
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "OVER IPV6\n");
    server.signal(libc::SIGTERM);
    assert!(server.finish().status.success());
}

#[test]
fn errors_name_the_address_or_host_they_failed_on() {
    // Nothing listening.
    let unused = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let output = run(
        "uppercase_tcp_client",
        &["--port", &port.to_string(), "--message", "hi"],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{}",
        stderr(&output)
    );

    // A host that does not resolve.
    let output = run(
        "remote_shell_client",
        &["--host", "not-an-ip.invalid", "--command", "true"],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not-an-ip.invalid"),
        "{}",
        stderr(&output)
    );

    // A port in use.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run("chat_server", &["--port", &port]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        stderr(&output)
    );

    // A UDP server that is not there (the kernel says the port is closed).
    drop(taken);
    let output = run(
        "uppercase_udp_client",
        &["--port", &port, "--message", "hi", "--timeout", "2s"],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("nothing is listening at 127.0.0.1:{port}")),
        "{}",
        stderr(&output)
    );
}
