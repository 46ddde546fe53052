//! The conversation a chat request carries, checked and reduced to what the
//! CLI can take: the system text, then turns of user text and images,
//! assistant text and tool calls, and tool results. A request ends with a
//! user turn (a new question) or with the results of the previous answer's
//! tool calls.
//!
//! Images come as `data:` URLs and go to the CLI as Anthropic base64 image
//! blocks, or as `http(s)` URLs, which go on as URL image blocks for the
//! Anthropic API to fetch (the CLI passes them through unchanged, see
//! fixtures/claude-cli-2.1.331/image-url.*); this server never fetches one.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request_json::{invalid, present, shorten};

/// Far above any real agent session (Codex and Claude Code reach thousands
/// of items): the body size bounds the work, and a history the server
/// already holds sends only its new tail to the CLI. A history it does not
/// hold is bounded where it becomes a transcript (see `turn`).
pub const MAX_MESSAGES: usize = 20_000;
const MAX_CONTENT_CHARS: usize = 500_000;
/// The Anthropic API's limit for one image (decoded).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
const MAX_URL_BYTES: usize = 8192;
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A tool's result (`tool`, or the legacy `function`).
    Tool,
}

/// One piece of a user turn, in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A base64 image: its media type and data.
    Image {
        media_type: String,
        data: String,
    },
    /// An image by `http(s)` URL, passed on for the API to fetch.
    ImageUrl(String),
}

/// A tool call of an earlier answer, as the client sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    /// `None` for a legacy `function_call`, which has no id.
    pub id: Option<String>,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    /// The text parts joined by newlines.
    pub content: String,
    /// User turns: text and images in order (empty for other roles).
    pub parts: Vec<Part>,
    /// Assistant turns: the calls it made.
    pub tool_calls: Vec<CallRef>,
    /// Tool turns: the call answered (`None` for a legacy `function` one).
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn images(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Image { .. }))
            .count()
    }
}

pub fn read_messages(messages: &Value) -> Result<(Option<String>, Vec<Message>), ApiError> {
    let Some(items) = messages.as_array() else {
        return Err(invalid("messages", "'messages' must be an array."));
    };
    if items.is_empty() {
        return Err(invalid(
            "messages",
            "'messages' must contain at least one message.",
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
        match read_role(message, i)? {
            None => {
                let text = read_text_content(message, i)?;
                if !text.trim().is_empty() {
                    system.push(text);
                }
            }
            Some(Role::User) => {
                let parts = read_user_content(message, i)?;
                let content = joined_text(&parts);
                if content.trim().is_empty() && parts.iter().all(|p| matches!(p, Part::Text(_))) {
                    return Err(invalid(
                        &format!("messages[{i}].content"),
                        format!("messages[{i}] is a user message with empty content."),
                    ));
                }
                turns.push(Message {
                    role: Role::User,
                    content,
                    parts,
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                });
            }
            Some(Role::Assistant) => turns.push(Message {
                role: Role::Assistant,
                content: read_text_content(message, i)?,
                parts: Vec::new(),
                tool_calls: read_tool_calls(message, i)?,
                tool_call_id: None,
            }),
            Some(Role::Tool) => turns.push(Message {
                role: Role::Tool,
                content: read_text_content(message, i)?,
                parts: Vec::new(),
                tool_calls: Vec::new(),
                tool_call_id: read_tool_call_id(message, i)?,
            }),
        }
    }
    check_order(&turns)?;
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, turns))
}

/// The conversation must end with a user turn, or with tool results that
/// follow an assistant turn with tool calls. Results alone are fine too:
/// the turn that waits for them is found by their calls' ids (a client that
/// continues by thread or response id sends only its new results).
fn check_order(turns: &[Message]) -> Result<(), ApiError> {
    let results = turns
        .iter()
        .rev()
        .take_while(|t| t.role == Role::Tool)
        .count();
    let before = turns.len() - results;
    let ok = if results == 0 {
        turns.last().map(|t| t.role) == Some(Role::User)
    } else {
        before == 0
            || (turns[before - 1].role == Role::Assistant
                && !turns[before - 1].tool_calls.is_empty())
    };
    if ok {
        return Ok(());
    }
    Err(invalid(
        "messages",
        "The conversation must end with a user message, or with the 'tool' messages that \
         answer the tool calls of the last assistant message.",
    ))
}

