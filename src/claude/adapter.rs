//! Turns the CLI's stream-json output, one stdout line at a time, into
//! OpenAI `chat.completion.chunk` bodies as they become ready, and at the
//! end into the final chunks plus the whole `chat.completion`. The same
//! adapter serves streaming and non-streaming requests; it knows nothing
//! of processes or sockets.
//!
//! What it relies on (recorded in `fixtures/claude-cli-2.1.331/`): one
//! turn can hold several messages (after `max_tokens` the CLI continues on
//! its own), `thinking` blocks come with their own delta types, and the
//! `result` line always comes last. So: one role chunk, content only from
//! `text_delta`, one finish chunk carrying the last stop reason, and
//! nothing final before `result`.

use log::debug;
use serde::Serialize;
use serde_json::{json, Value};

use super::events::{BlockDelta, Event, Line, ResultLine, Usage};
use super::failure;
use super::redact::{redact, StreamRedactor};
use crate::error::ApiError;

pub use super::failure::{failure_from_stderr, sanitize_message};

/// What one stdout line asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Serialized chunk bodies to send now, in order (without `data: `).
    Chunks(Vec<Vec<u8>>),
    /// The CLI's credentials were refused; stop the child and answer 401
    /// `backend_auth_failed` instead of waiting out its retries.
    AuthFailed,
}

/// How the run ended, decided at the end of stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success {
        /// Held-back text, one finish chunk and (if asked) the usage chunk.
        final_chunks: Vec<Vec<u8>>,
        /// The whole `chat.completion` for a non-streaming reply.
        completion: Value,
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
pub struct TurnCost {
    /// `total_cost_usd`: the session's running total, this turn included.
    pub total_usd: f64,
    pub duration_ms: u64,
}

pub struct Adapter {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
    started: bool,
    saw_text: bool,
    redactor: StreamRedactor,
    /// All content released so far, redacted: the non-streaming answer.
    content: String,
    last_stop_reason: Option<String>,
    result: Option<ResultLine>,
    /// The turn's `result` line has been read (it may be taken by now).
    result_seen: bool,
    /// From the `result` line: the session's running cost and this turn's
    /// duration.
    cost: Option<TurnCost>,
    bad_lines: usize,
    /// False for a non-streaming request, whose reply is only the final
    /// `chat.completion`: no chunk is serialized for it.
    chunks_wanted: bool,
}

