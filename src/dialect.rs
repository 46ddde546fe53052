//! An answer of Claude Code mode in another API's words. A turn always
//! produces a chat completion and, when streamed, its chunks; the Responses
//! and Anthropic Messages APIs each turn those into their own whole answer
//! and their own typed events, and may note the answer on the way (the
//! Responses API keeps it). The turn itself stays the same.

use std::sync::Arc;

use serde_json::Value;

use crate::claude::SessionId;
use crate::error::ApiError;
use crate::http::Reply;

/// One request's answer in another API.
pub trait Dialect: Send + Sync {
    /// The whole answer for the turn's chat completion on `session`.
    fn whole(&self, completion: &Value, session: &SessionId) -> Value;
    /// The writer of the answer's stream on `session`.
    fn events(self: Arc<Self>, session: &SessionId) -> Box<dyn DialectEvents>;
}

/// A stream told in another API: each result is one SSE event's lines
/// (`event:` and `data:`, without the blank line).
pub trait DialectEvents: Send {
    /// The events of one `chat.completion.chunk`.
    fn chunk(&mut self, chunk: &[u8]) -> Vec<Vec<u8>>;
    /// The last events of an answer that ended well (its chat completion).
    fn answered(&mut self, completion: &Value) -> Vec<Vec<u8>>;
    /// The events that end a stream broken by `error`.
    fn failed(&mut self, error: &ApiError) -> Vec<Vec<u8>>;
}

/// The chat turn's own ignored parameters and the other API's (named as
/// that API names them), in one header.
pub fn with_ignored(mut reply: Reply, ignored: &[&'static str]) -> Reply {
    const HEADER: &str = "X-Claude-Ignored-Params";
    let mut names: Vec<String> = ignored.iter().map(|s| s.to_string()).collect();
    if let Some(chat) = reply.header(HEADER) {
        for name in chat.split(',') {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    reply
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(HEADER));
    if names.is_empty() {
        reply
    } else {
        reply.with_header(HEADER, names.join(","))
    }
}
