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
/// [`is_truncated`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsTruncated;

impl fmt::Display for TlsTruncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the peer closed the connection without a TLS close_notify: its data may be truncated")
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
/// let truncated = io::Error::from(TlsTruncated);
/// assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
/// assert!(is_truncated(&truncated));
/// assert!(!is_truncated(&io::Error::from(io::ErrorKind::UnexpectedEof)));
/// ```
pub fn is_truncated(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::UnexpectedEof
        && error.get_ref().is_some_and(|inner| inner.is::<TlsTruncated>())
}
