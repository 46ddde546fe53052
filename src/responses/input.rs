//! The `input` of a Responses request as chat messages: message items
//! with their text and image parts, the function and custom tool calls an
//! earlier answer made and the outputs that answer them, and the tools of
//! `additional_tools` items. Reasoning items are skipped (this server gives
//! none, and an upstream's mean nothing to the CLI). Items a client keeps
//! for its own bookkeeping (an output without its `call_id`, a reference
//! the server could not resolve, a hosted tool's call) are skipped and
//! named; a part type the CLI cannot take is refused by its place.

use serde_json::{json, Map, Value};

use super::request::{invalid, USE_PASSTHROUGH};
use super::tools::{chat_name, custom_arguments, Tools};
use crate::claude::request::validate::MAX_MESSAGES;
use crate::error::ApiError;

/// `input` as chat messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Input {
    pub messages: Vec<Value>,
    /// The place in `input` of each message.
    pub places: Vec<String>,
}

/// `input` (a string, or a list of items) as chat messages. An assistant
/// message and the calls after it are one chat message, the way the
/// answer that produced them was one. Tools of `additional_tools` items go
/// to `tools`; skipped items are named in `notes`.
pub(super) fn read_input(
    input: &Value,
    tools: &mut Tools,
    notes: &mut Vec<String>,
) -> Result<Input, ApiError> {
    let items = match input {
        Value::String(text) => {
            return Ok(Input {
                messages: vec![json!({"role": "user", "content": text})],
                places: vec!["input".into()],
            })
        }
        Value::Array(items) if items.len() > MAX_MESSAGES => {
            return Err(invalid(
                "input",
                format!(
                    "'input' has {} items; at most {MAX_MESSAGES} are allowed.",
                    items.len()
                ),
            ))
        }
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                "input",
                "'input' must be a string or an array of items.",
            ))
        }
    };
    let mut messages: Vec<Value> = Vec::with_capacity(items.len());
    let mut places: Vec<String> = Vec::with_capacity(items.len());
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
            "function_call" | "custom_tool_call" => add_call(&mut messages, item, &param)?,
            "function_call_output" | "custom_tool_call_output" => {
                if item.get("call_id").and_then(Value::as_str).is_none() {
                    // Codex adds such an output for its own bookkeeping: it
                    // answers no call the model made.
                    note(notes, format!("{param}.call_id"));
                    continue;
                }
                messages.push(read_call_output(item, &param)?)
            }
            "additional_tools" => {
                let list = item.get("tools").unwrap_or(&Value::Null);
                tools.read(list, &format!("{param}.tools"), notes)?;
            }
            // The session holds the thinking of this server's reasoning
            // items; an upstream's carry nothing the CLI can use.
            "reasoning" => {}
            // A reference the server could resolve was replaced by its
            // item before (see `mod`); another, and a hosted tool's call,
            // is no part of what this conversation holds.
            other => note(
                notes,
                format!("input:{}", other.chars().take(40).collect::<String>()),
            ),
        }
        places.resize(messages.len(), param);
    }
    Ok(Input { messages, places })
}

fn note(notes: &mut Vec<String>, name: String) {
    if !notes.contains(&name) {
        notes.push(name);
    }
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
                "A call item needs 'call_id' and 'name' strings, and 'arguments' (a \
                 function_call) or 'input' (a custom_tool_call).",
            )
        })
    };
    let namespace = item.get("namespace").and_then(Value::as_str);
    let arguments = match item.get("type").and_then(Value::as_str) {
        Some("custom_tool_call") => custom_arguments(field("input")?),
        _ => field("arguments")?.to_string(),
    };
    let call = json!({
        "id": field("call_id")?,
        "type": "function",
        "function": {"name": chat_name(namespace, field("name")?), "arguments": arguments},
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
