//! One request's turn on a session, from its checks to its end: the CLI run
//! with the session lease and process slot it holds, the reply headers,
//! and what happens to the session when the run fails or has answered.
//!
//! The order: body validation, CLI present, session lease (new or resumed,
//! owner checked, busy refused), a process slot (FIFO wait), spawn. The
//! session id's form was checked where the header was read.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::adapter::Adapter;
use super::pool::Slot;
use super::prompt::{build_invocation, SessionArg};
use super::run::{CliRun, RunSpec};
use super::sessions::SessionLease;
use super::validate::validate;
use super::ClaudeBackend;
use crate::backend::ChatRequest;
use crate::error::ApiError;
use crate::http::{Afterwards, Reply};

/// A run in progress with what it holds: its session lease and process
/// slot are released when this is dropped, on every path.
pub(super) struct Turn {
    pub(super) run: CliRun,
    lease: SessionLease,
    _slot: Slot,
    pub(super) headers: Vec<(String, String)>,
    pub(super) meta: ChunkMeta,
}

/// What every chunk of this turn's answer is labelled with.
pub(super) struct ChunkMeta {
    id: String,
    created: u64,
    model: String,
}

impl ChunkMeta {
    /// The finish chunk a broken stream still ends with.
    pub(super) fn finish_chunk(&self) -> Vec<u8> {
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

impl Turn {
    /// Checks the request, leases its session, waits for a process slot and
    /// starts the CLI. A session this turn created is forgotten again if
    /// the CLI never starts.
    pub(super) fn start(backend: &ClaudeBackend, request: &ChatRequest) -> Result<Turn, ApiError> {
        let chat = validate(request.json)?;
        let Some(cli) = backend.cli.clone() else {
            return Err(ApiError::BackendUnavailable {
                reason: "the claude CLI was not found. Install it or set CLAUDE_PATH.".into(),
            });
        };
        let store = backend.sessions()?;
        let owner = request.incoming.api_key.as_ref();
        let lease = match &request.session_id {
            Some(id) => store.resume(id, owner, chat.cli_model)?,
            None => store.create(owner, chat.cli_model)?,
        };
        let Some(slot) = backend.pool.acquire(backend.config.pool_queue_timeout) else {
            forget_if_new(lease);
            return Err(ApiError::CapacityExceeded {
                retry_after_secs: 1,
            });
        };
        if backend.shutting_down.load(Ordering::SeqCst) {
            forget_if_new(lease);
            return Err(ApiError::ServerShuttingDown);
        }
        let session_arg = if lease.created() {
            SessionArg::New(lease.id().to_string())
        } else {
            SessionArg::Resume(lease.id().to_string())
        };
        let invocation = build_invocation(
            &chat,
            &session_arg,
            lease.work_dir(),
            backend.config.claude_skip_permissions,
        );
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
                config: &backend.config,
                invocation,
                work_dir: lease.work_dir(),
                session_id: lease.id(),
                request_id: &request.incoming.request_id,
            },
            &backend.supervisor,
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
        Ok(Turn {
            run,
            lease,
            _slot: slot,
            headers,
            meta,
        })
    }

    /// A failed run leaves no registry entry for a session the client never
    /// learnt about, nor for one the CLI says does not exist.
    pub(super) fn settle_error(self, error: ApiError) -> ApiError {
        let unknown = matches!(error, ApiError::SessionNotFound { .. });
        if self.lease.created() || unknown {
            let Turn { lease, .. } = self;
            lease.forget();
        }
        error
    }

    /// The CLI has answered but may still be exiting. What the pipeline
    /// runs once the answer is written: reap the child, then free its
    /// process slot and its session (a resume meanwhile waits for that).
    pub(super) fn close_afterwards(self) -> Afterwards {
        self.lease.answered();
        Box::new(move || {
            let Turn {
                run,
                lease,
                _slot: slot,
                ..
            } = self;
            run.close();
            // The slot first: a resume woken by the lease then finds it free.
            drop(slot);
            lease.make_spare_dir();
            drop(lease);
        })
    }

    pub(super) fn with_headers(&self, reply: Reply) -> Reply {
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
