//! Client verification: HMAC-SHA256 challenge-response.
//!
//! The tutorials' `hmac` example, hardened. Server and client share a
//! secret key. The server sends 32 random bytes; the client answers with
//! HMAC-SHA256(key, those bytes), 32 bytes; the server compares in
//! constant time, within a timeout, and tells the client its verdict, as
//! Python's `multiprocessing.connection` does: `#WELCOME#`, or
//! `#FAILURE#` before it closes the connection. The key never crosses the
//! wire, a recorded answer is useless against the next challenge, and a
//! client learns at once that its key was refused, rather than from a
//! connection that closes later for reasons it cannot tell apart.
//!
//! ```text
//! server -> client   32 random bytes
//! client -> server   HMAC-SHA256(key, challenge)
//! server -> client   #WELCOME# or #FAILURE# (9 bytes; none with Verdict::Silent)
//! ```
//!
//! The easiest way to require it is to wrap a handler in
//! [`Authenticated`], which runs the exchange in `verify_request`, before
//! the wrapped handler sees the connection:
//!
//! ```
//! use socketserver::auth::Authenticated;
//! use socketserver::{ThreadingTcpServer, echo::Uppercase};
//!
//! let key = b"a secret both ends know".to_vec();
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Authenticated::new(key, Uppercase)?)?;
//! // A client calls socketserver::auth::answer_challenge(&mut stream, key) first.
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`Authenticated`] is a [`Wrapped`] handler with the [`Challenge`]
//! around it, so it wraps either handler style and runs on every stream
//! server, parked ones included: the challenge runs once per connection,
//! never before each request.
//!
//! Over TLS ([`Builder::tls`](crate::Builder::tls), feature `tls`) the
//! challenge runs inside the session, in [`Wrap::open`] (before the
//! wrapped handler's `setup` or `open`) rather than in `verify_request`
//! (which cannot drive the session): nobody on the path sees the exchange
//! or can take the connection over after it.
//!
//! The tutorials' own protocol has no verdict: the server just closes the
//! connection on a wrong answer. [`Verdict::Silent`] speaks it, for
//! clients written that way.
//!
//! Requires the `auth` feature.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::deadline::{ReadDeadline, with_read_deadline};
use crate::handler::{Request, Wrap, Wrapped};
use crate::request::StreamRequest;
use crate::transport::Connection;

/// The challenge's length in bytes.
pub const CHALLENGE_LEN: usize = 32;
/// The answer's length in bytes (an HMAC-SHA256).
pub const RESPONSE_LEN: usize = 32;
/// How long a client gets to answer by default.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's verdict when the answer is right.
pub const WELCOME: &[u8; VERDICT_LEN] = b"#WELCOME#";
/// The server's verdict when the answer is wrong or late; the server
/// closes the connection after it.
pub const FAILURE: &[u8; VERDICT_LEN] = b"#FAILURE#";
/// The verdict's length in bytes.
pub const VERDICT_LEN: usize = 9;

/// Whether the server tells the client how the challenge went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// [`WELCOME`] or [`FAILURE`] after the answer (the default): the
    /// client knows at once whether its key was accepted.
    #[default]
    Reply,
    /// Nothing: a refused client is just disconnected, as in the
    /// tutorials' protocol. Only for clients that expect no verdict; the
    /// client cannot tell a wrong key from a server that went away.
    Silent,
}

fn mac(key: &[u8], challenge: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(challenge);
    mac
}

/// The answer to `challenge` under `key`: HMAC-SHA256(key, challenge).
pub fn response(key: &[u8], challenge: &[u8]) -> [u8; RESPONSE_LEN] {
    let mut out = [0u8; RESPONSE_LEN];
    out.copy_from_slice(&mac(key, challenge).finalize().into_bytes());
    out
}

fn check_key(key: &[u8]) -> io::Result<()> {
    if key.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the shared key is empty",
        ));
    }
    Ok(())
}

/// The server's side: challenges the client on `stream`, checks its
/// answer, waiting at most `timeout` for it, and sends the verdict
/// ([`WELCOME`] or [`FAILURE`]). The stream's read timeout is restored
/// afterwards.
///
/// `PermissionDenied` on a wrong answer, `TimedOut` when none comes in
/// time, `UnexpectedEof` when the client hangs up.
pub fn challenge_client<S>(stream: &S, key: &[u8], timeout: Duration) -> io::Result<()>
where
    S: Connection,
    for<'a> &'a S: Read + Write,
{
    challenge_client_with(stream, key, timeout, Verdict::Reply)
}

/// [`challenge_client`], with or without the verdict.
pub fn challenge_client_with<S>(stream: &S, key: &[u8], timeout: Duration, verdict: Verdict) -> io::Result<()>
where
    S: Connection,
    for<'a> &'a S: Read + Write,
{
    challenge(&mut &*stream, key, timeout, verdict)
}

