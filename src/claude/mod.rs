//! Claude Code mode: answers an OpenAI chat request with a turn of the
//! `claude` CLI (the Responses and Anthropic Messages APIs arrive rewritten
//! as one, with a `dialect` for their answer). [`ClaudeBackend`] owns what
//! outlives a request: the CLI's path, the session store (opened off the
//! start-up path), the process pool, the warm children, the supervisor and
//! the drain flag. A request is a `turn`.
//!
//! A stream sends its head only once the model starts answering, so
//! failures the CLI reports first (refused credentials, unknown session)
//! are still plain HTTP errors. The answer leaves as soon as the CLI's
//! successful `result` line is read. The child is then kept warm for the
//! session's next turn (or closed) after the answer is written, and only
//! then is the session free; a resume of the session meanwhile waits for
//! that.

pub mod child;
pub mod engine;
pub mod reading;
pub mod request;
pub mod sessions;
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::allowance::Allowances;
use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::http::Reply;
use crate::metrics::Metrics;
use crate::ratelimit::{KeyHolder, RateLimiter};
pub use crate::session_id::SessionId;
use crate::supervisor::{StopReason, Supervisor};
pub use crate::turn_event::{Answer, Call, Stop, TokenCounts, TurnEvent};
use child::locate::locate_cli;
use child::slots::{Capacity, ProcessSlots};
use child::warm::{WarmProcesses, WarmStats};
use engine::run::Progress;
use engine::stream::{ClaudeStream, Start, Wire};
use engine::waiting::{WaitLimits, WaitingTurns};
use engine::watching::Waited;
pub use engine::TurnRequest;
pub use reading::chunks::chat_message;
use sessions::{SessionInfo, SessionStore};

/// A session as `/v1/sessions` shows it: the registry's view, and whether
/// a warm child is kept for it.
#[derive(Debug, Clone)]
pub struct SessionStatus {
    pub info: SessionInfo,
    pub warm: bool,
}

pub struct ClaudeBackend {
    config: Config,
    cli: Option<PathBuf>,
    pool: Arc<ProcessSlots>,
    warm: Arc<WarmProcesses>,
    supervisor: Arc<Supervisor>,
    sessions: Arc<OnceLock<Result<Arc<SessionStore>, String>>>,
    /// The server's drain flag: no new CLI starts once it is set.
    draining: Arc<AtomicBool>,
    sweeper_stop: Arc<AtomicBool>,
    /// Turns stopped for client calls, waiting for their results.
    waiting: Arc<WaitingTurns>,
    /// Slots of a key held while its turns wait.
    key_holder: KeyHolder,
    metrics: Arc<Metrics>,
    /// Each login's subscription allowance: a spent one refuses turns.
    allowances: Arc<Allowances>,
}

impl ClaudeBackend {
    /// The backend for `config`; `draining` is the server's drain flag.
    pub fn new(
        config: &Config,
        key_holder: KeyHolder,
        metrics: Arc<Metrics>,
        draining: Arc<AtomicBool>,
        allowances: Arc<Allowances>,
    ) -> ClaudeBackend {
        let path_var = config
            .child_env
            .0
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let cli = locate_cli(&config.claude_path, path_var);
        let pool = ProcessSlots::new(config.max_concurrent_processes);
        let supervisor = Supervisor::start(config.kill_grace);
        let sessions = Arc::new(OnceLock::new());
        let fresh_dir = {
            let (sessions, config) = (sessions.clone(), config.clone());
            Box::new(move || {
                let store = open_sessions(&sessions, &config).as_ref().ok()?;
                store.fresh_dir().ok()
            })
        };
        let spares = child::spares::spare_plan(
            config,
            cli.clone(),
            pool.clone(),
            supervisor.clone(),
            fresh_dir,
        );
        // A process kept longer than its session would outlive its
        // directory (the sweeper removes both).
        let warm_idle = config.warm_idle.min(config.session_ttl);
        let warm = WarmProcesses::start(
            config.warm_sessions,
            warm_idle,
            config.warm_min_free_mb,
            pool.clone(),
            spares,
        );
        let retire_to = warm.clone();
        let grace = config.request_timeout;
        let retire_metrics = metrics.clone();
        let limits = WaitLimits {
            total: config.max_tool_waits,
            per_key: config.max_tool_waits_per_key,
        };
        let waiting = WaitingTurns::start(
            limits,
            Box::new(move |turn, cause| {
                engine::give_up::retire(
                    turn,
                    cause,
                    retire_to.clone(),
                    grace,
                    retire_metrics.clone(),
                )
            }),
        );
        let backend = ClaudeBackend {
            config: config.clone(),
            cli,
            pool,
            warm,
            supervisor,
            sessions,
            draining,
            sweeper_stop: Arc::new(AtomicBool::new(false)),
            waiting,
            key_holder,
            metrics,
            allowances,
        };
        backend.start_sweeper();
        backend
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
        let spawned = std::thread::Builder::new()
            .name("session-sweeper".into())
            .spawn(move || {
                if let Ok(store) = open_sessions(&cell, &config) {
                    let every = config.session_cleanup_interval;
                    sessions::sweep_until_stopped(store, every, &stop);
                }
            });
        if let Err(e) = spawned {
            log::error!("could not start the session sweeper: {e}");
        }
    }

