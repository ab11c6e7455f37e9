//! Sending and receiving files as messages.
//!
//! A file travels as one message: a header with its `name` and its `size`
//! (the body length), the bytes, and the `sha256` of the bytes (lowercase
//! hex) in one of two places:
//!
//! ```text
//! checksum in a trailer, what send_file sends:
//! [prefix]{"name":"a.bin","size":N,"trailer":["sha256"],...}[N bytes][prefix]{"sha256":"9f86..."}
//!
//! checksum first, what send_file_checksum_first sends (the original form):
//! [prefix]{"name":"a.bin","size":N,"sha256":"9f86...",...}[N bytes]
//! ```
//!
//! The trailer (see [the message docs](super)) lets the sender read the
//! file once and hash it while it sends, instead of hashing it whole
//! before the first byte goes out. [`receive_file`] reads both forms, so
//! a receiver takes files from senders old and new; a sender that talks
//! to receivers predating trailers uses [`send_file_checksum_first`].
//!
//! The receiver confines the name to its directory, writes the body to a
//! temporary file there (a [`PartialFile`]) while hashing it, and renames
//! it to the name only when the checksum matches; on any failure nothing
//! is left behind. Both ends move the bytes through a small ring of 1 MiB
//! buffers, the file's side on a helper thread and the socket's on the
//! caller's, so memory stays flat (a few MiB) whatever the file's size.
//!
//! Large files go to and from the disk with direct I/O where the file
//! system allows it: a received file is written straight from the ring's
//! buffers, and a file to send that is not in the page cache is read
//! straight into them. No copy passes through the page cache, which on a
//! small machine costs as much CPU as the hash (a cached file is still
//! read through the cache). Nothing is skipped: every byte is hashed.
//! `sendfile`, `splice` and `copy_file_range` are not used: they move
//! bytes without this process seeing them, so the checksum would have to
//! be computed by a second read, and they save no copy over loopback that
//! direct I/O does not.
//!
//! A process killed in the middle of a transfer cannot remove its partial
//! file; [`remove_stale_partial_files`] finds and removes such leftovers
//! (a server calls it at start), and [`is_partial_file_name`] tells them
//! from finished files, so they are never listed or served.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::pipeline::{self, CHUNK, hex};
use super::{Header, MessageConfig, MessageStream, write_header, write_message, write_trailer};
use crate::sys::DIRECT_IO_ALIGN;

/// The field that carries a file's SHA-256, in the header or the trailer.
pub const SHA256_FIELD: &str = "sha256";

/// Once this many bytes of a [`PartialFile`] are written, their writeback
/// to the disk is started, so that the final `fsync` waits for little.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;

/// What a file message's header says about the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The file's name: a plain name, without any directory.
    pub name: String,
    /// Its length in bytes (the message's body length).
    pub size: u64,
    /// The SHA-256 of its bytes, in lowercase hex.
    pub sha256: String,
}

impl FileHeader {
    /// Reads the file fields of a received checksum-first header;
    /// `InvalidData` if one is missing or malformed (as the `sha256` of a
    /// file whose checksum comes in a trailer is: [`receive_file`] reads
    /// both forms). The name is not checked here; see
    /// [`safe_file_name`].
    pub fn from_header(header: &Header) -> io::Result<FileHeader> {
        Ok(FileHeader {
            sha256: parse_sha256(header.get_str(SHA256_FIELD)?)?,
            name: header.get_str("name")?.to_owned(),
            size: header.body_len(),
        })
    }
}

/// A SHA-256 as a file message carries it: 64 hex digits, returned in
/// lowercase.
fn parse_sha256(sha256: &str) -> io::Result<String> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("\"sha256\" is not 64 hex digits: {sha256:?}"),
        ));
    }
    Ok(sha256.to_ascii_lowercase())
}

/// Where a received file message says its checksum is: `Some` in the
/// header, `None` in the trailer.
fn announced_sha256(header: &Header) -> io::Result<Option<String>> {
    let in_trailer = header.trailer_fields().iter().any(|field| field == SHA256_FIELD);
    match (header.get(SHA256_FIELD).is_some(), in_trailer) {
        (true, false) => parse_sha256(header.get_str(SHA256_FIELD)?).map(Some),
        (false, true) => Ok(None),
        (true, true) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the file message carries \"sha256\" in its header and declares it in its trailer too",
        )),
        (false, false) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the file message has no \"sha256\", in its header or in a trailer",
        )),
    }
}

