//! A Claude Code answer in Anthropic's words: the whole `message` object
//! of a turn's [`Answer`], and, for a stream, Anthropic's events made from
//! the turn's events as they come. Those already hold one answer per turn
//! (a turn the CLI continued after `max_tokens` is one answer), so the
//! events are one message: one `message_start`, content blocks numbered
//! from 0 (the model's thinking first, when the client asked for it, each
//! `thinking` block closed by its signature), one `message_delta` with the
//! stop reason and usage, one `message_stop`.

use serde_json::{json, Value};

use crate::claude::{Answer, Stop, TokenCounts, TurnEvent};
use crate::turn_event::Thought;

/// What labels one answer.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// `msg_<32 hex>`.
    pub id: String,
    /// As the client asked for it.
    pub model: String,
}

/// A call's arguments as the `input` object (`{}` when they are not one).
fn input_of(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// The stop reason of a streamed answer that ended for `stop`.
fn stop_reason_of(stop: Option<Stop>) -> &'static str {
    match stop {
        Some(Stop::MaxTokens) => "max_tokens",
        Some(Stop::ToolUse) => "tool_use",
        Some(Stop::EndTurn) | None => "end_turn",
    }
}

/// `usage` as the Anthropic API reports it: `input_tokens` only what was
/// read fresh, the prompt cache's reads and writes apart.
fn counted_usage(counts: &TokenCounts) -> Value {
    json!({
        "input_tokens": counts.input,
        "output_tokens": counts.output,
        "cache_creation_input_tokens": counts.cache_creation,
        "cache_read_input_tokens": counts.cache_read,
    })
}

impl MessageMeta {
    fn message(&self, content: Vec<Value>, stop: Option<&str>, usage: Value) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": usage,
        })
    }

    /// The whole `message` of an answer.
    pub fn whole(&self, answer: &Answer) -> Value {
        let mut content: Vec<Value> = answer.thinking.iter().map(thinking_block).collect();
        if !answer.text.is_empty() {
            content.push(json!({"type": "text", "text": answer.text}));
        }
        for call in &answer.calls {
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": input_of(&call.arguments),
            }));
        }
        let stop = stop_reason_of(Some(answer.stop));
        let usage = counted_usage(&answer.counts);
        self.message(content, Some(stop), usage)
    }
}

/// A thinking block as the Messages API gives it back.
fn thinking_block(thought: &Thought) -> Value {
    match thought {
        Thought::Plain { text, signature } => {
            json!({"type": "thinking", "thinking": text, "signature": signature})
        }
        Thought::Redacted { data } => json!({"type": "redacted_thinking", "data": data}),
    }
}

/// The events of one streamed answer so far.
pub struct MessageEvents {
    meta: MessageMeta,
    started: bool,
    /// Index of the next block.
    next_block: usize,
    open: Option<OpenBlock>,
    stop: Option<Stop>,
    usage: Option<Value>,
}

#[derive(PartialEq)]
enum OpenBlock {
    Text,
    Thinking,
    ToolUse,
}

impl MessageEvents {
    pub fn new(meta: MessageMeta) -> MessageEvents {
        MessageEvents {
            meta,
            started: false,
            next_block: 0,
            open: None,
            stop: None,
            usage: None,
        }
    }

    /// The events one event of the turn makes, each as its SSE lines.
    pub fn event(&mut self, event: &TurnEvent) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.start(&mut out);
        match event {
            TurnEvent::Began => {}
            TurnEvent::Text(text) if text.is_empty() => {}
            TurnEvent::Text(text) => {
                if self.open != Some(OpenBlock::Text) {
                    let block = json!({"type": "text", "text": ""});
                    self.open_block(OpenBlock::Text, block, &mut out);
                }
                let delta = json!({"type": "text_delta", "text": text});
                self.block_delta(delta, &mut out);
            }
            TurnEvent::Thinking(text) => {
                if self.open != Some(OpenBlock::Thinking) {
                    let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                    self.open_block(OpenBlock::Thinking, block, &mut out);
                }
                let delta = json!({"type": "thinking_delta", "thinking": text});
                self.block_delta(delta, &mut out);
            }
            TurnEvent::ThinkingSigned(signature) => {
                if self.open != Some(OpenBlock::Thinking) {
                    let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                    self.open_block(OpenBlock::Thinking, block, &mut out);
                }
                let delta = json!({"type": "signature_delta", "signature": signature});
                self.block_delta(delta, &mut out);
                self.close_block(&mut out);
            }
            TurnEvent::RedactedThinking(data) => {
                let block = json!({"type": "redacted_thinking", "data": data});
                self.open_block(OpenBlock::Thinking, block, &mut out);
                self.close_block(&mut out);
            }
            TurnEvent::CallStarted { id, name, .. } => {
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.open_block(OpenBlock::ToolUse, block, &mut out);
            }
            TurnEvent::Arguments { piece, .. } if self.open == Some(OpenBlock::ToolUse) => {
                let delta = json!({"type": "input_json_delta", "partial_json": piece});
                self.block_delta(delta, &mut out);
            }
            TurnEvent::Arguments { .. } => {}
            TurnEvent::Stopped(stop) => {
                self.close_block(&mut out);
                self.stop = Some(*stop);
            }
            TurnEvent::Counted(counts) => self.usage = Some(counted_usage(counts)),
        }
        out
    }

    /// `message_delta` (stop reason, usage) and `message_stop`.
    pub fn complete(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close_block(&mut out);
        let stop = stop_reason_of(self.stop);
        let usage = self
            .usage
            .clone()
            .unwrap_or_else(|| counted_usage(&TokenCounts::default()));
        emit(
            &mut out,
            "message_delta",
            json!({"delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage}),
        );
        emit(&mut out, "message_stop", json!({}));
        out
    }

    /// The `error` event of a stream that broke after it began.
    pub fn fail(&mut self, kind: &str, message: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        emit(
            &mut out,
            "error",
            json!({"error": {"type": kind, "message": message}}),
        );
        out
    }

    fn start(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = json!({"input_tokens": 0, "output_tokens": 0});
        let message = self.meta.message(Vec::new(), None, usage);
        emit(out, "message_start", json!({"message": message}));
        emit(out, "ping", json!({}));
    }

    fn open_block(&mut self, block: OpenBlock, content_block: Value, out: &mut Vec<Vec<u8>>) {
        self.close_block(out);
        self.open = Some(block);
        let index = self.next_block;
        emit(
            out,
            "content_block_start",
            json!({"index": index, "content_block": content_block}),
        );
    }

    fn block_delta(&mut self, delta: Value, out: &mut Vec<Vec<u8>>) {
        let index = self.next_block;
        emit(
            out,
            "content_block_delta",
            json!({"index": index, "delta": delta}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.open.take().is_some() {
            emit(out, "content_block_stop", json!({"index": self.next_block}));
            self.next_block += 1;
        }
    }
}

fn emit(out: &mut Vec<Vec<u8>>, kind: &str, mut body: Value) {
    body["type"] = Value::String(kind.to_string());
    let mut lines = format!("event: {kind}\ndata: ").into_bytes();
    if serde_json::to_writer(&mut lines, &body).is_ok() {
        out.push(lines);
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
