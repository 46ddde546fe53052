//! One request's turn on a session once a CLI child has taken it (see
//! `begin`): what it holds (the session lease, the child), its reply
//! headers, and what becomes of the session and the child when the turn
//! fails or has answered. An answer that ends with client calls leaves the
//! turn waiting ([`Turn::wait_for_results`]).

use std::sync::Arc;
use std::time::Instant;

use crate::allowance::Allowances;
use crate::claude::child::process::CliProcess;
use crate::claude::child::warm::WarmProcesses;
use crate::claude::engine::run::put_away;
use crate::claude::engine::run::CliRun;
use crate::claude::engine::waiting::{Waiting, WaitingTurns};
use crate::claude::reading::adapter::Adapter;
use crate::claude::request::history::{HistoryDigest, HistoryHasher};
use crate::claude::request::validate::{CallRef, Message as ChatMessage, Role, ValidChat};
use crate::claude::sessions::SessionLease;
use crate::claude::ClaudeBackend;
use crate::config::Secret;
use crate::error::ApiError;
use crate::http::{Afterwards, ClientWatch, Incoming, TurnFacts};
use crate::metrics::{Metrics, TurnEnd};
use crate::ratelimit::KeyHolder;
use crate::supervisor::StopReason;

/// A turn in progress with what it holds: its session lease and its child.
/// Dropped without [`Turn::close_afterwards`] or [`Turn::settle_error`],
/// the child is killed and the lease freed.
pub(in crate::claude) struct Turn {
    pub(in crate::claude) run: CliRun,
    pub(in crate::claude) lease: SessionLease,
    pub(in crate::claude) warm: Arc<WarmProcesses>,
    /// The conversation so far, this turn's user message included; the
    /// answer is added once there is one.
    pub(in crate::claude) history: Option<HistoryHasher>,
    /// The conversation with the answer, once there is one.
    answered_digest: Option<HistoryDigest>,
    /// What the reply tells the client besides the answer.
    pub(in crate::claude) facts: TurnFacts,
    /// Where the turn goes if it stops for client calls, and the key it
    /// then holds a slot of (and is owned by).
    pub(in crate::claude) waiting: Arc<WaitingTurns>,
    pub(in crate::claude) owner_key: Option<Secret>,
    pub(in crate::claude) key_holder: KeyHolder,
    pub(in crate::claude) tool_wait: std::time::Duration,
    metrics: Arc<Metrics>,
    /// Every login's allowance: the turn's own is told what the CLI reports
    /// of it, and another could take the session when it runs out.
    allowances: Arc<Allowances>,
    /// The accounts this request's key may use (`None`: any).
    allowed_accounts: Option<Vec<String>>,
    /// The `--model` value: what the turn's cost is counted under.
    cli_model: &'static str,
    /// Whether the client still waits for the answer (see `watching`).
    pub(in crate::claude) client: Option<Arc<ClientWatch>>,
    pub(in crate::claude) client_seen: Instant,
}

/// How the turn's CLI process came to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::claude) enum Took {
    /// Started for it.
    Started,
    /// The session's warm process (or a spare), given the turn's line.
    Warm,
    /// The process of a turn that waited for these tool results.
    Continued,
}

/// This turn's share of the session's cost, and its time in the CLI.
pub(in crate::claude) struct TurnCost {
    pub usd: f64,
    pub duration_ms: u64,
}

impl TurnCost {
    /// Dollars to the nanodollar, without trailing zeros.
    pub(in crate::claude) fn usd_text(&self) -> String {
        let text = format!("{:.9}", self.usd.max(0.0));
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }

    /// The SSE comment a stream ends with (SDKs skip comments).
    pub(in crate::claude) fn comment(&self) -> String {
        format!(
            "cost usd={} duration_ms={}",
            self.usd_text(),
            self.duration_ms
        )
    }
}

/// What is left of a turn whose answer is whole: its cost, unless it waits
/// for tool results, and the work for after the answer is written.
pub(in crate::claude) struct Concluded {
    pub cost: Option<TurnCost>,
    pub afterwards: Option<Afterwards>,
}

/// From the moment `lease` is this request's, a turn that finds its
/// session busy can tell whether this request's client is still there.
pub(in crate::claude) fn watch_client(lease: &SessionLease, incoming: &Incoming) {
    if let Some(client) = &incoming.client {
        lease.watch_client(client.clone());
    }
}

