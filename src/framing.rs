//! Length-prefixed frames: the cure for "sticky packets".
//!
//! TCP is a byte stream. Two `send`s can arrive as one `recv`, and one
//! `send` as two: the tutorials call it 粘包, sticky packets, and show it
//! with a remote shell whose outputs run into each other. The cure is to
//! put each message's length in front of it. A frame is that: a length
//! prefix, then exactly that many bytes.
//!
//! ```
//! use socketserver::framing::{Framed, FrameConfig};
//! use std::io::Cursor;
//!
//! // Two frames written back to back, read back as two messages.
//! let mut wire = Vec::new();
//! let config = FrameConfig::default();
//! socketserver::framing::write_frame(&mut wire, b"hello", &config)?;
//! socketserver::framing::write_frame(&mut wire, b"world", &config)?;
//!
//! let mut framed = Framed::new(Cursor::new(wire));
//! assert_eq!(framed.read_frame()?.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(framed.read_frame()?.as_deref(), Some(&b"world"[..]));
//! assert_eq!(framed.read_frame()?, None); // a clean end of stream
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Every reader has a maximum frame length ([`DEFAULT_MAX_FRAME_LEN`] by
//! default): a longer length, or a negative one in a signed format, is an
//! [`InvalidData`](io::ErrorKind::InvalidData) error raised before
//! anything is allocated. Within the limit, memory grows with the bytes
//! that actually arrive, not with the length claimed: four bytes of
//! prefix make the server reserve 64 KiB at most, however many
//! connections send them. End-of-file exactly between frames is
//! a clean end (`Ok(None)`); anywhere else it is
//! [`UnexpectedEof`](io::ErrorKind::UnexpectedEof).
//!
//! A frame goes out in one write, never as two small writes that would
//! invite Nagle's algorithm to hold the second one back: a small frame is
//! assembled on the stack and written whole (measurably cheaper than a
//! vectored write of two pieces), a large one is a vectored write of
//! prefix and payload.

use std::fmt;
use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};

/// The default maximum frame length: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The default size of a [`BufStream`]'s read buffer.
const READ_BUFFER: usize = 8 * 1024;

/// Frames up to this size are copied next to their prefix and written in
/// one plain write.
const SMALL_FRAME: usize = 1024;

/// How a frame's length is written in front of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LengthPrefix {
    /// 2 bytes, unsigned, big-endian: Python `struct.pack('!H', n)`.
    U16Be,
    /// 4 bytes, unsigned, big-endian: Python `struct.pack('!I', n)`. The
    /// default, and the network's byte order.
    #[default]
    U32Be,
    /// 8 bytes, unsigned, big-endian: Python `struct.pack('!Q', n)`.
    U64Be,
    /// 4 bytes, signed, little-endian: the tutorials' `struct.pack('i',
    /// n)` (native order on x86). A negative length is invalid.
    I32Le,
}

impl LengthPrefix {
    /// The prefix's size in bytes.
    pub const fn width(self) -> usize {
        match self {
            LengthPrefix::U16Be => 2,
            LengthPrefix::U32Be | LengthPrefix::I32Le => 4,
            LengthPrefix::U64Be => 8,
        }
    }

    /// The largest length the prefix can express.
    pub const fn max_len(self) -> u64 {
        match self {
            LengthPrefix::U16Be => u16::MAX as u64,
            LengthPrefix::U32Be => u32::MAX as u64,
            LengthPrefix::U64Be => u64::MAX,
            LengthPrefix::I32Le => i32::MAX as u64,
        }
    }

