//! Writing responses into the buffer that collects a batch of them (sent
//! in one write): the status line, the headers every response has
//! (`Server`, `Date`, `Content-Length`, and `Connection` when it is to
//! say something), the rest as given.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The `Date` header's value, made once a second per thread.
fn with_date<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            *cached = second;
            *text = httpdate::fmt_http_date(now);
        }
        f(text.as_bytes())
    })
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What the `Connection` header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Nothing: HTTP/1.1 keeps the connection.
    Default,
    /// `keep-alive`: an HTTP/1.0 client asked to keep it.
    KeepAlive,
    /// `close`: the server closes it after this response.
    Close,
}

impl Connection {
    /// What to say to a client of HTTP/1.`minor` about a connection that
    /// is kept (`keep_alive`) or not.
    pub fn for_request(minor: u8, keep_alive: bool) -> Self {
        match (keep_alive, minor) {
            (false, _) => Connection::Close,
            (true, 0) => Connection::KeepAlive,
            (true, _) => Connection::Default,
        }
    }
}

/// A response's head, written with [`write`](Self::write).
pub struct Head<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub content_length: u64,
    pub connection: Connection,
    /// More header lines, each `Name: value`.
    pub extra: &'a [(&'a str, &'a [u8])],
}

impl Head<'_> {
    /// Appends the head to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        decimal(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nServer: socketserver\r\nDate: ");
        with_date(|date| out.extend_from_slice(date));
        if let Some(content_type) = self.content_type {
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(content_type.as_bytes());
        }
        // A 304 has no body and says nothing of its length.
        if self.status != 304 {
            out.extend_from_slice(b"\r\nContent-Length: ");
            decimal(out, self.content_length);
        }
        for (name, value) in self.extra {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
        }
        match self.connection {
            Connection::Default => {}
            Connection::KeepAlive => out.extend_from_slice(b"\r\nConnection: keep-alive"),
            Connection::Close => out.extend_from_slice(b"\r\nConnection: close"),
        }
        out.extend_from_slice(b"\r\n\r\n");
    }
}

/// A short text response: `STATUS REASON` and a line break as its body
/// (none for HEAD). The body bytes written.
pub fn text(
    out: &mut Vec<u8>,
    status: u16,
    connection: Connection,
    head_only: bool,
    extra: &[(&str, &[u8])],
) -> u64 {
    let body = format!("{status} {}\n", reason(status));
    Head {
        status,
        content_type: Some("text/plain; charset=utf-8"),
        content_length: body.len() as u64,
        connection,
        extra,
    }
    .write(out);
    if head_only {
        return 0;
    }
    out.extend_from_slice(body.as_bytes());
    body.len() as u64
}

/// `100 Continue`: the client may send the body it holds back.
pub fn continue_100(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_has_what_every_response_needs() {
        let mut out = Vec::new();
        Head {
            status: 200,
            content_type: Some("text/plain"),
            content_length: 13,
            connection: Connection::for_request(0, true),
            extra: &[("Accept-Ranges", b"bytes")],
        }
        .write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nServer: socketserver\r\nDate: "),
            "{text}"
        );
        assert!(text.ends_with(
            "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nAccept-Ranges: bytes\r\nConnection: keep-alive\r\n\r\n"
        ));
        let date = text.split("Date: ").nth(1).unwrap().split("\r\n").next().unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }

    #[test]
    fn text_responses_and_head_requests() {
        let mut out = Vec::new();
        text(&mut out, 404, Connection::Default, false, &[]);
        assert!(String::from_utf8_lossy(&out).ends_with("Content-Length: 14\r\n\r\n404 Not Found\n"));
        out.clear();
        text(&mut out, 404, Connection::Close, true, &[]);
        assert!(String::from_utf8_lossy(&out).ends_with("Connection: close\r\n\r\n"));
    }
}
