//! Which backend a chat request goes to, from its headers.
//!
//! `X-Claude-Code: false` wins over everything (a client can force
//! passthrough even when a stale session header rides along), then
//! `X-Claude-Code: true`, then the mere presence of `X-Claude-Session-ID`;
//! with neither header the request goes to the OpenAI passthrough.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Passthrough,
    ClaudeCode,
}

impl Mode {
    /// The value of the `X-Backend-Mode` response header.
    pub fn header_value(self) -> &'static str {
        match self {
            Mode::Passthrough => "openai-passthrough",
            Mode::ClaudeCode => "claude-code",
        }
    }
}

/// Reads `X-Claude-Code` as a boolean; `None` when absent.
pub fn parse_flag(value: Option<&str>) -> Result<Option<bool>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(Some(true)),
        "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(ApiError::InvalidHeaderValue {
            header: "X-Claude-Code",
            message: "Invalid X-Claude-Code header value. Use true/1/yes or false/0/no.".into(),
        }),
    }
}

pub fn select(claude_code: Option<&str>, session_id: Option<&str>) -> Result<Mode, ApiError> {
    match parse_flag(claude_code)? {
        Some(false) => Ok(Mode::Passthrough),
        Some(true) => Ok(Mode::ClaudeCode),
        None if session_id.is_some() => Ok(Mode::ClaudeCode),
        None => Ok(Mode::Passthrough),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_table() {
        use Mode::*;
        let sid = Some("3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c");
        let cases = [
            (None, None, Passthrough),
            (None, sid, ClaudeCode),
            (Some("true"), None, ClaudeCode),
            (Some("true"), sid, ClaudeCode),
            (Some("false"), None, Passthrough),
            (Some("false"), sid, Passthrough),
            (Some("YES"), None, ClaudeCode),
            (Some("No"), sid, Passthrough),
            (Some("1"), None, ClaudeCode),
            (Some("0"), sid, Passthrough),
            (Some("True"), None, ClaudeCode),
            (Some("FALSE"), None, Passthrough),
        ];
        for (flag, session, want) in cases {
            assert_eq!(select(flag, session).unwrap(), want, "{flag:?} {session:?}");
        }
        for bad in ["maybe", "2", ""] {
            let err = select(Some(bad), sid).unwrap_err();
            assert_eq!(err.code(), "invalid_header_value");
        }
    }
}
