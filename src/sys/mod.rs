//! Operating-system specifics, fenced off from the rest of the crate: the
//! one place with `unsafe` code and calls into libc.
//!
//! - [`Poller`]: readiness through mio (epoll, kqueue), the one way every
//!   serving loop waits, with a [`Waker`] for shutdown and other wake-ups.
//! - [`recv_datagram`]: a receive that tells when a datagram did not fit.
//! - [`recv_now`]: a receive that never blocks, whatever the socket's mode;
//!   `send_now`, its sending twin (feature `tls`).
//! - [`start_writeback`], [`set_direct_io`], [`is_cached`]: large files
//!   on their way to the disk early, or to and from it without the page
//!   cache.
//!
//! - `fd_passing`: messages that carry a descriptor, for a restart that
//!   moves connections to the new process (feature `restart`).
//!
//! All of it is POSIX; other platforms are not supported.

#[cfg(not(unix))]
compile_error!("socketserver supports Unix-like systems (Linux, macOS, the BSDs) only");

#[cfg(any(feature = "systemd", feature = "restart"))]
pub(crate) mod fd;
#[cfg(feature = "restart")]
pub(crate) mod fd_passing;
#[cfg(feature = "message")]
mod file_io;
#[cfg(feature = "proxy-protocol")]
pub(crate) mod peek;
pub(crate) mod poller;
mod recv;
#[cfg(feature = "tls")]
mod send;

#[cfg(feature = "message")]
pub(crate) use file_io::{DIRECT_IO_ALIGN, is_cached, set_direct_io, start_writeback};
pub(crate) use poller::{Poller, ReadyEvents, SharedPoller, Waker};
pub(crate) use recv::{Received, datagram_waiting, recv_datagram, recv_now};
#[cfg(feature = "tls")]
pub(crate) use send::send_now;

/// The system's monotonic clock in nanoseconds: the same clock in every
/// process, so two processes can time what passes between them.
#[cfg(feature = "restart")]
pub(crate) fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; the monotonic
    // clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
