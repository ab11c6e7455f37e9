//! Moving open connections from the old process to the new one.
//!
//! Besides the listeners and the control socket, the old process passes
//! the new one a `SOCK_SEQPACKET` socket, the moves socket
//! (`SOCKETSERVER_HANDOVER_MOVES`). On it, each message is one of:
//!
//! | from | message | meaning |
//! |---|---|---|
//! | new | `A` name | "connections of socket *name* may come: a server here takes them in" (sent before the ready byte) |
//! | old | `C` … with a descriptor | one connection, and what goes with it (below) |
//!
//! A connection's message: `C`, the version (1), the socket's name (u16
//! length, bytes), flags (bit 0: more bytes may wait in the socket), when
//! it left the old process's poller (u64 nanoseconds on the monotonic
//! clock), then three u32-length-prefixed fields: the bytes read ahead, the PROXY
//! header in its wire format (empty and flag bit 1 clear when there is
//! none), and the handler's state as `save_state` wrote it. Integers are
//! big-endian. A message is at most [`MAX_MESSAGE`] bytes: a connection
//! with more to carry stays in the old process.
//!
//! The old process moves connections only for the names the new one
//! announced, so a new version that serves a socket in a mode that cannot
//! take connections in (or not at all) leaves them where they are, served
//! to their end. The new process reads the moves socket on a thread of
//! its own until the old one exits.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::control::Control;
use crate::control::drain::{Destination, MovedConnection};
use crate::sys::fd_passing::{recv_with_fd, send_with_fd};
use crate::sys::monotonic_nanos;

/// The most a connection's message may hold: far more than a request read
/// ahead, well under what a Unix socket's default buffer takes at once.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// How long handing a connection over may wait for the new process to
/// take the ones before it: past that it is considered stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

const ANNOUNCE: u8 = b'A';
const CONNECTION: u8 = b'C';
const VERSION: u8 = 1;
const MORE_WAITING: u8 = 1;
const PROXIED: u8 = 2;

/// A new SOCK_SEQPACKET pair: (the old process's end, the new one's).
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (ours, theirs) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot make the moves socket: {e}")))?;
    ours.set_write_timeout(Some(SEND_TIMEOUT))?;
    theirs.set_cloexec(true)?;
    Ok((ours.into(), theirs.into()))
}

/// The new process says a server here takes in connections of socket
/// `name`.
pub(crate) fn announce(moves: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut message = vec![ANNOUNCE];
    message.extend_from_slice(name.as_bytes());
    send_with_fd(moves, &message, None)
}

