//! Reading HTTP/1.1 requests from the bytes a connection has read ahead:
//! the head, parsed by `httparse` without copying, what frames the body
//! (none, `Content-Length`, `Transfer-Encoding: chunked`), and a chunked
//! body, decoded as its bytes arrive in whatever pieces.
//!
//! A head that is wrong gets the status a careful server answers with
//! ([`Refusal`]), and the connection is closed after it: once framing is in
//! doubt nothing after it can be trusted. Two framings at once
//! (`Content-Length` and `Transfer-Encoding`, the shape of request
//! smuggling) are refused, as are transfer codings other than `chunked`.
//! Limits bound everything a client can make the server hold: the head,
//! the request target, the header count, a chunk line, the trailers, the
//! body.
//!
//! Self-contained (httparse and std only): the fuzz target `http_request`
//! includes it.

/// The most header lines a head may have (more is 431).
pub const MAX_HEADERS: usize = 64;

/// The longest chunk-size line (size and extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// The most bytes of trailer fields after a chunked body.
const MAX_TRAILERS: usize = 16 * 1024;

/// What a request may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of a head: request line and headers (431 beyond).
    pub max_head: usize,
    /// The longest request target (414 beyond).
    pub max_uri: usize,
    /// The longest body (413 beyond).
    pub max_body: u64,
}

/// The methods the server tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    /// Any other (a valid token: `PUT`, `DELETE`, `OPTIONS`, ...).
    Other,
}

/// How the body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    /// `Content-Length`, more than zero.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request's head, borrowed from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: Method,
    /// The method as sent.
    pub method_name: &'a str,
    /// The request target as sent (`/path?query`, or an absolute URL).
    pub target: &'a str,
    /// The `1.x` of `HTTP/1.x`.
    pub minor: u8,
    /// Whether the connection stays open after the response: HTTP/1.1
    /// unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    pub body: Body,
    /// `Expect: 100-continue` (HTTP/1.1): the client waits for a `100
    /// Continue` before it sends the body.
    pub expect_continue: bool,
    pub range: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

/// What [`parse_head`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole head, this many bytes long.
    Complete(Head<'a>, usize),
    /// Not all of it yet.
    Partial,
}

/// Why a request is refused, with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400, and why.
    BadRequest(&'static str),
    /// 413.
    PayloadTooLarge,
    /// 414.
    UriTooLong,
    /// 431.
    HeadersTooLarge,
    /// 417: an `Expect` other than `100-continue`.
    ExpectationFailed,
    /// 501, and what is not implemented.
    NotImplemented(&'static str),
    /// 505.
    VersionNotSupported,
}

impl Refusal {
    /// The response's status code.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::PayloadTooLarge => 413,
            Refusal::UriTooLong => 414,
            Refusal::HeadersTooLarge => 431,
            Refusal::ExpectationFailed => 417,
            Refusal::NotImplemented(_) => 501,
            Refusal::VersionNotSupported => 505,
        }
    }

    /// What was wrong, for the log.
    pub fn why(self) -> &'static str {
        match self {
            Refusal::BadRequest(why) | Refusal::NotImplemented(why) => why,
            Refusal::PayloadTooLarge => "the body is larger than --max-body",
            Refusal::UriTooLong => "the request target is longer than --max-uri",
            Refusal::HeadersTooLarge => "the head is larger than --max-head or has too many header lines",
            Refusal::ExpectationFailed => "an Expect other than 100-continue",
            Refusal::VersionNotSupported => "an HTTP version other than 1.0 and 1.1",
        }
    }
}

/// Room for the method and the version around a target of the longest
/// length, in a request line.
const REQUEST_LINE_SLACK: usize = 64;

/// Parses the head at the front of `buf`.
pub fn parse_head<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return partial(buf, limits),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(version_refusal(buf)),
        Err(error) => return Err(Refusal::BadRequest(malformed(error))),
    };
    if len > limits.max_head {
        return Err(Refusal::HeadersTooLarge);
    }
    let (Some(method_name), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(Refusal::BadRequest("an incomplete request line"));
    };
    if target.len() > limits.max_uri {
        return Err(Refusal::UriTooLong);
    }
    let mut fields = Fields::default();
    for header in request.headers.iter() {
        fields.read(header.name, trim(header.value), minor)?;
    }
    let head = fields.into_head(method_name, target, minor, limits)?;
    Ok(Parsed::Complete(head, len))
}

