//! Messages that carry a descriptor (`SCM_RIGHTS`) over a Unix socket: how
//! a restart moves an open connection to the new process.
//!
//! The socket is a `SOCK_SEQPACKET` pair, so each message arrives whole,
//! with at most the one descriptor sent along with it.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Room for the control message of one descriptor, aligned for `cmsghdr`.
#[repr(C)]
union ControlBuffer {
    bytes: [u8; 64],
    _align: libc::cmsghdr,
}

/// Sends `data` as one message on `socket`, with `fd` attached if given.
/// Waits while the receiver's queue is full (up to the socket's send
/// timeout, if it has one).
pub(crate) fn send_with_fd(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr and control buffer are valid values.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    let mut control: ControlBuffer = unsafe { mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    if let Some(fd) = fd {
        let raw: RawFd = fd.as_raw_fd();
        // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes; the buffer
        // has room for one descriptor's control message (checked below),
        // CMSG_FIRSTHDR points into it, and the descriptor is copied into
        // its data, which CMSG_DATA points at.
        unsafe {
            let space = libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) as usize;
            assert!(space <= mem::size_of::<ControlBuffer>());
            header.msg_control = control.bytes.as_mut_ptr().cast();
            header.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), raw);
        }
    }
    loop {
        // SAFETY: the header points at `iov` and `control`, which outlive
        // the call; MSG_NOSIGNAL turns a closed peer into EPIPE, not a
        // signal.
        let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &header, libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Receives one message on `socket` into `buf`: its length, and the
/// descriptor it carried, if any (close-on-exec). A message longer than
/// `buf`, or one whose descriptors did not all fit, is `InvalidData`, its
/// descriptors closed. `Ok((0, None))` at the end (the peer closed its
/// end).
pub(crate) fn recv_with_fd(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero values are valid for both.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    let mut control: ControlBuffer = unsafe { mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = unsafe { control.bytes.as_mut_ptr().cast() };
    header.msg_controllen = mem::size_of::<ControlBuffer>() as _;
    let received = loop {
        // SAFETY: the header points at `iov` (over `buf`) and `control`,
        // which outlive the call.
        let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
        if received >= 0 {
            break received as usize;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    // Every descriptor that arrived is owned here, whatever happens next.
    let mut fds = Vec::new();
    // SAFETY: the kernel filled the control buffer; CMSG_FIRSTHDR and
    // CMSG_NXTHDR walk it within `msg_controllen`, and each SCM_RIGHTS
    // message's data holds `(cmsg_len - CMSG_LEN(0)) / size_of::<RawFd>()`
    // descriptors, new in this process and owned by nobody else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    if header.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a message of more than {} bytes, or with more than one descriptor: dropped",
                buf.len()
            ),
        ));
    }
    if fds.len() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message with {} descriptors, not one: dropped", fds.len()),
        ));
    }
    Ok((received, fds.pop()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (OwnedFd, OwnedFd) {
        let (a, b) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
        (a.into(), b.into())
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let (a, b) = pair();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        send_with_fd(a.as_fd(), b"hello", Some(theirs.as_fd())).unwrap();
        drop(theirs);
        let mut buf = [0; 64];
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let mut moved = UnixStream::from(fd.expect("a descriptor"));
        moved.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        ours.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }

    #[test]
    fn messages_without_descriptors_and_the_end() {
        let (a, b) = pair();
        send_with_fd(a.as_fd(), b"x", None).unwrap();
        let mut buf = [0; 8];
        assert!(matches!(recv_with_fd(b.as_fd(), &mut buf), Ok((1, None))));
        drop(a);
        assert!(matches!(recv_with_fd(b.as_fd(), &mut buf), Ok((0, None))));
    }

    #[test]
    fn a_message_too_long_is_refused_and_its_descriptor_closed() {
        let (a, b) = pair();
        let (_ours, theirs) = UnixStream::pair().unwrap();
        send_with_fd(a.as_fd(), &[7; 100], Some(theirs.as_fd())).unwrap();
        let mut buf = [0; 10];
        let error = recv_with_fd(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    }
}
