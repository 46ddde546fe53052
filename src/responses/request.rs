//! A Responses API request body, read and rewritten as the chat request
//! Claude Code mode already serves: `instructions` and `input` items become
//! `messages`, flat function tools become chat tools, `text.format` becomes
//! `response_format`. Pure: what it cannot pass on is refused with the
//! field's own name, what it passes on but the CLI does not honour is
//! named for `X-Claude-Ignored-Params`, and the fields a response object
//! echoes are kept as sent.

use serde_json::{json, Map, Value};

use super::input::read_input;
use crate::dialect::read_stream;
use crate::error::ApiError;

/// Accepted and type-agnostic, not honoured; reported in this order.
const IGNORED: &[&str] = &[
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tool_calls",
    "truncation",
    "include",
    "reasoning",
    "metadata",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "context_management",
    "top_logprobs",
    "stream_options",
];

/// Echoed in the response object as sent (OpenAI's default otherwise).
const ECHOED: &[&str] = &[
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "temperature",
    "top_p",
    "max_output_tokens",
    "truncation",
    "reasoning",
    "metadata",
    "user",
    "service_tier",
];

/// A Responses request as Claude Code mode takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The chat body: `model`, `tools`, `tool_choice`, `response_format`,
    /// `stream`; `messages` is set apart (see `system` and `input`).
    pub chat: Map<String, Value>,
    /// `instructions`, as a system message.
    pub system: Option<Value>,
    /// The input items as chat messages (no system ones from
    /// `instructions`; `system`/`developer` items stay where they are).
    pub input: Vec<Value>,
    pub previous_response_id: Option<String>,
    /// `store` (true unless `false` was sent).
    pub store: bool,
    pub stream: bool,
    /// Sent, accepted, not honoured.
    pub ignored: Vec<&'static str>,
    /// The fields the response object repeats.
    pub echo: Map<String, Value>,
}

impl Translated {
    /// The whole chat body for `history` (chat messages of earlier turns)
    /// followed by this request's input.
    pub fn chat_body(&self, history: &[Value]) -> Map<String, Value> {
        let mut messages = Vec::with_capacity(1 + history.len() + self.input.len());
        messages.extend(self.system.iter().cloned());
        messages.extend(history.iter().cloned());
        messages.extend(self.input.iter().cloned());
        let mut chat = self.chat.clone();
        chat.insert("messages".into(), Value::Array(messages));
        chat
    }

    /// True when the input ends with results of function calls: it carries
    /// on a turn that was admitted when it began.
    pub fn carries_tool_results(&self) -> bool {
        self.input
            .last()
            .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
    }
}

pub fn translate(json: &Map<String, Value>) -> Result<Translated, ApiError> {
    refuse_unsupported(json)?;
    let model =
        present(json, "model").ok_or(ApiError::MissingRequiredParameter { param: "model" })?;
    let input =
        present(json, "input").ok_or(ApiError::MissingRequiredParameter { param: "input" })?;
    let mut chat = Map::new();
    chat.insert("model".into(), model.clone());
    let stream = read_stream(json, &mut chat)?;
    let system = match present(json, "instructions") {
        None => None,
        Some(Value::String(text)) => Some(json!({"role": "system", "content": text})),
        Some(_) => return Err(invalid("instructions", "'instructions' must be a string.")),
    };
    if let Some(tools) = present(json, "tools") {
        chat.insert("tools".into(), read_tools(tools)?);
    }
    if let Some(choice) = present(json, "tool_choice") {
        chat.insert("tool_choice".into(), read_tool_choice(choice)?);
    }
    if let Some(parallel) = present(json, "parallel_tool_calls") {
        chat.insert("parallel_tool_calls".into(), parallel.clone());
    }
    // An empty list or object asks for nothing (the Agents SDK always
    // sends `include: []`).
    let asks = |v: &Value| match v {
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    };
    let mut ignored: Vec<&'static str> = IGNORED
        .iter()
        .copied()
        .filter(|field| present(json, field).is_some_and(asks))
        .collect();
    if let Some(text) = present(json, "text") {
        let (format, verbosity) = read_text(text)?;
        if let Some(format) = format {
            chat.insert("response_format".into(), format);
        }
        if verbosity {
            ignored.push("text.verbosity");
        }
    }
    let previous_response_id = match present(json, "previous_response_id") {
        None => None,
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 200 => Some(id.clone()),
        Some(_) => {
            return Err(invalid(
                "previous_response_id",
                "'previous_response_id' must be the id of an earlier response.",
            ))
        }
    };
    let store = match present(json, "store") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("store", "'store' must be a boolean.")),
    };
    let echo = ECHOED
        .iter()
        .filter_map(|field| present(json, field).map(|v| (field.to_string(), v.clone())))
        .collect();
    Ok(Translated {
        chat,
        system,
        input: read_input(input)?,
        previous_response_id,
        store,
        stream,
        ignored,
        echo,
    })
}

