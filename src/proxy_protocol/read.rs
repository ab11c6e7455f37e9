//! Reading a header off a connected socket, and not one byte more.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Instant;

use socket2::SockRef;

use super::ProxyHeader;
use super::parse::{ParseError, parse};
use crate::deadline::{ReadDeadline, with_read_deadline};
use crate::sys::peek::peek;

/// Room for any v1 line and a v2 header with Unix addresses and a few
/// TLVs; larger v2 headers grow the buffer as their bytes arrive.
const INITIAL_BUFFER: usize = 256;

/// Reads the PROXY header at the start of a connected, blocking TCP or
/// Unix-domain `stream`, by `deadline`, and consumes exactly its bytes:
/// what follows (the client's first request, a TLS hello) stays in the
/// socket for the next reader.
///
/// The deadline covers the whole header, so a peer trickling it a byte at
/// a time cannot hold the connection longer. The stream's read timeout is
/// used for the waits and restored afterwards.
///
/// Errors: `TimedOut` when the header is not complete by the deadline,
/// `UnexpectedEof` when the peer closes first, `InvalidData` (with the
/// reason) for bytes that are not a valid header, `InvalidInput` for a
/// non-blocking stream. After an error the connection is in no state to be
/// served: close it.
///
/// ```
/// use socketserver::proxy_protocol::{ProxyHeader, read_header};
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Instant;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut proxy = TcpStream::connect(listener.local_addr()?)?;
/// let (mut server_side, _) = listener.accept()?;
///
/// let client = "198.51.100.4:40000".parse().unwrap();
/// let mut wire = ProxyHeader::new_v2(client, listener.local_addr()?).to_v2()?;
/// wire.extend_from_slice(b"hello");
/// proxy.write_all(&wire)?;
///
/// let header = read_header(&server_side, Instant::now() + std::time::Duration::from_secs(5))?;
/// assert_eq!(header.source(), Some(client));
/// let mut rest = [0u8; 5];
/// server_side.read_exact(&mut rest)?;
/// assert_eq!(&rest, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_header<S: AsFd>(stream: &S, deadline: Instant) -> io::Result<ProxyHeader> {
    let socket = SockRef::from(stream);
    if socket.nonblocking()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "reading a PROXY header needs a blocking stream",
        ));
    }
    with_read_deadline(stream, deadline, |bounded| read_within(&socket, bounded))
}

/// Peeks until the bytes parse. While the header is incomplete, every
/// byte peeked belongs to it, so those bytes are consumed: the next peek
/// then blocks until new bytes arrive instead of returning the same ones.
/// Once it parses, exactly the rest of its length is consumed.
fn read_within(socket: &SockRef<'_>, bounded: &ReadDeadline<'_>) -> io::Result<ProxyHeader> {
    let mut buf = vec![0u8; INITIAL_BUFFER];
    let mut have = 0;
    loop {
        bounded.arm_or(|| timed_out(have))?;
        let n = match peek(socket.as_fd(), &mut buf[have..]) {
            Ok(0) => return Err(closed(have)),
            Ok(n) => n,
            Err(e) => {
                bounded.retry(e)?;
                continue;
            }
        };
        match parse(&buf[..have + n]) {
            Ok((header, len)) => {
                consume(socket, &mut buf[have..len])?;
                return Ok(header);
            }
            Err(ParseError::Incomplete { needed }) => {
                consume(socket, &mut buf[have..have + n])?;
                have += n;
                if have == buf.len() {
                    // Grow with what has arrived, never to a length the
                    // peer merely declared.
                    buf.resize(needed.min(2 * buf.len()), 0);
                }
            }
            Err(invalid @ ParseError::Invalid(_)) => return Err(invalid.into()),
        }
    }
}

/// Reads exactly `into.len()` bytes that a peek has shown are waiting.
fn consume(socket: &SockRef<'_>, into: &mut [u8]) -> io::Result<()> {
    let mut reader: &socket2::Socket = socket;
    let mut got = 0;
    while got < into.len() {
        match reader.read(&mut into[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "PROXY header bytes seen by a peek were gone when read (another reader on the socket?)",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn timed_out(have: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no complete PROXY header by the deadline ({have} bytes of it received)"),
    )
}

fn closed(have: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the peer closed the connection after {have} bytes of a PROXY header"),
    )
}
