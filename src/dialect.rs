//! An answer of Claude Code mode in another API's words. A turn produces a
//! whole [`Answer`] and, when streamed, its typed events; the Responses and
//! Anthropic Messages APIs each write those as their own whole answer and
//! their own events, and may note the answer on the way (the Responses API
//! keeps it). The turn itself stays the same.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::Reply;
use crate::session_id::SessionId;
use crate::turn_event::{Answer, TurnEvent};

/// One request's answer in another API.
pub trait Dialect: Send + Sync {
    /// The whole answer on `session`, in this API's words.
    fn whole(&self, answer: &Answer, session: &SessionId) -> Value;
    /// The writer of the answer's stream on `session`.
    fn events(self: Arc<Self>, session: &SessionId) -> Box<dyn DialectEvents>;
}

/// A stream told in another API: each result is one SSE event's lines
/// (`event:` and `data:`, without the blank line).
pub trait DialectEvents: Send {
    /// The events that tell one event of the turn.
    fn event(&mut self, event: &TurnEvent) -> Vec<Vec<u8>>;
    /// The last events of an answer that ended well (the whole of it).
    fn answered(&mut self, answer: &Answer) -> Vec<Vec<u8>>;
    /// The events that end a stream broken by `error`.
    fn failed(&mut self, error: &ApiError) -> Vec<Vec<u8>>;
    /// This API's keep-alive event for a long silence, when it has one
    /// (otherwise an SSE comment is sent).
    fn keep_alive(&mut self) -> Option<Vec<u8>> {
        None
    }
}

/// Reads `stream` into the chat body.
pub fn read_stream(
    json: &Map<String, Value>,
    chat: &mut Map<String, Value>,
) -> Result<bool, ApiError> {
    let stream = match json.get("stream").filter(|v| !v.is_null()) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::InvalidValue {
                param: "stream".into(),
                message: "'stream' must be a boolean.".into(),
            })
        }
    };
    if stream {
        chat.insert("stream".into(), Value::Bool(true));
    }
    Ok(stream)
}

/// The other API's ignored parameters and the chat turn's own, in one
/// list of the turn's facts (one header), each named as the other API
/// names it (`renames`: chat name → that API's).
pub fn with_ignored(
    mut reply: Reply,
    ignored: &[impl AsRef<str>],
    renames: &[(&str, &str)],
) -> Reply {
    let Some(facts) = reply.turn.as_mut() else {
        return reply;
    };
    let mut names: Vec<String> = ignored.iter().map(|s| s.as_ref().to_string()).collect();
    for name in &facts.ignored {
        let name = renames
            .iter()
            .find(|(chat, _)| chat == name)
            .map_or(name.as_str(), |(_, own)| own);
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    facts.ignored = names;
    reply
}

/// Recorded CLI runs as the dialects' tests read them.
#[cfg(test)]
pub mod recorded {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use crate::claude::reading::adapter::{Adapter, Outcome, Step};
    use crate::claude::tools::{read_tool_spec, ToolSpec};
    use crate::claude::{Answer, TurnEvent};

    /// The stdout of recording `name` (fixtures/claude-cli-2.1.331/).
    pub fn stdout(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/fixtures/claude-cli-2.1.331/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `tools: [get_weather {city}, get_time {zone}]`, as the recordings offer.
    pub fn weather_and_time() -> Arc<ToolSpec> {
        let function = |name: &str, param: &str| {
            json!({"type": "function", "function": {"name": name,
                "parameters": {"type": "object", "properties": {param: {"type": "string"}}}}})
        };
        spec(json!({"tools": [function("get_weather", "city"), function("get_time", "zone")]}))
    }

    /// The tool spec of a chat body.
    pub fn spec(body: Value) -> Arc<ToolSpec> {
        Arc::new(read_tool_spec(body.as_object().expect("a body")).expect("a valid body"))
    }

    /// A run read as the server reads a stream, up to where the answer
    /// ends: every event (the final ones too) and the whole answer.
    pub fn turn_events(stdout: &[u8], tools: Arc<ToolSpec>) -> (Vec<TurnEvent>, Answer) {
        let adapter = Adapter::new("chatcmpl-x".into(), 1, "x".into(), true).with_tools(tools);
        read_with(adapter, stdout)
    }

    /// [`turn_events`] for a client that asked to see the thinking.
    pub fn thinking_events(stdout: &[u8]) -> (Vec<TurnEvent>, Answer) {
        let adapter = Adapter::new("chatcmpl-x".into(), 1, "x".into(), true).showing_thinking();
        read_with(adapter, stdout)
    }

    fn read_with(mut adapter: Adapter, stdout: &[u8]) -> (Vec<TurnEvent>, Answer) {
        let mut events = Vec::new();
        for line in stdout.split(|&b| b == b'\n') {
            if adapter.over() {
                break;
            }
            if let Step::Events(more) = adapter.push_line(line) {
                events.extend(more);
            }
        }
        let Outcome::Success {
            final_events,
            answer,
            ..
        } = adapter.finish()
        else {
            panic!("the recording answers");
        };
        events.extend(final_events);
        (events, answer)
    }
}
