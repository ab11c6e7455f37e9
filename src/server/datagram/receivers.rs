//! The threading datagram servers' workers, which receive on the shared
//! socket themselves.
//!
//! Each worker blocks in `recvfrom`, serves the datagram it got, and goes
//! back to receiving. The kernel wakes one blocked receiver per datagram.
//! There is one worker per core to start with, so handlers that compute
//! use every core. Slow handlers are met by growth: a worker that takes a
//! datagram while no other worker is receiving tells the loop thread,
//! which adds a worker (up to the maximum) if after a millisecond still
//! nobody is receiving and datagrams wait in the socket, or if after ten
//! nobody is receiving at all. The delays matter: adding a worker at once
//! whenever the others are busy mistakes mere preemption for slowness, and
//! on a loaded two-core machine grew 23 workers for 16 clients, which then
//! served fewer datagrams than 2 warm ones; and every extra worker blocked
//! on the socket takes its turn at the next datagram, often on the other
//! core. Workers idle for a keep-alive
//! retire, down to the minimum. Each worker keeps one buffer for its life.
//!
//! This design won a measurement against the alternatives (a receiver
//! handing datagrams to a pool, and one `SO_REUSEPORT` socket per worker);
//! the figures and reasons are in PERFORMANCE.md, under the in-process
//! benchmarks (`cargo bench --bench udp_dispatch`).
//!
//! Shutdown wakes blocked receivers at once: on Linux by shutting the
//! socket's read side (which wakes every receiver, even on an unconnected
//! socket), elsewhere by sending the socket empty datagrams until every
//! worker has seen the request.

use std::io;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::DatagramService;
use crate::control::Control;
use crate::handler::Lifecycle;
use crate::pool::{Exit, GroupConfig, ThreadGroup};
use crate::request::DatagramRequest;
use crate::server::backoff::Backoff;
use crate::transport::DatagramSocket;

/// The shortest receive timeout workers use to notice a keep-alive; the
/// OS rejects a zero timeout.
const MIN_KEEP_ALIVE: Duration = Duration::from_millis(1);

/// How long nobody must be receiving, with datagrams waiting, before the
/// pool grows.
const GROWTH_DELAY: Duration = Duration::from_millis(1);

/// How long every worker must be busy, with no datagram waiting, before
/// the pool grows anyway (slow handlers: someone should be receiving).
const BUSY_DELAY: Duration = Duration::from_millis(10);

/// The receiving workers of one server.
pub(super) struct Receivers<S> {
    config: GroupConfig,
    /// The running workers, between `start` and `stop`.
    group: Option<Arc<ThreadGroup>>,
    _socket: PhantomData<fn() -> S>,
}

impl<S: DatagramSocket> Receivers<S> {
    pub(super) fn new(config: GroupConfig) -> Self {
        Receivers {
            config,
            group: None,
            _socket: PhantomData,
        }
    }

    pub(super) fn running(&self) -> bool {
        self.group.is_some()
    }

    /// Switches the socket to blocking receives (with the keep-alive as a
    /// timeout, so idle workers can retire) and starts the minimum of
    /// workers.
    pub(super) fn start<F>(&mut self, service: &Arc<DatagramService<S, F>>, socket: &Arc<S>) -> io::Result<()>
    where
        F: Lifecycle<DatagramRequest<S>>,
    {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(self.config.keep_alive.max(MIN_KEEP_ALIVE)))?;
        let control = service.control();
        let group = ThreadGroup::new(self.config.clone(), Arc::clone(&control.counters.workers));
        self.group = Some(Arc::clone(&group));
        for _ in 0..self.config.min_workers {
            spawn_receiver(service, &group, socket)?;
        }
        Ok(())
    }

    /// Adds a worker if, after a moment, still nobody is receiving.
    pub(super) fn grow<F>(&mut self, control: &Control, service: &Arc<DatagramService<S, F>>, socket: &Arc<S>)
    where
        F: Lifecycle<DatagramRequest<S>>,
    {
        let Some(group) = &self.group else { return };
        // Give the busy workers a moment; only a lasting shortage of
        // receivers is worth a thread.
        if control.sleep_unless_shutdown(GROWTH_DELAY) {
            return;
        }
        service.starving.store(false, Ordering::Release);
        if group.counts.idle() > 0 {
            return;
        }
        // Datagrams waiting with nobody receiving: a worker is short now.
        // None waiting, the workers may just have been preempted a moment
        // (a client waits for its reply meanwhile): only workers busy for
        // longer are worth another, which then keeps someone receiving.
        if !crate::sys::datagram_waiting(&**socket)
            && (control.sleep_unless_shutdown(BUSY_DELAY) || group.counts.idle() > 0)
        {
            return;
        }
        let _ = spawn_receiver(service, group, socket);
    }

    /// Wakes the workers blocked receiving, lets the requests in flight
    /// finish within the grace period, and joins the workers.
    pub(super) fn stop(self, socket: &S, grace: Duration) {
        let Some(group) = self.group else { return };
        let deadline = Instant::now() + grace;
        let stopped = if cfg!(any(target_os = "linux", target_os = "android")) {
            wake_by_shutdown(socket);
            group.wait_exited(deadline)
        } else {
            wake_by_datagrams(socket, &group, deadline)
        };
        if stopped {
            group.join();
        } else {
            log::error!(
                "{} worker(s) still serving after the grace period; leaving them detached",
                group.counts.live()
            );
        }
    }
}

