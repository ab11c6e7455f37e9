//! The tutorials' own Python client programs (restored from ../shared/seeds
//! in tests/python/tutorial/, with only their host, port and file paths
//! changed) against the example servers, in the servers' `--tutorial`
//! modes: what each program prints, and what reaches the server.
#![cfg(all(feature = "message", feature = "auth", target_os = "linux"))]

mod util;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use util::{Process, TIMEOUT, eventually};

/// The tutorials' HMAC key (their "salt").
const TUTORIAL_KEY: &str = "hi, I'm salt.";

fn tutorial_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tutorial")
}

/// The command that runs a tutorial program through run.py against
/// `addr`, in `cwd`, with its input and output piped (and unbuffered).
fn tutorial_command(program: &str, addr: SocketAddr, run_args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(tutorial_dir().join("run.py"))
        .args(["--port", &addr.port().to_string()])
        .args(run_args)
        .arg(program)
        .current_dir(cwd)
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a tutorial program with `stdin` as its whole input; returns what
/// it did.
fn tutorial(program: &str, addr: SocketAddr, run_args: &[&str], stdin: &[u8], cwd: &Path) -> Output {
    let mut process = Process::spawn(&mut tutorial_command(program, addr, run_args, cwd));
    process.child().stdin.take().unwrap().write_all(stdin).unwrap();
    process.finish()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A program that ran until its input ended, as the tutorials' loops do:
/// `input()` raised EOFError.
fn ended_at_end_of_input(output: &Output) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(output).contains("EOFError"), "{output:?}");
}

fn stop(mut server: Process) -> String {
    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    stderr(&output)
}

#[test]
fn the_command_clients_run_commands_after_the_tutorials_hmac_check() {
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path();
    let (server, addr, _lines) = util::start_example_server(
        "remote_shell_server",
        &["--tutorial", "--key", TUTORIAL_KEY, "--grace", "100ms"],
    );
    let hmac_first = ["--before", "seed003_hmac_client.py"];

    // struct.pack('i') length, then the output (standard error included),
    // read with one recv; 'q' ends it.
    let output = tutorial(
        "seed000_command_client.py",
        addr,
        &hmac_first,
        b"echo hello\nls /no-such-dir\nq\n",
        cwd,
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "》》》:hello\n\n》》》:ls: cannot access '/no-such-dir': No such file or directory\n\n》》》:"
    );

    // The same framing, read a byte at a time.
    let output = tutorial(
        "seed003_struct_command_client.py",
        addr,
        &hmac_first,
        b"echo one\necho two\n",
        cwd,
    );
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), ">>>one\n\n>>>two\n\n>>>");

    // The tutorials' fake client (the wrong salt) gets nothing run; nor
    // does a command client that skips the check.
    for before in [&["--before", "seed003_fake_hmac_client.py"][..], &[]] {
        let marker = cwd.join("should-not-exist");
        let command = format!("touch {}\nq\n", marker.display());
        let output = tutorial("seed000_command_client.py", addr, before, command.as_bytes(), cwd);
        assert!(!marker.exists(), "a command ran without the key: {output:?}");
    }
    let log = stop(server);
    assert_eq!(log.matches("failed verification").count(), 2, "{log}");

    // The JSON header version: a length, {"data_size": N}, the output.
    let (server, addr, _lines) = util::start_example_server(
        "remote_shell_server",
        &["--tutorial=header", "--key", TUTORIAL_KEY, "--grace", "100ms"],
    );
    let output = tutorial(
        "seed004_header_command_client.py",
        addr,
        &hmac_first,
        b"echo first\necho second >&2\n",
        cwd,
    );
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), ">>: first\n\n>>: second\n\n>>: ");
    stop(server);
}

