//! Turns the CLI's stream-json output, one stdout line at a time, into the
//! turn's typed events ([`TurnEvent`]) as they become ready, and at the end
//! into the final events plus the whole [`Answer`]. The same
//! adapter serves streaming and non-streaming requests; it knows nothing
//! of processes, sockets or any API's stream.
//!
//! What it relies on (recorded in `fixtures/claude-cli-2.1.331/`): one
//! turn can hold several messages (after `max_tokens` the CLI continues on
//! its own), `thinking` blocks come with their own delta types, and the
//! `result` line always comes last. So: one role chunk, content only from
//! `text_delta`, one finish chunk carrying the last stop reason, and
//! nothing final before `result`. Two exceptions: a model message that
//! stopped to have client functions run ends the answer at its
//! `message_stop`, with the calls (`tool_calls`), as the CLI then waits;
//! and with an output schema the answer is the `StructuredOutput` call's
//! arguments, not the text (see `tool_calls`).

use std::sync::Arc;

use log::debug;

use crate::claude::reading::chunks::{ChatChunks, ChatLabels};
use crate::claude::reading::failure;
use crate::claude::reading::redact::{redact, StreamRedactor};
use crate::claude::reading::stream_json::{Event, Line, ResultLine, Usage};
use crate::claude::reading::tool_calls::ToolCalls;
use crate::claude::tools::ToolSpec;
use crate::error::ApiError;
use crate::turn_event::{Answer, ContextUse, Stop, Thought, TokenCounts, TurnEvent};

pub use crate::claude::reading::failure::{failure_from_stderr, sanitize_message};

/// What one stdout line asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Events to send now, in order.
    Events(Vec<TurnEvent>),
    /// The CLI's credentials were refused; stop the child and answer 401
    /// `backend_auth_failed` instead of waiting out its retries.
    AuthFailed,
}

/// How the run ended, decided at the end of stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success {
        /// Held-back text, the stop and the counts.
        final_events: Vec<TurnEvent>,
        /// The whole answer.
        answer: Answer,
        session_id: Option<String>,
    },
    /// The CLI reported an error in its `result` line.
    Failed(ApiError),
    /// Stdout ended without a `result` line (crash, kill, or a failure the
    /// CLI reports on stderr only: see `failure_from_stderr`).
    NoResult,
}

/// The cost figures of a turn's `result` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultCost {
    /// `total_cost_usd`: the session's running total, this turn included.
    pub total_usd: f64,
    pub duration_ms: u64,
}

pub struct Adapter {
    /// What the final answer is labelled with.
    labels: ChatLabels,
    include_usage: bool,
    /// Whether events are made at all (not for a non-streaming request).
    streaming: bool,
    began: bool,
    started: bool,
    saw_text: bool,
    redactor: StreamRedactor,
    /// All content released so far, redacted: the non-streaming answer.
    content: String,
    /// Whether the client asked to see the model's thinking; without it,
    /// thinking is read past as before.
    show_thinking: bool,
    /// The thinking read so far (redacted, as the client got it).
    thinking: Vec<Thought>,
    thinking_redactor: StreamRedactor,
    last_stop_reason: Option<String>,
    result: Option<ResultLine>,
    /// The turn's `result` line has been read (it may be taken by now).
    result_seen: bool,
    /// From the `result` line: the session's running cost and this turn's
    /// duration.
    cost: Option<ResultCost>,
    /// The whole answer's token counts, once it is whole.
    counts: Option<TokenCounts>,
    bad_lines: usize,
    /// The client's functions the model called, and the structured answer.
    tools: ToolCalls,
    /// The model stopped to have client functions run: the CLI now waits
    /// for their results, and this answer ends with the calls.
    paused: bool,
    /// Token counts of the model's messages, for an answer that ends
    /// before the `result` line (which has the turn's totals).
    streamed_usage: Usage,
    /// The latest report of the login's allowance, not yet taken.
    rate_limit: Option<serde_json::Value>,
    /// How full the context is after the latest model call, and the
    /// compactions the CLI made during the turn.
    context: ContextUse,
    /// This answer carries on a CLI turn whose first part was answered
    /// already (with tool calls): the `result` line's usage covers both
    /// parts, so the messages read here are counted instead.
    continuation: bool,
}

impl Adapter {
    /// `model` is the name the client asked for; it is echoed everywhere.
    pub fn new(completion_id: String, created: u64, model: String, include_usage: bool) -> Adapter {
        Adapter {
            labels: ChatLabels {
                id: completion_id,
                created,
                model,
            },
            include_usage,
            streaming: true,
            began: false,
            started: false,
            saw_text: false,
            redactor: StreamRedactor::new(),
            content: String::new(),
            show_thinking: false,
            thinking: Vec::new(),
            thinking_redactor: StreamRedactor::new(),
            last_stop_reason: None,
            result: None,
            result_seen: false,
            cost: None,
            counts: None,
            bad_lines: 0,
            tools: ToolCalls::new(Arc::new(ToolSpec::default())),
            paused: false,
            streamed_usage: Usage::default(),
            context: ContextUse::default(),
            rate_limit: None,
            continuation: false,
        }
    }

    /// For the answer that carries on a turn after its tool results.
    pub fn continuing(mut self) -> Adapter {
        self.continuation = true;
        self
    }

    /// The functions offered and the output schema the CLI was started
    /// with: their calls are read from the stream.
    pub fn with_tools(mut self, spec: Arc<ToolSpec>) -> Adapter {
        self.tools = ToolCalls::new(spec);
        self
    }

