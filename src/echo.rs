//! The tutorials' uppercase echo, as ready handlers: over raw bytes and
//! datagrams ([`Uppercase`]), and over frames ([`FramedUppercase`]). Both
//! serve every kind of server: per connection ([`RequestHandler`]) and
//! one request at a time on parked connections ([`KeepAliveHandler`]).
//!
//! Used by the uppercase examples, the load generator's target server,
//! the benchmarks and the tests, so all of them exercise one definition.

use std::io::{self, BufRead, Write};

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

/// One request is whatever bytes have arrived: they go back uppercased,
/// and the connection waits for more (on a parked server, holding no
/// thread). Each chunk goes back out of the request's own read-ahead
/// buffer, uppercased in place: no copy, no buffer of its own. The
/// read-ahead grows with bulk traffic and shrinks back (see
/// [`Builder::read_buffer_size`](crate::Builder::read_buffer_size)).
impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for Uppercase {
    type State = ();

    fn handle_one(&self, request: &mut StreamRequest<S>, _state: &mut ()) -> io::Result<Next> {
        Ok(if echo_buffered(request)? {
            Next::KeepOpen
        } else {
            Next::Close
        })
    }
}

/// Sends back what has arrived (waiting for it if nothing has),
/// uppercased; false at the end of the stream.
fn echo_buffered<S: Connection>(request: &mut StreamRequest<S>) -> io::Result<bool> {
    let bytes = match request.fill_buf_mut() {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() {
        return Ok(false);
    }
    bytes.make_ascii_uppercase();
    let n = bytes.len();
    request.write_buffered(n)?;
    Ok(true)
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

/// Reads one frame into `frame` and sends it back in uppercase; false at
/// the end of the stream.
fn echo_frame<T: BufRead + Write>(framed: &mut Framed<T>, frame: &mut Vec<u8>) -> io::Result<bool> {
    let more = framed.read_frame_into(frame)?;
    if more {
        frame.make_ascii_uppercase();
        framed.write_frame(frame)?;
    }
    give_back_if_oversized(frame);
    Ok(more)
}

/// A frame's buffer this large is kept only while frames stay large.
const KEPT_FRAME: usize = 1024 * 1024;

/// Frees a frame buffer far larger than the frame it held: one large
/// frame does not make a connection (or a parked server's worker) keep
/// megabytes for the small ones after it.
fn give_back_if_oversized(frame: &mut Vec<u8>) {
    if frame.capacity() > KEPT_FRAME.max(frame.len() * 4) {
        *frame = Vec::new();
    }
}

thread_local! {
    /// A thread's frame, reused from request to request (a parked
    /// server's connections keep no buffer of their own).
    static FRAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One request is one frame.
impl<S: Connection> KeepAliveHandler<StreamRequest<S>> for FramedUppercase {
    type State = ();

    fn handle_one(&self, request: &mut StreamRequest<S>, _state: &mut ()) -> io::Result<Next> {
        FRAME.with_borrow_mut(|frame| {
            Ok(if echo_frame(&mut Framed::new(&mut *request), frame)? {
                Next::KeepOpen
            } else {
                Next::Close
            })
        })
    }
}
