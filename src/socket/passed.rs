//! Sockets handed to this process by another one (systemd, or the
//! previous generation of a restarting server): what kind each is, so a
//! socket is used only as what it really is.

use std::fmt;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener};

use socket2::{SockRef, Type};

use crate::sys::fd::is_listening;
use crate::transport::Sealed;

/// What a descriptor passed to this process turned out to be, found with
/// `getsockopt(SO_TYPE)`, `SO_ACCEPTCONN` and the family of its address.
#[cfg_attr(docsrs, doc(cfg(any(feature = "systemd", feature = "restart"))))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A listening TCP socket (IPv4 or IPv6).
    TcpListener,
    /// A TCP socket that is not listening (connected, or never `listen`ed).
    TcpNotListening,
    /// A UDP socket (IPv4 or IPv6).
    Udp,
    /// A listening Unix-domain stream socket.
    UnixListener,
    /// A Unix-domain stream socket that is not listening.
    UnixNotListening,
    /// A Unix-domain datagram socket.
    UnixDatagram,
    /// A socket of another family or type (netlink, seqpacket, ...).
    Other {
        /// The address family (`AF_*`).
        family: i32,
        /// The socket type (`SOCK_*`).
        socket_type: i32,
    },
    /// Not a socket at all (a file, a pipe, a terminal).
    NotASocket,
}

impl SocketKind {
    /// Finds out what `fd` is.
    pub fn of(fd: BorrowedFd<'_>) -> io::Result<SocketKind> {
        let socket = SockRef::from(&fd);
        let socket_type = match socket.r#type() {
            Ok(socket_type) => socket_type,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Ok(SocketKind::NotASocket),
            Err(e) => return Err(e),
        };
        let address = socket.local_addr()?;
        let ip = address.is_ipv4() || address.is_ipv6();
        let kind = match socket_type {
            Type::STREAM if ip || address.is_unix() => match (ip, is_listening(fd)?) {
                (true, true) => SocketKind::TcpListener,
                (true, false) => SocketKind::TcpNotListening,
                (false, true) => SocketKind::UnixListener,
                (false, false) => SocketKind::UnixNotListening,
            },
            Type::DGRAM if ip => SocketKind::Udp,
            Type::DGRAM if address.is_unix() => SocketKind::UnixDatagram,
            other => SocketKind::Other {
                family: i32::from(address.family()),
                socket_type: other.into(),
            },
        };
        Ok(kind)
    }
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketKind::TcpListener => f.write_str("a TCP listener"),
            SocketKind::TcpNotListening => f.write_str("a TCP socket that is not listening"),
            SocketKind::Udp => f.write_str("a UDP socket"),
            SocketKind::UnixListener => f.write_str("a Unix stream listener"),
            SocketKind::UnixNotListening => f.write_str("a Unix stream socket that is not listening"),
            SocketKind::UnixDatagram => f.write_str("a Unix datagram socket"),
            SocketKind::Other { family, socket_type } => {
                write!(
                    f,
                    "a socket of another kind (family {family}, type {socket_type})"
                )
            }
            SocketKind::NotASocket => f.write_str("not a socket"),
        }
    }
}

/// The std socket types a passed descriptor can become: [`TcpListener`],
/// [`UdpSocket`], [`UnixListener`] and [`UnixDatagram`], each with the one
/// kind it must be. Sealed.
#[cfg_attr(docsrs, doc(cfg(any(feature = "systemd", feature = "restart"))))]
pub trait PassedSocket: Sealed + From<OwnedFd> + Into<OwnedFd> + AsFd {
    /// What a descriptor must be to become this type.
    const KIND: SocketKind;
}

impl PassedSocket for TcpListener {
    const KIND: SocketKind = SocketKind::TcpListener;
}
impl PassedSocket for UdpSocket {
    const KIND: SocketKind = SocketKind::Udp;
}
impl PassedSocket for UnixListener {
    const KIND: SocketKind = SocketKind::UnixListener;
}
impl PassedSocket for UnixDatagram {
    const KIND: SocketKind = SocketKind::UnixDatagram;
}

/// Checks that `fd` is an `S` and says what it is instead if not:
/// "`{what}` is a UDP socket, not a TCP listener", where `what` names the
/// descriptor (e.g. "fd 3 (name 'web')").
pub(crate) fn check_kind<S: PassedSocket>(fd: BorrowedFd<'_>, what: &str) -> io::Result<()> {
    let kind =
        SocketKind::of(fd).map_err(|e| io::Error::new(e.kind(), format!("cannot inspect {what}: {e}")))?;
    if kind == S::KIND {
        return Ok(());
    }
    let expected = S::KIND.to_string();
    let expected = expected.strip_prefix("a ").unwrap_or(&expected);
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} is {kind}, not a {expected}"),
    ))
}

/// Parses the number in variable `name` of a protocol that passes
/// descriptors (`LISTEN_FDS`, ...).
pub(crate) fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> io::Result<T> {
    value.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}={value:?} is not a number"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn kind(fd: &impl AsFd) -> SocketKind {
        SocketKind::of(fd.as_fd()).unwrap()
    }

    #[test]
    fn kinds_are_told_apart() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(kind(&tcp), SocketKind::TcpListener);
        let client = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
        assert_eq!(kind(&client), SocketKind::TcpNotListening);
        assert_eq!(kind(&UdpSocket::bind("127.0.0.1:0").unwrap()), SocketKind::Udp);
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(kind(&a), SocketKind::UnixNotListening);
        let (d, _e) = UnixDatagram::pair().unwrap();
        assert_eq!(kind(&d), SocketKind::UnixDatagram);
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(kind(&file), SocketKind::NotASocket);
    }

    #[test]
    fn a_mismatch_says_what_it_is() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = check_kind::<TcpListener>(udp.as_fd(), "fd 3 (name 'web')").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "fd 3 (name 'web') is a UDP socket, not a TCP listener"
        );
        check_kind::<UdpSocket>(udp.as_fd(), "fd 3").unwrap();
    }
}
