//! What the generic server loops need from a socket type.
//!
//! The stream loop is written once over [`Listener`] and serves both TCP and
//! Unix-domain stream sockets; the datagram loop is written once over
//! [`DatagramSocket`] and serves UDP and Unix-domain datagram sockets. The
//! traits are sealed: the set of transports is the crate's to choose, which
//! keeps the loops' assumptions (blocking accepted streams, `poll`-able
//! descriptors) true.

use std::fmt::Debug;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::time::Duration;

use socket2::{SockAddr, SockRef};

mod sealed {
    use socket2::SockAddr;
    use std::io;

    pub trait Sealed {}

    /// What the datagram loop needs of a socket beyond the public trait.
    pub trait DatagramInternals: Sized {
        type Address;

        /// Converts a received sender address; `None` when the datagram
        /// came from a socket without an address (an unbound Unix socket),
        /// or from one whose address the standard library cannot represent.
        fn from_sock_addr(addr: &SockAddr) -> Option<Self::Address>;

        /// The address recorded for a sender that has none.
        fn unnamed() -> io::Result<Self::Address>;

        /// Sends this socket an empty datagram from a fresh socket, to wake
        /// a thread blocked receiving on it.
        fn poke(&self) -> io::Result<()>;
    }

    /// What the stream loop needs of a peer address.
    pub trait PeerAddress: Sized {
        /// The peer's IP address; `None` for a Unix-domain peer.
        fn ip(&self) -> Option<std::net::IpAddr>;

        /// The address a PROXY header reported, if this address type can
        /// hold it (an IP socket's can; a Unix socket's cannot).
        fn from_ip(addr: std::net::SocketAddr) -> Option<Self>;
    }
}
pub(crate) use sealed::{DatagramInternals, PeerAddress, Sealed};

impl PeerAddress for SocketAddr {
    fn ip(&self) -> Option<std::net::IpAddr> {
        Some(SocketAddr::ip(self))
    }

    fn from_ip(addr: SocketAddr) -> Option<Self> {
        Some(addr)
    }
}

impl PeerAddress for UnixSocketAddr {
    fn ip(&self) -> Option<std::net::IpAddr> {
        None
    }

    fn from_ip(_addr: SocketAddr) -> Option<Self> {
        None
    }
}

/// A listening stream socket: TCP or Unix-domain.
pub trait Listener: AsFd + Send + Sync + Sized + 'static + Sealed {
    /// The connected stream `accept` yields.
    type Stream: Connection<Addr = Self::Addr>;
    /// The address type of both ends.
    type Addr: Clone + Debug + Send + Sync + 'static + PeerAddress;

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
///
/// The server shares one socket between the thread serving it and the
/// shutdown machinery (which may shut it to wake that thread), so it is
/// read and written through shared references, as `&TcpStream` allows.
pub trait Connection: AsFd + Send + Sync + 'static + Sealed {
    /// The address type of both ends.
    type Addr: Clone + Debug + Send + Sync + 'static + PeerAddress;

    /// Reads from the socket, as `Read::read` on `&Self`.
    fn read_shared(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads into several buffers, as `Read::read_vectored` on `&Self`.
    fn read_vectored_shared(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;
    /// Writes to the socket, as `Write::write` on `&Self`.
    fn write_shared(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes several buffers, as `Write::write_vectored` on `&Self`.
    fn write_vectored_shared(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Sets the read timeout (`None`: block forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The read timeout.
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    /// Sets the write timeout (`None`: block forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Disables Nagle's algorithm where the transport has one (TCP).
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;

    /// The connection on a socket a restart moved to this process, and
    /// its peer's address.
    #[doc(hidden)]
    fn from_moved(socket: OwnedFd) -> io::Result<(Self, Self::Addr)>
    where
        Self: Sized;
}

/// The `Connection` I/O methods, for a type whose shared reference is
/// `Read + Write`.
macro_rules! shared_io {
    () => {
        fn read_shared(&self, buf: &mut [u8]) -> io::Result<usize> {
            Read::read(&mut &*self, buf)
        }

        fn read_vectored_shared(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
            Read::read_vectored(&mut &*self, bufs)
        }

        fn write_shared(&self, buf: &[u8]) -> io::Result<usize> {
            Write::write(&mut &*self, buf)
        }

        fn write_vectored_shared(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            Write::write_vectored(&mut &*self, bufs)
        }
    };
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
    shared_io!();
    type Addr = SocketAddr;

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::read_timeout(self)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, nodelay)
    }

    fn from_moved(socket: OwnedFd) -> io::Result<(TcpStream, SocketAddr)> {
        let stream = TcpStream::from(socket);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
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
    shared_io!();
    type Addr = UnixSocketAddr;

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        UnixStream::read_timeout(self)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }

    fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    fn from_moved(socket: OwnedFd) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let stream = UnixStream::from(socket);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }
}

/// A datagram socket: UDP or Unix-domain.
pub trait DatagramSocket:
    AsFd + Send + Sync + Sized + 'static + Sealed + DatagramInternals<Address = <Self as DatagramSocket>::Addr>
{
    /// The address type of both ends.
    type Addr: Clone + Debug + Send + Sync + 'static;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<Self::Addr>;

    /// Sends one datagram to `addr` without ever blocking: `WouldBlock`
    /// when it cannot go now (a Unix peer's receive queue is full because
    /// it does not read, or the socket's send buffer is full). Workers
    /// share the socket in blocking mode for receiving, so a blocking send
    /// would let one client that never reads stall them all.
    fn send_to_addr(&self, datagram: &[u8], addr: &Self::Addr) -> io::Result<usize>;

    /// Switches non-blocking mode.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;

    /// Sets the receive timeout (`None`: block forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Whether a reply can be sent to `addr`: false for a Unix client that
    /// never bound its socket to a path.
    fn can_reply_to(addr: &Self::Addr) -> bool;
}

/// `sendto(MSG_DONTWAIT)`: non-blocking for this call only, whatever mode
/// the socket is in.
fn send_without_blocking(socket: &impl AsFd, datagram: &[u8], to: &SockAddr) -> io::Result<usize> {
    SockRef::from(socket).send_to_with_flags(datagram, to, libc::MSG_DONTWAIT)
}

/// The standard library's Unix address as socket2's, for `sendto`.
fn unix_sock_addr(addr: &UnixSocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = addr.as_abstract_name() {
            // socket2 reads a leading NUL as the abstract namespace.
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotConnected,
        "the peer's socket has no address to send to",
    ))
}