impl Turn {
    /// The turn of the process that took it (`taken`, and how) on `lease`
    /// and `account`, what its reply tells the client and its labels.
    pub(in crate::claude) fn assemble(
        backend: &ClaudeBackend,
        incoming: &Incoming,
        chat: &ValidChat,
        (process, how): (CliProcess, Took),
        lease: SessionLease,
        account: &str,
        history: Option<HistoryHasher>,
    ) -> Turn {
        let created = crate::clock::unix_secs();
        let adapter = Adapter::new(
            format!("chatcmpl-{}", uuid::Uuid::new_v4()),
            created,
            chat.requested_model.clone(),
            chat.include_usage,
        )
        .with_tools(process.tools.clone());
        let adapter = if how == Took::Continued {
            adapter.continuing()
        } else {
            adapter
        };
        let adapter = if chat.thinking.show {
            adapter.showing_thinking()
        } else {
            adapter
        };
        let adapter = if chat.stream {
            adapter
        } else {
            adapter.without_events()
        };
        let facts = TurnFacts {
            session_id: lease.id().to_string(),
            created: lease.created(),
            warm: how != Took::Started,
            ignored: chat.ignored_params.clone(),
            cost: None,
            account: account.to_string(),
        };
        let owner_key = incoming.api_key.clone();
        let client = incoming.client.clone();
        Turn {
            run: CliRun::new(process, adapter),
            lease,
            warm: backend.warm.clone(),
            history,
            answered_digest: None,
            facts,
            waiting: backend.waiting.clone(),
            owner_key,
            key_holder: backend.key_holder.clone(),
            tool_wait: backend.config.tool_result_timeout,
            metrics: backend.metrics.clone(),
            allowances: backend.allowances.clone(),
            allowed_accounts: backend
                .config
                .accounts_for(incoming.api_key.as_ref())
                .map(<[String]>::to_vec),
            cli_model: chat.cli_model,
            client,
            client_seen: Instant::now(),
        }
    }

    /// The answer is complete: it is counted, the conversation as the
    /// client now holds it is remembered, and the turn's cost is recorded.
    /// Gives the cost.
    fn note_answer(&mut self) -> Option<TurnCost> {
        let counts = self.run.adapter.counts();
        let context = self.run.adapter.context_use();
        self.lease.count_turn(counts.as_ref(), context);
        if let Some(counts) = &counts {
            self.metrics.tokens(self.cli_model, counts);
        }
        self.metrics
            .compactions(self.cli_model, context.compactions);
        if let Some(mut history) = self.history.take() {
            let legacy = self.run.adapter.legacy_calls();
            let answer = ChatMessage {
                role: Role::Assistant,
                content: self.run.adapter.content().to_string(),
                parts: Vec::new(),
                tool_calls: self
                    .run
                    .adapter
                    .calls()
                    .iter()
                    .take(if legacy { 1 } else { usize::MAX })
                    .map(|c| CallRef {
                        id: (!legacy).then(|| c.id.clone()),
                        name: c.name.clone(),
                        arguments: String::new(),
                    })
                    .collect(),
                tool_call_id: None,
            };
            history.turn(&answer);
            let digest = history.digest();
            self.lease.remember_history(digest);
            self.answered_digest = Some(digest);
        }
        self.record_cost()
    }

    /// The answer is whole, the one way every turn ends well: counted
    /// (`note_answer`), then left waiting for its tool results when it
    /// ended with client calls (no cost yet, nothing to do afterwards), or
    /// else its cost given and its process put away once the answer is
    /// written.
    pub(in crate::claude) fn conclude(mut self) -> Concluded {
        self.note_allowance();
        let cost = self.note_answer();
        let usd = cost.as_ref().map_or(0.0, |c| c.usd);
        self.metrics.account_turn(&self.facts.account, usd);
        if self.run.adapter.paused() {
            self.wait_for_results();
            return Concluded {
                cost: None,
                afterwards: None,
            };
        }
        Concluded {
            cost,
            afterwards: Some(self.close_afterwards()),
        }
    }

    /// The answer ended with client calls: the child and the session wait
    /// for their results, found again by the calls' ids. Done before the
    /// answer is written, so that a client quick to answer finds them.
    fn wait_for_results(self) {
        let calls: Vec<String> = self
            .run
            .adapter
            .calls()
            .iter()
            .map(|c| c.id.clone())
            .collect();
        self.metrics.turn_ended(TurnEnd::Answered);
        let Turn {
            run,
            lease,
            waiting,
            owner_key,
            key_holder,
            tool_wait,
            answered_digest,
            ..
        } = self;
        let process = run.into_process();
        let mut lease = lease;
        lease.mark_known();
        let key_slot = owner_key.as_ref().and_then(|key| key_holder.hold(key));
        let owner = lease.fingerprint(owner_key.as_ref());
        waiting.park(Waiting {
            process,
            lease,
            owner,
            calls,
            digest: answered_digest,
            deadline: Instant::now() + tool_wait,
            key_slot,
        });
    }

