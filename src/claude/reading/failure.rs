//! What a failed CLI run means for the client: the `ApiError` for a result
//! with `is_error`, or for a known complaint on stderr, and the sanitizing
//! that keeps the CLI's own words from leaking paths, addresses or keys.

use crate::claude::reading::redact::redact;
use crate::claude::reading::stream_json::ResultLine;
use crate::error::ApiError;

/// Longest CLI-provided text passed on to a client.
const MAX_DETAIL_CHARS: usize = 200;

/// Maps a failed `result` line by cause. The status is the Anthropic API's,
/// as the CLI saw it.
pub fn from_result(result: &ResultLine) -> ApiError {
    let text = result.result.as_deref().unwrap_or("");
    match result.api_error_status {
        Some(401 | 403) => ApiError::BackendAuthFailed,
        Some(400)
            if result.terminal_reason.as_deref() == Some("prompt_too_long")
                || text.to_ascii_lowercase().contains("prompt is too long") =>
        {
            ApiError::ContextLengthExceeded {
                message: format!(
                    "The conversation does not fit the model's context window ({}). Start a \
                     new session without X-Claude-Session-ID, or send fewer or shorter messages.",
                    sanitize_message(first_clause(text))
                ),
            }
        }
        // The subscription's allowance is spent: the engine adds the window
        // and its reset from the CLI's reports (see `allowance`).
        Some(429) if result.api_error.as_deref() == Some("usage_limit_reached") => {
            ApiError::UsageLimitReached {
                window: String::new(),
                resets_at: 0,
                elsewhere: false,
            }
        }
        Some(429) => ApiError::RateLimitExceeded {
            retry_after_secs: seconds_hint(text).unwrap_or(1),
            scope: "anthropic",
        },
        // 529 (overloaded) is within the 5xx range.
        Some(status @ 500..=599) => ApiError::BackendError {
            message: format!(
                "The Anthropic API failed with status {status}{}. This is usually temporary; \
                 retry in a moment.",
                error_type(result)
            ),
        },
        // No credentials at all: the CLI refuses before calling the API.
        None if text.to_ascii_lowercase().contains("not logged in") => ApiError::BackendAuthFailed,
        _ => ApiError::InternalError {
            message: if text.trim().is_empty() {
                "The claude CLI failed without saying why.".into()
            } else {
                format!("The claude CLI failed: {}", sanitize_message(text))
            },
        },
    }
}

/// Resume and session-id failures the CLI reports only on stderr (exit 1,
/// no result line).
pub fn failure_from_stderr(stderr: &str, session_id: &str) -> Option<ApiError> {
    if stderr.contains("No conversation found with session ID") {
        Some(ApiError::SessionNotFound {
            id: session_id.to_string(),
        })
    } else if stderr.contains("is already in use") {
        Some(ApiError::SessionBusy)
    } else if let Some(at) = stderr.find("--json-schema is not") {
        // "--json-schema is not valid JSON: ..." / "... not a valid JSON
        // Schema: ..." (fixtures/claude-cli-2.1.331/structured-bad-schema-*).
        let line = stderr[at..].lines().next().unwrap_or("");
        let detail = line.split_once(": ").map_or(line, |(_, d)| d);
        Some(ApiError::InvalidValue {
            param: "response_format.json_schema.schema".into(),
            message: format!(
                "The claude CLI refused the response format's schema: {}",
                sanitize_message(detail)
            ),
        })
    } else {
        None
    }
}

/// CLI text made fit for a client: keys redacted, absolute paths, URLs,
/// `host:port` and IP addresses, `NAME=value` assignments and long opaque
/// tokens replaced, whitespace collapsed, and at most 200 characters.
pub fn sanitize_message(s: &str) -> String {
    let cleaned: Vec<String> = redact(s).split_whitespace().map(sanitize_word).collect();
    let joined = cleaned.join(" ");
    match joined.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn sanitize_word(word: &str) -> String {
    const LEAD: &[char] = &['(', '[', '{', '<', '\'', '"', '`'];
    const TRAIL: &[char] = &[
        ')', ']', '}', '>', '\'', '"', '`', '.', ',', ';', ':', '!', '?',
    ];
    let core = word.trim_start_matches(LEAD);
    let lead = &word[..word.len() - core.len()];
    let trimmed = core.trim_end_matches(TRAIL);
    let trail = &core[trimmed.len()..];
    match classify(trimmed) {
        Some(replacement) => format!("{lead}{replacement}{trail}"),
        None => word.to_string(),
    }
}

fn classify(core: &str) -> Option<&'static str> {
    if core.is_empty() || core == "[REDACTED]" {
        return None;
    }
    if core.contains("://") || is_host_port(core) || is_ipv4(core) {
        return Some("[address]");
    }
    let b = core.as_bytes();
    let windows_path = b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\';
    if (core.starts_with('/') && core.len() > 1) || core.starts_with("~/") || windows_path {
        return Some("[path]");
    }
    if is_assignment(core) || is_opaque_token(core) {
        return Some("[redacted]");
    }
    None
}

fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let bracketed = host.starts_with('[');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // `3:2` or `10:30` is a ratio or a time, not an address.
    let named = bracketed || host.bytes().any(|b| b == b'.' || b.is_ascii_alphabetic());
    named
        && (2..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_assignment(s: &str) -> bool {
    let Some((name, _)) = s.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// 32+ characters of key alphabet mixing letters and digits, except a UUID
/// (session ids are the client's own and harmless).
fn is_opaque_token(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 32
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_+/=.".contains(c))
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
        && !is_uuid(s)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Prompt is too long · the request is ~250000 tokens (limit 200000) but …`
/// → the part before the CLI's advice, which is about its own tools.
fn first_clause(text: &str) -> &str {
    [" but ", " — ", ". "]
        .iter()
        .filter_map(|sep| text.find(sep))
        .min()
        .map_or(text, |at| &text[..at])
}

/// `... retry in 30 seconds`, `retry after 12s` → a wait in seconds.
fn seconds_hint(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let after = lower[i + digits..].trim_start();
        let unit_ok = ["seconds", "second", "secs", "sec", "s"]
            .iter()
            .any(|unit| {
                after.starts_with(unit)
                    && !after[unit.len()..]
                        .bytes()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
            });
        if unit_ok {
            if let Ok(n) = lower[i..i + digits].parse::<u64>() {
                return Some(n.clamp(1, 3600));
            }
        }
        i += digits;
    }
    None
}

/// ` (overloaded_error)` when the CLI named the error type plainly.
fn error_type(result: &ResultLine) -> String {
    match result.api_error_type.as_deref() {
        Some(t)
            if !t.is_empty()
                && t.len() <= 40
                && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            format!(" ({t})")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: Option<u16>, terminal: &str, text: &str) -> ResultLine {
        ResultLine {
            is_error: Some(true),
            result: Some(text.into()),
            terminal_reason: Some(terminal.into()),
            api_error_status: status,
            ..ResultLine::default()
        }
    }

    #[test]
    fn failed_results_map_by_cause() {
        let rows: Vec<(ResultLine, u16, &str)> = vec![
            (
                failed(Some(401), "api_error", "Invalid API key"),
                401,
                "backend_auth_failed",
            ),
            (
                failed(Some(403), "api_error", "forbidden"),
                401,
                "backend_auth_failed",
            ),
            (
                failed(Some(400), "prompt_too_long", "Prompt is too long"),
                400,
                "context_length_exceeded",
            ),
            (
                failed(Some(400), "api_error", "bad request"),
                500,
                "internal_error",
            ),
            (
                failed(Some(429), "api_error", "slow down"),
                429,
                "rate_limit_exceeded",
            ),
            (failed(Some(500), "api_error", "boom"), 502, "backend_error"),
            (failed(Some(503), "api_error", "boom"), 502, "backend_error"),
            (
                failed(Some(529), "api_error", "Overloaded"),
                502,
                "backend_error",
            ),
            (
                failed(None, "max_turns", "Reached max turns"),
                500,
                "internal_error",
            ),
            (
                failed(Some(404), "api_error", "model: x"),
                500,
                "internal_error",
            ),
        ];
        for (result, status, code) in rows {
            let e = from_result(&result);
            assert_eq!((e.status(), e.code()), (status, code), "{result:?}");
        }
    }

    #[test]
    fn a_rate_limit_names_its_scope_and_a_wait() {
        let e = from_result(&failed(
            Some(429),
            "api_error",
            "Rate limited, retry in 30 seconds",
        ));
        assert_eq!(
            e,
            ApiError::RateLimitExceeded {
                retry_after_secs: 30,
                scope: "anthropic"
            }
        );
        let e = from_result(&failed(Some(429), "api_error", "429 Too Many Requests"));
        assert_eq!(e.extra_headers(), vec![("Retry-After", "1".to_string())]);
    }

    #[test]
    fn the_gateway_address_in_an_overload_message_does_not_reach_the_client() {
        let mut r = failed(
            Some(529),
            "api_error",
            "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try \
             again in a moment. If it persists, check your inference gateway (127.0.0.1:8080).",
        );
        r.api_error_type = Some("overloaded_error".into());
        let message = from_result(&r).message();
        assert!(
            message.contains("529") && message.contains("overloaded_error"),
            "{message}"
        );
        assert!(
            !message.contains("127.0.0.1") && !message.contains("8080"),
            "{message}"
        );
    }

    #[test]
    fn sanitizing_removes_paths_addresses_keys_and_assignments() {
        let raw = "Error at /home/app/.claude/projects/x.jsonl: connect to \
                   http://10.0.0.5:8443/v1 (gateway.internal:8080) failed; \
                   ANTHROPIC_API_KEY=sk-ant-api03-secretsecret123456789 and token \
                   AbCdEf0123456789AbCdEf0123456789xyz in ~/creds, 192.168.1.10. \
                   Session 3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c is fine.";
        let clean = sanitize_message(raw);
        for leak in [
            "/home/app",
            "10.0.0.5",
            "8443",
            "gateway.internal",
            "8080",
            "secretsecret",
            "ANTHROPIC_API_KEY",
            "AbCdEf0123456789",
            "~/creds",
            "192.168",
        ] {
            assert!(!clean.contains(leak), "{leak} in {clean}");
        }
        assert!(
            clean.contains("3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c"),
            "{clean}"
        );
        assert!(
            clean.contains("[path]:") && clean.contains("([address])"),
            "{clean}"
        );
        assert!(clean.chars().count() <= MAX_DETAIL_CHARS + 3);
    }

    #[test]
    fn sanitizing_keeps_ordinary_text_and_is_short() {
        assert_eq!(
            sanitize_message("Invalid API key · Fix external API key"),
            "Invalid API key · Fix external API key"
        );
        assert_eq!(sanitize_message("a\n\n  b\tc"), "a b c");
        assert_eq!(
            sanitize_message("ratio 3:2 at 10:30 ok"),
            "ratio 3:2 at 10:30 ok"
        );
        let long = sanitize_message(&"word ".repeat(100));
        assert!(long.ends_with("...") && long.chars().count() == MAX_DETAIL_CHARS + 3);
    }

    #[test]
    fn context_length_message_keeps_the_numbers_not_the_cli_advice() {
        let text = "Prompt is too long · the request is ~250000 tokens (limit 200000) but this \
                    conversation is only ~258 tokens — the rest is system prompt, tool \
                    definitions, and attachment content.";
        let message = from_result(&failed(Some(400), "prompt_too_long", text)).message();
        assert!(
            message.contains("~250000 tokens (limit 200000)"),
            "{message}"
        );
        assert!(!message.contains("tool definitions"), "{message}");
    }

    #[test]
    fn a_schema_the_cli_refuses_is_the_client_s_400() {
        for (file, words) in [
            (
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/fixtures/claude-cli-2.1.331/structured-bad-schema-badtype.stderr"
                )),
                "data/type must be equal to one of the allowed values",
            ),
            (
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/fixtures/claude-cli-2.1.331/structured-bad-schema-notjson.stderr"
                )),
                "JSON Parse error",
            ),
        ] {
            let error = failure_from_stderr(file, "x").unwrap();
            assert_eq!(error.status(), 400);
            assert_eq!(error.param(), Some("response_format.json_schema.schema"));
            assert!(error.message().contains(words), "{}", error.message());
        }
    }

    #[test]
    fn stderr_complaints_are_told_apart() {
        let id = "9f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b70";
        let missing = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/resume-missing.stderr"
        ));
        assert_eq!(
            failure_from_stderr(missing, id),
            Some(ApiError::SessionNotFound { id: id.into() })
        );
        let busy = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/session-in-use.stderr"
        ));
        assert_eq!(failure_from_stderr(busy, id), Some(ApiError::SessionBusy));
        let root = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/root-skip-perms.stderr"
        ));
        assert_eq!(failure_from_stderr(root, id), None);
        assert_eq!(failure_from_stderr("", id), None);
    }
}
