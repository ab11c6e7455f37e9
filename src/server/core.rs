//! The serving skeleton every server shares, written once, as CPython's
//! `BaseServer` does: `serve_forever`, `handle_request`, the orderly stop,
//! and what dropping a server does.
//!
//! What differs between servers (how requests come in and who serves them)
//! sits behind [`Engine`]: the stream engine (serial, pooled and parked
//! dispatch) and the datagram engine (serial dispatch and receiving
//! workers). The skeleton only ever sees named wake-ups ([`Wake`]).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ServerHandle;
use crate::control::Control;
use crate::handler::run_hook;

/// Why an engine's wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Shutdown was requested.
    Shutdown,
    /// Requests are ready to be taken in.
    Ready,
    /// The deadline passed.
    Timeout,
    /// The workers all seem busy: the pool may need another.
    Grow,
}

/// How much one call to [`Engine::serve`] takes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Everything ready now (`serve_forever`).
    All,
    /// One request (`handle_request`).
    One,
}

/// The handler's server-level hooks, which the skeleton calls itself.
pub(crate) trait Hooks: Send + Sync + 'static {
    fn service_actions(&self);
    fn handle_timeout(&self);
}

/// The server-level hooks of `handler`, whatever its trait: the two
/// functions call them.
pub(crate) fn handler_hooks<H: Send + Sync + 'static>(
    handler: &Arc<H>,
    service_actions: fn(&H),
    handle_timeout: fn(&H),
) -> Arc<dyn Hooks> {
    Arc::new(HandlerHooks {
        handler: Arc::clone(handler),
        service_actions,
        handle_timeout,
    })
}

struct HandlerHooks<H> {
    handler: Arc<H>,
    service_actions: fn(&H),
    handle_timeout: fn(&H),
}

impl<H: Send + Sync + 'static> Hooks for HandlerHooks<H> {
    fn service_actions(&self) {
        (self.service_actions)(&self.handler);
    }

    fn handle_timeout(&self) {
        (self.handle_timeout)(&self.handler);
    }
}

/// A way of taking requests in and serving them.
pub(crate) trait Engine: Send + 'static {
    /// Starts what lives only while `serve_forever` runs (workers that
    /// receive for themselves).
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Waits until there is something to do, or `deadline` passes.
    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake>;

    /// Takes in what is ready and serves it, or hands it to workers. True
    /// if it took a request.
    fn serve(&mut self, batch: Batch) -> io::Result<bool>;

    /// Adds a worker if one is still needed.
    fn grow(&mut self) {}

    /// The orderly stop: stops taking requests, gives those in flight the
    /// grace period, force-closes what is left, joins the workers, closes
    /// the socket.
    fn stop(self: Box<Self>);
}

/// A server's engine and the state around it.
pub(crate) struct Core<A> {
    /// `None` while a call is serving, and after shutdown.
    engine: Mutex<Option<Box<dyn Engine>>>,
    server: ServerHandle<A>,
    hooks: Arc<dyn Hooks>,
    timeout: Option<Duration>,
    service_interval: Option<Duration>,
}

impl<A> Core<A> {
    pub(crate) fn new(
        engine: Box<dyn Engine>,
        server: ServerHandle<A>,
        hooks: Arc<dyn Hooks>,
        timeout: Option<Duration>,
        service_interval: Option<Duration>,
    ) -> Self {
        Core {
            engine: Mutex::new(Some(engine)),
            server,
            hooks,
            timeout,
            service_interval,
        }
    }

    pub(crate) fn server(&self) -> &ServerHandle<A> {
        &self.server
    }

    fn control(&self) -> &Arc<Control> {
        self.server.control()
    }

