//! Who answers a request: the thread of its connection (tiny_http patch
//! 0008), so a request crosses no thread between its socket and its
//! answer, and every connection has its own (tiny_http starts them as
//! connections come and lets them go when they end).
//!
//! At most `workers` requests are worked on at once and `queue` more wait
//! for one of them to finish; a request beyond that is refused with 429
//! `capacity_exceeded` on the spot. What must be answered whatever the
//! load (probes, preflights, refusals while draining:
//! [`Service::is_quick`]) is answered at once, on its own connection's
//! thread, without waiting for a place.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// What the server does with the requests it is handed.
pub trait Service: Send + Sync + 'static {
    /// True for requests answered at once, whatever the load.
    fn is_quick(&self, rq: &tiny_http::Request) -> bool;
    /// Answers one request.
    fn serve(&self, rq: tiny_http::Request);
    /// Answers a request that found every worker busy and the queue full.
    fn refuse_busy(&self, rq: tiny_http::Request);
}

/// The requests of one server, and the server while it accepts.
pub struct Workers {
    server: Option<tiny_http::Server>,
    gate: Arc<Gate>,
}

/// Who may work on a request now, and who waits.
struct Gate {
    /// Requests admitted and not finished: working or waiting.
    admitted: AtomicUsize,
    /// The most that may be admitted: the workers and the queue.
    most: usize,
    /// Requests being worked on, at most `workers`.
    working: Mutex<usize>,
    workers: usize,
    /// Signalled when one finishes.
    freed: Condvar,
}

impl Gate {
    /// Admits a request unless the workers and the queue are full.
    fn admit(&self) -> bool {
        self.admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.most).then_some(n + 1)
            })
            .is_ok()
    }

    /// Works on an admitted request once a worker's place is free.
    fn work(&self, serve: impl FnOnce()) {
        {
            let mut working = self.working.lock();
            while *working >= self.workers {
                self.freed.wait(&mut working);
            }
            *working += 1;
        }
        serve();
        *self.working.lock() -= 1;
        self.freed.notify_one();
        self.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Workers {
    /// Serves `service` with places for `workers` requests at once and a
    /// queue of `queue` in front of them, on the server `serving` makes
    /// with the handler it is given.
    pub fn start(
        service: Arc<dyn Service>,
        workers: usize,
        queue: usize,
        serving: impl FnOnce(tiny_http::Handler) -> io::Result<tiny_http::Server>,
    ) -> io::Result<Workers> {
        let workers = workers.max(1);
        let gate = Arc::new(Gate {
            admitted: AtomicUsize::new(0),
            most: workers + queue,
            working: Mutex::new(0),
            workers,
            freed: Condvar::new(),
        });
        let admits = gate.clone();
        let handler: tiny_http::Handler = Arc::new(move |rq| answer(&*service, &admits, rq));
        Ok(Workers {
            server: Some(serving(handler)?),
            gate,
        })
    }

    /// Requests admitted and not finished yet, waiting ones included: what
    /// a drain waits for.
    pub fn in_flight(&self) -> usize {
        self.gate.admitted.load(Ordering::SeqCst)
    }

    /// Requests being worked on now.
    pub fn busy(&self) -> usize {
        *self.gate.working.lock()
    }

    /// Stops accepting connections. Requests on connections already open
    /// are still answered (refused, while draining).
    pub fn stop(&mut self) {
        drop(self.server.take());
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request, on its connection's thread. The handler's own panics are
/// answered as 500 by the pipeline; this only keeps the thread (and the
/// counts) alive past one in the writing.
fn answer(service: &dyn Service, gate: &Gate, rq: tiny_http::Request) {
    if service.is_quick(&rq) {
        let _ = catch_unwind(AssertUnwindSafe(|| service.serve(rq)));
    } else if gate.admit() {
        gate.work(|| {
            let _ = catch_unwind(AssertUnwindSafe(|| service.serve(rq)));
        });
    } else {
        let _ = catch_unwind(AssertUnwindSafe(|| service.refuse_busy(rq)));
    }
}
