//! One turn of a `claude` child (see `process`) whose user line has been
//! written: read stdout line by line into the adapter within the output
//! limits, and decide what the turn's end means. A turn ends with the CLI's `result`
//! line (the child may then stay up for the next turn) or with the end of
//! stdout. Knows nothing of HTTP: callers get events and a final result or
//! an `ApiError`.

use std::time::Duration;

use crate::claude::child::output::LineRead;
use crate::claude::child::process::{CliProcess, Reaped};
use crate::claude::child::warm::WarmProcesses;
use crate::claude::reading::adapter::{
    failure_from_stderr, sanitize_message, Adapter, Outcome, Step,
};
use crate::error::ApiError;
use crate::supervisor::StopReason;
use crate::turn_event::{Answer, TurnEvent};

/// One turn on a child and everything read from it so far.
pub struct CliRun {
    process: CliProcess,
    pub adapter: Adapter,
    /// Set by `finish`: the turn ended cleanly and the child may take the
    /// next one.
    reusable: bool,
}

/// What reading one more line produced.
pub enum Progress {
    /// Events to send (possibly none).
    Events(Vec<TurnEvent>),
    /// The turn is over (its `result`, the end of stdout, or a stop); call
    /// [`CliRun::finish`].
    Ended,
}

impl CliRun {
    /// A turn on `process`, whose user line has been written.
    pub fn new(process: CliProcess, adapter: Adapter) -> CliRun {
        CliRun {
            process,
            adapter,
            reusable: false,
        }
    }

    /// The child, once the turn is over: to be kept warm if
    /// [`CliRun::reusable`], else closed.
    pub fn into_process(self) -> CliProcess {
        self.process
    }

    pub fn process(&self) -> &CliProcess {
        &self.process
    }

    /// True when `finish` found the child ready for another turn.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Decides, once the turn is over, whether the child can take another:
    /// it must have been started to stay up, have ended the turn cleanly,
    /// and not have been signalled (its watch is then re-armed for rest).
    fn settle(&mut self, ended_cleanly: bool) -> bool {
        self.reusable = ended_cleanly
            && self.process.keeps_open()
            && !self.process.stderr_flooded()
            && self.process.rest();
        self.reusable
    }

    /// Reads one stdout line and feeds it to the adapter.
    pub fn step(&mut self) -> Progress {
        self.read(None).unwrap_or(Progress::Ended)
    }

    /// [`CliRun::step`], or `None` when the child wrote nothing within
    /// `wait` (a stream sends a keep-alive then).
    pub fn step_within(&mut self, wait: Duration) -> Option<Progress> {
        self.read(Some(wait))
    }

    fn read(&mut self, wait: Option<Duration>) -> Option<Progress> {
        // After its `result` a warm child writes nothing until its next turn.
        if self.adapter.over() || self.process.stderr_flooded() {
            return Some(Progress::Ended);
        }
        let line = match wait {
            None => self.process.next_line(),
            Some(wait) => self.process.next_line_within(wait)?,
        };
        Some(match line {
            LineRead::Line(line) => match self.adapter.push_line(line) {
                Step::Nothing => Progress::Events(Vec::new()),
                Step::Events(events) => Progress::Events(events),
                Step::AuthFailed => {
                    // The CLI would retry a refused key for minutes.
                    self.stop(StopReason::AuthFailed);
                    Progress::Ended
                }
            },
            LineRead::OverLimit => {
                self.stop(StopReason::OutputLimit);
                Progress::Ended
            }
            LineRead::Eof => Progress::Ended,
            LineRead::Error(e) => {
                log::warn!("reading the claude CLI's output failed: {e}");
                Progress::Ended
            }
        })
    }

    /// The answer, once the CLI's `result` line says it succeeded and nothing
    /// stopped the run: the client gets it without waiting for the child to
    /// exit. The caller then keeps the child warm or closes it.
    pub fn take_answer(&mut self) -> Option<Finished> {
        if !self.adapter.answered() || self.process.reason().is_some() {
            return None;
        }
        match self.adapter.finish() {
            Outcome::Success {
                final_events,
                answer,
                ..
            } => {
                self.settle(true);
                Some(Finished {
                    final_events,
                    answer,
                })
            }
            // `answered` checked for a successful result line.
            Outcome::Failed(_) | Outcome::NoResult => None,
        }
    }

