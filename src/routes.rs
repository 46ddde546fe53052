//! The route table and the handlers: chat completions (to the backend its
//! headers choose), the Responses API (Claude Code mode here, see
//! `responses`; relayed otherwise), the model list and the Claude models,
//! the health report, the session endpoints (`session_routes`, served
//! here in both modes); every other `/v1/` route is relayed
//! (`passthrough::forward`, run by the pipeline, which hands it the unread
//! body). Under `/claude/v1/` the same API is Claude Code mode without any
//! header.

use serde_json::{json, Value};

use crate::app::App;
use crate::claude::request::models;
use crate::claude::request::validate::validate;
use crate::claude::TurnRequest;
use crate::error::ApiError;
use crate::http::{Incoming, Reply};
use crate::mode::{self, Mode};
use crate::request_json::json_object;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    /// `/claude/v1/chat/completions`: Claude Code mode, no header needed.
    ClaudeChatCompletions,
    Models,
    /// One Claude model (`/v1/models/{id}`, `/claude/v1/models/{id}`).
    Model,
    Health,
    /// `GET /metrics`: Prometheus' text format.
    Metrics,
    /// `GET /v1/usage` (and under `/claude/v1/`): the subscription
    /// allowance of the CLI's login, never relayed.
    Usage,
    /// `POST /v1/responses`: Claude Code mode by header, else relayed.
    Responses,
    /// `POST /claude/v1/responses`.
    ClaudeResponses,
    /// `GET` or `DELETE /v1/responses/{id}`: Claude Code mode by header,
    /// else relayed.
    StoredResponse,
    /// `GET` or `DELETE /claude/v1/responses/{id}`.
    ClaudeStoredResponse,
    /// `POST /v1/messages` (and under `/claude/v1/`): always Claude Code.
    Messages,
    /// `POST /v1/messages/count_tokens`: refused in Anthropic's shape.
    CountTokens,
    /// `GET /v1/sessions` (and under `/claude/v1/`): this server's own,
    /// never relayed.
    Sessions,
    /// `GET` or `DELETE /v1/sessions/{id}` (and under `/claude/v1/`).
    Session,
    /// Any other method and path under `/v1/`, for the upstream.
    Relay,
}

impl Route {
    /// Probes and model discovery stay open (load balancers, SDKs).
    pub fn needs_auth(self) -> bool {
        !matches!(self, Route::Models | Route::Model | Route::Health)
    }

    /// The route's name in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::ChatCompletions | Route::ClaudeChatCompletions => "chat_completions",
            Route::Models | Route::Model => "models",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Usage => "usage",
            Route::Responses | Route::ClaudeResponses => "responses",
            Route::StoredResponse | Route::ClaudeStoredResponse => "stored_response",
            Route::Messages => "messages",
            Route::CountTokens => "count_tokens",
            Route::Sessions | Route::Session => "sessions",
            Route::Relay => "relay",
        }
    }

    /// The Anthropic Messages API's routes.
    pub fn speaks_anthropic(self) -> bool {
        matches!(self, Route::Messages | Route::CountTokens)
    }

    /// Routes whose request goes to the upstream unread in passthrough
    /// mode.
    pub fn relays(self, mode: Option<Mode>) -> bool {
        match self {
            Route::Relay => true,
            Route::Responses | Route::StoredResponse => mode == Some(Mode::Passthrough),
            _ => false,
        }
    }
}

pub fn resolve(method: &str, path: &str) -> Result<Route, ApiError> {
    let not_found = || ApiError::NotFound {
        path: path.chars().take(200).collect(),
    };
    let api_path = path
        .strip_prefix("/claude/v1/")
        .or_else(|| path.strip_prefix("/v1/"));
    if let Some(found) = api_path.and_then(|rest| session_route(method, rest, not_found)) {
        return found;
    }
    let (route, allow) = if let Some(rest) = path.strip_prefix("/claude/v1/") {
        match rest {
            "chat/completions" => (Route::ClaudeChatCompletions, "POST"),
            "responses" => (Route::ClaudeResponses, "POST"),
            "messages" => (Route::Messages, "POST"),
            "messages/count_tokens" => (Route::CountTokens, "POST"),
            "models" => (Route::Models, "GET"),
            "usage" => (Route::Usage, "GET"),
            _ => match rest.strip_prefix("models/") {
                Some(id) if is_claude_model(id) => (Route::Model, "GET"),
                Some(id) => {
                    return Err(ApiError::UnknownModel {
                        id: id.chars().take(100).collect(),
                    })
                }
                None if stored_response_id(rest).is_some() => {
                    return match method {
                        "GET" | "HEAD" | "DELETE" => Ok(Route::ClaudeStoredResponse),
                        _ => Err(ApiError::MethodNotAllowed {
                            allow: "GET, DELETE",
                        }),
                    };
                }
                None => return Err(not_found()),
            },
        }
    } else {
        match path {
            "/v1/chat/completions" => (Route::ChatCompletions, "POST"),
            "/v1/models" => (Route::Models, "GET"),
            "/health" => (Route::Health, "GET"),
            "/metrics" => (Route::Metrics, "GET"),
            "/v1/usage" => (Route::Usage, "GET"),
            "/v1/responses" if method == "POST" => (Route::Responses, "POST"),
            "/v1/messages" => (Route::Messages, "POST"),
            "/v1/messages/count_tokens" => (Route::CountTokens, "POST"),
            _ => {
                let rest = path.strip_prefix("/v1/").ok_or_else(not_found)?;
                // The Messages API's other routes (batches, …) are not
                // served, and never the upstream's business.
                if rest.starts_with("messages/") {
                    return Err(not_found());
                }
                let read_or_delete = matches!(method, "GET" | "DELETE");
                if read_or_delete && stored_response_id(rest).is_some() {
                    return Ok(Route::StoredResponse);
                }
                let claude_model = rest.strip_prefix("models/").is_some_and(is_claude_model);
                if claude_model && (method == "GET" || method == "HEAD") {
                    return Ok(Route::Model);
                }
                crate::passthrough::check_path(path)?;
                return Ok(Route::Relay);
            }
        }
    };
    if method == allow || (method == "HEAD" && allow == "GET") {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed { allow })
    }
}

