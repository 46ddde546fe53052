//! The accept loop and the worker pool.
//!
//! One thread takes requests from tiny_http. Probes (`/health`,
//! `/v1/models`), preflights and refusals during a drain are answered right
//! there, so they never queue behind long requests. Everything else goes
//! over a channel to the workers. Workers are started on demand, up to
//! `WORKER_THREADS`: a long stream holds its worker for its whole life, so
//! the cap is sized for many open streams. A worker idle for a few seconds
//! leaves (down to a small core), and the last one out returns freed heap
//! to the system, so memory taken by a burst does not stay.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::pipeline;
use crate::app::App;

/// A worker needs far less than the default 8 MB; TLS handshakes in the
/// passthrough are the deepest thing it does.
const WORKER_STACK: usize = 256 * 1024;

/// Workers kept however quiet the server is.
const CORE_WORKERS: usize = 4;
/// A worker beyond the core leaves after this long without a request.
/// Longer than tiny_http's connection threads (5 s) and parked upstream
/// connections (4 s) live, so the last worker out frees the heap after
/// them.
const IDLE_RETIRE: Duration = Duration::from_secs(6);

pub struct Workers {
    app: Arc<App>,
    sender: Sender<tiny_http::Request>,
    receiver: Receiver<tiny_http::Request>,
    spawned: Arc<AtomicUsize>,
    idle: Arc<AtomicUsize>,
    max: usize,
}

impl Workers {
    pub fn new(app: Arc<App>) -> Workers {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let max = app.config.worker_threads;
        Workers {
            app,
            sender,
            receiver,
            spawned: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    fn dispatch(&self, rq: tiny_http::Request) {
        self.app.inflight.fetch_add(1, Ordering::SeqCst);
        // Sent first, counted after: a worker about to retire either sees
        // this request in the channel and stays, or has already left the
        // idle count and a new worker is started here.
        if let Err(err) = self.sender.send(rq) {
            // Only possible once every worker is gone; answer here.
            self.app.inflight.fetch_sub(1, Ordering::SeqCst);
            pipeline::serve(&self.app, err.into_inner());
            return;
        }
        if self.idle.load(Ordering::SeqCst) < self.sender.len()
            && self.spawned.load(Ordering::SeqCst) < self.max
        {
            self.spawn_worker();
        }
    }

    fn spawn_worker(&self) {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let receiver = self.receiver.clone();
        let app = self.app.clone();
        let idle = self.idle.clone();
        let count = self.spawned.clone();
        let spawned = thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                idle.fetch_add(1, Ordering::SeqCst);
                loop {
                    match receiver.recv_timeout(IDLE_RETIRE) {
                        Ok(rq) => {
                            idle.fetch_sub(1, Ordering::SeqCst);
                            pipeline::serve(&app, rq);
                            app.inflight.fetch_sub(1, Ordering::SeqCst);
                            idle.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            let retired = count
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    (n > CORE_WORKERS).then(|| n - 1)
                                })
                                .is_ok();
                            if retired {
                                idle.fetch_sub(1, Ordering::SeqCst);
                                if !receiver.is_empty() {
                                    // A request came in as this worker
                                    // left the count: stay and take it.
                                    count.fetch_add(1, Ordering::SeqCst);
                                    idle.fetch_add(1, Ordering::SeqCst);
                                    continue;
                                }
                                if count.load(Ordering::SeqCst) <= CORE_WORKERS {
                                    release_free_memory();
                                }
                                return;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            self.spawned.fetch_sub(1, Ordering::SeqCst);
            log::error!("could not start a worker thread: {e}");
        }
    }

    pub fn threads(&self) -> usize {
        self.spawned.load(Ordering::SeqCst)
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

/// Runs the accept loop on its own thread until `stop` is set and the
/// server is unblocked.
pub fn start_acceptor(
    http: Arc<tiny_http::Server>,
    workers: Arc<Workers>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("acceptor".into())
        .stack_size(WORKER_STACK)
        .spawn(move || loop {
            let rq = match http.recv() {
                Ok(rq) => rq,
                Err(e) => {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    log::warn!("accept failed: {e}");
                    continue;
                }
            };
            if pipeline::is_fast_path(&workers.app, &rq) {
                pipeline::serve(&workers.app, rq);
            } else {
                workers.dispatch(rq);
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
        })
}
