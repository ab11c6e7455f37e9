//! The end of a server's workers, shared by every pooled mode: a grace
//! period for what they serve, a forced close, a last wait, and workers
//! still running then are left detached rather than joined.

use std::time::Instant;

use std::net::Shutdown;

use crate::config::FORCE_CLOSE_WAIT;
use crate::control::Control;
use crate::control::registry::force_close;
use crate::pool::{Pool, ThreadGroup, Work};

/// Waits for `workers` to exit within the grace period that began at
/// `started`; past it, `force` closes what they still serve, in two steps
/// ([`force_close`]), and they get [`FORCE_CLOSE_WAIT`] more. False if
/// some are still running then: they are left detached (and said so),
/// not joined.
pub(crate) fn wind_down(
    workers: &ThreadGroup,
    control: &Control,
    started: Instant,
    force: impl FnMut(Shutdown),
) -> bool {
    if workers.wait_exited(started + control.grace()) {
        return true;
    }
    if force_close(force, |deadline| workers.wait_exited(deadline)) {
        return true;
    }
    if workers.wait_exited(Instant::now() + FORCE_CLOSE_WAIT) {
        return true;
    }
    log::error!(
        "{} handler(s) still running after their connections were closed; leaving them detached",
        workers.counts.live()
    );
    false
}

/// The end of a pool: lets it finish within the grace period, force-closes
/// what is left, joins the workers.
pub(crate) fn drain<W: Work>(mut pool: Pool<W>, control: &Control, mut force_close: impl FnMut(Shutdown)) {
    let started = Instant::now();
    pool.close();
    let workers = pool.group();
    let done = wind_down(workers, control, started, |how| {
        if how == Shutdown::Read {
            let open = control.counters.active.get();
            log::info!("grace period over; closing the {open} connections still open");
            pool.abandon();
        }
        force_close(how);
        log::debug!("connections shut ({how:?}) after {:?}", started.elapsed());
    });
    if !done {
        return;
    }
    log::debug!("workers done after {:?}", started.elapsed());
    workers.join();
    log::debug!("workers joined after {:?}", started.elapsed());
}