fn present<'a>(json: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    json.get(key).filter(|v| !v.is_null())
}

pub(super) fn invalid(param: &str, message: &str) -> ApiError {
    ApiError::InvalidValue {
        param: param.to_string(),
        message: message.to_string(),
    }
}

pub(super) fn unsupported(param: &str, message: String) -> ApiError {
    ApiError::UnsupportedParameter {
        param: param.to_string(),
        message,
    }
}

pub(super) const USE_PASSTHROUGH: &str =
    "Send the request without the X-Claude-Code header (and not \
     under /claude/v1) to have the OpenAI upstream answer it.";

fn refuse_unsupported(json: &Map<String, Value>) -> Result<(), ApiError> {
    if present(json, "conversation").is_some() {
        return Err(unsupported(
            "conversation",
            "'conversation' is not supported in Claude Code mode; continue a conversation \
             with 'previous_response_id' instead."
                .into(),
        ));
    }
    if present(json, "prompt").is_some() {
        return Err(unsupported(
            "prompt",
            format!("Stored prompts are not supported in Claude Code mode. {USE_PASSTHROUGH}"),
        ));
    }
    if present(json, "background") == Some(&Value::Bool(true)) {
        return Err(unsupported(
            "background",
            format!(
                "Background responses are not supported in Claude Code mode. {USE_PASSTHROUGH}"
            ),
        ));
    }
    Ok(())
}

/// Flat Responses function tools → nested chat tools.
fn read_tools(tools: &Value) -> Result<Value, ApiError> {
    let Some(tools) = tools.as_array() else {
        return Err(invalid("tools", "'tools' must be an array."));
    };
    let mut chat_tools = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = tool.get("type").and_then(Value::as_str);
        if kind != Some("function") {
            return Err(unsupported(
                &param,
                format!(
                    "{param} is a '{}' tool; Claude Code mode offers the model function tools \
                     only. {USE_PASSTHROUGH}",
                    kind.unwrap_or("untyped")
                ),
            ));
        }
        let mut function = Map::new();
        for field in ["name", "description", "parameters", "strict"] {
            if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                function.insert(field.into(), value.clone());
            }
        }
        chat_tools.push(json!({"type": "function", "function": function}));
    }
    Ok(Value::Array(chat_tools))
}

fn read_tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(_) => Ok(choice.clone()),
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => {
            let name = object.get("name").cloned().unwrap_or(Value::Null);
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(unsupported(
            "tool_choice",
            format!(
                "Claude Code mode takes 'tool_choice' as \"auto\", \"none\", \"required\" or \
                 {{\"type\": \"function\", \"name\": ...}}. {USE_PASSTHROUGH}"
            ),
        )),
    }
}

/// `text.format` as a chat `response_format`, and whether a verbosity was
/// asked for.
fn read_text(text: &Value) -> Result<(Option<Value>, bool), ApiError> {
    let Some(text) = text.as_object() else {
        return Err(invalid("text", "'text' must be an object."));
    };
    let verbosity = present(text, "verbosity").is_some();
    let Some(format) = present(text, "format") else {
        return Ok((None, verbosity));
    };
    let kind = format.get("type").and_then(Value::as_str);
    let response_format = match kind {
        Some("text") => None,
        Some("json_object") => Some(json!({"type": "json_object"})),
        Some("json_schema") => {
            let mut schema = Map::new();
            for field in ["name", "schema", "strict", "description"] {
                if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                    schema.insert(field.into(), value.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => {
            return Err(invalid(
                "text.format",
                "'text.format.type' must be \"text\", \"json_object\" or \"json_schema\".",
            ))
        }
    };
    Ok((response_format, verbosity))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
