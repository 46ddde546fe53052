//! How a run ends, once its output is read: the held-back text released,
//! and the outcome decided from the `result` line (the whole answer, with
//! its final events, or the failure), or, for a model message that stopped
//! for client calls, the answer with those calls.

use super::*;

impl Adapter {
    /// Text still held back for redaction, as events: a stream that breaks
    /// still shows what the model said before it broke.
    pub fn release_held(&mut self) -> Vec<TurnEvent> {
        let tail = self.redactor.flush();
        if tail.is_empty() {
            return Vec::new();
        }
        let mut events = Vec::new();
        self.begin(&mut events);
        self.content.push_str(&tail);
        self.emit(&mut events, TurnEvent::Text(tail));
        events
    }

    pub fn finish(&mut self) -> Outcome {
        if self.paused && self.result.is_none() {
            return self.finish_with_calls();
        }
        let Some(result) = self.result.take() else {
            return Outcome::NoResult;
        };
        if result.failed() {
            return Outcome::Failed(failure::from_result(&result));
        }
        let mut final_events = Vec::new();
        self.begin(&mut final_events);
        // Thinking whose block never got its signature.
        let thought = self.thinking_redactor.flush();
        self.push_thinking(thought, &mut final_events);
        let tail = self.redactor.flush();
        if !tail.is_empty() {
            self.content.push_str(&tail);
            self.emit(&mut final_events, TurnEvent::Text(tail));
        }
        // No partial messages seen (an older CLI, or output without
        // `--include-partial-messages`): the result text is the answer.
        if !self.saw_text {
            let text = redact(result.result.as_deref().unwrap_or(""));
            if !text.is_empty() {
                self.emit(&mut final_events, TurnEvent::Text(text.clone()));
                self.content = text;
            }
        }
        let stop = Stop::of_model(
            self.last_stop_reason
                .as_deref()
                .or(result.stop_reason.as_deref()),
        );
        self.emit(&mut final_events, TurnEvent::Stopped(stop));
        let counted = if self.continuation && self.streamed_usage.input_tokens.is_some() {
            self.streamed_usage
        } else {
            result.usage.unwrap_or_default()
        };
        let counts = TokenCounts::from(&counted);
        self.emit(&mut final_events, TurnEvent::Counted(counts));
        // Built from the released deltas rather than `result.result`: after a
        // `max_tokens` continuation the CLI's result holds only the last
        // message, while the answer (and what a streaming client got) is
        // all of them.
        self.counts = Some(counts);
        let answer = Answer {
            thinking: std::mem::take(&mut self.thinking),
            text: self.content.clone(),
            calls: Vec::new(),
            stop,
            counts,
        };
        Outcome::Success {
            final_events,
            answer,
            session_id: result.session_id,
        }
    }

    /// The answer of a model message that stopped for client calls: its
    /// text, then the calls.
    fn finish_with_calls(&mut self) -> Outcome {
        let mut final_events = self.release_held();
        self.begin(&mut final_events);
        self.emit(&mut final_events, TurnEvent::Stopped(Stop::ToolUse));
        let counts = TokenCounts::from(&self.streamed_usage);
        self.emit(&mut final_events, TurnEvent::Counted(counts));
        self.counts = Some(counts);
        let answer = Answer {
            thinking: std::mem::take(&mut self.thinking),
            text: self.content.clone(),
            calls: self.tools.calls.clone(),
            stop: Stop::ToolUse,
            counts,
        };
        Outcome::Success {
            final_events,
            answer,
            session_id: None,
        }
    }
}
