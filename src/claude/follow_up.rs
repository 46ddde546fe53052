//! A request that carries on a turn waiting for tool results (see
//! `waiting`; `resolve` finds the turn). It takes the waiting turn as it
//! is, session lease and child included, so it never queues behind that
//! lease. What becomes of turns whose results never come, and of waiting
//! turns at the drain, is here too.
//!
//! With results, they go to the bridge and the same model turn goes on.
//! With a new user message instead, the waiting calls are answered with the
//! results sent before it (an error for those without one), the CLI
//! finishes that turn unheard, and the new message is the next turn.

use crate::metrics::{GiveUp, Metrics, TurnEnd};
use std::time::Instant;

use super::adapter::Adapter;
use super::cold_start::start_cold;
use super::history::HistoryHasher;
use super::process::{CliProcess, Shape};
use super::prompt::{blocks_line, prompt_blocks, SessionArg};
use super::run::{CliRun, Progress};
use super::tools::ToolAnswer;
use super::turn::{put_away, Took, Turn};
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
const GIVEN_UP: &str = "The client's result for this tool did not come before the server \
     needed this process for other work.";

/// Carries on the turn `found`, which waits for this request: with its
/// results, or with a new question after the waiting calls are declined.
/// `history` is the request's whole conversation.
pub(super) fn carry_on(
    backend: &ClaudeBackend,
    request: &ChatRequest,
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
        return Ok(Turn::assemble(
            backend,
            request,
            chat,
            process,
            lease,
            history,
            Took::Continued,
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
    let run = finish_unheard(process, deadline, NOT_RUN, false);
    backend.metrics.turn_ended(TurnEnd::Interrupted);
    // The waiting turn heard the results: the CLI gets the question alone.
    let asked = chat.question_only();
    let line = blocks_line(prompt_blocks(
        &asked,
        &SessionArg::Resume(lease.id().to_string()),
    ));
    let shape = Shape::new(chat.cli_model, chat.system.as_deref(), &chat.tools);
    let reused = if run.reusable() {
        let mut process = run.into_process();
        if process.fits(&shape, &chat.tools) && process.next_turn(line, deadline) {
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
            start_cold(backend, &cli, request, &asked, &lease, shape)?
        }
    };
    let how = if warm { Took::Warm } else { Took::Started };
    Ok(Turn::assemble(
        backend, request, chat, process, lease, history, how,
    ))
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
    let adapter = Adapter::new(String::new(), 0, String::new(), false).without_events();
    let mut run = CliRun::new(process, adapter);
    if resumed {
        if interrupt {
            run.client_gone();
        }
        while let Progress::Events(_) = run.step() {}
    }
    let _ = run.finish();
    if let Some(bridge) = &run.process().bridge {
        bridge.accept_calls();
    }
    run
}

/// Every waiting turn at the drain: its calls get an error and its child
/// is closed (the supervisor has signalled it already), all side by side,
/// before the drain goes on; its session is freed.
pub(super) fn close_all(waiting: &WaitingTurns) {
    let mut turns = waiting.take_all();
    for turn in &mut turns {
        if let Some(bridge) = &turn.process.bridge {
            bridge.decline_all("The server is shutting down.");
        }
        turn.process.send_eof();
    }
    for Waiting { process, lease, .. } in turns {
        process.close();
        drop(lease);
    }
}

/// A waiting turn given up now, on the caller's thread, because a new
/// turn needs its process slot: its calls get an error, the turn is
/// interrupted and read to its end, and its child closed (which frees the
/// slot); its session is freed for the results that may still come.
pub(super) fn give_up_now(waiting: Waiting, grace: std::time::Duration, metrics: &Metrics) {
    let Waiting { process, lease, .. } = waiting;
    // Its results may come while it ends: they wait for the session.
    lease.answered();
    let run = finish_unheard(process, Instant::now() + grace, GIVEN_UP, true);
    metrics.turn_ended(TurnEnd::Interrupted);
    metrics.gave_up(GiveUp::Pressure);
    run.into_process().close();
    drop(lease);
}

/// A turn given up in the background (it waited too long, or past the
/// limits on waiting turns): its calls get an error, and it is ended
/// (interrupted, as nobody listens) on a thread of its own; its child is
/// put away and its session freed.
pub(super) fn retire(
    waiting: Waiting,
    cause: GiveUp,
    warm: std::sync::Arc<WarmProcesses>,
    grace: std::time::Duration,
    metrics: std::sync::Arc<Metrics>,
) {
    metrics.gave_up(cause);
    let why = if cause == GiveUp::Timeout {
        TOO_LATE
    } else {
        GIVEN_UP
    };
    let spawned = std::thread::Builder::new()
        .name("tool-expired".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let Waiting { process, lease, .. } = waiting;
            // Its results, or a new question, may come while it ends: they
            // wait for the session rather than being refused as busy.
            lease.answered();
            let run = finish_unheard(process, Instant::now() + grace, why, true);
            metrics.turn_ended(TurnEnd::Interrupted);
            put_away(&warm, run);
            drop(lease);
        });
    if let Err(e) = spawned {
        log::error!("cannot end a turn whose tool results never came: {e}");
    }
}
