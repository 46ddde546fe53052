//! A Responses API request body, read and rewritten as the chat request
//! Claude Code mode already serves: `instructions` and `input` items become
//! `messages`, flat function tools become chat tools, `text.format` becomes
//! `response_format`. Pure: what it cannot pass on is refused with the
//! field's own name, what it passes on but the CLI does not honour is
//! named for `X-Claude-Ignored-Params`, and the fields a response object
//! echoes are kept as sent.

use serde_json::{json, Map, Value};

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
    let stream = match present(json, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean.")),
    };
    if stream {
        chat.insert("stream".into(), Value::Bool(true));
        // The usage chunk ends the stream; `response.completed` needs it.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
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
    let mut ignored: Vec<&'static str> = IGNORED
        .iter()
        .copied()
        .filter(|field| present(json, field).is_some())
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

fn invalid(param: &str, message: &str) -> ApiError {
    ApiError::InvalidValue {
        param: param.to_string(),
        message: message.to_string(),
    }
}

fn unsupported(param: &str, message: String) -> ApiError {
    ApiError::UnsupportedParameter {
        param: param.to_string(),
        message,
    }
}

const USE_PASSTHROUGH: &str = "Send the request without the X-Claude-Code header (and not \
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

/// `input` (a string, or a list of items) as chat messages. An assistant
/// message and the function calls after it are one chat message, the way
/// the answer that produced them was one.
fn read_input(input: &Value) -> Result<Vec<Value>, ApiError> {
    let items = match input {
        Value::String(text) => return Ok(vec![json!({"role": "user", "content": text})]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                "input",
                "'input' must be a string or an array of items.",
            ))
        }
    };
    let mut messages: Vec<Value> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let Some(item) = item.as_object() else {
            return Err(invalid(&param, "Each input item must be an object."));
        };
        let kind = match item.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            None if item.contains_key("role") => "message",
            None => return Err(invalid(&param, "An input item needs a 'type' or a 'role'.")),
        };
        match kind {
            "message" => messages.push(read_message(item, &param)?),
            "function_call" => add_call(&mut messages, item, &param)?,
            "function_call_output" => messages.push(read_call_output(item, &param)?),
            // This server never emits reasoning items; ones an upstream
            // gave carry nothing the CLI can use.
            "reasoning" => {}
            other => {
                return Err(unsupported(
                    &param,
                    format!(
                        "{param} is a '{}' item; Claude Code mode reads messages, function_call \
                         and function_call_output items. {USE_PASSTHROUGH}",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        }
    }
    Ok(messages)
}

fn read_message(item: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or("");
    if !matches!(role, "user" | "assistant" | "system" | "developer") {
        return Err(invalid(
            &format!("{param}.role"),
            "A message's 'role' must be user, assistant, system or developer.",
        ));
    }
    let content = match item.get("content") {
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(parts)) => {
            let parts = parts
                .iter()
                .enumerate()
                .map(|(j, part)| read_part(part, &format!("{param}.content[{j}]")))
                .collect::<Result<Vec<Value>, ApiError>>()?;
            if role == "user" {
                Value::Array(parts)
            } else {
                // Only a user message carries images; the others are text.
                Value::String(joined_text(&parts))
            }
        }
        _ => {
            return Err(invalid(
                &format!("{param}.content"),
                "A message's 'content' must be a string or an array of parts.",
            ))
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// One content part as a chat part (`text` or `image_url`).
fn read_part(part: &Value, param: &str) -> Result<Value, ApiError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "input_text" | "output_text" | "text" => {
            let text = part.get("text").and_then(Value::as_str).unwrap_or("");
            Ok(json!({"type": "text", "text": text}))
        }
        "refusal" => {
            let text = part.get("refusal").and_then(Value::as_str).unwrap_or("");
            Ok(json!({"type": "text", "text": text}))
        }
        "input_image" => match part.get("image_url").and_then(Value::as_str) {
            Some(url) => Ok(json!({"type": "image_url", "image_url": {"url": url}})),
            None => Err(ApiError::UnsupportedContent {
                param: param.to_string(),
                message: format!(
                    "{param} is an image by file_id; Claude Code mode takes images as a data: \
                     URL or an http(s) URL in 'image_url'."
                ),
            }),
        },
        other => Err(ApiError::UnsupportedContent {
            param: param.to_string(),
            message: format!(
                "{param} is a '{}' part; Claude Code mode takes input_text and input_image \
                 parts. {USE_PASSTHROUGH}",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

fn joined_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `function_call` item joins the assistant message just before it, or
/// starts one without text.
fn add_call(
    messages: &mut Vec<Value>,
    item: &Map<String, Value>,
    param: &str,
) -> Result<(), ApiError> {
    let field = |name: &str| {
        item.get(name).and_then(Value::as_str).ok_or_else(|| {
            invalid(
                &format!("{param}.{name}"),
                "A function_call item needs 'call_id', 'name' and 'arguments' strings.",
            )
        })
    };
    let call = json!({
        "id": field("call_id")?,
        "type": "function",
        "function": {"name": field("name")?, "arguments": field("arguments")?},
    });
    let joins_previous = messages
        .last()
        .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    if !joins_previous {
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": []}));
    }
    if let Some(last) = messages.last_mut() {
        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => last["tool_calls"] = json!([call]),
        }
    }
    Ok(())
}

fn read_call_output(item: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
    let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
        return Err(invalid(
            &format!("{param}.call_id"),
            "A function_call_output item needs the 'call_id' of the call it answers.",
        ));
    };
    let output = match item.get("output") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            let parts = parts
                .iter()
                .enumerate()
                .map(|(j, part)| read_part(part, &format!("{param}.output[{j}]")))
                .collect::<Result<Vec<Value>, ApiError>>()?;
            joined_text(&parts)
        }
        _ => {
            return Err(invalid(
                &format!("{param}.output"),
                "A function_call_output item's 'output' must be a string or an array of parts.",
            ))
        }
    };
    Ok(json!({"role": "tool", "tool_call_id": call_id, "content": output}))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
