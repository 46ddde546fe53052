//! Checks a chat request body for Claude Code mode and reduces it to what
//! the CLI can use: the model, the system text, the conversation turns and
//! the streaming flags. Everything the CLI cannot honour is either listed
//! as ignored (harmless sampling knobs) or refused with a 400 that says how
//! to get it (passthrough mode).

use serde_json::{Map, Value};

use super::models::resolve_model;
use crate::error::ApiError;

const MAX_MODEL_CHARS: usize = 256;
const MAX_MESSAGES: usize = 100;
const MAX_CONTENT_CHARS: usize = 500_000;

/// Accepted, not honoured; reported in `X-Claude-Ignored-Params` in this order.
const IGNORED: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "user",
    "n",
];

/// Refused in Claude Code mode (`n` > 1 is refused separately).
const REFUSED: &[(&str, &str)] = &[
    ("tools", "tool use"),
    ("tool_choice", "tool use"),
    ("functions", "function calling"),
    ("function_call", "function calling"),
    ("response_format", "structured output / JSON mode"),
    ("logprobs", "log probabilities"),
    ("top_logprobs", "log probabilities"),
    ("logit_bias", "logit bias"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

/// A request Claude Code mode can serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidChat {
    /// As the client sent it; echoed in every response.
    pub requested_model: String,
    /// The `--model` value.
    pub cli_model: &'static str,
    /// All system and developer messages, joined by a blank line.
    pub system: Option<String>,
    /// Non-system messages in order; the last is always a user turn.
    pub turns: Vec<Turn>,
    pub stream: bool,
    pub include_usage: bool,
    pub ignored_params: Vec<&'static str>,
}

impl ValidChat {
    /// The final user message (what a resumed session is sent).
    pub fn last_user_message(&self) -> &str {
        self.turns.last().map(|t| t.content.as_str()).unwrap_or("")
    }
}

pub fn validate(json: &Map<String, Value>) -> Result<ValidChat, ApiError> {
    let model =
        present(json, "model").ok_or(ApiError::MissingRequiredParameter { param: "model" })?;
    let messages = present(json, "messages")
        .ok_or(ApiError::MissingRequiredParameter { param: "messages" })?;
    let requested_model = match model {
        Value::String(s) if s.chars().count() > MAX_MODEL_CHARS => {
            return Err(invalid(
                "model",
                format!("'model' is too long: at most {MAX_MODEL_CHARS} characters."),
            ))
        }
        Value::String(s) => s.clone(),
        _ => return Err(invalid("model", "'model' must be a string.".into())),
    };
    let cli_model = resolve_model(&requested_model)?;

    check_refused(json)?;
    let ignored_params = ignored_params(json)?;
    let stream = match present(json, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean.".into())),
    };
    let include_usage = include_usage(json)?;
    let (system, turns) = read_messages(messages)?;

    Ok(ValidChat {
        requested_model,
        cli_model,
        system,
        turns,
        stream,
        include_usage,
        ignored_params,
    })
}

/// A field counts as sent only when it is there and not `null`.
fn present<'a>(json: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    json.get(key).filter(|v| !v.is_null())
}

fn invalid(param: &str, message: String) -> ApiError {
    ApiError::InvalidValue {
        param: param.to_string(),
        message,
    }
}

fn unsupported(param: &str, message: String) -> ApiError {
    ApiError::UnsupportedParameter {
        param: param.to_string(),
        message,
    }
}

const USE_PASSTHROUGH: &str = "Remove it, or send the request without the X-Claude-Code and \
     X-Claude-Session-ID headers to use OpenAI passthrough mode (or call the Anthropic API \
     directly), which supports it.";

fn check_refused(json: &Map<String, Value>) -> Result<(), ApiError> {
    for (param, feature) in REFUSED {
        let Some(value) = present(json, param) else {
            continue;
        };
        // `logprobs: false` is what several SDKs send by default.
        if *param == "logprobs" && value == &Value::Bool(false) {
            continue;
        }
        return Err(unsupported(
            param,
            format!(
                "'{param}' is not supported in Claude Code mode ({feature}). {USE_PASSTHROUGH}"
            ),
        ));
    }
    if let Some(n) = present(json, "n") {
        match n.as_u64() {
            Some(1) => {}
            Some(k) if k > 1 => {
                return Err(unsupported(
                    "n",
                    format!(
                        "'n' = {k} is not supported in Claude Code mode: it always returns \
                         exactly one choice. Send n = 1 or leave it out. {USE_PASSTHROUGH}"
                    ),
                ))
            }
            _ => return Err(invalid("n", "'n' must be a positive integer.".into())),
        }
    }
    Ok(())
}

/// Type-checks the sampling knobs the CLI ignores, so a client bug still
/// shows as a 400 like OpenAI would give, and names the ones that were sent.
fn ignored_params(json: &Map<String, Value>) -> Result<Vec<&'static str>, ApiError> {
    let mut sent = Vec::new();
    for &param in IGNORED {
        let Some(value) = present(json, param) else {
            continue;
        };
        let number_in = |lo: f64, hi: f64| value.as_f64().is_some_and(|x| (lo..=hi).contains(&x));
        let problem = match param {
            "temperature" if !number_in(0.0, 2.0) => Some("a number between 0 and 2"),
            "top_p" if !number_in(0.0, 1.0) => Some("a number between 0 and 1"),
            "frequency_penalty" | "presence_penalty" if !number_in(-2.0, 2.0) => {
                Some("a number between -2 and 2")
            }
            "max_tokens" | "max_completion_tokens" if value.as_u64().unwrap_or(0) == 0 => {
                Some("a positive integer")
            }
            "seed" if !value.is_i64() && !value.is_u64() => Some("an integer"),
            "user" if !value.is_string() => Some("a string"),
            "stop" if !stop_is_valid(value) => Some("a string or an array of up to 4 strings"),
            // `n` was checked with the refused parameters.
            _ => None,
        };
        if let Some(expected) = problem {
            return Err(invalid(param, format!("'{param}' must be {expected}.")));
        }
        sent.push(param);
    }
    Ok(sent)
}