/// Writes `len` bytes of varied content to `path`; returns them.
fn make_file(path: &Path, len: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn the_file_clients_upload_and_download() {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store");
    let store_arg = store.to_str().unwrap();
    let source = scratch.path().join("video.mp4");
    let contents = make_file(&source, 3000);

    // The upload client: struct.pack('i'), {"file_name", "file_size"}, the
    // bytes in 1024-byte sends (each printed), no reply.
    let (server, addr, _lines) = util::start_example_server(
        "file_server",
        &["--tutorial", "--dir", store_arg, "--grace", "100ms"],
    );
    let output = tutorial(
        "seed000_upload_client.py",
        addr,
        &["--upload", source.to_str().unwrap()],
        b"",
        scratch.path(),
    );
    assert!(output.status.success(), "{output:?}");
    let printed: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    assert_eq!(printed.len(), 3, "{printed:?}");
    assert!(printed[2].ends_with(" 3"), "{printed:?}");
    let stored = store.join("jason真实写真集.mp4");
    eventually("the upload is stored", || {
        fs::read(&stored).is_ok_and(|b| b == contents)
    });

    // An MD5 in the header is checked (the tutorials' uploads send none):
    // a wrong one stores nothing, a right one stores the file.
    let upload = |name: &str, md5: &str| {
        let header = serde_json::json!({"file_name": name, "file_size": 3, "md5": md5}).to_string();
        let mut wire = (header.len() as i32).to_le_bytes().to_vec();
        wire.extend_from_slice(header.as_bytes());
        wire.extend_from_slice(b"abc");
        let mut stream = util::connect(addr);
        stream.write_all(&wire).unwrap();
        drop(stream);
    };
    upload("checked.txt", "00000000000000000000000000000000");
    upload("checked.txt", "900150983cd24fb0d6963f7d28e17f72"); // md5("abc")
    eventually("the checked upload is stored", || {
        store.join("checked.txt").exists()
    });
    let log = stop(server);
    assert!(log.contains("md5 mismatch"), "{log}");
    assert_eq!(fs::read(store.join("checked.txt")).unwrap(), b"abc");

    // The download clients: the server pushes the file to whoever
    // connects, with its name and size (and MD5), and closes.
    let (server, addr, _lines) = util::start_example_server(
        "file_server",
        &[
            "--tutorial",
            "--push",
            "jason真实写真集.mp4",
            "--dir",
            store_arg,
            "--grace",
            "100ms",
        ],
    );
    let downloads = scratch.path().join("downloads");
    fs::create_dir(&downloads).unwrap();
    let output = tutorial("seed004_download_client.py", addr, &[], b"", &downloads);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(fs::read(downloads.join("jason真实写真集.mp4")).unwrap(), contents);

    let checked = scratch.path().join("checked");
    fs::create_dir(&checked).unwrap();
    let output = tutorial("seed004_md5_download_client.py", addr, &[], b"", &checked);
    assert!(output.status.success(), "{output:?}");
    let printed = stdout(&output);
    let md5 = format!("{:x}", md5_of(&contents));
    assert!(
        printed.starts_with(&format!("{md5}\nmd5校验正确--下载成功\n本次下载花费了")),
        "{printed}"
    );
    // As the tutorial wrote it, it saves only the (empty) last chunk.
    assert_eq!(fs::read(checked.join("jason真实写真集.mp4")).unwrap(), b"");
    stop(server);
}

/// MD5, for checking what the tutorial's download client prints.
fn md5_of(bytes: &[u8]) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(bytes).into())
}

