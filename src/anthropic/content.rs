//! The `messages` of an Anthropic request as chat messages. A user
//! message's `tool_result` blocks become `tool` messages (the results of
//! the previous answer's calls), its text and images a user message; an
//! assistant message's `text` blocks its content and its `tool_use` blocks
//! its calls. Thinking blocks are the model's own and are skipped.
//!
//! A `system` message (Claude Code as a client sends its environment that
//! way, and more when its tools change; the Anthropic API takes it) is
//! system text where it stands: before any other message it joins the
//! system prompt; after one it goes, in `<system-reminder>` tags, with the
//! user message it follows (or the next one, after an assistant message).
//! So the system prompt, and with it the warm process and the history's
//! digest, stay the same when a client adds one mid-conversation.
//!
//! Text next to tool results (Claude Code clients add reminders there) is
//! added to the last result, so the request still carries the turn on.
//! What follows the last result and is not such a reminder (pydantic-ai
//! sends its next question there) is a new user message after the results:
//! the turn that waits for them finishes, then the question is asked.

use serde_json::{json, Map, Value};

use super::request::invalid;
use crate::claude::request::validate::MAX_MESSAGES;
use crate::error::ApiError;

/// The chat messages, and the place in `messages` each came from.
pub fn read_messages(messages: &Value) -> Result<(Vec<Value>, Vec<String>), ApiError> {
    let Some(messages) = messages.as_array() else {
        return Err(invalid("messages", "'messages' must be an array."));
    };
    if messages.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!(
                "'messages' has {} messages; at most {MAX_MESSAGES} are allowed.",
                messages.len()
            ),
        ));
    }
    let mut chat = Vec::with_capacity(messages.len());
    let mut places = Vec::with_capacity(messages.len());
    // System text after an assistant message, for the next user message.
    let mut held: Vec<Value> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let Some(message) = message.as_object() else {
            return Err(invalid(
                &param,
                "Each message must be an object with 'role' and 'content'.",
            ));
        };
        let content = match message.get("content") {
            Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
            Some(Value::Array(blocks)) => blocks.clone(),
            _ => {
                return Err(invalid(
                    &format!("{param}.content"),
                    "A message's 'content' must be a string or an array of content blocks.",
                ))
            }
        };
        match message.get("role").and_then(Value::as_str) {
            Some("user") => {
                let first = chat.len();
                read_user(&content, &param, &mut chat)?;
                for text in held.drain(..) {
                    attach_at(&mut chat[first..], text);
                }
            }
            Some("assistant") => chat.push(read_assistant(&content, &param)?),
            Some("system") if chat.is_empty() => {
                let text = system_text(&content, &param)?;
                chat.push(json!({"role": "system", "content": text}));
            }
            Some("system") => {
                let text = reminder(&system_text(&content, &param)?);
                match chat.last().and_then(|m| m["role"].as_str()) {
                    Some("user" | "tool") => attach_at(&mut chat, text),
                    _ => held.push(text),
                }
            }
            _ => {
                return Err(invalid(
                    &format!("{param}.role"),
                    "A message's 'role' must be user, assistant or system.",
                ))
            }
        }
        places.resize(chat.len(), param);
    }
    if !held.is_empty() {
        // System text after the last answer: it is what is asked now.
        chat.push(json!({"role": "user", "content": held}));
        places.push(format!("messages[{}]", messages.len() - 1));
    }
    Ok((chat, places))
}

/// A `system` message's text blocks as one text.
fn system_text(blocks: &[Value], param: &str) -> Result<String, ApiError> {
    let mut texts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        match kind(block) {
            "text" => texts.push(text_of(block, &at)?),
            other => return Err(unsupported_block(other, &at)),
        }
    }
    Ok(texts.join("\n\n"))
}

/// System text inside the conversation, as a text part the model reads as
/// the system's, not the user's.
fn reminder(text: &str) -> Value {
    json!({"type": "text", "text": format!("<system-reminder>\n{text}\n</system-reminder>")})
}

/// `part` added to the last of `messages` that can take it: a user
/// message's parts, or a tool result's text (as Claude Code's reminders
/// next to results are).
fn attach_at(messages: &mut [Value], part: Value) {
    let Some(last) = messages.last_mut() else {
        return;
    };
    let text = part["text"].as_str().unwrap_or_default();
    match &mut last["content"] {
        Value::Array(parts) => parts.push(part.clone()),
        Value::String(content) if content.is_empty() => content.push_str(text),
        Value::String(content) => {
            content.push_str("\n\n");
            content.push_str(text);
        }
        _ => {}
    }
}