/// Checks that `name` is a plain file name that stays inside the directory
/// it is joined to: not empty, not `.` or `..`, no separators, no NUL, not
/// absolute. `PermissionDenied` otherwise.
pub fn safe_file_name(name: &str) -> io::Result<&str> {
    let plain = !name.is_empty()
        && !name.contains(['/', '\\', '\0'])
        && matches!(
            Path::new(name).components().collect::<Vec<_>>()[..],
            [Component::Normal(_)]
        );
    if plain {
        Ok(name)
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing file name {name:?}: it must be a plain name inside the directory"),
        ))
    }
}

/// The SHA-256 of everything `reader` yields, in lowercase hex, and how
/// many bytes that was.
pub fn sha256_hex(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// What turns an error about the file at `path` into one that names it.
fn naming(path: &Path) -> impl Fn(io::Error) -> io::Error + Sync + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Sends the file at `path` as one message named `name`, its checksum in a
/// trailer: the header (`extra`'s fields, plus `name`, `size` and
/// `"trailer": ["sha256"]`), the bytes, read once and hashed while they
/// are sent, then the trailer with the `sha256`. Returns what was sent.
///
/// A receiver that predates trailers cannot read it; see
/// [`send_file_checksum_first`]. On an error in the middle (the file
/// cannot be read, the peer went away) the stream is cut in the middle of
/// a message: close it; the receiver keeps nothing.
///
/// To show progress, wrap `writer` in a counting writer (indicatif's
/// `ProgressBar::wrap_write`, say): every byte goes through it as the
/// socket takes it, so the count is the real rate, hashing included.
pub fn send_file<W: Write + ?Sized>(
    writer: &mut W,
    path: &Path,
    name: &str,
    extra: &Map<String, Value>,
    config: &MessageConfig,
) -> io::Result<FileHeader> {
    let with_path = naming(path);
    let mut file = SourceFile::open(path).map_err(&with_path)?;
    let size = file.file.metadata().map_err(&with_path)?.len();
    if pipeline::is_pipelined(size) {
        file.use_direct_io_unless_cached(size);
    }
    let mut header = extra.clone();
    header.insert("name".into(), Value::from(name));
    header.remove(SHA256_FIELD); // it comes in the trailer
    write_header(writer, &header, size, &[SHA256_FIELD], config)?;
    let sha256 = pipeline::send_hashed(&mut file, size, writer, &with_path)?;
    let mut trailer = Map::new();
    trailer.insert(SHA256_FIELD.into(), Value::from(sha256.as_str()));
    write_trailer(writer, &trailer, config)?;
    Ok(FileHeader {
        name: name.to_owned(),
        size,
        sha256,
    })
}

/// Sends the file at `path` as one message named `name` in the original
/// checksum-first form, which every receiver reads: first hashes it (a
/// read of the whole file), then sends the header (`extra`'s fields, plus
/// `name`, `size` and `sha256`) and streams the bytes. Returns what the
/// header said.
///
/// To show the hashing too, hash with [`sha256_hex`] and send with
/// [`send_file_contents`].
pub fn send_file_checksum_first<W: Write + ?Sized>(
    writer: &mut W,
    path: &Path,
    name: &str,
    extra: &Map<String, Value>,
    config: &MessageConfig,
) -> io::Result<FileHeader> {
    let with_path = naming(path);
    let mut file = File::open(path).map_err(&with_path)?;
    let (sha256, size) = sha256_hex(&mut file).map_err(&with_path)?;
    file.seek(SeekFrom::Start(0)).map_err(&with_path)?;
    let header = FileHeader {
        name: name.to_owned(),
        size,
        sha256,
    };
    send_file_contents(writer, &mut file, &header, extra, config)?;
    Ok(header)
}

/// Sends a file whose name, size and SHA-256 are already known (from
/// [`sha256_hex`], say), checksum first: the header (`extra`'s fields,
/// plus `file`'s), then `file.size` bytes streamed from `contents`. A
/// `contents` that ends early is an `UnexpectedEof` error.
pub fn send_file_contents<W: Write + ?Sized, R: Read + ?Sized>(
    writer: &mut W,
    contents: &mut R,
    file: &FileHeader,
    extra: &Map<String, Value>,
    config: &MessageConfig,
) -> io::Result<()> {
    let mut header = extra.clone();
    header.insert("name".into(), Value::from(file.name.as_str()));
    header.insert(SHA256_FIELD.into(), Value::from(file.sha256.as_str()));
    write_message(writer, &header, contents, file.size, config)
}

/// True if a transfer of `len` bytes at `offset` from (or to) `buffer` can
/// use direct I/O: all three aligned, and not empty.
fn direct_io_fits(buffer: &[u8], offset: u64) -> bool {
    !buffer.is_empty()
        && (buffer.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN)
        && buffer.len().is_multiple_of(DIRECT_IO_ALIGN)
        && offset.is_multiple_of(DIRECT_IO_ALIGN as u64)
}

/// A file being sent, read front to back; with direct I/O when it is not
/// in the page cache anyway (see [`SourceFile::use_direct_io_unless_cached`]).
struct SourceFile {
    file: File,
    /// Bytes read so far.
    offset: u64,
    direct: bool,
}

impl SourceFile {
    fn open(path: &Path) -> io::Result<SourceFile> {
        Ok(SourceFile {
            file: File::open(path)?,
            offset: 0,
            direct: false,
        })
    }

    /// Reads what comes in aligned buffers with direct I/O from now on,
    /// if the middle of the file is not in the page cache: the bytes come
    /// from the disk into the buffer with no copy through the cache (a
    /// file a receiver wrote with direct I/O is never there), while a file
    /// that is cached, just written or often served, is read from the
    /// cache as before. Any other read turns direct I/O off for the rest.
    fn use_direct_io_unless_cached(&mut self, size: u64) {
        if crate::sys::is_cached(&self.file, size / 2) {
            return;
        }
        match crate::sys::set_direct_io(&self.file, true) {
            Ok(()) => self.direct = true,
            Err(e) => log::debug!("no direct I/O for reading: {e}"),
        }
    }
}

impl Read for SourceFile {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.direct {
            if direct_io_fits(buffer, self.offset) {
                match self.file.read(buffer) {
                    Ok(n) => {
                        self.offset += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        log::debug!("direct read refused: {e}");
                    }
                    Err(e) => return Err(e),
                }
            }
            self.direct = false;
            crate::sys::set_direct_io(&self.file, false)?;
        }
        let n = self.file.read(buffer)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// A file that arrived whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedFile {
    /// Where it was stored.
    pub path: PathBuf,
    /// What its header said, checked against the bytes.
    pub header: FileHeader,
}

/// Receives the body of the file message whose `header` was just read from
/// `messages`, into `dir`. Both forms are read: the checksum in the header
/// or in a trailer after the body (see the [module docs](self)).
///
/// The name must be a plain name ([`safe_file_name`]); the bytes go to a
/// temporary file in `dir` and are hashed as they arrive (the file is
/// written and hashed on a helper thread while the next bytes are
/// received); the temporary file is renamed to the name (replacing a file
/// of that name) only if the SHA-256 matches. On a refused name, a
/// checksum mismatch (`InvalidData`), a body or trailer cut short
/// (`UnexpectedEof`) or a trailer that is not one (`InvalidData`), no
/// file is left behind, and the error names the file. A refused name
/// leaves the message unread; the next `read_header` skips it. A name
/// that [looks like a partial file](is_partial_file_name) is refused too,
/// so no finished file can be taken for a leftover.
pub fn receive_file<T: BufRead>(
    messages: &mut MessageStream<T>,
    header: &Header,
    dir: &Path,
) -> io::Result<ReceivedFile> {
    let name = safe_file_name(header.get_str("name")?)?;
    let in_header = announced_sha256(header)?;
    if is_partial_file_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing file name {name:?}: it is the form of a partial file's name"),
        ));
    }
    let target = dir.join(name);
    let mut temporary = PartialFile::create(dir, name)?;
    let size = header.body_len();
    if pipeline::is_pipelined(size) {
        temporary.use_direct_io();
    }
    let actual = pipeline::receive_hashed(&mut messages.body(), size, &mut temporary, &|e| e)
        .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}; discarded")))?;
    let expected = match in_header {
        Some(sha256) => sha256,
        None => messages
            .read_trailer()
            .and_then(|trailer| parse_sha256(trailer.get_str(SHA256_FIELD)?))
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}; discarded")))?,
    };
    if actual != expected {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{name}: checksum mismatch (the sender says {expected}, the bytes hash to {actual}); discarded"
            ),
        ));
    }
    temporary.persist(&target)?;
    Ok(ReceivedFile {
        path: target,
        header: FileHeader {
            name: name.to_owned(),
            size,
            sha256: actual,
        },
    })
}

