//! Looking at a socket's pending bytes without taking them.
//!
//! The PROXY protocol reader needs it: it must read exactly the header and
//! leave what follows (the client's first bytes, a TLS hello) in the socket
//! for whoever reads next.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Copies up to `buf.len()` of the bytes waiting on the stream socket `fd`
/// into `buf` without removing them (`recv` with `MSG_PEEK`), and returns
/// how many. Blocks like a read while nothing is waiting (up to the
/// socket's read timeout); 0 means the peer closed its end. An interrupted
/// call fails with `Interrupted`, left to the caller to retry with its own
/// deadline.
pub(crate) fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, exclusively borrowed, initialised buffer of
    // `buf.len()` bytes for the duration of the call, and `fd` is a
    // descriptor borrowed for at least as long.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
