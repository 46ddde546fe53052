//! What a client reads of each error: a message that says what was wrong
//! and how to fix it, naming the field or limit, never a path, key or
//! upstream internal.

use super::ApiError;

impl ApiError {
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
}
