//! Moving a file's bytes to or from a stream while hashing them, in two
//! threads.
//!
//! A transfer has three jobs per byte: the file's side (a read from or a
//! write to the page cache), the stream's side (a socket send or receive)
//! and SHA-256. Done one after another in one thread, the socket idles
//! while the hash runs and the other way round; the hash alone runs at
//! about 1.5 GB/s with the CPU's SHA extensions, so that caps the whole.
//! Here the file's side runs on a helper thread and the stream's side on
//! the caller's, with a small ring of large buffers between them: while
//! one buffer is on the socket the next is being read (or the previous
//! one written) and hashed. The hash runs on the file's side both ways:
//! on the project's two-core machine, where both ends of a loopback
//! transfer share the cores, hashing on the socket's side instead cost as
//! much CPU and was no faster. The buffers are page-aligned, so that the
//! file's side can use direct I/O (see `file.rs`).
//!
//! The helper is a scoped thread: whatever fails on either side, the
//! other side sees its channel close, stops, and the helper is joined
//! before the call returns, so no thread outlives a transfer.

use std::io::{self, Read, Write};

use crossbeam_channel::{Receiver, Sender, bounded};
use sha2::{Digest, Sha256};

/// The size of each buffer in the ring (and of the single buffer small
/// transfers use).
pub(crate) const CHUNK: usize = 1024 * 1024;

/// How many buffers the ring holds: the most the file's side can run
/// ahead of the stream's (or behind it).
const DEPTH: usize = 4;

/// Bodies up to this size are moved in the caller's thread: a helper
/// thread would cost more than it saves.
const INLINE_MAX: u64 = 2 * CHUNK as u64;

/// The ring's buffers start at this alignment, so that the file's side
/// can write them with direct I/O.
const ALIGN: usize = crate::sys::DIRECT_IO_ALIGN;

/// The name of the helper thread.
pub(crate) const HELPER_NAME: &str = "file-pipeline";

/// True if a body of `len` bytes goes through the ring (and its
/// buffers), false if it is moved in the caller's thread.
pub(crate) fn is_pipelined(len: u64) -> bool {
    len > INLINE_MAX
}

/// Sends `len` bytes read from `file` to `stream`, hashing them on the
/// way; returns their SHA-256 in lowercase hex. A `file` that ends early
/// is an `UnexpectedEof` error. Errors of the file's side go through
/// `file_error` (to name the file); the stream's come back as they are.
pub(crate) fn send_hashed<F, S>(
    file: &mut F,
    len: u64,
    stream: &mut S,
    file_error: &(dyn Fn(io::Error) -> io::Error + Sync),
) -> io::Result<String>
where
    F: Read + Send + ?Sized,
    S: Write + ?Sized,
{
    let mut fill = |buf: &mut [u8]| file.read(buf).map_err(file_error);
    let mut drain = |bytes: &[u8]| stream.write_all(bytes);
    if !is_pipelined(len) {
        return inline(len, &mut fill, &mut drain, file_error);
    }
    let (fill_end, drain_end) = ring();
    two_threads(
        || {
            let mut hasher = Sha256::new();
            fill_end.run(len, &mut fill, Some(&mut hasher), file_error)?;
            Ok(hasher)
        },
        || drain_end.run(len, &mut drain, None),
    )
}

/// Receives `len` bytes from `stream` into `file`, hashing them on the
/// way; returns their SHA-256 in lowercase hex. Errors of the file's side
/// go through `file_error`; the stream's (`UnexpectedEof` when it ends
/// early) come back as they are.
pub(crate) fn receive_hashed<S, F>(
    stream: &mut S,
    len: u64,
    file: &mut F,
    file_error: &(dyn Fn(io::Error) -> io::Error + Sync),
) -> io::Result<String>
where
    S: Read + ?Sized,
    F: Write + Send + ?Sized,
{
    let as_is = |e: io::Error| e;
    let mut fill = |buf: &mut [u8]| stream.read(buf);
    let mut drain = |bytes: &[u8]| file.write_all(bytes).map_err(file_error);
    if !is_pipelined(len) {
        return inline(len, &mut fill, &mut drain, &as_is);
    }
    let (fill_end, drain_end) = ring();
    two_threads(
        || {
            let mut hasher = Sha256::new();
            drain_end.run(len, &mut drain, Some(&mut hasher))?;
            Ok(hasher)
        },
        || fill_end.run(len, &mut fill, None, &as_is),
    )
}