    /// Writes `len` into the first [`width`](Self::width) bytes of `out`.
    fn encode(self, len: usize, out: &mut [u8; 8]) -> io::Result<&[u8]> {
        let len = len as u64;
        if len > self.max_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame of {len} bytes does not fit a {self} prefix"),
            ));
        }
        let width = self.width();
        match self {
            LengthPrefix::U16Be => out[..2].copy_from_slice(&(len as u16).to_be_bytes()),
            LengthPrefix::U32Be => out[..4].copy_from_slice(&(len as u32).to_be_bytes()),
            LengthPrefix::U64Be => out.copy_from_slice(&len.to_be_bytes()),
            LengthPrefix::I32Le => out[..4].copy_from_slice(&(len as i32).to_le_bytes()),
        }
        Ok(&out[..width])
    }

    /// Reads a length from exactly [`width`](Self::width) bytes. Negative
    /// lengths come back as `Err(value)`.
    fn decode(self, bytes: &[u8]) -> Result<u64, i64> {
        match self {
            LengthPrefix::U16Be => Ok(u16::from_be_bytes([bytes[0], bytes[1]]) as u64),
            LengthPrefix::U32Be => Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64),
            LengthPrefix::U64Be => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&bytes[..8]);
                Ok(u64::from_be_bytes(raw))
            }
            LengthPrefix::I32Le => {
                let value = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                u64::try_from(value).map_err(|_| value as i64)
            }
        }
    }
}

impl fmt::Display for LengthPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LengthPrefix::U16Be => "2-byte unsigned big-endian",
            LengthPrefix::U32Be => "4-byte unsigned big-endian",
            LengthPrefix::U64Be => "8-byte unsigned big-endian",
            LengthPrefix::I32Le => "4-byte signed little-endian",
        })
    }
}

/// A frame format: the length prefix and the largest frame accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    /// How the length is written.
    pub prefix: LengthPrefix,
    /// Longer frames are refused, on reading and on writing.
    pub max_frame_len: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            prefix: LengthPrefix::U32Be,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl FrameConfig {
    /// The tutorials' format: a `struct.pack('i')` prefix.
    pub fn tutorial() -> Self {
        FrameConfig {
            prefix: LengthPrefix::I32Le,
            ..FrameConfig::default()
        }
    }

    /// This format with another prefix.
    pub fn with_prefix(mut self, prefix: LengthPrefix) -> Self {
        self.prefix = prefix;
        self
    }

    /// This format with another maximum frame length.
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// Decodes and checks a length prefix.
    fn check_len(&self, prefix: &[u8]) -> io::Result<usize> {
        let len = self.prefix.decode(prefix).map_err(|negative| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("negative frame length {negative}"),
            )
        })?;
        if len > self.max_frame_len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the maximum of {} bytes",
                    self.max_frame_len
                ),
            ));
        }
        Ok(len as usize)
    }
}

/// Writes one frame: the length prefix and `payload`, in one write where
/// the OS takes it whole.
pub fn write_frame<W: Write + ?Sized>(
    writer: &mut W,
    payload: &[u8],
    config: &FrameConfig,
) -> io::Result<()> {
    if payload.len() > config.max_frame_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the maximum of {} bytes",
                payload.len(),
                config.max_frame_len
            ),
        ));
    }
    let mut prefix = [0u8; 8];
    let prefix = config.prefix.encode(payload.len(), &mut prefix)?;
    if payload.len() <= SMALL_FRAME {
        let mut frame = [0u8; 8 + SMALL_FRAME];
        frame[..prefix.len()].copy_from_slice(prefix);
        frame[prefix.len()..prefix.len() + payload.len()].copy_from_slice(payload);
        return writer.write_all(&frame[..prefix.len() + payload.len()]);
    }
    write_all_vectored(writer, &mut [IoSlice::new(prefix), IoSlice::new(payload)])
}

/// `Write::write_all_vectored`, which is not stable yet.
fn write_all_vectored<W: Write + ?Sized>(writer: &mut W, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one frame without buffering beyond it (two reads per frame):
/// `Ok(None)` at a clean end of stream. [`Framed`] reads ahead and is
/// cheaper for a stream of frames.
pub fn read_frame<R: Read + ?Sized>(reader: &mut R, config: &FrameConfig) -> io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 8];
    let prefix = &mut prefix[..config.prefix.width()];
    if !read_prefix(reader, prefix)? {
        return Ok(None);
    }
    let len = config.check_len(prefix)?;
    let mut payload = Vec::new();
    read_payload(reader, &mut payload, len)?;
    Ok(Some(payload))
}

/// Fills `prefix`; false if the stream ended before its first byte.
fn read_prefix<R: Read + ?Sized>(reader: &mut R, prefix: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "stream ended inside a frame's length ({got} of {} bytes)",
                        prefix.len()
                    ),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Memory reserved for a frame's payload (or a message body) before its
