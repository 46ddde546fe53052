//! Who may have a limited route worked on, in order: the per-IP request
//! rate (before auth, so a client guessing keys is throttled too), the key,
//! then the per-key concurrency cap. Returns what it found; the pipeline
//! puts it in headers and the access log.
//!
//! A key at its concurrency cap is refused only once the body is read
//! ([`Admitted::over_key_limit`]): a request that brings tool results
//! carries on a turn that holds one of the key's slots already, and must
//! not be refused for it.

use serde_json::json;

use crate::app::App;
use crate::config::{mask_key, Secret};
use crate::error::ApiError;
use crate::http::Incoming;
use crate::ratelimit::{self, KeySlot};

/// A request let through.
pub struct Admitted {
    pub key: Option<Secret>,
    pub key_mask: Option<String>,
    /// The per-IP window's `X-RateLimit-*` headers.
    pub limit_headers: Vec<(String, String)>,
    /// The key's concurrency slot, held until the request's work is done.
    pub key_slot: Option<KeySlot>,
    /// The key has all its requests in flight: the refusal, unless the
    /// body turns out to carry tool results (see the module docs).
    pub over_key_limit: Option<ApiError>,
}

/// A request turned away, with what was known of it by then.
pub struct Refused {
    pub error: ApiError,
    pub key_mask: Option<String>,
    pub limit_headers: Vec<(String, String)>,
}

/// `x_api_key`: the route takes the key in `x-api-key` too (Anthropic's
/// SDKs send it there); never on relayed routes, whose headers go on to
/// the upstream.
pub fn admit(app: &App, rq: &Incoming, x_api_key: bool) -> Result<Admitted, Refused> {
    let x_api_key = x_api_key
        .then(|| rq.header("x-api-key"))
        .flatten()
        .map(|key| format!("Bearer {}", key.trim()));
    let authorization = rq.header("Authorization").or(x_api_key.as_deref());
    let refused = |error, key_mask, limit_headers| Refused {
        error,
        key_mask,
        limit_headers,
    };
    let limit_headers = match app.limiter.check_ip(rq.client_ip) {
        Ok(info) => info.headers(),
        Err(error) => {
            let presented = authorization
                .map(|v| v.trim().rsplit(' ').next().unwrap_or(""))
                .map(mask_key);
            audit_rate_limited(rq, &error, presented);
            return Err(refused(error, None, Vec::new()));
        }
    };
    let key = match app.keys.check(authorization) {
        Ok(key) => key,
        Err(mut failure) => {
            if rq.header("Authorization").is_none() && x_api_key.is_some() {
                failure.error = ApiError::InvalidApiKey {
                    hint: "Check the key sent in 'x-api-key'.",
                };
            }
            log::warn!(
                "{}",
                json!({
                    "event": "auth_failed",
                    "request_id": rq.request_id,
                    "client_ip": rq.client_ip.to_string(),
                    "key": failure.presented,
                    "code": failure.error.code(),
                })
            );
            return Err(refused(failure.error, None, limit_headers));
        }
    };
    let key_mask = key.as_ref().map(Secret::masked);
    let (key_slot, over_key_limit) = match &key {
        None => (None, None),
        Some(secret) => match app.limiter.acquire_key(secret) {
            Ok(slot) => (slot, None),
            Err(error) => (None, Some(error)),
        },
    };
    Ok(Admitted {
        key,
        key_mask,
        limit_headers,
        key_slot,
        over_key_limit,
    })
}

/// The body is read: a key over its concurrency cap is refused now, unless
/// the request carries tool results on (it then takes a slot past the cap).
pub fn settle_key_limit(
    app: &App,
    rq: &Incoming,
    over_limit: ApiError,
    carries_results: bool,
    key_mask: Option<String>,
) -> Result<Option<KeySlot>, ApiError> {
    match &rq.api_key {
        Some(key) if carries_results => Ok(app.limiter.key_holder().hold(key)),
        _ => {
            audit_rate_limited(rq, &over_limit, key_mask);
            Err(over_limit)
        }
    }
}

/// The audit line for a refused request: who, which limit, how long to wait.
fn audit_rate_limited(rq: &Incoming, err: &ApiError, key: Option<String>) {
    let scope = match err {
        ApiError::RateLimitExceeded { scope, .. } => *scope,
        _ => "unknown",
    };
    log::warn!(
        "{}",
        json!({
            "event": "rate_limited",
            "scope": scope,
            "client_ip": rq.client_ip.to_string(),
            "key": key,
            "request_id": rq.request_id,
            "retry_after": ratelimit::retry_after(err),
        })
    );
}
