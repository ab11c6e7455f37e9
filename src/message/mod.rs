//! Header + body messages: a framed JSON header, then a streamed body.
//!
//! The tutorials send a file by first sending a dictionary describing it
//! (its name, its size) as a length-prefixed JSON header, then the file's
//! bytes. This module is that protocol, hardened: the header is a JSON
//! object with a size limit of its own, its `"size"` field declares the
//! body's length, and the body is read as a bounded stream, so a 3 GB body
//! never sits in memory.
//!
//! ```text
//! [length prefix][{"size": N, ...header fields...}][N body bytes]
//! ```
//!
//! A header may also declare a *trailer*: a second framed JSON object
//! after the body, carrying fields the sender knows only once the body is
//! out (a checksum computed while sending, say). Its `"trailer"` field
//! lists the names the trailer will carry; the trailer is framed exactly
//! as the header is (same length prefix, same size limit):
//!
//! ```text
//! [prefix][{"size": N, "trailer": ["sha256"], ...}][N body bytes][prefix][{"sha256": "..."}]
//! ```
//!
//! A message without `"trailer"` is the plain form above, byte for byte,
//! so readers and writers that predate trailers keep working with it.
//!
//! ```
//! use socketserver::message::{MessageStream, write_message_bytes, MessageConfig};
//! use serde_json::json;
//! use std::io::{Cursor, Read};
//!
//! let mut wire = Vec::new();
//! let config = MessageConfig::default();
//! write_message_bytes(&mut wire, &json!({"op": "greet"}), b"hello", &config)?;
//!
//! let mut messages = MessageStream::new(Cursor::new(wire));
//! let header = messages.read_header()?.expect("a message");
//! assert_eq!(header.get("op"), Some(&json!("greet")));
//! assert_eq!(header.body_len(), 5);
//! let mut body = String::new();
//! messages.body().read_to_string(&mut body)?;
//! assert_eq!(body, "hello");
//! assert!(messages.read_header()?.is_none()); // a clean end
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! With a trailer:
//!
//! ```
//! use socketserver::message::{MessageConfig, MessageStream, write_header, write_trailer};
//! use serde_json::json;
//! use std::io::{Cursor, Read, Write};
//!
//! let config = MessageConfig::default();
//! let mut wire = Vec::new();
//! write_header(&mut wire, &json!({"op": "put"}), 5, &["count"], &config)?;
//! wire.write_all(b"hello")?;
//! write_trailer(&mut wire, &json!({"count": 1}), &config)?;
//!
//! let mut messages = MessageStream::new(Cursor::new(wire));
//! let header = messages.read_header()?.expect("a message");
//! assert_eq!(header.trailer_fields(), ["count"]);
//! let mut body = String::new();
//! messages.body().read_to_string(&mut body)?;
//! let trailer = messages.read_trailer()?;
//! assert_eq!(trailer.get("count"), Some(&json!(1)));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Requires the `message` feature.

pub mod file;
mod pipeline;

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::framing::{BufStream, FIRST_RESERVE, FrameConfig, Framed, LengthPrefix, write_frame};

/// The header field that declares the body's length in bytes.
pub const SIZE_FIELD: &str = "size";

/// The header field that declares a trailer: the list of the field names
/// the trailer after the body carries.
pub const TRAILER_FIELD: &str = "trailer";

/// The default maximum header length: 64 KiB.
pub const DEFAULT_MAX_HEADER_LEN: usize = 64 * 1024;

/// How a message's header is framed, and its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageConfig {
    /// The header's frame format; its maximum length is the header limit.
    pub header: FrameConfig,
}

impl Default for MessageConfig {
    fn default() -> Self {
        MessageConfig {
            header: FrameConfig::default().with_max_frame_len(DEFAULT_MAX_HEADER_LEN),
        }
    }
}

impl MessageConfig {
    /// The tutorials' format: the header length as `struct.pack('i')`.
    pub fn tutorial() -> Self {
        MessageConfig::default().with_prefix(LengthPrefix::I32Le)
    }

