//! Receives the standard library does not offer: one that reports a
//! datagram too large for the buffer, and one that never blocks.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

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

/// Reads what a connected socket has now, without blocking even if the
/// socket is in blocking mode: `WouldBlock` if nothing has arrived, `Ok(0)`
/// at end of stream.
pub(crate) fn recv_now(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    loop {
        // SAFETY: `fd` is borrowed from a live socket for the call, and
        // `buf` is a valid, exclusively borrowed region of `buf.len()`
        // bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_datagram_too_large_is_reported() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(&[7; 100], server.local_addr().unwrap()).unwrap();
        let mut small = [0u8; 10];
        let (received, from) = recv_datagram(&server, &mut small).unwrap();
        assert!(matches!(received, Received::Truncated(_)), "{received:?}");
        assert_eq!(from.as_socket(), Some(client.local_addr().unwrap()));
        client.send_to(&[8; 5], server.local_addr().unwrap()).unwrap();
        assert_eq!(recv_datagram(&server, &mut small).unwrap().0, Received::Whole(5));
        assert_eq!(small[..5], [8; 5]);
    }

    #[test]
    fn recv_now_never_blocks() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            recv_now(&ours, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        theirs.write_all(b"abc").unwrap();
        assert_eq!(recv_now(&ours, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        drop(theirs);
        assert_eq!(recv_now(&ours, &mut buf).unwrap(), 0);
    }
}
