//! The adapter's reading of the model's stream events: text deltas through
//! the redactor, the client's calls as they open and their argument
//! pieces, the stop reason, and the message end that pauses an answer for
//! its calls.

use super::*;
use crate::claude::reading::stream_json::{BlockDelta, BlockStart};
use crate::claude::reading::tool_calls::Block;

impl Adapter {
    pub(super) fn on_event(&mut self, event: Event) -> Step {
        self.started = true;
        let mut events = Vec::new();
        match event {
            Event::MessageStart { message } => {
                self.tools.message_started();
                if let Some(usage) = message.and_then(|m| m.usage) {
                    // The context is all this call read: its prompt.
                    self.context.tokens = usage.prompt_tokens();
                    // What this message read, fresh and from the cache.
                    self.streamed_usage.input_tokens = Some(usage.input_tokens.unwrap_or(0));
                    self.streamed_usage.cache_read_input_tokens = usage.cache_read_input_tokens;
                    self.streamed_usage.cache_creation_input_tokens =
                        usage.cache_creation_input_tokens;
                }
            }
            Event::ContentBlockDelta {
                delta: BlockDelta::TextDelta { text },
                ..
            } => {
                // With an output schema, only the structured call is the answer.
                if !self.tools.structured() {
                    self.push_text(&text, &mut events);
                }
            }
            Event::ContentBlockStart {
                index,
                content_block: BlockStart::ToolUse { id, name },
            } => match self.tools.block_started(index, &id, &name) {
                Some(Block::Call(index)) => {
                    // Text before the call leaves first.
                    events.extend(self.release_held());
                    self.begin(&mut events);
                    if let Some(call) = self.tools.calls.get(index) {
                        let (id, name) = (call.id.clone(), call.name.clone());
                        self.emit(&mut events, TurnEvent::CallStarted { index, id, name });
                    }
                }
                Some(Block::Structured) | None => {}
            },
            Event::ContentBlockDelta {
                index,
                delta: BlockDelta::InputJsonDelta { partial_json },
            } => match self.tools.block(index) {
                Some(Block::Structured) => self.push_text(&partial_json, &mut events),
                Some(Block::Call(index)) if self.tools.add_arguments(index, &partial_json) => {
                    let piece = partial_json;
                    self.emit(&mut events, TurnEvent::Arguments { index, piece });
                }
                Some(Block::Call(_)) | None => {}
            },
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.last_stop_reason = delta.stop_reason;
                }
                if let Some(output) = usage.and_then(|u| u.output_tokens) {
                    // What it wrote joins the context for the next call.
                    self.context.tokens = self.context.tokens.saturating_add(output);
                    let so_far = self.streamed_usage.output_tokens.unwrap_or(0);
                    self.streamed_usage.output_tokens = Some(so_far.saturating_add(output));
                }
                return Step::Nothing;
            }
            Event::MessageStop {} => {
                if self.tools.message_called()
                    && self.last_stop_reason.as_deref() == Some("tool_use")
                {
                    self.paused = true;
                }
                return Step::Nothing;
            }
            Event::ContentBlockStart {
                content_block: BlockStart::Thinking {},
                ..
            } if self.show_thinking => {
                events.extend(self.release_held());
                self.thinking.push(Thought::Plain {
                    text: String::new(),
                    signature: String::new(),
                });
            }
            Event::ContentBlockDelta {
                delta: BlockDelta::ThinkingDelta { thinking },
                ..
            } if self.show_thinking => {
                let ready = self.thinking_redactor.push(&thinking);
                self.push_thinking(ready, &mut events);
            }
            Event::ContentBlockDelta {
                delta: BlockDelta::SignatureDelta { signature },
                ..
            } if self.show_thinking => {
                let tail = self.thinking_redactor.flush();
                self.push_thinking(tail, &mut events);
                if let Some(Thought::Plain {
                    signature: kept, ..
                }) = self.thinking.last_mut()
                {
                    kept.push_str(&signature);
                }
                self.emit(&mut events, TurnEvent::ThinkingSigned(signature));
            }
            Event::ContentBlockStart {
                content_block: BlockStart::RedactedThinking { data },
                ..
            } if self.show_thinking => {
                events.extend(self.release_held());
                self.thinking.push(Thought::Redacted { data: data.clone() });
                self.emit(&mut events, TurnEvent::RedactedThinking(data));
            }
            Event::ContentBlockStart { .. } | Event::ContentBlockDelta { .. } | Event::Other => {
                return Step::Nothing
            }
        }
        self.begin(&mut events);
        if events.is_empty() {
            Step::Nothing
        } else {
            Step::Events(events)
        }
    }

    /// Thinking the redactor let through, added to the block being read.
    pub(super) fn push_thinking(&mut self, ready: String, events: &mut Vec<TurnEvent>) {
        if ready.is_empty() {
            return;
        }
        self.begin(events);
        if let Some(Thought::Plain { text, .. }) = self.thinking.last_mut() {
            text.push_str(&ready);
        }
        self.emit(events, TurnEvent::Thinking(ready));
    }

    /// Answer text, through the redactor.
    fn push_text(&mut self, text: &str, events: &mut Vec<TurnEvent>) {
        self.saw_text = true;
        let ready = self.redactor.push(text);
        if !ready.is_empty() {
            self.begin(events);
            self.content.push_str(&ready);
            self.emit(events, TurnEvent::Text(ready));
        }
    }
}
