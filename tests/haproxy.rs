//! A real HAProxy in front of three `uppercase_tcp_server --proxy-protocol
//! 127.0.0.1` processes on loopback: TCP mode, a PROXY protocol v2 header
//! on every server connection (`send-proxy-v2`), health checks that speak
//! the protocol (a v2 `LOCAL` header, `ping`, expect `PING`), and a
//! retried connection going to another server (`option redispatch`).
//!
//! Client threads connect through HAProxy, send one request each time,
//! check the reply and close, from source ports of their own, so each
//! connection can be found in the servers' debug logs ("connection from
//! 127.0.0.1:PORT through the proxy ..."): the servers must have seen the
//! real clients. Then one server is killed (SIGKILL) under that load:
//! HAProxy's health check must take it out, and the only requests that may
//! fail are those in flight on it when it died.
//!
//! Then the same with servers that terminate TLS themselves
//! (`--tls-cert`), behind deploy/haproxy-tls.cfg as it is in the
//! repository (its ports and paths replaced): HAProxy's checks speak TLS
//! (`check-ssl`, verifying the certificates), the servers are `UP`, a
//! server whose certificate another CA issued is `DOWN`, and TLS clients
//! are passed through to the trusted servers with their real addresses.
//!
//! Needs `haproxy` (the Debian package; `.ci/run` installs it). Without it
//! the tests fail saying so.
#![cfg(all(feature = "proxy-protocol", target_os = "linux"))]

#[path = "util/tls.rs"]
mod pki;
mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use util::tools::{find_tool, tool};
use util::{Process, TIMEOUT, place_fds};

/// Server processes behind HAProxy; the first is killed.
const SERVERS: usize = 3;
/// Client threads, each with at most one connection open.
const CLIENTS: usize = 6;
/// Connections each server must have served before the kill.
const BEFORE_KILL: usize = 50;
/// Requests that must succeed after HAProxy took the killed server out.
const AFTER_DOWN: usize = 300;
/// The clients' source ports, one per connection, never reused in a run:
/// below the kernel's ephemeral range (32768-60999), so no other socket
/// picks them.
const FIRST_PORT: u16 = 20_000;
const LAST_PORT: u16 = 32_000;

// --- finding haproxy ---------------------------------------------------

fn haproxy() -> PathBuf {
    tool("haproxy", "haproxy")
}

#[test]
fn a_missing_haproxy_fails_the_test_saying_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    // /usr/sbin is searched too: only a machine without haproxy there can
    // show the message; everywhere the lookup must name the package.
    match find_tool("haproxy", "haproxy", dir.path().to_str().unwrap()) {
        Ok(found) => assert_eq!(found, Path::new("/usr/sbin/haproxy")),
        Err(message) => {
            assert!(message.contains("apt-get install haproxy"), "{message}");
            assert!(message.contains(".ci/run"), "{message}");
        }
    }
}

// --- the servers -------------------------------------------------------

/// What a server's debug log said about its connections.
#[derive(Default)]
struct ServerLog {
    /// The client ports of "connection from 127.0.0.1:PORT through the
    /// proxy 127.0.0.1:..." lines.
    client_ports: Vec<u16>,
    /// Connections from the proxy itself (its health checks' LOCAL
    /// headers).
    from_proxy_itself: usize,
    /// Lines naming another client or proxy than expected.
    unexpected: Vec<String>,
    /// The last lines, for failure messages.
    tail: Vec<String>,
}

impl ServerLog {
    fn read(&mut self, line: &str) {
        if let Some(rest) = line.split_once("connection from ").map(|(_, rest)| rest) {
            if let Some((client, proxy)) = rest.split_once(" through the proxy ") {
                let client: Option<SocketAddr> = client.parse().ok();
                let proxy: Option<SocketAddr> = proxy.trim().parse().ok();
                match (client, proxy) {
                    (Some(client), Some(proxy))
                        if client.ip() == Ipv4Addr::LOCALHOST && proxy.ip() == Ipv4Addr::LOCALHOST =>
                    {
                        self.client_ports.push(client.port())
                    }
                    _ => self.unexpected.push(line.to_owned()),
                }
            } else if rest.starts_with("the proxy 127.0.0.1:") && rest.ends_with("itself (Local)") {
                self.from_proxy_itself += 1;
            }
        }
        if self.tail.len() == 40 {
            self.tail.remove(0);
        }
        self.tail.push(line.to_owned());
    }
}

