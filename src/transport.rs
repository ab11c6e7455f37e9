//! What the generic server loops need from a socket type.
//!
//! The stream loop is written once over [`Listener`] and serves both TCP and
//! Unix-domain stream sockets. The traits are sealed: the set of transports
//! is the crate's to choose, which keeps the loops' assumptions (blocking
//! accepted streams, `poll`-able descriptors) true.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener, UnixStream};
use std::time::Duration;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A listening stream socket: TCP or Unix-domain.
pub trait Listener: AsFd + Send + Sync + Sized + 'static + Sealed {
    /// The connected stream `accept` yields.
    type Stream: Connection<Addr = Self::Addr>;
    /// The address type of both ends.
    type Addr: Clone + Debug + Send + Sync + 'static;

    /// Accepts one pending connection. The listener is non-blocking while
    /// a server runs, so this fails with `WouldBlock` when none is pending;
    /// the returned stream is always in blocking mode.
    fn accept_blocking_stream(&self) -> io::Result<(Self::Stream, Self::Addr)>;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<Self::Addr>;

    /// Switches non-blocking mode for `accept`.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

/// A connected stream socket: TCP or Unix-domain.
pub trait Connection: Read + Write + AsFd + Send + 'static + Sealed {
    /// The address type of both ends.
    type Addr: Clone + Debug + Send + Sync + 'static;

    /// Sets the read timeout (`None`: block forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout (`None`: block forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Disables Nagle's algorithm where the transport has one (TCP).
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;
}

/// On Linux an accepted socket never inherits `O_NONBLOCK` from the
/// listener; on the BSDs and macOS it does, so it is cleared there.
fn blocking<S>(stream: S, set_nonblocking: impl FnOnce(&S, bool) -> io::Result<()>) -> io::Result<S> {
    if cfg!(not(any(target_os = "linux", target_os = "android"))) {
        set_nonblocking(&stream, false)?;
    }
    Ok(stream)
}

impl Sealed for TcpListener {}
impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;

    fn accept_blocking_stream(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.accept()?;
        Ok((blocking(stream, TcpStream::set_nonblocking)?, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpListener::set_nonblocking(self, nonblocking)
    }
}

impl Sealed for TcpStream {}
impl Connection for TcpStream {
    type Addr = SocketAddr;

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, nodelay)
    }
}

impl Sealed for UnixListener {}
impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = UnixSocketAddr;

    fn accept_blocking_stream(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, peer) = self.accept()?;
        Ok((blocking(stream, UnixStream::set_nonblocking)?, peer))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        UnixListener::local_addr(self)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        UnixListener::set_nonblocking(self, nonblocking)
    }
}

impl Sealed for UnixStream {}
impl Connection for UnixStream {
    type Addr = UnixSocketAddr;

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }

    fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }
}
