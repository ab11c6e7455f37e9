//! UdpServer and ThreadingUdpServer: concurrency, oversized datagrams,
//! silent handlers, panics, growth and retirement of workers.

mod util;

use std::io::{self, ErrorKind};

use std::thread;
use std::time::Duration;

use crossbeam_channel::{Sender, unbounded};
use socketserver::echo::Uppercase;
use socketserver::{RequestHandler, ThreadingUdpServer, UdpRequest, UdpServer};
use util::{TIMEOUT, eventually, init_logging, recv_from_only, serve, udp_client, udp_round_trip};

#[test]
fn fifty_concurrent_clients_each_get_their_own_replies() {
    init_logging();
    let (server, running) = serve(ThreadingUdpServer::bind("127.0.0.1:0", Uppercase));
    let addr = *server.local_addr();
    let clients: Vec<_> = (0..50)
        .map(|client| {
            thread::spawn(move || {
                let socket = udp_client();
                for round in 0..20 {
                    let sent = format!("client {client} round {round}");
                    let reply = udp_round_trip(&socket, addr, sent.as_bytes()).unwrap();
                    assert_eq!(reply, sent.to_uppercase().as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    assert_eq!(server.stats().accepted, 50 * 20);
    running.shutdown();
}

#[test]
fn a_full_size_datagram_is_answered_whole() {
    init_logging();
    for threading in [false, true] {
        let (server, running) = if threading {
            serve(ThreadingUdpServer::bind("127.0.0.1:0", Uppercase))
        } else {
            serve(UdpServer::bind("127.0.0.1:0", Uppercase))
        };
        let client = udp_client();
        let big: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
        let reply = udp_round_trip(&client, *server.local_addr(), &big).unwrap();
        assert_eq!(reply, big.to_ascii_uppercase());
        running.shutdown();
    }
}

/// Reports errors to the test.
struct Reporting<H> {
    inner: H,
    errors: Sender<String>,
}

impl<H: RequestHandler<UdpRequest>> RequestHandler<UdpRequest> for Reporting<H> {
    fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
        self.inner.handle(request)
    }

    fn handle_error(&self, request: &UdpRequest, error: &io::Error) {
        let _ = self
            .errors
            .send(format!("{:?} {} {error}", error.kind(), request.peer_addr()));
    }
}

#[test]
fn an_oversized_datagram_is_reported_with_its_size_and_serving_goes_on() {
    init_logging();
    for threading in [false, true] {
        let (errors, reported) = unbounded();
        let handler = Reporting {
            inner: Uppercase,
            errors,
        };
        let (server, running) = if threading {
            serve(
                ThreadingUdpServer::builder()
                    .max_datagram_size(100)
                    .bind("127.0.0.1:0", handler),
            )
        } else {
            serve(
                UdpServer::builder()
                    .max_datagram_size(100)
                    .bind("127.0.0.1:0", handler),
            )
        };
        let addr = *server.local_addr();
        let client = udp_client();
        client.send_to(&[b'x'; 1000], addr).unwrap();
        // Had the big one been answered, its reply would come first.
        assert_eq!(udp_round_trip(&client, addr, b"small").unwrap(), b"SMALL");
        let report = reported.recv_timeout(TIMEOUT).unwrap();
        let expected = format!(
            "InvalidData {} dropped a datagram of 1000 bytes: larger than the 100-byte receive buffer",
            client.local_addr().unwrap()
        );
        assert_eq!(report, expected);
        let stats = server.stats();
        assert_eq!((stats.accepted, stats.errors), (2, 1));
        running.shutdown();
    }
}

#[test]
fn a_handler_that_never_replies_leaves_the_server_unaffected() {
    init_logging();
    let (server, running) = serve(ThreadingUdpServer::bind(
        "127.0.0.1:0",
        |request: &mut UdpRequest| {
            if request.data() == b"reply" {
                request.reply(b"replied")?;
            }
            Ok(())
        },
    ));
    let addr = *server.local_addr();
    let client = udp_client();
    client.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let silence = udp_round_trip(&client, addr, b"ignore me").unwrap_err();
    assert!(matches!(
        silence.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(udp_round_trip(&client, addr, b"reply").unwrap(), b"replied");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.errors), (2, 0));
    running.shutdown();
}

#[test]
fn a_panicking_datagram_handler_harms_no_other_request() {
    init_logging();
    let (server, running) = serve(ThreadingUdpServer::builder().workers(2).bind(
        "127.0.0.1:0",
        |request: &mut UdpRequest| {
            if request.data() == b"panic" {
                panic!("asked to panic");
            }
            request.reply_data()
        },
    ));
    let addr = *server.local_addr();
    let client = udp_client();
    client.send_to(b"panic", addr).unwrap();
    assert_eq!(udp_round_trip(&client, addr, b"after").unwrap(), b"after");
    eventually("the panic is counted", || server.stats().panics == 1);
    for _ in 0..10 {
        assert_eq!(udp_round_trip(&client, addr, b"again").unwrap(), b"again");
    }
    assert_eq!(server.stats().workers, 2);
    running.shutdown();
}

#[test]
fn refused_datagrams_never_reach_the_handler() {
    init_logging();
    struct OnlyHello;
    impl RequestHandler<UdpRequest> for OnlyHello {
        fn verify_request(&self, request: &UdpRequest) -> bool {
            request.data().starts_with(b"hello")
        }
        fn handle(&self, request: &mut UdpRequest) -> io::Result<()> {
            request.reply(b"welcome")
        }
    }
    let (server, running) = serve(UdpServer::bind("127.0.0.1:0", OnlyHello));
    let addr = *server.local_addr();
    let client = udp_client();
    client.send_to(b"spam", addr).unwrap();
    assert_eq!(udp_round_trip(&client, addr, b"hello").unwrap(), b"welcome");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.refused), (2, 1));
    running.shutdown();
}

#[test]
fn workers_grow_while_busy_and_retire_when_idle() {
    init_logging();
    let (release_tx, release_rx) = unbounded::<()>();
    let (started_tx, started) = unbounded();
    let (server, running) = serve(
        ThreadingUdpServer::builder()
            .min_workers(1)
            .keep_alive(Duration::from_millis(20))
            .worker_name_prefix("udp-grow")
            .bind("127.0.0.1:0", move |request: &mut UdpRequest| {
                let _ = started_tx.send(());
                let _ = release_rx.recv_timeout(TIMEOUT);
                request.reply_data()
            }),
    );
    let addr = *server.local_addr();
    let clients: Vec<_> = (0..4).map(|_| udp_client()).collect();
    for client in &clients {
        client.send_to(b"hold", addr).unwrap();
    }
    // Four handlers hold four workers at once: the pool grew to serve
    // them, and grows once more so that someone is receiving.
    for _ in 0..4 {
        started
            .recv_timeout(TIMEOUT)
            .expect("the pool did not grow for a busy handler");
    }
    eventually("a fifth worker receives", || server.stats().idle_workers >= 1);
    assert!(server.stats().workers >= 5, "{:?}", server.stats());
    drop(release_tx);
    for client in &clients {
        let mut reply = [0u8; 8];
        assert_eq!(recv_from_only(client, addr, &mut reply).unwrap(), 4);
    }
    eventually("idle workers retire down to one", || server.stats().workers == 1);
    running.shutdown();
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("udp-grow");
}

#[test]
fn shutdown_stops_every_worker_at_once() {
    init_logging();
    let (server, running) = serve(
        ThreadingUdpServer::builder()
            .workers(8)
            .worker_name_prefix("udp-stop")
            .bind("127.0.0.1:0", Uppercase),
    );
    let addr = *server.local_addr();
    assert_eq!(udp_round_trip(&udp_client(), addr, b"up").unwrap(), b"UP");
    eventually("eight workers are receiving", || server.stats().idle_workers == 8);
    let took = running.shutdown();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert_eq!(server.stats().workers, 0);
    #[cfg(target_os = "linux")]
    util::assert_no_threads_named("udp-stop");
    // The socket is closed: its address can be bound again (UDP sockets
    // do not share an address by default, so an open one would refuse).
    std::net::UdpSocket::bind(addr).expect("the server's socket is closed");
}

#[test]
fn address_reuse_is_off_by_default_for_udp() {
    init_logging();
    let first = UdpServer::bind("127.0.0.1:0", Uppercase).unwrap();
    let taken = *first.local_addr();
    let second = UdpServer::bind(taken, Uppercase).unwrap_err();
    assert_eq!(second.kind(), ErrorKind::AddrInUse);
}

#[test]
fn a_handler_sees_its_server() {
    init_logging();
    let (server, running) = serve(UdpServer::bind("127.0.0.1:0", |request: &mut UdpRequest| {
        let reply = format!(
            "{} {}",
            request.server().local_addr(),
            request.server().stats().accepted
        );
        request.reply(reply.as_bytes())
    }));
    let addr = *server.local_addr();
    let reply = udp_round_trip(&udp_client(), addr, b"who").unwrap();
    assert_eq!(String::from_utf8(reply).unwrap(), format!("{addr} 1"));
    running.shutdown();
}

/// A datagram from someone other than the server (another test's server
/// answering a client whose port this client got since, say) is not
/// taken for the reply.
#[test]
fn a_datagram_from_another_socket_is_not_taken_for_the_reply() {
    init_logging();
    let (server, running) = serve(UdpServer::bind("127.0.0.1:0", Uppercase));
    let client = udp_client();
    let stranger = udp_client();
    stranger
        .send_to(b"not the reply", client.local_addr().unwrap())
        .unwrap();
    assert_eq!(
        udp_round_trip(&client, *server.local_addr(), b"mine").unwrap(),
        b"MINE"
    );
    running.shutdown();
}