fn read_user(blocks: &[Value], param: &str, chat: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut results = Vec::new();
    let mut parts = Vec::new();
    let mut question = Vec::new();
    let last_result = blocks.iter().rposition(|b| kind(b) == "tool_result");
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        let asks = last_result.is_some_and(|last| j > last);
        match kind(block) {
            "text" => {
                let text = text_of(block, &at)?;
                let part = json!({"type": "text", "text": text});
                if asks && !text.trim_start().starts_with("<system-reminder>") {
                    question.push(part);
                } else {
                    parts.push(part);
                }
            }
            "image" if asks => question.push(read_image(block, &at)?),
            "image" => parts.push(read_image(block, &at)?),
            "tool_result" => results.push(read_tool_result(block, &at)?),
            other => return Err(unsupported_block(other, &at)),
        }
    }
    if results.is_empty() {
        chat.push(json!({"role": "user", "content": parts}));
        return Ok(());
    }
    if parts.iter().any(|p| p["type"] == "image_url") {
        return Err(ApiError::UnsupportedContent {
            param: format!("{param}.content"),
            message: "Images next to tool_result blocks are not supported; send them in a \
                      user message of their own."
                .into(),
        });
    }
    let extra: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
    if let (Some(last), false) = (results.last_mut(), extra.is_empty()) {
        let joined = format!(
            "{}\n\n{}",
            last["content"].as_str().unwrap_or(""),
            extra.join("\n\n")
        );
        last["content"] = Value::String(joined);
    }
    chat.extend(results);
    if !question.is_empty() {
        chat.push(json!({"role": "user", "content": question}));
    }
    Ok(())
}

fn read_assistant(blocks: &[Value], param: &str) -> Result<Value, ApiError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        match kind(block) {
            "text" => text.push_str(text_of(block, &at)?),
            "tool_use" => {
                let field = |name: &str| {
                    block.get(name).and_then(Value::as_str).ok_or_else(|| {
                        invalid(
                            &format!("{at}.{name}"),
                            "A tool_use block needs 'id' and 'name'.",
                        )
                    })
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": field("id")?, "type": "function",
                    "function": {"name": field("name")?, "arguments": input.to_string()}}));
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported_block(other, &at)),
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(text));
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

/// A `tool_result` as a `tool` message. An error result says so in its
/// text: the bridge hands the CLI the text alone.
fn read_tool_result(block: &Value, at: &str) -> Result<Value, ApiError> {
    let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
        return Err(invalid(
            &format!("{at}.tool_use_id"),
            "A tool_result block needs the 'tool_use_id' of the call it answers.",
        ));
    };
    let mut text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            for (k, inner) in blocks.iter().enumerate() {
                let inner_at = format!("{at}.content[{k}]");
                match kind(inner) {
                    "text" => texts.push(text_of(inner, &inner_at)?),
                    other => return Err(unsupported_block(other, &inner_at)),
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(invalid(
                &format!("{at}.content"),
                "A tool_result's 'content' must be a string or an array of text blocks.",
            ))
        }
    };
    if block.get("is_error") == Some(&Value::Bool(true)) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// An image block as a chat `image_url` part (a data: URL for base64).
fn read_image(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = &block["source"];
    let url = match source["type"].as_str() {
        Some("base64") => {
            let media = source["media_type"].as_str().unwrap_or_default();
            let data = source["data"].as_str().unwrap_or_default();
            format!("data:{media};base64,{data}")
        }
        Some("url") => source["url"].as_str().unwrap_or_default().to_string(),
        _ => {
            return Err(ApiError::UnsupportedContent {
                param: format!("{at}.source"),
                message: format!("{at} is an image by file; send it as base64 or by URL."),
            })
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn kind(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

fn text_of<'a>(block: &'a Value, at: &str) -> Result<&'a str, ApiError> {
    block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{at}.text"), "A text block needs a 'text' string."))
}

fn unsupported_block(kind: &str, at: &str) -> ApiError {
    ApiError::UnsupportedContent {
        param: at.to_string(),
        message: format!(
            "{at} is a '{}' block; this server reads text, image, tool_use and tool_result \
             blocks.",
            kind.chars().take(40).collect::<String>()
        ),
    }
}
