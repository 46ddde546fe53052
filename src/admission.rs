//! Who may have a limited route worked on, in order: the per-IP request
//! rate (before auth, so a client guessing keys is throttled too), the key,
//! then the per-key concurrency cap. Returns what it found; the pipeline
//! puts it in headers and the access log.

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
}

/// A request turned away, with what was known of it by then.
pub struct Refused {
    pub error: ApiError,
    pub key_mask: Option<String>,
    pub limit_headers: Vec<(String, String)>,
}

pub fn admit(app: &App, rq: &Incoming) -> Result<Admitted, Refused> {
    let refused = |error, key_mask, limit_headers| Refused {
        error,
        key_mask,
        limit_headers,
    };
    let limit_headers = match app.limiter.check_ip(rq.client_ip) {
        Ok(info) => info.headers(),
        Err(error) => {
            let presented = rq
                .header("Authorization")
                .map(|v| v.trim().rsplit(' ').next().unwrap_or(""))
                .map(mask_key);
            audit_rate_limited(rq, &error, presented);
            return Err(refused(error, None, Vec::new()));
        }
    };
    let key = match app.keys.check(rq.header("Authorization")) {
        Ok(key) => key,
        Err(failure) => {
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
    let key_slot = match &key {
        None => None,
        Some(secret) => match app.limiter.acquire_key(secret) {
            Ok(slot) => slot,
            Err(error) => {
                audit_rate_limited(rq, &error, key_mask.clone());
                return Err(refused(error, key_mask, limit_headers));
            }
        },
    };
    Ok(Admitted {
        key,
        key_mask,
        limit_headers,
        key_slot,
    })
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
