//! What a worker of a parked server does: take the poller when nobody
//! holds it (and serve the first request it finds there, handing the
//! poller on), or serve the jobs others found.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::Shared;
use super::lead::Job;
use super::table::{Conn, Expired, Key, Parking, State};
use crate::config::DEFAULT_PARKED_READ_BUFFER_SIZE;
use crate::handler::Next;
use crate::pool::Exit;
use crate::request::{Layers, ReadBuffer, RequestParts, StreamRequest, Traffic};
use crate::server::control::Control;
use crate::server::core::Batch;
use crate::server::stream::connection::{apply, log_closed, log_opened, setup_failed};
use crate::server::stream::opening::{Handshake, handshake_too_late, open_layers, step_handshake};
use crate::sys::poller;
use crate::transport::Listener;

/// A worker's own state.
pub(super) struct WorkerLocal<L: Listener> {
    buffer: ReadBuffer,
    /// What its last round with the poller found.
    found: Vec<Job<L>>,
}

/// A worker's life: serve what is queued; when nothing is, take the poller
/// if nobody holds it; otherwise wait for a job.
pub(super) fn worker_main<L: Listener>(shared: &Arc<Shared<L>>) -> Exit {
    let _mark = shared.control().mark_current_thread();
    let mut local = WorkerLocal {
        buffer: shared.options.read_buffer(DEFAULT_PARKED_READ_BUFFER_SIZE),
        found: Vec::new(),
    };
    loop {
        // A stopping server's workers serve what was queued (requests the
        // clients have sent, connections accepted), within the grace
        // period, then exit.
        let stopping = shared.stopping.load(Ordering::Acquire);
        // Work queued by others could keep every worker from the poller:
        // now and then, take in what is ready first, and queue it behind.
        if !stopping && !shared.queue.is_empty() && shared.round_due() {
            glance(shared, &mut local);
        }
        match shared.queue.try_recv() {
            // Queued behind every job the stopping server queued: one per
            // worker, so none may take two.
            Ok(Job::Stop) => return Exit::Stopped,
            // A wake-up to lead, from the queue's front: jobs queued behind
            // it come first.
            Ok(Job::Lead) => continue,
            Err(TryRecvError::Empty) => {}
            Ok(job) => {
                shared.run(&mut local, job);
                continue;
            }
            Err(TryRecvError::Disconnected) => return Exit::Stopped,
        }
        if lead(shared, &mut local) {
            continue;
        }
        shared.followers.fetch_add(1, Ordering::AcqRel);
        let job = shared.queue.recv_timeout(shared.group.config.keep_alive);
        shared.followers.fetch_sub(1, Ordering::AcqRel);
        match job {
            Ok(Job::Stop) => return Exit::Stopped,
            // Woken to take the poller.
            Ok(Job::Lead) => {}
            Ok(job) => shared.run(&mut local, job),
            Err(RecvTimeoutError::Timeout) => {
                if shared.group.try_retire() {
                    return Exit::Retired;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Exit::Stopped,
        }
    }
}

/// A round with the poller that does not wait, if nobody holds it: what it
/// finds goes to the back of the queue.
fn glance<L: Listener>(shared: &Arc<Shared<L>>, local: &mut WorkerLocal<L>) {
    let Some(mut guard) = shared.lead.try_lock() else {
        return;
    };
    let Some(lead) = guard.as_mut() else {
        return;
    };
    let round = lead.round(shared, Some(Instant::now()), Batch::All, &mut local.found);
    shared.rounded();
    // Queued while the poller is held: a stopping server takes it before
    // queuing the workers' stops, so what was found comes first.
    for job in local.found.drain(..) {
        shared.push(job);
    }
    drop(guard);
    if let Err(e) = round {
        shared.listener_failed(e);
    }
}

/// Takes the poller for a round if the server is serving and nobody holds
/// it; serves the first job found, having queued the others (and, if
/// another worker is idle, woken it to take the poller meanwhile: the
/// leader/followers shape, so the request found is served by the thread
/// that found it, with no hand-off). False if it did not lead.
fn lead<L: Listener>(shared: &Arc<Shared<L>>, local: &mut WorkerLocal<L>) -> bool {
    if !shared.serving.load(Ordering::Acquire) {
        return false;
    }
    let Some(mut guard) = shared.lead.try_lock() else {
        return false;
    };
    let Some(lead) = guard.as_mut() else {
        return false;
    };
    shared.leading.store(true, Ordering::Release);
    // Never waiting in the poller while jobs wait in the queue: when every
    // other worker is busy, they would wait with it.
    let wait = if shared.queue.is_empty() {
        None
    } else {
        Some(Instant::now())
    };
    let round = lead.round(shared, wait, Batch::All, &mut local.found);
    shared.leading.store(false, Ordering::Release);
    shared.rounded();
    // The rest is queued while the poller is held: a stopping server takes
    // it before queuing the workers' stops, so what was found comes first.
    let mut found = local.found.drain(..);
    let mine = found.next();
    for job in found {
        shared.push(job);
    }
    drop(guard);
    if let Err(e) = round {
        shared.listener_failed(e);
        if let Some(job) = mine {
            shared.push(job);
        }
        return true;
    }
    if let Some(job) = mine {
        // While this one serves, another takes the poller, if one is idle
        // and a parked connection may need it; if none does, this one is
        // back soon, or the monitor wakes an idle one within its tick.
        if shared.followers.load(Ordering::Acquire) > 0
            && shared.queue.is_empty()
            && shared.control().counters.parked.get() > 0
        {
            shared.push(Job::Lead);
        }
        shared.run(local, job);
    }
    true
}

/// When a connection was opened, for the log of its end.
type Opened = Option<Instant>;

impl<L: Listener> Shared<L> {
    pub(super) fn control(&self) -> &Arc<Control> {
        self.server.control()
    }

    /// Does one job: serves a request, or opens a connection. Once
    /// shutdown is requested, each connection closes after the request it
    /// has sent is served (the grace period bounds it: then its socket is
    /// shut, and serving it ends at once).
    pub(super) fn run(&self, local: &mut WorkerLocal<L>, job: Job<L>) {
        self.progress.fetch_add(1, Ordering::Relaxed);
        match job {
            Job::Open { key, stream, peer } => self.open(local, key, stream, peer),
            Job::Ready { key, conn } => self.ready(local, key, conn),
            Job::Lead | Job::Stop => {}
        }
    }

    /// Closes the idle connections a deadline found.
    pub(super) fn close_expired(&self, expired: &mut Vec<Expired<L>>) {
        for expired in expired.drain(..) {
            self.control().counters.timed_out.bump();
            match expired {
                Expired::Idle(conn) if conn.state.is_none() => self.close_handshaking(conn),
                Expired::Idle(conn) => {
                    log::debug!(
                        "closing the connection from {:?}: idle for the idle timeout ({:?})",
                        conn.peer,
                        self.deadlines.idle_timeout
                    );
                    self.close_conn(None, conn);
                }
                // The worker serving it reports and closes it.
                Expired::CutOff => {}
            }
        }
    }

    /// Closes a connection whose TLS handshake its deadline cut short,
    /// reported to `handle_error` as a per-connection server reports its
    /// handshake timeout (and counted as a failed handshake, and in
    /// `timed_out`, not in `errors`).
    fn close_handshaking(&self, conn: Conn<L>) {
        let parts = RequestParts {
            stream: conn.stream,
            peer: conn.peer,
            buffer: ReadBuffer::default(),
            unread: 0..0,
            traffic: conn.traffic,
            maybe_more: false,
            layers: conn.layers,
        };
        let request = StreamRequest::resume(parts, self.server.clone());
        let error = handshake_too_late(&request);
        let _counted_as_timed_out = self.service.report(&request, error);
        let mut parts = request.into_parts();
        self.close(
            None,
            parts.stream,
            &parts.peer,
            None,
            conn.opened,
            parts.traffic,
            Some(&mut parts.layers),
        );
    }

    /// A new connection: open its layers (a proxy's header, the start of
    /// a TLS handshake), then go on with the handshake or admit it.
    fn open(&self, local: &mut WorkerLocal<L>, key: Key, stream: Arc<L::Stream>, peer: L::Addr) {
        let control = self.control();
        let opened = log_opened(&peer);
        if let Err(e) = apply(&self.options, &*stream) {
            setup_failed(control, &peer, &e);
            return self.close(Some(key), stream, &peer, None, opened, Traffic::default(), None);
        }
        let buffer = std::mem::take(&mut local.buffer);
        let mut request = StreamRequest::new(stream, peer, self.server.clone(), buffer);
        if let Err(e) = open_layers(&self.options, &mut request, Handshake::Started) {
            return self.fail(local, key, request, None, opened, e);
        }
        self.handshake(local, key, request, opened, false);
    }

    /// Advances the connection's TLS handshake (if it has one) with what
    /// has arrived; parks it until more comes, admits it once done.
    fn handshake(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        mut request: StreamRequest<L::Stream>,
        opened: Opened,
        registered: bool,
    ) {
        match step_handshake(&mut request) {
            Ok(true) => self.admit(local, key, request, opened, registered),
            Ok(false) => self.keep(local, key, request, None, opened, registered),
            Err(e) => self.fail(local, key, request, None, opened, e),
        }
    }

    /// An opened connection: verify it, open its state, and serve what it
    /// sent with the connection (clients often send at once), or park it.
    fn admit(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        mut request: StreamRequest<L::Stream>,
        opened: Opened,
        registered: bool,
    ) {
        let control = self.control();
        match self.service.verify(&request) {
            Ok(true) => {}
            Ok(false) => {
                control.counters.refused.bump();
                log::debug!("refused connection from {:?}", request.peer_addr());
                return self.end(local, key, request, None, opened);
            }
            Err(panicked) => return self.fail(local, key, request, None, opened, panicked),
        }
        let state = match self.service.open(&mut request) {
            Ok(state) => state,
            Err(e) => return self.fail(local, key, request, None, opened, e),
        };
        self.serve_if_sent(local, key, request, state, opened, registered);
    }

    /// A parked connection became readable (or was queued again with bytes
    /// read ahead): go on with its handshake, or serve its next request.
    fn ready(&self, local: &mut WorkerLocal<L>, key: Key, conn: Conn<L>) {
        let Conn {
            stream,
            peer,
            state,
            unread,
            maybe_more,
            traffic,
            layers,
            opened,
            registered,
        } = conn;
        let mut buffer = std::mem::take(&mut local.buffer);
        buffer.load(&unread);
        let parts = RequestParts {
            stream,
            peer,
            buffer,
            unread: 0..unread.len(),
            traffic,
            maybe_more,
            layers,
        };
        let request = StreamRequest::resume(parts, self.server.clone());
        match state {
            Some(state) => self.serve_if_sent(local, key, request, state, opened, registered),
            None => self.handshake(local, key, request, opened, registered),
        }
    }

    /// Serves a request if the client has sent one, parks the connection
    /// if not, closes it if the client has gone. Never waits: readiness
    /// can be stale (bytes a worker already read when the event came), and
    /// a worker must never wait on a client that has sent nothing.
    fn serve_if_sent(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        mut request: StreamRequest<L::Stream>,
        state: State,
        opened: Opened,
        registered: bool,
    ) {
        match request.fill_now() {
            // The client closed its end: nothing to serve.
            Ok(0) => self.end(local, key, request, Some(state), opened),
            Ok(_) => self.serve(local, key, request, state, opened, registered),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.keep(local, key, request, Some(state), opened, registered)
            }
            Err(e) => self.fail(local, key, request, Some(state), opened, e),
        }
    }

    /// Serves one request, then keeps or closes the connection.
    fn serve(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        mut request: StreamRequest<L::Stream>,
        mut state: State,
        opened: Opened,
        registered: bool,
    ) {
        match self.service.serve_one(&mut request, &mut state) {
            Ok(Next::KeepOpen) if !self.control().is_shutdown_requested() => {
                self.keep(local, key, request, Some(state), opened, registered)
            }
            Ok(_) => self.end(local, key, request, Some(state), opened),
            Err(e) => self.fail(local, key, request, Some(state), opened, e),
        }
    }

    /// Parks the connection until its next request (or, `state` still
    /// `None`, the rest of its handshake), or puts it back in line at once
    /// if it has one read ahead (behind the others: one connection that
    /// always has data cannot keep a worker).
    fn keep(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        request: StreamRequest<L::Stream>,
        state: Option<State>,
        opened: Opened,
        registered: bool,
    ) {
        let now = Instant::now();
        // Waiting for a request: the idle timeout; for the rest of a
        // handshake: its own deadline.
        let idle_until = match state {
            Some(_) => now + self.deadlines.idle_timeout,
            None => handshake_deadline(&request).unwrap_or(now + self.deadlines.idle_timeout),
        };
        let parts = request.into_parts();
        // Empty, and so no allocation, unless the client sent ahead.
        let unread = parts.buffer.bytes()[parts.unread.clone()].to_vec();
        local.buffer = parts.buffer;
        // Bytes may wait in the socket that no readiness event will
        // announce again: the last read took all it asked for.
        let again = !unread.is_empty() || parts.maybe_more;
        let maybe_more = parts.maybe_more;
        let mut conn = Conn {
            stream: parts.stream,
            peer: parts.peer,
            state,
            unread,
            maybe_more,
            traffic: parts.traffic,
            layers: parts.layers,
            opened,
            registered,
        };
        let busy_until = now + self.deadlines.request_timeout;
        if again {
            if self.table.lock().renew(key, busy_until) {
                return self.push(Job::Ready { key, conn });
            }
            return self.close_conn(Some(key), conn);
        }
        // Held across the poller call below: the socket cannot close (and
        // its number be reused) until then, whoever takes it meanwhile.
        let socket = Arc::clone(&conn.stream);
        // In the poller from here on (registered just below if it is not).
        conn.registered = true;
        let parking = self.table.lock().park(key, conn, idle_until, busy_until);
        match parking {
            // In the table first, so the first event finds it parked.
            Parking::Parked if !registered => {
                let Err(e) = poller::register(&self.registry, &*socket, key.token()) else {
                    return;
                };
                log::warn!("cannot watch a parked connection; closing it: {e}");
                let conn = self.table.lock().take_ready(key, busy_until, false);
                drop(socket);
                if let Some(conn) = conn {
                    self.close_conn(Some(key), conn);
                }
            }
            Parking::Parked => {}
            Parking::Ready(conn) => self.push(Job::Ready { key, conn }),
            Parking::Closing(conn) => {
                drop(socket);
                self.close_conn(Some(key), conn);
            }
        }
    }

    /// Reports a failed request (as a timeout if its deadline cut it off)
    /// and closes the connection.
    fn fail(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        request: StreamRequest<L::Stream>,
        state: Option<State>,
        opened: Opened,
        error: io::Error,
    ) {
        let error = if self.table.lock().is_cut_off(key) {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "request not finished within the request timeout ({:?}): connection closed",
                    self.deadlines.request_timeout
                ),
            )
        } else {
            error
        };
        let outcome = self.service.report(&request, error);
        self.control().counters.count(outcome);
        self.end(local, key, request, state, opened);
    }

    /// Closes the connection of a request, keeping the worker's buffer.
    fn end(
        &self,
        local: &mut WorkerLocal<L>,
        key: Key,
        request: StreamRequest<L::Stream>,
        state: Option<State>,
        opened: Opened,
    ) {
        let mut parts = request.into_parts();
        local.buffer = parts.buffer;
        self.close(
            Some(key),
            parts.stream,
            &parts.peer,
            state,
            opened,
            parts.traffic,
            Some(&mut parts.layers),
        );
    }

    pub(super) fn close_conn(&self, key: Option<Key>, mut conn: Conn<L>) {
        self.close(
            key,
            conn.stream,
            &conn.peer,
            conn.state,
            conn.opened,
            conn.traffic,
            Some(&mut conn.layers),
        );
    }

    /// Closes a connection: out of the table (unless the table let it go
    /// already: `key` is `None`), its layers ended (TLS's `close_notify`),
    /// the socket closed, the handler told, the count taken down.
    #[allow(clippy::too_many_arguments)]
    fn close(
        &self,
        key: Option<Key>,
        stream: Arc<L::Stream>,
        peer: &L::Addr,
        state: Option<State>,
        opened: Opened,
        traffic: Traffic,
        layers: Option<&mut Layers<L::Addr>>,
    ) {
        if let Some(layers) = layers {
            layers.close(&*stream);
        }
        if let Some(key) = key {
            self.table.lock().remove(key);
        }
        // The last reference: the connection closes (and leaves the
        // poller with it).
        drop(stream);
        if let Some(state) = state {
            self.service.close(state);
        }
        log_closed(peer, opened, traffic);
        if self.control().request_finished() {
            // The loop was full: it may accept again.
            self.control().wake();
        }
    }

    /// Closes the connection of a job that will not run.
    pub(super) fn discard(&self, job: Job<L>) {
        match job {
            Job::Open { key, stream, peer } => {
                self.close(Some(key), stream, &peer, None, None, Traffic::default(), None)
            }
            Job::Ready { key, conn } => self.close_conn(Some(key), conn),
            Job::Lead | Job::Stop => {}
        }
    }
}

/// When the handshake of a connection still handshaking must be over by.
fn handshake_deadline<S: crate::transport::Connection>(request: &StreamRequest<S>) -> Option<Instant> {
    #[cfg(feature = "tls")]
    return request.tls_deadline();
    #[cfg(not(feature = "tls"))]
    {
        let _ = request;
        None
    }
}
