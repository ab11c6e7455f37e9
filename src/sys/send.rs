//! Sends that never block.

use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

/// Writes what the stream socket `socket` takes now, without ever
/// blocking, even on a socket in blocking mode (`send` with
/// `MSG_DONTWAIT`, and `MSG_NOSIGNAL`: a closed peer is an `EPIPE` error,
/// never a signal): `WouldBlock` when its send buffer is full.
/// Interrupted calls are retried.
///
/// For the last bytes a server sends on a connection it is closing (TLS's
/// `close_notify`): a client that stopped reading must not hold the
/// thread closing it.
pub(crate) fn send_now(socket: &impl AsFd, buf: &[u8]) -> io::Result<usize> {
    let socket = SockRef::from(socket);
    loop {
        match socket.send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    #[test]
    fn send_now_stops_at_a_full_buffer_instead_of_waiting() {
        let (writer, _reader) = UnixStream::pair().unwrap();
        let chunk = [7u8; 64 * 1024];
        let started = Instant::now();
        let mut sent = 0;
        loop {
            match send_now(&writer, &chunk) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never filled up");
        }
        assert!(sent > 0);
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_signal() {
        let (writer, reader) = UnixStream::pair().unwrap();
        drop(reader);
        let error = send_now(&writer, b"late").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