fn stop_is_valid(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.len() <= 4 && items.iter().all(Value::is_string),
        _ => false,
    }
}

fn include_usage(json: &Map<String, Value>) -> Result<bool, ApiError> {
    let Some(options) = present(json, "stream_options") else {
        return Ok(false);
    };
    let Some(options) = options.as_object() else {
        return Err(invalid(
            "stream_options",
            "'stream_options' must be an object.".into(),
        ));
    };
    match present(options, "include_usage") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(
            "stream_options.include_usage",
            "'stream_options.include_usage' must be a boolean.".into(),
        )),
    }
}

enum Kind {
    System,
    Turn(Role),
}

fn read_messages(messages: &Value) -> Result<(Option<String>, Vec<Turn>), ApiError> {
    let Some(items) = messages.as_array() else {
        return Err(invalid("messages", "'messages' must be an array.".into()));
    };
    if items.is_empty() {
        return Err(invalid(
            "messages",
            "'messages' must contain at least one message.".into(),
        ));
    }
    if items.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!(
                "'messages' has {} items; at most {MAX_MESSAGES} are allowed.",
                items.len()
            ),
        ));
    }
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(message) = item.as_object() else {
            return Err(invalid(
                &format!("messages[{i}]"),
                format!("messages[{i}] must be an object with 'role' and 'content'."),
            ));
        };
        let kind = read_role(message, i)?;
        if present(message, "tool_calls").is_some() || present(message, "function_call").is_some() {
            return Err(unsupported(
                &format!("messages[{i}].tool_calls"),
                format!(
                    "messages[{i}] carries tool calls, which Claude Code mode does not support. \
                     {USE_PASSTHROUGH}"
                ),
            ));
        }
        let content = read_content(message, i)?;
        match kind {
            Kind::System => {
                if !content.trim().is_empty() {
                    system.push(content);
                }
            }
            Kind::Turn(role) => {
                if role == Role::User && content.trim().is_empty() {
                    return Err(invalid(
                        &format!("messages[{i}].content"),
                        format!("messages[{i}] is a user message with empty content."),
                    ));
                }
                turns.push(Turn { role, content });
            }
        }
    }
    if turns.last().map(|t| t.role) != Some(Role::User) {
        return Err(invalid(
            "messages",
            "The last non-system message must be a user message: Claude Code mode answers \
             the latest user turn."
                .into(),
        ));
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, turns))
}

fn read_role(message: &Map<String, Value>, i: usize) -> Result<Kind, ApiError> {
    let param = format!("messages[{i}].role");
    let role = match present(message, "role") {
        None => return Err(invalid(&param, format!("messages[{i}] has no 'role'."))),
        Some(Value::String(r)) => r.as_str(),
        Some(_) => return Err(invalid(&param, format!("{param} must be a string."))),
    };
    match role {
        "system" | "developer" => Ok(Kind::System),
        "user" => Ok(Kind::Turn(Role::User)),
        "assistant" => Ok(Kind::Turn(Role::Assistant)),
        "tool" | "function" => Err(unsupported(
            &param,
            format!(
                "messages[{i}] has role '{role}': tool results are not supported in Claude \
                 Code mode. {USE_PASSTHROUGH}"
            ),
        )),
        other => Err(invalid(
            &param,
            format!(
                "messages[{i}] has role '{}'; expected one of system, developer, user, \
                 assistant.",
                shorten(other)
            ),
        )),
    }
}

/// A string, or an array of text parts joined by newlines. Missing or null
/// content reads as empty (an assistant turn may legitimately have none).
fn read_content(message: &Map<String, Value>, i: usize) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    let text = match present(message, "content") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                texts.push(read_part(part, i, j)?);
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(invalid(
                &param,
                format!("{param} must be a string or an array of text parts."),
            ))
        }
    };
    if text.chars().count() > MAX_CONTENT_CHARS {
        return Err(invalid(
            &param,
            format!("{param} is too long: at most {MAX_CONTENT_CHARS} characters."),
        ));
    }
    // An argv string cannot hold NUL; refusing it here beats a failed spawn.
    if text.contains('\0') {
        return Err(invalid(
            &param,
            format!("{param} contains a NUL character."),
        ));
    }
    Ok(text)
}

fn read_part(part: &Value, i: usize, j: usize) -> Result<&str, ApiError> {
    let param = format!("messages[{i}].content[{j}]");
    let kind = part.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => part.get("text").and_then(Value::as_str).ok_or_else(|| {
            invalid(
                &param,
                format!("{param} is a text part without a string 'text'."),
            )
        }),
        Some(other) => Err(unsupported(
            &param,
            format!(
                "{param} is a '{}' part: Claude Code mode accepts text only (no images, audio \
                 or files). {USE_PASSTHROUGH}",
                shorten(other)
            ),
        )),
        None => Err(invalid(
            &param,
            format!("{param} must be an object with a 'type'."),
        )),
    }
}

/// Client text echoed in an error message, kept short.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
