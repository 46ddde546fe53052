//! An Anthropic Messages request body, read and rewritten as the chat
//! request Claude Code mode already serves: `system` becomes a system
//! message, content blocks become chat messages (see `content`), tools
//! with an `input_schema` become chat functions, `tool_choice` its chat
//! form, and `output_format` a `response_format`. Anthropic's server tools
//! (web search, code execution, …) and tools deferred for a tool search
//! (`defer_loading`) are left out and named: the model here has the
//! client's own tools only. `thread` names the message a request continues.
//! Pure: what cannot be passed on is refused by its field's name; what is
//! passed on but not honoured is named for `X-Claude-Ignored-Params`.

use serde_json::{json, Map, Value};

use super::content::read_messages;
use super::threads::Created;
use crate::claude::request::thinking::Thinking;
use crate::client_words::ClientWords;
use crate::dialect::read_stream;
use crate::error::ApiError;
pub(super) use crate::request_json::{invalid, present};

/// Read and passed on (any other field is reported as ignored).
const HONOURED: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "tools",
    "tool_choice",
    "output_format",
    "output_config",
    "thread",
    "thinking",
];

/// Accepted, not honoured; reported in this order (`max_tokens` first:
/// Anthropic requires it, the CLI sets its own), then any other field
/// this server does not read, by name.
const IGNORED: &[&str] = &[
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "service_tier",
    "container",
    "context_management",
];

/// Chat fields by this API's names, in errors and the ignored list.
pub const RENAMES: &[(&str, &str)] = &[
    (
        "parallel_tool_calls",
        "tool_choice.disable_parallel_tool_use",
    ),
    ("response_format", "output_format"),
];

/// A Messages request as Claude Code mode takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The whole chat body.
    pub chat: Map<String, Value>,
    pub stream: bool,
    pub ignored: Vec<String>,
    /// `thread.previous_message_id`: the answer this request continues.
    pub previous_message_id: Option<String>,
    /// `thinking` and `output_config.effort`, as the turn's thinking.
    pub thinking: Thinking,
    /// Where each chat message and function stands in the client's body,
    /// for errors in this API's words.
    pub words: ClientWords,
}

impl Translated {
    /// The chat messages this request adds to its conversation (its system
    /// text aside).
    pub fn own_messages(&self) -> Vec<Value> {
        self.messages()
            .iter()
            .filter(|m| m["role"] != "system")
            .cloned()
            .collect()
    }

    /// What a thread started by this request keeps for its continuations.
    pub fn created(&self) -> Created {
        Created {
            system: self
                .messages()
                .first()
                .filter(|m| m["role"] == "system")
                .cloned(),
            tools: self.chat.get("tools").cloned(),
        }
    }

    /// This request as the continuation of a thread: its conversation so
    /// far (`history`) before this request's messages, and the thread's
    /// system text and tools where this request has none.
    pub fn continue_from(&mut self, history: Vec<Value>, created: &Created) {
        let mut messages = match self.chat.remove("messages") {
            Some(Value::Array(messages)) => messages,
            _ => Vec::new(),
        };
        let own_system = messages.first().is_some_and(|m| m["role"] == "system");
        let system = if own_system {
            Some(messages.remove(0))
        } else {
            created.system.clone()
        };
        let mut places = std::mem::take(&mut self.words.message_places);
        if own_system && !places.is_empty() {
            places.remove(0);
        }
        let mut all = Vec::with_capacity(1 + history.len() + messages.len());
        let mut all_places = Vec::with_capacity(all.capacity());
        if let Some(system) = system {
            all.push(system);
            all_places.push(if own_system { "system" } else { "thread" }.to_string());
        }
        all_places.extend(
            history
                .iter()
                .map(|_| "thread.previous_message_id".to_string()),
        );
        all.extend(history);
        all.extend(messages);
        all_places.extend(places);
        self.chat.insert("messages".into(), Value::Array(all));
        self.words.message_places = all_places;
        if let (None, Some(tools)) = (self.chat.get("tools"), &created.tools) {
            let count = tools.as_array().map_or(0, Vec::len);
            self.words.tool_places = vec!["thread".to_string(); count];
            self.chat.insert("tools".into(), tools.clone());
        }
    }

