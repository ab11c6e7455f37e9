//! Sending and receiving files as messages.
//!
//! A file travels as one message: a header with its `name`, its `size`
//! (the body length) and the `sha256` of its bytes (lowercase hex), then
//! the bytes. The receiver confines the name to its directory, writes the
//! body to a temporary file there, and renames it to the name only when
//! the size and checksum match; on any failure nothing is left behind.
//! Both ends stream through a fixed buffer, so memory stays flat whatever
//! the file's size.

use std::fs::{self, File, OpenOptions};
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
/// `ProgressBar::wrap_write`, say).
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
    let mut header = extra.clone();
    header.insert("name".into(), Value::from(name));
    header.insert("sha256".into(), Value::from(sha256.clone()));
    write_message(writer, &header, &mut file, size, config)?;
    Ok(FileHeader {
        name: name.to_owned(),
        size,
        sha256,
    })
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
/// `read_header` skips it.
pub fn receive_file<T: BufRead>(
    messages: &mut MessageStream<T>,
    header: &Header,
    dir: &Path,
) -> io::Result<ReceivedFile> {
    let expected = FileHeader::from_header(header)?;
    let name = safe_file_name(&expected.name)?;
    let target = dir.join(name);
    let mut temporary = TemporaryFile::create(dir, name)?;
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
        temporary.file.write_all(&buffer[..n])?;
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
    temporary.keep_as(&target)?;
    Ok(ReceivedFile {
        path: target,
        header: expected,
    })
}

/// A file being written, deleted on drop unless kept.
struct TemporaryFile {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl TemporaryFile {
    /// Creates `.NAME.PID-N.part` in `dir`, never reusing an existing file.
    fn create(dir: &Path, name: &str) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TemporaryFile {
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

    /// Makes the file durable and moves it to `target`.
    fn keep_as(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, target)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", target.display())))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if !self.kept
            && let Err(e) = fs::remove_file(&self.path)
        {
            log::warn!("cannot remove partial file {}: {e}", self.path.display());
        }
    }
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
}