/// An uppercase_tcp_server process trusting 127.0.0.1 as its proxy, with
/// its debug log read on a thread.
struct Backend {
    process: Process,
    addr: SocketAddr,
    log: Arc<Mutex<ServerLog>>,
    reader: JoinHandle<()>,
}

impl Backend {
    /// A server with `args` added to its PROXY protocol options.
    fn start(args: &[&str]) -> Backend {
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let parsed = Arc::clone(&log);
        let (process, addr, reader) = util::start_logged_example_server(
            "uppercase_tcp_server",
            &[
                &["--port", "0", "--proxy-protocol", "127.0.0.1", "--grace", "100ms"],
                args,
            ]
            .concat(),
            move |line| parsed.lock().read(&line),
        );
        Backend {
            process,
            addr: addr.parse().unwrap(),
            log,
            reader,
        }
    }

    fn served(&self) -> usize {
        self.log.lock().client_ports.len()
    }

    /// Stops the process (SIGTERM, or SIGKILL) and reads its log to the
    /// end.
    fn stop(mut self, signal: libc::c_int) -> ServerLog {
        self.process.signal(signal);
        let status = self.process.finish().status;
        if signal == libc::SIGTERM {
            assert!(status.success(), "{status}: {:#?}", self.log.lock().tail);
        }
        self.reader.join().unwrap();
        std::mem::take(&mut *self.log.lock())
    }
}

// --- haproxy -----------------------------------------------------------

/// The test's configuration: like deploy/haproxy.cfg, with checks every
/// 100 ms so a dead server is out in a few hundred milliseconds, and a
/// failed connection retried on another server at once.
fn config(servers: &[SocketAddr], stats: &Path) -> String {
    let mut config = format!(
        "global
    stats socket {stats} level admin

defaults
    mode tcp
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    timeout check 500ms
    # A connection refused by a dead server is retried (after at most
    # 'timeout connect'), on another server each time.
    retries 3
    option redispatch 1

frontend uppercase
    # The listening socket the test passes at descriptor 3.
    bind fd@3
    default_backend uppercase_servers

backend uppercase_servers
    balance roundrobin
    option tcp-check
    # 'default': the check's connection sends the server line's PROXY
    # header (a v2 LOCAL one, from check-send-proxy).
    tcp-check connect default
    tcp-check send ping\\r\\n
    tcp-check expect string PING
    default-server send-proxy-v2 check check-send-proxy inter 100ms fall 2 rise 1
",
        stats = stats.display()
    );
    config.push_str(&server_lines(servers));
    config
}

/// The backend's `server` lines: s0, s1, ... at `servers`.
fn server_lines(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .enumerate()
        .map(|(n, addr)| format!("    server s{n} {addr}\n"))
        .collect()
}