    fn messages(&self) -> &[Value] {
        self.chat["messages"].as_array().map_or(&[], Vec::as_slice)
    }
}

pub fn translate(json: &Map<String, Value>) -> Result<Translated, ApiError> {
    let model =
        present(json, "model").ok_or(ApiError::MissingRequiredParameter { param: "model" })?;
    match present(json, "max_tokens") {
        None => {
            return Err(ApiError::MissingRequiredParameter {
                param: "max_tokens",
            })
        }
        Some(n) if n.as_u64().unwrap_or(0) == 0 => {
            return Err(invalid(
                "max_tokens",
                "'max_tokens' must be a positive integer.",
            ))
        }
        Some(_) => {}
    }
    let messages = present(json, "messages")
        .ok_or(ApiError::MissingRequiredParameter { param: "messages" })?;
    if present(json, "mcp_servers").is_some() {
        return Err(ApiError::UnsupportedParameter {
            param: "mcp_servers".into(),
            message: "'mcp_servers' is not supported: this server offers the model the client's \
                      own tools only."
                .into(),
        });
    }
    let mut chat = Map::new();
    chat.insert("model".into(), model.clone());
    let mut all = Vec::new();
    let mut places = Vec::new();
    if let Some(system) = present(json, "system") {
        all.push(json!({"role": "system", "content": read_system(system)?}));
        places.push("system".to_string());
    }
    let (messages, message_places) = read_messages(messages)?;
    all.extend(messages);
    places.extend(message_places);
    chat.insert("messages".into(), Value::Array(all));
    let stream = read_stream(json, &mut chat)?;
    let mut ignored: Vec<String> = IGNORED
        .iter()
        .filter(|field| present(json, field).is_some())
        .map(|field| field.to_string())
        .collect();
    let mut tool_places = Vec::new();
    if let Some(tools) = present(json, "tools") {
        let functions = read_tools(tools, &mut ignored, &mut tool_places)?;
        if !functions.is_empty() {
            chat.insert("tools".into(), Value::Array(functions));
        }
    }
    let offered = !tool_places.is_empty();
    if let Some(choice) = present(json, "tool_choice") {
        let (choice, parallel) = read_tool_choice(choice)?;
        if offered {
            chat.insert("tool_choice".into(), choice);
            if let Some(parallel) = parallel {
                chat.insert("parallel_tool_calls".into(), Value::Bool(parallel));
            }
        } else if choice != "none" {
            ignored.push("tool_choice".into());
        }
    }
    let previous_message_id = match present(json, "thread") {
        Some(thread) => read_thread(thread)?,
        None => None,
    };
    let unread = json.iter().filter(|(field, value)| {
        !value.is_null()
            && !HONOURED.contains(&field.as_str())
            && !IGNORED.contains(&field.as_str())
    });
    ignored.extend(unread.map(|(field, _)| field.clone()));
    // The SDK's `messages.parse` and `output_config.format` ask the same as
    // `output_format`.
    let config = present(json, "output_config");
    let format = present(json, "output_format")
        .map(|f| (f, "output_format"))
        .or_else(|| {
            config
                .and_then(|c| c.get("format"))
                .map(|f| (f, "output_config.format"))
        });
    if let Some((format, param)) = format.filter(|(f, _)| !f.is_null()) {
        chat.insert("response_format".into(), read_output_format(format, param)?);
    }
    let mut thinking = match present(json, "thinking") {
        Some(asked) => Thinking::of_anthropic(asked)?,
        None => Thinking::default(),
    };
    if let Some(config) = config.and_then(Value::as_object) {
        if let Some(effort) = present(config, "effort") {
            let asked = Thinking::of_effort("output_config.effort", effort)?;
            thinking.effort = asked.effort;
        }
        let others = config
            .iter()
            .filter(|(k, v)| !["format", "effort"].contains(&k.as_str()) && !v.is_null());
        ignored.extend(others.map(|(k, _)| format!("output_config.{k}")));
    }
    Ok(Translated {
        chat,
        stream,
        ignored,
        previous_message_id,
        thinking,
        words: ClientWords {
            field: "messages",
            results: "tool_result blocks",
            calls: "tool_use blocks",
            schema: "input_schema",
            message_places: places,
            tool_places,
            renames: RENAMES,
        },
    })
}

