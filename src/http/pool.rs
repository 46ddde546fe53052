//! The accept loop and the worker pool.
//!
//! One thread takes requests from tiny_http. Probes (`/health`,
//! `/v1/models`), preflights and refusals during a drain are answered right
//! there, so they never queue behind long requests. Everything else goes
//! over a channel to the workers. Workers are started on demand, up to
//! `WORKER_THREADS`, and then stay: a long stream holds its worker for its
//! whole life, so the cap is sized for many open streams, and starting
//! lazily keeps an idle server small.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use super::pipeline;
use crate::app::App;

/// A worker needs far less than the default 8 MB; TLS handshakes in the
/// passthrough are the deepest thing it does.
const WORKER_STACK: usize = 256 * 1024;

pub struct Workers {
    app: Arc<App>,
    sender: Sender<tiny_http::Request>,
    receiver: Receiver<tiny_http::Request>,
    spawned: AtomicUsize,
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
            spawned: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    fn dispatch(&self, rq: tiny_http::Request) {
        self.app.inflight.fetch_add(1, Ordering::SeqCst);
        let queued = self.sender.len();
        if self.idle.load(Ordering::SeqCst) <= queued
            && self.spawned.load(Ordering::SeqCst) < self.max
        {
            self.spawn_worker();
        }
        if let Err(err) = self.sender.send(rq) {
            // Only possible once every worker is gone; answer here.
            self.app.inflight.fetch_sub(1, Ordering::SeqCst);
            pipeline::serve(&self.app, err.into_inner());
        }
    }

    fn spawn_worker(&self) {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let receiver = self.receiver.clone();
        let app = self.app.clone();
        let idle = self.idle.clone();
        let spawned = thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                idle.fetch_add(1, Ordering::SeqCst);
                while let Ok(rq) = receiver.recv() {
                    idle.fetch_sub(1, Ordering::SeqCst);
                    pipeline::serve(&app, rq);
                    app.inflight.fetch_sub(1, Ordering::SeqCst);
                    idle.fetch_add(1, Ordering::SeqCst);
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
