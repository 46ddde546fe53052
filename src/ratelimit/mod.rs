//! Request limits shared by both backends, held in memory: a sliding
//! window per client address, one per Claude session, and a cap on the
//! requests in flight per server key. This file holds [`RateLimiter`], which
//! ties the three together, and the `X-RateLimit-*` headers it reports.
//!
//! Headers: `X-RateLimit-Limit` and `X-RateLimit-Remaining` as usual, and
//! `X-RateLimit-Reset` as a Unix time in seconds (the GitHub convention,
//! as SECURITY_MODEL §6.3 shows it), the moment the next slot frees up.
//! IPv6 clients are counted per /64, the block one host usually controls,
//! so cycling addresses inside it does not escape the limit.

mod in_flight;
#[cfg(test)]
mod tests;
mod window;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::json;

use crate::config::{Config, Secret};
use crate::error::ApiError;

use in_flight::{key_id, InFlight};
pub use in_flight::{KeyHolder, KeySlot};
use window::SlidingWindow;

/// Most clients (or sessions) one window tracks at a time.
pub const MAX_TRACKED: usize = 100_000;

/// Where a client stands in a window after a request was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitInfo {
    /// `0` when the limit is off.
    pub limit: u32,
    pub remaining: u32,
    /// Until the oldest counted request leaves the window.
    pub reset_after: Duration,
}

impl LimitInfo {
    fn unlimited() -> LimitInfo {
        LimitInfo {
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
        }
    }

    /// The state a refusal implies: nothing left until the retry time.
    pub fn exhausted(limit: u32, retry_after_secs: u64) -> LimitInfo {
        LimitInfo {
            limit,
            remaining: 0,
            reset_after: Duration::from_secs(retry_after_secs),
        }
    }

    /// The `X-RateLimit-*` headers; none when the limit is off.
    pub fn headers(&self) -> Vec<(String, String)> {
        if self.limit == 0 {
            return Vec::new();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let reset = ceil_secs(now + self.reset_after);
        vec![
            ("X-RateLimit-Limit".into(), self.limit.to_string()),
            ("X-RateLimit-Remaining".into(), self.remaining.to_string()),
            ("X-RateLimit-Reset".into(), reset.to_string()),
        ]
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// All limits of one server.
pub struct RateLimiter {
    per_ip: SlidingWindow<IpAddr>,
    per_session: SlidingWindow<String>,
    per_key: Arc<InFlight>,
}

impl RateLimiter {
    pub fn new(config: &Config) -> RateLimiter {
        RateLimiter::with_cap(config, MAX_TRACKED)
    }

    /// As [`RateLimiter::new`], tracking at most `cap` clients per window.
    pub fn with_cap(config: &Config, cap: usize) -> RateLimiter {
        let window = config.rate_limit_window;
        RateLimiter {
            per_ip: SlidingWindow::new("ip", config.rate_limit_per_ip, window, cap),
            per_session: SlidingWindow::new("session", config.rate_limit_per_session, window, cap),
            per_key: Arc::new(InFlight {
                limit: config.max_concurrent_per_key,
                counts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts one request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<LimitInfo, ApiError> {
        self.per_ip.hit(client_key(ip), Instant::now())
    }

    /// The `X-RateLimit-*` headers a refusal of this limiter carries: they
    /// describe the limit that refused (per IP, per session or per key),
    /// not another one. `None` for a refusal that is not this limiter's.
    pub fn refusal_headers(&self, err: &ApiError) -> Option<Vec<(String, String)>> {
        let ApiError::RateLimitExceeded {
            retry_after_secs,
            scope,
        } = err
        else {
            return None;
        };
        let limit = match *scope {
            "ip" => self.per_ip.limit,
            "session" => self.per_session.limit,
            "key" => self.per_key.limit,
            _ => return None,
        };
        Some(LimitInfo::exhausted(limit, *retry_after_secs).headers())
    }

    /// Counts one request on a Claude session. A refusal is audited here,
    /// so the caller need not log it again.
    pub fn check_session(&self, session_id: &str) -> Result<LimitInfo, ApiError> {
        let verdict = self.per_session.hit(session_id.to_string(), Instant::now());
        if let Err(err) = &verdict {
            log::warn!(
                "{}",
                json!({
                    "event": "rate_limited",
                    "scope": "session",
                    "session_id": session_id,
                    "retry_after": retry_after(err),
                })
            );
        }
        verdict
    }

    /// Takes one of the key's concurrency slots, given back when the
    /// returned guard is dropped. `None` when the limit is off.
    pub fn acquire_key(&self, key: &Secret) -> Result<Option<KeySlot>, ApiError> {
        if self.per_key.limit == 0 {
            return Ok(None);
        }
        let id = key_id(key);
        let mut counts = self.per_key.counts.lock();
        let count = counts.entry(id).or_insert(0);
        if *count >= self.per_key.limit {
            return Err(ApiError::RateLimitExceeded {
                retry_after_secs: 1,
                scope: "key",
            });
        }
        *count += 1;
        Ok(Some(KeySlot {
            owner: self.per_key.clone(),
            key: id,
        }))
    }

    /// Hands out slots for work that outlives its request.
    pub fn key_holder(&self) -> KeyHolder {
        KeyHolder(self.per_key.clone())
    }

    /// Requests currently holding a slot of `key`.
    pub fn in_flight(&self, key: &Secret) -> u32 {
        let counts = self.per_key.counts.lock();
        counts.get(&key_id(key)).copied().unwrap_or(0)
    }

    /// Client addresses (IPv6: /64 blocks) the per-IP window holds.
    pub fn tracked_clients(&self) -> usize {
        self.per_ip.state.lock().logs.len()
    }

    pub fn tracked_sessions(&self) -> usize {
        self.per_session.state.lock().logs.len()
    }
}

/// The `Retry-After` of a refusal, for audit lines.
pub fn retry_after(err: &ApiError) -> Option<u64> {
    match err {
        ApiError::RateLimitExceeded {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        _ => None,
    }
}

/// IPv4-mapped addresses count as IPv4; other IPv6 addresses by /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}