/// The names the new process announced: read by the old one once the new
/// one is ready, when every announcement has arrived.
pub(crate) fn announced(moves: BorrowedFd<'_>) -> io::Result<HashSet<String>> {
    let socket = socket2::SockRef::from(&moves);
    socket.set_nonblocking(true)?;
    let mut names = HashSet::new();
    let mut buf = vec![0; 4096];
    let result = loop {
        match recv_with_fd(moves, &mut buf) {
            Ok((0, _)) => break Ok(()),
            Ok((n, _)) if buf[0] == ANNOUNCE => {
                names.insert(String::from_utf8_lossy(&buf[1..n]).into_owned());
            }
            Ok((n, _)) => {
                log::warn!("unexpected message ({n} bytes) from the new process on the moves socket")
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    socket.set_nonblocking(false)?;
    result.map(|()| names)
}

/// Where the connections of one socket go: the new process.
pub(crate) struct Mover {
    moves: Arc<OwnedFd>,
    name: String,
    describe: String,
}

impl Mover {
    pub(crate) fn new(moves: Arc<OwnedFd>, name: &str, pid: u32) -> Self {
        Mover {
            moves,
            name: name.to_owned(),
            describe: format!("process {pid}"),
        }
    }
}

impl Destination for Mover {
    fn send(&self, socket: BorrowedFd<'_>, moved: &MovedConnection) -> io::Result<()> {
        let message = encode(&self.name, moved)?;
        send_with_fd(self.moves.as_fd(), &message, Some(socket))
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}

/// A connection's message; `InvalidInput` if it would be over
/// [`MAX_MESSAGE`].
fn encode(name: &str, moved: &MovedConnection) -> io::Result<Vec<u8>> {
    let proxy = moved.proxy_header.as_deref().unwrap_or_default();
    let size = 2 + 2 + name.len() + 1 + 8 + 12 + moved.unread.len() + proxy.len() + moved.state.len();
    if size > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{size} bytes to carry, more than {MAX_MESSAGE}"),
        ));
    }
    let mut message = Vec::with_capacity(size);
    message.extend_from_slice(&[CONNECTION, VERSION]);
    message.extend_from_slice(&(name.len() as u16).to_be_bytes());
    message.extend_from_slice(name.as_bytes());
    let mut flags = 0;
    if moved.maybe_more {
        flags |= MORE_WAITING;
    }
    if moved.proxy_header.is_some() {
        flags |= PROXIED;
    }
    message.push(flags);
    message.extend_from_slice(&moved.left_at.to_be_bytes());
    for field in [&moved.unread[..], proxy, &moved.state[..]] {
        message.extend_from_slice(&(field.len() as u32).to_be_bytes());
        message.extend_from_slice(field);
    }
    Ok(message)
}

/// Reads a connection's message: its socket's name and what goes with it.
fn decode(message: &[u8]) -> io::Result<(String, MovedConnection)> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a moved connection's message: {what}"),
        )
    };
    let mut rest = message;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        if rest.len() < n {
            return Err(bad("cut short"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(2)? != [CONNECTION, VERSION] {
        return Err(bad("not a version 1 connection"));
    }
    let name_len = u16::from_be_bytes(take(2)?.try_into().expect("two bytes")) as usize;
    let name = String::from_utf8(take(name_len)?.to_vec()).map_err(|_| bad("a name that is not UTF-8"))?;
    let flags = take(1)?[0];
    let left_at = u64::from_be_bytes(take(8)?.try_into().expect("eight bytes"));
    let mut field = || -> io::Result<Vec<u8>> {
        let len = u32::from_be_bytes(take(4)?.try_into().expect("four bytes")) as usize;
        Ok(take(len)?.to_vec())
    };
    let unread = field()?;
    let proxy = field()?;
    let state = field()?;
    Ok((
        name,
        MovedConnection {
            unread,
            maybe_more: flags & MORE_WAITING != 0,
            proxy_header: (flags & PROXIED != 0).then_some(proxy),
            state,
            left_at,
        },
    ))
}

/// The new process's side: takes in the connections the old one moves,
/// each by the server attached under its socket's name, until the old
/// process exits. Runs on a thread of its own.
pub(crate) fn take_in(moves: OwnedFd, servers: Vec<(String, Arc<Control>)>, from: u32) {
    let mut buf = vec![0; MAX_MESSAGE + 1];
    // Each moved connection's time in transit, in microseconds.
    let mut transit = Vec::new();
    loop {
        let (n, socket) = match recv_with_fd(moves.as_fd(), &mut buf) {
            Ok((0, None)) => break,
            Ok(received) => received,
            Err(e) => {
                log::warn!("a connection moved from process {from} is lost: {e}");
                continue;
            }
        };
        let Some(socket) = socket else {
            log::warn!("a message without a connection from process {from} on the moves socket");
            continue;
        };
        let (name, moved) = match decode(&buf[..n]) {
            Ok(decoded) => decoded,
            Err(e) => {
                log::warn!("a connection from process {from} is lost: {e}");
                continue;
            }
        };
        let adopter = servers
            .iter()
            .find(|(attached, _)| *attached == name)
            .and_then(|(_, control)| control.adopter());
        let Some(adopter) = adopter else {
            log::warn!(
                "a connection of socket '{name}' from process {from} is closed: no server here takes it in"
            );
            continue;
        };
        let left_at = moved.left_at;
        match adopter.adopt(socket, moved) {
            Ok(()) => transit.push(monotonic_nanos().saturating_sub(left_at) / 1000),
            Err(e) => log::warn!("cannot take over a connection of socket '{name}' from process {from}: {e}"),
        }
    }
    log::info!(
        "process {from} has exited; it moved {} connection(s) here{}",
        transit.len(),
        describe_transit(&mut transit)
    );
}

/// How long the moved connections were in transit: from leaving the old
/// process's poller to waiting for a worker here (a request sent
/// meanwhile waits that long, at most, besides its own).
fn describe_transit(micros: &mut [u64]) -> String {
    if micros.is_empty() {
        return String::new();
    }
    micros.sort_unstable();
    let at = |share: f64| micros[((micros.len() - 1) as f64 * share).round() as usize];
    format!(
        ", in transit p50 {} us, p99 {} us, max {} us",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_message_reads_back_as_written() {
        let moved = MovedConnection {
            unread: b"GET / HTTP/1.1\r\n".to_vec(),
            maybe_more: true,
            proxy_header: Some(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec()),
            state: vec![0, 1, 2],
            left_at: 1_234_567_890_123,
        };
        let message = encode("127.0.0.1:8080", &moved).unwrap();
        assert_eq!(decode(&message).unwrap(), ("127.0.0.1:8080".to_owned(), moved));
        let plain = MovedConnection::default();
        assert_eq!(
            decode(&encode("web", &plain).unwrap()).unwrap(),
            ("web".to_owned(), plain)
        );
    }

    #[test]
    fn transit_times_are_summed_up_by_their_quantiles() {
        let mut micros: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            describe_transit(&mut micros),
            ", in transit p50 51 us, p99 99 us, max 100 us"
        );
        assert_eq!(describe_transit(&mut []), "");
    }

    #[test]
    fn too_much_to_carry_is_refused_before_sending() {
        let moved = MovedConnection {
            state: vec![0; MAX_MESSAGE],
            ..MovedConnection::default()
        };
        assert_eq!(
            encode("web", &moved).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn messages_cut_short_or_of_another_kind_are_invalid() {
        let message = encode("web", &MovedConnection::default()).unwrap();
        for cut in 0..message.len() {
            assert_eq!(
                decode(&message[..cut]).unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
        assert!(decode(b"A web").is_err());
    }

    #[test]
    fn announcements_reach_the_old_process() {
        let (ours, theirs) = pair().unwrap();
        announce(theirs.as_fd(), "web").unwrap();
        announce(theirs.as_fd(), "/run/app.sock").unwrap();
        let names = announced(ours.as_fd()).unwrap();
        assert_eq!(
            names,
            HashSet::from(["web".to_owned(), "/run/app.sock".to_owned()])
        );
        assert!(announced(ours.as_fd()).unwrap().is_empty());
    }
}