impl Sealed for UdpSocket {}
impl DatagramSocket for UdpSocket {
    type Addr = SocketAddr;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }

    fn send_to_addr(&self, datagram: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        send_without_blocking(self, datagram, &SockAddr::from(*addr))
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        UdpSocket::set_nonblocking(self, nonblocking)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UdpSocket::set_read_timeout(self, timeout)
    }

    fn can_reply_to(_addr: &SocketAddr) -> bool {
        true
    }
}

impl DatagramInternals for UdpSocket {
    type Address = SocketAddr;

    fn from_sock_addr(addr: &SockAddr) -> Option<SocketAddr> {
        addr.as_socket()
    }

    fn unnamed() -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn poke(&self) -> io::Result<()> {
        let mut target = UdpSocket::local_addr(self)?;
        if target.ip().is_unspecified() {
            // Bound to every address: loopback is one of them.
            target.set_ip(match target {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let from = SocketAddr::new(target.ip(), 0);
        UdpSocket::bind(from)?.send_to(&[], target).map(drop)
    }
}

impl Sealed for UnixDatagram {}
impl DatagramSocket for UnixDatagram {
    type Addr = UnixSocketAddr;

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        UnixDatagram::local_addr(self)
    }

    fn send_to_addr(&self, datagram: &[u8], addr: &UnixSocketAddr) -> io::Result<usize> {
        send_without_blocking(self, datagram, &unix_sock_addr(addr)?)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        UnixDatagram::set_nonblocking(self, nonblocking)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixDatagram::set_read_timeout(self, timeout)
    }

    fn can_reply_to(addr: &UnixSocketAddr) -> bool {
        !addr.is_unnamed()
    }
}

impl DatagramInternals for UnixDatagram {
    type Address = UnixSocketAddr;

    fn from_sock_addr(addr: &SockAddr) -> Option<UnixSocketAddr> {
        // Not `SockAddr::as_unix`: it panics on a 108-byte path, which
        // Linux lets a client bind.
        if let Some(path) = addr.as_pathname() {
            return UnixSocketAddr::from_pathname(path).ok();
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(name) = addr.as_abstract_namespace() {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            return UnixSocketAddr::from_abstract_name(name).ok();
        }
        None
    }

    fn unnamed() -> io::Result<UnixSocketAddr> {
        UnixDatagram::unbound()?.local_addr()
    }

    fn poke(&self) -> io::Result<()> {
        UnixDatagram::unbound()?
            .send_to_addr(&[], &UnixDatagram::local_addr(self)?)
            .map(drop)
    }
}
