//! The contract both backends fulfil: answer a chat request whole or as a
//! stream, and say whether they can serve at all; and the one way every
//! API hands a chat request to a backend ([`take_turn`]).

use std::sync::Arc;

use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::http::{Incoming, Reply};
use crate::ratelimit::RateLimiter;
use crate::session_id::SessionId;

/// One chat completion request as the route hands it to a backend.
pub struct ChatRequest<'a> {
    pub incoming: &'a Incoming,
    /// The body exactly as received (the passthrough relays these bytes).
    pub raw: &'a [u8],
    /// The same body parsed; always a JSON object.
    pub json: &'a serde_json::Map<String, serde_json::Value>,
    /// `X-Claude-Session-ID`, checked, when a Claude Code request has one.
    pub session_id: Option<SessionId>,
    /// Set when the answer is in another API's words (Claude Code mode
    /// only); the request itself was rewritten as a chat one.
    pub dialect: Option<Arc<dyn Dialect>>,
}

impl ChatRequest<'_> {
    pub fn wants_stream(&self) -> bool {
        self.json.get("stream").and_then(|v| v.as_bool()) == Some(true)
    }
}

/// True when a chat body ends with tool (or legacy function) results: it
/// carries on a turn that was admitted when it began.
pub fn ends_with_tool_results(json: &serde_json::Map<String, serde_json::Value>) -> bool {
    let role = json
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(|r| r.as_str());
    matches!(role, Some("tool" | "function"))
}

pub trait Backend: Send + Sync {
    /// A whole `chat.completion` (or the upstream's answer, relayed).
    fn complete(&self, request: &ChatRequest) -> Result<Reply, ApiError>;
    /// A streaming reply. Errors found before the first event come back as
    /// `Err` and become a normal JSON error response.
    fn stream(&self, request: &ChatRequest) -> Result<Reply, ApiError>;
    /// `/health` status word for this backend (`ok`, or why not).
    fn health(&self) -> &'static str;
    /// True when `health()` means requests can be served.
    fn can_serve(&self) -> bool {
        self.health() == "ok"
    }
}

/// Answers `request` with `backend`, as every API does once its request is
/// a chat one: a session's turn counts against its rate limit unless it
/// only carries tool results on (that turn was counted when it began);
/// then the answer, streamed or whole as asked.
pub fn take_turn(
    backend: &dyn Backend,
    limiter: &RateLimiter,
    request: &ChatRequest,
) -> Result<Reply, ApiError> {
    if let Some(id) = &request.session_id {
        if !ends_with_tool_results(request.json) {
            limiter.check_session(id.as_str())?;
        }
    }
    if request.wants_stream() {
        backend.stream(request)
    } else {
        backend.complete(request)
    }
}