    /// This format with another length prefix for the header.
    pub fn with_prefix(mut self, prefix: LengthPrefix) -> Self {
        self.header.prefix = prefix;
        self
    }

    /// This format with another header size limit.
    pub fn with_max_header_len(mut self, max: usize) -> Self {
        self.header.max_frame_len = max;
        self
    }
}

/// A message's header: a JSON object whose `"size"` field is the length
/// of the body that follows.
#[derive(Clone, PartialEq)]
pub struct Header {
    fields: Map<String, Value>,
    body_len: u64,
    trailer: Vec<String>,
}

impl Header {
    /// Builds a header from any value that serializes to a JSON object.
    /// Its `"size"` field, if it has one, must be a non-negative integer,
    /// and its `"trailer"`, if it has one, a list of strings.
    pub fn from_value(value: &impl Serialize) -> io::Result<Header> {
        Header::from_fields(to_object(value, "header")?, io::ErrorKind::InvalidInput)
    }

    /// Parses a received header.
    fn parse(bytes: &[u8]) -> io::Result<Header> {
        Header::from_fields(parse_object(bytes, "header")?, io::ErrorKind::InvalidData)
    }

    fn from_fields(fields: Map<String, Value>, kind: io::ErrorKind) -> io::Result<Header> {
        let body_len = match fields.get(SIZE_FIELD) {
            None => 0,
            Some(size) => size.as_u64().ok_or_else(|| {
                io::Error::new(
                    kind,
                    format!("the header's \"size\" must be a non-negative integer, not {size}"),
                )
            })?,
        };
        let trailer = match fields.get(TRAILER_FIELD) {
            None => Vec::new(),
            Some(Value::Array(names)) if names.iter().all(Value::is_string) => names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect(),
            Some(other) => {
                return Err(io::Error::new(
                    kind,
                    format!("the header's \"trailer\" must be a list of field names, not {other}"),
                ));
            }
        };
        Ok(Header {
            fields,
            body_len,
            trailer,
        })
    }

    /// The body's length, from the `"size"` field (0 without one).
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The fields the trailer after the body will carry, from the
    /// `"trailer"` field; empty when the message has no trailer.
    pub fn trailer_fields(&self) -> &[String] {
        &self.trailer
    }

    /// True if a trailer follows the body: the header names at least one
    /// field for it. `"trailer": []` declares none, and no trailer is
    /// sent, as [`write_header`] writes it.
    pub fn has_trailer(&self) -> bool {
        !self.trailer.is_empty()
    }

    /// A field of the header.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// A field that must be a string: `InvalidData` if it is missing or
    /// is something else.
    pub fn get_str(&self, key: &str) -> io::Result<&str> {
        string_field(&self.fields, key, "header")
    }

    /// All the fields, `"size"` included.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The header as a typed value; `InvalidData` if it does not fit.
    pub fn to_typed<T: DeserializeOwned>(&self) -> io::Result<T> {
        serde_json::from_value(Value::Object(self.fields.clone())).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected message header: {e}"),
            )
        })
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.fields, f)
    }
}

/// The trailer of a message: the fields its header promised in
/// `"trailer"`, sent after the body.
#[derive(Clone, PartialEq)]
pub struct Trailer {
    fields: Map<String, Value>,
}

impl Trailer {
    /// A field of the trailer.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// A field that must be a string: `InvalidData` if it is missing or
    /// is something else.
    pub fn get_str(&self, key: &str) -> io::Result<&str> {
        string_field(&self.fields, key, "trailer")
    }

    /// All the fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl fmt::Debug for Trailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.fields, f)
    }
}

/// `key` of a header's or trailer's `fields`, which must be a string.
fn string_field<'a>(fields: &'a Map<String, Value>, key: &str, what: &str) -> io::Result<&'a str> {
    fields.get(key).and_then(Value::as_str).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the message {what} has no string field \"{key}\""),
        )
    })
}

