//! Operating-system specifics, fenced off from the rest of the crate.
//!
//! The servers need two things the standard library does not offer: waiting
//! on several descriptors at once (the listening socket and a shutdown
//! waker), and shutting down a socket that another thread is blocked on.
//! Both are POSIX; other platforms are not supported.

#[cfg(not(unix))]
compile_error!("socketserver supports Unix-like systems (Linux, macOS, the BSDs) only");

#[cfg(any(feature = "systemd", feature = "restart"))]
pub(crate) mod fd;
mod unix;

pub(crate) use unix::{Waker, wait_readable};
