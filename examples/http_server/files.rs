//! Static files from one directory (`--root DIR`), and nothing outside
//! it: a path with a `..` segment (written so, or percent-encoded as
//! `%2e%2e`) is refused (400), and so is a file a symbolic link makes
//! reachable from outside the directory (403). `/` and other directories
//! serve their `index.html`; without one a directory is 403 (no listing).
//! A directory asked for without its trailing slash is redirected to it.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The directory files are served from.
#[derive(Debug)]
pub struct Root {
    /// Canonical: symbolic links resolved.
    dir: PathBuf,
}

/// What a path found.
#[derive(Debug)]
pub enum Found {
    /// A regular file, opened.
    File(Served),
    /// A directory asked for without its trailing slash: where it is.
    Redirect(String),
}

/// An open file and what its response says of it.
#[derive(Debug)]
pub struct Served {
    pub file: File,
    pub len: u64,
    /// Whole seconds since the epoch (HTTP dates have no more).
    pub modified: u64,
    pub content_type: &'static str,
}

impl Root {
    /// Serves the files in `dir`, which must be a directory.
    pub fn new(dir: &Path) -> io::Result<Root> {
        let canonical = dir
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("--root {}: {e}", dir.display())))?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--root {}: not a directory", dir.display()),
            ));
        }
        Ok(Root { dir: canonical })
    }

    /// The directory, its links resolved.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file at `path` (a request target's path, percent-encoded, no
    /// query), or the status that refuses it: 400 for a path that climbs
    /// out, 403 for what may not be served, 404 for what is not there.
    pub fn find(&self, path: &str, query: Option<&str>) -> Result<Found, u16> {
        let decoded = percent_decode(path.as_bytes()).ok_or(400u16)?;
        let mut file = self.dir.clone();
        for segment in decoded.split(|&b| b == b'/') {
            match segment {
                b"" | b"." => {}
                b".." => return Err(400),
                _ => file.push(OsStr::from_bytes(segment)),
            }
        }
        let file = self.inside(&file)?;
        if file.is_dir() {
            if !path.ends_with('/') {
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                return Ok(Found::Redirect(format!("{path}/{query}")));
            }
            // No index: no listing either.
            let index = self.inside(&file.join("index.html")).map_err(|_| 403u16)?;
            return open(&index).map(Found::File);
        }
        open(&file).map(Found::File)
    }

    /// `path` with its symbolic links resolved, if it exists and is inside
    /// the root.
    fn inside(&self, path: &Path) -> Result<PathBuf, u16> {
        let canonical = path.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => 403u16,
            _ => 404,
        })?;
        match canonical.starts_with(&self.dir) {
            true => Ok(canonical),
            false => Err(403),
        }
    }
}

/// Opens a regular file (never waiting on a FIFO, never following a link
/// swapped in since it was resolved).
fn open(path: &Path) -> Result<Served, u16> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => 404u16,
            _ => 403,
        })?;
    let meta = file.metadata().map_err(|_| 403u16)?;
    if !meta.is_file() {
        return Err(403);
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(Served {
        file,
        len: meta.len(),
        modified,
        content_type: content_type(path),
    })
}

/// Percent-decodes a path; `None` for a broken escape or a NUL.
fn percent_decode(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let byte = match path[i] {
            b'%' => {
                let hex = path.get(i + 1..i + 3)?;
                let text = std::str::from_utf8(hex).ok()?;
                i += 2;
                u8::from_str_radix(text, 16).ok()?
            }
            byte => byte,
        };
        if byte == 0 {
            return None;
        }
        out.push(byte);
        i += 1;
    }
    Some(out)
}

/// The `Content-Type` of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "csv" => "text/csv; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The whole body: no range, several ranges, or one that cannot be
    /// read (all of which a server may answer with the whole).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header (`bytes=0-99`, `bytes=100-`, `bytes=-100`).
pub fn range(value: &[u8], len: u64) -> Range {
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case(b"bytes="))
        .map(|_| &value[6..])
    else {
        return Range::Whole;
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return Range::Whole;
    };
    let spec = spec.trim();
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        match !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            true => text.parse().ok(),
            false => None,
        }
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), number(first), number(last)) {
        // The last `n` bytes.
        (true, _, Some(0)) => Range::Unsatisfiable,
        (true, _, Some(_)) if len == 0 => Range::Unsatisfiable,
        (true, _, Some(n)) => Range::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        },
        (false, Some(start), _) if start >= len => Range::Unsatisfiable,
        (false, Some(start), None) if last.is_empty() => Range::Part { start, end: len - 1 },
        (false, Some(start), Some(end)) if end >= start => Range::Part {
            start,
            end: end.min(len - 1),
        },
        _ => Range::Whole,
    }
}

/// An HTTP date as whole seconds since the epoch.
pub fn http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Seconds since the epoch as an HTTP date (`Last-Modified`).
pub fn format_date(seconds: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_the_rfc_reads_them() {
        assert_eq!(range(b"bytes=0-99", 1000), Range::Part { start: 0, end: 99 });
        assert_eq!(range(b"bytes=900-", 1000), Range::Part { start: 900, end: 999 });
        assert_eq!(range(b"bytes=-100", 1000), Range::Part { start: 900, end: 999 });
        assert_eq!(range(b"bytes=-5000", 1000), Range::Part { start: 0, end: 999 });
        assert_eq!(
            range(b"bytes=990-5000", 1000),
            Range::Part { start: 990, end: 999 }
        );
        assert_eq!(range(b"bytes=1000-", 1000), Range::Unsatisfiable);
        assert_eq!(range(b"bytes=-0", 1000), Range::Unsatisfiable);
        assert_eq!(range(b"bytes=0-", 0), Range::Unsatisfiable);
        assert_eq!(
            range(b"bytes=0-1,5-6", 1000),
            Range::Whole,
            "several ranges: the whole"
        );
        assert_eq!(range(b"bytes=5-1", 1000), Range::Whole);
        assert_eq!(range(b"items=0-1", 1000), Range::Whole);
        assert_eq!(range(b"bytes=a-b", 1000), Range::Whole);
    }

    #[test]
    fn paths_never_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("site");
        std::fs::create_dir_all(root_dir.join("sub")).unwrap();
        std::fs::write(root_dir.join("index.html"), "home").unwrap();
        std::fs::write(root_dir.join("sub/a b.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root_dir.join("link")).unwrap();
        let root = Root::new(&root_dir).unwrap();
        let status = |path: &str| match root.find(path, None) {
            Ok(Found::File(_)) => 200,
            Ok(Found::Redirect(_)) => 301,
            Err(status) => status,
        };
        assert_eq!(status("/"), 200);
        assert_eq!(status("/sub/a%20b.txt"), 200);
        assert_eq!(status("/sub"), 301);
        assert_eq!(status("/sub/"), 403, "no index, no listing");
        assert_eq!(status("/../secret"), 400);
        assert_eq!(status("/sub/../../secret"), 400);
        assert_eq!(status("/%2e%2e/secret"), 400);
        assert_eq!(status("/%2E%2e%2fsecret"), 400);
        assert_eq!(status("/link"), 403, "a link to outside");
        assert_eq!(status("/nope"), 404);
        assert_eq!(status("/a%00b"), 400);
        assert_eq!(status("/a%zz"), 400);
        match root.find("/sub", Some("x=1")) {
            Ok(Found::Redirect(to)) => assert_eq!(to, "/sub/?x=1"),
            other => panic!("{other:?}"),
        }
    }
}
