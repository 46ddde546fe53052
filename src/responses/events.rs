//! A Claude Code stream told as Responses API events: each of the turn's
//! events becomes the typed events the OpenAI SDKs' stream helpers follow,
//! numbered by
//! `sequence_number`: `response.created` and `response.in_progress` first,
//! then per output item its `added` events, its deltas and its `done`
//! events, and at the end `response.completed` (or `response.incomplete`,
//! or `response.failed` when the turn broke) with the whole response.

use serde_json::{json, Value};

use crate::claude::{Stop, TurnEvent};

use super::object::{counted_usage, message_item, summary_part, text_part, ResponseMeta, Status};
use super::tools::custom_input;

/// The events of one response so far.
pub struct ResponseEvents {
    meta: ResponseMeta,
    sequence: u64,
    started: bool,
    /// Items already done.
    output: Vec<Value>,
    /// The item being streamed; its index is `output.len()`.
    open: Option<OpenItem>,
    stop: Option<Stop>,
    usage: Option<Value>,
}

enum OpenItem {
    Reasoning {
        text: String,
    },
    Message {
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl ResponseEvents {
    pub fn new(meta: ResponseMeta) -> ResponseEvents {
        ResponseEvents {
            meta,
            sequence: 0,
            started: false,
            output: Vec::new(),
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
            TurnEvent::Text(text) => self.text(text, &mut out),
            TurnEvent::Thinking(text) => self.thinking(text, &mut out),
            TurnEvent::ThinkingSigned(_) => {
                if matches!(self.open, Some(OpenItem::Reasoning { .. })) {
                    self.close(&mut out);
                }
            }
            TurnEvent::RedactedThinking(_) => {
                self.close(&mut out);
                self.thinking("", &mut out);
                self.close(&mut out);
            }
            TurnEvent::CallStarted { id, name, .. } => self.open_call(id, name, &mut out),
            TurnEvent::Arguments { piece, .. } => self.arguments(piece, &mut out),
            TurnEvent::Stopped(stop) => {
                self.close(&mut out);
                self.stop = Some(*stop);
            }
            TurnEvent::Counted(counts) => self.usage = Some(counted_usage(counts)),
        }
        out
    }

    /// The last events of a response that ended well, and the response.
    pub fn complete(&mut self) -> (Vec<Vec<u8>>, Value) {
        let mut out = Vec::new();
        self.start(&mut out);
        if self.output.is_empty() && self.open.is_none() {
            // Nothing was said: still one (empty) message, as OpenAI gives.
            self.text("", &mut out);
        }
        self.close(&mut out);
        let status = Status::of_stop(self.stop);
        let response = self.response(status, None);
        let kind = if status == Status::Incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(&mut out, kind, json!({"response": response}));
        (out, response)
    }

    /// The event of a response that broke after it began.
    pub fn fail(&mut self, message: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.start(&mut out);
        let error = json!({"code": "server_error", "message": message});
        let response = self.response(Status::Failed, Some(error));
        self.emit(&mut out, "response.failed", json!({"response": response}));
        out
    }

    fn response(&self, status: Status, error: Option<Value>) -> Value {
        let usage = (status != Status::InProgress)
            .then(|| self.usage.clone())
            .flatten();
        self.meta.object(status, self.output.clone(), usage, error)
    }

    fn start(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response(Status::InProgress, None);
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Vec<u8>>) {
        let index = self.output.len();
        let item_id = self.meta.message_id(index);
        if !matches!(self.open, Some(OpenItem::Message { .. })) {
            self.close(out);
            self.open = Some(OpenItem::Message {
                text: String::new(),
            });
            let item = message_item(&item_id, "", false);
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0,
                       "part": text_part("")}),
            );
        }
        if text.is_empty() {
            return;
        }
        if let Some(OpenItem::Message { text: so_far }) = &mut self.open {
            so_far.push_str(text);
        }
        self.emit(
            out,
            "response.output_text.delta",
            json!({"item_id": item_id, "output_index": index, "content_index": 0,
                   "delta": text, "logprobs": []}),
        );
    }

    /// A piece of thinking: a reasoning item opens for it, and with a
    /// summary asked for, the piece is its summary text's delta.
    fn thinking(&mut self, text: &str, out: &mut Vec<Vec<u8>>) {
        let index = self.output.len();
        let item_id = self.meta.reasoning_id(index);
        let summary = self.meta.reasoning_summary;
        if !matches!(self.open, Some(OpenItem::Reasoning { .. })) {
            self.close(out);
            self.open = Some(OpenItem::Reasoning {
                text: String::new(),
            });
            let item = self.meta.reasoning_item(index, "", false);
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            if summary {
                self.emit(
                    out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                           "part": summary_part("")}),
                );
            }
        }
        if text.is_empty() {
            return;
        }
        if let Some(OpenItem::Reasoning { text: so_far }) = &mut self.open {
            so_far.push_str(text);
        }
        if summary {
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                       "delta": text}),
            );
        }
    }

    fn open_call(&mut self, call_id: &str, name: &str, out: &mut Vec<Vec<u8>>) {
        self.close(out);
        let index = self.output.len();
        let item = self.meta.call_item(index, call_id, name, "", false);
        self.open = Some(OpenItem::Call {
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: String::new(),
        });
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
    }

    fn arguments(&mut self, piece: &str, out: &mut Vec<Vec<u8>>) {
        let Some(OpenItem::Call {
            arguments, name, ..
        }) = &mut self.open
        else {
            return;
        };
        if piece.is_empty() {
            return;
        }
        arguments.push_str(piece);
        // A custom call's input is told whole when it is done: its pieces
        // are pieces of the one-string object, not of the input.
        if self.meta.is_custom(name) {
            return;
        }
        let index = self.output.len();
        let item_id = self.meta.call_item_id(index);
        self.emit(
            out,
            "response.function_call_arguments.delta",
            json!({"item_id": item_id, "output_index": index, "delta": piece}),
        );
    }

    /// The `done` events of the open item, which joins the output.
    fn close(&mut self, out: &mut Vec<Vec<u8>>) {
        let index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(OpenItem::Reasoning { text }) => {
                let item_id = self.meta.reasoning_id(index);
                if self.meta.reasoning_summary {
                    self.emit(
                        out,
                        "response.reasoning_summary_text.done",
                        json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                               "text": text}),
                    );
                    self.emit(
                        out,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                               "part": summary_part(&text)}),
                    );
                }
                self.meta.reasoning_item(index, &text, true)
            }
            Some(OpenItem::Message { text }) => {
                let item_id = self.meta.message_id(index);
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0,
                           "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0,
                           "part": text_part(&text)}),
                );
                message_item(&item_id, &text, true)
            }
            Some(OpenItem::Call {
                call_id,
                name,
                arguments,
            }) => {
                let item = self
                    .meta
                    .call_item(index, &call_id, &name, &arguments, true);
                let item_id = item["id"].clone();
                if self.meta.is_custom(&name) {
                    let input = custom_input(&arguments);
                    self.emit(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": item_id, "output_index": index, "delta": input}),
                    );
                    self.emit(
                        out,
                        "response.custom_tool_call_input.done",
                        json!({"item_id": item_id, "output_index": index, "input": input}),
                    );
                } else {
                    self.emit(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": item_id, "output_index": index, "name": item["name"],
                               "arguments": arguments}),
                    );
                }
                item
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn emit(&mut self, out: &mut Vec<Vec<u8>>, kind: &str, mut body: Value) {
        body["type"] = Value::String(kind.to_string());
        body["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        let mut lines = format!("event: {kind}\ndata: ").into_bytes();
        if serde_json::to_writer(&mut lines, &body).is_ok() {
            out.push(lines);
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
