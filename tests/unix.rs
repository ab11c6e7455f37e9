//! The Unix-domain servers: socket files (stale, foreign, live, removed),
//! permissions, and datagram clients with and without an address.

mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crossbeam_channel::{Sender, unbounded};
use socketserver::echo::Uppercase;
use socketserver::{
    RequestHandler, ThreadingUnixDatagramServer, ThreadingUnixStreamServer, UnixDatagramRequest,
    UnixDatagramServer, UnixStreamServer,
};
use util::{Process, TIMEOUT, init_logging, serve};

fn unix_connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

fn unix_round_trip(stream: &mut UnixStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Set by the parent to run [`child_server_that_gets_killed`] for real.
const CHILD_SOCKET: &str = "SOCKETSERVER_TEST_CHILD_SOCKET";

/// Not a test of its own: the child process of
/// `restarts_over_the_stale_socket_of_a_killed_server`, which binds a
/// server at the given path and serves until it is killed.
#[test]
fn child_server_that_gets_killed() {
    let Some(path) = std::env::var_os(CHILD_SOCKET) else {
        return;
    };
    let server = ThreadingUnixStreamServer::bind(&path, Uppercase).unwrap();
    println!("ready");
    server.serve_forever().unwrap();
}

#[test]
fn restarts_over_the_stale_socket_of_a_killed_server() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let mut child = Process::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_server_that_gets_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SOCKET, &path)
            .stdout(Stdio::piped()),
    );
    let lines = child.stdout_lines();
    loop {
        let line = lines.recv_timeout(TIMEOUT).expect("the child server started");
        if line.contains("ready") {
            break;
        }
    }
    assert_eq!(unix_round_trip(&mut unix_connect(&path), b"child"), b"CHILD");
    child.signal(libc::SIGKILL);
    let _ = child.finish();
    assert!(is_socket(&path), "a killed server leaves its socket file");
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().kind(),
        ErrorKind::ConnectionRefused,
        "nothing answers on the stale socket"
    );

    let (server, running) = serve(UnixStreamServer::bind(&path, Uppercase));
    assert_eq!(
        unix_round_trip(&mut unix_connect(&path), b"restarted"),
        b"RESTARTED"
    );
    running.shutdown();
    drop(server);
}

#[test]
fn a_regular_file_at_the_path_is_left_untouched() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, b"do not delete").unwrap();
    let error = UnixStreamServer::bind(&path, Uppercase).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyExists);
    assert!(error.to_string().contains("is not a socket"), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    let error = UnixDatagramServer::bind(&path, Uppercase).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"do not delete");
}

#[test]
fn a_live_server_keeps_its_path() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.sock");
    let (first, running) = serve(ThreadingUnixStreamServer::bind(&path, Uppercase));
    let error = UnixStreamServer::bind(&path, Uppercase).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(error.to_string().contains("already listening"), "{error}");
    assert_eq!(
        unix_round_trip(&mut unix_connect(&path), b"still mine"),
        b"STILL MINE"
    );
    running.shutdown();
    drop(first);
}

#[test]
fn the_socket_file_goes_when_the_server_closes() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    // After serving ends.
    let path = dir.path().join("served.sock");
    let (server, running) = serve(UnixStreamServer::bind(&path, Uppercase));
    assert!(is_socket(&path));
    running.shutdown();
    assert!(!path.exists(), "removed when serving ended");
    drop(server);
    // After a drop, never served.
    let path = dir.path().join("dropped.sock");
    let server = UnixDatagramServer::bind(&path, Uppercase).unwrap();
    assert!(is_socket(&path));
    drop(server);
    assert!(!path.exists(), "removed on drop");
}

#[test]
fn permissions_apply_to_the_socket_file() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.sock");
    let server = UnixStreamServer::builder()
        .permissions(0o600)
        .bind(&path, Uppercase)
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let path = dir.path().join("group.sock");
    let dgram = UnixDatagramServer::builder()
        .permissions(0o660)
        .bind(&path, Uppercase)
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    drop((server, dgram));
}

/// A client socket bound to its own path, as a Unix datagram client must
/// be to receive replies.
fn bound_client(dir: &Path, name: &str) -> (UnixDatagram, PathBuf) {
    let path = dir.join(name);
    let client = UnixDatagram::bind(&path).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    (client, path)
}

