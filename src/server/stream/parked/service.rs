//! The handler of a parked server, seen through one object-safe trait.

use std::io;
use std::sync::Arc;

use super::table::State;
use crate::handler::{KeepAliveHandler, Next, Outcome, catch, report_with};
use crate::request::StreamRequest;
use crate::transport::Listener;

/// Serves requests with a [`KeepAliveHandler`], whatever its type: the
/// engine holds it as a `dyn`, and a connection's state as `dyn Any`.
/// Panics are contained here.
pub(crate) trait ServeRequests<L: Listener>: Send + Sync + 'static {
    fn verify(&self, request: &StreamRequest<L::Stream>) -> io::Result<bool>;
    fn open(&self, request: &mut StreamRequest<L::Stream>) -> io::Result<State>;
    fn serve_one(&self, request: &mut StreamRequest<L::Stream>, state: &mut State) -> io::Result<Next>;
    fn report(&self, request: &StreamRequest<L::Stream>, error: io::Error) -> Outcome;
    fn close(&self, state: State);
}

/// A [`KeepAliveHandler`] behind [`ServeRequests`].
pub(crate) struct RequestService<H>(pub(crate) Arc<H>);

impl<L, H> ServeRequests<L> for RequestService<H>
where
    L: Listener,
    H: KeepAliveHandler<StreamRequest<L::Stream>>,
{
    fn verify(&self, request: &StreamRequest<L::Stream>) -> io::Result<bool> {
        catch(|| self.0.verify_request(request))
    }

    fn open(&self, request: &mut StreamRequest<L::Stream>) -> io::Result<State> {
        let state = catch(|| self.0.open(request)).and_then(|opened| opened)?;
        Ok(Box::new(state))
    }

    fn serve_one(&self, request: &mut StreamRequest<L::Stream>, state: &mut State) -> io::Result<Next> {
        let state = state
            .downcast_mut::<H::State>()
            .ok_or_else(|| io::Error::other("a connection's state is not its handler's type"))?;
        catch(|| self.0.handle_one(request, state)).and_then(|served| served)
    }

    fn report(&self, request: &StreamRequest<L::Stream>, error: io::Error) -> Outcome {
        report_with(request, &error, |request, error| {
            self.0.handle_error(request, error)
        })
    }

    fn close(&self, state: State) {
        if let Ok(state) = state.downcast::<H::State>()
            && let Err(panicked) = catch(|| self.0.close(*state))
        {
            log::error!("close panicked: {panicked}");
        }
    }
}
