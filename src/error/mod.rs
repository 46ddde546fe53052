//! The one error type every handler returns, and the only place an error
//! body is rendered. Each variant maps to a status, an OpenAI `type`, a
//! `code` and an optional `param`; the message is what a client reads, so it
//! says how to fix the problem and never carries paths, keys or upstream
//! internals. The messages are `message`'s; the bodies and headers a
//! response carries, in OpenAI's or Anthropic's shape, are `wire`'s.

mod message;
mod wire;

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
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.status())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests;
