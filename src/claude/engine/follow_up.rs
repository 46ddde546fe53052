//! A request that carries on a turn waiting for tool results (see
//! `waiting`; `resolve` finds the turn). It takes the waiting turn as it
//! is, session lease and child included, so it never queues behind that
//! lease. What becomes of turns whose results never come is `give_up`.
//!
//! With results, they go to the bridge and the same model turn goes on.
//! With a new user message instead, the waiting calls are answered with the
//! results sent before it (an error for those without one), the CLI
//! finishes that turn unheard, and the new message is the next turn.

use std::time::Instant;

use crate::metrics::TurnEnd;

use crate::claude::engine::accounts::of_session;
use crate::claude::engine::cold_start::warm_or_cold;
use crate::claude::engine::give_up::{finish_unheard, Cut};
use crate::claude::engine::turn::{watch_client, Took, Turn};
use crate::claude::engine::waiting::Waiting;
use crate::claude::request::history::HistoryHasher;
use crate::claude::request::validate::{Message as ChatMessage, ValidChat};
use crate::claude::tools::ToolAnswer;
use crate::claude::ClaudeBackend;
use crate::error::ApiError;
use crate::http::Incoming;

/// What a call the client did not answer gets.
const NOT_RUN: &str = "The client did not run this tool.";
const NO_RESULT: &str = "The client sent no result for this call.";

/// Carries on the turn `found`, which waits for this request: with its
/// results, or with a new question after the waiting calls are declined.
/// `history` is the request's whole conversation.
pub(in crate::claude) fn carry_on(
    backend: &ClaudeBackend,
    incoming: &Incoming,
    chat: &ValidChat,
    found: Waiting,
    history: Option<HistoryHasher>,
) -> Result<Turn, ApiError> {
    let results = chat.tool_results();
    let deadline = Instant::now() + backend.config.request_timeout;
    let Waiting {
        mut process,
        lease,
        calls,
        key_slot,
        ..
    } = found;
    drop(key_slot);
    watch_client(&lease, incoming);
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
        let account = of_session(backend, &lease);
        return Ok(Turn::assemble(
            backend,
            incoming,
            chat,
            (process, Took::Continued),
            lease,
            &account,
            history,
        ));
    }
    // A new user message: the waiting calls get the results sent before it,
    // or were not run.
    if let Some(bridge) = &process.bridge {
        let answered = chat.results_before_question();
        for (n, id) in calls.iter().enumerate() {
            if !answered.is_empty() {
                bridge.answer(id, answer_for(id, n, answered));
            }
        }
    }
    let run = finish_unheard(process, deadline, NOT_RUN, Cut::Never);
    backend.metrics.turn_ended(TurnEnd::Interrupted);
    // The waiting turn heard the results: the CLI gets the question alone.
    let asked = chat.question_only();
    let candidate = if run.reusable() {
        Some(run.into_process())
    } else {
        run.into_process().close();
        None
    };
    let account = of_session(backend, &lease);
    let taken = warm_or_cold(backend, incoming, &asked, &lease, &account, candidate)?;
    Ok(Turn::assemble(
        backend, incoming, chat, taken, lease, &account, history,
    ))
}

/// The client's result for call `id`, the `n`-th of its answer: by id, or
/// for legacy results (no ids) by position.
fn answer_for(id: &str, n: usize, results: &[ChatMessage]) -> ToolAnswer {
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