    /// Records the session's running cost (an interrupted turn costs too),
    /// giving this turn's share.
    fn record_cost(&self) -> Option<TurnCost> {
        let cost = self.run.adapter.cost()?;
        let usd = self.lease.record_cost(cost.total_usd);
        self.metrics.cost(self.cli_model, usd);
        Some(TurnCost {
            usd,
            duration_ms: cost.duration_ms,
        })
    }

    /// What the CLI reported of the login's allowance, told to it.
    pub(in crate::claude) fn note_allowance(&mut self) {
        if let Some(info) = self.run.adapter.take_rate_limit() {
            self.allowances.of(&self.facts.account).note(&info);
        }
    }

    /// `error` with what the allowance knows, when the allowance refused
    /// the turn: the window and its reset, and new turns refused till then.
    fn with_allowance(&mut self, error: ApiError) -> ApiError {
        self.note_allowance();
        match error {
            ApiError::UsageLimitReached { .. } => {
                let refusal = self.allowances.of(&self.facts.account).refused();
                let allowed = self.allowed_accounts.as_deref();
                let placed = self.allowances.place(allowed, |_| 0);
                ApiError::UsageLimitReached {
                    window: refusal.window,
                    resets_at: refusal.resets_at,
                    elsewhere: placed.is_ok_and(|other| other != self.facts.account),
                }
            }
            other => other,
        }
    }

    /// A failed turn: its child is kept warm if it ended the turn cleanly
    /// (an interrupted turn does), else closed; and no registry entry is
    /// left for a session the client never learnt about, nor for one the
    /// CLI says does not exist.
    pub(in crate::claude) fn settle_error(mut self, error: ApiError) -> ApiError {
        let error = self.with_allowance(error);
        self.record_cost();
        self.metrics.turn_ended(ended_by(&self.run, &error));
        let unknown = matches!(error, ApiError::SessionNotFound { .. });
        let Turn {
            run, lease, warm, ..
        } = self;
        if lease.created() || unknown {
            // No session left for the child to serve.
            run.into_process().close();
            lease.forget();
        } else {
            put_away(&warm, run);
        }
        error
    }

    /// A turn that failed after its stream began: the session stays (the
    /// client holds its id), and the child is kept or closed as for any
    /// failure.
    pub(in crate::claude) fn settle_kept(mut self, error: &ApiError) {
        self.note_allowance();
        self.record_cost();
        self.metrics.turn_ended(ended_by(&self.run, error));
        let Turn { run, warm, .. } = self;
        put_away(&warm, run);
    }

    /// Nobody is listening any more: the turn is interrupted and read to its
    /// end, so that its child can take the session's next turn.
    pub(in crate::claude) fn abandon(mut self) {
        self.run.client_gone();
        while let crate::claude::engine::run::Progress::Events(_) = self.run.step() {}
        let _ = self.run.finish();
        self.record_cost();
        self.metrics.turn_ended(TurnEnd::ClientGone);
        let Turn { run, warm, .. } = self;
        put_away(&warm, run);
        // The client already holds the session id and the CLI has the
        // session on disk (it started answering): the lease just ends.
    }

    /// The answer is complete but not yet written. What the pipeline runs
    /// once it is: the child kept warm (or closed), then the session freed.
    /// A resume of the session meanwhile waits for that.
    fn close_afterwards(self) -> Afterwards {
        self.lease.answered();
        self.metrics.turn_ended(TurnEnd::Answered);
        Box::new(move || {
            let Turn {
                run, lease, warm, ..
            } = self;
            put_away(&warm, run);
            drop(lease);
        })
    }
}

/// Why a turn that failed ended, for the metrics: the supervisor's reason
/// for stopping its child when it had one, else what the error says.
fn ended_by(run: &CliRun, error: &ApiError) -> TurnEnd {
    match (run.process().reason(), error) {
        (Some(StopReason::ClientGone), _) | (None, ApiError::ClientGone) => TurnEnd::ClientGone,
        (Some(StopReason::Timeout), _) | (None, ApiError::Timeout { .. }) => TurnEnd::Timeout,
        (Some(StopReason::OutputLimit), _) | (None, ApiError::OutputLimitExceeded) => {
            TurnEnd::OutputLimit
        }
        (Some(StopReason::Shutdown), _) | (None, ApiError::ServerShuttingDown) => TurnEnd::Killed,
        _ => TurnEnd::CliError,
    }
}
