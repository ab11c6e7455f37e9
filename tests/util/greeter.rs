//! A line server for the tests of the connection layers (the PROXY
//! protocol, TLS), in every serving mode: greets each connection with what
//! the layer settled, then answers each line uppercased. What it says,
//! which clients it admits and what it keeps of errors are each test's
//! own ([`Greeting`]).

use std::io::{self, BufRead, Write};

use socketserver::server::Connection;
use socketserver::{KeepAliveHandler, Next, StreamRequest};

/// What a test's line server says and keeps.
pub trait Greeting: Clone + Send + Sync + 'static {
    /// The greeting: what the server knows of the connection, one line.
    fn describe<S: Connection>(&self, request: &StreamRequest<S>) -> String;

    /// Whether to serve the client at all (`verify_request`).
    fn admit<S: Connection>(&self, _request: &StreamRequest<S>) -> bool {
        true
    }

    /// Keeps an error reported to the handler.
    fn record(&self, error: &io::Error);
}

/// The line server, for every mode, around a [`Greeting`].
#[derive(Clone)]
pub struct LineServer<G>(pub G);

/// Answers one line uppercased; false at end of stream.
fn answer_line(request: &mut (impl BufRead + Write)) -> io::Result<bool> {
    let mut line = String::new();
    if request.read_line(&mut line)? == 0 {
        return Ok(false);
    }
    request.write_all(line.to_uppercase().as_bytes())?;
    Ok(true)
}

impl<S: Connection, G: Greeting> KeepAliveHandler<StreamRequest<S>> for LineServer<G> {
    type State = ();

    fn verify_request(&self, request: &StreamRequest<S>) -> bool {
        self.0.admit(request)
    }

    fn open(&self, request: &mut StreamRequest<S>) -> io::Result<()> {
        request.write_all(self.0.describe(request).as_bytes())
    }

    fn handle_one(&self, request: &mut StreamRequest<S>, _: &mut ()) -> io::Result<Next> {
        Ok(if answer_line(request)? {
            Next::KeepOpen
        } else {
            Next::Close
        })
    }

    fn handle_error(&self, _request: &StreamRequest<S>, error: &io::Error) {
        self.0.record(error);
    }
}