    /// See the servers' `serve_forever`.
    pub(crate) fn serve_forever(&self) -> io::Result<()> {
        let control = Arc::clone(self.control());
        let Some(_serving) = control.begin_serving()? else {
            // Shutdown came first. It is final: close the socket now, so
            // clients are refused rather than left waiting.
            if let Some(engine) = self.engine.lock().take() {
                engine.stop();
            }
            return Ok(());
        };
        let Some(mut engine) = self.engine.lock().take() else {
            // Another thread is in handle_request.
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the server is busy in handle_request on another thread",
            ));
        };
        let result = self.run(&mut engine);
        if let Err(e) = &result {
            log::error!("serving stopped: the server's socket failed: {e}");
            // The socket is gone: later calls return at once.
            control.request_shutdown();
        }
        engine.stop();
        result
    }

    fn run(&self, engine: &mut Box<dyn Engine>) -> io::Result<()> {
        engine.start()?;
        let interval = self.service_interval;
        let mut next_service = interval.map(|interval| Instant::now() + interval);
        loop {
            let served = match engine.wait(next_service)? {
                Wake::Shutdown => return Ok(()),
                Wake::Ready => {
                    engine.serve(Batch::All)?;
                    true
                }
                Wake::Grow => {
                    engine.grow();
                    false
                }
                Wake::Timeout => false,
            };
            let due = next_service.is_some_and(|at| Instant::now() >= at);
            if served || due {
                run_hook("service_actions", || self.hooks.service_actions());
                next_service = interval.map(|interval| Instant::now() + interval);
            }
        }
    }

    /// See the servers' `handle_request`.
    pub(crate) fn handle_request(&self) -> io::Result<bool> {
        let control = Arc::clone(self.control());
        let Some(mut engine) = self.engine.lock().take() else {
            return if control.is_shutdown_requested() {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "the server is already serving",
                ))
            };
        };
        let _mark = control.mark_current_thread();
        let deadline = self.timeout.map(|timeout| Instant::now() + timeout);
        let result = loop {
            match engine.wait(deadline) {
                Ok(Wake::Shutdown) => break Ok(false),
                Ok(Wake::Timeout) => {
                    run_hook("handle_timeout", || self.hooks.handle_timeout());
                    break Ok(false);
                }
                Ok(Wake::Ready) => match engine.serve(Batch::One) {
                    Ok(true) => break Ok(true),
                    Ok(false) => {}
                    Err(e) => break Err(e),
                },
                Ok(Wake::Grow) => engine.grow(),
                Err(e) => break Err(e),
            }
        };
        *self.engine.lock() = Some(engine);
        result
    }
}

impl<A> Drop for Core<A> {
    fn drop(&mut self) {
        let Some(engine) = self.engine.get_mut().take() else {
            return;
        };
        // Not serving: make a later shutdown() return at once, and wind
        // down whatever handle_request handed to workers.
        self.control().request_shutdown();
        engine.stop();
    }
}

/// What the servers' fronts share: the accessors, the [`Server`]
/// implementation and `Debug`, written once for both fronts.
///
/// [`Server`]: super::Server
macro_rules! server_front {
    ($front:ident < $t:ident : $transport:path, $m:ident, $h:ident >, $addr:ty) => {
        impl<$t: $transport, $m, $h> $front<$t, $m, $h> {
            /// How the server serves: the mode its type names, or the one
            /// [`Builder::mode`](crate::Builder::mode) chose.
            pub fn mode(&self) -> $crate::server::Mode {
                self.mode
            }

            /// The address the server is bound to: with port 0, the port
            /// the OS chose.
            pub fn local_addr(&self) -> &$addr {
                self.core.server().local_addr()
            }

            /// The handle handlers see: address, shutdown, stats.
            pub fn server_handle(&self) -> &$crate::ServerHandle<$addr> {
                self.core.server()
            }

            /// A handle that stops the server from any thread.
            pub fn shutdown_handle(&self) -> $crate::ShutdownHandle {
                self.core.server().shutdown_handle()
            }

            /// A snapshot of the server's counters.
            pub fn stats(&self) -> $crate::Stats {
                self.core.server().stats()
            }

            /// The handler, for reading state it keeps.
            pub fn handler(&self) -> &$h {
                &self.handler
            }
        }

        impl<$t: $transport, $m: 'static, $h: Send + Sync + 'static> $crate::server::Server
            for $front<$t, $m, $h>
        {
            type Addr = $addr;

            fn server_handle(&self) -> &$crate::ServerHandle<$addr> {
                self.core.server()
            }

            fn serve_forever(&self) -> std::io::Result<()> {
                self.core.serve_forever()
            }

            fn handle_request(&self) -> std::io::Result<bool> {
                self.core.handle_request()
            }
        }

        impl<$t: $transport, $m, $h> std::fmt::Debug for $front<$t, $m, $h> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($front))
                    .field("local_addr", self.local_addr())
                    .field("mode", &self.mode.name())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use server_front;

impl<A: fmt::Debug> fmt::Debug for Core<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}
