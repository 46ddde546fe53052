//! The OpenAI Responses API in Claude Code mode (`POST /v1/responses` with
//! the Claude header, or under `/claude/v1/`), as a translation onto the
//! chat turn Claude Code mode already runs: the request becomes a chat
//! request (`request`), the answer a `response` object or a stream of typed
//! events (`object`, `events`). What is particular to this API lives here:
//! `previous_response_id`, which continues the session that gave that
//! response (or, for an older response, forks a new session from the
//! history up to it), and the responses kept for it and for `GET` (`store`).
//! Without the header the same paths are relayed to the upstream.

mod events;
mod input;
mod object;
pub(crate) mod request;
mod saved;
mod store;
mod tools;

use std::sync::Arc;

use serde_json::Value;

use events::ResponseEvents;
pub use store::ResponseStore;

use crate::chains::session_of_earlier;
use crate::claude::request::validate::validate;
use crate::claude::{chat_message, Answer, ClaudeBackend, SessionId, TurnEvent, TurnRequest};
use crate::dialect::{with_ignored, Dialect, DialectEvents};
use crate::error::ApiError;
use crate::http::{Incoming, Reply};
use crate::ratelimit::RateLimiter;
use object::ResponseMeta;
use request::{translate, Translated, RENAMES};
use store::{Previous, Stored};

/// The field that names the response a request continues.
const PREVIOUS: &str = "previous_response_id";

/// What Claude Code mode needs to answer a chat turn as a response: its
/// labels, and where to keep it (nowhere with `store: false`).
pub struct ResponsesTurn {
    meta: ResponseMeta,
    keep: Option<Keep>,
}

struct Keep {
    store: Arc<ResponseStore>,
    owner: Option<String>,
    /// The chat messages this request adds to its conversation.
    input: Vec<Value>,
}

impl ResponsesTurn {
    fn new(translated: &Translated, model: String, keep: Option<Keep>) -> ResponsesTurn {
        let created_at = crate::clock::unix_secs();
        ResponsesTurn {
            meta: ResponseMeta {
                id: format!("resp_{}", uuid::Uuid::new_v4().simple()),
                created_at,
                model,
                previous_response_id: translated.previous_response_id.clone(),
                store: translated.store,
                reasoning_summary: translated.reasoning_summary,
                echo: translated.echo.clone(),
                tools: Arc::new(translated.tools.clone()),
            },
            keep,
        }
    }

    /// Keeps the answered `response` (unless `store: false`), before the
    /// client can name it.
    fn keep(&self, response: &Value, answer: &Answer, session: &SessionId) {
        let Some(keep) = &self.keep else {
            return;
        };
        let stored = Stored {
            owner: keep.owner.clone(),
            session: session.to_string(),
            previous: self.meta.previous_response_id.clone(),
            added: keep.input.clone(),
            answer: chat_message(answer, false),
            extra: response.clone(),
        };
        keep.store.keep(&self.meta.id, stored);
    }
}

impl Dialect for ResponsesTurn {
    /// The whole response, kept.
    fn whole(&self, answer: &Answer, session: &SessionId) -> Value {
        let response = object::from_answer(&self.meta, answer);
        self.keep(&response, answer, session);
        response
    }

    fn events(self: Arc<Self>, session: &SessionId) -> Box<dyn DialectEvents> {
        Box::new(ResponseStream {
            events: ResponseEvents::new(self.meta.clone()),
            turn: self,
            session: session.clone(),
        })
    }
}

/// A streamed response, kept once it is whole.
struct ResponseStream {
    events: ResponseEvents,
    turn: Arc<ResponsesTurn>,
    session: SessionId,
}

impl DialectEvents for ResponseStream {
    fn event(&mut self, event: &TurnEvent) -> Vec<Vec<u8>> {
        self.events.event(event)
    }

    fn answered(&mut self, answer: &Answer) -> Vec<Vec<u8>> {
        let (ending, response) = self.events.complete();
        self.turn.keep(&response, answer, &self.session);
        ending
    }

    fn failed(&mut self, error: &ApiError) -> Vec<Vec<u8>> {
        self.events.fail(&error.message())
    }
}