/// Where the challenge runs: a stream of bytes, and the socket beneath
/// it, whose read timeout bounds the wait for the answer. A plain socket
/// is both; a TLS request's bytes go through its session.
trait ChallengeStream: Read + Write {
    /// The socket, held apart from the stream that reads it.
    type Socket: AsFd;
    fn socket(&self) -> Self::Socket;
}

impl<'s, S> ChallengeStream for &'s S
where
    S: Connection,
    for<'a> &'a S: Read + Write,
{
    type Socket = &'s S;

    fn socket(&self) -> &'s S {
        self
    }
}

impl<S: Connection> ChallengeStream for StreamRequest<S> {
    type Socket = Arc<S>;

    fn socket(&self) -> Arc<S> {
        Arc::clone(self.shared_stream())
    }
}

/// The server's side of the exchange on `stream`: see
/// [`challenge_client`].
fn challenge(
    stream: &mut impl ChallengeStream,
    key: &[u8],
    timeout: Duration,
    verdict: Verdict,
) -> io::Result<()> {
    check_key(key)?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut challenge)
        .map_err(|e| io::Error::other(format!("no randomness for the challenge: {e}")))?;
    let socket = stream.socket();
    let checked = with_read_deadline(&socket, Instant::now() + timeout, |bounded| {
        exchange(stream, &challenge, bounded).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer to the challenge within {timeout:?}"),
            ),
            _ => e,
        })
    })
    .and_then(|answer| {
        // verify_slice compares in constant time.
        mac(key, &challenge)
            .verify_slice(&answer)
            .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "wrong answer to the challenge"))
    });
    if verdict == Verdict::Silent {
        return checked;
    }
    match checked {
        Ok(()) => stream.write_all(WELCOME).and_then(|()| stream.flush()),
        Err(e) => {
            // The client may be gone already; the refusal stands either way.
            let _ = stream.write_all(FAILURE).and_then(|()| stream.flush());
            Err(e)
        }
    }
}

/// Sends the challenge and reads the answer by `deadline`: the timeout
/// covers the whole answer, so a client trickling it a byte at a time
/// cannot hold the connection longer.
fn exchange(
    stream: &mut impl ChallengeStream,
    challenge: &[u8; CHALLENGE_LEN],
    bounded: &ReadDeadline<'_>,
) -> io::Result<[u8; RESPONSE_LEN]> {
    stream.write_all(challenge)?;
    stream.flush()?;
    let mut answer = [0u8; RESPONSE_LEN];
    let mut got = 0;
    while got < RESPONSE_LEN {
        bounded.arm()?;
        match stream.read(&mut answer[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) => bounded.retry(e)?,
        }
    }
    Ok(answer)
}

/// The client's side: reads the server's challenge, answers it and reads
/// the verdict. Set a read timeout on the stream first if the server might
/// never send one.
///
/// `PermissionDenied` ("the server refused the key") on [`FAILURE`];
/// `UnexpectedEof` if the server closes the connection before its
/// verdict; `InvalidData` if what comes is not a verdict.
pub fn answer_challenge(stream: &mut (impl Read + Write), key: &[u8]) -> io::Result<()> {
    answer_challenge_with(stream, key, Verdict::Reply)
}

/// [`answer_challenge`] for a server that sends `verdict`: with
/// [`Verdict::Silent`] it returns once the answer is sent.
pub fn answer_challenge_with(
    stream: &mut (impl Read + Write),
    key: &[u8],
    verdict: Verdict,
) -> io::Result<()> {
    check_key(key)?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(
            e.kind(),
            "the server closed the connection before sending its challenge",
        ),
        _ => e,
    })?;
    stream.write_all(&response(key, &challenge))?;
    if verdict == Verdict::Silent {
        return Ok(());
    }
    let mut said = [0u8; VERDICT_LEN];
    stream.read_exact(&mut said).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(
            e.kind(),
            "the server closed the connection before its verdict on the key",
        ),
        _ => e,
    })?;
    match &said {
        WELCOME => Ok(()),
        FAILURE => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the server refused the key",
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the server's reply to the challenge is not a verdict: {said:?}"),
        )),
    }
}

/// A stream handler that every connection must pass the challenge to
/// reach: `Authenticated::new(key, handler)`. A client that fails is
/// refused (counted in [`Stats::refused`](crate::Stats::refused)), logged
/// with its address, and disconnected before the wrapped handler runs.
///
/// Over TLS the challenge runs inside the session, in [`Wrap::open`]
/// (after the wrapped handler's `verify_request`, before its `setup` or
/// `open`): a client that fails it is reported to `handle_error` with a
/// `PermissionDenied` (or `TimedOut`) error and counted in
/// [`Stats::errors`](crate::Stats::errors) instead, and disconnected
/// before the wrapped handler runs.
pub type Authenticated<H> = Wrapped<Challenge, H>;

/// The challenge-response check as a [`Wrap`], around any stream handler:
/// see [`Authenticated`].
#[derive(Clone)]
pub struct Challenge {
    key: Vec<u8>,
    timeout: Duration,
    verdict: Verdict,
}

