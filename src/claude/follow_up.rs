//! A request that carries on a turn waiting for tool results (see
//! `waiting`). It is found by the ids its `tool` messages answer; a legacy
//! `function` result, which has no id, by the session header or the
//! history before it. It takes the waiting turn as it is, session lease
//! and child included, so it never queues behind that lease.
//!
//! With results, they go to the bridge and the same model turn goes on.
//! With a new user message instead, the waiting calls are answered with an
//! error, the CLI finishes that turn unheard, and the new message is the
//! next turn.

use std::time::Instant;

use super::adapter::Adapter;
use super::process::CliProcess;
use super::prompt::{blocks_line, prompt_blocks, SessionArg};
use super::run::{CliRun, Progress};
use super::sessions::SessionStore;
use super::tools::ToolAnswer;
use super::turn::{put_away, start_cold, Turn};
use super::validate::{Turn as ChatTurn, ValidChat};
use super::waiting::{Waiting, WaitingTurns};
use super::warm::WarmProcesses;
use super::ClaudeBackend;
use crate::backend::ChatRequest;
use crate::error::ApiError;

/// What a call the client did not answer gets.
const NOT_RUN: &str = "The client did not run this tool.";
const NO_RESULT: &str = "The client sent no result for this call.";
const TOO_LATE: &str = "The client did not send this tool's result in time.";

