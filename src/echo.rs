//! The tutorials' uppercase echo, as a ready handler.
//!
//! Used by the uppercase examples, the load generator's target server,
//! the benchmarks and the tests, so all of them exercise one definition.

use std::io::{self, Write};

use crate::handler::RequestHandler;
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

/// The chunk size read at a time; the tutorials' `recv(1024)` grown to a
/// size that keeps large transfers cheap. Lives on the worker's stack.
const CHUNK: usize = 16 * 1024;

impl<S: Connection> RequestHandler<StreamRequest<S>> for Uppercase {
    fn handle(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        let mut chunk = [0u8; CHUNK];
        loop {
            // Straight from the socket: an echo needs no read-ahead.
            let n = match request.stream_mut().read(&mut chunk) {
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

impl<S: DatagramSocket> RequestHandler<DatagramRequest<S>> for Uppercase {
    fn handle(&self, request: &mut DatagramRequest<S>) -> io::Result<()> {
        request.data_mut().make_ascii_uppercase();
        request.reply_data()
    }
}