    /// True when more of the child's output is already read: the next step
    /// will not wait for the child.
    pub fn output_pending(&self) -> bool {
        self.process.output_pending()
    }

    /// Nobody is listening any more: the turn is interrupted (a child that
    /// cannot take an interrupt is stopped).
    pub fn client_gone(&self) {
        self.process.interrupt(StopReason::ClientGone);
    }

    fn stop(&self, reason: StopReason) {
        self.process.stop(reason);
    }

    /// Decides the turn's result: the adapter's outcome unless the turn was
    /// stopped or interrupted, the child crashed or its stderr says why it
    /// failed. A child that ended its turn with a `result` line and was not
    /// signalled stays up (see [`CliRun::reusable`]); any other is reaped
    /// here, which also gives its stderr.
    pub fn finish(&mut self) -> Result<Finished, ApiError> {
        let outcome = self.adapter.finish();
        let reason = self.process.reason();
        // A turn that ended with its `result` line leaves a child kept open
        // waiting for its next turn when the CLI only reported what happened:
        // an answer, an interrupt, or an error of the API (a refused
        // allowance, an overload). A failure of the CLI itself ends it, and
        // its stderr says why.
        let interrupted = matches!(reason, Some(StopReason::Timeout | StopReason::ClientGone));
        let api_error = matches!(&outcome, Outcome::Failed(e)
            if !matches!(e, ApiError::InternalError { .. }));
        let ended_cleanly = matches!(outcome, Outcome::Success { .. })
            || self.adapter.has_result() && (interrupted || api_error);
        let Reaped {
            stderr,
            exit_code,
            reason,
        } = if self.settle(ended_cleanly) {
            Reaped {
                reason,
                ..Reaped::default()
            }
        } else {
            self.process.reap()
        };
        match reason {
            Some(StopReason::Timeout) => {
                return Err(ApiError::Timeout {
                    what: "claude CLI request",
                })
            }
            Some(StopReason::AuthFailed) => return Err(ApiError::BackendAuthFailed),
            Some(StopReason::OutputLimit) => return Err(ApiError::OutputLimitExceeded),
            Some(StopReason::Shutdown) => return Err(ApiError::ServerShuttingDown),
            Some(StopReason::ClientGone) => return Err(ApiError::ClientGone),
            None => {}
        }
        if stderr.over_limit {
            return Err(ApiError::OutputLimitExceeded);
        }
        match outcome {
            Outcome::Success {
                final_events,
                answer,
                ..
            } => Ok(Finished {
                final_events,
                answer,
            }),
            // A resume of a session the CLI no longer has ends in an
            // error result with no API status; stderr says which session.
            Outcome::Failed(error @ ApiError::InternalError { .. }) => Err(failure_from_stderr(
                &stderr.text,
                self.process.session_id.as_str(),
            )
            .unwrap_or(error)),
            Outcome::Failed(error) => Err(error),
            Outcome::NoResult => {
                if let Some(error) =
                    failure_from_stderr(&stderr.text, self.process.session_id.as_str())
                {
                    return Err(error);
                }
                let message = if self.adapter.bad_lines() > 0 {
                    "The claude CLI produced output this server could not read.".to_string()
                } else {
                    match exit_code {
                        Some(code) => {
                            let detail = sanitize_message(stderr.text.trim());
                            if detail.is_empty() {
                                format!(
                                    "The claude CLI exited with status {code} without an answer."
                                )
                            } else {
                                format!(
                                    "The claude CLI exited with status {code} without an answer: {detail}"
                                )
                            }
                        }
                        None => "The claude CLI was killed before it answered.".to_string(),
                    }
                };
                Err(ApiError::InternalError { message })
            }
        }
    }
}

/// A child that ended its turn cleanly waits for its session's next turn;
/// any other is closed.
pub(in crate::claude) fn put_away(warm: &WarmProcesses, run: CliRun) {
    if run.reusable() {
        warm.park(run.into_process());
    } else {
        run.into_process().close();
    }
}

/// A successful run.
pub struct Finished {
    /// Streaming: what follows the content (the stop, the counts).
    pub final_events: Vec<TurnEvent>,
    /// The whole answer.
    pub answer: Answer,
}