/// A value to send as a header or trailer: it must serialize to an object.
fn to_object(value: &impl Serialize, what: &str) -> io::Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a message {what} must be a JSON object, not {}", kind_of(&other)),
        )),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
    }
}

/// A received header or trailer: it must be a JSON object.
fn parse_object(bytes: &[u8], what: &str) -> io::Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the message {what} is {}, not a JSON object", kind_of(&other)),
        )),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the message {what} is not JSON: {e}"),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Serializes `header` with its `"size"` set to `body_len`, and its
/// `"trailer"` to `trailer` (removed when that is empty).
fn header_bytes(header: &impl Serialize, body_len: u64, trailer: &[&str]) -> io::Result<Vec<u8>> {
    let mut fields = Header::from_value(header)?.fields;
    fields.insert(SIZE_FIELD.to_owned(), Value::from(body_len));
    if trailer.is_empty() {
        fields.remove(TRAILER_FIELD);
    } else {
        fields.insert(TRAILER_FIELD.to_owned(), Value::from(trailer));
    }
    serde_json::to_vec(&fields).map_err(io::Error::other)
}

/// Writes a message's header alone: `header` (any value that serializes
/// to a JSON object) with its `"size"` set to `body_len` and, unless
/// `trailer` is empty, its `"trailer"` set to `trailer`. The caller then
/// writes exactly `body_len` body bytes, and then, if it declared one,
/// the trailer with [`write_trailer`].
pub fn write_header<W: Write + ?Sized>(
    writer: &mut W,
    header: &impl Serialize,
    body_len: u64,
    trailer: &[&str],
    config: &MessageConfig,
) -> io::Result<()> {
    write_frame(writer, &header_bytes(header, body_len, trailer)?, &config.header)
}

/// Writes the trailer of a message whose header declared one (see
/// [`write_header`]): `trailer`, any value that serializes to a JSON
/// object, framed as headers are.
pub fn write_trailer<W: Write + ?Sized>(
    writer: &mut W,
    trailer: &impl Serialize,
    config: &MessageConfig,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(&to_object(trailer, "trailer")?).map_err(io::Error::other)?;
    write_frame(writer, &bytes, &config.header)
}

