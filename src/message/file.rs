//! Sending and receiving files as messages.
//!
//! A file travels as one message: a header with its `name`, its `size`
//! (the body length) and the `sha256` of its bytes (lowercase hex), then
//! the bytes. The receiver confines the name to its directory, writes the
//! body to a temporary file there (a [`PartialFile`]), and renames it to
//! the name only when the size and checksum match; on any failure nothing
//! is left behind. Both ends stream through a fixed buffer, so memory
//! stays flat whatever the file's size.
//!
//! A process killed in the middle of a transfer cannot remove its partial
//! file; [`remove_stale_partial_files`] finds and removes such leftovers
//! (a server calls it at start), and [`is_partial_file_name`] tells them
//! from finished files, so they are never listed or served.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Header, MessageConfig, MessageStream, write_message};

/// The buffer files are streamed through.
const CHUNK: usize = 64 * 1024;

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
    /// Reads the file fields of a received header; `InvalidData` if one is
    /// missing or malformed. The name is not checked here; see
    /// [`safe_file_name`].
    pub fn from_header(header: &Header) -> io::Result<FileHeader> {
        let sha256 = header.get_str("sha256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("\"sha256\" is not 64 hex digits: {sha256:?}"),
            ));
        }
        Ok(FileHeader {
            name: header.get_str("name")?.to_owned(),
            size: header.body_len(),
            sha256: sha256.to_ascii_lowercase(),
        })
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

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Sends the file at `path` as one message named `name`: first hashes it
/// (a read of the whole file), then sends the header (`extra`'s fields,
/// plus `name`, `size` and `sha256`) and streams the bytes. Returns what
/// the header said.
///
/// To show progress, wrap `writer` in a counting writer (indicatif's
/// `ProgressBar::wrap_write`, say); to show the hashing too, hash with
/// [`sha256_hex`] and send with [`send_file_contents`].
pub fn send_file<W: Write + ?Sized>(
    writer: &mut W,
    path: &Path,
    name: &str,
    extra: &Map<String, Value>,
    config: &MessageConfig,
) -> io::Result<FileHeader> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let (sha256, size) =
        sha256_hex(&mut BufReader::new(File::open(path).map_err(with_path)?)).map_err(with_path)?;
    let mut file = File::open(path).map_err(with_path)?;
    let header = FileHeader {
        name: name.to_owned(),
        size,
        sha256,
    };
    send_file_contents(writer, &mut file, &header, extra, config)?;
    Ok(header)
}

/// Sends a file whose name, size and SHA-256 are already known (from
/// [`sha256_hex`], say): the header (`extra`'s fields, plus `file`'s),
/// then `file.size` bytes streamed from `contents`. A `contents` that
/// ends early is an `UnexpectedEof` error.
pub fn send_file_contents<W: Write + ?Sized, R: Read + ?Sized>(
    writer: &mut W,
    contents: &mut R,
    file: &FileHeader,
    extra: &Map<String, Value>,
    config: &MessageConfig,
) -> io::Result<()> {
    let mut header = extra.clone();
    header.insert("name".into(), Value::from(file.name.as_str()));
    header.insert("sha256".into(), Value::from(file.sha256.as_str()));
    write_message(writer, &header, contents, file.size, config)
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
/// `messages`, into `dir`.
///
/// The name must be a plain name ([`safe_file_name`]); the bytes go to a
/// temporary file in `dir` and are hashed as they arrive; the temporary
/// file is renamed to the name (replacing a file of that name) only if
/// the SHA-256 matches. On a refused name, a checksum mismatch
/// (`InvalidData`), or a body cut short (`UnexpectedEof`), no file is left
/// behind. A refused name leaves the body unread; the next
/// `read_header` skips it. A name that [looks like a partial
/// file](is_partial_file_name) is refused too, so no finished file can be
/// taken for a leftover.
pub fn receive_file<T: BufRead>(
    messages: &mut MessageStream<T>,
    header: &Header,
    dir: &Path,
) -> io::Result<ReceivedFile> {
    let expected = FileHeader::from_header(header)?;
    let name = safe_file_name(&expected.name)?;
    if is_partial_file_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing file name {name:?}: it is the form of a partial file's name"),
        ));
    }
    let target = dir.join(name);
    let mut temporary = PartialFile::create(dir, name)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut body = messages.body();
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        temporary.write_all(&buffer[..n])?;
    }
    let actual = hex(&hasher.finalize());
    if actual != expected.sha256 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{name}: checksum mismatch (header says {}, the bytes hash to {actual}); discarded",
                expected.sha256
            ),
        ));
    }
    temporary.persist(&target)?;
    Ok(ReceivedFile {
        path: target,
        header: expected,
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
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
    }

    /// Where the partial file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file durable and moves it to `target`, replacing a file
    /// there.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        self.file
            .sync_all()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        fs::rename(&self.path, target)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", target.display())))?;
        self.kept = true;
        Ok(())
    }
}

impl Write for PartialFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
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
    let with_dir = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", dir.display()));
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(with_dir)? {
        let entry = entry.map_err(with_dir)?;
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
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
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

    #[test]
    fn a_file_round_trips() {
        let dir = scratch_dir("round-trip");
        let source = dir.join("source.bin");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        fs::write(&source, &bytes).unwrap();
        let mut wire = Vec::new();
        let sent = send_file(
            &mut wire,
            &source,
            "copy.bin",
            &Map::new(),
            &MessageConfig::default(),
        )
        .unwrap();
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        let mut messages = MessageStream::new(Cursor::new(wire));
        let header = messages.read_header().unwrap().unwrap();
        let received = receive_file(&mut messages, &header, &out).unwrap();
        assert_eq!(received.header, sent);
        assert_eq!(fs::read(&received.path).unwrap(), bytes);
        assert_eq!(entries(&out), ["copy.bin"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupted_or_cut_body_leaves_nothing() {
        let dir = scratch_dir("corrupt");
        let source = dir.join("source.bin");
        fs::write(&source, vec![7u8; 100_000]).unwrap();
        let mut wire = Vec::new();
        send_file(
            &mut wire,
            &source,
            "f.bin",
            &Map::new(),
            &MessageConfig::default(),
        )
        .unwrap();
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();

        let mut corrupted = wire.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 1;
        let mut messages = MessageStream::new(Cursor::new(corrupted));
        let header = messages.read_header().unwrap().unwrap();
        let error = receive_file(&mut messages, &header, &out).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        assert!(entries(&out).is_empty());

        let mut cut = wire;
        cut.truncate(cut.len() - 5_000);
        let mut messages = MessageStream::new(Cursor::new(cut));
        let header = messages.read_header().unwrap().unwrap();
        let error = receive_file(&mut messages, &header, &out).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(entries(&out).is_empty());
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
