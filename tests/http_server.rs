//! http_server (examples/http_server/) driven by the clients the world
//! uses, in both serving modes: curl (keep-alive across two URLs, HEAD,
//! Range, a 404, a chunked upload), Python's http.client reading
//! pipelined responses, wrk; then HTTP/1.0 with and without keep-alive,
//! `Expect: 100-continue`, the refusals (405, 413, 414, 431, 505, request
//! smuggling), the deadlines, static files that must not leave their
//! directory, and hostile input (a 1 MiB header line): a clear error, the
//! connection closed, memory flat, other clients served.
//!
//! Needs `curl` and `wrk` (Debian packages of those names; `.ci/run`
//! installs them) and python3. Without them the tests fail saying what to
//! install.

mod util;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use util::http::{Response, read_response};
use util::tools::{rss_kib, run_tool, succeeded, tool};
use util::{Process, connect, read_until_closed, start_example_server};

/// The two ways http_server serves.
const MODES: [&[&str]; 2] = [&[], &["--threading"]];

/// A connection that writes requests and reads responses.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        Conn {
            reader: BufReader::new(connect(addr)),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send the request");
    }

    fn response(&mut self) -> Response {
        read_response(&mut self.reader, false).expect("a response")
    }

    fn head_response(&mut self) -> Response {
        read_response(&mut self.reader, true).expect("a response")
    }

    /// Everything until the server closes (a time-out fails the test).
    fn until_closed(&mut self) -> Vec<u8> {
        read_until_closed(&mut self.reader)
    }
}

/// A mode's arguments and more.
fn with<'a>(mode: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [mode, more].concat()
}

fn curl(args: &[&str]) -> (String, String) {
    let output = run_tool(&tool("curl", "curl"), args, b"");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (succeeded(&format!("curl {}", args.join(" ")), output), stderr)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The status code curl gets for the request `args` describe.
fn curl_status(args: &[&str]) -> String {
    let args = [&["-s", "-o", "/dev/null", "-w", "%{http_code}"], args].concat();
    curl(&args).0
}

#[test]
fn curl_keeps_the_connection_across_two_urls() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let (body, log) = curl(&["-sv", &url(addr, "/"), &url(addr, "/")]);
        assert_eq!(body, "hello, world\nhello, world\n");
        assert!(log.contains("Re-using existing connection"), "{log}");
        let (body, log) = curl(&["-sv", &url(addr, "/"), &url(addr, "/missing")]);
        assert_eq!(body, "hello, world\n404 Not Found\n");
        assert!(log.contains("Re-using existing connection"), "{log}");
        assert!(log.contains("< HTTP/1.1 404 Not Found"), "{log}");
    }
}

#[test]
fn curl_head_and_a_404() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let (head, _) = curl(&["-sI", &url(addr, "/")]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 13\r\n"), "{head}");
        let code = curl_status(&[&url(addr, "/nope")]);
        assert_eq!(code, "404");
    }
}

#[test]
fn curl_uploads_a_chunked_body() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", &with(mode, &["--access-log"]));
        let dir = tempfile::tempdir().unwrap();
        let upload = dir.path().join("upload.bin");
        std::fs::write(&upload, vec![b'x'; 300_000]).unwrap();
        let data = format!("@{}", upload.display());
        // The upload, then a second URL on the same connection: the body
        // was read to its end, and nothing of it taken for a request.
        let (body, log) = curl(&[
            "-sv",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &data,
            &url(addr, "/"),
            "--next",
            &url(addr, "/"),
        ]);
        assert_eq!(body, "hello, world\nhello, world\n");
        assert!(log.contains("Re-using existing connection"), "{log}");
        assert!(
            log.contains("HTTP/1.1 100 Continue"),
            "curl waits for 100 Continue: {log}"
        );
    }
}

#[test]
fn the_access_log_counts_the_body_read() {
    let mut server = Process::spawn(
        Command::new(util::example_binary("http_server"))
            .args(["--port", "0", "--access-log"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let lines = server.stdout_lines();
    let addr: SocketAddr = util::listening_on(&lines).parse().unwrap();
    let mut conn = Conn::open(addr);
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(conn.response().body, b"hello, world\n");
    drop(conn);
    server.signal(libc::SIGTERM);
    let output = server.finish();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("\"POST / HTTP/1.1\" 200 13 in=5"), "{log}");
    assert!(log.contains("1 requests answered"), "{log}");
}

#[test]
fn python_reads_pipelined_responses_in_order() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/http_pipelining.py");
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let output = run_tool(
            Path::new("python3"),
            &[script.to_str().unwrap(), &addr.port().to_string()],
            b"",
        );
        let printed = succeeded("http_pipelining.py", output);
        assert_eq!(
            printed,
            "200 b'hello, world\\n'\n200 b''\n404 b'404 Not Found\\n'\n200 b'hello, world\\n'\n200 b'hello, world\\n'\n"
        );
    }
}