/// Writes a message: `header` (any value that serializes to a JSON
/// object; its `"size"` is set to `body_len`), then exactly `body_len`
/// bytes streamed from `body`. A body that ends early is an
/// `UnexpectedEof` error, and the stream is then unusable.
pub fn write_message<W: Write + ?Sized>(
    writer: &mut W,
    header: &impl Serialize,
    body: &mut (impl Read + ?Sized),
    body_len: u64,
    config: &MessageConfig,
) -> io::Result<()> {
    write_header(writer, header, body_len, &[], config)?;
    // Large bodies go in large writes: a buffer of up to 1 MiB, not
    // io::copy's 8 KiB.
    let mut buffer = vec![
        0u8;
        usize::try_from(body_len)
            .unwrap_or(usize::MAX)
            .min(pipeline::CHUNK)
    ];
    let mut copied = 0;
    while copied < body_len {
        let want = usize::try_from(body_len - copied)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let n = match body.read(&mut buffer[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the body ended after {copied} of {body_len} bytes"),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buffer[..n])?;
        copied += n as u64;
    }
    Ok(())
}

/// Writes a message whose body is in memory, with as few writes as the
/// header frame and body take (two).
pub fn write_message_bytes<W: Write + ?Sized>(
    writer: &mut W,
    header: &impl Serialize,
    body: &[u8],
    config: &MessageConfig,
) -> io::Result<()> {
    write_header(writer, header, body.len() as u64, &[], config)?;
    writer.write_all(body)
}

/// Reads and writes messages over a stream.
///
/// Reading is two-step: [`read_header`](Self::read_header), then the body
/// through [`body`](Self::body). A body not read to its end is skipped
/// by the next `read_header`, so the stream never loses its place.
/// Reading needs a stream that reads ahead (`BufRead`): a handler's
/// request does; a raw socket goes through
/// [`MessageStream::buffered`].
pub struct MessageStream<T> {
    framed: Framed<T>,
    config: MessageConfig,
    /// Bytes of the current body not read yet.
    remaining: u64,
    /// The fields the current message's trailer must carry, while it is
    /// still to be read.
    trailer_due: Option<Vec<String>>,
    /// The last header's bytes; kept to reuse its allocation.
    header_bytes: Vec<u8>,
}

impl<T> MessageStream<T> {
    /// Messages over `inner`, in the default format.
    pub fn new(inner: T) -> Self {
        MessageStream::with_config(inner, MessageConfig::default())
    }

    /// Messages over `inner`, in `config`'s format.
    pub fn with_config(inner: T, config: MessageConfig) -> Self {
        MessageStream {
            framed: Framed::with_config(inner, config.header),
            config,
            remaining: 0,
            trailer_due: None,
            header_bytes: Vec::new(),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &T {
        self.framed.get_ref()
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut T {
        self.framed.get_mut()
    }

    /// The underlying stream back, with whatever it has read ahead.
    pub fn into_inner(self) -> T {
        self.framed.into_inner()
    }
}

impl<S: Read> MessageStream<BufStream<S>> {
    /// Messages over a stream that does not read ahead itself (a
    /// `TcpStream`), in the default format, through a [`BufStream`].
    pub fn buffered(stream: S) -> Self {
        MessageStream::new(BufStream::new(stream))
    }
}

impl<T: BufRead> MessageStream<T> {
    /// Reads the next message's header, first skipping whatever is left
    /// of the previous message (its body, its trailer). `Ok(None)` at a
    /// clean end of stream. A header that is too long, not JSON, not an
    /// object, or with a bad `"size"` or `"trailer"` is an `InvalidData`
    /// error.
    pub fn read_header(&mut self) -> io::Result<Option<Header>> {
        if self.trailer_due.is_some() {
            self.read_trailer()?;
        } else {
            self.skip_body()?;
        }
        if !self.framed.read_frame_into(&mut self.header_bytes)? {
            return Ok(None);
        }
        let header = Header::parse(&self.header_bytes)?;
        self.remaining = header.body_len;
        self.trailer_due = header.has_trailer().then(|| header.trailer.clone());
        Ok(Some(header))
    }

    /// Reads the current message's trailer, first skipping whatever is
    /// left of its body. `InvalidInput` if the message has no trailer (or
    /// it was read already); `UnexpectedEof` if the stream ends before it;
    /// `InvalidData` if it is too long, not a JSON object, or lacks a
    /// field the header declared.
    pub fn read_trailer(&mut self) -> io::Result<Trailer> {
        let Some(declared) = self.trailer_due.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the message declared no trailer, or it was read already",
            ));
        };
        self.skip_body()?;
        if !self.framed.read_frame_into(&mut self.header_bytes)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended before the message's trailer",
            ));
        }
        let trailer = Trailer {
            fields: parse_object(&self.header_bytes, "trailer")?,
        };
        if let Some(missing) = declared.iter().find(|name| !trailer.fields.contains_key(*name)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the message trailer lacks the field \"{missing}\" its header declared"),
            ));
        }
        Ok(trailer)
    }

    /// Reads and drops what is left of the current body.
    fn skip_body(&mut self) -> io::Result<()> {
        if self.remaining > 0 {
            let skipped = io::copy(&mut self.body(), &mut io::sink())?;
            log::debug!("skipped {skipped} unread body bytes");
        }
        Ok(())
    }

    /// The current message's body: a reader of exactly the bytes the
    /// header declared. End-of-file before them is `UnexpectedEof`.
    pub fn body(&mut self) -> Body<'_, T> {
        Body { stream: self }
    }

    /// Reads the current body into memory, refusing (with `InvalidData`,
    /// before reading) one longer than `limit` bytes. Memory grows with
    /// the bytes that arrive, not with the size the header claims: a peer
    /// that claims 256 MiB and sends 10 bytes costs 64 KiB at most.
    pub fn read_body_to_vec(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        if self.remaining > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a message body of {} bytes exceeds the limit of {limit} bytes",
                    self.remaining
                ),
            ));
        }
        let mut body = Vec::with_capacity(self.remaining.min(FIRST_RESERVE as u64) as usize);
        self.body().read_to_end(&mut body)?;
        Ok(body)
    }
}

