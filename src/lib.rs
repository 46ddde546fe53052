//! claude-cli-api: one OpenAI Chat Completions endpoint with two backends,
//! an OpenAI-compatible upstream (relayed as is) and the `claude` CLI
//! (converted to OpenAI responses, with sessions).
//!
//! [`start`] runs a server on the address in its [`Config`] and returns a
//! [`ServerHandle`]; tests and benchmarks start one on port 0. The binary
//! adds the environment, the logger and signal handling around it.

pub mod admission;
pub mod allowance;
pub mod anthropic;
pub mod app;
pub mod auth;
pub mod chains;
pub mod check;
pub mod claude;
#[cfg(test)]
mod client_fixtures_tests;
pub mod client_words;
pub mod clock;
pub mod config;
pub mod dialect;
pub mod dirs;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod mode;
pub mod passthrough;
pub mod pipeline;
pub mod ratelimit;
pub mod request_json;
pub mod responses;
pub mod routes;
pub mod session_id;
pub mod session_routes;
pub mod supervisor;
pub mod turn_event;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use app::App;
pub use config::Config;

/// A request head (request line and headers) larger than this closes the
/// connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    app: Arc<App>,
    /// Who answers requests; dropped to stop accepting connections.
    workers: Option<http::workers::Workers>,
}

#[derive(Debug)]
pub enum StartError {
    /// Directories the server cannot use, one line each.
    Directories(Vec<String>),
    Bind(String, std::io::Error),
    Setup(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Directories(lines) => write!(f, "{}", lines.join("; ")),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

pub fn start(config: Config) -> Result<ServerHandle, StartError> {
    let unusable = dirs::check(&config);
    if !unusable.is_empty() {
        return Err(StartError::Directories(unusable));
    }
    let bind = if config.host.contains(':') && !config.host.starts_with('[') {
        format!("[{}]:{}", config.host, config.port)
    } else {
        format!("{}:{}", config.host, config.port)
    };
    let listener = TcpListener::bind(&bind).map_err(|e| StartError::Bind(bind.clone(), e))?;
    deepen_backlog(&listener);
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(bind.clone(), e))?;
    let app = App::new(config);
    let timeouts = tiny_http::ConnectionTimeouts {
        idle: Some(app.config.keepalive_timeout),
        head: Some(app.config.headers_timeout),
        body_read: Some(app.config.body_timeout),
        max_head_bytes: MAX_HEAD_BYTES,
        // A client that stops reading cannot hold a worker in a blocked
        // write for longer than this.
        write: Some(app.config.body_timeout),
        // Small event writes must not wait for the client's delayed ACK
        // (Nagle's algorithm: about 40 ms each).
        nodelay: true,
    };
    let workers = app.config.worker_threads;
    let queue = workers.min(MAX_QUEUED);
    let serving = |handler| {
        tiny_http::Server::from_listener_serving(listener, None, timeouts, handler)
            .map_err(std::io::Error::other)
    };
    let workers = http::workers::Workers::start(app.clone(), workers, queue, serving)
        .map_err(|e| StartError::Setup(format!("cannot start accepting: {e}")))?;
    Ok(ServerHandle {
        addr,
        app,
        workers: Some(workers),
    })
}

/// Requests that may wait for a place: as many as there are places, up to
/// this (a burst of short requests, each waiting on its connection's thread).
const MAX_QUEUED: usize = 64;

/// Connections the kernel may hold completed for the accept thread.
const LISTEN_BACKLOG: libc::c_int = 1024;

/// std listens with a backlog of 128. When more connections than that
/// arrive at once (200 clients opening streams together) while the accept
/// thread is still starting threads for the first ones, the kernel drops
/// the surplus handshakes and the clients only retry after a second. A
/// second `listen` on the socket raises the limit (the kernel caps it at
/// `net.core.somaxconn`).
fn deepen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket that is already listening.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        log::warn!("could not raise the listen backlog");
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests still running when the grace period ran out.
    pub abandoned: usize,
    pub took: Duration,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Requests a worker is answering now.
    pub fn busy_workers(&self) -> usize {
        self.workers.as_ref().map_or(0, |w| w.busy())
    }

    /// Requests handed to the workers and not finished, queued ones
    /// included: what a drain waits for.
    pub fn in_flight(&self) -> usize {
        self.workers.as_ref().map_or(0, |w| w.in_flight())
    }

    /// Starts refusing new work (503 `server_shutting_down`) and asks every
    /// running `claude` child to stop.
    pub fn begin_drain(&self) {
        self.app.draining.store(true, Ordering::SeqCst);
        self.app.claude.terminate_all();
    }

    /// Force-kills whatever children are left.
    pub fn kill_children(&self) {
        self.app.claude.kill_all();
    }

    /// Drains: refuse new work, let running requests finish for up to
    /// `grace`, kill what is left, then stop accepting.
    pub fn shutdown(mut self, grace: Duration) -> DrainReport {
        let started = Instant::now();
        self.begin_drain();
        let deadline = started + grace;
        while self.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let abandoned = self.in_flight();
        if abandoned > 0 {
            self.kill_children();
            // Killed children end their requests; give them a moment to
            // write their final error event.
            let cutoff = Instant::now() + Duration::from_millis(500);
            while self.in_flight() > 0 && Instant::now() < cutoff {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.stop_accepting();
        self.app.claude.flush_sessions();
        DrainReport {
            abandoned,
            took: started.elapsed(),
        }
    }

    /// Requests already queued are still answered (refused, while
    /// draining); the binary exits right after.
    fn stop_accepting(&mut self) {
        drop(self.workers.take());
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.workers.is_some() {
            self.app.draining.store(true, Ordering::SeqCst);
            self.app.claude.kill_all();
            self.stop_accepting();
            self.app.claude.flush_sessions();
        }
    }
}
