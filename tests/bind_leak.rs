//! From CPython's `test_tcpserver_bind_leak`: a failed bind leaks no file
//! descriptor. A test binary of its own, so no other test opens or closes
//! descriptors while this one counts them.
#![cfg(target_os = "linux")]

use std::io::ErrorKind;

use socketserver::echo::Uppercase;
use socketserver::{TcpServer, ThreadingTcpServer};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_failed_bind_leaks_no_descriptor() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let before = open_descriptors();
    for _ in 0..256 {
        let error = TcpServer::builder()
            .reuse_address(false)
            .bind(taken, Uppercase)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AddrInUse);
        assert!(
            error.to_string().contains(&taken.to_string()),
            "the error names the address: {error}"
        );
        let error = ThreadingTcpServer::bind(taken, Uppercase).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AddrInUse);
    }
    assert_eq!(open_descriptors(), before);
}