impl<T: Write> MessageStream<T> {
    /// Writes a message with a streamed body; see [`write_message`].
    pub fn write_message(
        &mut self,
        header: &impl Serialize,
        body: &mut impl Read,
        body_len: u64,
    ) -> io::Result<()> {
        write_message(self.framed.get_mut(), header, body, body_len, &self.config)
    }

    /// Writes a message with a body in memory.
    pub fn write_message_bytes(&mut self, header: &impl Serialize, body: &[u8]) -> io::Result<()> {
        write_message_bytes(self.framed.get_mut(), header, body, &self.config)
    }
}

impl<T> fmt::Debug for MessageStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageStream")
            .field("config", &self.config)
            .field("body_remaining", &self.remaining)
            .field("trailer_due", &self.trailer_due)
            .finish_non_exhaustive()
    }
}

/// The body of the message just read: exactly the bytes its header
/// declared.
pub struct Body<'a, T> {
    stream: &'a mut MessageStream<T>,
}

impl<T> Body<'_, T> {
    /// Bytes of the body not read yet.
    pub fn remaining(&self) -> u64 {
        self.stream.remaining
    }
}

impl<T: BufRead> Read for Body<'_, T> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let remaining = self.stream.remaining;
        if remaining == 0 || out.is_empty() {
            return Ok(0);
        }
        let want = out.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.stream.framed.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the stream ended with {remaining} body bytes still to come"),
            ));
        }
        self.stream.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::tests::ThenWaits;
    use serde_json::json;
    use std::io::Cursor;

    fn wire(messages: &[(Value, &[u8])]) -> Vec<u8> {
        let mut wire = Vec::new();
        for (header, body) in messages {
            write_message_bytes(&mut wire, header, body, &MessageConfig::default()).unwrap();
        }
        wire
    }

    #[test]
    fn an_unread_body_is_skipped() {
        let wire = wire(&[(json!({"n": 1}), b"first body"), (json!({"n": 2}), b"second")]);
        let mut messages = MessageStream::new(Cursor::new(wire));
        assert_eq!(messages.read_header().unwrap().unwrap().get("n"), Some(&json!(1)));
        let mut two = [0u8; 2];
        messages.body().read_exact(&mut two).unwrap();
        let second = messages.read_header().unwrap().unwrap();
        assert_eq!(second.get("n"), Some(&json!(2)));
        assert_eq!(messages.read_body_to_vec(100).unwrap(), b"second");
    }

    #[test]
    fn bad_headers_are_invalid_data() {
        let config = MessageConfig::default();
        for (frame, message) in [
            (&b""[..], "the message header is not JSON"),
            (b"not json", "the message header is not JSON"),
            (b"[1, 2]", "the message header is an array, not a JSON object"),
            (
                b"{\"size\": -1}",
                "the header's \"size\" must be a non-negative integer, not -1",
            ),
            (
                b"{\"size\": \"big\"}",
                "the header's \"size\" must be a non-negative integer",
            ),
        ] {
            let mut wire = Vec::new();
            write_frame(&mut wire, frame, &config.header).unwrap();
            // Decided on the frame alone: nothing is read past it.
            let error = MessageStream::buffered(ThenWaits(Cursor::new(wire)))
                .read_header()
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(error.to_string().starts_with(message), "{error}");
        }
    }

    #[test]
    fn a_message_with_an_empty_body_is_read_without_reading_on() {
        let wire = wire(&[(json!({"n": 1}), b"")]);
        let mut messages = MessageStream::buffered(ThenWaits(Cursor::new(wire)));
        assert_eq!(messages.read_header().unwrap().unwrap().get("n"), Some(&json!(1)));
        assert_eq!(messages.read_body_to_vec(100).unwrap(), b"");
    }

    #[test]
    fn a_long_header_is_refused() {
        let config = MessageConfig::default().with_max_header_len(16);
        let mut wire = Vec::new();
        write_message_bytes(
            &mut wire,
            &json!({"name": "a rather long name"}),
            b"",
            &MessageConfig::default(),
        )
        .unwrap();
        let error = MessageStream::with_config(Cursor::new(wire), config)
            .read_header()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_truncated_body_is_unexpected_eof() {
        let mut wire = wire(&[(json!({}), b"0123456789")]);
        wire.truncate(wire.len() - 3);
        let mut messages = MessageStream::new(Cursor::new(wire));
        messages.read_header().unwrap();
        let error = messages.read_body_to_vec(100).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_reading() {
        let wire = wire(&[(json!({}), b"0123456789")]);
        let mut messages = MessageStream::new(Cursor::new(wire));
        messages.read_header().unwrap();
        assert_eq!(
            messages.read_body_to_vec(5).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn headers_must_be_objects_when_written() {
        let error =
            write_message_bytes(&mut Vec::new(), &json!([1]), b"", &MessageConfig::default()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_short_streamed_body_is_an_error() {
        let error = write_message(
            &mut Vec::new(),
            &json!({}),
            &mut &b"abc"[..],
            10,
            &MessageConfig::default(),
        )
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_empty_trailer_list_declares_no_trailer() {
        // Sent by hand (write_header leaves the field out): the next
        // message must not be taken for this one's trailer.
        let config = MessageConfig::default();
        let mut wire = Vec::new();
        write_frame(&mut wire, br#"{"size": 4, "trailer": []}"#, &config.header).unwrap();
        wire.extend_from_slice(b"body");
        write_message_bytes(&mut wire, &json!({"n": 2}), b"next", &config).unwrap();
        let mut messages = MessageStream::new(Cursor::new(wire));
        let header = messages.read_header().unwrap().unwrap();
        assert!(!header.has_trailer());
        assert_eq!(messages.read_body_to_vec(100).unwrap(), b"body");
        let header = messages.read_header().unwrap().unwrap();
        assert_eq!(header.get("n"), Some(&json!(2)));
        assert_eq!(messages.read_body_to_vec(100).unwrap(), b"next");
    }

    /// A message of `body` with a trailer `{"n": n}` declared as `["n"]`.
    fn with_trailer(wire: &mut Vec<u8>, n: u64, body: &[u8]) {
        let config = MessageConfig::default();
        write_header(wire, &json!({"n": n}), body.len() as u64, &["n"], &config).unwrap();
        wire.extend_from_slice(body);
        write_trailer(wire, &json!({"n": n}), &config).unwrap();
    }

    #[test]
    fn trailers_round_trip_and_unread_ones_are_skipped() {
        let mut wire = Vec::new();
        with_trailer(&mut wire, 1, b"first body");
        with_trailer(&mut wire, 2, b"second");
        write_message_bytes(&mut wire, &json!({"n": 3}), b"plain", &MessageConfig::default()).unwrap();
        let mut messages = MessageStream::new(Cursor::new(wire));

        // Read whole: header, body, trailer.
        let header = messages.read_header().unwrap().unwrap();
        assert_eq!(header.trailer_fields(), ["n"]);
        assert_eq!(messages.read_body_to_vec(100).unwrap(), b"first body");
        assert_eq!(messages.read_trailer().unwrap().get("n"), Some(&json!(1)));
        let again = messages.read_trailer().unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::InvalidInput);

        // Left unread: the next header is still found.
        let header = messages.read_header().unwrap().unwrap();
        assert_eq!(header.get("n"), Some(&json!(2)));
        let header = messages.read_header().unwrap().unwrap();
        assert_eq!(header.get("n"), Some(&json!(3)));
        assert!(!header.has_trailer());
        assert_eq!(
            messages.read_trailer().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(messages.read_header().unwrap().is_none());
    }

    #[test]
    fn a_trailer_skips_what_is_left_of_its_body() {
        let mut wire = Vec::new();
        with_trailer(&mut wire, 7, b"0123456789");
        let mut messages = MessageStream::new(Cursor::new(wire));
        messages.read_header().unwrap();
        let mut two = [0u8; 2];
        messages.body().read_exact(&mut two).unwrap();
        assert_eq!(
            messages.read_trailer().unwrap().get_str("n").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(messages.read_header().unwrap().is_none());
    }

    #[test]
    fn missing_and_bad_trailers_are_errors() {
        let config = MessageConfig::default();
        let header_only = |trailer: &[&str]| {
            let mut wire = Vec::new();
            write_header(&mut wire, &json!({}), 3, trailer, &config).unwrap();
            wire.extend_from_slice(b"abc");
            wire
        };
        let read = |wire: Vec<u8>| {
            let mut messages = MessageStream::new(Cursor::new(wire));
            messages.read_header().unwrap().unwrap();
            messages.read_trailer()
        };
        // The stream ends where the trailer should be.
        let error = read(header_only(&["sha256"])).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        // Not JSON, not an object, a declared field missing.
        for (frame, says) in [
            (&b"{nope"[..], "the message trailer is not JSON"),
            (b"\"text\"", "the message trailer is a string, not a JSON object"),
            (
                b"{\"other\": 1}",
                "lacks the field \"sha256\" its header declared",
            ),
        ] {
            let mut wire = header_only(&["sha256"]);
            write_frame(&mut wire, frame, &config.header).unwrap();
            let error = read(wire).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(error.to_string().contains(says), "{error}");
        }
        // A trailer over the header limit.
        let mut wire = header_only(&["sha256"]);
        let long = json!({"sha256": "x".repeat(DEFAULT_MAX_HEADER_LEN)}).to_string();
        write_frame(&mut wire, long.as_bytes(), &FrameConfig::default()).unwrap();
        assert_eq!(read(wire).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_malformed_trailer_declaration_is_invalid_data() {
        for declared in [json!("sha256"), json!([1]), json!({"sha256": true})] {
            let mut wire = Vec::new();
            let header = serde_json::to_vec(&json!({"size": 0, "trailer": declared})).unwrap();
            write_frame(&mut wire, &header, &MessageConfig::default().header).unwrap();
            let error = MessageStream::new(Cursor::new(wire)).read_header().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(
                error.to_string().contains("must be a list of field names"),
                "{error}"
            );
        }
    }

    #[test]
    fn writing_without_a_trailer_drops_a_stray_declaration() {
        let mut wire = Vec::new();
        write_message_bytes(
            &mut wire,
            &json!({"trailer": ["x"]}),
            b"",
            &MessageConfig::default(),
        )
        .unwrap();
        let header = MessageStream::new(Cursor::new(wire))
            .read_header()
            .unwrap()
            .unwrap();
        assert!(!header.has_trailer());
        let error = write_trailer(&mut Vec::new(), &json!([1]), &MessageConfig::default()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn typed_headers_round_trip() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Put {
            op: String,
            name: String,
            size: u64,
        }
        let wire = wire(&[(json!({"op": "put", "name": "a.txt"}), b"abc")]);
        let header = MessageStream::new(Cursor::new(wire))
            .read_header()
            .unwrap()
            .unwrap();
        let put: Put = header.to_typed().unwrap();
        assert_eq!(
            put,
            Put {
                op: "put".into(),
                name: "a.txt".into(),
                size: 3
            }
        );
    }
}