/// An incomplete head: fine while it is within the limits.
fn partial<'a>(buf: &[u8], limits: &Limits) -> Result<Parsed<'a>, Refusal> {
    let line = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    if line > limits.max_uri + REQUEST_LINE_SLACK {
        return Err(Refusal::UriTooLong);
    }
    if buf.len() > limits.max_head {
        return Err(Refusal::HeadersTooLarge);
    }
    Ok(Parsed::Partial)
}

/// httparse's complaint about a version: 505 for a well-formed
/// `HTTP/x.y` it does not speak, 400 for anything else.
fn version_refusal(buf: &[u8]) -> Refusal {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Refusal::VersionNotSupported
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() => Refusal::VersionNotSupported,
        _ => Refusal::BadRequest("a malformed request line"),
    }
}

fn malformed(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "an invalid header name",
        httparse::Error::HeaderValue => "an invalid header value",
        httparse::Error::NewLine => "an invalid line ending",
        httparse::Error::Token => "an invalid token in the request line",
        _ => "a malformed request",
    }
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// The header fields that matter here, as they are read.
#[derive(Default)]
struct Fields<'a> {
    content_length: Option<u64>,
    chunked: bool,
    transfer_encoding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    hosts: usize,
    range: Option<&'a [u8]>,
    if_modified_since: Option<&'a [u8]>,
    if_range: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn read(&mut self, name: &str, value: &'a [u8], minor: u8) -> Result<(), Refusal> {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        if is("content-length") {
            let length = content_length(value)?;
            if self.content_length.is_some_and(|seen| seen != length) {
                return Err(Refusal::BadRequest("two different Content-Length headers"));
            }
            self.content_length = Some(length);
        } else if is("transfer-encoding") {
            // Only `chunked`, alone, once: anything else could be read two
            // ways by two servers on the way.
            if self.transfer_encoding || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(Refusal::NotImplemented("a transfer coding other than chunked"));
            }
            self.transfer_encoding = true;
            self.chunked = true;
        } else if is("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("expect") && minor == 1 {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(Refusal::ExpectationFailed);
            }
            self.expect_continue = true;
        } else if is("host") {
            self.hosts += 1;
        } else if is("range") {
            self.range.get_or_insert(value);
        } else if is("if-modified-since") {
            self.if_modified_since.get_or_insert(value);
        } else if is("if-range") {
            self.if_range.get_or_insert(value);
        }
        Ok(())
    }

    fn into_head(
        self,
        method_name: &'a str,
        target: &'a str,
        minor: u8,
        limits: &Limits,
    ) -> Result<Head<'a>, Refusal> {
        if self.hosts > 1 || (minor == 1 && self.hosts == 0) {
            return Err(Refusal::BadRequest("an HTTP/1.1 request needs one Host header"));
        }
        if self.transfer_encoding && self.content_length.is_some() {
            return Err(Refusal::BadRequest(
                "both Content-Length and Transfer-Encoding (the shape of request smuggling)",
            ));
        }
        if self.transfer_encoding && minor == 0 {
            return Err(Refusal::BadRequest("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let body = match (self.chunked, self.content_length) {
            (true, _) => Body::Chunked,
            (false, Some(length)) if length > limits.max_body => return Err(Refusal::PayloadTooLarge),
            (false, Some(length)) if length > 0 => Body::Length(length),
            _ => Body::None,
        };
        let method = match method_name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            _ => Method::Other,
        };
        Ok(Head {
            method,
            method_name,
            target,
            minor,
            keep_alive: match minor {
                1 => !self.close,
                _ => self.keep_alive && !self.close,
            },
            body,
            expect_continue: self.expect_continue && body != Body::None,
            range: self.range,
            if_modified_since: self.if_modified_since,
            if_range: self.if_range,
        })
    }
}

/// A `Content-Length` value: decimal digits only, as the RFC has it (no
/// sign, no list, no space inside).
fn content_length(value: &[u8]) -> Result<u64, Refusal> {
    let bad = Refusal::BadRequest("an invalid Content-Length");
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    value
        .iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or(bad)
}