/// The turn this request carries on, if one waits for it.
pub(super) fn carry_on(
    backend: &ClaudeBackend,
    store: &SessionStore,
    request: &ChatRequest,
    chat: &ValidChat,
) -> Result<Option<Turn>, ApiError> {
    let owner = store.owner_fingerprint(request.incoming.api_key.as_ref());
    let results = chat.tool_results();
    let waiting = &backend.waiting;
    let found = if results.is_empty() {
        match &request.session_id {
            Some(id) => waiting.take_by_session(id, owner.as_deref()),
            None => digest_before(store, request, chat, chat.turns.len() - 1)
                .and_then(|digest| waiting.take_by_digest(&digest)),
        }
    } else if results.iter().all(|r| r.tool_call_id.is_some()) {
        let ids: Vec<&str> = results
            .iter()
            .filter_map(|r| r.tool_call_id.as_deref())
            .collect();
        Some(waiting.take_by_calls(&ids, owner.as_deref())?)
    } else {
        match &request.session_id {
            Some(id) => waiting.take_by_session(id, owner.as_deref()),
            None => digest_before(store, request, chat, chat.turns.len() - results.len())
                .and_then(|digest| waiting.take_by_digest(&digest)),
        }
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let history = backend.config.claude_match_history.then(|| {
        let mut hasher = store.history_hasher(
            request.incoming.api_key.as_ref(),
            chat.cli_model,
            chat.system.as_deref(),
        );
        chat.turns.iter().for_each(|t| hasher.turn(t));
        hasher
    });
    let deadline = Instant::now() + backend.config.request_timeout;
    let Waiting {
        mut process,
        mut lease,
        calls,
        key_slot,
        ..
    } = found;
    drop(key_slot);
    // The client learnt the session from the answer with the calls.
    lease.mark_known();
    if !results.is_empty() {
        if let Some(bridge) = &process.bridge {
            for (n, id) in calls.iter().enumerate() {
                bridge.answer(id, answer_for(id, n, results));
            }
        }
        if !process.continue_turn(deadline) {
            process.close();
            drop(lease);
            return Err(ApiError::InternalError {
                message: "The claude CLI that waited for these tool results has ended. Send \
                          the conversation again as a new user message."
                    .into(),
            });
        }
        let turn = Turn::assemble(backend, request, chat, process, lease, history, true);
        return Ok(Some(turn));
    }
    // A new user message: the waiting calls were not run.
    let run = finish_unheard(process, deadline, NOT_RUN, false);
    let line = blocks_line(prompt_blocks(
        chat,
        &SessionArg::Resume(lease.id().to_string()),
    ));
    let reused = if run.reusable() {
        let mut process = run.into_process();
        if process.next_turn(line, deadline) {
            Some(process)
        } else {
            process.close();
            None
        }
    } else {
        run.into_process().close();
        None
    };
    let warm = reused.is_some();
    let process = match reused {
        Some(process) => process,
        None => {
            let Some(cli) = backend.cli.clone() else {
                return Err(ApiError::BackendUnavailable {
                    reason: "the claude CLI was not found.".into(),
                });
            };
            let shape =
                super::process::Shape::new(chat.cli_model, chat.system.as_deref(), &chat.tools);
            start_cold(backend, &cli, request, chat, &lease, shape)?
        }
    };
    Ok(Some(Turn::assemble(
        backend, request, chat, process, lease, history, warm,
    )))
}

/// The 400 for legacy function results (no ids) that no waiting turn
/// takes.
pub(super) fn no_waiting_turn(chat: &ValidChat) -> ApiError {
    let id = chat
        .tool_results()
        .iter()
        .find_map(|r| r.tool_call_id.clone())
        .unwrap_or_else(|| "(a function result without an id)".into());
    ApiError::InvalidToolCallId { id }
}

/// The client's result for call `id`, the `n`-th of its answer: by id, or
/// for legacy results (no ids) by position.
fn answer_for(id: &str, n: usize, results: &[ChatTurn]) -> ToolAnswer {
    let by_id = results
        .iter()
        .find(|r| r.tool_call_id.as_deref() == Some(id));
    let legacy = results.iter().filter(|r| r.tool_call_id.is_none()).nth(n);
    match by_id.or(legacy) {
        Some(result) => ToolAnswer {
            text: result.content.clone(),
            is_error: false,
        },
        None => ToolAnswer::error(NO_RESULT),
    }
}

/// The conversation digest of the request's first `len` turns.
fn digest_before(
    store: &SessionStore,
    request: &ChatRequest,
    chat: &ValidChat,
    len: usize,
) -> Option<super::history::HistoryDigest> {
    if len == 0 {
        return None;
    }
    let mut hasher = store.history_hasher(
        request.incoming.api_key.as_ref(),
        chat.cli_model,
        chat.system.as_deref(),
    );
    chat.turns[..len].iter().for_each(|t| hasher.turn(t));
    Some(hasher.digest())
}

/// Answers the waiting calls (and any the model makes meanwhile) with the
/// error `why`, and reads the CLI's turn to its end with nobody listening,
/// interrupting it first when `interrupt`.
fn finish_unheard(
    mut process: CliProcess,
    deadline: Instant,
    why: &str,
    interrupt: bool,
) -> CliRun {
    if let Some(bridge) = &process.bridge {
        bridge.decline_all(why);
    }
    let resumed = process.continue_turn(deadline);
    // No tools for this adapter: it reads on to the `result` line.
    let adapter = Adapter::new(String::new(), 0, String::new(), false).without_chunks();
    let mut run = CliRun::new(process, adapter);
    if resumed {
        if interrupt {
            run.client_gone();
        }
        while let Progress::Chunks(_) = run.step() {}
    }
    let _ = run.finish();
    if let Some(bridge) = &run.process().bridge {
        bridge.accept_calls();
    }
    run
}

/// Every waiting turn at the drain: its calls get an error and its child
/// is closed (the supervisor has signalled it already); its session is
/// freed.
pub(super) fn close_all(waiting: &WaitingTurns) {
    for Waiting { process, lease, .. } in waiting.take_all() {
        if let Some(bridge) = &process.bridge {
            bridge.decline_all("The server is shutting down.");
        }
        let _ = std::thread::Builder::new()
            .name("tool-drain".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                process.close();
                drop(lease);
            });
    }
}

/// A turn that waited too long: its calls get an error, and it is ended
/// (interrupted, as nobody listens) on a thread of its own; its child is
/// put away and its session freed.
pub(super) fn retire(
    waiting: Waiting,
    warm: std::sync::Arc<WarmProcesses>,
    grace: std::time::Duration,
) {
    let spawned = std::thread::Builder::new()
        .name("tool-expired".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let Waiting { process, lease, .. } = waiting;
            let run = finish_unheard(process, Instant::now() + grace, TOO_LATE, true);
            put_away(&warm, run);
            drop(lease);
        });
    if let Err(e) = spawned {
        log::error!("cannot end a turn whose tool results never came: {e}");
    }
}
