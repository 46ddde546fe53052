//! Giving up turns that wait for tool results: one at once, on the
//! caller's thread, when a new turn needs its process slot
//! ([`give_up_now`]); one in the background when it waited too long or past
//! the bounds on waiting turns ([`retire`]); all of them at the drain
//! ([`close_all`]). A given-up turn's calls get an error, the CLI finishes
//! the turn unheard ([`finish_unheard`]), and its session is freed for the
//! results that may still come.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::claude::child::process::CliProcess;
use crate::claude::child::warm::WarmProcesses;
use crate::claude::engine::run::put_away;
use crate::claude::engine::run::{CliRun, Progress};
use crate::claude::engine::waiting::{Waiting, WaitingTurns};
use crate::claude::reading::adapter::Adapter;
use crate::metrics::{GiveUp, Metrics, TurnEnd};

const TOO_LATE: &str = "The client did not send this tool's result in time.";

/// How long a turn given up in the background waits for its CLI to take in
/// the declined calls' errors before it is interrupted.
const HEARD_WAIT: Duration = Duration::from_secs(2);

/// When the CLI's turn is cut short, once its calls are declined.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::claude) enum Cut {
    /// Not at all: its model answers the errors, unheard.
    Never,
    /// At once: its process is needed now.
    Now,
    /// Once its model starts answering the errors (so the errors, not an
    /// interrupt, are what its transcript keeps), or after `HEARD_WAIT`.
    OnceHeard,
}
const GIVEN_UP: &str = "The client's result for this tool did not come before the server \
     needed this process for other work.";

/// Answers the waiting calls (and any the model makes meanwhile) with the
/// error `why`, and reads the CLI's turn to its end with nobody listening,
/// cut short as `cut` says.
pub(in crate::claude) fn finish_unheard(
    mut process: CliProcess,
    deadline: Instant,
    why: &str,
    cut: Cut,
) -> CliRun {
    if let Some(bridge) = &process.bridge {
        bridge.decline_all(why);
    }
    let resumed = process.continue_turn(deadline);
    // No tools for this adapter: it reads on to the `result` line.
    let adapter = Adapter::new(String::new(), 0, String::new(), false).without_events();
    let mut run = CliRun::new(process, adapter);
    if resumed {
        if cut == Cut::OnceHeard {
            // The errors travel through the bridge, the interrupt straight
            // to stdin: an interrupt first would leave the calls rejected
            // instead of answered.
            let until = Instant::now() + HEARD_WAIT;
            while !run.adapter.started() && !run.adapter.over() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() || matches!(run.step_within(left), Some(Progress::Ended)) {
                    break;
                }
            }
        }
        if cut != Cut::Never {
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
pub(in crate::claude) fn close_all(waiting: &WaitingTurns) {
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
pub(in crate::claude) fn give_up_now(waiting: Waiting, grace: Duration, metrics: &Metrics) {
    let Waiting { process, lease, .. } = waiting;
    // Its results may come while it ends: they wait for the session.
    lease.answered();
    let run = finish_unheard(process, Instant::now() + grace, GIVEN_UP, Cut::Now);
    metrics.turn_ended(TurnEnd::Interrupted);
    metrics.gave_up(GiveUp::Pressure);
    run.into_process().close();
    drop(lease);
}

/// A turn given up in the background (it waited too long, or past the
/// limits on waiting turns): its calls get an error, and it is ended
/// (interrupted, as nobody listens) on a thread of its own; its child is
/// put away and its session freed.
pub(in crate::claude) fn retire(
    waiting: Waiting,
    cause: GiveUp,
    warm: Arc<WarmProcesses>,
    grace: Duration,
    metrics: Arc<Metrics>,
) {
    metrics.gave_up(cause);
    let why = if cause == GiveUp::Timeout {
        TOO_LATE
    } else {
        GIVEN_UP
    };
    // Its results, or a new question, may come while it ends: they wait
    // for the session rather than being refused as busy. Marked here, not
    // on the thread, which a loaded machine may start late.
    waiting.lease.answered();
    let spawned = std::thread::Builder::new()
        .name("tool-expired".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let Waiting { process, lease, .. } = waiting;
            let run = finish_unheard(process, Instant::now() + grace, why, Cut::OnceHeard);
            metrics.turn_ended(TurnEnd::Interrupted);
            put_away(&warm, run);
            drop(lease);
        });
    if let Err(e) = spawned {
        log::error!("cannot end a turn whose tool results never came: {e}");
    }
}