/// `thread` (the message-threads beta): `{type: "create"}` starts one (a
/// new session, as without it), `{type: "continue", previous_message_id}`
/// goes on from the answer with that `msg_` id.
fn read_thread(thread: &Value) -> Result<Option<String>, ApiError> {
    let kind = thread.get("type").and_then(Value::as_str);
    let id = thread.get("previous_message_id").and_then(Value::as_str);
    match (kind, id) {
        (Some("create"), _) => Ok(None),
        (Some("continue"), Some(id)) if !id.is_empty() && id.len() <= 200 => {
            Ok(Some(id.to_string()))
        }
        (Some("continue"), _) => Err(invalid(
            "thread.previous_message_id",
            "'thread.previous_message_id' must be the id of an earlier message.",
        )),
        _ => Err(invalid(
            "thread.type",
            "'thread.type' must be \"create\", or \"continue\" with the \
             'previous_message_id' it continues.",
        )),
    }
}

/// `system` as one text: a string, or text blocks joined by blank lines.
fn read_system(system: &Value) -> Result<String, ApiError> {
    match system {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                match (block.get("type").and_then(Value::as_str), block.get("text")) {
                    (Some("text"), Some(Value::String(text))) => texts.push(text.as_str()),
                    _ => {
                        return Err(invalid(
                            &format!("system[{i}]"),
                            "'system' blocks must be text blocks.",
                        ))
                    }
                }
            }
            Ok(texts.join("\n\n"))
        }
        _ => Err(invalid(
            "system",
            "'system' must be a string or an array of text blocks.",
        )),
    }
}

/// Client tools (`name`, `description`, `input_schema`) → chat functions.
/// Anthropic's own tools (`web_search_…`, `bash_…`, an `mcp_toolset`) have a
/// `type` of their own: they are left out and named (`tools:<type>`), and
/// so are tools kept from the model until a tool search loads them
/// (`defer_loading: true`, `tools:defer_loading`).
fn read_tools(
    tools: &Value,
    left_out: &mut Vec<String>,
    places: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = tools.as_array() else {
        return Err(invalid("tools", "'tools' must be an array."));
    };
    let mut note = |name: String| {
        if !left_out.contains(&name) {
            left_out.push(name);
        }
    };
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str);
        if !matches!(kind, None | Some("custom")) {
            let kind: String = kind.unwrap_or_default().chars().take(40).collect();
            note(format!("tools:{kind}"));
            continue;
        }
        if tool.get("defer_loading") == Some(&Value::Bool(true)) {
            note("tools:defer_loading".into());
            continue;
        }
        let mut function = Map::new();
        for (from, to) in [
            ("name", "name"),
            ("description", "description"),
            ("input_schema", "parameters"),
        ] {
            if let Some(value) = tool.get(from).filter(|v| !v.is_null()) {
                function.insert(to.into(), value.clone());
            }
        }
        functions.push(json!({"type": "function", "function": function}));
        places.push(format!("tools[{i}]"));
    }
    Ok(functions)
}

/// `tool_choice` as its chat form, and `disable_parallel_tool_use`.
fn read_tool_choice(choice: &Value) -> Result<(Value, Option<bool>), ApiError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    let chat = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").cloned().unwrap_or(Value::Null);
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(invalid(
                "tool_choice",
                "'tool_choice.type' must be auto, any, tool or none.",
            ))
        }
    };
    Ok((chat, parallel))
}

/// `{type: json_schema, schema}` → `response_format`.
fn read_output_format(format: &Value, param: &str) -> Result<Value, ApiError> {
    match (
        format.get("type").and_then(Value::as_str),
        format.get("schema"),
    ) {
        (Some("json_schema"), Some(schema)) if schema.is_object() => Ok(json!({
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        })),
        _ => Err(invalid(
            param,
            format!("'{param}' must be {{\"type\": \"json_schema\", \"schema\": {{...}}}}."),
        )),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