/// The longest file name most file systems take (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;

/// What ends a partial file's name.
const PARTIAL_SUFFIX: &str = ".socketserver-part";

/// A file being written into a directory under a temporary name: moved to
/// its real name by [`persist`](PartialFile::persist) once it is whole,
/// and removed if dropped before that. Its name,
/// `.NAME.PID-N.socketserver-part` (NAME shortened so that the whole fits
/// the file system's 255-byte limit), never collides with another's, and
/// [`is_partial_file_name`] recognizes it. While it is open it holds an
/// exclusive lock on itself, so [`remove_stale_partial_files`] can tell it
/// from one left by a process that died.
pub struct PartialFile {
    path: PathBuf,
    file: File,
    kept: bool,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback was started.
    written_back: u64,
    /// Whether writes skip the page cache (see [`PartialFile::use_direct_io`]).
    direct: bool,
}

impl PartialFile {
    /// Creates a partial file in `dir` for a file to be called `name`,
    /// never reusing an existing file.
    pub fn create(dir: &Path, name: &str) -> io::Result<PartialFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let tag = format!(".{}-{n}{PARTIAL_SUFFIX}", std::process::id());
            let room = NAME_MAX - 1 - tag.len();
            let mut cut = name.len().min(room);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            let path = dir.join(format!(".{}{tag}", &name[..cut]));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    match file.try_lock() {
                        Ok(()) => {}
                        // A file system without locks: the file works, but
                        // a stale one cannot be told from this one.
                        Err(e) => log::debug!("cannot lock {}: {e}", path.display()),
                    }
                    return Ok(PartialFile {
                        path,
                        file,
                        kept: false,
                        written: 0,
                        written_back: 0,
                        direct: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(naming(&path)(e)),
            }
        }
    }

    /// Where the partial file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what comes in aligned buffers with direct I/O from now on,
    /// where the file system allows it: the bytes go from the buffer to
    /// the disk with no copy into the page cache, which on a small machine
    /// is the most CPU a received byte costs after its hash. A write from
    /// an unaligned buffer, or of a last piece shorter than a block, turns
    /// direct I/O off for the rest of the file. Returns whether it is on.
    pub(crate) fn use_direct_io(&mut self) -> bool {
        if !self.written.is_multiple_of(DIRECT_IO_ALIGN as u64) {
            return false;
        }
        match crate::sys::set_direct_io(&self.file, true) {
            Ok(()) => self.direct = true,
            Err(e) => log::debug!("{}: no direct I/O: {e}", self.path.display()),
        }
        self.direct
    }

    /// Back to writes through the page cache.
    fn stop_direct_io(&mut self) -> io::Result<()> {
        self.direct = false;
        self.written_back = self.written; // on the disk already
        crate::sys::set_direct_io(&self.file, false).map_err(naming(&self.path))
    }

    /// Makes the file durable and moves it to `target`, replacing a file
    /// there.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all().map_err(naming(&self.path))?;
        fs::rename(&self.path, target).map_err(naming(target))?;
        self.kept = true;
        Ok(())
    }
}