/// `sessions` and `sessions/{id}` (after either API prefix): the session
/// endpoints, served here in both modes; a deeper path is not found.
fn session_route(
    method: &str,
    rest: &str,
    not_found: impl Fn() -> ApiError,
) -> Option<Result<Route, ApiError>> {
    let (route, allow) = if rest == "sessions" {
        (Route::Sessions, "GET")
    } else {
        let id = rest.strip_prefix("sessions/")?;
        if id.is_empty() || id.contains('/') {
            return Some(Err(not_found()));
        }
        (Route::Session, "GET, DELETE")
    };
    let allowed =
        matches!(method, "GET" | "HEAD") || (method == "DELETE" && route == Route::Session);
    Some(if allowed {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed { allow })
    })
}

/// True for the paths of the Anthropic Messages API, whose errors take
/// Anthropic's shape even before the route is resolved.
pub fn speaks_anthropic(path: &str) -> bool {
    let rest = path.strip_prefix("/claude").unwrap_or(path);
    rest == "/v1/messages" || rest.starts_with("/v1/messages/")
}

/// `responses/{id}` → the id (one segment).
pub fn stored_response_id(rest: &str) -> Option<&str> {
    rest.strip_prefix("responses/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// One of the Claude models this server lists (Claude Code mode answers
/// them; the upstream does not know them).
fn is_claude_model(id: &str) -> bool {
    models::LISTED.contains(&id)
}

/// The backend a request of `route` goes to, from its headers; `None` for
/// routes that have no backend.
pub fn mode(route: Route, rq: &Incoming) -> Result<Option<Mode>, ApiError> {
    match route {
        Route::ChatCompletions | Route::Responses | Route::StoredResponse => {
            mode::select(rq.header("X-Claude-Code"), rq.header("X-Claude-Session-ID")).map(Some)
        }
        Route::ClaudeChatCompletions
        | Route::ClaudeResponses
        | Route::ClaudeStoredResponse
        | Route::Messages
        | Route::CountTokens
        | Route::Sessions
        | Route::Session => Ok(Some(Mode::ClaudeCode)),
        Route::Relay => Ok(Some(Mode::Passthrough)),
        Route::Models | Route::Model | Route::Health | Route::Metrics | Route::Usage => Ok(None),
    }
}

pub fn handle(
    app: &App,
    route: Route,
    mode: Option<Mode>,
    rq: &Incoming,
) -> Result<Reply, ApiError> {
    match route {
        // `mode` always names a backend for this route.
        Route::ChatCompletions => chat(app, mode.unwrap_or(Mode::Passthrough), rq),
        Route::ClaudeChatCompletions => chat(app, Mode::ClaudeCode, rq),
        Route::Models => Ok(Reply::json(200, &models())),
        Route::Model => {
            let id = rq.path.rsplit('/').next().unwrap_or("");
            Ok(Reply::json(200, &model(id)))
        }
        Route::Health => Ok(health(app)),
        Route::Metrics => Ok(Reply::bytes(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            app.scrape().into_bytes(),
        )),
        Route::Usage => Ok(Reply::json(200, &app.allowance.usage_json())),
        Route::Responses | Route::ClaudeResponses => {
            crate::responses::create(&app.claude, &app.limiter, &app.responses, rq)
        }
        Route::Messages => crate::anthropic::create(&app.claude, &app.limiter, &app.threads, rq),
        Route::CountTokens => Err(ApiError::TokenCountingUnsupported),
        Route::Sessions => crate::session_routes::list(app, rq),
        Route::Session => {
            let id = rq.path.rsplit('/').next().unwrap_or("");
            if rq.method == "DELETE" {
                crate::session_routes::delete(app, rq, id)
            } else {
                crate::session_routes::retrieve(app, rq, id)
            }
        }
        Route::StoredResponse | Route::ClaudeStoredResponse => {
            let id = rq.path.rsplit('/').next().unwrap_or("");
            if rq.method == "DELETE" {
                crate::responses::delete(&app.claude, &app.responses, rq, id)
            } else {
                crate::responses::retrieve(&app.claude, &app.responses, rq, id)
            }
        }
        // The pipeline relays these with their unread body.
        Route::Relay => Err(ApiError::InternalError {
            message: "Internal server error.".into(),
        }),
    }
}

fn chat(app: &App, mode: Mode, rq: &Incoming) -> Result<Reply, ApiError> {
    let json = json_object(&rq.body)?;
    match mode {
        Mode::ClaudeCode => {
            let session_id = crate::claude::SessionId::of_request(rq)?;
            let request = TurnRequest {
                incoming: rq,
                chat: validate(&json)?,
                session_id,
                dialect: None,
            };
            app.claude.take_turn(&app.limiter, &request)
        }
        Mode::Passthrough if json.get("stream").and_then(Value::as_bool) == Some(true) => {
            app.passthrough.stream(rq)
        }
        Mode::Passthrough => app.passthrough.complete(rq),
    }
}

/// True when a body ends with tool (or legacy function) results: a chat
/// body's last message, a Responses body's last input item, or the
/// `tool_result` blocks of a Messages body's last message. It carries on a
/// turn admitted before.
pub fn carries_tool_results(route: Route, body: &[u8]) -> bool {
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    match route {
        Route::Responses | Route::ClaudeResponses => {
            let last = json
                .get("input")
                .and_then(Value::as_array)
                .and_then(|i| i.last());
            let kind = last.and_then(|i| i.get("type")).and_then(Value::as_str);
            kind == Some("function_call_output")
        }
        Route::Messages => {
            let last = json
                .get("messages")
                .and_then(Value::as_array)
                .and_then(|m| m.last());
            let blocks = last
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array);
            blocks.is_some_and(|b| b.iter().any(|b| b["type"] == "tool_result"))
        }
        _ => ends_with_tool_results(&json),
    }
}

/// True when a chat body ends with tool (or legacy function) results.
pub(crate) fn ends_with_tool_results(json: &serde_json::Map<String, Value>) -> bool {
    let role = json
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(|r| r.as_str());
    matches!(role, Some("tool" | "function"))
}

fn models() -> Value {
    let data: Vec<Value> = models::LISTED.iter().map(|id| model(id)).collect();
    json!({"object": "list", "data": data})
}

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "anthropic"})
}