    pub fn capacity(&self) -> Capacity {
        self.pool.capacity()
    }

    pub fn cli_path(&self) -> Option<&Path> {
        self.cli.as_deref()
    }

    /// The warm children: how many, and the memory they hold.
    pub fn warm_stats(&self) -> WarmStats {
        self.warm.stats()
    }

    /// The owner as sessions record it (a keyed fingerprint of the key).
    pub fn owner_fingerprint(&self, key: Option<&Secret>) -> Result<Option<String>, ApiError> {
        Ok(self.sessions()?.owner_fingerprint(key))
    }

    /// True while session `id` exists for `key`.
    pub fn session_lives(&self, id: &str, key: Option<&Secret>) -> bool {
        let (Ok(id), Ok(store)) = (SessionId::parse(id), self.sessions()) else {
            return false;
        };
        store.knows(&id, key)
    }

    /// Sessions the store knows (none before it is opened).
    pub fn sessions_live(&self) -> usize {
        match self.sessions.get() {
            Some(Ok(store)) => store.len(),
            _ => 0,
        }
    }

    /// `key`'s live sessions (`GET /v1/sessions`), each with whether a
    /// warm child is kept for it.
    pub fn list_sessions(&self, key: Option<&Secret>) -> Result<Vec<SessionStatus>, ApiError> {
        let infos = self.sessions()?.list(key);
        Ok(infos.into_iter().map(|info| self.status(info)).collect())
    }

    /// Session `id` of `key` (`GET /v1/sessions/{id}`).
    pub fn session(&self, id: &SessionId, key: Option<&Secret>) -> Result<SessionStatus, ApiError> {
        let info = self.sessions()?.info(id, key)?;
        Ok(self.status(info))
    }

    /// Deletes session `id` of `key` (`DELETE /v1/sessions/{id}`): its
    /// registry entry, then its warm child, closed (nothing can take it
    /// meanwhile: a turn needs the session first), then its directory,
    /// which holds the child's bridge socket until then.
    pub fn delete_session(&self, id: &SessionId, key: Option<&Secret>) -> Result<(), ApiError> {
        self.sessions()?.delete(id, key, || {
            if let Some(process) = self.warm.take(id) {
                process.close();
            }
        })
    }

    fn status(&self, info: SessionInfo) -> SessionStatus {
        let warm = self.warm.holds(&info.id);
        SessionStatus { info, warm }
    }

    /// Turns stopped for client calls, waiting for their results.
    pub fn waiting_for_tools(&self) -> usize {
        self.waiting.len()
    }

    /// Children alive right now (warm ones included).
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

    /// SIGTERM to every running child, warm ones closed, and no new ones
    /// (drain).
    pub fn terminate_all(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.supervisor.stop_all(StopReason::Shutdown);
        self.warm.close_all();
        engine::give_up::close_all(&self.waiting);
    }

    /// Writes the session registry now (end of drain).
    pub fn flush_sessions(&self) {
        if let Some(Ok(store)) = self.sessions.get() {
            store.close();
        }
    }

