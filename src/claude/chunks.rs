//! The OpenAI shapes a Claude Code answer is written in: each
//! `chat.completion.chunk` of a stream (role, content, tool-call and finish
//! deltas, the usage chunk) and the whole `chat.completion`, all labelled
//! with the answer's id, creation time and the model the client named.
//! The adapter decides what to say; this writes it.

use serde::Serialize;
use serde_json::{json, Value};

use super::events::Usage;

/// The labels of one answer, and whether its chunks are wanted at all (a
/// non-streaming request gets only the final `chat.completion`).
pub struct Chunks {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    pub wanted: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<Value>,
}

impl Chunks {
    /// `model` is the name the client asked for; it is echoed everywhere.
    pub fn new(id: String, created: u64, model: String, include_usage: bool) -> Chunks {
        Chunks {
            id,
            created,
            model,
            include_usage,
            wanted: true,
        }
    }

    pub fn role(&self) -> Vec<u8> {
        self.chunk(
            Delta {
                role: Some("assistant"),
                ..Delta::default()
            },
            None,
        )
    }

    pub fn content(&self, text: &str) -> Vec<u8> {
        self.chunk(
            Delta {
                content: Some(text),
                ..Delta::default()
            },
            None,
        )
    }

    /// A chunk carrying call deltas: `tool_calls`, or for a `legacy`
    /// answer `function_call`. Nothing for `None`.
    pub fn calls(&self, legacy: bool, delta: Option<Value>) -> Vec<u8> {
        let Some(delta) = delta else {
            return Vec::new();
        };
        let delta = if legacy {
            Delta {
                function_call: Some(delta),
                ..Delta::default()
            }
        } else {
            Delta {
                tool_calls: Some(delta),
                ..Delta::default()
            }
        };
        self.chunk(delta, None)
    }

    /// The chunk that ends the choice.
    pub fn finish(&self, reason: &str) -> Vec<u8> {
        self.chunk(Delta::default(), Some(reason))
    }

    /// The last chunk of a stream that asked for usage (`include_usage`).
    pub fn usage(&self, usage: &Value, chunks: &mut Vec<Vec<u8>>) {
        if self.include_usage && self.wanted {
            let body = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            });
            chunks.push(serde_json::to_vec(&body).unwrap_or_default());
        }
    }

    /// The whole `chat.completion` of a non-streaming answer.
    pub fn completion(&self, message: Value, finish_reason: &str, usage: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage,
        })
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> Vec<u8> {
        if !self.wanted {
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
}

/// Adds a chunk unless it is empty (not built: a non-streaming request), so
/// such a request gets no list of nothing.
pub fn keep(chunks: &mut Vec<Vec<u8>>, chunk: Vec<u8>) {
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
}

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        _ => "stop",
    }
}

pub fn usage_json(usage: &Usage) -> Value {
    let prompt = usage.prompt_tokens();
    let completion = usage.completion_tokens();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
    })
}