fn health(app: &App) -> Reply {
    let draining = app.draining.load(std::sync::atomic::Ordering::SeqCst);
    let claude = &app.claude;
    let passthrough = &app.passthrough;
    let serving = claude.health() == "ok" || passthrough.health() == "ok";
    let status = match (draining, serving) {
        (true, _) => "draining",
        (false, true) => "ready",
        (false, false) => "unavailable",
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "claude_cli": claude.health(),
            "anthropic_key": if app.config.anthropic_key_set { "ok" } else { "missing" },
            "openai_passthrough": passthrough.health(),
            "capacity": app.capacity(),
            "warm": app.claude.warm_stats(),
            "waiting_for_tools": app.claude.waiting_for_tools(),
            "allowance": app.allowance.health_json(),
            "tool_waits_given_up": app.metrics.given_up()
                .into_iter()
                .map(|(cause, n)| (cause.to_string(), Value::from(n)))
                .collect::<serde_json::Map<String, Value>>(),
        }
    });
    Reply::json(if serving && !draining { 200 } else { 503 }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        assert_eq!(
            resolve("POST", "/v1/chat/completions").unwrap(),
            Route::ChatCompletions
        );
        assert_eq!(resolve("GET", "/health").unwrap(), Route::Health);
        assert_eq!(resolve("GET", "/nope").unwrap_err().status(), 404);
        let e = resolve("GET", "/v1/chat/completions").unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.extra_headers()[0].1, "POST");
    }

    #[test]
    fn session_routes_are_served_here_under_both_prefixes() {
        let id = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
        for prefix in ["/v1", "/claude/v1"] {
            let list = format!("{prefix}/sessions");
            let one = format!("{prefix}/sessions/{id}");
            assert_eq!(resolve("GET", &list).unwrap(), Route::Sessions);
            assert_eq!(resolve("GET", &one).unwrap(), Route::Session);
            assert_eq!(resolve("DELETE", &one).unwrap(), Route::Session);
            assert_eq!(resolve("DELETE", &list).unwrap_err().status(), 405);
            assert_eq!(resolve("POST", &one).unwrap_err().status(), 405);
            let deeper = format!("{prefix}/sessions/{id}/x");
            assert_eq!(resolve("GET", &deeper).unwrap_err().status(), 404);
            for route in [Route::Sessions, Route::Session] {
                assert!(route.needs_auth());
                assert!(!route.relays(Some(Mode::Passthrough)));
            }
        }
    }
}
