//! Reading a JSON request body as every API here does: the body is one
//! object, a field set to `null` counts as not sent, and a value that
//! cannot be used is an error naming the field.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request body that must be a JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson {
        detail: format!("line {} column {}", e.line(), e.column()),
    })?;
    match parsed {
        Value::Object(json) => Ok(json),
        _ => Err(ApiError::InvalidJson {
            detail: "the top level must be an object".into(),
        }),
    }
}

/// A field counts as sent only when it is there and not `null`.
pub fn present<'a>(json: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    json.get(key).filter(|v| !v.is_null())
}

/// `param` has a value that cannot be used (400 `invalid_value`).
pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidValue {
        param: param.to_string(),
        message: message.into(),
    }
}

/// `param` asks for what Claude Code mode cannot do (400
/// `unsupported_parameter`).
pub fn unsupported(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::UnsupportedParameter {
        param: param.to_string(),
        message: message.into(),
    }
}

/// Client text echoed in an error message, kept short.
pub fn shorten(s: &str) -> String {
    shorten_to(s, 40)
}

/// `s` cut after `max` characters, marked with `...` when it was.
pub fn shorten_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}
