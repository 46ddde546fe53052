//! What a Claude Code turn says, as it says it: the typed events the
//! adapter (`claude::adapter`) reads out of the CLI's output. Each API
//! writes them in its own words: chat chunks (`claude::chunks`), Responses
//! events (`responses::events`) and Messages events (`anthropic::answer`). None of them reads another's
//! output. A whole answer is an [`Answer`], which each API writes too.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The answer begins (chat sends the assistant's role here).
    Began,
    /// A piece of the answer's text.
    Text(String),
    /// A piece of the model's thinking (made only when the client asked
    /// to see it).
    Thinking(String),
    /// The signature that closes a thinking block.
    ThinkingSigned(String),
    /// A thinking block the API gave only encrypted.
    RedactedThinking(String),
    /// The answer's call `index` (counted from 0) opens.
    CallStarted {
        index: usize,
        id: String,
        name: String,
    },
    /// A piece of call `index`'s arguments (JSON text).
    Arguments { index: usize, piece: String },
    /// The answer is over, and why.
    Stopped(Stop),
    /// The turn's token counts, after everything else.
    Counted(TokenCounts),
}

/// One call the model made, with the client's function name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// A whole answer: what a non-streaming request gets, and what a stream's
/// events add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The model's thinking, in order, when the client asked to see it.
    pub thinking: Vec<Thought>,
    pub text: String,
    /// The client's functions the model called, when the answer ends with
    /// them (`stop` is then [`Stop::ToolUse`]).
    pub calls: Vec<Call>,
    pub stop: Stop,
    pub counts: TokenCounts,
}

/// One block of the model's thinking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thought {
    /// Thinking as text, with the signature the API gave it.
    Plain { text: String, signature: String },
    /// Thinking the API gave only encrypted.
    Redacted { data: String },
}

impl Answer {
    /// The text of all the thinking, for the APIs that show it as one
    /// string (chat's `reasoning_content`, a Responses summary).
    pub fn thinking_text(&self) -> String {
        let plain = self.thinking.iter().filter_map(|t| match t {
            Thought::Plain { text, .. } => Some(text.as_str()),
            Thought::Redacted { .. } => None,
        });
        plain.collect::<Vec<_>>().join("\n\n")
    }
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model finished.
    EndTurn,
    /// The model was cut at its output limit.
    MaxTokens,
    /// The model called the client's functions and waits for their results.
    ToolUse,
}

impl Stop {
    /// From the stop reason of the model's last message.
    pub fn of_model(stop_reason: Option<&str>) -> Stop {
        match stop_reason {
            Some("max_tokens") => Stop::MaxTokens,
            _ => Stop::EndTurn,
        }
    }
}

/// How full a session's context is, as its last turn left it: the tokens
/// of its last model call (the whole prompt it read and what it wrote),
/// and the compactions of the conversation so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextUse {
    pub tokens: u64,
    pub compactions: u64,
}

/// The tokens a turn read and wrote (or a session's, added up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenCounts {
    /// Read fresh (not from the prompt cache).
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    /// Of `output`, the tokens spent thinking.
    pub reasoning: u64,
}

impl TokenCounts {
    /// Everything the model read: cached or not, it is input.
    pub fn prompt(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation)
    }

    /// `more` added to these.
    pub fn add(&mut self, more: &TokenCounts) {
        self.input = self.input.saturating_add(more.input);
        self.output = self.output.saturating_add(more.output);
        self.cache_read = self.cache_read.saturating_add(more.cache_read);
        self.cache_creation = self.cache_creation.saturating_add(more.cache_creation);
        self.reasoning = self.reasoning.saturating_add(more.reasoning);
    }
}
