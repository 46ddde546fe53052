//! The Anthropic Messages API (`POST /v1/messages`, also under
//! `/claude/v1/`), always answered by Claude Code mode, as a translation
//! onto its chat turn: the request becomes a chat request (`request`,
//! `content`), the answer a `message` object or Anthropic's event stream
//! (`answer`). Sessions work as for chat completions: the
//! `X-Claude-Session-ID` header, a resent history, or the ids of the tool
//! calls that `tool_result` blocks answer. Errors on these paths take
//! Anthropic's shape (see `pipeline`), and the key may come in `x-api-key`.

mod answer;
mod content;
mod request;

use std::sync::Arc;

use serde_json::Value;

use crate::app::App;
use crate::backend::{Backend, ChatRequest};
use crate::claude::SessionId;
use crate::dialect::{with_ignored, Dialect, DialectEvents};
use crate::error::ApiError;
use crate::http::{Incoming, Reply};
use answer::{MessageEvents, MessageMeta};
use request::translate;

/// `POST /v1/messages`.
pub fn create(app: &App, rq: &Incoming) -> Result<Reply, ApiError> {
    let json = crate::routes::json_object(&rq.body)?;
    let translated = translate(&json)?;
    let session_id = match rq.header("X-Claude-Session-ID") {
        Some(raw) => Some(SessionId::parse(raw)?),
        None => None,
    };
    if let Some(id) = &session_id {
        // Tool results carry on a turn that was counted when it began.
        if !translated.carries_tool_results() {
            app.limiter.check_session(id.as_str())?;
        }
    }
    let meta = MessageMeta {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let request = ChatRequest {
        incoming: rq,
        raw: &rq.body,
        json: &translated.chat,
        session_id,
        dialect: Some(Arc::new(MessagesTurn { meta })),
    };
    let reply = if translated.stream {
        app.claude.stream(&request)?
    } else {
        app.claude.complete(&request)?
    };
    let renames = [
        (
            "parallel_tool_calls",
            "tool_choice.disable_parallel_tool_use",
        ),
        ("response_format", "output_format"),
    ];
    Ok(with_ignored(reply, &translated.ignored, &renames))
}

struct MessagesTurn {
    meta: MessageMeta,
}

impl Dialect for MessagesTurn {
    fn whole(&self, completion: &Value, _session: &SessionId) -> Value {
        self.meta.whole(completion)
    }

    fn events(self: Arc<Self>, _session: &SessionId) -> Box<dyn DialectEvents> {
        Box::new(MessageStream(MessageEvents::new(self.meta.clone())))
    }
}

struct MessageStream(MessageEvents);

impl DialectEvents for MessageStream {
    fn chunk(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.0.chunk(chunk)
    }

    fn answered(&mut self, _completion: &Value) -> Vec<Vec<u8>> {
        self.0.complete()
    }

    fn failed(&mut self, error: &ApiError) -> Vec<Vec<u8>> {
        self.0.fail(error.anthropic_kind(), &error.message())
    }
}
