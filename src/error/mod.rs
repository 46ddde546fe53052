//! The one error type every handler returns, and the only place an error
//! body is rendered. Each variant maps to a status, an OpenAI `type`, a
//! `code` and an optional `param`; the message is what a client reads, so it
//! says how to fix the problem and never carries paths, keys or upstream
//! internals.

use serde_json::json;

/// Every error this server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// A required body field (`model`, `messages`) is absent.
    MissingRequiredParameter { param: &'static str },
    /// A field is present but its value is unusable.
    InvalidValue { param: String, message: String },
    /// A parameter the Claude backend cannot honour (tools, n>1, ...).
    UnsupportedParameter { param: String, message: String },
    /// The body is not JSON, or not a JSON object.
    InvalidJson { detail: String },
    /// Claude mode got a model name it cannot map.
    ModelNotFound {
        model: String,
        valid: Vec<&'static str>,
    },
    /// Keys are configured and the request carries no `Authorization`.
    MissingApiKey,
    /// `Authorization` is present but malformed or not a configured key.
    InvalidApiKey { hint: &'static str },
    /// The claude CLI's own credentials were refused by Anthropic.
    BackendAuthFailed,
    /// Another request is running on this session.
    SessionBusy,
    /// `DELETE /v1/sessions/{id}` of a session with a turn in progress (or
    /// waiting for tool results): 409, not deleted.
    SessionInUse,
    /// A per-IP, per-key or per-session limit was hit.
    RateLimitExceeded {
        retry_after_secs: u64,
        scope: &'static str,
    },
    /// The Claude subscription's allowance is spent: `window` (as the CLI
    /// names it, `five_hour`, ...) resets at `resets_at` (Unix seconds).
    /// `elsewhere`: another login (`CLAUDE_ACCOUNTS`) has allowance left,
    /// and the session's next turn moves there.
    UsageLimitReached {
        window: String,
        resets_at: u64,
        elsewhere: bool,
    },
    /// No free CLI process slot within the queue timeout.
    CapacityExceeded { retry_after_secs: u64 },
    /// Passthrough has no OpenAI key from any allowed source.
    PassthroughNotConfigured,
    /// `OPENAI_PASSTHROUGH_ENABLED=false`.
    PassthroughDisabled,
    /// The claude CLI cannot be started (not installed, not executable).
    BackendUnavailable { reason: String },
    /// The CLI crashed or produced something we cannot use.
    InternalError { message: String },
    /// The Anthropic API (through the CLI) failed with a 5xx/529.
    BackendError { message: String },
    /// The conversation no longer fits the model's context.
    ContextLengthExceeded { message: String },
    /// The passthrough upstream cannot be reached.
    UpstreamUnreachable,
    /// A child or the upstream took longer than allowed.
    Timeout { what: &'static str },
    /// The CLI wrote more than the output limits allow.
    OutputLimitExceeded,
    /// `X-Claude-Code` (or another header) has a value we do not accept.
    InvalidHeaderValue {
        header: &'static str,
        message: String,
    },
    /// `X-Claude-Session-ID` is not a UUID v4.
    InvalidSessionId,
    /// The session is unknown, expired, or belongs to another key.
    SessionNotFound { id: String },
    /// Body larger than the limit.
    /// Body larger than the limit `setting` sets.
    PayloadTooLarge { limit: usize, setting: &'static str },
    /// POST without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// No such route.
    NotFound { path: String },
    /// Route exists, method does not.
    MethodNotAllowed { allow: &'static str },
    /// The server is draining after SIGTERM/SIGINT.
    ServerShuttingDown,
    /// The request body could not be read in time or at all.
    RequestTimeout,
    /// The client closed its connection before its answer was ready: said
    /// to nobody, but logged and counted as what it is (nginx's 499).
    ClientGone,
    /// A content part Claude Code mode cannot pass on (an image by URL,
    /// audio, a file).
    UnsupportedContent { param: String, message: String },
    /// `/claude/v1/models/{id}` for a model Claude Code mode does not serve.
    UnknownModel { id: String },
    /// A relayed path with a `.`/`..`/empty segment, a backslash, or an
    /// encoded dot or slash.
    InvalidPath,
    /// A `tool` message answers a call nothing is waiting for.
    InvalidToolCallId { id: String },
    /// A `tool` message answers a call that waited too long and was
    /// answered with an error meanwhile.
    ToolCallExpired { id: String },
    /// `previous_response_id` names no response this key may continue.
    PreviousResponseNotFound { id: String },
    /// `GET /v1/responses/{id}` for no response this key may read.
    ResponseNotFound { id: String },
    /// `POST /v1/messages/count_tokens`: the CLI cannot count without a turn.
    TokenCountingUnsupported,
    /// `thread.previous_message_id` names no message this key may continue.
    PreviousMessageNotFound { id: String },
    /// `thread.previous_message_id` names an answer whose thread went on
    /// since: continuing it would skip what came after.
    ThreadAlreadyContinued { id: String },
    /// An error of the chat turn told in the words of the API that was
    /// called: its own field (`input[3]`, not `messages[4]`) and message;
    /// status and code stay the inner error's.
    Reworded {
        inner: Box<ApiError>,
        param: Option<String>,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            MissingRequiredParameter { .. }
            | InvalidValue { .. }
            | UnsupportedParameter { .. }
            | InvalidJson { .. }
            | ModelNotFound { .. }
            | InvalidHeaderValue { .. }
            | InvalidSessionId
            | ContextLengthExceeded { .. }
            | UnsupportedContent { .. }
            | InvalidToolCallId { .. }
            | ToolCallExpired { .. }
            | TokenCountingUnsupported
            | InvalidPath => 400,
            MissingApiKey | InvalidApiKey { .. } | BackendAuthFailed => 401,
            SessionNotFound { .. }
            | NotFound { .. }
            | UnknownModel { .. }
            | PreviousResponseNotFound { .. }
            | PreviousMessageNotFound { .. }
            | ResponseNotFound { .. } => 404,
            MethodNotAllowed { .. } => 405,
            SessionInUse | ThreadAlreadyContinued { .. } => 409,
            RequestTimeout => 408,
            ClientGone => 499,
            PayloadTooLarge { .. } => 413,
            UnsupportedMediaType => 415,
            SessionBusy
            | RateLimitExceeded { .. }
            | UsageLimitReached { .. }
            | CapacityExceeded { .. } => 429,
            InternalError { .. } => 500,
            BackendError { .. } | UpstreamUnreachable | OutputLimitExceeded => 502,
            PassthroughNotConfigured
            | PassthroughDisabled
            | BackendUnavailable { .. }
            | ServerShuttingDown => 503,
            Timeout { .. } => 504,
            Reworded { inner, .. } => inner.status(),
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            401 => "authentication_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingRequiredParameter { .. } => "missing_required_parameter",
            InvalidValue { .. } => "invalid_value",
            UnsupportedParameter { .. } => "unsupported_parameter",
            InvalidJson { .. } => "invalid_json",
            ModelNotFound { .. } => "model_not_found",
            MissingApiKey => "missing_api_key",
            InvalidApiKey { .. } => "invalid_api_key",
            BackendAuthFailed => "backend_auth_failed",
            SessionBusy | SessionInUse => "session_busy",
            RateLimitExceeded { .. } => "rate_limit_exceeded",
            UsageLimitReached { .. } => "usage_limit_reached",
            CapacityExceeded { .. } => "capacity_exceeded",
            PassthroughNotConfigured => "passthrough_not_configured",
            PassthroughDisabled => "passthrough_disabled",
            BackendUnavailable { .. } => "backend_unavailable",
            InternalError { .. } => "internal_error",
            BackendError { .. } => "backend_error",
            ContextLengthExceeded { .. } => "context_length_exceeded",
            UpstreamUnreachable => "upstream_unreachable",
            Timeout { .. } => "timeout",
            OutputLimitExceeded => "output_limit_exceeded",
            InvalidHeaderValue { .. } => "invalid_header_value",
            InvalidSessionId => "invalid_session_id",
            SessionNotFound { .. } => "session_not_found",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            NotFound { .. } => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            ServerShuttingDown => "server_shutting_down",
            RequestTimeout => "request_timeout",
            ClientGone => "client_closed_request",
            UnsupportedContent { .. } => "unsupported_content",
            InvalidToolCallId { .. } => "invalid_tool_call_id",
            InvalidPath => "invalid_path",
            UnknownModel { .. } => "model_not_found",
            ToolCallExpired { .. } => "tool_call_expired",
            PreviousResponseNotFound { .. } => "previous_response_not_found",
            ResponseNotFound { .. } => "response_not_found",
            TokenCountingUnsupported => "not_supported",
            PreviousMessageNotFound { .. } => "previous_message_not_found",
            ThreadAlreadyContinued { .. } => "thread_already_continued",
            Reworded { inner, .. } => inner.code(),
        }
    }

    pub fn param(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            MissingRequiredParameter { param } => Some(param),
            InvalidValue { param, .. }
            | UnsupportedParameter { param, .. }
            | UnsupportedContent { param, .. } => Some(param),
            InvalidToolCallId { .. } | ToolCallExpired { .. } => Some("messages"),
            ModelNotFound { .. } | UnknownModel { .. } => Some("model"),
            InvalidHeaderValue { header, .. } => Some(header),
            InvalidSessionId | SessionNotFound { .. } => Some("X-Claude-Session-ID"),
            ContextLengthExceeded { .. } => Some("messages"),
            PreviousResponseNotFound { .. } => Some("previous_response_id"),
            PreviousMessageNotFound { .. } | ThreadAlreadyContinued { .. } => {
                Some("thread.previous_message_id")
            }
            Reworded { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            MissingRequiredParameter { param } => {
                format!("Missing required parameter: '{param}'.")
            }
            InvalidValue { message, .. }
            | UnsupportedParameter { message, .. }
            | UnsupportedContent { message, .. } => message.clone(),
            InvalidJson { detail } => {
                format!("The request body is not valid JSON ({detail}). Send a JSON object.")
            }
            ModelNotFound { model, valid } => format!(
                "The model '{model}' is not available in Claude Code mode. Use one of: {}.",
                valid.join(", ")
            ),
            MissingApiKey => "Missing API key. Send 'Authorization: Bearer sk-cca-...'.".into(),
            InvalidApiKey { hint } => format!("Invalid API key. {hint}"),
            BackendAuthFailed => "The claude CLI could not authenticate with Anthropic. \
                 Check ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or the `claude auth login` \
                 credentials on the server."
                .into(),
            SessionBusy => "Session is busy with another request. Wait for it to finish \
                 or start a new session."
                .into(),
            SessionInUse => "Session has a turn in progress or waiting for tool results, \
                 and was not deleted. Delete it once that turn has ended."
                .into(),
            RateLimitExceeded {
                retry_after_secs,
                scope,
            } => {
                format!("Rate limit exceeded ({scope}). Retry after {retry_after_secs} second(s).")
            }
            CapacityExceeded { retry_after_secs } => format!(
                "All Claude Code processes are busy. Retry after {retry_after_secs} second(s)."
            ),
            UsageLimitReached {
                window, elsewhere, ..
            } if *elsewhere => format!(
                "The Claude subscription's {window} limit is reached on this session's \
                 account; its next turn moves to an account with allowance left. Send the \
                 turn again."
            ),
            UsageLimitReached {
                window, resets_at, ..
            } => {
                let window = if window.is_empty() {
                    "usage"
                } else {
                    window.as_str()
                };
                format!(
                    "The Claude subscription's {window} limit is reached; it resets at {} \
                     (Retry-After says how long that is). New turns are refused until then.",
                    crate::allowance::iso8601(*resets_at)
                )
            }
            PassthroughNotConfigured => "OpenAI passthrough is not configured. Set \
                 OPENAI_API_KEY on the server or send an X-OpenAI-API-Key header."
                .into(),
            PassthroughDisabled => "OpenAI passthrough is disabled on this server \
                 (OPENAI_PASSTHROUGH_ENABLED=false). Send 'X-Claude-Code: true' to use \
                 Claude Code mode."
                .into(),
            BackendUnavailable { reason } => {
                format!("Claude Code backend is unavailable: {reason}")
            }
            InternalError { message } => message.clone(),
            BackendError { message } => message.clone(),
            ContextLengthExceeded { message } => message.clone(),
            UpstreamUnreachable => {
                "The OpenAI upstream could not be reached. Try again later.".into()
            }
            Timeout { what } => format!("The {what} did not finish in time."),
            OutputLimitExceeded => {
                "The claude CLI produced more output than this server allows.".into()
            }
            InvalidHeaderValue { message, .. } => message.clone(),
            InvalidSessionId => "Invalid X-Claude-Session-ID: expected a UUID v4 such as \
                 '3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c'."
                .into(),
            SessionNotFound { id } => format!(
                "Session {id} not found. It may have expired or belong to another key. Start \
                 a new session by omitting X-Claude-Session-ID, or send the whole conversation \
                 in messages."
            ),
            PayloadTooLarge { limit, setting } => {
                format!(
                    "Request body too large: the limit is {limit} bytes ({setting} on the server)."
                )
            }
            UnsupportedMediaType => "Content-Type must be application/json.".into(),
            NotFound { path } => format!(
                "No route for '{path}'. Available: POST /v1/chat/completions, GET /v1/models, \
                 GET /health."
            ),
            MethodNotAllowed { allow } => {
                format!("Method not allowed for this route. Allowed: {allow}.")
            }
            ServerShuttingDown => {
                "The server is shutting down. Retry against another instance.".into()
            }
            RequestTimeout => "The request was not received in time.".into(),
            ClientGone => "The client closed the connection before the answer was ready.".into(),
            UnknownModel { id } => format!(
                "The model '{id}' is not one Claude Code mode serves. GET /claude/v1/models \
                 lists them."
            ),
            InvalidPath => "The path has a '.' or '..' segment, an empty one, a backslash, or \
                 an encoded dot or slash; such paths are not relayed."
                .into(),
            InvalidToolCallId { id } => format!(
                "No tool call '{id}' is waiting for a result. Send tool results only for the \
                 tool_calls of this server's latest answer, with the same key."
            ),
            ToolCallExpired { id } => format!(
                "Tool call '{id}' waited too long for its result (TOOL_RESULT_TIMEOUT_MS on \
                 the server) and was answered with an error. Send the conversation again as \
                 a new user message."
            ),
            PreviousResponseNotFound { id } => format!(
                "Previous response with id '{id}' not found. It may have been created with \
                 store: false, belong to another key, or its session may have expired; send \
                 the whole conversation in 'input' instead."
            ),
            TokenCountingUnsupported => "Token counting is not supported by this server: the \
                 claude CLI cannot count a request's tokens without answering it. Each answer's \
                 'usage' gives its counts."
                .into(),
            PreviousMessageNotFound { id } => format!(
                "Previous message with id '{id}' not found. It may belong to another key, or \
                 its session may have expired; send the whole conversation in 'messages' \
                 instead."
            ),
            ThreadAlreadyContinued { id } => format!(
                "Message '{id}' was continued already: its thread has gone on since. Continue \
                 from the thread's latest message, or send the whole conversation in \
                 'messages'."
            ),
            Reworded { message, .. } => message.clone(),
            ResponseNotFound { id } => format!(
                "Response with id '{id}' not found. Responses are kept for their owner while \
                 their session lives, and never with store: false."
            ),
        }
    }

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

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.status())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests;