/// A HAProxy process in the foreground, killed when dropped.
struct HaProxy {
    process: Process,
    /// How many servers its backend has.
    server_count: usize,
    frontend: SocketAddr,
    stats: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    /// Starts HAProxy with `config(path of its stats socket)`, whose
    /// backend has `server_count` servers.
    fn start(server_count: usize, config: impl FnOnce(&Path) -> String) -> HaProxy {
        let binary = haproxy();
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.sock");
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config(&stats)).unwrap();
        // The frontend's socket, bound here on a free port and inherited
        // as descriptor 3: no port to guess.
        let frontend = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut command = Command::new(binary);
        command
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        place_fds(&mut command, vec![frontend.as_raw_fd()]);
        let mut process = Process::spawn(&mut command);
        let log = Arc::new(Mutex::new(Vec::new()));
        for output in [
            Box::new(process.child().stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(process.child().stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    eprintln!("haproxy: {line}");
                    log.lock().push(line);
                }
            });
        }
        let haproxy = HaProxy {
            process,
            server_count,
            frontend: frontend.local_addr().unwrap(),
            stats,
            log,
            _dir: dir,
        };
        drop(frontend);
        haproxy
    }

    /// Each server's (status, check status) from the stats socket's "show
    /// stat", or `None` while HAProxy does not answer.
    fn servers(&mut self) -> Option<HashMap<String, (String, String)>> {
        if let Some(status) = self.process.child().try_wait().unwrap() {
            panic!("haproxy exited ({status}): {:#?}", self.log.lock());
        }
        let mut socket = UnixStream::connect(&self.stats).ok()?;
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket.write_all(b"show stat\n").ok()?;
        let mut csv = String::new();
        socket.read_to_string(&mut csv).ok()?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|c| *c == name);
        let (proxy, server, status, check) = (
            column("pxname")?,
            column("svname")?,
            column("status")?,
            column("check_status")?,
        );
        Some(
            lines
                .map(|line| line.split(',').collect::<Vec<&str>>())
                .filter(|row| {
                    row.len() > check && row[proxy] == "uppercase_servers" && row[server] != "BACKEND"
                })
                .map(|row| {
                    (
                        row[server].to_owned(),
                        (row[status].to_owned(), row[check].to_owned()),
                    )
                })
                .collect(),
        )
    }

    /// Waits (bounded) until every server's state satisfies `wanted`;
    /// returns how long that took.
    fn wait_until(&mut self, what: &str, wanted: impl Fn(&str, &str, &str) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let servers = self.servers();
            if let Some(servers) = &servers
                && servers.len() == self.server_count
                && servers
                    .iter()
                    .all(|(name, (status, check))| wanted(name, status, check))
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "HAProxy did not see {what} within {TIMEOUT:?}: {servers:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

// --- the clients -------------------------------------------------------

/// One connection through HAProxy: one request, its reply checked.
struct Outcome {
    /// Its source port, its own in this test.
    port: u16,
    started: Instant,
    ended: Instant,
    failure: Option<String>,
}

/// Client threads connecting through HAProxy again and again until
/// stopped, and what each connection came to.
struct Load {
    outcomes: Arc<(Mutex<Vec<Outcome>>, Condvar)>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(frontend: SocketAddr) -> Load {
        let outcomes = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ports = Arc::new(AtomicU16::new(FIRST_PORT));
        let clients = (0..CLIENTS)
            .map(|client| {
                let (outcomes, stop, ports) = (Arc::clone(&outcomes), Arc::clone(&stop), Arc::clone(&ports));
                thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let started = Instant::now();
                        let (port, result) =
                            one_request(frontend, &ports, &format!("client {client} request {n}"));
                        let (outcomes, changed) = &*outcomes;
                        outcomes.lock().push(Outcome {
                            port,
                            started,
                            ended: Instant::now(),
                            failure: result
                                .err()
                                .map(|e| format!("client {client} request {n} (port {port}): {e}")),
                        });
                        changed.notify_all();
                    }
                })
            })
            .collect();
        Load {
            outcomes,
            stop,
            clients,
        }
    }

    fn successes_since(&self, since: Instant) -> usize {
        let outcomes = self.outcomes.0.lock();
        outcomes
            .iter()
            .filter(|o| o.failure.is_none() && o.started >= since)
            .count()
    }

    /// Waits (bounded) until `done` holds, checking it after each
    /// connection.
    fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        let (outcomes, changed) = &*self.outcomes;
        let mut guard = outcomes.lock();
        loop {
            // The condition may lock the outcomes itself.
            drop(guard);
            if done() {
                return;
            }
            guard = outcomes.lock();
            assert!(
                !changed.wait_until(&mut guard, deadline).timed_out(),
                "{what} did not happen within {TIMEOUT:?}"
            );
        }
    }

    fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().expect("a client thread panicked");
        }
        std::mem::take(&mut *self.outcomes.0.lock())
    }
}

/// A connection from the next free source port of ours.
fn connect_from_own_port(frontend: SocketAddr, ports: &AtomicU16) -> (u16, std::io::Result<TcpStream>) {
    loop {
        let port = ports.fetch_add(1, Ordering::Relaxed);
        assert!(port <= LAST_PORT, "the test used up its source ports");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // The port may still be in TIME_WAIT from an earlier run, with
        // another frontend port: no conflict.
        socket.set_reuse_address(true).unwrap();
        match socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).into()) {
            Ok(()) => {}
            // Someone else's: take the next one.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return (port, Err(e)),
        }
        let connected = socket
            .connect_timeout(&frontend.into(), TIMEOUT)
            .map(|()| TcpStream::from(socket));
        return (port, connected);
    }
}

/// Connect, one request, check the reply, close.
fn one_request(frontend: SocketAddr, ports: &AtomicU16, message: &str) -> (u16, std::io::Result<()>) {
    let (port, stream) = connect_from_own_port(frontend, ports);
    (
        port,
        stream.and_then(|stream| util::one_uppercase_request(stream, message)),
    )
}

// --- the test ----------------------------------------------------------

