//! The lines of `claude -p --output-format stream-json --verbose
//! --include-partial-messages`, as far as this server reads them. Every
//! field is optional and unknown types and fields are ignored: the CLI adds
//! fields between versions, and a line we do not understand must not fail a
//! request. See `fixtures/claude-cli-2.1.331/` for real output.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::Deserialize;

use crate::turn_event::TokenCounts;

#[derive(Debug)]
pub enum Line {
    /// `init`, `status`, `api_retry`, `thinking_tokens`, ...
    System(SystemLine),
    /// One Anthropic streaming event, wrapped.
    StreamEvent(StreamEventLine),
    /// Always the last line of a run.
    Result(ResultLine),
    /// The login's subscription allowance, when it changed.
    RateLimit(RateLimitLine),
    /// `assistant` (a whole message, repeated after its deltas), `user`
    /// (the CLI's own continuation turn) and anything newer.
    Other,
}

/// Only the `type` of a line; every other field is skipped unread.
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

impl Line {
    /// Reads one line, deciding by its `type` which struct to read it into.
    /// The CLI writes `type` as the first key, so the type is normally
    /// taken from the line's first bytes and the line read once (or not at
    /// all for the types this server ignores, the largest: the init line's
    /// tool list, the whole `assistant` message). Any other layout is read
    /// twice, type first. serde's tagged enums would instead copy every
    /// line into a generic tree first.
    pub fn parse(bytes: &[u8]) -> serde_json::Result<Line> {
        match leading_type(bytes) {
            Some(kind) => Line::of_kind(kind, bytes),
            None => {
                let tag: Tag = serde_json::from_slice(bytes)?;
                match tag.kind {
                    Some(kind) => Line::of_kind(kind.as_bytes(), bytes),
                    None => Err(serde_json::Error::custom("a line without a type")),
                }
            }
        }
    }

    fn of_kind(kind: &[u8], bytes: &[u8]) -> serde_json::Result<Line> {
        match kind {
            b"system" => serde_json::from_slice(bytes).map(Line::System),
            b"stream_event" => serde_json::from_slice(bytes).map(Line::StreamEvent),
            b"result" => serde_json::from_slice(bytes).map(Line::Result),
            b"rate_limit_event" => serde_json::from_slice(bytes).map(Line::RateLimit),
            _ => Ok(Line::Other),
        }
    }
}

/// The value of a `"type"` key written first, when it has no escapes.
fn leading_type(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(br#"{"type":""#)?;
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    (rest[end] == b'"').then(|| &rest[..end])
}

#[derive(Debug, Default, Deserialize)]
pub struct SystemLine {
    pub subtype: Option<String>,
    /// On `compact_boundary`: the conversation's size before and after.
    pub compact_metadata: Option<CompactMetadata>,
    /// HTTP status of the failed attempt, on `api_retry`.
    pub error_status: Option<u16>,
    pub attempt: Option<u64>,
}

/// `rate_limit_event`: the API's `anthropic-ratelimit-unified-*` figures,
/// read by `allowance` as they come.
#[derive(Debug, Deserialize)]
pub struct RateLimitLine {
    #[serde(default)]
    pub rate_limit_info: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct CompactMetadata {
    pub post_tokens: Option<u64>,
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
    MessageStart {
        #[serde(default)]
        message: Option<StartedMessage>,
    },
    ContentBlockStart {
        index: u64,
        content_block: BlockStart,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: u64,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop {},
    /// `content_block_stop`, `ping`, ...
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct StartedMessage {
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockStart {
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {},
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    /// `text`, ...
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A piece of a tool call's arguments (JSON text).
    InputJsonDelta {
        partial_json: String,
    },
    /// A piece of the model's thinking: never answer text.
    ThinkingDelta {
        thinking: String,
    },
    /// The signature that ends a thinking block.
    SignatureDelta {
        signature: String,
    },
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
    /// `usage_limit_reached` when the subscription's allowance refused it.
    pub api_error: Option<String>,
    pub usage: Option<Usage>,
    /// A running total for the session, not this turn's cost.
    pub total_cost_usd: Option<f64>,
    /// This turn's time in the CLI.
    pub duration_ms: Option<u64>,
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
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct OutputDetails {
    pub thinking_tokens: Option<u64>,
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

/// The counts a turn reports, from the CLI's usage.
impl From<&Usage> for TokenCounts {
    fn from(usage: &Usage) -> TokenCounts {
        TokenCounts {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
            cache_read: usage.cache_read_input_tokens.unwrap_or(0),
            cache_creation: usage.cache_creation_input_tokens.unwrap_or(0),
            reasoning: usage
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_fields_and_nulls_are_tolerated() {
        let line: Line = Line::parse(br#"{"type":"assistant","message":{}}"#).unwrap();
        assert!(matches!(line, Line::Other));
        let line = Line::parse(br#"{"type":"brand_new","x":1}"#).unwrap();
        assert!(matches!(line, Line::Other));
        let line = Line::parse(
            br#"{"type":"stream_event","event":{"type":"ping"},"parent_tool_use_id":null}"#,
        )
        .unwrap();
        assert!(matches!(
            line,
            Line::StreamEvent(StreamEventLine {
                event: Event::Other,
                ..
            })
        ));
        let line = Line::parse(
            br#"{"type":"result","api_error_status":null,"usage":{"input_tokens":3,"service_tier":"x"}}"#,
        )
        .unwrap();
        let Line::Result(r) = line else { panic!() };
        assert_eq!(r.usage.unwrap().prompt_tokens(), 3);
        assert!(!r.failed());
    }

    #[test]
    fn a_line_without_a_type_or_not_an_object_is_refused() {
        assert!(Line::parse(br#"{"subtype":"init"}"#).is_err());
        assert!(Line::parse(br#"["system"]"#).is_err());
        assert!(Line::parse(br#"{"type":"system","subtype":"init""#).is_err());
        for text in [
            r#"{"type":"system","subtype":"init"}"#,
            r#"{"session_id":"x","type":"system","subtype":"init"}"#,
            r#"{ "type" : "system", "subtype":"init"}"#,
            r#"{"type":"sys\u0074em","subtype":"init"}"#,
        ] {
            let line = Line::parse(text.as_bytes()).unwrap();
            assert!(
                matches!(&line, Line::System(SystemLine { subtype: Some(s), .. }) if s == "init"),
                "{text}: {line:?}"
            );
        }
    }
}