fn read_role(message: &Map<String, Value>, i: usize) -> Result<Option<Role>, ApiError> {
    let param = format!("messages[{i}].role");
    let role = match present(message, "role") {
        None => return Err(invalid(&param, format!("messages[{i}] has no 'role'."))),
        Some(Value::String(r)) => r.as_str(),
        Some(_) => return Err(invalid(&param, format!("{param} must be a string."))),
    };
    match role {
        "system" | "developer" => Ok(None),
        "user" => Ok(Some(Role::User)),
        "assistant" => Ok(Some(Role::Assistant)),
        "tool" | "function" => Ok(Some(Role::Tool)),
        other => Err(invalid(
            &param,
            format!(
                "messages[{i}] has role '{}'; expected one of system, developer, user, \
                 assistant, tool.",
                shorten(other)
            ),
        )),
    }
}

/// An assistant message's `tool_calls` (or legacy `function_call`).
fn read_tool_calls(message: &Map<String, Value>, i: usize) -> Result<Vec<CallRef>, ApiError> {
    if let Some(call) = present(message, "function_call") {
        let param = format!("messages[{i}].function_call");
        let name = call.get("name").and_then(Value::as_str);
        let arguments = call.get("arguments").and_then(Value::as_str).unwrap_or("");
        let Some(name) = name else {
            return Err(invalid(&param, format!("{param} needs a string 'name'.")));
        };
        return Ok(vec![CallRef {
            id: None,
            name: name.to_string(),
            arguments: arguments.to_string(),
        }]);
    }
    let Some(calls) = present(message, "tool_calls") else {
        return Ok(Vec::new());
    };
    let param = format!("messages[{i}].tool_calls");
    let Some(calls) = calls.as_array() else {
        return Err(invalid(&param, format!("{param} must be an array.")));
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let param = format!("{param}[{j}]");
            let id = call.get("id").and_then(Value::as_str);
            let function = call.get("function");
            let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
            let arguments = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match (id, name) {
                (Some(id), Some(name)) => Ok(CallRef {
                    id: Some(id.to_string()),
                    name: name.to_string(),
                    arguments: arguments.to_string(),
                }),
                _ => Err(invalid(
                    &param,
                    format!("{param} needs an 'id' and a 'function' with a 'name'."),
                )),
            }
        })
        .collect()
}

fn read_tool_call_id(message: &Map<String, Value>, i: usize) -> Result<Option<String>, ApiError> {
    let legacy = present(message, "role").and_then(Value::as_str) == Some("function");
    match present(message, "tool_call_id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        None if legacy => Ok(None),
        _ => Err(invalid(
            &format!("messages[{i}].tool_call_id"),
            format!("messages[{i}] is a tool result without a string 'tool_call_id'."),
        )),
    }
}

/// Text content: a string, or text parts joined by newlines. Missing or
/// null content reads as empty (an assistant turn with tool calls has none).
fn read_text_content(message: &Map<String, Value>, i: usize) -> Result<String, ApiError> {
    let parts = read_parts(message, i, false)?;
    Ok(joined_text(&parts))
}

fn read_user_content(message: &Map<String, Value>, i: usize) -> Result<Vec<Part>, ApiError> {
    read_parts(message, i, true)
}

