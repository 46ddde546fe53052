//! Who answers a request: a fixed set of threads, each taking requests
//! from tiny_http itself (as rouille's do), so a request crosses from its
//! connection's thread straight to the one that answers it.
//!
//! At most `workers` requests are worked on at once and `queue` more wait
//! for one of them to finish; a request beyond that is refused with 429
//! `capacity_exceeded` on the spot. Threads start as requests need them,
//! up to `workers + queue + 1`, and leave after a few idle seconds (down
//! to four), so idle memory does not grow with the limit. Whenever a
//! thread takes the last free place another starts, so one is always left
//! for what must be answered whatever the load: probes, preflights,
//! refusals while draining ([`Service::is_quick`]) and those 429s.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Thread stacks: the deepest thing a request does is a TLS handshake.
const WORKER_STACK: usize = 256 * 1024;
/// Threads kept while idle; more start as requests need them.
const MIN_THREADS: usize = 4;
/// A thread with nothing to do for this long leaves (down to the minimum).
const IDLE_LEAVE: Duration = Duration::from_secs(5);

/// The threads of one server.
pub struct Workers {
    shared: Arc<Shared>,
}

/// What every thread of the pool uses.
struct Shared {
    server: tiny_http::Server,
    service: Arc<dyn Service>,
    gate: Gate,
    stopping: AtomicBool,
    threads: Mutex<Threads>,
    /// One more than the gate admits: the thread that is always free.
    most_threads: usize,
}

/// The pool's threads: alive, and waiting for a request.
struct Threads {
    alive: usize,
    idle: usize,
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
    /// A pool for `workers` requests at once and a queue of `queue` in
    /// front of them, taking requests from `server`.
    pub fn start(
        server: tiny_http::Server,
        service: Arc<dyn Service>,
        workers: usize,
        queue: usize,
    ) -> io::Result<Workers> {
        let workers = workers.max(1);
        let most_threads = workers + queue + 1;
        let first = MIN_THREADS.min(most_threads);
        let shared = Arc::new(Shared {
            server,
            service,
            gate: Gate {
                admitted: AtomicUsize::new(0),
                most: workers + queue,
                working: Mutex::new(0),
                workers,
                freed: Condvar::new(),
            },
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Threads {
                alive: first,
                idle: first,
            }),
            most_threads,
        });
        for _ in 0..first {
            spawn_thread(&shared)?;
        }
        Ok(Workers { shared })
    }

    /// Requests admitted and not finished yet, waiting ones included: what
    /// a drain waits for.
    pub fn in_flight(&self) -> usize {
        self.shared.gate.admitted.load(Ordering::SeqCst)
    }

    /// Requests being worked on now.
    pub fn busy(&self) -> usize {
        *self.shared.gate.working.lock()
    }

    /// Threads of the pool alive now.
    pub fn threads(&self) -> usize {
        self.shared.threads.lock().alive
    }

    /// Stops taking requests: each thread leaves at its next turn to take
    /// one, after the requests already received are answered (refused,
    /// while draining).
    pub fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for _ in 0..self.threads() {
            self.shared.server.unblock();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a thread already counted in `shared.threads`.
fn spawn_thread(shared: &Arc<Shared>) -> io::Result<()> {
    let mine = shared.clone();
    std::thread::Builder::new()
        .name("worker".into())
        .stack_size(WORKER_STACK)
        .spawn(move || take_requests(&mine))
        .map(drop)
}

fn take_requests(shared: &Arc<Shared>) {
    loop {
        // Nothing: an idle spell, or the unblock of `stop` (accept errors
        // are handled inside tiny_http).
        let Ok(Some(rq)) = shared.server.recv_timeout(IDLE_LEAVE) else {
            let mut threads = shared.threads.lock();
            if shared.stopping.load(Ordering::SeqCst) || threads.alive > MIN_THREADS {
                threads.alive -= 1;
                threads.idle -= 1;
                return;
            }
            continue;
        };
        took_one(shared);
        let service = &*shared.service;
        // The handler's own panics are answered as 500 by the pipeline;
        // this only keeps the thread (and the counts) alive past one in
        // the writing.
        if service.is_quick(&rq) {
            let _ = catch_unwind(AssertUnwindSafe(|| service.serve(rq)));
        } else if shared.gate.admit() {
            shared.gate.work(|| {
                let _ = catch_unwind(AssertUnwindSafe(|| service.serve(rq)));
            });
        } else {
            let _ = catch_unwind(AssertUnwindSafe(|| service.refuse_busy(rq)));
        }
        shared.threads.lock().idle += 1;
    }
}

/// A thread has taken a request. If it was the last one waiting for
/// requests, another starts, so that the next request (a probe, or one to
/// refuse) never waits for this one.
fn took_one(shared: &Arc<Shared>) {
    let mut threads = shared.threads.lock();
    threads.idle -= 1;
    let more = threads.idle == 0
        && threads.alive < shared.most_threads
        && !shared.stopping.load(Ordering::SeqCst);
    if !more {
        return;
    }
    threads.alive += 1;
    threads.idle += 1;
    drop(threads);
    if let Err(e) = spawn_thread(shared) {
        log::warn!("could not start a worker thread: {e}");
        let mut threads = shared.threads.lock();
        threads.alive -= 1;
        threads.idle -= 1;
    }
}
