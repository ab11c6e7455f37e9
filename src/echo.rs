//! The tutorials' uppercase echo, as ready handlers: over raw bytes and
//! datagrams ([`Uppercase`]), and over frames ([`FramedUppercase`]). Both
//! serve every kind of server: per connection ([`RequestHandler`]) and
//! one request at a time on parked connections ([`KeepAliveHandler`]).
//!
//! Used by the uppercase examples, the load generator's target server,
//! the benchmarks and the tests, so all of them exercise one definition.

use std::io::{self, Read, Write};

use std::cell::RefCell;

use crate::framing::Framed;
use crate::handler::{KeepAliveHandler, Next, RequestHandler};
use crate::request::{DatagramRequest, StreamRequest};
use crate::transport::{Connection, DatagramSocket};

/// Echoes every chunk of bytes it reads, ASCII letters uppercased, until
/// the client closes; answers every datagram with its uppercase. Works
/// with any client, including the tutorials' Python ones: it keeps no
/// framing of its own, and uppercasing never changes a length (bytes
/// outside ASCII pass through as they are).
///
/// ```
/// use socketserver::{ThreadingTcpServer, echo::Uppercase};
///
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Uppercase;

/// The chunk read at a time: one page, the tutorials' `recv(1024)` grown
/// a little. It lives on the worker's stack and is zeroed there on every
/// connection, so its pages are resident for as long as the connection
/// is: with 10,000 idle clients a 16 KiB chunk held 160 MB, this one 40.
const CHUNK: usize = 4 * 1024;

impl<S: Connection> RequestHandler<StreamRequest<S>> for Uppercase {
    fn handle(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = match request.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            chunk[..n].make_ascii_uppercase();
            request.write_all(&chunk[..n])?;
        }
    }
}

/// On a parked server, one request is whatever bytes have arrived: they
/// go back uppercased, and the connection waits for more.
impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for Uppercase {
    type State = ();

    fn handle_one(&self, request: &mut StreamRequest<S>, _state: &mut ()) -> io::Result<Next> {
        let mut chunk = [0u8; CHUNK];
        let n = request.read(&mut chunk)?;
        if n == 0 {
            return Ok(Next::Close);
        }
        chunk[..n].make_ascii_uppercase();
        request.write_all(&chunk[..n])?;
        Ok(Next::KeepOpen)
    }
}

impl<S: DatagramSocket> RequestHandler<DatagramRequest<S>> for Uppercase {
    fn handle(&self, request: &mut DatagramRequest<S>) -> io::Result<()> {
        request.data_mut().make_ascii_uppercase();
        request.reply_data()
    }
}

/// Answers each frame (in the default [`framing`](crate::framing) format)
/// with a frame of its uppercase, until the client closes.
///
/// ```
/// use socketserver::{ThreadingTcpServer, echo::FramedUppercase};
///
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", FramedUppercase)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct FramedUppercase;

impl<S: Connection> RequestHandler<StreamRequest<S>> for FramedUppercase {
    fn handle(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        let mut framed = Framed::new(request);
        let mut frame = Vec::new();
        while framed.read_frame_into(&mut frame)? {
            frame.make_ascii_uppercase();
            framed.write_frame(&frame)?;
        }
        Ok(())
    }
}

thread_local! {
    /// A worker's frame, reused from request to request on parked
    /// connections (which keep no buffer of their own).
    static FRAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A frame this large is not kept for the next request.
const KEPT_FRAME: usize = 64 * 1024;

/// On a parked server, one request is one frame.
impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for FramedUppercase {
    type State = ();

    fn handle_one(&self, request: &mut StreamRequest<S>, _state: &mut ()) -> io::Result<Next> {
        FRAME.with_borrow_mut(|frame| {
            let mut framed = Framed::new(&mut *request);
            let next = if framed.read_frame_into(frame)? {
                frame.make_ascii_uppercase();
                framed.write_frame(frame)?;
                Next::KeepOpen
            } else {
                Next::Close
            };
            if frame.capacity() > KEPT_FRAME {
                *frame = Vec::new();
            }
            Ok(next)
        })
    }
}
