//! Claude Code backend: turns an OpenAI chat request into one run of the
//! `claude` CLI and its output back into an OpenAI answer.
//!
//! The order of a request: session id format, body validation, CLI
//! present, session lease (new or resumed, owner checked, busy refused),
//! a process slot (FIFO wait), spawn, then read. A stream sends its head
//! only once the model starts answering, so failures the CLI reports first
//! (refused credentials, unknown session) are still plain HTTP errors.
//!
//! The answer leaves as soon as the CLI's successful `result` line is read:
//! the real CLI takes another 25–40 ms to exit. The child is reaped after
//! the answer is written, and only then are its session and process slot
//! free; a resume of the session meanwhile waits for that.

pub mod adapter;
pub mod events;
pub mod failure;
pub mod models;
pub mod output;
pub mod pool;
pub mod prompt;
pub mod redact;
pub mod run;
pub mod sessions;
pub mod spawn;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::backend::{Backend, ChatRequest};
use crate::config::Config;
use crate::error::ApiError;
use crate::http::{Afterwards, Reply, SseWriter, StreamBody};
use crate::mode::Mode;
use crate::supervisor::{StopReason, Supervisor};
use adapter::Adapter;
use pool::{Capacity, ProcessPool, Slot};
use prompt::{build_invocation, SessionArg};
use run::{CliRun, Progress, RunSpec};
use sessions::{SessionLease, SessionStore};
use validate::validate;

pub struct ClaudeBackend {
    config: Config,
    cli: Option<PathBuf>,
    pool: Arc<ProcessPool>,
    supervisor: Arc<Supervisor>,
    sessions: Arc<OnceLock<Result<Arc<SessionStore>, String>>>,
    shutting_down: AtomicBool,
    sweeper_stop: Arc<AtomicBool>,
}

impl ClaudeBackend {
    pub fn new(config: &Config) -> Result<ClaudeBackend, String> {
        let path_var = config
            .child_env
            .0
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let backend = ClaudeBackend {
            config: config.clone(),
            cli: locate_cli(&config.claude_path, path_var),
            pool: ProcessPool::new(config.max_concurrent_processes),
            supervisor: Supervisor::start(config.kill_grace),
            sessions: Arc::new(OnceLock::new()),
            shutting_down: AtomicBool::new(false),
            sweeper_stop: Arc::new(AtomicBool::new(false)),
        };
        backend.start_sweeper();
        Ok(backend)
    }

    /// The registry is opened off the start-up path (by the sweeper, or by
    /// the first request, whichever comes first).
    fn sessions(&self) -> Result<Arc<SessionStore>, ApiError> {
        open_sessions(&self.sessions, &self.config)
            .clone()
            .map_err(|e| ApiError::BackendUnavailable {
                reason: format!("the session store cannot be used ({e})."),
            })
    }

