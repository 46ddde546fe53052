//! An error as it goes out: the headers it needs besides the common ones,
//! and its body in OpenAI's shape or, for the Messages API, Anthropic's.

use serde_json::json;

use super::ApiError;

impl ApiError {
    /// Headers an error response must carry besides the common ones.
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::RateLimitExceeded {
                retry_after_secs, ..
            }
            | ApiError::CapacityExceeded { retry_after_secs } => {
                vec![("Retry-After", retry_after_secs.to_string())]
            }
            ApiError::SessionBusy => vec![("Retry-After", "1".to_string())],
            ApiError::UsageLimitReached {
                elsewhere: true, ..
            } => vec![("Retry-After", "1".to_string())],
            ApiError::UsageLimitReached { resets_at, .. } => {
                let wait = resets_at.saturating_sub(crate::allowance::now_secs());
                let wait = wait + crate::allowance::RESET_MARGIN_SECS;
                vec![("Retry-After", wait.max(1).to_string())]
            }
            ApiError::MethodNotAllowed { allow } => vec![("Allow", allow.to_string())],
            ApiError::Reworded { inner, .. } => inner.extra_headers(),
            _ => Vec::new(),
        }
    }

    /// The `{"error":{...}}` body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message(),
                "type": self.kind(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }

    /// The error `type` Anthropic's SDKs know, by status.
    pub fn anthropic_kind(&self) -> &'static str {
        match self.status() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// The body in the Anthropic Messages API's shape. A thread this
    /// server does not know carries Anthropic's `error_code`, on which the
    /// SDK replays the whole conversation under a new thread.
    pub fn anthropic_body(&self) -> serde_json::Value {
        let mut error = json!({"type": self.anthropic_kind(), "message": self.message()});
        let code = match self {
            ApiError::PreviousMessageNotFound { .. } => Some("thread_not_found"),
            ApiError::ThreadAlreadyContinued { .. } => Some("thread_already_continued"),
            _ => None,
        };
        if let Some(code) = code {
            error["details"] = json!({ "error_code": code });
        }
        json!({"type": "error", "error": error})
    }
}
