//! Who answers a request, and how many are worked on at once.
//!
//! tiny_http (patched, `vendor/tiny_http/PATCHED.md`) gives every
//! connection a thread of its pool and calls [`Workers::handle`] there for
//! each request: one thread reads, answers and logs it, with no hand-over
//! between threads. Probes (`/health`, `/v1/models`), preflights and
//! refusals during a drain are answered at once. Everything else first
//! takes one of `WORKER_THREADS` slots, waiting while all are taken: a
//! long stream keeps its slot for its whole life, so the cap is sized for
//! many open streams. Connection threads idle for five seconds leave, down
//! to four; once they are back to that, freed heap and parked upstream
//! connections are handed back, so memory taken by a burst does not stay.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::pipeline;
use crate::app::App;

/// A connection thread needs far less than the default 8 MB; TLS
/// handshakes in the passthrough are the deepest thing it does.
pub const THREAD_STACK: usize = 256 * 1024;

pub struct Workers {
    app: Arc<App>,
    busy: Mutex<usize>,
    slot_freed: Condvar,
    max: usize,
}

impl Workers {
    pub fn new(app: Arc<App>) -> Workers {
        let max = app.config.worker_threads;
        Workers {
            app,
            busy: Mutex::new(0),
            slot_freed: Condvar::new(),
            max,
        }
    }

    /// Answers one request on the calling (connection) thread.
    pub fn handle(&self, rq: tiny_http::Request) {
        if pipeline::is_fast_path(&self.app, &rq) {
            pipeline::serve(&self.app, rq);
            return;
        }
        // Counted before waiting for a slot: a drain waits for queued
        // requests too.
        let _inflight = InFlight::enter(&self.app);
        let _slot = self.take_slot();
        pipeline::serve(&self.app, rq);
    }

    fn take_slot(&self) -> Slot<'_> {
        let mut busy = self.busy.lock();
        while *busy >= self.max {
            self.slot_freed.wait(&mut busy);
        }
        *busy += 1;
        Slot(self)
    }

    /// Requests holding a slot now.
    pub fn busy(&self) -> usize {
        *self.busy.lock()
    }

    /// Run once the connection threads have been back at their resting
    /// number for a moment (those that left have finished exiting).
    pub fn on_idle(&self) {
        self.app.passthrough.drop_parked_connections();
        super::threads::reap();
        release_free_memory();
        log::debug!("connection threads back to rest; parked connections and free heap released");
    }
}

/// Released on every way out of `handle`, unwinding included.
struct Slot<'a>(&'a Workers);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock() -= 1;
        self.0.slot_freed.notify_one();
    }
}

struct InFlight<'a>(&'a App);

impl InFlight<'_> {
    fn enter(app: &App) -> InFlight<'_> {
        app.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(app)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives memory freed after a burst back to the system (glibc keeps it
/// otherwise).
fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