#[test]
fn unix_datagram_servers_answer_clients_bound_to_a_path() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    for threading in [false, true] {
        let path = dir.path().join(format!("dgram-{threading}.sock"));
        let (server, running) = if threading {
            serve(ThreadingUnixDatagramServer::bind(&path, Uppercase))
        } else {
            serve(UnixDatagramServer::bind(&path, Uppercase))
        };
        let (client, client_path) = bound_client(dir.path(), &format!("client-{threading}.sock"));
        client.send_to(b"datagram", &path).unwrap();
        let mut reply = [0u8; 64];
        let (len, from) = client.recv_from(&mut reply).unwrap();
        assert_eq!(&reply[..len], b"DATAGRAM");
        assert_eq!(from.as_pathname(), Some(path.as_path()));
        assert_eq!(server.stats().accepted, 1);
        running.shutdown();
        drop(server);
        std::fs::remove_file(client_path).unwrap();
    }
}

/// Reports errors to the test.
struct ReportErrors(Sender<io::Error>);

impl RequestHandler<UnixDatagramRequest> for ReportErrors {
    fn handle(&self, request: &mut UnixDatagramRequest) -> io::Result<()> {
        request.reply(b"hello")
    }

    fn handle_error(&self, request: &UnixDatagramRequest, error: &io::Error) {
        assert!(request.peer_addr().is_unnamed());
        let _ = self.0.send(io::Error::new(error.kind(), error.to_string()));
    }
}

#[test]
fn replying_to_an_unbound_client_is_a_clear_error() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unbound.sock");
    let (errors, reported) = unbounded();
    let (server, running) = serve(UnixDatagramServer::bind(&path, ReportErrors(errors)));
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"hi", &path).unwrap();
    let error = reported.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(error.kind(), ErrorKind::NotConnected);
    assert!(
        error.to_string().contains("bind the client socket to a path"),
        "{error}"
    );
    assert_eq!(server.stats().errors, 1);
    running.shutdown();
}

#[test]
fn threading_unix_stream_server_serves_many_clients_at_once() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.sock");
    let (server, running) = serve(
        ThreadingUnixStreamServer::builder()
            .worker_name_prefix("unix-many")
            .bind(&path, Uppercase),
    );
    let mut clients: Vec<UnixStream> = (0..20).map(|_| unix_connect(&path)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let message = format!("client {i}");
        assert_eq!(
            unix_round_trip(client, message.as_bytes()),
            message.to_uppercase().as_bytes()
        );
    }
    assert_eq!(server.stats().active, 20);
    drop(clients);
    running.shutdown();
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("unix-many");
}

/// Binds a datagram socket to `path`, which may be a full 108 bytes with
/// no terminating NUL: Linux allows it, the standard library does not.
#[cfg(target_os = "linux")]
fn bind_raw_unix_datagram(path: &[u8]) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2)/bind(2) calls on a zeroed sockaddr_un whose
    // path is copied within its bounds; the descriptor is owned at once.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        assert!(path.len() <= addr.sun_path.len());
        for (slot, byte) in addr.sun_path.iter_mut().zip(path) {
            *slot = *byte as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + path.len();
        let rc = libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
        );
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        owned
    }
}