/// Runs `helper`, the file's side, which hashes the bytes (hashing there
/// measured no slower than on the socket's side, and leaves the socket's
/// thread free for the socket), on a scoped helper thread and `caller`
/// on this one; returns the SHA-256 (in hex), or the error of the side
/// that failed.
fn two_threads<H, C>(helper: H, caller: C) -> io::Result<String>
where
    H: FnOnce() -> Result<Sha256, Stop> + Send,
    C: FnOnce() -> Result<(), Stop>,
{
    let (there, here) = std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name(HELPER_NAME.into())
            .spawn_scoped(scope, helper)
        {
            Ok(handle) => {
                let here = caller();
                let there = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (there, here)
            }
            Err(e) => (Err(Stop::Failed(e)), Err(Stop::Abandoned)),
        }
    });
    match (there, here) {
        (Err(Stop::Failed(e)), _) | (_, Err(Stop::Failed(e))) => Err(e),
        (Ok(hasher), Ok(())) => Ok(hex(&hasher.finalize())),
        // A side stops early only when the other fails.
        _ => Err(io::Error::other(
            "the transfer's two sides stopped without an error",
        )),
    }
}

/// The whole transfer in the caller's thread, through one buffer.
fn inline(
    len: u64,
    fill: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
    drain: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    fill_error: &dyn Fn(io::Error) -> io::Error,
) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; usize::try_from(len).unwrap_or(CHUNK).min(CHUNK)];
    let mut done = 0;
    while done < len {
        let n = chunk_len(len - done);
        fill_exact(fill, &mut buffer[..n], done, len, fill_error)?;
        hasher.update(&buffer[..n]);
        drain(&buffer[..n])?;
        done += n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

/// Why one side of the ring stopped before the end.
enum Stop {
    /// It failed, with this error.
    Failed(io::Error),
    /// The other side stopped.
    Abandoned,
}

/// One buffer of the ring: [`CHUNK`] bytes starting at an [`ALIGN`]ed
/// address, inside an allocation a little larger.
struct Buffer(Vec<u8>);

impl Buffer {
    fn new() -> Buffer {
        Buffer(vec![0u8; CHUNK + ALIGN])
    }

    /// Where the aligned bytes start in the allocation.
    fn start(&self) -> usize {
        (ALIGN - self.0.as_ptr() as usize % ALIGN) % ALIGN
    }

    fn bytes(&self) -> &[u8] {
        let start = self.start();
        &self.0[start..start + CHUNK]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let start = self.start();
        &mut self.0[start..start + CHUNK]
    }
}

/// The side that fills buffers: takes empty ones, passes full ones on.
struct FillEnd {
    empty: Receiver<Buffer>,
    full: Sender<(Buffer, usize)>,
}

/// The side that drains buffers: takes full ones, gives them back empty.
struct DrainEnd {
    full: Receiver<(Buffer, usize)>,
    empty: Sender<Buffer>,
}

/// A ring of [`DEPTH`] buffers of [`CHUNK`] bytes.
fn ring() -> (FillEnd, DrainEnd) {
    let (empty_tx, empty_rx) = bounded(DEPTH);
    let (full_tx, full_rx) = bounded(DEPTH);
    for _ in 0..DEPTH {
        empty_tx
            .send(Buffer::new())
            .expect("the ring has room for its buffers");
    }
    (
        FillEnd {
            empty: empty_rx,
            full: full_tx,
        },
        DrainEnd {
            full: full_rx,
            empty: empty_tx,
        },
    )
}

impl FillEnd {
    /// Fills buffers with `len` bytes in all. Consumes the end, so that the
    /// drain side sees the channel close however this returns.
    fn run(
        self,
        len: u64,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
        mut hasher: Option<&mut Sha256>,
        fill_error: &dyn Fn(io::Error) -> io::Error,
    ) -> Result<(), Stop> {
        let mut done = 0;
        while done < len {
            let mut buffer = self.empty.recv().map_err(|_| Stop::Abandoned)?;
            let n = chunk_len(len - done);
            let bytes = &mut buffer.bytes_mut()[..n];
            fill_exact(fill, bytes, done, len, fill_error).map_err(Stop::Failed)?;
            if let Some(hasher) = hasher.as_deref_mut() {
                hasher.update(bytes);
            }
            self.full.send((buffer, n)).map_err(|_| Stop::Abandoned)?;
            done += n as u64;
        }
        Ok(())
    }
}

impl DrainEnd {
    /// Drains buffers until `len` bytes went through. Consumes the end, so
    /// that the fill side sees the channel close however this returns.
    fn run(
        self,
        len: u64,
        drain: &mut dyn FnMut(&[u8]) -> io::Result<()>,
        mut hasher: Option<&mut Sha256>,
    ) -> Result<(), Stop> {
        let mut done = 0;
        while done < len {
            let (buffer, n) = self.full.recv().map_err(|_| Stop::Abandoned)?;
            let bytes = &buffer.bytes()[..n];
            if let Some(hasher) = hasher.as_deref_mut() {
                hasher.update(bytes);
            }
            drain(bytes).map_err(Stop::Failed)?;
            done += n as u64;
            // The fill side may have finished and gone: nothing to return
            // the buffer to then.
            let _ = self.empty.send(buffer);
        }
        Ok(())
    }
}

/// The length of the next chunk when `left` bytes are still to go.
fn chunk_len(left: u64) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK)
}

