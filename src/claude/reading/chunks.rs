//! The Chat Completions API's words for a Claude Code answer: each
//! `chat.completion.chunk` of a stream, written from the turn's typed
//! events, and the whole `chat.completion` of an [`Answer`]
//! ([`ChatChunks`]), all labelled with the answer's id, creation time and
//! the model the client named; and the assistant message an answer adds to
//! a conversation ([`chat_message`]).

use serde::Serialize;
use serde_json::{json, Value};

use crate::turn_event::{Answer, Stop, TokenCounts, TurnEvent};

/// What every chunk and the whole answer are labelled with.
#[derive(Debug, Clone)]
pub struct ChatLabels {
    pub id: String,
    pub created: u64,
    /// The name the client asked for; it is echoed everywhere.
    pub model: String,
}

/// A stream's chunks: the labels, whether the client asked for the usage
/// chunk, and whether calls are told the legacy way (`function_call`).
#[derive(Debug, Clone)]
pub struct ChatChunks {
    labels: ChatLabels,
    include_usage: bool,
    legacy: bool,
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
    /// The model's thinking, as vLLM, DeepSeek and LiteLLM send it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<Value>,
}

impl ChatChunks {
    pub fn new(labels: ChatLabels, include_usage: bool, legacy: bool) -> ChatChunks {
        ChatChunks {
            labels,
            include_usage,
            legacy,
        }
    }

    /// The whole `chat.completion` of `answer`; its thinking, when shown,
    /// in the message's `reasoning_content`.
    pub fn completion(&self, answer: &Answer) -> Value {
        let mut message = chat_message(answer, self.legacy);
        if !answer.thinking.is_empty() {
            message["reasoning_content"] = Value::String(answer.thinking_text());
        }
        json!({
            "id": self.labels.id,
            "object": "chat.completion",
            "created": self.labels.created,
            "model": self.labels.model,
            "choices": [{
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(answer.stop, self.legacy),
            }],
            "usage": usage_json(&answer.counts),
        })
    }

    /// The chunks of `events`, in order (an event may make none).
    pub fn encode_all(&self, events: &[TurnEvent]) -> Vec<Vec<u8>> {
        events.iter().filter_map(|e| self.encode(e)).collect()
    }

    /// The chunk of one event: none for a legacy answer's second call, or
    /// for the counts when the client did not ask for them.
    pub fn encode(&self, event: &TurnEvent) -> Option<Vec<u8>> {
        let (delta, finish) = match event {
            TurnEvent::Began => (
                Delta {
                    role: Some("assistant"),
                    ..Delta::default()
                },
                None,
            ),
            TurnEvent::Text(text) => (
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                None,
            ),
            TurnEvent::Thinking(text) => (
                Delta {
                    reasoning_content: Some(text),
                    ..Delta::default()
                },
                None,
            ),
            // Chat has no place for a signature or encrypted thinking.
            TurnEvent::ThinkingSigned(_) | TurnEvent::RedactedThinking(_) => return None,
            TurnEvent::CallStarted { index, id, name } => {
                let delta = if self.legacy {
                    (*index == 0).then(|| json!({"name": name, "arguments": ""}))?
                } else {
                    json!([{"index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}])
                };
                (self.calls_delta(delta), None)
            }
            TurnEvent::Arguments { index, piece } => {
                let delta = if self.legacy {
                    (*index == 0).then(|| json!({"arguments": piece}))?
                } else {
                    json!([{"index": index, "function": {"arguments": piece}}])
                };
                (self.calls_delta(delta), None)
            }
            TurnEvent::Stopped(stop) => (Delta::default(), Some(finish_reason(*stop, self.legacy))),
            TurnEvent::Counted(counts) => return self.usage_chunk(counts),
        };
        let body = ChunkBody {
            id: &self.labels.id,
            object: "chat.completion.chunk",
            created: self.labels.created,
            model: &self.labels.model,
            choices: [ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: self.include_usage.then_some(()),
        };
        serde_json::to_vec(&body).ok()
    }

    fn calls_delta<'a>(&self, delta: Value) -> Delta<'a> {
        if self.legacy {
            Delta {
                function_call: Some(delta),
                ..Delta::default()
            }
        } else {
            Delta {
                tool_calls: Some(delta),
                ..Delta::default()
            }
        }
    }

    /// The last chunk of a stream that asked for usage (`include_usage`).
    fn usage_chunk(&self, counts: &TokenCounts) -> Option<Vec<u8>> {
        if !self.include_usage {
            return None;
        }
        let body = json!({
            "id": self.labels.id,
            "object": "chat.completion.chunk",
            "created": self.labels.created,
            "model": self.labels.model,
            "choices": [],
            "usage": usage_json(counts),
        });
        serde_json::to_vec(&body).ok()
    }
}

/// The assistant message of `answer`: its text, and its calls when it
/// ends with them (`tool_calls`, or a `legacy` answer's one
/// `function_call`; the text is then null when there is none).
pub fn chat_message(answer: &Answer, legacy: bool) -> Value {
    if answer.stop != Stop::ToolUse {
        return json!({"role": "assistant", "content": answer.text});
    }
    let content = if answer.text.is_empty() {
        Value::Null
    } else {
        Value::String(answer.text.clone())
    };
    let mut message = json!({"role": "assistant", "content": content});
    if legacy {
        let first = answer.calls.first();
        message["function_call"] = json!({
            "name": first.map(|c| c.name.as_str()).unwrap_or(""),
            "arguments": first.map(|c| c.arguments.as_str()).unwrap_or(""),
        });
    } else {
        let calls: Vec<Value> = answer
            .calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    message
}

/// The chat `finish_reason` of an answer that ended for `stop`.
pub fn finish_reason(stop: Stop, legacy: bool) -> &'static str {
    match stop {
        Stop::EndTurn => "stop",
        Stop::MaxTokens => "length",
        Stop::ToolUse if legacy => "function_call",
        Stop::ToolUse => "tool_calls",
    }
}

/// Chat `usage`: every input token in `prompt_tokens`, as OpenAI counts
/// them, and those read from the prompt cache in its details; of the
/// output, the tokens spent thinking.
pub fn usage_json(counts: &TokenCounts) -> Value {
    let prompt = counts.prompt();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": counts.output,
        "total_tokens": prompt.saturating_add(counts.output),
        "prompt_tokens_details": {"cached_tokens": counts.cache_read},
        "completion_tokens_details": {"reasoning_tokens": counts.reasoning},
    })
}