#[test]
fn pipelined_requests_in_one_write_get_their_responses_in_order() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let mut conn = Conn::open(addr);
        let mut batch = Vec::new();
        for i in 0..500 {
            let path = if i % 2 == 0 { "/" } else { "/missing" };
            batch.extend(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").bytes());
        }
        conn.send(&batch);
        for i in 0..500 {
            let expected = if i % 2 == 0 { 200 } else { 404 };
            assert_eq!(conn.response().status, expected, "response {i}");
        }
    }
}

#[test]
fn wrk_runs_without_socket_errors() {
    let wrk = tool("wrk", "wrk");
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let output = run_tool(&wrk, &["-t1", "-c16", "-d1s", &url(addr, "/")], b"");
        let report = succeeded("wrk", output);
        assert!(!report.contains("Socket errors"), "{report}");
        assert!(!report.contains("Non-2xx"), "{report}");
        assert!(report.contains("Requests/sec"), "{report}");
    }
}

#[test]
fn http_1_0_with_and_without_keep_alive() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let mut conn = Conn::open(addr);
        conn.send(b"GET / HTTP/1.0\r\n\r\n");
        let response = conn.response();
        assert_eq!(
            (response.status, response.header("connection")),
            (200, Some("close"))
        );
        assert!(conn.until_closed().is_empty());

        let mut conn = Conn::open(addr);
        conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let response = conn.response();
        assert_eq!(response.header("connection"), Some("keep-alive"));
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = conn.response();
        assert_eq!(
            (response.status, response.header("connection")),
            (200, Some("close"))
        );
        assert!(conn.until_closed().is_empty());
    }
}

#[test]
fn expect_100_continue() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        let mut conn = Conn::open(addr);
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(conn.head_response().status, 100);
        conn.send(b"hello");
        assert_eq!(conn.response().body, b"hello, world\n");
        // Refused without its body: no 100, and the connection ends.
        conn.send(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        let response = conn.response();
        assert_eq!(
            (response.status, response.header("connection")),
            (404, Some("close"))
        );
        assert!(conn.until_closed().is_empty());
    }
}

/// Sends `request` on a connection of its own and returns the response,
/// checking that the server then closes the connection.
fn refused(addr: SocketAddr, request: &[u8]) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(request);
    let response = conn.response();
    assert_eq!(response.header("connection"), Some("close"), "{}", response.head);
    assert!(conn.until_closed().is_empty());
    response
}

#[test]
fn what_cannot_be_served_gets_its_status() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server(
            "http_server",
            &with(mode, &["--max-body", "1KiB", "--max-uri", "100"]),
        );
        let mut conn = Conn::open(addr);
        conn.send(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
        let response = conn.response();
        assert_eq!(
            (response.status, response.header("allow")),
            (405, Some("GET, HEAD, POST"))
        );
        // The connection goes on after a 405.
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(conn.response().status, 200);

        let status = |request: &[u8]| refused(addr, request).status;
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n"),
            413
        );
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200));
        assert_eq!(status(long.as_bytes()), 414);
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status(b"GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
    }
}

#[test]
fn request_smuggling_is_refused_and_the_connection_closed() {
    for mode in MODES {
        let (_server, addr, _lines) = start_example_server("http_server", mode);
        // Read by Content-Length, the body hides a second request; read
        // as chunked, it is one. Neither reading is taken.
        let smuggled =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n\
            0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
        let response = refused(addr, smuggled);
        assert_eq!(response.status, 400);
        assert!(response.body.starts_with(b"400 Bad Request"));
    }
}

#[test]
fn a_huge_header_line_gets_431_with_memory_flat_and_others_served() {
    for mode in MODES {
        let (server, addr, _lines) = start_example_server("http_server", mode);
        let mut bystander = Conn::open(addr);
        bystander.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(bystander.response().status, 200);
        let before = rss_kib(server.pid());
        let mut attackers = Vec::new();
        for _ in 0..20 {
            let mut conn = Conn::open(addr);
            let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            request.extend(vec![b'a'; 1 << 20]);
            request.extend(b"\r\n\r\n");
            // The server answers and closes before it has read it all:
            // the rest of the write may fail.
            let _ = conn.reader.get_mut().write_all(&request);
            attackers.push(conn);
        }
        for mut conn in attackers {
            let response = conn.response();
            assert_eq!(response.status, 431);
        }
        bystander.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(bystander.response().status, 200, "the other client is served");
        let grown = rss_kib(server.pid()).saturating_sub(before);
        assert!(
            grown < 16 * 1024,
            "20 header lines of 1 MiB grew the server by {grown} KiB"
        );
    }
}

