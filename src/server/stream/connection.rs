//! Serving one connection for its whole life: what the serial loop and
//! the pooled workers of the per-connection servers do with each
//! connection they are given.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::opening::{Handshake, open_layers};
use crate::config::ConnectionOptions;
use crate::config::DEFAULT_READ_BUFFER_SIZE;
use crate::handler::{RequestHandler, failure_level, process, report};
use crate::pool::{Refusal, Work};
use crate::request::{ReadBuffer, StreamRequest, Traffic};
use crate::server::ServerHandle;
use crate::server::connections::{SharedSocket, SlotHandle};
use crate::server::control::{Control, ThreadMark};
use crate::transport::{Connection, Listener};

/// An accepted connection and its peer.
pub(crate) type Accepted<L> = (<L as Listener>::Stream, <L as Listener>::Addr);

/// A thread's state, kept from one connection to the next.
pub(crate) struct ConnectionLocal {
    slot: SlotHandle,
    buffer: ReadBuffer,
}

/// Serves connections with a [`RequestHandler`], whatever its type: the
/// stream engine holds it as a `dyn` so that one engine serves every mode.
pub(crate) trait ServeConnection<L: Listener>: Send + Sync + 'static {
    /// The state of a thread that serves connections.
    fn local(&self) -> ConnectionLocal;
    /// Marks a pool worker as one of the server's threads. The serial loop
    /// needs none: `serve_forever` and `handle_request` mark whichever
    /// thread is calling.
    fn mark_worker(&self) -> ThreadMark;
    /// Serves one connection to its end, then closes it.
    fn serve(&self, local: &mut ConnectionLocal, accepted: Accepted<L>);
    /// Closes a connection without serving it.
    fn refuse(&self, accepted: Accepted<L>, refusal: &Refusal);
}

pub(crate) struct ConnectionService<L: Listener, H> {
    pub(crate) handler: Arc<H>,
    pub(crate) server: ServerHandle<L::Addr>,
    pub(crate) options: ConnectionOptions,
}

/// Sets the per-connection options on a new connection. Done by the thread
/// that serves it, keeping the accept loop lean.
pub(crate) fn apply(options: &ConnectionOptions, stream: &impl Connection) -> io::Result<()> {
    if options.nodelay {
        stream.set_nodelay(true)?;
    }
    if options.read_timeout.is_some() {
        stream.set_read_timeout(options.read_timeout)?;
    }
    if options.write_timeout.is_some() {
        stream.set_write_timeout(options.write_timeout)?;
    }
    Ok(())
}

/// Counts and logs a connection whose options could not be set, which is
/// closed unserved: typically the peer reset it before it was served.
/// Logged as a failed request, at the level of whose doing it was.
pub(crate) fn setup_failed<A: std::fmt::Debug>(control: &Control, peer: &A, error: &io::Error) {
    control.counters.errors.bump();
    log::log!(
        failure_level(error),
        "request from {peer:?} failed: cannot set up the connection: {error}"
    );
}

/// Logs a connection's start at debug level; the returned value logs its
/// end (peer, duration, bytes) when given the traffic.
pub(crate) fn log_opened<A: std::fmt::Debug>(peer: &A) -> Option<Instant> {
    log::log_enabled!(log::Level::Debug).then(|| {
        log::debug!("connection from {peer:?} accepted");
        Instant::now()
    })
}

/// Logs a connection's end, if its start was logged.
pub(crate) fn log_closed<A: std::fmt::Debug>(peer: &A, opened: Option<Instant>, traffic: Traffic) {
    if let Some(opened) = opened {
        log::debug!(
            "connection from {peer:?} closed after {:?}: {} bytes in, {} bytes out",
            opened.elapsed(),
            traffic.read,
            traffic.written
        );
    }
}

impl<L, H> ServeConnection<L> for ConnectionService<L, H>
where
    L: Listener,
    H: RequestHandler<StreamRequest<L::Stream>>,
{
    fn local(&self) -> ConnectionLocal {
        ConnectionLocal {
            slot: self.server.control().registry.slot(),
            buffer: self.options.read_buffer(DEFAULT_READ_BUFFER_SIZE),
        }
    }

    fn mark_worker(&self) -> ThreadMark {
        self.server.control().mark_current_thread()
    }

    fn serve(&self, local: &mut ConnectionLocal, (stream, peer): Accepted<L>) {
        let control = self.server.control();
        let opened = log_opened(&peer);
        if let Err(e) = apply(&self.options, &stream) {
            setup_failed(control, &peer, &e);
        } else {
            let buffer = std::mem::take(&mut local.buffer);
            let mut request = StreamRequest::new(Arc::new(stream), peer, self.server.clone(), buffer);
            let outcome = {
                let _in_use = local
                    .slot
                    .hold(Arc::clone(request.shared_stream()) as SharedSocket);
                match open_layers(&self.options, &mut request, Handshake::Whole) {
                    Ok(()) => {
                        let outcome = process(&*self.handler, &mut request);
                        request.close_layers();
                        outcome
                    }
                    Err(e) => report(&*self.handler, &request, e),
                }
            };
            control.counters.count(outcome);
            log_closed(request.peer_addr(), opened, request.traffic());
            // Closes the connection; the slot no longer holds it. What the
            // connection grew the buffer to is not kept for the next one.
            local.buffer = request.into_buffer();
            local.buffer.reset();
        }
        control.request_finished();
    }

    fn refuse(&self, accepted: Accepted<L>, refusal: &Refusal) {
        refuse(self.server.control(), accepted, refusal);
    }
}

/// Closes a connection without serving it, counting it as refused.
pub(crate) fn refuse<S: Connection>(control: &Control, (stream, peer): (S, S::Addr), refusal: &Refusal) {
    log::debug!("refusing connection from {peer:?}: {refusal}");
    // Counted before the close, which the peer can observe.
    control.counters.refused.bump();
    drop(stream);
    control.request_finished();
}

/// The jobs of a per-connection pool: accepted connections, each served by
/// one worker to its end.
pub(crate) struct ConnectionJobs<L: Listener>(pub(crate) Arc<dyn ServeConnection<L>>);

impl<L: Listener> Work for ConnectionJobs<L> {
    type Job = Accepted<L>;
    type Local = (ConnectionLocal, ThreadMark);

    fn start_worker(&self) -> Self::Local {
        (self.0.local(), self.0.mark_worker())
    }

    fn run(&self, (local, _): &mut Self::Local, job: Self::Job) {
        self.0.serve(local, job);
    }

    fn discard(&self, job: Self::Job) {
        self.0.refuse(job, &Refusal::Closing);
    }
}