    /// For a client that asked to see the model's thinking: it becomes
    /// events and part of the answer.
    pub fn showing_thinking(mut self) -> Adapter {
        self.show_thinking = true;
        self
    }

    /// For a non-streaming request: the steps and the outcome are the same,
    /// but no event is made.
    pub fn without_events(mut self) -> Adapter {
        self.streaming = false;
        self
    }

    /// The chat chunks of this answer's events, labelled as its whole
    /// answer is (and with its way of telling calls).
    pub fn chat_chunks(&self) -> ChatChunks {
        ChatChunks::new(self.labels.clone(), self.include_usage, self.tools.legacy())
    }

    /// Adds `event` unless no events are made.
    fn emit(&self, events: &mut Vec<TurnEvent>, event: TurnEvent) {
        if self.streaming {
            events.push(event);
        }
    }

    /// The answer's first event, once.
    fn begin(&mut self, events: &mut Vec<TurnEvent>) {
        if !self.began {
            self.began = true;
            self.emit(events, TurnEvent::Began);
        }
    }

    pub fn push_line(&mut self, line: &[u8]) -> Step {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Step::Nothing;
        }
        let parsed = match Line::parse(line) {
            Ok(parsed) => parsed,
            Err(e) if e.is_data() => {
                // JSON of a shape this version does not know: skip it.
                debug!(
                    "claude: ignored a stream-json line of unexpected shape ({} bytes)",
                    line.len()
                );
                return Step::Nothing;
            }
            Err(_) => {
                self.bad_lines += 1;
                debug!(
                    "claude: skipped a stdout line that is not JSON ({} bytes)",
                    line.len()
                );
                return Step::Nothing;
            }
        };
        match parsed {
            Line::System(system) => {
                if system.subtype.as_deref() == Some("compact_boundary") {
                    self.context.compactions += 1;
                    let after = system.compact_metadata.and_then(|m| m.post_tokens);
                    self.context.tokens = after.unwrap_or(self.context.tokens);
                    return Step::Nothing;
                }
                if system.subtype.as_deref() != Some("api_retry") {
                    return Step::Nothing;
                }
                debug!(
                    "claude: API attempt {} failed with status {:?}",
                    system.attempt.unwrap_or(0),
                    system.error_status
                );
                match system.error_status {
                    Some(401 | 403) => Step::AuthFailed,
                    _ => Step::Nothing,
                }
            }
            Line::StreamEvent(wrapped) => {
                if wrapped
                    .parent_tool_use_id
                    .as_ref()
                    .is_some_and(|p| !p.is_null())
                {
                    return Step::Nothing;
                }
                self.on_event(wrapped.event)
            }
            Line::Result(result) => {
                self.result_seen = true;
                if let Some(total_usd) = result.total_cost_usd {
                    self.cost = Some(ResultCost {
                        total_usd,
                        duration_ms: result.duration_ms.unwrap_or(0),
                    });
                }
                self.result = Some(result);
                Step::Nothing
            }
            Line::RateLimit(line) => {
                self.rate_limit = Some(line.rate_limit_info);
                Step::Nothing
            }
            Line::Other => Step::Nothing,
        }
    }

    /// True once the model began answering; the caller commits to a 200
    /// (sends the SSE head) from then on.
    pub fn started(&self) -> bool {
        self.started
    }

    /// True once a `result` line reporting success was read (the CLI's
    /// last word), or the model stopped for client calls: the answer is
    /// complete.
    pub fn answered(&self) -> bool {
        self.paused || self.result.as_ref().is_some_and(|r| !r.failed())
    }

    /// True when the answer ends with client calls and the CLI waits for
    /// their results.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// True when calls are answered the legacy way (`function_call`).
    pub fn legacy_calls(&self) -> bool {
        self.tools.legacy()
    }

    /// The calls of this answer (client names, CLI ids).
    pub fn calls(&self) -> &[crate::claude::reading::tool_calls::Call] {
        &self.tools.calls
    }

    /// True once the model began answering or the run answered (perhaps
    /// without a word streamed first): the reply is a 200 stream from then.
    pub fn committed(&self) -> bool {
        self.started || self.answered()
    }

    /// True once the turn's `result` line was read, whatever it said: a
    /// child kept open writes nothing more until its next turn.
    pub fn has_result(&self) -> bool {
        self.result_seen
    }

    /// True once nothing more of this answer will come: the `result` line,
    /// or a stop for client calls (the CLI writes nothing until their
    /// results are in).
    pub fn over(&self) -> bool {
        self.result_seen || self.paused
    }

    /// The answer's text as the client got it (redacted, held-back text
    /// included once released).
    pub fn content(&self) -> &str {
        &self.content
    }

    /// What the `result` line said about cost and time, if it did.
    pub fn cost(&self) -> Option<ResultCost> {
        self.cost
    }

    /// The tokens of the answer, once it is whole.
    pub fn counts(&self) -> Option<TokenCounts> {
        self.counts
    }

    /// The login's allowance as the CLI last reported it, once.
    pub fn take_rate_limit(&mut self) -> Option<serde_json::Value> {
        self.rate_limit.take()
    }

    /// How full the session's context is after this turn, and the
    /// compactions it made.
    pub fn context_use(&self) -> ContextUse {
        self.context
    }

    /// Stdout lines that were not JSON at all.
    pub fn bad_lines(&self) -> usize {
        self.bad_lines
    }
}

#[path = "adapter_outcome.rs"]
mod outcome;

#[path = "adapter_events.rs"]
mod model_events;

#[cfg(test)]
#[path = "adapter_tests/mod.rs"]
mod tests;
