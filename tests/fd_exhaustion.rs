//! Running out of file descriptors: the accept loop backs off and logs
//! instead of spinning or dying, and serves the waiting clients once
//! descriptors are free again. A test binary of its own, because it lowers
//! the process's descriptor limit and installs a logger.
#![cfg(target_os = "linux")]

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;

use crossbeam_channel::{Sender, unbounded};
use socket2::{Domain, Protocol, Socket, Type};
use socketserver::ThreadingTcpServer;
use socketserver::echo::Uppercase;
use util::{Running, TIMEOUT};

/// Forwards warnings and above to the test.
struct Capture(Sender<String>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = self.0.send(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// Makes every further descriptor allocation fail with EMFILE: lowers the
/// soft limit to just above the highest open descriptor and fills the
/// holes below it. Returns the fillers, to be closed later.
fn exhaust_descriptors() -> Vec<std::fs::File> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut limit = nofile_limit();
    limit.rlim_cur = highest + 1;
    set_nofile_limit(limit);
    let mut fillers = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        fillers.push(file);
    }
    fillers
}

fn unconnected_client() -> Socket {
    Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap()
}

#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    let (sender, logged) = unbounded();
    log::set_boxed_logger(Box::new(Capture(sender))).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    let server = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase).unwrap();
    let addr: SocketAddr = *server.local_addr();
    let stats = server.server_handle().clone();
    let running = Running::start(server.shutdown_handle(), move || server.serve_forever());

    // Client sockets exist before the limit drops; connecting needs no
    // new descriptor, accepting on the server side does.
    let clients: Vec<Socket> = (0..4).map(|_| unconnected_client()).collect();
    let original = nofile_limit();
    let fillers = exhaust_descriptors();
    for client in &clients {
        client.connect_timeout(&addr.into(), TIMEOUT).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
    }

    let warning = loop {
        let line = logged.recv_timeout(TIMEOUT).expect("the exhaustion was logged");
        if line.starts_with("WARN") {
            break line;
        }
    };
    assert!(warning.contains("accept failed"), "{warning}");
    assert!(warning.contains("Too many open files"), "{warning}");
    assert!(stats.stats().receive_errors >= 1);
    assert_eq!(stats.stats().accepted, 0);

    drop(fillers);
    set_nofile_limit(original);

    for (i, client) in clients.iter().enumerate() {
        let mut stream: std::net::TcpStream = client.try_clone().unwrap().into();
        let message = format!("client {i}");
        stream.write_all(message.as_bytes()).unwrap();
        let mut reply = vec![0; message.len()];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(reply, message.to_uppercase().as_bytes());
    }
    let recovered = loop {
        let line = logged.recv_timeout(TIMEOUT).expect("the recovery was logged");
        if line.contains("works again") {
            break line;
        }
    };
    assert!(recovered.starts_with("INFO"), "{recovered}");
    assert_eq!(stats.stats().accepted, 4);
    drop(clients);
    running.shutdown();
}