#[test]
fn haproxy_sends_the_real_clients_and_takes_a_killed_server_out_losing_only_its_requests_in_flight() {
    let mut backends: Vec<Backend> = (0..SERVERS).map(|_| Backend::start(&[])).collect();
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let mut haproxy = HaProxy::start(SERVERS, |stats| config(&addrs, stats));
    // L7OK: the check's PROXY header, ping and PING all went through.
    haproxy.wait_until("every server up and checked", |_, status, check| {
        status == "UP" && check == "L7OK"
    });

    let load = Load::start(haproxy.frontend);
    load.wait_until("every server serving clients", || {
        backends.iter().all(|b| b.served() >= BEFORE_KILL)
    });

    // The kill: `dead` is when the process was gone (its sockets closed).
    let victim = backends.remove(0);
    let killing = Instant::now();
    let victim_log = victim.stop(libc::SIGKILL);
    let dead = Instant::now();
    let took_out = haproxy.wait_until("the killed server out", |name, status, _| {
        (name == "s0") == status.starts_with("DOWN")
    });
    let down = Instant::now();
    load.wait_until("requests served after the kill", || {
        load.successes_since(down) >= AFTER_DOWN
    });
    let outcomes = load.stop();
    let survivor_logs: Vec<ServerLog> = backends.into_iter().map(|b| b.stop(libc::SIGTERM)).collect();

    // Every server saw the real clients: each successful connection's
    // source port in exactly one server's log, through HAProxy.
    let mut served_by: HashMap<u16, usize> = HashMap::new();
    for (n, log) in std::iter::once(&victim_log).chain(&survivor_logs).enumerate() {
        assert!(log.unexpected.is_empty(), "server {n}: {:#?}", log.unexpected);
        assert!(
            log.from_proxy_itself > 0,
            "server {n} saw no health check with a LOCAL header: {:#?}",
            log.tail
        );
        for &port in &log.client_ports {
            assert!(
                served_by.insert(port, n).is_none(),
                "client port {port} logged twice"
            );
        }
    }
    let (succeeded, failed): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.failure.is_none());
    for outcome in &succeeded {
        assert!(
            served_by.contains_key(&outcome.port),
            "no server logged the client 127.0.0.1:{}",
            outcome.port
        );
    }

    // Only requests in flight on the killed server failed: begun before
    // it was gone, still open when it was killed, and not served by
    // another server.
    let open_on_victim = outcomes
        .iter()
        .filter(|o| o.started < dead && (o.failure.is_some() || o.ended >= killing))
        .filter(|o| served_by.get(&o.port).is_none_or(|&n| n == 0))
        .count();
    for outcome in &failed {
        let failure = outcome.failure.as_deref().unwrap_or_default();
        assert!(
            outcome.started < dead,
            "a request begun after the kill failed: {failure}"
        );
        assert!(
            served_by.get(&outcome.port).is_none_or(|&n| n == 0),
            "a request served by a surviving server failed: {failure}"
        );
    }
    assert!(failed.len() <= open_on_victim && failed.len() <= CLIENTS);
    let after_down = succeeded.iter().filter(|o| o.started >= down).count();
    assert!(after_down >= AFTER_DOWN);
    eprintln!(
        "{} requests through HAProxy, {} failed (at most {open_on_victim} were open on the killed server); \
         the killed server was out after {took_out:?}; {after_down} served after that; \
         per server: {:?}",
        outcomes.len(),
        failed.len(),
        std::iter::once(&victim_log)
            .chain(&survivor_logs)
            .map(|log| log.client_ports.len())
            .collect::<Vec<_>>()
    );
    for outcome in &failed {
        eprintln!(
            "in flight on the killed server: {}",
            outcome.failure.as_deref().unwrap_or_default()
        );
    }
}

// --- TLS servers behind deploy/haproxy-tls.cfg -------------------------

/// Requests through HAProxy to the TLS servers.
const TLS_REQUESTS: usize = 20;

/// deploy/haproxy-tls.cfg as the test runs it: the frontend on the socket
/// the test passes, the servers at `servers`, the test's CA, and a stats
/// socket. Each line replaced must be in the file exactly as the manual
/// (src/manual/08_proxy_protocol.md) runs it, so the file itself is what
/// is tested.
fn tls_config(servers: &[SocketAddr], ca: &Path, stats: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy-tls.cfg");
    let deployed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    [
        (
            "\nglobal\n",
            format!("\nglobal\n    stats socket {} level admin\n", stats.display()),
        ),
        ("bind 127.0.0.1:9000", "bind fd@3".to_owned()),
        ("ca-file target/tls/ca.pem", format!("ca-file {}", ca.display())),
        (
            "    server s1 127.0.0.1:9001\n    server s2 127.0.0.1:9002\n",
            server_lines(servers),
        ),
    ]
    .into_iter()
    .fold(deployed, |config, (from, to)| {
        assert_eq!(
            config.matches(from).count(),
            1,
            "{} should have {from:?} once",
            path.display()
        );
        config.replace(from, &to)
    })
}

