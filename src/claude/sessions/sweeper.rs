//! The session-sweeper thread: expires sessions every cleanup interval and
//! writes pending registry changes in between, so neither the sweep nor
//! the file's fsync sits on a request's path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::SessionStore;

/// How often pending registry changes are written: new sessions reach the
/// disk within this long (and at shutdown), and a busy server writes the
/// file at most this often instead of once per request.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Runs [`SessionStore::sweep`] every `every` until `stop` is set, looking
/// at `stop` at least every 100 ms so shutdown does not wait on it, and
/// writes pending registry changes in between.
pub fn sweep_until_stopped(store: &SessionStore, every: Duration, stop: &AtomicBool) {
    let tick = every.min(Duration::from_millis(100));
    let mut next = Instant::now() + every;
    let mut next_flush = Instant::now() + FLUSH_EVERY;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let now = Instant::now();
        if now >= next && !stop.load(Ordering::Relaxed) {
            store.sweep();
            next = now + every;
            next_flush = now + FLUSH_EVERY;
        } else if now >= next_flush {
            store.flush();
            next_flush = now + FLUSH_EVERY;
        }
    }
    store.flush();
}

/// [`sweep_until_stopped`] on a thread of its own; `None` if the thread
/// could not be started (logged; sessions then expire only when resumed).
#[cfg(test)]
pub fn spawn_sweeper(
    store: std::sync::Arc<SessionStore>,
    every: Duration,
    stop: std::sync::Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("session-sweeper".into())
        .spawn(move || sweep_until_stopped(&store, every, &stop));
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            log::error!("could not start the session sweeper: {e}");
            None
        }
    }
}
