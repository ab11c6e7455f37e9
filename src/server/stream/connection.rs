//! Serving one connection for its whole life on one thread: what the
//! serial loop and the pooled workers do with each connection they are
//! given. A looping handler's `handle` is the conversation; a
//! per-request handler's requests are served one after another, the
//! thread waiting for each (idle, and so closed at once by a shutdown).
//!
//! What a connection needs whatever serves it (its handler's lifecycle,
//! its server, its options) is the [`ConnectionService`]; the parked mode
//! shares it.

use std::io::{self, BufRead};
use std::sync::Arc;
use std::time::Instant;

use super::opening::{Handshake, open_layers};
use crate::config::DEFAULT_READ_BUFFER_SIZE;
use crate::control::registry::{SharedSocket, SlotHandle};
use crate::control::{Control, ThreadMark};
use crate::handler::{Lifecycle, Next, failure_level};
use crate::pool::{Refusal, Work};
use crate::request::{ReadBuffer, StreamRequest, Traffic};
use crate::server::ServerHandle;
use crate::server::lifecycle;
use crate::server::options::ConnectionOptions;
use crate::transport::{Connection, Listener};

/// An accepted connection and its peer.
pub(crate) type Accepted<L> = (<L as Listener>::Stream, <L as Listener>::Addr);

/// A thread's state, kept from one connection to the next.
pub(crate) struct ConnectionLocal {
    slot: SlotHandle,
    buffer: ReadBuffer,
}

/// What serving a connection takes, in every mode: the handler's
/// lifecycle, the server, the per-connection options.
pub(crate) struct ConnectionService<L: Listener, F> {
    pub(crate) life: Arc<F>,
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

impl<L, F> ConnectionService<L, F>
where
    L: Listener,
    F: Lifecycle<StreamRequest<L::Stream>>,
{
    pub(crate) fn control(&self) -> &Arc<Control> {
        self.server.control()
    }

    /// The state of a thread that serves connections.
    pub(crate) fn local(&self) -> ConnectionLocal {
        ConnectionLocal {
            slot: self.control().registry.slot(),
            buffer: self.options.read_buffer(DEFAULT_READ_BUFFER_SIZE),
        }
    }

    /// Serves one connection to its end, then closes it.
    pub(crate) fn serve(&self, local: &mut ConnectionLocal, (stream, peer): Accepted<L>) {
        let control = self.control();
        let opened = log_opened(&peer);
        if let Err(e) = apply(&self.options, &stream) {
            setup_failed(control, &peer, &e);
        } else {
            let buffer = std::mem::take(&mut local.buffer);
            let mut request = StreamRequest::new(Arc::new(stream), peer, self.server.clone(), buffer);
            {
                let _in_use = local
                    .slot
                    .hold(Arc::clone(request.shared_stream()) as SharedSocket);
                match open_layers(&self.options, &mut request, Handshake::Whole) {
                    Ok(()) => self.converse(&local.slot, &mut request),
                    Err(e) => lifecycle::fail(&*self.life, &request, e, &control.counters),
                }
                request.close_layers();
            }
            log_closed(request.peer_addr(), opened, request.traffic());
            // Closes the connection; the slot no longer holds it. What the
            // connection grew the buffer to is not kept for the next one.
            local.buffer = request.into_buffer();
            local.buffer.reset();
        }
        control.request_finished();
    }

    /// The connection's life, once its layers are open: admitted, served
    /// (request after request, for a per-request handler), ended.
    fn converse(&self, slot: &SlotHandle, request: &mut StreamRequest<L::Stream>) {
        let life = &*self.life;
        let counters = &self.control().counters;
        let mut state = match lifecycle::admit(life, request, counters) {
            Ok(Some(state)) => state,
            Ok(None) => return,
            Err(e) => return lifecycle::fail(life, request, e, counters),
        };
        let mut first = true;
        let failure = loop {
            if F::PER_REQUEST {
                match wait_for_request(slot, request, std::mem::take(&mut first)) {
                    Ok(true) => {}
                    // The client closed, or shutdown closed it while idle.
                    Ok(false) => break None,
                    Err(e) => break Some(e),
                }
            }
            match lifecycle::serve(life, request, &mut state) {
                Ok(Next::KeepOpen) if F::PER_REQUEST && !self.control().is_shutdown_requested() => {}
                Ok(_) => break None,
                Err(e) => break Some(e),
            }
        };
        lifecycle::end(life, request, state, failure, counters);
    }

    /// Closes a connection that will not be served.
    pub(crate) fn refuse(&self, accepted: Accepted<L>, refusal: &Refusal) {
        refuse(self.control(), accepted, refusal);
    }
}

/// Waits until the client sends its next request: true when it has,
/// false when it closed its end. Returns at once when bytes are read
/// ahead already. Between two requests the wait is idle, so a shutdown
/// closes the connection at once; the wait for the `first` is not (a
/// client that has just connected is about to send it, as Go's
/// `Server.Shutdown` also assumes).
fn wait_for_request<S: Connection>(
    slot: &SlotHandle,
    request: &mut StreamRequest<S>,
    first: bool,
) -> io::Result<bool> {
    if !request.buffered().is_empty() {
        return Ok(true);
    }
    let idle = if first { None } else { Some(slot.idle()) };
    if let Some(None) = idle {
        // Shutdown has begun: no new request.
        return Ok(false);
    }
    loop {
        match request.fill_buf() {
            Ok(bytes) => return Ok(!bytes.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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
pub(crate) struct ConnectionJobs<L: Listener, F>(pub(crate) Arc<ConnectionService<L, F>>);

impl<L, F> Work for ConnectionJobs<L, F>
where
    L: Listener,
    F: Lifecycle<StreamRequest<L::Stream>>,
{
    type Job = Accepted<L>;
    type Local = (ConnectionLocal, ThreadMark);

    fn start_worker(&self) -> Self::Local {
        (self.0.local(), self.0.control().mark_current_thread())
    }

    fn run(&self, (local, _): &mut Self::Local, job: Self::Job) {
        self.0.serve(local, job);
    }

    fn discard(&self, job: Self::Job) {
        self.0.refuse(job, &Refusal::Closing);
    }
}