/// `POST /v1/responses` in Claude Code mode, answered by `claude`; a
/// session's turns are limited by `limiter`, and `store` keeps the answers.
pub fn create(
    claude: &ClaudeBackend,
    limiter: &RateLimiter,
    store: &Arc<ResponseStore>,
    rq: &Incoming,
) -> Result<Reply, ApiError> {
    let mut json = crate::request_json::json_object(&rq.body)?;
    let key = rq.api_key.as_ref();
    let owner = claude.owner_fingerprint(key)?;
    let lives = |session: &str| claude.session_lives(session, key);
    resolve_references(&mut json, |id| store.item(id, owner.as_deref(), lives));
    let translated = translate(&json)?;
    let mut session_id = SessionId::of_request(rq)?;
    let mut history = Vec::new();
    if let Some(previous) = &translated.previous_response_id {
        let found = store.previous(previous, owner.as_deref(), lives);
        match found {
            None => {
                return Err(ApiError::PreviousResponseNotFound {
                    id: previous.chars().take(100).collect(),
                })
            }
            Some(Previous::Latest { session, answer }) => {
                let header = session_id.as_ref();
                session_id = Some(session_of_earlier(header, &session, PREVIOUS)?);
                // The session has the rest; the chat request needs the
                // calls its function results answer.
                history.push(answer);
            }
            Some(Previous::Older { history: earlier }) => {
                if session_id.is_some() {
                    // An older response forks a new session: no header can
                    // name it yet.
                    return Err(ApiError::InvalidValue {
                        param: PREVIOUS.into(),
                        message: "'previous_response_id' names an earlier response of its \
                                  session, which starts a new session; send it without the \
                                  X-Claude-Session-ID header."
                            .into(),
                    });
                }
                history = earlier;
            }
        }
    }
    let chat = translated.chat_body(&history);
    let words = translated.words(&history);
    let keep = translated.store.then(|| Keep {
        store: store.clone(),
        owner,
        input: translated.input.clone(),
    });
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let turn = ResponsesTurn::new(&translated, model.to_string(), keep);
    let mut chat = validate(&chat).map_err(|e| words.reword(e))?;
    chat.thinking = translated.thinking;
    let request = TurnRequest {
        incoming: rq,
        chat,
        session_id,
        dialect: Some(Arc::new(turn)),
    };
    let reply = claude
        .take_turn(limiter, &request)
        .map_err(|e| words.reword(e))?;
    Ok(with_ignored(reply, &translated.ignored, RENAMES))
}

/// Replaces each `item_reference` in `input` by the item it names, when
/// `find` has it (an item of a response this server kept for this key: the
/// AI SDK sends its earlier output back that way). One it cannot find is
/// left for the translation to skip and name.
fn resolve_references(
    json: &mut serde_json::Map<String, Value>,
    find: impl Fn(&str) -> Option<Value>,
) {
    let Some(items) = json.get_mut("input").and_then(Value::as_array_mut) else {
        return;
    };
    for item in items {
        if item.get("type").and_then(Value::as_str) != Some("item_reference") {
            continue;
        }
        if let Some(found) = item.get("id").and_then(Value::as_str).and_then(&find) {
            *item = found;
        }
    }
}

/// `GET /v1/responses/{id}` in Claude Code mode.
pub fn retrieve(
    claude: &ClaudeBackend,
    store: &ResponseStore,
    rq: &Incoming,
    id: &str,
) -> Result<Reply, ApiError> {
    let key = rq.api_key.as_ref();
    let owner = claude.owner_fingerprint(key)?;
    let lives = |session: &str| claude.session_lives(session, key);
    match store.get(id, owner.as_deref(), lives) {
        Some(response) => Ok(Reply::json(200, &response)),
        None => Err(ApiError::ResponseNotFound {
            id: id.chars().take(100).collect(),
        }),
    }
}

/// `DELETE /v1/responses/{id}` in Claude Code mode: the response is
/// forgotten (its session goes on).
pub fn delete(
    claude: &ClaudeBackend,
    store: &ResponseStore,
    rq: &Incoming,
    id: &str,
) -> Result<Reply, ApiError> {
    let key = rq.api_key.as_ref();
    let owner = claude.owner_fingerprint(key)?;
    let lives = |session: &str| claude.session_lives(session, key);
    if store.delete(id, owner.as_deref(), lives) {
        let body = serde_json::json!({"id": id, "object": "response", "deleted": true});
        Ok(Reply::json(200, &body))
    } else {
        Err(ApiError::ResponseNotFound {
            id: id.chars().take(100).collect(),
        })
    }
}
