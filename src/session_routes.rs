//! The session endpoints, this server's own (never relayed, in either
//! mode): `GET /v1/sessions` lists the caller's Claude Code sessions,
//! `GET /v1/sessions/{id}` shows one, `DELETE /v1/sessions/{id}` removes
//! one with its warm CLI and its working directory. The same under
//! `/claude/v1/`. Everything is scoped to the caller's key: another key's
//! session is a 404 `session_not_found`, exactly like an unknown one.

use serde_json::{json, Value};

use crate::app::App;
use crate::claude::{SessionId, SessionStatus};
use crate::error::ApiError;
use crate::http::{Incoming, Reply};

/// `GET /v1/sessions`.
pub fn list(app: &App, rq: &Incoming) -> Result<Reply, ApiError> {
    let sessions = app.claude.list_sessions(rq.api_key.as_ref())?;
    let first = app.config.first_account();
    let data: Vec<Value> = sessions.iter().map(|s| render(s, first)).collect();
    Ok(Reply::json(200, &json!({"object": "list", "data": data})))
}

/// `GET /v1/sessions/{id}`.
pub fn retrieve(app: &App, rq: &Incoming, id: &str) -> Result<Reply, ApiError> {
    let id = SessionId::parse(id)?;
    let session = app.claude.session(&id, rq.api_key.as_ref())?;
    Ok(Reply::json(
        200,
        &render(&session, app.config.first_account()),
    ))
}

/// `DELETE /v1/sessions/{id}`: 409 `session_busy` while a turn is in
/// progress or waits for tool results.
pub fn delete(app: &App, rq: &Incoming, id: &str) -> Result<Reply, ApiError> {
    let id = SessionId::parse(id)?;
    app.claude.delete_session(&id, rq.api_key.as_ref())?;
    let body = json!({"id": id.as_str(), "object": "session", "deleted": true});
    Ok(Reply::json(200, &body))
}

fn render(session: &SessionStatus, first_account: &str) -> Value {
    let info = &session.info;
    json!({
        "id": info.id.as_str(),
        "object": "session",
        "created": info.created_ms / 1000,
        "last_used": info.last_used_ms / 1000,
        "model": info.model,
        "turns": info.turns,
        "usage": {
            "input_tokens": info.tokens.input,
            "cache_read_input_tokens": info.tokens.cache_read,
            "cache_creation_input_tokens": info.tokens.cache_creation,
            "output_tokens": info.tokens.output,
        },
        "context": {
            "tokens": info.context.tokens,
            "compactions": info.context.compactions,
        },
        "account": info.account.clone().unwrap_or_else(|| first_account.to_string()),
        "busy": info.busy,
        "warm": session.warm,
    })
}