#[test]
fn a_slow_head_is_cut_and_an_idle_connection_closed() {
    for mode in MODES {
        let args = with(mode, &["--header-timeout", "300ms", "--keep-alive-timeout", "2s"]);
        let (_server, addr, _lines) = start_example_server("http_server", &args);
        let mut conn = Conn::open(addr);
        conn.send(b"GET / HTTP/1.1\r\n");
        std::thread::sleep(Duration::from_millis(600));
        conn.send(b"Host: x\r\n\r\n");
        let response = conn.response();
        assert_eq!(
            (response.status, response.header("connection")),
            (408, Some("close"))
        );
        assert!(conn.until_closed().is_empty());

        // Served, then nothing: closed by the keep-alive timeout (the read
        // is bounded by the test's own time-out, far longer), not before.
        let mut conn = Conn::open(addr);
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(conn.response().status, 200);
        let idle_since = Instant::now();
        assert!(conn.until_closed().is_empty());
        let idle = idle_since.elapsed();
        assert!(
            idle >= Duration::from_millis(1500),
            "{mode:?}: closed after {idle:?} idle, before the 2 s keep-alive timeout"
        );
    }
}

/// A site to serve: an index, a larger file, a directory without an index,
/// and a link that points outside.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    dir
}

#[test]
fn static_files_with_curl() {
    let dir = site();
    let root = dir.path().join("site");
    let big = std::fs::read(root.join("big.bin")).unwrap();
    for mode in MODES {
        let args = with(mode, &["--root", root.to_str().unwrap()]);
        let (_server, addr, _lines) = start_example_server("http_server", &args);
        let (page, _) = curl(&["-s", &url(addr, "/")]);
        assert_eq!(page, "<h1>home</h1>\n");
        let (head, _) = curl(&["-sI", &url(addr, "/index.html")]);
        assert!(
            head.contains("Content-Type: text/html; charset=utf-8\r\n"),
            "{head}"
        );
        let last_modified = head
            .lines()
            .find_map(|l| l.strip_prefix("Last-Modified: "))
            .expect("Last-Modified")
            .trim()
            .to_owned();
        let code = curl_status(&[
            "-H",
            &format!("If-Modified-Since: {last_modified}"),
            &url(addr, "/index.html"),
        ]);
        assert_eq!(code, "304");
        // The whole large file, and a range of it.
        let whole = run_tool(&tool("curl", "curl"), &["-s", &url(addr, "/big.bin")], b"");
        assert_eq!(whole.stdout, big);
        let part = run_tool(
            &tool("curl", "curl"),
            &["-s", "-r", "1000-1999", &url(addr, "/big.bin")],
            b"",
        );
        assert_eq!(part.stdout, &big[1000..2000]);
        let (head, _) = curl(&[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-r",
            "599990-",
            &url(addr, "/big.bin"),
        ]);
        assert!(head.contains("HTTP/1.1 206"), "{head}");
        assert!(
            head.contains("Content-Range: bytes 599990-599999/600000"),
            "{head}"
        );
        let code = curl_status(&["-r", "700000-", &url(addr, "/big.bin")]);
        assert_eq!(code, "416");
        let code = curl_status(&[&url(addr, "/docs")]);
        assert_eq!(code, "301");
        let code = curl_status(&[&url(addr, "/docs/")]);
        assert_eq!(code, "403", "no listing");
        let code = curl_status(&["-X", "POST", &url(addr, "/")]);
        assert_eq!(code, "405");
    }
}

#[test]
fn static_files_never_leave_their_directory() {
    let dir = site();
    let root = dir.path().join("site");
    for mode in MODES {
        let args = with(mode, &["--root", root.to_str().unwrap()]);
        let (_server, addr, _lines) = start_example_server("http_server", &args);
        for (path, expected) in [
            ("/../secret.txt", 400),
            ("/docs/../../secret.txt", 400),
            ("/%2e%2e/secret.txt", 400),
            ("/%2E%2E%2Fsecret.txt", 400),
            ("/leak.txt", 403),
            ("/nothing-here", 404),
        ] {
            let mut conn = Conn::open(addr);
            conn.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            let response = conn.response();
            assert_eq!(response.status, expected, "{path}");
            assert!(
                !String::from_utf8_lossy(&response.body).contains("secret"),
                "{path}"
            );
        }
    }
}