/// One `chat.completion.chunk`, serialized straight from borrowed fields
/// (a `json!` tree cost a dozen allocations per chunk).
#[derive(Serialize)]
struct ChunkBody<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<'a>; 1],
    /// `Some(())` writes `"usage":null`, which OpenAI puts in every chunk
    /// but the last when usage was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<()>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl Adapter {
    /// `model` is the name the client asked for; it is echoed everywhere.
    pub fn new(completion_id: String, created: u64, model: String, include_usage: bool) -> Adapter {
        Adapter {
            id: completion_id,
            created,
            model,
            include_usage,
            role_sent: false,
            started: false,
            saw_text: false,
            redactor: StreamRedactor::new(),
            content: String::new(),
            last_stop_reason: None,
            result: None,
            result_seen: false,
            cost: None,
            bad_lines: 0,
            chunks_wanted: true,
        }
    }

    /// For a non-streaming request: the steps and the outcome are the same,
    /// but no chunk is built.
    pub fn without_chunks(mut self) -> Adapter {
        self.chunks_wanted = false;
        self
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
                    self.cost = Some(TurnCost {
                        total_usd,
                        duration_ms: result.duration_ms.unwrap_or(0),
                    });
                }
                self.result = Some(result);
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

    /// True once a `result` line reporting success was read: the CLI's
    /// last word, so the answer is complete.
    pub fn answered(&self) -> bool {
        self.result.as_ref().is_some_and(|r| !r.failed())
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

    /// The answer's text as the client got it (redacted, held-back text
    /// included once released).
    pub fn content(&self) -> &str {
        &self.content
    }

    /// What the `result` line said about cost and time, if it did.
    pub fn cost(&self) -> Option<TurnCost> {
        self.cost
    }

    /// Stdout lines that were not JSON at all.
    pub fn bad_lines(&self) -> usize {
        self.bad_lines
    }

    /// Text still held back for redaction, as chunks: a stream that breaks
    /// still shows what the model said before it broke.
    pub fn release_held(&mut self) -> Vec<Vec<u8>> {
        let tail = self.redactor.flush();
        if tail.is_empty() {
            return Vec::new();
        }
        let mut chunks = Vec::new();
        if !self.role_sent {
            self.role_sent = true;
            keep(&mut chunks, self.role_chunk());
        }
        keep(&mut chunks, self.content_chunk(&tail));
        self.content.push_str(&tail);
        chunks
    }

    pub fn finish(&mut self) -> Outcome {
        let Some(result) = self.result.take() else {
            return Outcome::NoResult;
        };
        if result.failed() {
            return Outcome::Failed(failure::from_result(&result));
        }
        let mut final_chunks = Vec::new();
        if !self.role_sent {
            self.role_sent = true;
            keep(&mut final_chunks, self.role_chunk());
        }
        let tail = self.redactor.flush();
        if !tail.is_empty() {
            keep(&mut final_chunks, self.content_chunk(&tail));
            self.content.push_str(&tail);
        }
        // No partial messages seen (an older CLI, or output without
        // `--include-partial-messages`): the result text is the answer.
        if !self.saw_text {
            let text = redact(result.result.as_deref().unwrap_or(""));
            if !text.is_empty() {
                keep(&mut final_chunks, self.content_chunk(&text));
                self.content = text;
            }
        }
        let stop = self
            .last_stop_reason
            .as_deref()
            .or(result.stop_reason.as_deref());
        let finish_reason = finish_reason(stop);
        keep(
            &mut final_chunks,
            self.chunk(Delta::default(), Some(finish_reason)),
        );
        let usage = usage_json(&result.usage.unwrap_or_default());
        if self.include_usage && self.chunks_wanted {
            final_chunks.push(self.bytes(json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            })));
        }
        // Built from the released deltas rather than `result.result`: after a
        // `max_tokens` continuation the CLI's result holds only the last
        // message, while the answer (and what a streaming client got) is
        // all of them.
        let completion = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content},
                "finish_reason": finish_reason,
            }],
            "usage": usage,
        });
        Outcome::Success {
            final_chunks,
            completion,
            session_id: result.session_id,
        }
    }

    fn on_event(&mut self, event: Event) -> Step {
        self.started = true;
        let mut chunks = Vec::new();
        match event {
            Event::MessageStart {} => {}
            Event::ContentBlockDelta {
                delta: BlockDelta::TextDelta { text },
            } => {
                self.saw_text = true;
                let ready = self.redactor.push(&text);
                if !ready.is_empty() {
                    if !self.role_sent {
                        self.role_sent = true;
                        keep(&mut chunks, self.role_chunk());
                    }
                    keep(&mut chunks, self.content_chunk(&ready));
                    self.content.push_str(&ready);
                }
            }
            Event::MessageDelta { delta } => {
                if delta.stop_reason.is_some() {
                    self.last_stop_reason = delta.stop_reason;
                }
                return Step::Nothing;
            }
            Event::ContentBlockDelta { .. } | Event::Other => return Step::Nothing,
        }
        if !self.role_sent {
            self.role_sent = true;
            keep(&mut chunks, self.role_chunk());
        }
        if chunks.is_empty() {
            Step::Nothing
        } else {
            Step::Chunks(chunks)
        }
    }

    fn role_chunk(&self) -> Vec<u8> {
        let delta = Delta {
            role: Some("assistant"),
            ..Delta::default()
        };
        self.chunk(delta, None)
    }

    fn content_chunk(&self, text: &str) -> Vec<u8> {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.chunk(delta, None)
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> Vec<u8> {
        if !self.chunks_wanted {
            return Vec::new();
        }
        let body = ChunkBody {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: self.include_usage.then_some(()),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn bytes(&self, body: Value) -> Vec<u8> {
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// Adds a chunk unless it is empty (not built: a non-streaming request), so
/// such a request gets `Step::Nothing` and no list of nothing.
fn keep(chunks: &mut Vec<Vec<u8>>, chunk: Vec<u8>) {
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
}

/// Anthropic stop reason → OpenAI finish reason.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        _ => "stop",
    }
}

fn usage_json(usage: &Usage) -> Value {
    let prompt = usage.prompt_tokens();
    let completion = usage.completion_tokens();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
    })
}

#[cfg(test)]
#[path = "adapter_tests/mod.rs"]
mod tests;