/// Connect, one request over TLS (the server's certificate checked for
/// localhost against `tls`'s CA), reply checked, close_notify, and the
/// server's close; returns the connection's source port.
fn one_tls_request(
    frontend: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    message: &str,
) -> std::io::Result<u16> {
    let stream = TcpStream::connect_timeout(&frontend, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let port = stream.local_addr()?.port();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(Arc::clone(tls), name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(session, stream);
    stream.write_all(message.as_bytes())?;
    let mut reply = vec![0u8; message.len()];
    stream.read_exact(&mut reply)?;
    assert_eq!(reply, message.to_ascii_uppercase().as_bytes());
    stream.conn.send_close_notify();
    stream.flush()?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    assert!(rest.is_empty(), "extra bytes after the reply: {rest:?}");
    Ok(port)
}

#[test]
fn haproxy_checks_tls_servers_over_tls_and_passes_tls_clients_through_to_them() {
    let pki = pki::TestPki::generate();
    // s2 presents a certificate for the right names from a CA HAProxy
    // does not trust: `verify required` must keep it DOWN.
    pki.untrusted_ca
        .issue_server(&pki::SERVER_NAMES)
        .write(pki.dir.path(), "stranger")
        .unwrap();
    let presenting = |name: &str| {
        let (cert, key) = (pki.path(&format!("{name}.pem")), pki.path(&format!("{name}.key")));
        Backend::start(&[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
    };
    let backends = vec![presenting("server"), presenting("server"), presenting("stranger")];
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let ca = pki.path("ca.pem");
    let mut haproxy = HaProxy::start(backends.len(), |stats| tls_config(&addrs, &ca, stats));
    // L7OK: PROXY header, TLS handshake with the certificate verified,
    // ping and PING. L6: the TLS layer failed (the stranger's
    // certificate).
    haproxy.wait_until("s0 and s1 up, s2 down", |name, status, check| {
        if name == "s2" {
            status.starts_with("DOWN") && check.starts_with("L6")
        } else {
            status == "UP" && check == "L7OK"
        }
    });

    let tls = pki.client_config();
    let mut ports = Vec::new();
    for n in 0..TLS_REQUESTS {
        let message = format!("tls request {n} through haproxy");
        ports.push(
            one_tls_request(haproxy.frontend, &tls, &message).unwrap_or_else(|e| panic!("{message}: {e}")),
        );
    }
    // The manual's client (src/manual/08_proxy_protocol.md), through HAProxy: it checks the certificate
    // for 127.0.0.1, also a name the server certificate carries.
    let client = util::run_example_client(
        "uppercase_tcp_client",
        haproxy.frontend,
        &["--tls-ca", ca.to_str().unwrap(), "--message", "hello tls"],
        b"",
    );
    assert!(client.status.success(), "{client:?}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "HELLO TLS\n",
        "{client:?}"
    );

    let logs: Vec<ServerLog> = backends.into_iter().map(|b| b.stop(libc::SIGTERM)).collect();
    for (n, log) in logs.iter().enumerate() {
        assert!(log.unexpected.is_empty(), "server {n}: {:#?}", log.unexpected);
        assert!(
            log.from_proxy_itself > 0,
            "server {n} saw no health check with a LOCAL header: {:#?}",
            log.tail
        );
    }
    assert!(
        logs[2].client_ports.is_empty(),
        "the untrusted server got clients: {:?}",
        logs[2].client_ports
    );
    // Every request reached exactly one trusted server, as itself; both
    // served some (leastconn, with ties taken in turn).
    for port in &ports {
        let servers = logs.iter().filter(|log| log.client_ports.contains(port)).count();
        assert_eq!(servers, 1, "client port {port} logged by {servers} servers");
    }
    for (n, log) in logs[..2].iter().enumerate() {
        assert!(
            !log.client_ports.is_empty(),
            "server {n} got no client: {:#?}",
            log.tail
        );
    }
    assert_eq!(
        logs[0].client_ports.len() + logs[1].client_ports.len(),
        TLS_REQUESTS + 1
    );
}
