//! The chat room examples, end to end: a server and its clients as child
//! processes, talking over real UDP sockets; and raw sockets playing the
//! parts a client program would not: a forger, a flood, a silent member.

mod util;

use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::{ChildStdin, Command, Output, Stdio};

use crossbeam_channel::Receiver;
use util::{Process, TIMEOUT};

/// A running chat_client: what it is told, and what it prints.
struct Member {
    process: Process,
    input: ChildStdin,
    output: Receiver<String>,
}

fn chat_client(server: SocketAddr, name: &str, keepalive: &str) -> Command {
    let mut command = Command::new(util::example_binary("chat_client"));
    command
        .args(["--port", &server.port().to_string(), "--name", name])
        .args(["--keepalive", keepalive])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl Member {
    fn start(server: SocketAddr, name: &str, keepalive: &str) -> Member {
        let mut process = Process::spawn(&mut chat_client(server, name, keepalive));
        let input = process.child().stdin.take().unwrap();
        let output = process.stdout_lines();
        Member {
            process,
            input,
            output,
        }
    }

    fn join(server: SocketAddr, name: &str) -> Member {
        let member = Member::start(server, name, "100ms");
        member.expect_welcome(name);
        member
    }

    fn expect_welcome(&self, name: &str) {
        let welcome = self.next_line();
        assert!(welcome.starts_with(&format!("* welcome, {name}")), "{welcome}");
    }

    fn say(&mut self, line: &str) {
        writeln!(self.input, "{line}").unwrap();
    }

    fn next_line(&self) -> String {
        self.output.recv_timeout(TIMEOUT).expect("a line from the room")
    }

    fn expect(&self, line: &str) {
        assert_eq!(self.next_line(), line);
    }
}

/// A bare UDP socket speaking the protocol by hand.
struct Raw {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Raw {
    fn new(server: SocketAddr) -> Raw {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        Raw { socket, server }
    }

    fn send(&self, line: &str) {
        self.socket.send_to(line.as_bytes(), self.server).unwrap();
    }

    fn recv(&self) -> String {
        let mut buffer = [0u8; 65_536];
        let len =
            util::recv_from_only(&self.socket, self.server, &mut buffer).expect("a datagram from the server");
        String::from_utf8_lossy(&buffer[..len]).into_owned()
    }

    /// Sends `JOIN name`; returns the cookie the server answers with.
    fn ask(&self, name: &str) -> String {
        self.send(&format!("JOIN {name}"));
        let reply = self.recv();
        reply
            .strip_prefix("* confirm ")
            .unwrap_or_else(|| panic!("no cookie: {reply}"))
            .to_owned()
    }

    /// Joins as `name` with the cookie round trip; returns the welcome.
    fn join(&self, name: &str) -> String {
        let cookie = self.ask(name);
        self.send(&format!("JOIN {name} {cookie}"));
        self.recv()
    }
}

fn start_server(args: &[&str]) -> (Process, SocketAddr) {
    let mut all = vec!["--grace", "200ms"];
    all.extend_from_slice(args);
    let (server, addr, _lines) = util::start_example_server("chat_server", &all);
    (server, addr)
}

fn stop(mut server: Process) -> String {
    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn failed(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn three_members_talk_and_a_silent_one_expires() {
    // Keep-alives every 100 ms against a 1 s timeout: a member is
    // dropped only by missing ten in a row.
    let (server, addr) = start_server(&["--timeout", "1s", "--announce-every", "50ms"]);

    let mut alice = Member::join(addr, "alice");
    let mut bob = Member::join(addr, "bob");
    alice.expect("* bob joined");
    let mut carol = Member::join(addr, "carol");
    alice.expect("* carol joined");
    bob.expect("* carol joined");

    // A message reaches the two others, once each, and not its sender.
    alice.say("hello everyone");
    bob.expect("[alice] hello everyone");
    carol.expect("[alice] hello everyone");
    alice.say("second");
    bob.expect("[alice] second");
    carol.expect("[alice] second");

    carol.say("/who");
    carol.expect("* in the room: alice, bob, carol");

    // A member that goes silent (no keep-alives) is dropped and announced.
    let dave = Raw::new(addr);
    assert!(dave.join("dave").starts_with("* welcome, dave"));
    for member in [&alice, &bob, &carol] {
        member.expect("* dave joined");
    }
    for member in [&alice, &bob, &carol] {
        member.expect("* dave timed out");
    }
    assert_eq!(dave.recv(), "* you timed out; JOIN again");
    // Alice spoke last a while ago, but her keep-alives kept her in.
    bob.say("/who");
    bob.expect("* in the room: alice, bob, carol");

    // Leaving is announced.
    carol.say("/quit");
    alice.expect("* carol left");
    bob.expect("* carol left");
    assert!(carol.process.finish().status.success());

    stop(server);
    drop((alice, bob));
}

#[test]
fn only_an_address_that_echoes_its_cookie_becomes_a_member() {
    let (server, addr) = start_server(&["--announce-every", "50ms"]);
    let member = Raw::new(addr);
    assert!(
        member
            .join("alice")
            .starts_with("* welcome, alice: 1 in the room")
    );

    // A join that is never confirmed (as from a forged source address)
    // enrolls nobody: the address gets its one small answer, nothing more.
    let victim = Raw::new(addr);
    let cookie = victim.ask("victim");
    // Nor does another address replaying a cookie it did not receive.
    let replayer = Raw::new(addr);
    replayer.send(&format!("JOIN victim {cookie}"));
    assert_eq!(replayer.recv(), "! that cookie is not valid here; JOIN again");
    // A cookie for another name is no good either.
    victim.send(&format!("JOIN someone-else {cookie}"));
    assert_eq!(victim.recv(), "! that cookie is not valid here; JOIN again");

    member.send("WHO");
    assert_eq!(member.recv(), "* in the room: alice");
    // The room's traffic does not reach the unconfirmed address: the next
    // datagram it gets is the answer to its own request.
    member.send("MSG is anyone there?");
    victim.send("WHO");
    assert_eq!(victim.recv(), "! join first: JOIN name");
    stop(server);
}

#[test]
fn the_room_is_capped_and_each_address_is_rate_limited() {
    let (server, addr) = start_server(&["--max-members", "2", "--rate-limit", "0"]);
    let (a, b, c) = (Raw::new(addr), Raw::new(addr), Raw::new(addr));
    assert!(a.join("a").starts_with("* welcome, a"));
    assert!(b.join("b").starts_with("* welcome, b"));
    c.send("JOIN c");
    assert_eq!(c.recv(), "! the room is full (2 members)");
    stop(server);

    // 5 joins a second from one address: a burst of 20 gets about 5
    // cookies, and every join gets an answer.
    let (server, addr) = start_server(&["--rate-limit", "5"]);
    let flood = Raw::new(addr);
    for n in 0..20 {
        flood.send(&format!("JOIN flood{n}"));
    }
    let replies: Vec<String> = (0..20).map(|_| flood.recv()).collect();
    let cookies = replies.iter().filter(|r| r.starts_with("* confirm ")).count();
    let refused = replies.iter().filter(|r| *r == "! slow down").count();
    assert_eq!(cookies + refused, 20, "{replies:?}");
    assert!((5..=7).contains(&cookies), "{cookies} cookies for 5 a second");
    stop(server);
}

#[test]
fn news_of_many_joins_goes_out_in_few_datagrams() {
    let (server, addr) = start_server(&["--announce-every", "1s", "--rate-limit", "0"]);
    let watcher = Raw::new(addr);
    assert!(watcher.join("watcher").starts_with("* welcome"));
    let joiners: Vec<Raw> = (0..50).map(|_| Raw::new(addr)).collect();
    for (n, joiner) in joiners.iter().enumerate() {
        assert!(
            joiner
                .join(&format!("j{n}"))
                .starts_with(&format!("* welcome, j{n}"))
        );
    }
    // Every join is announced to the watcher, in one or two datagrams
    // (the burst may straddle an announcement), not fifty.
    let mut seen = HashSet::new();
    let mut datagrams = 0;
    while seen.len() < 50 {
        let news = watcher.recv();
        datagrams += 1;
        let names = news
            .strip_prefix("* joined: ")
            .or_else(|| news.strip_suffix(" joined").and_then(|n| n.strip_prefix("* ")))
            .unwrap_or_else(|| panic!("unexpected news: {news}"));
        seen.extend(names.split(", ").map(str::to_owned));
    }
    assert!(datagrams <= 2, "{datagrams} datagrams of news for 50 joins");
    let log = stop(server);
    assert!(log.contains("sent "), "{log}");
}

#[test]
fn a_client_that_cannot_join_says_why_and_exits_1() {
    let (server, addr) = start_server(&[]);
    let _alice = Member::join(addr, "alice");
    let taken = Process::spawn(&mut chat_client(addr, "alice", "100ms")).finish();
    assert!(
        failed(&taken).contains("cannot join as alice: the name alice is taken"),
        "{taken:?}"
    );
    let spaced = Process::spawn(&mut chat_client(addr, "a b", "100ms")).finish();
    assert!(
        failed(&spaced).contains("cannot join as a b: a name is 1 to 32 characters"),
        "{spaced:?}"
    );
    stop(server);

    // Nothing there: it gives up after a few tries.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let nobody = silent.local_addr().unwrap();
    let output = Process::spawn(&mut chat_client(nobody, "alice", "100ms")).finish();
    assert!(
        failed(&output).contains(&format!("cannot join as alice: no answer from {nobody}")),
        "{output:?}"
    );
}

#[test]
fn a_client_pointed_at_a_server_that_is_not_a_chat_room_gives_up_naming_it() {
    // The UDP echo answers `JOIN eve` with `JOIN EVE`: not the chat
    // protocol. The client must neither print that as the room's talk
    // nor keep asking.
    let (mut echo, addr, _lines) = util::start_example_server("uppercase_udp_server", &["--grace", "100ms"]);
    let output = Process::spawn(&mut chat_client(addr, "eve", "100ms")).finish();
    let said = failed(&output);
    assert!(
        said.contains(&format!(
            "cannot join as eve: {addr} is not a chat room: it answered \"JOIN EVE\""
        )),
        "{output:?}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
    echo.signal(libc::SIGTERM);
    assert!(echo.finish().status.success());

    // Played by hand: it asks five times, each answer taken as a try,
    // and nothing more. The client is whoever sends the first `JOIN eve`;
    // datagrams from anyone else are ignored.
    let echo = util::udp_client();
    let client = Process::spawn(&mut chat_client(echo.local_addr().unwrap(), "eve", "100ms"));
    let mut from_client: Option<SocketAddr> = None;
    let mut next_join = || loop {
        let mut buffer = [0u8; 1024];
        let (len, from) = echo.recv_from(&mut buffer)?;
        if from_client.is_none_or(|client| client == from) && &buffer[..len] == b"JOIN eve" {
            from_client = Some(from);
            return Ok::<_, std::io::Error>(from);
        }
    };
    for _ in 0..5 {
        let client = next_join().expect("a JOIN from the client");
        echo.send_to(b"JOIN EVE", client).unwrap();
    }
    let output = client.finish();
    assert!(failed(&output).contains("is not a chat room"), "{output:?}");
    // Whatever it sent is queued by now.
    echo.set_nonblocking(true).unwrap();
    let more = next_join();
    assert!(
        more.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a JOIN after giving up: {more:?}"
    );
}

#[test]
fn a_client_joins_again_after_a_timeout_and_after_a_restart() {
    // Timed out (it sends no keep-alives), it joins again on its own.
    let (server, addr) = start_server(&["--timeout", "300ms", "--announce-every", "50ms"]);
    let quiet = Member::start(addr, "quiet", "0s");
    quiet.expect_welcome("quiet");
    quiet.expect("* you timed out; JOIN again");
    quiet.expect_welcome("quiet");
    drop(quiet);
    stop(server);

    // The server restarts on the same port and forgets everyone: the
    // client's next keep-alive is answered "join first", and it does.
    let (server, addr) = start_server(&["--announce-every", "50ms"]);
    let mut alice = Member::join(addr, "alice");
    stop(server);
    let mut restarted = Process::spawn(
        Command::new(util::example_binary("chat_server"))
            .args(["--port", &addr.port().to_string(), "--announce-every", "50ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = restarted.stdout_lines();
    assert_eq!(
        lines.recv_timeout(TIMEOUT).unwrap(),
        format!("listening on {addr}")
    );
    alice.expect_welcome("alice");
    let bob = Member::join(addr, "bob");
    alice.expect("* bob joined");
    alice.say("back again");
    bob.expect("[alice] back again");
    stop(restarted);
}