/// Starts a worker if the group is below its maximum.
fn spawn_receiver<S, F>(
    service: &Arc<DatagramService<S, F>>,
    group: &Arc<ThreadGroup>,
    socket: &Arc<S>,
) -> io::Result<bool>
where
    S: DatagramSocket,
    F: Lifecycle<DatagramRequest<S>>,
{
    let (service, workers, socket) = (Arc::clone(service), Arc::clone(group), Arc::clone(socket));
    group.try_spawn(move || receive_loop(&service, &workers, socket))
}

/// A worker's life: receive, serve, repeat.
fn receive_loop<S, F>(service: &Arc<DatagramService<S, F>>, group: &Arc<ThreadGroup>, socket: Arc<S>) -> Exit
where
    S: DatagramSocket,
    F: Lifecycle<DatagramRequest<S>>,
{
    let control = service.control();
    let _mark = control.mark_current_thread();
    let mut request = service.new_request(socket);
    let idle = &group.counts.idle;
    let mut backoff = Backoff::default();
    loop {
        if control.is_shutdown_requested() {
            return Exit::Stopped;
        }
        idle.fetch_add(1, Ordering::AcqRel);
        let received = request.receive();
        let others_receiving = idle.fetch_sub(1, Ordering::AcqRel) > 1;
        if control.is_shutdown_requested() {
            // Either the shutdown wake-up, or a datagram that arrived
            // as shutdown began; serving stops either way.
            return Exit::Stopped;
        }
        match received {
            Ok(received) => {
                backoff.succeeded("recv");
                if !others_receiving && !service.starving.swap(true, Ordering::AcqRel) {
                    // Nobody is left receiving: the loop thread decides
                    // whether to add a worker.
                    control.wake();
                }
                service.serve(&mut request, received);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                // A keep-alive without datagrams.
                if others_receiving && group.try_retire() {
                    return Exit::Retired;
                }
            }
            Err(e) => {
                if let Err(fatal) = service.receive_failed(e, &mut backoff) {
                    service.failure.lock().get_or_insert(fatal);
                    control.request_shutdown();
                    return Exit::Stopped;
                }
            }
        }
    }
}

/// Shuts the socket's read side. On Linux this wakes every thread blocked
/// receiving on it, even when it is not connected (which the call reports
/// as `ENOTCONN` after doing it).
fn wake_by_shutdown(socket: &impl AsFd) {
    if let Err(e) = socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Read)
        && e.kind() != io::ErrorKind::NotConnected
    {
        log::warn!("cannot shut the socket's read side: {e}");
    }
}

/// Sends the socket empty datagrams, one per worker still alive, until all
/// have exited or `deadline` passes. Datagrams can be lost when the
/// receive buffer is full, hence the rounds. True if they all exited.
fn wake_by_datagrams<S: DatagramSocket>(socket: &S, group: &ThreadGroup, deadline: Instant) -> bool {
    const ROUND: Duration = Duration::from_millis(20);
    loop {
        for _ in 0..group.counts.live() {
            if let Err(e) = socket.poke() {
                log::warn!("cannot wake the datagram workers: {e}");
                return group.wait_exited(deadline);
            }
        }
        let now = Instant::now();
        if group.wait_exited((now + ROUND).min(deadline)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::atomic::AtomicBool;

    /// The portable wake-up, exercised here even where Linux's is used.
    #[test]
    fn datagram_wake_up_stops_blocked_receivers() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let config = GroupConfig {
            max_workers: 4,
            ..GroupConfig::default()
        };
        let group = ThreadGroup::new(config, Arc::default());
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..4 {
            let (socket, stop) = (Arc::clone(&socket), Arc::clone(&stop));
            let spawned = group
                .try_spawn(move || {
                    let mut buf = [0u8; 16];
                    while !stop.load(Ordering::Acquire) {
                        let _ = socket.recv_from(&mut buf);
                    }
                    Exit::Stopped
                })
                .unwrap();
            assert!(spawned);
        }
        stop.store(true, Ordering::Release);
        assert!(wake_by_datagrams(
            &*socket,
            &group,
            Instant::now() + Duration::from_secs(10)
        ));
        group.join();
    }
}