fn read_parts(
    message: &Map<String, Value>,
    i: usize,
    images_allowed: bool,
) -> Result<Vec<Part>, ApiError> {
    let param = format!("messages[{i}].content");
    let parts = match present(message, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(j, part)| read_part(part, i, j, images_allowed))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(invalid(
                &param,
                format!("{param} must be a string or an array of content parts."),
            ))
        }
    };
    let chars: usize = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.chars().count(),
            _ => 0,
        })
        .sum();
    if chars > MAX_CONTENT_CHARS {
        return Err(invalid(
            &param,
            format!("{param} is too long: at most {MAX_CONTENT_CHARS} characters."),
        ));
    }
    if parts
        .iter()
        .any(|p| matches!(p, Part::Text(t) if t.contains('\0')))
    {
        return Err(invalid(
            &param,
            format!("{param} contains a NUL character."),
        ));
    }
    Ok(parts)
}

fn read_part(part: &Value, i: usize, j: usize, images_allowed: bool) -> Result<Part, ApiError> {
    let param = format!("messages[{i}].content[{j}]");
    match part.get("type").and_then(Value::as_str) {
        Some("text") => match part.get("text").and_then(Value::as_str) {
            Some(text) => Ok(Part::Text(text.to_string())),
            None => Err(invalid(
                &param,
                format!("{param} is a text part without a string 'text'."),
            )),
        },
        Some("image_url") if images_allowed => read_image(part, &param),
        Some(other) => Err(ApiError::UnsupportedContent {
            param: param.clone(),
            message: format!(
                "{param} is a '{}' part, which Claude Code mode cannot pass on here: it takes \
                 text, and images (as data: URLs) in user messages.",
                shorten(other)
            ),
        }),
        None => Err(invalid(
            &param,
            format!("{param} must be an object with a 'type'."),
        )),
    }
}

/// An `image_url` part: only `data:` URLs of the image types the API
/// takes, within its size limit.
fn read_image(part: &Value, param: &str) -> Result<Part, ApiError> {
    let url = match part.get("image_url") {
        Some(Value::String(url)) => Some(url.as_str()),
        Some(Value::Object(o)) => o.get("url").and_then(Value::as_str),
        _ => None,
    };
    let Some(url) = url else {
        return Err(invalid(
            param,
            format!("{param} needs 'image_url': {{\"url\": ...}}."),
        ));
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        if url.len() > MAX_URL_BYTES || url.chars().any(char::is_whitespace) {
            return Err(invalid(
                param,
                format!(
                    "{param} is not a usable image URL (at most {MAX_URL_BYTES} bytes, no spaces)."
                ),
            ));
        }
        return Ok(Part::ImageUrl(url.to_string()));
    }
    let Some((head, data)) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
    else {
        return Err(invalid(
            param,
            format!(
                "{param} must be an http(s) URL or a data URL (\"data:image/png;base64,...\")."
            ),
        ));
    };
    let Some(media_type) = head.strip_suffix(";base64") else {
        return Err(invalid(
            param,
            format!("{param} must be a base64 data URL (\"data:<type>;base64,...\")."),
        ));
    };
    if !IMAGE_TYPES.contains(&media_type) {
        return Err(ApiError::UnsupportedContent {
            param: param.to_string(),
            message: format!(
                "{param} is of type '{}'; images must be one of {}.",
                shorten(media_type),
                IMAGE_TYPES.join(", ")
            ),
        });
    }
    let clean = data.len() % 4 == 0
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    if !clean || data.is_empty() {
        return Err(invalid(
            param,
            format!("{param} does not hold valid base64 data."),
        ));
    }
    let padding = data.bytes().rev().take_while(|b| *b == b'=').count();
    let size = data.len() / 4 * 3 - padding;
    if size > MAX_IMAGE_BYTES {
        return Err(invalid(
            param,
            format!(
                "{param} is an image of {size} bytes; the limit is {MAX_IMAGE_BYTES} bytes \
                 per image. Scale it down."
            ),
        ));
    }
    Ok(Part::Image {
        media_type: media_type.to_string(),
        data: data.to_string(),
    })
}

fn joined_text(parts: &[Part]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}
