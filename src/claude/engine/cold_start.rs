//! The process that takes a turn ([`warm_or_cold`]): one already up for
//! the session when it fits the turn (told the turn's model, effort and
//! thinking budget first where they differ), else a new `claude` child: a process
//! slot (an idle warm child gives its up before anyone queues), the tool
//! bridge when the turn offers functions, and the invocation for a new
//! session (`--session-id`) or one to resume (`--resume`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::claude::child::process::{CliProcess, Shape, StartSpec};
use crate::claude::child::settings::Settings;
use crate::claude::child::slots::Slot;
use crate::claude::engine::turn::Took;
use crate::claude::engine::{accounts, give_up};
use crate::claude::request::prompt::{blocks_line, build_invocation, prompt_blocks, SessionArg};
use crate::claude::request::validate::ValidChat;
use crate::claude::sessions::SessionLease;
use crate::claude::tools::Bridge;
use crate::claude::ClaudeBackend;
use crate::error::ApiError;
use crate::http::Incoming;

/// How long a warm process may take to answer a change of its settings
/// (the CLI answers within milliseconds; one that does not is replaced).
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// What the turn `chat` runs with.
fn settings_of(chat: &ValidChat) -> Settings {
    Settings {
        model: chat.cli_model,
        effort: chat.thinking.effort,
        budget: chat.thinking.budget,
    }
}

/// The CLI is not installed, or not where `CLAUDE_PATH` says.
pub(in crate::claude) fn cli_missing() -> ApiError {
    ApiError::BackendUnavailable {
        reason: "the claude CLI was not found. Install it or set CLAUDE_PATH.".into(),
    }
}

/// The process that takes the turn `asked` on `lease`: `candidate` (the
/// session's warm process, a spare, or the one that waited for tool
/// results) when it fits the turn and takes its line, else a new child.
/// A candidate that does not fit is closed first: never two children on
/// one conversation.
pub(in crate::claude) fn warm_or_cold(
    backend: &ClaudeBackend,
    incoming: &Incoming,
    asked: &ValidChat,
    lease: &SessionLease,
    account: &str,
    candidate: Option<CliProcess>,
) -> Result<(CliProcess, Took), ApiError> {
    let deadline = Instant::now() + backend.config.request_timeout;
    let shape = Shape::new(asked.system.as_deref(), &asked.tools);
    if let Some(mut process) = candidate {
        let line = blocks_line(prompt_blocks(asked, &session_arg(lease)));
        let fits = process.fits(&shape, &asked.tools)
            && process.settle(&settings_of(asked), SETTLE_WAIT)
            && process.next_turn(line, deadline);
        if fits {
            return Ok((process, Took::Warm));
        }
        process.close();
    }
    let cli = backend.cli.clone().ok_or_else(cli_missing)?;
    let process = start_cold(backend, &cli, incoming, asked, lease, account, shape)?;
    Ok((process, Took::Started))
}

/// A new child for the turn: `--session-id` for a new session, `--resume`
/// for one whose child is gone.
fn start_cold(
    backend: &ClaudeBackend,
    cli: &Path,
    incoming: &Incoming,
    chat: &ValidChat,
    lease: &SessionLease,
    account: &str,
    shape: Shape,
) -> Result<CliProcess, ApiError> {
    let slot = acquire_slot(backend).ok_or(ApiError::CapacityExceeded {
        retry_after_secs: 1,
    })?;
    if backend.draining.load(Ordering::SeqCst) {
        return Err(ApiError::ServerShuttingDown);
    }
    let bridge = if chat.tools.offers_functions() {
        Some(start_bridge(chat, lease)?)
    } else {
        None
    };
    let mcp_config = bridge
        .as_ref()
        .map(|b| b.mcp_config(&backend.config.bridge_exe));
    let invocation = build_invocation(
        chat,
        &session_arg(lease),
        lease.work_dir(),
        backend.config.claude_skip_permissions,
        mcp_config,
    );
    CliProcess::start(
        StartSpec {
            cli,
            config: &backend.config,
            invocation,
            work_dir: lease.work_dir(),
            session_id: lease.id(),
            shape,
            settings: settings_of(chat),
            config_dir: accounts::account(backend, account).and_then(|a| a.config_dir.clone()),
            request_id: &incoming.request_id,
            // A child that may wait for tool results keeps its stdin.
            keep_open: backend.warm.enabled() || bridge.is_some(),
            tools: Arc::new(chat.tools.clone()),
            bridge,
        },
        &backend.supervisor,
        slot,
    )
}

fn start_bridge(chat: &ValidChat, lease: &SessionLease) -> Result<Bridge, ApiError> {
    Bridge::start(lease.work_dir(), chat.tools.mcp_tools()).map_err(|e| {
        log::error!("cannot open the tool bridge: {e}");
        ApiError::BackendUnavailable {
            reason: "the tool bridge for the claude CLI could not be opened.".into(),
        }
    })
}

/// A process slot: a free one; else one an idle warm child gives up (the
/// least recently used is closed); else the one of the turn that has
/// waited longest for tool results (given up: its results may still come,
/// see `resolve`); else a place in the queue, from which the same is tried
/// again while it waits (a child may be put away, or a turn begin to wait,
/// just after the first look).
fn acquire_slot(backend: &ClaudeBackend) -> Option<Slot> {
    let make_room = || {
        if backend.warm.evict_oldest() {
            return true;
        }
        match backend.waiting.give_up_oldest() {
            Some(turn) => {
                give_up::give_up_now(turn, backend.config.kill_grace, &backend.metrics);
                true
            }
            None => false,
        }
    };
    loop {
        if let Some(slot) = backend.pool.acquire(std::time::Duration::ZERO) {
            return Some(slot);
        }
        if !make_room() {
            break;
        }
    }
    backend
        .pool
        .acquire_relieved(backend.config.pool_queue_timeout, make_room)
}

/// `--session-id` for a session this turn creates, `--resume` otherwise.
pub(in crate::claude) fn session_arg(lease: &SessionLease) -> SessionArg {
    if lease.created() {
        SessionArg::New(lease.id().to_string())
    } else {
        SessionArg::Resume(lease.id().to_string())
    }
}