/// A client bound to a 108-byte path once made socket2 panic while the
/// server read its address. Now its datagram is served (the reply cannot
/// be addressed to it, which is reported) and serving goes on.
#[cfg(target_os = "linux")]
#[test]
fn a_client_at_a_full_length_path_cannot_crash_the_server() {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    for threading in [false, true] {
        let path = dir.path().join(format!("server-{threading}.sock"));
        let (errors, reported) = unbounded();
        let (server, running) = if threading {
            serve(ThreadingUnixDatagramServer::bind(&path, ReportErrors(errors)))
        } else {
            serve(UnixDatagramServer::bind(&path, ReportErrors(errors)))
        };
        let mut long = dir.path().as_os_str().as_bytes().to_vec();
        long.push(b'/');
        long.resize(108, b'x');
        long[dir.path().as_os_str().len() + 1] = if threading { b't' } else { b's' };
        let client = bind_raw_unix_datagram(&long);
        let target = socket2::SockAddr::unix(&path).unwrap();
        // SAFETY: sendto(2) with a valid descriptor, buffer and address.
        let sent = unsafe {
            libc::sendto(
                client.as_raw_fd(),
                b"hi".as_ptr().cast(),
                2,
                0,
                target.as_ptr().cast(),
                target.len(),
            )
        };
        assert_eq!(sent, 2, "{}", io::Error::last_os_error());
        let error = reported
            .recv_timeout(TIMEOUT)
            .expect("the reply failure is reported");
        assert_eq!(error.kind(), ErrorKind::NotConnected);
        // Still serving: an ordinary client gets its reply.
        let (ordinary, ordinary_path) = bound_client(dir.path(), &format!("ordinary-{threading}.sock"));
        ordinary.send_to(b"x", &path).unwrap();
        let mut reply = [0u8; 16];
        assert_eq!(ordinary.recv(&mut reply).unwrap(), 5);
        assert_eq!(&reply[..5], b"hello");
        let stats = server.stats();
        assert_eq!((stats.accepted, stats.panics), (2, 0));
        running.shutdown();
        std::fs::remove_file(ordinary_path).unwrap();
    }
}

/// Issue 15, defect 1: replies go out without blocking, so a client that
/// never reads (its small Unix datagram queue fills at once) cannot stall
/// the workers that serve everyone else, nor make the pool grow a thread
/// per blocked reply.
#[test]
fn a_client_that_never_reads_does_not_stall_a_threading_unix_datagram_server() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    for (prefix, workers) in [("dgram-two", Some(2)), ("dgram-dflt", None)] {
        let path = dir.path().join(format!("{prefix}.sock"));
        let builder = ThreadingUnixDatagramServer::builder().worker_name_prefix(prefix);
        let builder = match workers {
            Some(n) => builder.workers(n),
            None => builder,
        };
        let (server, running) = serve(builder.bind(&path, Uppercase));
        let (deaf, deaf_path) = bound_client(dir.path(), &format!("{prefix}-deaf.sock"));
        // Never reads. Its sends must not block the test either when the
        // server's own queue is full for a moment.
        deaf.set_write_timeout(Some(std::time::Duration::from_millis(10)))
            .unwrap();
        for _ in 0..200 {
            let _ = deaf.send_to(b"flood", &path);
        }
        let (good, good_path) = bound_client(dir.path(), &format!("{prefix}-good.sock"));
        good.set_write_timeout(Some(TIMEOUT)).unwrap();
        good.send_to(b"still there?", &path).unwrap();
        let mut reply = [0u8; 64];
        let len = good
            .recv(&mut reply)
            .expect("a well-behaved client gets its reply despite the one that never reads");
        assert_eq!(&reply[..len], b"STILL THERE?");
        let stats = server.stats();
        assert!(stats.errors >= 1, "the dropped replies are counted: {stats:?}");
        assert!(
            stats.workers <= 8,
            "the pool grew a worker per blocked reply: {stats:?}"
        );
        running.shutdown();
        util::assert_no_threads_named(prefix);
        drop((deaf, good));
        std::fs::remove_file(deaf_path).unwrap();
        std::fs::remove_file(good_path).unwrap();
    }
}

/// Issue 15, defect 2: binding over the path of a live server whose
/// backlog is full fails with `AddrInUse` at once instead of hanging in a
/// blocking probe `connect`.
#[test]
fn binding_over_a_live_server_with_a_full_backlog_fails_at_once() {
    use socket2::{Domain, SockAddr, Socket, Type};
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wedged.sock");
    // A live server that never accepts, with the smallest backlog.
    let wedged = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    wedged.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    wedged.listen(0).unwrap();
    let mut queued = Vec::new();
    loop {
        let client = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        client.set_nonblocking(true).unwrap();
        match client.connect(&SockAddr::unix(&path).unwrap()) {
            Ok(()) => queued.push(client),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let bind_path = path.clone();
    let error = util::within(TIMEOUT, "bind over a wedged server", move || {
        UnixStreamServer::bind(&bind_path, Uppercase).map(drop)
    })
    .expect_err("the path belongs to a live server");
    assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
    assert!(is_socket(&path), "the live server's socket file was removed");
    drop((wedged, queued));
}