    /// SIGKILL to every running child (end of drain, second signal).
    pub fn kill_all(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.supervisor.kill_all();
    }
}

impl ClaudeBackend {
    /// Answers `request`, streamed or whole as it asks, the one way every
    /// API's turn is taken (refused at once while its login's allowance is
    /// spent: see `engine::accounts`); a session's turn counts against its rate limit
    /// unless it only carries tool results on (that turn was counted when
    /// it began).
    pub fn take_turn(
        &self,
        limiter: &RateLimiter,
        request: &TurnRequest,
    ) -> Result<Reply, ApiError> {
        if let Some(id) = &request.session_id {
            if request.chat.tool_results().is_empty() {
                limiter.check_session(id.as_str())?;
            }
        }
        if request.chat.stream {
            self.stream(request)
        } else {
            self.complete(request)
        }
    }

    fn complete(&self, request: &TurnRequest) -> Result<Reply, ApiError> {
        let mut turn = engine::begin::begin(self, request)?;
        let finished = loop {
            if let Some(finished) = turn.run.take_answer() {
                break Ok(finished);
            }
            match turn.step_watching(None) {
                Waited::Progress(Progress::Ended) => break turn.run.finish(),
                Waited::Progress(Progress::Events(_)) | Waited::Quiet => {}
                Waited::Departed => turn.answer_nobody(),
            }
        };
        match finished {
            Ok(finished) => {
                let body = match &request.dialect {
                    Some(dialect) => dialect.whole(&finished.answer, turn.lease.id()),
                    None => turn.run.adapter.chat_chunks().completion(&finished.answer),
                };
                let mut facts = turn.facts.clone();
                let concluded = turn.conclude();
                if let Some(cost) = &concluded.cost {
                    facts.cost = Some((cost.usd_text(), cost.duration_ms));
                }
                Ok(Reply::json(200, &body)
                    .with_turn(facts)
                    .with_afterwards(concluded.afterwards))
            }
            Err(error) => Err(turn.settle_error(error)),
        }
    }

    fn stream(&self, request: &TurnRequest) -> Result<Reply, ApiError> {
        let mut turn = engine::begin::begin(self, request)?;
        let chat = turn.run.adapter.chat_chunks();
        let wire = Wire::new(request.dialect.as_ref(), turn.lease.id(), chat);
        let keepalive = self.config.stream_keepalive;
        let asked = Instant::now();
        let (mut pending, start) = engine::stream::until_committed(&mut turn, keepalive, asked);
        // A warning read before the head goes out with it.
        turn.note_allowance();
        if start == Start::Over {
            // Over before the model said anything: a plain answer or error.
            return match turn.run.finish() {
                Ok(finished) => {
                    pending.extend(finished.final_events);
                    let facts = turn.facts.clone();
                    let concluded = turn.conclude();
                    let body = ClaudeStream {
                        turn: None,
                        pending,
                        cost: concluded.cost,
                        wire,
                        answer: Some(finished.answer),
                        keepalive,
                        quiet_since: asked,
                    };
                    Ok(Reply::stream(Box::new(body))
                        .with_turn(facts)
                        .with_afterwards(concluded.afterwards))
                }
                Err(error) => Err(turn.settle_error(error)),
            };
        }
        let facts = turn.facts.clone();
        // The client has had nothing since it asked.
        let reply = Reply::stream(Box::new(ClaudeStream {
            turn: Some(turn),
            pending,
            cost: None,
            wire,
            answer: None,
            keepalive,
            quiet_since: asked,
        }));
        Ok(reply.with_turn(facts))
    }

    /// `/health`'s word for Claude Code mode: `ok` once a CLI was found.
    pub fn health(&self) -> &'static str {
        if self.cli.is_some() {
            "ok"
        } else {
            "error"
        }
    }
}

impl Drop for ClaudeBackend {
    fn drop(&mut self) {
        self.flush_sessions();
        self.sweeper_stop.store(true, Ordering::SeqCst);
        self.supervisor.kill_all();
        self.warm.close_all();
        engine::give_up::close_all(&self.waiting);
        self.supervisor.shutdown();
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
