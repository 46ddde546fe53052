//! Who answers a request. tiny_http's connection threads read requests;
//! one receiving thread takes each of them and either answers it at once
//! (probes, preflights, refusals while draining: nothing that reads a body
//! or waits on anything) or hands it through a bounded channel to a fixed
//! pool of `WORKER_THREADS` workers. When the channel is full the request
//! is refused with 429 `capacity_exceeded` on the spot, so the receiving
//! thread never waits either: a probe is answered while every worker holds
//! a long stream.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, TrySendError};

/// What the server does with the requests it is handed.
pub trait Service: Send + Sync + 'static {
    /// True for requests the receiving thread answers itself.
    fn is_quick(&self, rq: &tiny_http::Request) -> bool;
    /// Answers one request.
    fn serve(&self, rq: tiny_http::Request);
    /// Answers a request that found every worker busy and the queue full.
    fn refuse_busy(&self, rq: tiny_http::Request);
}

/// Worker stacks: the deepest thing a worker does is a TLS handshake.
const WORKER_STACK: usize = 256 * 1024;

/// The receiving thread and the worker pool of one server.
pub struct Workers {
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    receiver: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Handed to the pool and not finished: queued or running.
    in_flight: AtomicUsize,
    /// Running on a worker.
    busy: AtomicUsize,
}

impl Workers {
    /// Starts `workers` threads and a queue of `queue` requests in front of
    /// them, and the thread that receives from `server`.
    pub fn start(
        server: tiny_http::Server,
        service: Arc<dyn Service>,
        workers: usize,
        queue: usize,
    ) -> io::Result<Workers> {
        let server = Arc::new(server);
        let counts = Arc::new(Counts::default());
        let (hand, take) = bounded::<tiny_http::Request>(queue.max(1));
        for n in 0..workers.max(1) {
            let (take, service, counts) = (take.clone(), service.clone(), counts.clone());
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(take, service, counts))?;
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let receiver = {
            let (server, stopping, counts) = (server.clone(), stopping.clone(), counts.clone());
            std::thread::Builder::new()
                .name("http-receive".into())
                .spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        // An error is the unblock of `stop` (accept errors
                        // are handled inside tiny_http).
                        let Ok(rq) = server.recv() else { continue };
                        if service.is_quick(&rq) {
                            service.serve(rq);
                            continue;
                        }
                        counts.in_flight.fetch_add(1, Ordering::SeqCst);
                        if let Err(TrySendError::Full(rq) | TrySendError::Disconnected(rq)) =
                            hand.try_send(rq)
                        {
                            counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                            service.refuse_busy(rq);
                        }
                    }
                })?
        };
        Ok(Workers {
            server,
            stopping,
            receiver: Some(receiver),
            counts,
        })
    }

    /// Requests handed to the pool and not finished yet, queued ones
    /// included: what a drain waits for.
    pub fn in_flight(&self) -> usize {
        self.counts.in_flight.load(Ordering::SeqCst)
    }

    /// Requests a worker is answering now.
    pub fn busy(&self) -> usize {
        self.counts.busy.load(Ordering::SeqCst)
    }

    /// Stops receiving and closes the listener. Requests already queued
    /// are still answered; the workers leave once the queue is empty.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(take: Receiver<tiny_http::Request>, service: Arc<dyn Service>, counts: Arc<Counts>) {
    // Ends when the receiving thread has dropped its end and the queue is
    // empty.
    for rq in take {
        counts.busy.fetch_add(1, Ordering::SeqCst);
        // The handler's own panics are answered as 500 by the pipeline;
        // this only keeps the worker (and the counts) alive past one in
        // the writing.
        let _ = catch_unwind(AssertUnwindSafe(|| service.serve(rq)));
        counts.busy.fetch_sub(1, Ordering::SeqCst);
        counts.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
