//! The chat room examples, end to end: a server and three clients as
//! child processes, talking over real UDP sockets.

mod util;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::{ChildStdin, Command, Stdio};

use crossbeam_channel::Receiver;
use util::{Process, TIMEOUT};

/// A running chat_client: what it is told, and what it prints.
struct Member {
    process: Process,
    input: ChildStdin,
    output: Receiver<String>,
}

impl Member {
    fn join(server: SocketAddr, name: &str) -> Member {
        let mut process = Process::spawn(
            Command::new(util::example_binary("chat_client"))
                .args([
                    "--port",
                    &server.port().to_string(),
                    "--name",
                    name,
                    "--keepalive",
                    "100ms",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let input = process.child().stdin.take().unwrap();
        let output = process.stdout_lines();
        let member = Member {
            process,
            input,
            output,
        };
        let welcome = member.next_line();
        assert!(welcome.starts_with(&format!("* welcome, {name}")), "{welcome}");
        member
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

#[test]
fn three_members_talk_and_a_silent_one_expires() {
    let (mut server, addr, _lines) =
        // Keep-alives every 100 ms against a 1 s timeout: a member is
        // dropped only by missing ten in a row.
        util::start_example_server("chat_server", &["--timeout", "1s", "--grace", "200ms"]);

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
    let dave = UdpSocket::bind("127.0.0.1:0").unwrap();
    dave.set_read_timeout(Some(TIMEOUT)).unwrap();
    dave.send_to(b"JOIN dave", addr).unwrap();
    let mut buffer = [0u8; 256];
    let len = dave.recv(&mut buffer).unwrap();
    assert!(buffer[..len].starts_with(b"* welcome, dave"));
    for member in [&alice, &bob, &carol] {
        member.expect("* dave joined");
    }
    for member in [&alice, &bob, &carol] {
        member.expect("* dave timed out");
    }
    let len = dave.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"* you timed out; JOIN again");
    // Alice spoke last a while ago, but her keep-alives kept her in.
    bob.say("/who");
    bob.expect("* in the room: alice, bob, carol");

    // Leaving is announced.
    carol.say("/quit");
    alice.expect("* carol left");
    bob.expect("* carol left");
    assert!(carol.process.finish().status.success());

    server.signal(libc::SIGTERM);
    assert!(server.finish().status.success());
    drop((alice, bob));
}
