//! Shared state of one running server: settings, both backends, the key
//! ring, the limiters and the drain flag. Built once at start, then only
//! read (its parts keep their own locks).

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use serde_json::json;

use crate::auth::KeyRing;
use crate::backend::Backend;
use crate::claude::pool::Capacity;
use crate::claude::ClaudeBackend;
use crate::config::{mask_key, Config, Secret};
use crate::error::ApiError;
use crate::http::pipeline::Meta;
use crate::http::Incoming;
use crate::passthrough::Passthrough;
use crate::ratelimit::{self, LimitInfo, RateLimiter};
use crate::router::Mode;

pub struct App {
    pub config: Config,
    /// Set on SIGTERM/SIGINT: new work is refused from then on.
    pub draining: AtomicBool,
    /// Requests handed to workers and not finished yet.
    pub inflight: AtomicUsize,
    pub keys: KeyRing,
    pub passthrough: Passthrough,
    pub claude: ClaudeBackend,
    pub limiter: RateLimiter,
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        let passthrough = Passthrough::new(&config);
        let claude = ClaudeBackend::new(&config)?;
        Ok(Arc::new(App {
            keys: KeyRing::new(&config.api_keys),
            limiter: RateLimiter::new(&config),
            passthrough,
            claude,
            draining: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            config,
        }))
    }

    pub fn backend(&self, mode: Mode) -> &dyn Backend {
        match mode {
            Mode::Passthrough => &self.passthrough,
            Mode::ClaudeCode => &self.claude,
        }
    }

    pub fn capacity(&self) -> Capacity {
        self.claude.capacity()
    }

    /// Authenticates the request; failures are audited at warn level with
    /// the client address and a masked key, never the key itself.
    pub fn check_auth(&self, rq: &Incoming, meta: &mut Meta) -> Result<Option<Secret>, ApiError> {
        match self.keys.check(rq.header("Authorization")) {
            Ok(key) => {
                meta.key_mask = key.as_ref().map(Secret::masked);
                Ok(key)
            }
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
                Err(failure.error)
            }
        }
    }

    /// The per-IP request rate. It runs before auth, so that a client
    /// guessing keys is throttled too and every answer of a limited route,
    /// refusals included, carries the `X-RateLimit-*` headers.
    pub fn admit(&self, rq: &Incoming, meta: &mut Meta) -> Result<(), ApiError> {
        match self.limiter.check_ip(rq.client_ip) {
            Ok(info) => {
                meta.limit_headers = info.headers();
                Ok(())
            }
            Err(err) => {
                if let Some(secs) = ratelimit::retry_after(&err) {
                    meta.limit_headers =
                        LimitInfo::exhausted(self.limiter.ip_limit(), secs).headers();
                }
                let presented = rq
                    .header("Authorization")
                    .map(|v| v.trim().rsplit(' ').next().unwrap_or(""))
                    .map(mask_key);
                audit_rate_limited(rq, &err, presented);
                Err(err)
            }
        }
    }

    /// The per-key concurrency cap, after auth. The slot is held by a guard
    /// that `on_finish` drops once the answer is complete; if the request
    /// dies some other way, dropping `meta` frees it all the same.
    pub fn admit_key(&self, rq: &Incoming, meta: &mut Meta) -> Result<(), ApiError> {
        let Some(key) = &rq.api_key else {
            return Ok(());
        };
        match self.limiter.acquire_key(key) {
            Ok(Some(slot)) => {
                meta.on_finish.push(Box::new(move || drop(slot)));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(err) => {
                audit_rate_limited(rq, &err, Some(key.masked()));
                Err(err)
            }
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
