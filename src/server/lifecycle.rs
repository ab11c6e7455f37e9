//! A connection's life, run the same way by every server: the one place
//! where what a handler does is caught, reported and counted.
//!
//! ```text
//! admit:  verify_request -> setup / open        (refused, or failed: the connection closes)
//! serve:  handle (the whole conversation) / handle_one (one request)
//! end:    finish (looping) -> close (per request)
//! fail:   handle_error, counted                 (whatever failed: a hook, a handshake, a deadline)
//! ```
//!
//! Each step runs the handler through its [`Lifecycle`], so the two
//! handler styles share every line here, and the serving modes differ
//! only in when they call each step: the per-connection modes call them
//! in a row on one thread, a parked server over many jobs. A panic in any
//! hook is caught and becomes an error wrapping a
//! [`HandlerPanic`](crate::HandlerPanic). A step that fails returns its
//! error, so the server can say more about it (a parked server names the
//! deadline that cut a request off) before [`fail`] reports it: errors
//! count in [`Stats::errors`](crate::Stats::errors), panics in
//! [`Stats::panics`](crate::Stats::panics), one for each reported to
//! `handle_error`.

use std::io;

use crate::control::stats::Counters;
use crate::handler::{Lifecycle, Next, Request, catch, is_clean_end, is_panic};

/// Verifies a new connection and opens it: its state, or `None` when it
/// was refused (logged, and counted in `refused`). An error (a panic
/// included) is returned for the caller to [`fail`] with: close the
/// connection then, without `end`.
pub(crate) fn admit<R: Request, F: Lifecycle<R>>(
    life: &F,
    request: &mut R,
    counters: &Counters,
) -> io::Result<Option<F::State>> {
    if !catch(|| life.verify(request))? {
        log::debug!("refused connection from {:?}", request.peer_addr());
        counters.refused.bump();
        return Ok(None);
    }
    catch(|| life.open(request))?.map(Some)
}

/// Serves one request (or, looping, the whole conversation): what to do
/// with the connection next. An error (a panic included) is returned for
/// the caller to [`fail`] with, and closes the connection.
pub(crate) fn serve<R: Request, F: Lifecycle<R>>(
    life: &F,
    request: &mut R,
    state: &mut F::State,
) -> io::Result<Next> {
    catch(|| life.serve(request, state))?
}

/// A looping handler's `finish`, with the connection's request (nothing
/// for a per-request handler); an error is returned for [`fail`].
pub(crate) fn finish<R: Request, F: Lifecycle<R>>(life: &F, request: &mut R) -> io::Result<()> {
    catch(|| life.finish(request))?
}

/// Ends an admitted connection that still has its request: `finish`,
/// then the failure that ended the connection (if one did) and a failed
/// `finish` are reported, in that order, as Python does; then `close`.
pub(crate) fn end<R: Request, F: Lifecycle<R>>(
    life: &F,
    request: &mut R,
    state: F::State,
    failure: Option<io::Error>,
    counters: &Counters,
) {
    let finished = finish(life, request);
    for error in failure.into_iter().chain(finished.err()) {
        fail(life, request, error, counters);
    }
    close(life, state, counters);
}

/// Ends an admitted connection whose request is gone (a parked one closed
/// by a deadline or by shutdown): `close` only. A panic in it is logged
/// and counted; there is no request to report it with.
pub(crate) fn close<R: Request, F: Lifecycle<R>>(life: &F, state: F::State, counters: &Counters) {
    if let Err(panicked) = catch(|| life.close(state)) {
        log::error!("close panicked: {panicked}");
        counters.panics.bump();
    }
}

/// Reports a failure to `handle_error` (a panic there is logged, not
/// propagated) and counts it: the handler's own, or the connection's
/// (a TLS handshake, a PROXY header, a deadline).
pub(crate) fn fail<R: Request, F: Lifecycle<R>>(
    life: &F,
    request: &R,
    error: io::Error,
    counters: &Counters,
) {
    // Counted first: what `handle_error` sees (or tells) of the stats
    // includes the failure it reports.
    if is_panic(&error) {
        counters.panics.bump();
    } else if !is_clean_end(request, &error) {
        counters.errors.bump();
    }
    report(life, request, &error);
}

/// Reports a failure to `handle_error` without counting it (the caller
/// counts it apart); a panic there is logged, not propagated.
pub(crate) fn report<R: Request, F: Lifecycle<R>>(life: &F, request: &R, error: &io::Error) {
    if let Err(panicked) = catch(|| life.handle_error(request, error)) {
        log::error!(
            "handle_error panicked ({panicked}) while reporting for {:?}: {error}",
            request.peer_addr()
        );
    }
}

/// Runs one request through the whole life in a row: a datagram, or a
/// connection whose handler loops.
pub(crate) fn run_whole<R: Request, F: Lifecycle<R>>(life: &F, request: &mut R, counters: &Counters) {
    match admit(life, request, counters) {
        Ok(Some(mut state)) => {
            let failure = serve(life, request, &mut state).err();
            end(life, request, state, failure, counters);
        }
        Ok(None) => {}
        Err(e) => fail(life, request, e, counters),
    }
}
