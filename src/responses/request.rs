//! A Responses API request body, read and rewritten as the chat request
//! Claude Code mode already serves: `instructions` and `input` items become
//! `messages`, tools become chat functions (see `tools`), `text.format`
//! becomes `response_format`. Pure: what it cannot pass on is refused with
//! the field's own name, what it passes on or leaves out but the CLI does
//! not honour is named for `X-Claude-Ignored-Params`, and the fields a
//! response object echoes are kept as sent.

use serde_json::{json, Map, Value};

use super::input::read_input;
use super::tools::Tools;
use crate::claude::request::thinking::Thinking;
use crate::client_words::ClientWords;
use crate::dialect::read_stream;
use crate::error::ApiError;
pub(super) use crate::request_json::invalid;
use crate::request_json::{present, unsupported};

/// Chat fields by this API's names, in errors and the ignored list.
pub const RENAMES: &[(&str, &str)] = &[("response_format", "text.format")];

/// Accepted and type-agnostic, not honoured; reported in this order.
const IGNORED: &[&str] = &[
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tool_calls",
    "truncation",
    "include",
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
    /// `reasoning.effort` and `reasoning.summary` as the turn's thinking.
    pub thinking: Thinking,
    /// `reasoning.summary` was sent: reasoning items carry the thinking.
    pub reasoning_summary: bool,
    /// `store` (true unless `false` was sent).
    pub store: bool,
    pub stream: bool,
    /// Sent, accepted, not honoured (or left out).
    pub ignored: Vec<String>,
    /// The fields the response object repeats.
    pub echo: Map<String, Value>,
    /// The tools offered, for telling the answer's calls.
    pub tools: Tools,
    /// Where each chat message and function came from, for errors.
    pub words: ClientWords,
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

    /// The words of errors about `chat_body(history)`.
    pub fn words(&self, history: &[Value]) -> ClientWords {
        let mut words = self.words.clone();
        let mut places = Vec::with_capacity(words.message_places.len() + history.len() + 1);
        places.extend(self.system.iter().map(|_| "instructions".to_string()));
        places.extend(history.iter().map(|_| "previous_response_id".to_string()));
        places.append(&mut words.message_places);
        words.message_places = places;
        words
    }
}

/// `reasoning`: its `effort` as the turn's thinking, and whether a
/// `summary` was asked for, which shows the thinking. An empty object asks
/// nothing.
fn read_reasoning(json: &Map<String, Value>) -> Result<(Thinking, bool), ApiError> {
    let Some(reasoning) = present(json, "reasoning") else {
        return Ok((Thinking::default(), false));
    };
    let Some(fields) = reasoning.as_object() else {
        return Err(invalid("reasoning", "'reasoning' must be an object."));
    };
    let mut thinking = match present(fields, "effort") {
        Some(effort) => Thinking::of_effort("reasoning.effort", effort)?,
        None => Thinking::default(),
    };
    let summary = match present(fields, "summary").or_else(|| present(fields, "generate_summary")) {
        None => false,
        Some(Value::String(word)) if ["auto", "concise", "detailed"].contains(&word.as_str()) => {
            true
        }
        Some(_) => {
            return Err(invalid(
                "reasoning.summary",
                "'reasoning.summary' must be one of auto, concise, detailed.",
            ))
        }
    };
    // Reasoning items are told only with their summary: one without it
    // would say nothing (its encrypted content is not given).
    thinking.show = summary && thinking.budget != Some(0);
    Ok((thinking, summary))
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

    // An empty list or object asks for nothing (the Agents SDK always
    // sends `include: []`).
    let asks = |v: &Value| match v {
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    };
    let mut ignored: Vec<String> = IGNORED
        .iter()
        .filter(|field| present(json, field).is_some_and(asks))
        .map(|field| field.to_string())
        .collect();
    let mut tools = Tools::default();
    if let Some(list) = present(json, "tools") {
        tools.read(list, "tools", &mut ignored)?;
    }
    let input = read_input(input, &mut tools, &mut ignored)?;
    if !tools.functions.is_empty() {
        chat.insert("tools".into(), Value::Array(tools.functions.clone()));
        if let Some(choice) = present(json, "tool_choice") {
            chat.insert("tool_choice".into(), read_tool_choice(choice, &tools)?);
        }
        if let Some(parallel) = present(json, "parallel_tool_calls") {
            chat.insert("parallel_tool_calls".into(), parallel.clone());
        }
    } else if present(json, "tool_choice").is_some_and(|c| c != "none" && c != "auto") {
        ignored.push("tool_choice".into());
    }
    if let Some(text) = present(json, "text") {
        let (format, verbosity) = read_text(text)?;
        if let Some(format) = format {
            chat.insert("response_format".into(), format);
        }
        if verbosity {
            ignored.push("text.verbosity".into());
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
    let (thinking, reasoning_summary) = read_reasoning(json)?;
    let store = match present(json, "store") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("store", "'store' must be a boolean.")),
    };
    let echo = ECHOED
        .iter()
        .filter_map(|field| present(json, field).map(|v| (field.to_string(), v.clone())))
        .collect();
    let words = ClientWords {
        field: "input",
        results: "function_call_output items",
        calls: "function calls",
        schema: "parameters",
        message_places: input.places,
        tool_places: tools.places.clone(),
        renames: RENAMES,
    };
    Ok(Translated {
        chat,
        system,
        input: input.messages,
        previous_response_id,
        thinking,
        reasoning_summary,
        store,
        stream,
        ignored,
        echo,
        tools,
        words,
    })
}

pub(super) const USE_PASSTHROUGH: &str =
    "Send the request without the X-Claude-Code header (and not \
     under /claude/v1) to have the OpenAI upstream answer it.";

fn refuse_unsupported(json: &Map<String, Value>) -> Result<(), ApiError> {
    if present(json, "conversation").is_some() {
        return Err(unsupported(
            "conversation",
            "'conversation' is not supported in Claude Code mode; continue a conversation \
             with 'previous_response_id' instead.",
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

/// `tool_choice` as its chat form. A choice of a hosted tool, or of a
/// set of allowed tools, leaves the model free (`auto`).
fn read_tool_choice(choice: &Value, tools: &Tools) -> Result<Value, ApiError> {
    let kind = choice.get("type").and_then(Value::as_str);
    match (choice, kind) {
        (Value::String(_), _) => Ok(choice.clone()),
        (Value::Object(object), Some("function" | "custom")) => {
            let name = object.get("name").and_then(Value::as_str).unwrap_or("");
            let namespace = object.get("namespace").and_then(Value::as_str);
            let mut chat_name = super::tools::chat_name(namespace, name);
            if namespace.is_none() && tools.offered(&chat_name).is_none() {
                // Named without its namespace: the one tool of that name.
                let mut found = tools.offered.iter().filter(|o| o.name == name);
                if let (Some(only), None) = (found.next(), found.next()) {
                    chat_name = only.chat_name.clone();
                }
            }
            Ok(json!({"type": "function", "function": {"name": chat_name}}))
        }
        (Value::Object(_), Some(_)) => Ok(json!("auto")),
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
