//! The lines of `claude -p --output-format stream-json --verbose
//! --include-partial-messages`, as far as this server reads them. Every
//! field is optional and unknown types and fields are ignored: the CLI adds
//! fields between versions, and a line we do not understand must not fail a
//! request. See `fixtures/claude-cli-2.1.331/` for real output.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// `init`, `status`, `api_retry`, `thinking_tokens`, ...
    System(SystemLine),
    /// One Anthropic streaming event, wrapped.
    StreamEvent(StreamEventLine),
    /// Always the last line of a run.
    Result(ResultLine),
    /// `assistant` (a whole message, repeated after its deltas), `user`
    /// (the CLI's own continuation turn) and anything newer.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct SystemLine {
    pub subtype: Option<String>,
    /// HTTP status of the failed attempt, on `api_retry`.
    pub error_status: Option<u16>,
    pub attempt: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct StreamEventLine {
    pub event: Event,
    /// Set for a sub-agent's events; those are not the answer.
    #[serde(default)]
    pub parent_tool_use_id: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageStart {},
    ContentBlockDelta {
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
    },
    /// `content_block_start`, `content_block_stop`, `message_stop`, `ping`, ...
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// `thinking_delta`, `signature_delta`, `input_json_delta`, ...: never
    /// answer text.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct MessageDeltaBody {
    pub stop_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ResultLine {
    pub subtype: Option<String>,
    pub is_error: Option<bool>,
    pub result: Option<String>,
    pub session_id: Option<String>,
    pub stop_reason: Option<String>,
    pub terminal_reason: Option<String>,
    pub api_error_status: Option<u16>,
    pub api_error_type: Option<String>,
    pub usage: Option<Usage>,
}

impl ResultLine {
    /// `is_error`, or an `error_*` subtype (max turns, execution error).
    pub fn failed(&self) -> bool {
        self.is_error == Some(true)
            || self
                .subtype
                .as_deref()
                .is_some_and(|s| s.starts_with("error"))
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    /// Everything the model read counts as prompt: cached or not, it is input.
    pub fn prompt_tokens(&self) -> u64 {
        [
            self.input_tokens,
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
        ]
        .iter()
        .map(|n| n.unwrap_or(0))
        .fold(0u64, u64::saturating_add)
    }

    pub fn completion_tokens(&self) -> u64 {
        self.output_tokens.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_fields_and_nulls_are_tolerated() {
        let line: Line = serde_json::from_str(r#"{"type":"assistant","message":{}}"#).unwrap();
        assert!(matches!(line, Line::Other));
        let line: Line = serde_json::from_str(r#"{"type":"brand_new","x":1}"#).unwrap();
        assert!(matches!(line, Line::Other));
        let line: Line = serde_json::from_str(
            r#"{"type":"stream_event","event":{"type":"ping"},"parent_tool_use_id":null}"#,
        )
        .unwrap();
        assert!(matches!(
            line,
            Line::StreamEvent(StreamEventLine {
                event: Event::Other,
                ..
            })
        ));
        let line: Line = serde_json::from_str(
            r#"{"type":"result","api_error_status":null,"usage":{"input_tokens":3,"service_tier":"x"}}"#,
        )
        .unwrap();
        let Line::Result(r) = line else { panic!() };
        assert_eq!(r.usage.unwrap().prompt_tokens(), 3);
        assert!(!r.failed());
    }
}