/// Why a chunked body is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// Not the chunked coding: 400, and why.
    Malformed(&'static str),
    /// Longer than the limit: 413.
    TooLarge,
}

/// Where the decoder is in a chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In the hex size of a chunk.
    Size {
        value: u64,
        digits: u8,
    },
    /// In a chunk extension, skipped, after the chunk's size.
    Extension {
        size: u64,
    },
    /// After the size line's `\r`.
    SizeLf {
        size: u64,
    },
    /// In a chunk's data, this many bytes to go.
    Data(u64),
    /// After a chunk's data: its `\r`, then its `\n`.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty one).
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// After a trailer line's `\r`.
    TrailerLf,
    /// After the final empty line's `\r`.
    FinalLf,
    Done,
}

/// Reads a chunked body as it arrives, in any pieces, counting its data
/// (the server has no use for the bytes themselves) and holding nothing.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the size line or trailer line so far.
    line: usize,
    trailers: usize,
    total: u64,
    max: u64,
}

impl ChunkedDecoder {
    /// A decoder for a body of at most `max` data bytes.
    pub fn new(max: u64) -> Self {
        ChunkedDecoder {
            state: State::Size { value: 0, digits: 0 },
            line: 0,
            trailers: 0,
            total: 0,
            max,
        }
    }

    /// The data bytes decoded so far.
    pub fn body_bytes(&self) -> u64 {
        self.total
    }

