//! kv_server against a real redis-server: the same commands, sent to each
//! on a fresh connection of its own, must get the same bytes back, errors
//! included; so must requests Redis refuses as protocol errors, up to the
//! connection's close.
//!
//! Needs `redis-server` (the Debian package; `.ci/run` installs it): this
//! test starts its own on a free loopback port, in memory only, and stops
//! it. Without it the test fails saying what to install.

mod util;

use std::net::SocketAddr;

use util::resp::{Client, Redis};
use util::start_example_server;

/// The cases: one command per line, run in order on one connection, each
/// case after a FLUSHALL. `W:` a command of words (sent as a RESP array),
/// `I:` an inline command (sent as typed, with its `\r\n`). Replies that
/// depend on the clock to the millisecond, the order of a hash table, or
/// what this server leaves out (databases beyond 0, RESP3, the command
/// table) are left out.
const CASES: &str = r#"
W:PING
W:PING hello
W:PING a b
W:ECHO
W:ECHO hi
W:SET k v
W:GET k
W:GET
W:GET k extra
W:GET missing
W:SET k v2 XX
W:SET k v3 NX
W:SET new v NX
W:SET fresh v XX
W:SET k v4 GET
W:SET none v GET
W:SET k v NX XX
W:SET k v EX
W:SET k v EX 0
W:SET k v EX -5
W:SET k v EX abc
W:SET k v PX 9223372036854775807
W:SET k v EX 9223372036854775
W:SET k v EX 100 PX 100
W:SET k v KEEPTTL EX 10
W:SET k v FOO
W:SET k v EX 100
W:TTL k
W:SET k v2 KEEPTTL
W:TTL k
W:SET k v3
W:TTL k
W:GETSET k v5
W:GETSET nothing v
W:GETSET k
W:DEL k nothing k
W:EXISTS nothing
W:MSET a 1 b 2 c 3
W:EXISTS a a b nope
W:MGET a nope b c
W:MSET a
W:MSET a 1 b
W:DEL
W:INCR counter
W:INCR counter
W:INCRBY counter 10
W:INCRBY counter abc
W:INCRBY counter 1.5
W:DECR counter
W:DECRBY counter 5
W:DECRBY counter -9223372036854775808
W:SET big 9223372036854775807
W:INCR big
W:SET small -9223372036854775808
W:DECR small
W:SET text hello
W:INCR text
W:SET spaced 010
W:INCR spaced
W:APPEND text \x20world
W:APPEND fresh2 abc
W:STRLEN text
W:STRLEN nothing
W:STRLEN
W:EXPIRE nothing 10
W:EXPIRE text 100
W:TTL text
W:EXPIRE text 10 NX
W:EXPIRE text 50 XX
W:EXPIRE text 200 GT
W:EXPIRE text 20 LT
W:TTL text
W:EXPIRE text 10 NX XX
W:EXPIRE text 10 GT LT
W:EXPIRE text 10 BOGUS
W:EXPIRE text abc
W:EXPIRE text 9223372036854775807
W:PEXPIRE text 100000
W:TTL text
W:PERSIST text
W:PERSIST text
W:TTL text
W:PTTL text
W:TTL nothing
W:PTTL nothing
W:EXPIRE text -1
W:GET text
W:EXISTS text
W:PERSIST nothing

W:SET user:1 alice
W:KEYS user:*
W:KEYS nomatch*
W:KEYS us?r:[0-9]
W:DBSIZE
W:FLUSHDB extra
W:FLUSHDB ASYNC
W:DBSIZE
W:FLUSHALL SYNC

W:SELECT 0
W:SELECT 16
W:SELECT abc
W:SELECT 99999999999
W:CONFIG GET save
W:CONFIG GET appendonly
W:CONFIG GET SAVE
W:CONFIG GET
W:CONFIG
W:CONFIG NOPE
W:CLIENT SETNAME bench
W:CLIENT GETNAME
W:CLIENT SETNAME has\x20space
W:CLIENT NOPE
W:CLIENT
W:NOSUCHCOMMAND a b
W:nosuchcommand
W:set lower case
W:get lower

I:PING
I:SET inline "two words"
I:GET inline
I:ECHO 'it\'s'
I:ECHO "tab\there"
I:ECHO "\x41\x42"
I:   ECHO   spaced   out
I:QUIT

I:GET "unbalanced
"#;

/// Requests Redis refuses, whole, in their own connections: what each
/// server says until it closes.
const PROTOCOL_ERRORS: &[&[u8]] = &[
    b"*1\r\n$x\r\n",
    b"*x\r\n",
    b"*1\r\n*1\r\n",
    b"*2\r\n$3\r\nGET\r\n$-1\r\n",
    b"*1\r\n:1\r\n",
    b"*2\r\n$3\r\nGET\r\n$9223372036854775808\r\n",
    b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\nx\r\n",
    b"ECHO \"a\"b\r\n",
];

/// The bytes of a case line as the client sends them, and how many
/// replies come back.
fn request(line: &str) -> (Vec<u8>, usize) {
    if let Some(command) = line.strip_prefix("W:") {
        // `\x20` stands for a space inside an argument.
        let args: Vec<String> = command.split(' ').map(|arg| arg.replace("\\x20", " ")).collect();
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        (util::resp::command(&args), 1)
    } else if let Some(inline) = line.strip_prefix("I:") {
        (format!("{inline}\r\n").into_bytes(), 1)
    } else {
        panic!("a case line must start with W: or I:, not {line:?}")
    }
}

/// The replies of one server to a case.
fn run_case(addr: SocketAddr, lines: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut client = Client::connect(addr);
    assert_eq!(client.call("FLUSHALL"), b"+OK\r\n");
    let mut replies = Vec::new();
    for line in lines {
        let (bytes, count) = request(line);
        // An unbalanced quote is a protocol error: the reply, then the
        // connection closes.
        let reply = if line.contains("\"unbalanced") {
            client.send(&bytes);
            client.until_closed()
        } else {
            client.exchange(&bytes, count)
        };
        replies.push((line.to_string(), reply));
    }
    replies
}

#[test]
fn kv_server_replies_as_redis_server_does() {
    let redis = Redis::start();
    let (_kv, kv_addr, _lines) = start_example_server("kv_server", &[]);
    let mut compared = 0;
    for case in CASES.split("\n\n") {
        let lines: Vec<&str> = case.lines().filter(|l| !l.trim().is_empty()).collect();
        let theirs = run_case(redis.addr, &lines);
        let ours = run_case(kv_addr, &lines);
        for ((line, expected), (_, got)) in theirs.iter().zip(&ours) {
            assert_eq!(
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(expected),
                "{line}: kv_server's reply differs from redis-server's"
            );
            compared += 1;
        }
    }
    assert!(compared >= 60, "only {compared} command lines compared");
}

#[test]
fn protocol_errors_are_redis_s_and_close_the_connection() {
    let redis = Redis::start();
    let (_kv, kv_addr, _lines) = start_example_server("kv_server", &[]);
    for request in PROTOCOL_ERRORS {
        let theirs = {
            let mut client = Client::connect(redis.addr);
            client.send(request);
            client.until_closed()
        };
        let mut client = Client::connect(kv_addr);
        client.send(request);
        let ours = client.until_closed();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{:?}",
            String::from_utf8_lossy(request)
        );
        assert!(
            String::from_utf8_lossy(&ours).contains("-ERR Protocol error: "),
            "{ours:?}"
        );
    }
}
