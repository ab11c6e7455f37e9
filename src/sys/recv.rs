//! Receives the standard library does not offer: one that reports a
//! datagram too large for the buffer, and one that never blocks.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use socket2::{SockAddr, SockRef};

/// The size of a received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// It fitted: this many bytes.
    Whole(usize),
    /// It did not fit and was cut; its real size where the OS tells it.
    Truncated(Option<usize>),
}

/// An initialised byte slice seen as the possibly-uninitialised buffer
/// socket2's receives take.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and the
    // receives only ever write initialised bytes into the slice, so it
    // stays initialised for the caller.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// Receives one datagram into `buf`, detecting truncation.
///
/// Linux's `recvfrom(MSG_TRUNC)` returns the datagram's real length even
/// when it exceeds the buffer, at no extra cost; elsewhere `recvmsg` flags
/// the truncation without the size.
pub(crate) fn recv_datagram(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<(Received, SockAddr)> {
    let socket = SockRef::from(socket);
    let capacity = buf.len();
    let uninit = as_uninit(buf);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let (len, from) = socket.recv_from_with_flags(uninit, libc::MSG_TRUNC)?;
        let received = if len > capacity {
            Received::Truncated(Some(len))
        } else {
            Received::Whole(len)
        };
        Ok((received, from))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut bufs = [socket2::MaybeUninitSlice::new(uninit)];
        let (len, flags, from) = socket.recv_from_vectored(&mut bufs)?;
        let received = if flags.is_truncated() {
            Received::Truncated(None)
        } else {
            Received::Whole(len.min(capacity))
        };
        Ok((received, from))
    }
}

/// Reads what is waiting on the stream socket `socket` now, without ever
/// blocking, even on a socket in blocking mode (`recv` with
/// `MSG_DONTWAIT`): `WouldBlock` when nothing is there, `Ok(0)` when the
/// peer closed its end. Interrupted calls are retried.
///
/// A parked server reads a readable connection's request with it (the
/// readiness may be stale), and drives TLS handshakes with it: it takes
/// what has arrived and goes back to the poller instead of holding a
/// worker while a slow client sends the rest.
pub(crate) fn recv_now(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let socket = SockRef::from(socket);
    loop {
        match socket.recv_with_flags(as_uninit(buf), libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Whether a datagram waits in `socket`'s receive queue, without taking
/// it or waiting (`recv` with `MSG_PEEK | MSG_DONTWAIT` into one byte).
/// Errors read as "no": the receivers meet them themselves.
pub(crate) fn datagram_waiting(socket: &impl AsFd) -> bool {
    let socket = SockRef::from(socket);
    let mut byte = [MaybeUninit::new(0u8); 1];
    loop {
        match socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result.is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn recv_now_takes_what_is_there_and_never_waits() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        use std::time::{Duration, Instant};

        let (mut client, server) = UnixStream::pair().unwrap();
        // A blocking socket that would wait 10 s for data.
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let nothing = recv_now(&server, &mut buf).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock, "{nothing}");
        assert!(started.elapsed() < Duration::from_secs(1), "it waited");

        client.write_all(b"abc").unwrap();
        assert_eq!(recv_now(&server, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(
            recv_now(&server, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );

        drop(client);
        assert_eq!(
            recv_now(&server, &mut buf).unwrap(),
            0,
            "the peer's close reads as 0"
        );
    }

    #[test]
    fn a_datagram_too_large_is_reported() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Only the client's datagrams: the port may have been another
        // test's a moment ago.
        server.connect(client.local_addr().unwrap()).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        client.send_to(&[7; 100], server.local_addr().unwrap()).unwrap();
        let mut small = [0u8; 10];
        let (received, from) = recv_datagram(&server, &mut small).unwrap();
        assert!(matches!(received, Received::Truncated(_)), "{received:?}");
        assert_eq!(from.as_socket(), Some(client.local_addr().unwrap()));
        client.send_to(&[8; 5], server.local_addr().unwrap()).unwrap();
        assert_eq!(recv_datagram(&server, &mut small).unwrap().0, Received::Whole(5));
        assert_eq!(small[..5], [8; 5]);
    }
}