    fn start_sweeper(&self) {
        let cell = self.sessions.clone();
        let config = self.config.clone();
        let stop = self.sweeper_stop.clone();
        let _ = std::thread::Builder::new()
            .name("session-sweeper".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Ok(store) = open_sessions(&cell, &config) {
                    sessions::spawn_sweeper(store.clone(), config.session_cleanup_interval, stop);
                }
            });
    }

    pub fn capacity(&self) -> Capacity {
        self.pool.capacity()
    }

    pub fn cli_path(&self) -> Option<&Path> {
        self.cli.as_deref()
    }

    /// Children alive right now.
    pub fn live_children(&self) -> usize {
        self.supervisor.live()
    }

    /// Resumes waiting for the previous CLI of their session to exit.
    pub fn resumes_waiting(&self) -> usize {
        match self.sessions.get() {
            Some(Ok(store)) => store.waiting_for_exit(),
            _ => 0,
        }
    }

    /// SIGTERM to every running child and no new ones (drain).
    pub fn terminate_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.supervisor.stop_all(StopReason::Shutdown);
    }

    /// Writes the session registry now and removes the work directories
    /// made ahead for sessions that never came (end of drain).
    pub fn flush_sessions(&self) {
        if let Some(Ok(store)) = self.sessions.get() {
            store.close();
            store.flush();
        }
    }

    /// SIGKILL to every running child (end of drain, second signal).
    pub fn kill_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.supervisor.kill_all();
    }

    fn prepare(&self, request: &ChatRequest) -> Result<Prepared, ApiError> {
        let resume_id = request.incoming.header("X-Claude-Session-ID");
        if let Some(id) = resume_id {
            sessions::parse_session_id(id)?;
        }
        let chat = validate(request.json)?;
        let Some(cli) = self.cli.clone() else {
            return Err(ApiError::BackendUnavailable {
                reason: "the claude CLI was not found. Install it or set CLAUDE_PATH.".into(),
            });
        };
        let store = self.sessions()?;
        let owner = request.incoming.api_key.as_ref();
        let lease = match resume_id {
            Some(id) => store.resume(id, owner, chat.cli_model)?,
            None => store.create(owner, chat.cli_model)?,
        };
        let Some(slot) = self.pool.acquire(self.config.pool_queue_timeout) else {
            forget_if_new(lease);
            return Err(ApiError::CapacityExceeded {
                retry_after_secs: 1,
            });
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            forget_if_new(lease);
            return Err(ApiError::ServerShuttingDown);
        }
        let session_arg = if lease.created() {
            SessionArg::New(lease.id().to_string())
        } else {
            SessionArg::Resume(lease.id().to_string())
        };
        let invocation = build_invocation(&chat, &session_arg, self.config.claude_skip_permissions);
        let meta = ChunkMeta {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4()),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: chat.requested_model.clone(),
        };
        let adapter = Adapter::new(
            meta.id.clone(),
            meta.created,
            meta.model.clone(),
            chat.include_usage,
        );
        let adapter = if chat.stream {
            adapter
        } else {
            adapter.without_chunks()
        };
        let spawned = CliRun::spawn(
            RunSpec {
                cli: &cli,
                config: &self.config,
                invocation,
                work_dir: lease.work_dir(),
                session_id: lease.id(),
                request_id: &request.incoming.request_id,
            },
            &self.supervisor,
            adapter,
        );
        let run = match spawned {
            Ok(run) => run,
            Err(e) => {
                forget_if_new(lease);
                return Err(e);
            }
        };
        let mut headers = vec![("X-Claude-Session-ID".to_string(), lease.id().to_string())];
        if lease.created() {
            headers.push(("X-Claude-Session-Created".into(), "true".into()));
        }
        if !chat.ignored_params.is_empty() {
            headers.push((
                "X-Claude-Ignored-Params".into(),
                chat.ignored_params.join(","),
            ));
        }
        Ok(Prepared {
            run,
            lease,
            _slot: slot,
            headers,
            meta,
        })
    }
}

/// A run in progress with what it holds: its session lease and process
/// slot are released when this is dropped, on every path.
struct Prepared {
    run: CliRun,
    lease: SessionLease,
    _slot: Slot,
    headers: Vec<(String, String)>,
    meta: ChunkMeta,
}

struct ChunkMeta {
    id: String,
    created: u64,
    model: String,
}

impl ChunkMeta {
    /// The finish chunk a broken stream still ends with.
    fn finish_chunk(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }))
        .unwrap_or_default()
    }
}

impl Prepared {
    /// A failed run leaves no registry entry for a session the client never
    /// learnt about, nor for one the CLI says does not exist.
    fn settle_error(self, error: ApiError) -> ApiError {
        let unknown = matches!(error, ApiError::SessionNotFound { .. });
        if self.lease.created() || unknown {
            let Prepared { lease, .. } = self;
            lease.forget();
        }
        error
    }

    /// The CLI has answered but may still be exiting. What the pipeline
    /// runs once the answer is written: reap the child, then free its
    /// process slot and its session (a resume meanwhile waits for that).
    fn close_afterwards(self) -> Afterwards {
        self.lease.answered();
        Box::new(move || {
            let Prepared {
                run,
                lease,
                _slot: slot,
                ..
            } = self;
            run.close();
            // The slot first: a resume woken by the lease then finds it free.
            drop(slot);
            drop(lease);
        })
    }

    fn with_headers(&self, reply: Reply) -> Reply {
        self.headers
            .iter()
            .fold(reply, |r, (k, v)| r.with_header(k.clone(), v.clone()))
    }
}

fn forget_if_new(lease: SessionLease) {
    if lease.created() {
        lease.forget();
    }
}

fn open_sessions<'a>(
    cell: &'a OnceLock<Result<Arc<SessionStore>, String>>,
    config: &Config,
) -> &'a Result<Arc<SessionStore>, String> {
    cell.get_or_init(|| {
        SessionStore::open(
            &config.state_dir,
            &config.claude_work_dir,
            config.session_ttl,
            config.max_session_age,
        )
        .map(Arc::new)
        .inspect_err(|e| log::error!("session store unavailable: {e}"))
    })
}

impl Backend for ClaudeBackend {
    fn mode(&self) -> Mode {
        Mode::ClaudeCode
    }