#[test]
fn the_chat_clients_join_as_guests_and_hear_themselves() {
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path();
    let (server, addr, _lines) = util::start_example_server(
        "chat_server",
        &["--tutorial", "--announce-every", "50ms", "--grace", "100ms"],
    );
    // A member with the crate's client, to see what the guests say.
    let mut alice = Process::spawn(
        Command::new(util::example_binary("chat_client"))
            .args([
                "--port",
                &addr.port().to_string(),
                "--name",
                "alice",
                "--keepalive",
                "100ms",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let _alice_input = alice.child().stdin.take().unwrap();
    let heard = alice.stdout_lines();
    let next = || heard.recv_timeout(TIMEOUT).expect("a line for alice");
    assert!(next().starts_with("* welcome, alice"));

    // The QQ chat room client: each line out, the next datagram in.
    let output = tutorial(
        "seed000_qq_chat_client.py",
        addr,
        &[],
        "hello\nagain\n".as_bytes(),
        cwd,
    );
    ended_at_end_of_input(&output);
    assert_eq!(
        stdout(&output),
        "客户端1: [guest-1] hello\n客户端1: [guest-1] again\n客户端1: "
    );
    let mut lines: Vec<String> = (0..3).map(|_| next()).collect();
    lines.sort();
    assert_eq!(lines, ["* guest-1 joined", "[guest-1] again", "[guest-1] hello"]);

    // The identity-menu client: pick 2, say something, see it come back.
    // At the end of its input it asks again forever (its loop takes the
    // EOFError for a typing mistake), so it is stopped once it has
    // answered.
    let mut menu = Process::spawn(&mut tutorial_command("seed003_chat_client.py", addr, &[], cwd));
    let mut input = menu.child().stdin.take().unwrap();
    input.write_all("2\nhi from the menu\n".as_bytes()).unwrap();
    let printed = menu.stdout_lines();
    let expected = format!(
        "来自[127.0.0.1:{}]的消息:\u{1b}[1;36m[guest-2] hi from the menu\u{1b}[0m",
        addr.port()
    );
    loop {
        let line = printed.recv_timeout(TIMEOUT).expect("the menu client's answer");
        if line.contains(&expected) {
            break;
        }
        assert!(!line.contains("来自["), "{line}");
    }
    drop((input, menu));
    let mut lines: Vec<String> = (0..2).map(|_| next()).collect();
    lines.sort();
    assert_eq!(lines, ["* guest-2 joined", "[guest-2] hi from the menu"]);
    stop(server);

    // Without --tutorial the room does not take raw text.
    let (server, addr, _lines) = util::start_example_server("chat_server", &["--grace", "100ms"]);
    let output = tutorial("seed000_qq_chat_client.py", addr, &[], "hello\n".as_bytes(), cwd);
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), "客户端1: ! join first: JOIN name\n客户端1: ");
    stop(server);
}

#[test]
fn the_uppercase_clients_work_with_the_plain_servers() {
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path();
    let (server, addr, _lines) = util::start_example_server("uppercase_tcp_server", &["--grace", "100ms"]);
    let output = tutorial(
        "seed000_socketserver_client.py",
        addr,
        &[],
        b"hello\nsticky packets\n",
        cwd,
    );
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), "客户端: HELLO\n客户端: STICKY PACKETS\n客户端: ");
    stop(server);

    let (server, addr, _lines) = util::start_example_server("uppercase_udp_server", &["--grace", "100ms"]);
    let output = tutorial(
        "seed002_udp_template_client.py",
        addr,
        &[],
        b"hello\ndatagrams\n",
        cwd,
    );
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), ">>>:HELLO\n>>>:DATAGRAMS\n>>>:");
    stop(server);
}

/// The programs take any datagram for the answer; run.py lets theirs hear
/// the server alone. Here the test stands in for the server and has a
/// stranger send the client a datagram just before the answer.
#[test]
fn a_tutorial_udp_client_hears_the_server_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();
    let addr = server.local_addr().unwrap();
    let answering = std::thread::spawn(move || {
        let mut request = [0u8; 64];
        let (len, client) = server.recv_from(&mut request).expect("the client's datagram");
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"from a stranger", client).unwrap();
        server
            .send_to(&request[..len].to_ascii_uppercase(), client)
            .unwrap();
    });
    let output = tutorial(
        "seed002_udp_template_client.py",
        addr,
        &[],
        b"hello\n",
        scratch.path(),
    );
    answering.join().unwrap();
    ended_at_end_of_input(&output);
    assert_eq!(stdout(&output), ">>>:HELLO\n>>>:");
}