/// bytes arrive: a claimed length buys no more than this.
pub(crate) const FIRST_RESERVE: usize = 64 * 1024;

/// Appends to `frame` the rest of a payload of `len` bytes. The vector
/// grows with the bytes that arrive, not with the length the peer
/// claimed: four bytes of prefix buy no more than [`FIRST_RESERVE`].
fn read_payload<R: Read + ?Sized>(reader: &mut R, frame: &mut Vec<u8>, len: usize) -> io::Result<()> {
    let missing = len - frame.len();
    if missing == 0 {
        // Small frames arrive whole in the read-ahead buffer.
        return Ok(());
    }
    frame.reserve(missing.min(FIRST_RESERVE));
    let got = (&mut *reader).take(missing as u64).read_to_end(frame)?;
    if got < missing {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stream ended inside a frame ({} of {len} bytes)", frame.len()),
        ));
    }
    Ok(())
}

/// A stream that reads and writes whole frames.
///
/// Reading needs `T: BufRead`, so that a small frame costs one read: a
/// handler's request reads ahead already (into its worker's buffer, which
/// `Framed` then shares rather than adding its own); so do `Cursor` and
/// `&[u8]`. A raw socket goes through [`Framed::buffered`], which puts a
/// [`BufStream`] in front of it. Writing needs `T: Write`. Bytes after a
/// frame stay read ahead, for the next frame or for [`Read`] on the
/// `Framed` itself (a streamed message body, say).
///
/// ```
/// use socketserver::{TcpRequest, ThreadingTcpServer, framing::Framed};
///
/// // Answers each frame with its length, as text, in a frame.
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", |req: &mut TcpRequest| {
///     let mut framed = Framed::new(req);
///     let mut frame = Vec::new();
///     while framed.read_frame_into(&mut frame)? {
///         framed.write_frame(frame.len().to_string().as_bytes())?;
///     }
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Framed<T> {
    inner: T,
    config: FrameConfig,
}

impl<T> Framed<T> {
    /// Frames `inner` in the default format.
    pub fn new(inner: T) -> Self {
        Framed::with_config(inner, FrameConfig::default())
    }

    /// Frames `inner` in `config`'s format.
    pub fn with_config(inner: T, config: FrameConfig) -> Self {
        Framed { inner, config }
    }

    /// The frame format.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// The framed stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The framed stream.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The framed stream back, with whatever it has read ahead.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<S: Read> Framed<BufStream<S>> {
    /// Frames a stream that does not read ahead itself (a `TcpStream`, a
    /// `UnixStream`), in the default format, through a [`BufStream`].
    pub fn buffered(stream: S) -> Self {
        Framed::new(BufStream::new(stream))
    }
}

impl<T: BufRead> Framed<T> {
    /// Reads the next frame: `Ok(None)` at a clean end of stream. Use
    /// [`read_frame_into`](Self::read_frame_into) in a loop to reuse one
    /// buffer instead of allocating each frame.
    pub fn read_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut frame = Vec::new();
        Ok(self.read_frame_into(&mut frame)?.then_some(frame))
    }

    /// Reads the next frame into `frame` (replacing its contents): `false`
    /// at a clean end of stream. Reads no further than the frame's end: an
    /// empty frame is complete with its prefix.
    pub fn read_frame_into(&mut self, frame: &mut Vec<u8>) -> io::Result<bool> {
        let mut prefix = [0u8; 8];
        let prefix = &mut prefix[..self.config.prefix.width()];
        if !read_buffered_prefix(&mut self.inner, prefix)? {
            return Ok(false);
        }
        let len = self.config.check_len(prefix)?;
        frame.clear();
        // An empty frame is whole already: reading on would wait for
        // the client's next bytes, which may only come after the reply.
        if len == 0 {
            return Ok(true);
        }
        // What is read ahead already, then the rest straight into `frame`.
        let available = self.inner.fill_buf()?;
        let from_buffer = len.min(available.len());
        frame.extend_from_slice(&available[..from_buffer]);
        self.inner.consume(from_buffer);
        read_payload(&mut self.inner, frame, len)?;
        Ok(true)
    }
}