impl Challenge {
    /// Requires `key` of every client. An empty key is an `InvalidInput`
    /// error.
    pub fn new(key: impl Into<Vec<u8>>) -> io::Result<Self> {
        let key = key.into();
        check_key(&key)?;
        Ok(Challenge {
            key,
            timeout: DEFAULT_AUTH_TIMEOUT,
            verdict: Verdict::Reply,
        })
    }
}

impl<H> Authenticated<H> {
    /// Requires `key` of every client before `inner` serves it. An empty
    /// key is an `InvalidInput` error.
    pub fn new(key: impl Into<Vec<u8>>, inner: H) -> io::Result<Self> {
        Ok(Wrapped(Challenge::new(key)?, inner))
    }

    /// How long a client gets to answer (default [`DEFAULT_AUTH_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = timeout;
        self
    }

    /// Whether clients are told the verdict (default [`Verdict::Reply`]).
    pub fn verdict(mut self, verdict: Verdict) -> Self {
        self.0.verdict = verdict;
        self
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.1
    }
}

impl fmt::Debug for Challenge {
    /// Leaves the key out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("timeout", &self.timeout)
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

impl<S> Wrap<StreamRequest<S>> for Challenge
where
    S: Connection,
    for<'a> &'a S: Read + Write,
{
    /// The challenge in the clear, once the wrapped handler's own check
    /// (cheap: a peer it refuses gets no challenge) has passed. Over TLS
    /// it passes here: only `open` can drive the session.
    fn verify_request(&self, request: &StreamRequest<S>) -> bool {
        if request.is_tls() {
            return true;
        }
        match challenge_client_with(request.stream(), &self.key, self.timeout, self.verdict) {
            Ok(()) => true,
            Err(e) => {
                log::warn!(
                    "client {:?} failed verification: {e}",
                    Request::peer_addr(request)
                );
                false
            }
        }
    }

    /// The challenge inside the TLS session, if the connection has one.
    fn open(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        if request.is_tls() {
            challenge(request, &self.key, self.timeout, self.verdict)
                .map_err(|e| io::Error::new(e.kind(), format!("the client failed verification: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::thread;

    #[test]
    fn matches_python_hmac() {
        // hmac.new(b"key", b"challenge", "sha256").hexdigest()
        let expected = "fe94963fbac6b086cf871d423af4bb5f7a3dc0e61d37e4c78d122a6cc751b3e8";
        let got: String = response(b"key", b"challenge")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, expected);
    }

    fn run(
        server_key: &'static [u8],
        client_key: &'static [u8],
        verdict: Verdict,
    ) -> (io::Result<()>, io::Result<()>) {
        let (server, mut client) = UnixStream::pair().unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let answering = thread::spawn(move || answer_challenge_with(&mut client, client_key, verdict));
        let checked = challenge_client_with(&server, server_key, Duration::from_secs(10), verdict);
        drop(server);
        (checked, answering.join().unwrap())
    }

    #[test]
    fn the_right_key_passes_and_a_wrong_one_does_not() {
        let (server, client) = run(b"secret", b"secret", Verdict::Reply);
        assert!(server.is_ok() && client.is_ok(), "{server:?} {client:?}");
        let (server, client) = run(b"secret", b"guess", Verdict::Reply);
        assert_eq!(server.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        let client = client.unwrap_err();
        assert_eq!(client.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(client.to_string(), "the server refused the key");
    }

    #[test]
    fn a_silent_server_sends_no_verdict() {
        let (server, client) = run(b"secret", b"guess", Verdict::Silent);
        assert_eq!(server.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        // The client cannot know: it only sent its answer.
        assert!(client.is_ok());
    }

    #[test]
    fn a_server_that_hangs_up_is_not_mistaken_for_a_refusal() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hanging_up = thread::spawn(move || {
            server.write_all(&[7u8; CHALLENGE_LEN]).unwrap();
            let mut answer = [0u8; RESPONSE_LEN];
            server.read_exact(&mut answer).unwrap();
        });
        let error = answer_challenge(&mut client, b"secret").unwrap_err();
        hanging_up.join().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("before its verdict"), "{error}");
    }

    #[test]
    fn a_silent_client_times_out_and_the_timeout_is_restored() {
        let (server, _client) = UnixStream::pair().unwrap();
        server.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let error = challenge_client(&server, b"secret", Duration::from_millis(20)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(server.read_timeout().unwrap(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_timeout_covers_the_whole_answer() {
        let (server, mut client) = UnixStream::pair().unwrap();
        // Answers one byte every 50 ms: each read is quick, the whole
        // answer would take 1.6 s.
        let trickle = thread::spawn(move || {
            let mut challenge = [0u8; CHALLENGE_LEN];
            client.read_exact(&mut challenge).unwrap();
            for byte in response(b"secret", &challenge) {
                if client.write_all(&[byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        let error = challenge_client(&server, b"secret", Duration::from_millis(200)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
        drop(server);
        trickle.join().unwrap();
    }

    #[test]
    fn an_empty_key_is_refused() {
        assert!(Authenticated::new(Vec::new(), ()).is_err());
    }
}
