//! The peer's TCP close without TLS's `close_notify`, told apart from a
//! clean end.

use std::error::Error;
use std::fmt;
use std::io;

/// The peer closed the connection without sending TLS's `close_notify`
/// alert first, so what it sent may have been cut short by anyone on the
/// path (a truncation attack), or the peer simply vanished.
///
/// A TLS read reports it as an [`io::Error`] of kind
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) wrapping this type; a
/// clean end (the peer's `close_notify`) reads as `Ok(0)` instead. Whether
/// truncation matters is the protocol's business: one that frames its
/// messages (a length prefix, an HTTP body length) detects a cut message
/// itself and can treat this as an ordinary close. Test for it with
/// [`is_truncated`], and see [`between_requests`](Self::between_requests)
/// for the common harmless case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsTruncated {
    between_requests: bool,
}

impl TlsTruncated {
    /// The truncation of a peer that had sent nothing since the server
    /// last wrote to it (`between_requests`), or one that had.
    pub fn new(between_requests: bool) -> Self {
        TlsTruncated { between_requests }
    }

    /// Whether the peer closed between two requests, as far as the
    /// connection shows: it had sent nothing since the server last wrote
    /// to it (or since the handshake, if the server never did), so
    /// nothing it sent was cut short. Most clients that skip `close_notify`
    /// (Python's `ssl` without `unwrap()`, many HTTP clients) leave so
    /// once they have their answer, and the default
    /// [`handle_error`](crate::RequestHandler::handle_error) logs it at
    /// debug level only.
    ///
    /// ```
    /// use socketserver::tls::TlsTruncated;
    ///
    /// assert!(TlsTruncated::new(true).between_requests());
    /// assert!(!TlsTruncated::default().between_requests());
    /// ```
    pub fn between_requests(&self) -> bool {
        self.between_requests
    }

    /// The truncation `error` reports, if it is one (see [`is_truncated`]).
    pub fn of(error: &io::Error) -> Option<&TlsTruncated> {
        if error.kind() != io::ErrorKind::UnexpectedEof {
            return None;
        }
        error.get_ref()?.downcast_ref::<TlsTruncated>()
    }
}

impl fmt::Display for TlsTruncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the peer closed the connection without a TLS close_notify")?;
        if self.between_requests {
            f.write_str(", having sent nothing since the server's last answer")
        } else {
            f.write_str(": its data may be truncated")
        }
    }
}

impl Error for TlsTruncated {}

impl From<TlsTruncated> for io::Error {
    fn from(truncated: TlsTruncated) -> Self {
        io::Error::new(io::ErrorKind::UnexpectedEof, truncated)
    }
}

/// Whether `error` is a TLS read's report that the peer closed without
/// `close_notify` ([`TlsTruncated`]).
///
/// ```
/// use socketserver::tls::{TlsTruncated, is_truncated};
/// use std::io;
///
/// let truncated = io::Error::from(TlsTruncated::default());
/// assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
/// assert!(is_truncated(&truncated));
/// assert!(!is_truncated(&io::Error::from(io::ErrorKind::UnexpectedEof)));
/// ```
pub fn is_truncated(error: &io::Error) -> bool {
    TlsTruncated::of(error).is_some()
}