    /// Reads what it can of `input`: how many bytes it took, and whether
    /// the body ended there (the bytes after it are the next request's).
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        use ChunkError::Malformed;
        let mut at = 0;
        while at < input.len() {
            if let State::Data(left) = self.state {
                let take = left.min((input.len() - at) as u64);
                at += take as usize;
                self.state = match left - take {
                    0 => State::DataCr,
                    left => State::Data(left),
                };
                continue;
            }
            let byte = input[at];
            at += 1;
            self.state = match self.state {
                State::Size { value, digits } => {
                    self.line += 1;
                    match byte {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            if digits == 16 {
                                return Err(Malformed("a chunk size too large"));
                            }
                            let digit = (byte as char).to_digit(16).unwrap_or(0);
                            State::Size {
                                value: value << 4 | u64::from(digit),
                                digits: digits + 1,
                            }
                        }
                        _ if digits == 0 => return Err(Malformed("a chunk without its size")),
                        b'\r' => State::SizeLf { size: value },
                        b';' | b' ' | b'\t' => State::Extension { size: value },
                        _ => return Err(Malformed("an invalid chunk size")),
                    }
                }
                State::Extension { size } => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE {
                        return Err(Malformed("a chunk extension too long"));
                    }
                    match byte {
                        b'\r' => State::SizeLf { size },
                        b'\n' => return Err(Malformed("a bare LF in a chunk line")),
                        _ => State::Extension { size },
                    }
                }
                State::SizeLf { size } => {
                    if byte != b'\n' {
                        return Err(Malformed("a chunk size line not ended by CRLF"));
                    }
                    self.line = 0;
                    if size == 0 {
                        State::TrailerStart
                    } else {
                        self.total = self.total.checked_add(size).ok_or(ChunkError::TooLarge)?;
                        if self.total > self.max {
                            return Err(ChunkError::TooLarge);
                        }
                        State::Data(size)
                    }
                }
                State::Data(_) => unreachable!("data is skipped above"),
                State::DataCr if byte == b'\r' => State::DataLf,
                State::DataLf if byte == b'\n' => State::Size { value: 0, digits: 0 },
                State::DataCr | State::DataLf => return Err(Malformed("chunk data not followed by CRLF")),
                State::TrailerStart if byte == b'\r' => State::FinalLf,
                State::TrailerStart | State::Trailer => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(Malformed("trailer fields too large"));
                    }
                    match byte {
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err(Malformed("a bare LF in the trailers")),
                        _ => State::Trailer,
                    }
                }
                State::TrailerLf if byte == b'\n' => State::TrailerStart,
                State::FinalLf if byte == b'\n' => {
                    self.state = State::Done;
                    return Ok((at, true));
                }
                State::TrailerLf | State::FinalLf => {
                    return Err(Malformed("a trailer line not ended by CRLF"));
                }
                State::Done => return Ok((at - 1, true)),
            };
        }
        Ok((at, self.state == State::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_uri: 256,
        max_body: 1000,
    };

    fn head(text: &str) -> Result<Parsed<'_>, Refusal> {
        parse_head(text.as_bytes(), &LIMITS)
    }

    fn complete(text: &str) -> Head<'_> {
        match head(text) {
            Ok(Parsed::Complete(head, len)) => {
                assert_eq!(len, text.len());
                head
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn heads_and_their_framing() {
        let get = complete("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            (get.method, get.target, get.minor, get.keep_alive),
            (Method::Get, "/a?b", 1, true)
        );
        assert_eq!(get.body, Body::None);
        let post = complete("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
        assert_eq!((post.body, post.keep_alive), (Body::Length(5), false));
        let chunked = complete(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n",
        );
        assert_eq!((chunked.body, chunked.expect_continue), (Body::Chunked, true));
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert_eq!(
            complete("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").body,
            Body::None
        );
        assert_eq!(head("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(Parsed::Partial));
    }

    #[test]
    fn malformed_heads_get_their_status() {
        let status = |text: &str| head(text).map(|_| 0).unwrap_or_else(Refusal::status);
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status("GET / FTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"), 417);
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
        assert_eq!(status(&long), 414);
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")), 431);
    }

    #[test]
    fn both_framings_at_once_is_refused() {
        let smuggled =
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(head(smuggled), Err(Refusal::BadRequest(why)) if why.contains("smuggling")));
        let twice =
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(head(twice).unwrap_err().status(), 501);
    }

    #[test]
    fn incomplete_heads_are_bounded() {
        let line = format!("GET /{}", "a".repeat(400));
        assert_eq!(head(&line), Err(Refusal::UriTooLong));
        let headers = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(1100));
        assert_eq!(head(&headers), Err(Refusal::HeadersTooLarge));
    }

    /// Decodes `body` fed in pieces of `step` bytes: the data bytes and
    /// how many bytes of `body` the body took.
    fn decode(body: &[u8], step: usize) -> Result<(u64, usize), ChunkError> {
        let mut decoder = ChunkedDecoder::new(1000);
        let mut at = 0;
        while at < body.len() {
            let end = (at + step).min(body.len());
            let (used, done) = decoder.decode(&body[at..end])?;
            at += used;
            if done {
                return Ok((decoder.body_bytes(), at));
            }
            assert_eq!(used, end - (at - used), "a piece is taken whole until the end");
        }
        Err(ChunkError::Malformed("unfinished"))
    }

    #[test]
    fn chunked_bodies_in_any_pieces() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET /next";
        for step in 1..body.len() {
            assert_eq!(decode(body, step), Ok((11, body.len() - 9)), "pieces of {step}");
        }
        assert_eq!(decode(b"0\r\n\r\n", 100), Ok((0, 5)));
        assert_eq!(decode(b"A\r\n0123456789\r\n0\r\n\r\n", 3), Ok((10, 20)));
    }

    #[test]
    fn malformed_or_large_chunked_bodies_are_refused() {
        assert!(matches!(decode(b"x\r\n", 10), Err(ChunkError::Malformed(_))));
        assert!(matches!(decode(b"\r\n", 10), Err(ChunkError::Malformed(_))));
        assert!(matches!(
            decode(b"5\nhello\r\n0\r\n\r\n", 10),
            Err(ChunkError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"5\r\nhelloXY0\r\n\r\n", 10),
            Err(ChunkError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"11111111111111111\r\n", 30),
            Err(ChunkError::Malformed(_))
        ));
        assert_eq!(decode(b"3E9\r\n", 30), Err(ChunkError::TooLarge));
        assert_eq!(decode(b"FFFFFFFFFFFFFFFF\r\n", 30), Err(ChunkError::TooLarge));
        let ext = format!("1;{}\r\n", "e".repeat(5000));
        assert!(matches!(
            decode(ext.as_bytes(), 64),
            Err(ChunkError::Malformed(_))
        ));
    }
}