/// Writes go on at the end; every 8 MiB, their writeback to the disk is
/// started, so that [`persist`](Self::persist) waits only for the last
/// few.
impl Write for PartialFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.direct {
            let whole = &bytes[..bytes.len() / DIRECT_IO_ALIGN * DIRECT_IO_ALIGN];
            if direct_io_fits(whole, self.written) {
                match self.file.write(whole) {
                    Ok(n) => {
                        self.written += n as u64;
                        return Ok(n);
                    }
                    // Not on this file system or device after all: nothing
                    // was written; go on through the page cache.
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        log::debug!("{}: direct write refused: {e}", self.path.display());
                    }
                    Err(e) => return Err(e),
                }
            }
            self.stop_direct_io()?;
        }
        let n = self.file.write(bytes)?;
        self.written += n as u64;
        if self.written - self.written_back >= WRITEBACK_STEP {
            crate::sys::start_writeback(&self.file, self.written_back, self.written - self.written_back);
            self.written_back = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.kept
            && let Err(e) = fs::remove_file(&self.path)
        {
            log::warn!("cannot remove partial file {}: {e}", self.path.display());
        }
    }
}

impl std::fmt::Debug for PartialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialFile").field("path", &self.path).finish()
    }
}

/// True if `name` has the form of a [`PartialFile`]'s name.
///
/// ```
/// use socketserver::message::file::is_partial_file_name;
///
/// assert!(is_partial_file_name(".video.mp4.4242-7.socketserver-part"));
/// assert!(!is_partial_file_name("video.mp4"));
/// assert!(!is_partial_file_name(".video.mp4.part"));
/// ```
pub fn is_partial_file_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(PARTIAL_SUFFIX))
    else {
        return false;
    };
    let Some((_, tag)) = rest.rsplit_once('.') else {
        return false;
    };
    let Some((pid, n)) = tag.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(n)
}

