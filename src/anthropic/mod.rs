//! The Anthropic Messages API (`POST /v1/messages`, also under
//! `/claude/v1/`), always answered by Claude Code mode, as a translation
//! onto its chat turn: the request becomes a chat request (`request`,
//! `content`), the answer a `message` object or Anthropic's event stream
//! (`answer`). Sessions work as for chat completions: the
//! `X-Claude-Session-ID` header, a resent history, or the ids of the tool
//! calls that `tool_result` blocks answer, or the `msg_` id of an earlier
//! answer in `thread` (`threads`). Errors on these paths take Anthropic's
//! shape (see `pipeline`) and name this API's fields, and the key may come
//! in `x-api-key`.

mod answer;
mod content;
pub(crate) mod request;
mod threads;

use std::sync::Arc;

use serde_json::Value;

use crate::chains::session_of_earlier;
use crate::claude::request::validate::validate;
use crate::claude::{chat_message, Answer, ClaudeBackend, SessionId, TurnEvent, TurnRequest};
use crate::dialect::{with_ignored, Dialect, DialectEvents};
use crate::error::ApiError;
use crate::http::{Incoming, Reply};
use crate::ratelimit::RateLimiter;
use answer::{MessageEvents, MessageMeta};
use request::{translate, RENAMES};
pub use threads::MessageThreads;
use threads::{Answered, Continuation, Created};

/// `POST /v1/messages`, answered by `claude`; a session's turns are
/// limited by `limiter`, and `threads` keeps the answers for `thread`.
pub fn create(
    claude: &ClaudeBackend,
    limiter: &RateLimiter,
    threads: &Arc<MessageThreads>,
    rq: &Incoming,
) -> Result<Reply, ApiError> {
    let json = crate::request_json::json_object(&rq.body)?;
    let mut translated = translate(&json)?;
    let key = rq.api_key.as_ref();
    let owner = claude.owner_fingerprint(key)?;
    let mut session_id = SessionId::of_request(rq)?;
    let added = translated.own_messages();
    if let Some(previous) = &translated.previous_message_id {
        let lives = |session: &str| claude.session_lives(session, key);
        let shown = || previous.chars().take(100).collect::<String>();
        let (session, history, created) =
            match threads.continuation(previous, owner.as_deref(), lives) {
                Some(Continuation::Continue {
                    session,
                    history,
                    created,
                }) => (session, history, created),
                Some(Continuation::AlreadyContinued) => {
                    return Err(ApiError::ThreadAlreadyContinued { id: shown() })
                }
                None => return Err(ApiError::PreviousMessageNotFound { id: shown() }),
            };
        translated.continue_from(history, &created);
        let header = session_id.as_ref();
        session_id = Some(session_of_earlier(
            header,
            &session,
            "thread.previous_message_id",
        )?);
    }
    let meta = MessageMeta {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let mut chat = validate(&translated.chat).map_err(|e| translated.words.reword(e))?;
    chat.thinking = translated.thinking;
    let request = TurnRequest {
        incoming: rq,
        chat,
        session_id,
        dialect: Some(Arc::new(MessagesTurn {
            meta,
            threads: threads.clone(),
            owner,
            previous: translated.previous_message_id.clone(),
            added,
            created: Arc::new(translated.created()),
        })),
    };
    let reply = claude
        .take_turn(limiter, &request)
        .map_err(|e| translated.words.reword(e))?;
    Ok(with_ignored(reply, &translated.ignored, RENAMES))
}

/// One request's answer, and what its thread keeps of it.
struct MessagesTurn {
    meta: MessageMeta,
    threads: Arc<MessageThreads>,
    owner: Option<String>,
    /// The answer this request's thread continued.
    previous: Option<String>,
    /// The chat messages this request added.
    added: Vec<Value>,
    created: Arc<Created>,
}

impl MessagesTurn {
    /// Keeps the answer for a later `thread` to name.
    fn note(&self, session: &SessionId, answer: &Answer) {
        let answered = Answered {
            owner: self.owner.clone(),
            session: session.to_string(),
            previous: self.previous.clone(),
            added: self.added.clone(),
            answer: chat_message(answer, false),
            extra: self.created.clone(),
        };
        self.threads.note(&self.meta.id, answered);
    }
}

impl Dialect for MessagesTurn {
    fn whole(&self, answer: &Answer, session: &SessionId) -> Value {
        self.note(session, answer);
        self.meta.whole(answer)
    }

    fn events(self: Arc<Self>, session: &SessionId) -> Box<dyn DialectEvents> {
        Box::new(MessageStream {
            events: MessageEvents::new(self.meta.clone()),
            turn: self,
            session: session.clone(),
        })
    }
}

struct MessageStream {
    events: MessageEvents,
    turn: Arc<MessagesTurn>,
    session: SessionId,
}

impl DialectEvents for MessageStream {
    fn event(&mut self, event: &TurnEvent) -> Vec<Vec<u8>> {
        self.events.event(event)
    }

    fn answered(&mut self, answer: &Answer) -> Vec<Vec<u8>> {
        self.turn.note(&self.session, answer);
        self.events.complete()
    }

    fn failed(&mut self, error: &ApiError) -> Vec<Vec<u8>> {
        self.events.fail(error.anthropic_kind(), &error.message())
    }

    /// Anthropic's own keep-alive, as its API sends it.
    fn keep_alive(&mut self) -> Option<Vec<u8>> {
        Some(b"event: ping\ndata: {\"type\": \"ping\"}".to_vec())
    }
}