/// Fills `prefix` from a buffered reader, across as many reads as it
/// takes; false if the stream ended cleanly before its first byte.
fn read_buffered_prefix<R: BufRead + ?Sized>(reader: &mut R, prefix: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < prefix.len() {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if got == 0 {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "stream ended inside a frame's length ({got} of {} bytes)",
                    prefix.len()
                ),
            ));
        }
        let n = available.len().min(prefix.len() - got);
        prefix[got..got + n].copy_from_slice(&available[..n]);
        reader.consume(n);
        got += n;
    }
    Ok(true)
}

impl<T: Write> Framed<T> {
    /// Writes one frame.
    pub fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        write_frame(&mut self.inner, payload, &self.config)
    }
}

/// Raw bytes after the last frame read: what was read ahead first, then
/// the stream itself.
impl<T: Read> Read for Framed<T> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out)
    }
}

/// Raw bytes, unframed (a streamed message body, say).
impl<T: Write> Write for Framed<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T> fmt::Debug for Framed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A stream read through a buffer and written straight through: reading
/// ahead for a stream that is also written to, which
/// [`std::io::BufReader`] alone does not offer. What [`Framed::buffered`]
/// puts in front of a raw socket.
///
/// ```
/// use socketserver::framing::{BufStream, Framed};
/// use std::net::TcpStream;
///
/// fn framed(stream: TcpStream) -> Framed<BufStream<TcpStream>> {
///     Framed::new(BufStream::new(stream)) // the same as Framed::buffered(stream)
/// }
/// ```
pub struct BufStream<S>(BufReader<S>);

impl<S: Read> BufStream<S> {
    /// Buffers `stream`'s reads with an 8 KiB buffer.
    pub fn new(stream: S) -> Self {
        BufStream(BufReader::with_capacity(READ_BUFFER, stream))
    }

    /// Buffers `stream`'s reads with a buffer of `capacity` bytes.
    pub fn with_capacity(capacity: usize, stream: S) -> Self {
        BufStream(BufReader::with_capacity(capacity, stream))
    }
}

impl<S> BufStream<S> {
    /// The stream.
    pub fn get_ref(&self) -> &S {
        self.0.get_ref()
    }

    /// The stream. Reading from it directly skips what was read ahead; see
    /// [`buffered`](Self::buffered).
    pub fn get_mut(&mut self) -> &mut S {
        self.0.get_mut()
    }

    /// Bytes read ahead and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        self.0.buffer()
    }

    /// The stream back; anything read ahead is lost.
    pub fn into_inner(self) -> S {
        self.0.into_inner()
    }
}

impl<S: Read> Read for BufStream<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read(out)
    }
}

impl<S: Read> BufRead for BufStream<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.0.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.0.consume(amount)
    }
}

impl<S: Write> Write for BufStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.get_mut().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.get_mut().flush()
    }
}