/// Removes the partial files in `dir` that no process is writing: those
/// left by a process that died in the middle of a transfer (a crash, a
/// `kill -9`). A partial file still being written is locked by its
/// writer, and is left alone. Returns the paths removed.
///
/// A server storing uploads calls it at start; it is safe while other
/// processes write into the same directory.
pub fn remove_stale_partial_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let with_dir = naming(dir);
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(&with_dir)? {
        let entry = entry.map_err(&with_dir)?;
        if !entry.file_name().to_str().is_some_and(is_partial_file_name) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue; // gone already, or not ours to open
        };
        match file.try_lock() {
            Ok(()) => match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(naming(&path)(e)),
            },
            Err(TryLockError::WouldBlock) => {} // being written
            Err(TryLockError::Error(e)) => {
                log::warn!("cannot tell whether {} is in use: {e}", path.display());
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn names_are_confined() {
        for good in ["a.txt", "report 2026.pdf", "..hidden", "a..b", "日本語.txt"] {
            assert_eq!(safe_file_name(good).unwrap(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "nul\0byte",
            "./a",
        ] {
            let error = safe_file_name(bad).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{bad:?}");
        }
    }

    #[test]
    fn hashes_like_sha256sum() {
        let (hash, len) = sha256_hex(&mut &b"abc"[..]).unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(len, 3);
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("socketserver-file-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A file of `len` varied bytes in `dir`.
    fn source(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
        let path = dir.join("source.bin");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4093) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    type Sender =
        fn(&mut Vec<u8>, &Path, &str, &Map<String, Value>, &MessageConfig) -> io::Result<FileHeader>;

    /// Both forms: the checksum in a trailer, and first.
    const SENDERS: [(&str, Sender); 2] = [
        ("trailer", send_file::<Vec<u8>>),
        ("checksum first", send_file_checksum_first::<Vec<u8>>),
    ];

    /// `name` sent from `path` in the form `send` writes.
    fn wire_of(send: Sender, path: &Path, name: &str) -> (Vec<u8>, FileHeader) {
        let mut wire = Vec::new();
        let sent = send(&mut wire, path, name, &Map::new(), &MessageConfig::default()).unwrap();
        (wire, sent)
    }

    /// Receives the first message of `wire` into `dir`.
    fn receive_from(wire: Vec<u8>, dir: &Path) -> io::Result<ReceivedFile> {
        let mut messages = MessageStream::new(Cursor::new(wire));
        let header = messages.read_header().unwrap().unwrap();
        receive_file(&mut messages, &header, dir)
    }

    #[test]
    fn files_round_trip_in_both_forms() {
        let dir = scratch_dir("round-trip");
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        // Empty, one buffer's worth, and several buffers (through the
        // helper thread) with a short last one.
        for len in [0, 300_000, 5 * CHUNK + 3] {
            let (source, bytes) = source(&dir, len);
            let (expected, _) = sha256_hex(&mut &bytes[..]).unwrap();
            for (form, send) in SENDERS {
                let (wire, sent) = wire_of(send, &source, "copy.bin");
                assert_eq!(sent.sha256, expected, "{form}, {len} bytes");
                assert_eq!(sent.size, len as u64);
                let received = receive_from(wire, &out).unwrap();
                assert_eq!(received.header, sent, "{form}, {len} bytes");
                assert!(fs::read(&received.path).unwrap() == bytes, "{form}, {len} bytes");
                assert_eq!(entries(&out), ["copy.bin"]);
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_trailer_form_is_header_body_trailer() {
        let dir = scratch_dir("trailer-wire");
        let (path, bytes) = source(&dir, 1000);
        let (wire, sent) = wire_of(send_file::<Vec<u8>>, &path, "w.bin");
        let config = MessageConfig::default();
        let mut expected = Vec::new();
        write_header(
            &mut expected,
            &serde_json::json!({"name": "w.bin"}),
            1000,
            &["sha256"],
            &config,
        )
        .unwrap();
        expected.extend_from_slice(&bytes);
        write_trailer(
            &mut expected,
            &serde_json::json!({"sha256": sent.sha256}),
            &config,
        )
        .unwrap();
        assert!(wire == expected, "{:?}", String::from_utf8_lossy(&wire[..40]));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupted_or_cut_body_leaves_nothing() {
        let dir = scratch_dir("corrupt");
        let (source, _) = source(&dir, 3 * CHUNK);
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        for (form, send) in SENDERS {
            let (wire, _) = wire_of(send, &source, "f.bin");
            let mut corrupted = wire.clone();
            corrupted[wire.len() / 2] ^= 1;
            let error = receive_from(corrupted, &out).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{form}");
            assert!(
                error.to_string().starts_with("f.bin: checksum mismatch"),
                "{error}"
            );
            assert!(entries(&out).is_empty(), "{form}");

            let mut cut = wire;
            cut.truncate(cut.len() / 2);
            let error = receive_from(cut, &out).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{form}");
            assert!(error.to_string().starts_with("f.bin: "), "{error}");
            assert!(entries(&out).is_empty(), "{form}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    /// A trailer-form message for `body`, its trailer replaced by `trailer`
    /// (raw frame bytes; `None` for none at all).
    fn with_trailer(body: &[u8], trailer: Option<&[u8]>) -> Vec<u8> {
        let config = MessageConfig::default();
        let mut wire = Vec::new();
        write_header(
            &mut wire,
            &serde_json::json!({"name": "t.bin"}),
            body.len() as u64,
            &["sha256"],
            &config,
        )
        .unwrap();
        wire.extend_from_slice(body);
        if let Some(trailer) = trailer {
            crate::framing::write_frame(&mut wire, trailer, &config.header).unwrap();
        }
        wire
    }

    #[test]
    fn a_bad_missing_or_garbage_trailer_discards_the_file_and_names_it() {
        let dir = scratch_dir("bad-trailer");
        let body = vec![5u8; 3 * CHUNK + 17];
        let (right, _) = sha256_hex(&mut &body[..]).unwrap();
        let wrong = format!("{{\"sha256\": \"{}\"}}", "ab".repeat(32));
        let short = "{\"sha256\": \"abc\"}";
        for (trailer, kind, says) in [
            (
                Some(wrong.as_bytes()),
                io::ErrorKind::InvalidData,
                "checksum mismatch",
            ),
            (
                None,
                io::ErrorKind::UnexpectedEof,
                "the stream ended before the message's trailer",
            ),
            (
                Some(&b"garbage"[..]),
                io::ErrorKind::InvalidData,
                "the message trailer is not JSON",
            ),
            (
                Some(b"[1]"),
                io::ErrorKind::InvalidData,
                "the message trailer is an array",
            ),
            (
                Some(b"{}"),
                io::ErrorKind::InvalidData,
                "lacks the field \"sha256\"",
            ),
            (
                Some(short.as_bytes()),
                io::ErrorKind::InvalidData,
                "not 64 hex digits",
            ),
        ] {
            let error = receive_from(with_trailer(&body, trailer), &dir).unwrap_err();
            assert_eq!(error.kind(), kind, "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("t.bin: ") && message.contains(says),
                "{message}"
            );
            assert!(entries(&dir).is_empty(), "{message}");
        }
        // The same message with the right trailer is kept.
        let good = format!("{{\"sha256\": \"{right}\"}}");
        let received = receive_from(with_trailer(&body, Some(good.as_bytes())), &dir).unwrap();
        assert_eq!(received.header.sha256, right);
        assert_eq!(entries(&dir), ["t.bin"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_checksum_must_be_in_one_place() {
        let dir = scratch_dir("checksum-place");
        let config = MessageConfig::default();
        let sha256 = "ab".repeat(32);
        for (header, trailer, says) in [
            (
                serde_json::json!({"name": "x", "sha256": sha256}),
                &["sha256"][..],
                "in its header and declares it in its trailer too",
            ),
            (serde_json::json!({"name": "x"}), &[][..], "has no \"sha256\""),
        ] {
            let mut wire = Vec::new();
            write_header(&mut wire, &header, 1, trailer, &config).unwrap();
            wire.push(b'x');
            let error = receive_from(wire, &dir).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(error.to_string().contains(says), "{error}");
        }
        assert!(entries(&dir).is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_stream_keeps_its_place_after_a_refused_trailer_form_file() {
        let dir = scratch_dir("refused-keeps-place");
        let (path, _) = source(&dir, 3 * CHUNK);
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        let mut wire = Vec::new();
        let config = MessageConfig::default();
        send_file(&mut wire, &path, "../escape.bin", &Map::new(), &config).unwrap();
        send_file(&mut wire, &path, "kept.bin", &Map::new(), &config).unwrap();
        let mut messages = MessageStream::new(Cursor::new(wire));
        let header = messages.read_header().unwrap().unwrap();
        let error = receive_file(&mut messages, &header, &out).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        // The refused body and its trailer are skipped.
        let header = messages.read_header().unwrap().unwrap();
        receive_file(&mut messages, &header, &out).unwrap();
        assert!(messages.read_header().unwrap().is_none());
        assert_eq!(entries(&out), ["kept.bin"]);
        fs::remove_dir_all(dir).unwrap();
    }

    /// Counts what goes through it, and in how many writes.
    struct Counting {
        bytes: u64,
        writes: usize,
    }

    impl Write for Counting {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.bytes += bytes.len() as u64;
            self.writes += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_byte_goes_through_the_callers_writer_in_large_writes() {
        // What a progress bar wrapped around the writer counts: the whole
        // message, the body in buffer-sized writes.
        let dir = scratch_dir("progress");
        let len = 6 * CHUNK + 100;
        let (path, _) = source(&dir, len);
        for (form, send) in SENDERS {
            let (wire, _) = wire_of(send, &path, "p.bin");
            let mut counting = Counting { bytes: 0, writes: 0 };
            let config = MessageConfig::default();
            if form == "trailer" {
                send_file(&mut counting, &path, "p.bin", &Map::new(), &config).unwrap();
            } else {
                send_file_checksum_first(&mut counting, &path, "p.bin", &Map::new(), &config).unwrap();
            }
            assert_eq!(counting.bytes, wire.len() as u64, "{form}");
            // The body in 7 writes, plus the frames (a prefix and a
            // payload each, or one write for a small one).
            assert!(counting.writes <= 7 + 4, "{form}: {} writes", counting.writes);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn escaping_names_are_refused_and_nothing_is_written() {
        let dir = scratch_dir("escape");
        let inner = dir.join("inner");
        fs::create_dir(&inner).unwrap();
        for name in ["../escaped.txt", "/tmp/absolute.txt"] {
            let mut wire = Vec::new();
            let header = serde_json::json!({
                "name": name,
                "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            });
            super::super::write_message_bytes(&mut wire, &header, b"abc", &MessageConfig::default()).unwrap();
            let mut messages = MessageStream::new(Cursor::new(wire));
            let header = messages.read_header().unwrap().unwrap();
            let error = receive_file(&mut messages, &header, &inner).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{name}");
        }
        assert!(entries(&inner).is_empty());
        assert_eq!(entries(&dir), ["inner"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_up_to_the_limit_fit_with_their_partial_file() {
        let dir = scratch_dir("long-names");
        let source = dir.join("source.bin");
        fs::write(&source, b"a long name").unwrap();
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        // 250 ASCII bytes, and 255 bytes of three-byte characters.
        for name in ["n".repeat(250), "名".repeat(85)] {
            let mut wire = Vec::new();
            send_file(&mut wire, &source, &name, &Map::new(), &MessageConfig::default()).unwrap();
            let mut messages = MessageStream::new(Cursor::new(wire));
            let header = messages.read_header().unwrap().unwrap();
            let received = receive_file(&mut messages, &header, &out).unwrap();
            assert_eq!(fs::read(&received.path).unwrap(), b"a long name");
            let partial = PartialFile::create(&out, &name).unwrap();
            let partial_name = partial.path().file_name().unwrap().to_str().unwrap();
            assert!(partial_name.len() <= NAME_MAX, "{}", partial_name.len());
            assert!(is_partial_file_name(partial_name), "{partial_name}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn direct_io_writes_aligned_buffers_and_falls_back_for_the_rest() {
        let dir = scratch_dir("direct");
        let mut partial = PartialFile::create(&dir, "direct.bin").unwrap();
        let direct = partial.use_direct_io();
        // Two aligned blocks from an aligned buffer, then an unaligned
        // tail, then more: the same bytes as through the page cache.
        let mut storage = vec![0u8; 3 * DIRECT_IO_ALIGN];
        let start = (DIRECT_IO_ALIGN - storage.as_ptr() as usize % DIRECT_IO_ALIGN) % DIRECT_IO_ALIGN;
        let block = &mut storage[start..start + 2 * DIRECT_IO_ALIGN];
        block
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 253) as u8);
        let block = block.to_vec();
        partial
            .write_all(&storage[start..start + 2 * DIRECT_IO_ALIGN])
            .unwrap();
        assert_eq!(
            partial.direct, direct,
            "an aligned write kept direct I/O as it was"
        );
        partial.write_all(b"tail").unwrap();
        assert!(!partial.direct, "an unaligned write turns direct I/O off");
        partial.write_all(b" and more").unwrap();
        let target = dir.join("direct.bin");
        partial.persist(&target).unwrap();
        let mut expected = block;
        expected.extend_from_slice(b"tail and more");
        assert!(fs::read(&target).unwrap() == expected);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn direct_io_reads_aligned_chunks_and_falls_back_for_the_tail() {
        let dir = scratch_dir("direct-read");
        let len = 3 * DIRECT_IO_ALIGN + 77;
        let (path, bytes) = source(&dir, len);
        let mut file = SourceFile::open(&path).unwrap();
        // Cached or not, ask for direct I/O, as for a file that is not.
        file.direct = crate::sys::set_direct_io(&file.file, true).is_ok();
        let was_direct = file.direct;
        let mut storage = vec![0u8; len + 2 * DIRECT_IO_ALIGN];
        let start = (DIRECT_IO_ALIGN - storage.as_ptr() as usize % DIRECT_IO_ALIGN) % DIRECT_IO_ALIGN;
        let window = &mut storage[start..start + 4 * DIRECT_IO_ALIGN];
        // An aligned read, then the rest in pieces that are not.
        let first = file.read(&mut window[..2 * DIRECT_IO_ALIGN]).unwrap();
        assert_eq!(first, 2 * DIRECT_IO_ALIGN);
        assert_eq!(file.direct, was_direct);
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        assert!(!file.direct);
        let mut read = window[..first].to_vec();
        read.extend_from_slice(&rest);
        assert!(read == bytes);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_partial_files_are_removed_and_live_ones_kept() {
        let dir = scratch_dir("stale");
        // Left by a process that died: its name, no lock.
        let stale = dir.join(".video.mp4.99999-3.socketserver-part");
        fs::write(&stale, b"half").unwrap();
        let finished = dir.join("video.mp4");
        fs::write(&finished, b"whole").unwrap();
        let mut live = PartialFile::create(&dir, "upload.bin").unwrap();
        live.write_all(b"in progress").unwrap();

        assert_eq!(remove_stale_partial_files(&dir).unwrap(), vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(finished.exists());
        assert!(live.path().exists(), "a partial file in use was removed");
        let live_path = live.path().to_owned();
        drop(live);
        assert!(!live_path.exists());
        assert_eq!(entries(&dir), ["video.mp4"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_name_of_the_partial_form_is_refused() {
        let dir = scratch_dir("partial-form");
        let mut wire = Vec::new();
        let header = serde_json::json!({
            "name": ".x.1-2.socketserver-part",
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        });
        super::super::write_message_bytes(&mut wire, &header, b"abc", &MessageConfig::default()).unwrap();
        let mut messages = MessageStream::new(Cursor::new(wire));
        let header = messages.read_header().unwrap().unwrap();
        let error = receive_file(&mut messages, &header, &dir).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert!(entries(&dir).is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