/// Fills `buffer` from `fill` completely; `done` of `len` bytes went
/// before it. An end of the bytes first is `UnexpectedEof`.
fn fill_exact(
    fill: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
    buffer: &mut [u8],
    done: u64,
    len: u64,
    fill_error: &dyn Fn(io::Error) -> io::Error,
) -> io::Result<()> {
    let mut at = 0;
    while at < buffer.len() {
        match fill(&mut buffer[at..]) {
            Ok(0) => {
                let got = done + at as u64;
                return Err(fill_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the bytes ended after {got} of {len}"),
                )));
            }
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Reads `len` bytes, then fails (`fail_at`) or ends early; counts
    /// what it handed out.
    struct Source {
        at: u64,
        len: u64,
        fail_at: Option<u64>,
        handed: Arc<AtomicU64>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|at| self.at >= at) {
                return Err(io::Error::other("the disk is on fire"));
            }
            let end = self.fail_at.unwrap_or(self.len).min(self.len);
            let n = (end - self.at).min(buf.len() as u64) as usize;
            buf[..n].fill(b'x');
            self.at += n as u64;
            self.handed.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    fn source(len: u64, fail_at: Option<u64>) -> (Source, Arc<AtomicU64>) {
        let handed = Arc::new(AtomicU64::new(0));
        let source = Source {
            at: 0,
            len,
            fail_at,
            handed: handed.clone(),
        };
        (source, handed)
    }

    /// Takes `limit` bytes, then fails as a vanished peer does.
    struct Sink {
        taken: u64,
        limit: u64,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.taken >= self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the peer is gone"));
            }
            let n = (self.limit - self.taken).min(bytes.len() as u64) as usize;
            self.taken += n as u64;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const BIG: u64 = 20 * CHUNK as u64;

    fn named(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("big.bin: {e}"))
    }

    #[test]
    fn sends_and_receives_hash_every_byte() {
        let expected = {
            let mut hasher = Sha256::new();
            hasher.update(vec![b'x'; BIG as usize]);
            hex(&hasher.finalize())
        };
        for len in [0, 10, BIG] {
            let (mut file, _) = source(len, None);
            let mut wire = Vec::new();
            let sent = send_hashed(&mut file, len, &mut wire, &named).unwrap();
            assert_eq!(wire.len() as u64, len);
            let mut stored = Vec::new();
            let received = receive_hashed(&mut &wire[..], len, &mut stored, &named).unwrap();
            assert_eq!(sent, received);
            assert!(stored == wire);
            if len == BIG {
                assert_eq!(sent, expected);
            }
        }
    }

    #[test]
    fn a_file_read_error_mid_send_stops_the_send_and_names_the_file() {
        let (mut file, _) = source(BIG, Some(5 * CHUNK as u64 + 10));
        let mut sink = Sink {
            taken: 0,
            limit: u64::MAX,
        };
        let error = send_hashed(&mut file, BIG, &mut sink, &named).unwrap_err();
        assert_eq!(error.to_string(), "big.bin: the disk is on fire");
        // What was read before the error went out; nothing after it.
        assert_eq!(sink.taken, 5 * CHUNK as u64);
    }

    #[test]
    fn a_file_that_shrank_is_unexpected_eof() {
        let (mut file, _) = source(BIG - 7, None);
        let error = send_hashed(&mut file, BIG, &mut io::sink(), &named).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            error.to_string(),
            format!("big.bin: the bytes ended after {} of {BIG}", BIG - 7)
        );
    }

    #[test]
    fn a_vanished_peer_stops_the_file_reader_within_the_ring() {
        let (mut file, handed) = source(BIG, None);
        let mut sink = Sink {
            taken: 0,
            limit: 3 * CHUNK as u64,
        };
        let error = send_hashed(&mut file, BIG, &mut sink, &named).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        // The reader ran at most the ring (and the buffer in hand) ahead.
        let read = handed.load(Ordering::Relaxed);
        assert!(
            read <= 3 * CHUNK as u64 + (DEPTH as u64 + 2) * CHUNK as u64,
            "{read}"
        );
    }

    #[test]
    fn a_stream_cut_short_or_a_failing_file_stops_the_receive() {
        let wire = vec![b'x'; BIG as usize];
        let mut cut = &wire[..BIG as usize / 2];
        let error = receive_hashed(&mut cut, BIG, &mut Vec::new(), &named).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

        let mut full = Sink {
            taken: 0,
            limit: 2 * CHUNK as u64,
        };
        let mut stream = &wire[..];
        let error = receive_hashed(&mut stream, BIG, &mut full, &named).unwrap_err();
        assert_eq!(error.to_string(), "big.bin: the peer is gone");
        // The socket side stopped within the ring too.
        let unread = stream.len() as u64;
        assert!(BIG - unread <= (DEPTH as u64 + 4) * CHUNK as u64, "{unread}");
    }
}
