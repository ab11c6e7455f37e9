//! Reading HTTP/1.1 responses in a test, from a connection a test writes
//! requests to byte by byte as it likes.

use std::io::{self, BufRead};

/// One response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (the first, if several).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads the next response: its head, then the body its
/// `Content-Length` says (none for a `HEAD` request, a 1xx, 204 or 304).
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> io::Result<Response> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    let head =
        String::from_utf8(head).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "head not text"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line in {head:?}")))?;
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    let no_body = head_only || status < 200 || status == 204 || status == 304;
    if !no_body {
        let len: usize = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"))?;
        response.body = vec![0; len];
        reader.read_exact(&mut response.body)?;
    }
    Ok(response)
}
