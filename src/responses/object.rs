//! The Responses API's shapes of an answer: the `response` object, its
//! `reasoning`, `message` and `function_call` output items, and its usage, all
//! labelled with the response's id, time and the model the client named.
//! A whole answer is made from the turn's [`Answer`] (`from_answer`); a
//! stream builds the same items as it goes (see `events`).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::claude::{Answer, Stop, TokenCounts};
use crate::turn_event::Thought;

use super::tools::{custom_input, Tools};

/// What labels one response, and the request fields it repeats.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `resp_<32 hex>`.
    pub id: String,
    pub created_at: u64,
    pub model: String,
    pub previous_response_id: Option<String>,
    pub store: bool,
    /// `reasoning.summary` was asked for: reasoning items carry the
    /// model's thinking as their summary text (else an empty summary).
    pub reasoning_summary: bool,
    /// Request fields echoed as sent (see `request::ECHOED`).
    pub echo: Map<String, Value>,
    /// The tools offered: how a chat call is told here.
    pub tools: Arc<Tools>,
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Cut at the output limit (`finish_reason: length`).
    Incomplete,
    Failed,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }

    /// The status of an answer that ended for `stop`.
    pub fn of_stop(stop: Option<Stop>) -> Status {
        match stop {
            Some(Stop::MaxTokens) => Status::Incomplete,
            _ => Status::Completed,
        }
    }
}

impl ResponseMeta {
    fn hex(&self) -> &str {
        self.id.strip_prefix("resp_").unwrap_or(&self.id)
    }

    /// The id of the answer's text item.
    pub fn message_id(&self, index: usize) -> String {
        format!("msg_{}_{index}", self.hex())
    }

    /// The id of the answer's `n`th output item when it is reasoning.
    pub fn reasoning_id(&self, index: usize) -> String {
        format!("rs_{}_{index}", self.hex())
    }

    /// A reasoning item: the thinking as its summary when one was asked
    /// for. The API's encrypted thinking is not passed on as
    /// `encrypted_content`: nothing here could read it back.
    pub fn reasoning_item(&self, index: usize, text: &str, done: bool) -> Value {
        let summary = if done && self.reasoning_summary && !text.is_empty() {
            json!([summary_part(text)])
        } else {
            json!([])
        };
        json!({"id": self.reasoning_id(index), "type": "reasoning", "summary": summary})
    }

    /// The id of the answer's `n`th output item when it is a call.
    pub fn call_item_id(&self, index: usize) -> String {
        format!("fc_{}_{index}", self.hex())
    }

    /// The output item of a chat call: a `function_call` (with its
    /// `namespace` when its tool had one), or a `custom_tool_call`.
    pub fn call_item(
        &self,
        index: usize,
        call_id: &str,
        chat_name: &str,
        arguments: &str,
        done: bool,
    ) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        let offered = self.tools.offered(chat_name);
        let name = offered.map_or(chat_name, |o| o.name.as_str());
        let mut item = if offered.is_some_and(|o| o.custom) {
            let input = if done {
                custom_input(arguments)
            } else {
                String::new()
            };
            json!({
                "id": self.custom_call_item_id(index),
                "type": "custom_tool_call",
                "status": status,
                "call_id": call_id,
                "name": name,
                "input": input,
            })
        } else {
            json!({
                "id": self.call_item_id(index),
                "type": "function_call",
                "status": status,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            })
        };
        if let Some(namespace) = offered.and_then(|o| o.namespace.as_deref()) {
            item["namespace"] = json!(namespace);
        }
        item
    }

    /// True when the chat call named `chat_name` is a custom tool's.
    pub fn is_custom(&self, chat_name: &str) -> bool {
        self.tools.offered(chat_name).is_some_and(|o| o.custom)
    }

    /// The id of the answer's `n`th output item when it is a custom call.
    pub fn custom_call_item_id(&self, index: usize) -> String {
        format!("ctc_{}_{index}", self.hex())
    }

    /// `text` as sent, with the default `format` when none was.
    fn text(&self) -> Value {
        let mut text = self.echo.get("text").cloned().unwrap_or_else(|| json!({}));
        if let Some(fields) = text.as_object_mut() {
            fields
                .entry("format")
                .or_insert_with(|| json!({"type": "text"}));
        }
        text
    }

    /// The `response` object. `error` is `{code, message}` for a failed one.
    pub fn object(
        &self,
        status: Status,
        output: Vec<Value>,
        usage: Option<Value>,
        error: Option<Value>,
    ) -> Value {
        let echoed = |field: &str, default: Value| self.echo.get(field).cloned().unwrap_or(default);
        let incomplete =
            (status == Status::Incomplete).then(|| json!({"reason": "max_output_tokens"}));
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status.word(),
            "error": error,
            "incomplete_details": incomplete,
            "instructions": echoed("instructions", Value::Null),
            "max_output_tokens": echoed("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echoed("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": self.previous_response_id,
            "reasoning": echoed("reasoning", json!({"effort": null, "summary": null})),
            "service_tier": echoed("service_tier", json!("default")),
            "store": self.store,
            "temperature": echoed("temperature", json!(1.0)),
            "text": self.text(),
            "tool_choice": echoed("tool_choice", json!("auto")),
            "tools": echoed("tools", json!([])),
            "top_p": echoed("top_p", json!(1.0)),
            "truncation": echoed("truncation", json!("disabled")),
            "usage": usage,
            "user": echoed("user", Value::Null),
            "metadata": echoed("metadata", json!({})),
        })
    }
}

pub fn message_item(id: &str, text: &str, done: bool) -> Value {
    let content = if done {
        json!([text_part(text)])
    } else {
        json!([])
    };
    json!({
        "id": id,
        "type": "message",
        "status": if done { "completed" } else { "in_progress" },
        "role": "assistant",
        "content": content,
    })
}

pub fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

pub fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

/// `usage` of a turn's counts: every input token in `input_tokens`,
/// those read from the prompt cache in its details, and of the output the
/// tokens spent thinking.
pub fn counted_usage(counts: &TokenCounts) -> Value {
    let (input, output) = (counts.prompt(), counts.output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": counts.cache_read},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": counts.reasoning},
        "total_tokens": input.saturating_add(output),
    })
}

/// The whole response of an answer: its thinking as reasoning items
/// (when shown), the text as one message item, then one item per call.
pub fn from_answer(meta: &ResponseMeta, answer: &Answer) -> Value {
    let mut output = Vec::new();
    for thought in &answer.thinking {
        let text = match thought {
            Thought::Plain { text, .. } => text.as_str(),
            Thought::Redacted { .. } => "",
        };
        output.push(meta.reasoning_item(output.len(), text, true));
    }
    // An answer of calls alone has no message item; any other has one.
    if !answer.text.is_empty() || answer.calls.is_empty() {
        output.push(message_item(
            &meta.message_id(output.len()),
            &answer.text,
            true,
        ));
    }
    for call in &answer.calls {
        let index = output.len();
        output.push(meta.call_item(index, &call.id, &call.name, &call.arguments, true));
    }
    let status = Status::of_stop(Some(answer.stop));
    meta.object(status, output, Some(counted_usage(&answer.counts)), None)
}
