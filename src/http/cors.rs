//! Cross-origin policy: which browser origins may call the API
//! (`CORS_ALLOWED_ORIGINS`, none by default) and the headers that say so.

const EXPOSED: &str = "X-Request-ID, X-Backend-Mode, X-Claude-Session-ID, \
X-Claude-Session-Created, X-Claude-Ignored-Params, X-RateLimit-Limit, \
X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, X-Claude-Code, \
X-Claude-Session-ID, X-OpenAI-API-Key, X-Request-ID, OpenAI-Organization, OpenAI-Project, \
x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access";

/// True when `origin` may read responses.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| a == "*" || a == origin)
}

/// Headers for a normal response to an allowed origin (empty otherwise).
pub fn response_headers(allowed: &[String], origin: Option<&str>) -> Vec<(String, String)> {
    match origin {
        Some(origin) if origin_allowed(allowed, origin) => vec![
            ("Access-Control-Allow-Origin".into(), origin.to_string()),
            ("Access-Control-Expose-Headers".into(), EXPOSED.into()),
            ("Vary".into(), "Origin".into()),
        ],
        _ => Vec::new(),
    }
}

/// Headers for a preflight (`OPTIONS`) answer. A denied origin gets none,
/// which is how a browser learns it may not call.
pub fn preflight_headers(allowed: &[String], origin: Option<&str>) -> Vec<(String, String)> {
    match origin {
        Some(origin) if origin_allowed(allowed, origin) => vec![
            ("Access-Control-Allow-Origin".into(), origin.to_string()),
            (
                "Access-Control-Allow-Methods".into(),
                "GET, POST, DELETE, OPTIONS".into(),
            ),
            (
                "Access-Control-Allow-Headers".into(),
                ALLOWED_HEADERS.into(),
            ),
            ("Access-Control-Max-Age".into(), "86400".into()),
            ("Vary".into(), "Origin".into()),
        ],
        _ => vec![("Vary".into(), "Origin".into())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins() {
        let allowed = vec!["https://app.example".to_string()];
        assert!(origin_allowed(&allowed, "https://app.example"));
        assert!(!origin_allowed(&allowed, "https://evil.example"));
        assert!(response_headers(&[], Some("https://app.example")).is_empty());
        assert!(origin_allowed(&["*".to_string()], "https://any"));
    }
}