    fn complete(&self, request: &ChatRequest) -> Result<Reply, ApiError> {
        let mut prepared = self.prepare(request)?;
        loop {
            if let Some(finished) = prepared.run.take_answer() {
                let reply = prepared.with_headers(Reply::json(200, &finished.completion));
                return Ok(reply.with_afterwards(prepared.close_afterwards()));
            }
            if let Progress::Ended = prepared.run.step() {
                break;
            }
        }
        match prepared.run.finish() {
            Ok(finished) => {
                let reply = Reply::json(200, &finished.completion);
                Ok(prepared.with_headers(reply))
            }
            Err(error) => Err(prepared.settle_error(error)),
        }
    }

    fn stream(&self, request: &ChatRequest) -> Result<Reply, ApiError> {
        let mut prepared = self.prepare(request)?;
        let mut pending: Vec<Vec<u8>> = Vec::new();
        while !prepared.run.adapter.committed() {
            match prepared.run.step() {
                Progress::Chunks(chunks) => pending.extend(chunks),
                Progress::Ended => break,
            }
        }
        if !prepared.run.adapter.committed() {
            // Over before the model said anything: a plain answer or error.
            return match prepared.run.finish() {
                Ok(finished) => {
                    pending.extend(finished.final_chunks);
                    let reply = Reply::stream(Box::new(ClaudeStream {
                        prepared: None,
                        pending,
                    }));
                    Ok(prepared.with_headers(reply))
                }
                Err(error) => Err(prepared.settle_error(error)),
            };
        }
        let headers = std::mem::take(&mut prepared.headers);
        let reply = Reply::stream(Box::new(ClaudeStream {
            prepared: Some(prepared),
            pending,
        }));
        Ok(headers
            .into_iter()
            .fold(reply, |r, (k, v)| r.with_header(k, v)))
    }

    fn health(&self) -> &'static str {
        if self.cli.is_some() {
            "ok"
        } else {
            "error"
        }
    }
}

/// The rest of a stream after its head: queued chunks, then whatever the
/// CLI still writes, then the ending (final chunks, or finish + error).
struct ClaudeStream {
    prepared: Option<Prepared>,
    pending: Vec<Vec<u8>>,
}

impl StreamBody for ClaudeStream {
    fn write_events(self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards> {
        let ClaudeStream { prepared, pending } = *self;
        let mut client_gone = !send_deferred(sse, &pending);
        let Some(mut prepared) = prepared else {
            let _ = sse.flush();
            return None;
        };
        while !client_gone {
            if let Some(finished) = prepared.run.take_answer() {
                // The ending leaves with `[DONE]` in one write; the child is
                // reaped after it.
                send_deferred(sse, &finished.final_chunks);
                return Some(prepared.close_afterwards());
            }
            // Events go out before the worker would wait on the child again;
            // a burst the CLI wrote at once leaves in one write.
            if !prepared.run.output_pending() {
                client_gone = sse.flush().is_err();
                if client_gone {
                    break;
                }
            }
            match prepared.run.step() {
                Progress::Chunks(chunks) => client_gone = !send_deferred(sse, &chunks),
                Progress::Ended => break,
            }
        }
        if client_gone {
            prepared.run.client_gone();
            let _ = prepared.run.finish();
            return None;
        }
        // The ending is held: it leaves with `[DONE]` in one write.
        match prepared.run.finish() {
            Ok(finished) => {
                send_deferred(sse, &finished.final_chunks);
            }
            Err(error) => {
                for chunk in prepared.run.adapter.release_held() {
                    let _ = sse.data_deferred(&chunk);
                }
                let _ = sse.data_deferred(&prepared.meta.finish_chunk());
                let _ = sse.error(&error.message());
                // The client already holds the session id and the CLI has
                // the session on disk (it started answering): keep it.
            }
        }
        None
    }
}

/// Queues chunks for the next write; false once the client is gone.
fn send_deferred(sse: &mut SseWriter, chunks: &[Vec<u8>]) -> bool {
    chunks.iter().all(|c| sse.data_deferred(c).is_ok())
}

impl Drop for ClaudeBackend {
    fn drop(&mut self) {
        self.flush_sessions();
        self.sweeper_stop.store(true, Ordering::SeqCst);
        self.supervisor.kill_all();
        self.supervisor.shutdown();
    }
}

/// Finds the CLI: a path with a slash is taken as is, a bare name is looked
/// up in `PATH`. Only an executable regular file counts.
pub fn locate_cli(claude_path: &Path, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    // Absolute, because the child is started in its session's directory
    // and a relative path would be looked up from there.
    let found = if claude_path.components().count() > 1 || claude_path.is_absolute() {
        executable(claude_path).then(|| claude_path.to_path_buf())
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(claude_path))
            .find(|p| executable(p))
    };
    found.and_then(|p| std::path::absolute(p).ok())
}