impl<S> fmt::Debug for BufStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufStream")
            .field("buffered", &self.0.buffer().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// Yields its bytes, then fails every read with `WouldBlock`: a peer
    /// that has sent them and waits for an answer. A reader that reads
    /// past what it needs fails on it instead of hanging.
    pub(crate) struct ThenWaits(pub(crate) Cursor<Vec<u8>>);
    impl Read for ThenWaits {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match self.0.read(out)? {
                0 => Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "read past what was sent",
                )),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn an_empty_frame_is_read_without_reading_on() {
        let config = FrameConfig::default();
        for frames in [&[&b""[..]][..], &[b"abc", b""], &[b"", b"", b"x", b""]] {
            let mut wire = Vec::new();
            for frame in frames {
                write_frame(&mut wire, frame, &config).unwrap();
            }
            let mut framed = Framed::buffered(ThenWaits(Cursor::new(wire.clone())));
            let mut unbuffered = ThenWaits(Cursor::new(wire));
            for frame in frames {
                assert_eq!(framed.read_frame().unwrap().as_deref(), Some(*frame));
                assert_eq!(
                    read_frame(&mut unbuffered, &config).unwrap().as_deref(),
                    Some(*frame)
                );
            }
        }
    }

    fn encoded(payload: &[u8], config: &FrameConfig) -> Vec<u8> {
        let mut wire = Vec::new();
        write_frame(&mut wire, payload, config).unwrap();
        wire
    }

    #[test]
    fn prefixes_match_python_struct() {
        // struct.pack('!H', 5), '!I', '!Q', 'i' on x86.
        let five = |prefix| encoded(b"12345", &FrameConfig::default().with_prefix(prefix));
        assert_eq!(five(LengthPrefix::U16Be)[..2], [0, 5]);
        assert_eq!(five(LengthPrefix::U32Be)[..4], [0, 0, 0, 5]);
        assert_eq!(five(LengthPrefix::U64Be)[..8], [0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(five(LengthPrefix::I32Le)[..4], [5, 0, 0, 0]);
        assert_eq!(&five(LengthPrefix::I32Le)[4..], b"12345");
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let config = FrameConfig::default().with_max_frame_len(10);
        let wire = [0xff, 0xff, 0xff, 0xff];
        let error = read_frame(&mut &wire[..], &config).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            error.to_string(),
            "frame of 4294967295 bytes exceeds the maximum of 10 bytes"
        );
        let error = Framed::with_config(&wire[..], config).read_frame().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_negative_length_is_refused() {
        let wire = (-5i32).to_le_bytes();
        let error = read_frame(&mut &wire[..], &FrameConfig::tutorial()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(error.to_string(), "negative frame length -5");
    }

    #[test]
    fn end_of_stream_between_frames_is_clean_and_inside_is_not() {
        let config = FrameConfig::default();
        let wire = encoded(b"abc", &config);
        for cut in 1..wire.len() {
            let error = read_frame(&mut &wire[..cut], &config).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
            let error = Framed::new(&wire[..cut]).read_frame().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        assert_eq!(read_frame(&mut &wire[..0], &config).unwrap(), None);
        let mut framed = Framed::new(Cursor::new(wire));
        assert_eq!(framed.read_frame().unwrap().unwrap(), b"abc");
        assert_eq!(framed.read_frame().unwrap(), None);
    }

    #[test]
    fn writing_an_oversized_frame_is_refused() {
        let config = FrameConfig::default().with_max_frame_len(3);
        let error = write_frame(&mut Vec::new(), b"four", &config).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let config = FrameConfig::default().with_prefix(LengthPrefix::U16Be);
        let error = write_frame(&mut Vec::new(), &[0; 70_000], &config).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    /// Counts writes, to show a frame is one.
    struct CountingWriter(Vec<u8>, usize);
    impl Write for CountingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.1 += 1;
            let mut n = 0;
            for buf in bufs {
                self.0.extend_from_slice(buf);
                n += buf.len();
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_frame_is_one_write() {
        for payload in [
            vec![1u8; 7],
            vec![2u8; SMALL_FRAME],
            vec![3u8; SMALL_FRAME + 1],
            vec![4u8; 100_000],
        ] {
            let mut writer = CountingWriter(Vec::new(), 0);
            write_frame(&mut writer, &payload, &FrameConfig::default()).unwrap();
            assert_eq!(writer.1, 1, "{} bytes", payload.len());
            assert_eq!(writer.0, encoded(&payload, &FrameConfig::default()));
            assert_eq!(writer.0[..4], (payload.len() as u32).to_be_bytes());
        }
    }

    /// Claims the maximum, then sends nothing more.
    struct Claim(Option<[u8; 4]>);
    impl Read for Claim {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(prefix) => {
                    out[..4].copy_from_slice(&prefix);
                    Ok(4)
                }
                None => Ok(0),
            }
        }
    }

    #[test]
    fn a_claimed_length_reserves_only_what_arrives() {
        let claim = (DEFAULT_MAX_FRAME_LEN as u32).to_be_bytes();
        let mut frame = Vec::new();
        let error = Framed::buffered(Claim(Some(claim)))
            .read_frame_into(&mut frame)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            frame.capacity() <= FIRST_RESERVE,
            "reserved {} bytes",
            frame.capacity()
        );
    }

    #[test]
    fn large_frames_bypass_the_read_buffer() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut wire = encoded(&payload, &FrameConfig::default());
        wire.extend(encoded(b"next", &FrameConfig::default()));
        let mut framed = Framed::new(Cursor::new(wire));
        assert_eq!(framed.read_frame().unwrap().unwrap(), payload);
        assert_eq!(framed.read_frame().unwrap().unwrap(), b"next");
    }
}
