//! Request limits shared by both backends, held in memory: a sliding
//! window per client address, one per Claude session, and a cap on the
//! requests in flight per server key.
//!
//! A window keeps the admission times of each client, so it is exact: within
//! any span of `RATE_LIMIT_WINDOW_MS`, the first `limit` requests pass and
//! the next one is refused. A refused request is not recorded, so hammering
//! does not push the reset further away. The wait a client is told is the
//! real time until its oldest counted request leaves the window, rounded up
//! to whole seconds.
//!
//! Headers: `X-RateLimit-Limit` and `X-RateLimit-Remaining` as usual, and
//! `X-RateLimit-Reset` as a Unix time in seconds (the GitHub convention,
//! as SECURITY_MODEL §6.3 shows it), the moment the next slot frees up.
//!
//! Memory stays bounded: clients with nothing left in their window are
//! swept at most once per window when a new client arrives, and past
//! [`MAX_TRACKED`] the clients with the fewest counted requests are
//! dropped. That keeps a flood of distinct (or, behind `TRUST_PROXY`,
//! forged) addresses from growing the table, at the price of forgetting a
//! few counts, while clients near their limit stay tracked. IPv6 clients are counted per /64, the block one host usually
//! controls, so cycling addresses inside it does not escape the limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{Config, Secret};
use crate::error::ApiError;

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

/// Keys are tracked by digest, so the table never holds a secret.
fn key_id(key: &Secret) -> [u8; 32] {
    Sha256::digest(key.expose().as_bytes()).into()
}

/// Concurrency counts per key digest; a key with nothing in flight has no
/// entry, so the table is as large as the set of keys in use.
struct InFlight {
    limit: u32,
    counts: Mutex<HashMap<[u8; 32], u32>>,
}

/// One request's hold on a key's concurrency slot. Dropping it frees the
/// slot, so the slot comes back however the request ends, a panic included.
pub struct KeySlot {
    owner: Arc<InFlight>,
    key: [u8; 32],
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// A sliding-window log per client.
struct SlidingWindow<K> {
    scope: &'static str,
    limit: u32,
    window: Duration,
    cap: usize,
    state: Mutex<Logs<K>>,
}

struct Logs<K> {
    /// Admission times per client, oldest first; never longer than `limit`.
    logs: HashMap<K, VecDeque<Instant>>,
    next_sweep: Option<Instant>,
}

impl<K: Hash + Eq> SlidingWindow<K> {
    fn new(scope: &'static str, limit: u32, window: Duration, cap: usize) -> Self {
        SlidingWindow {
            scope,
            limit,
            window,
            cap: cap.max(1),
            state: Mutex::new(Logs {
                logs: HashMap::new(),
                next_sweep: None,
            }),
        }
    }

    fn hit(&self, key: K, now: Instant) -> Result<LimitInfo, ApiError> {
        if self.limit == 0 {
            return Ok(LimitInfo::unlimited());
        }
        let mut state = self.state.lock();
        let evicted = if state.logs.contains_key(&key) {
            0
        } else {
            state.make_room(now, self.window, self.cap)
        };
        let verdict = self.count(state.logs.entry(key).or_default(), now);
        drop(state);
        if evicted > 0 {
            log::warn!(
                "{}",
                json!({"event": "rate_limit_table_full", "scope": self.scope, "evicted": evicted})
            );
        }
        verdict
    }

    /// Admits or refuses one request against one client's log.
    fn count(&self, log: &mut VecDeque<Instant>, now: Instant) -> Result<LimitInfo, ApiError> {
        let window = self.window;
        while log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            log.pop_front();
        }
        let until_slot = |log: &VecDeque<Instant>| {
            log.front()
                .and_then(|t| t.checked_add(window))
                .map_or(window, |end| end.saturating_duration_since(now))
        };
        if log.len() >= self.limit as usize {
            return Err(ApiError::RateLimitExceeded {
                retry_after_secs: ceil_secs(until_slot(log)).max(1),
                scope: self.scope,
            });
        }
        log.push_back(now);
        Ok(LimitInfo {
            limit: self.limit,
            remaining: self.limit.saturating_sub(log.len() as u32),
            reset_after: until_slot(log),
        })
    }
}

impl<K: Hash + Eq> Logs<K> {
    /// Called before a new client is added: drops idle clients once per
    /// window, and the least loaded ones when the table is full.
    /// Returns how many active clients had to be evicted.
    fn make_room(&mut self, now: Instant, window: Duration, cap: usize) -> usize {
        let due = self.next_sweep.map_or(true, |t| now >= t);
        if !due && self.logs.len() < cap {
            return 0;
        }
        let live = |t: &Instant| now.saturating_duration_since(*t) < window;
        self.logs.retain(|_, log| log.back().is_some_and(live));
        self.next_sweep = now.checked_add(window);
        if self.logs.len() < cap {
            return 0;
        }
        // Evict down to three quarters, so the next eviction is a quarter
        // of the table away and its cost is spread over those insertions.
        // Clients with the fewest counted requests go first (forgetting
        // them gives away the least), the least recently admitted among
        // equals; a client held at its limit is the last to be forgotten.
        let before = self.logs.len();
        let keep = cap - cap.div_ceil(4);
        let rank = |log: &VecDeque<Instant>| log.back().map(|t| (log.len(), *t));
        let mut ranks: Vec<(usize, Instant)> = self.logs.values().filter_map(rank).collect();
        let nth = before - keep - 1;
        if nth < ranks.len() {
            let cutoff = *ranks.select_nth_unstable(nth).1;
            self.logs
                .retain(|_, log| rank(log).is_some_and(|r| r > cutoff));
        }
        before - self.logs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MS: Duration = Duration::from_millis(1);

    fn window(limit: u32, window_ms: u64, cap: usize) -> SlidingWindow<IpAddr> {
        SlidingWindow::new("ip", limit, MS * window_ms as u32, cap)
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn limiter(per_ip: u32, per_session: u32, per_key: u32, window_ms: u64) -> RateLimiter {
        let mut config = Config::for_tests(std::env::temp_dir());
        config.rate_limit_per_ip = per_ip;
        config.rate_limit_per_session = per_session;
        config.max_concurrent_per_key = per_key;
        config.rate_limit_window = MS * window_ms as u32;
        RateLimiter::new(&config)
    }

    #[test]
    fn exactly_n_per_window_then_refused_until_the_oldest_leaves() {
        let w = window(3, 10_000, 100);
        let t0 = Instant::now();
        for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
            let info = w.hit(ip(1), t0 + MS * 1000 * i as u32).unwrap();
            assert_eq!((info.limit, info.remaining), (3, remaining));
            // The next slot frees when the first request (at t0) leaves.
            assert_eq!(info.reset_after, MS * (10_000 - 1000 * i as u32));
        }
        let refused = w.hit(ip(1), t0 + MS * 2500).unwrap_err();
        assert_eq!(
            refused,
            ApiError::RateLimitExceeded {
                retry_after_secs: 8, // 7.5 s rounded up
                scope: "ip"
            }
        );
        // Another client is not affected.
        assert!(w.hit(ip(2), t0 + MS * 2500).is_ok());
        // One millisecond before the first request leaves: still refused,
        // and the wait is rounded up to a whole second, never 0.
        let e = w.hit(ip(1), t0 + MS * 9_999).unwrap_err();
        assert_eq!(retry_after(&e), Some(1));
        // At the window's end exactly one slot is free again.
        let info = w.hit(ip(1), t0 + MS * 10_000).unwrap();
        assert_eq!(info.remaining, 0);
        assert_eq!(info.reset_after, MS * 1000);
        assert!(w.hit(ip(1), t0 + MS * 10_000).is_err());
    }

    #[test]
    fn retry_after_follows_the_sliding_window() {
        let w = window(1, 5_000, 100);
        let t0 = Instant::now();
        w.hit(ip(1), t0).unwrap();
        let at = |ms: u32| retry_after(&w.hit(ip(1), t0 + MS * ms).unwrap_err());
        assert_eq!(at(1), Some(5));
        assert_eq!(at(1_200), Some(4));
        assert_eq!(at(3_999), Some(2));
        assert_eq!(at(4_001), Some(1));
        assert!(w.hit(ip(1), t0 + MS * 5_000).is_ok());
    }

    #[test]
    fn refusals_are_not_counted() {
        let w = window(2, 1_000, 100);
        let t0 = Instant::now();
        w.hit(ip(1), t0).unwrap();
        w.hit(ip(1), t0 + MS * 500).unwrap();
        for ms in 501..600 {
            assert!(w.hit(ip(1), t0 + MS * ms).is_err());
        }
        // Only the request at t0 has left; the refused ones never counted.
        assert_eq!(w.hit(ip(1), t0 + MS * 1_000).unwrap().remaining, 0);
    }

    #[test]
    fn zero_disables() {
        let l = limiter(0, 0, 0, 1_000);
        for _ in 0..1_000 {
            let info = l.check_ip(ip(1)).unwrap();
            assert!(info.headers().is_empty());
            l.check_session("s").unwrap();
            assert!(l.acquire_key(&Secret::new("sk-cca-k")).unwrap().is_none());
        }
        assert_eq!(l.tracked_clients(), 0);
        assert_eq!(l.tracked_sessions(), 0);
    }

    #[test]
    fn idle_clients_are_swept() {
        // 10 000 distinct addresses, 100 per window-long stretch of time:
        // the table holds about the clients of the last window, not all.
        let w = window(5, 1_000, MAX_TRACKED);
        let t0 = Instant::now();
        let mut peak = 0;
        for n in 0..10_000u32 {
            w.hit(ip(n), t0 + MS * 10 * n).unwrap();
            peak = peak.max(w.state.lock().logs.len());
        }
        assert!(peak <= 201, "peak {peak}");
        let later = t0 + MS * 10 * 10_000 + MS * 5_000;
        w.hit(ip(99_999), later).unwrap();
        assert_eq!(w.state.lock().logs.len(), 1);
    }

    #[test]
    fn a_flood_inside_one_window_is_capped() {
        // 10 000 distinct (forged) addresses within one window.
        let w = window(5, 60_000, 1_000);
        let t0 = Instant::now();
        let regular = ip(5_000_000);
        for n in 0..10_000u32 {
            w.hit(ip(n), t0 + MS * n / 10).unwrap();
            if n % 100 == 0 {
                // A client at its limit is kept through every eviction.
                let _ = w.hit(regular, t0 + MS * n / 10);
            }
            assert!(w.state.lock().logs.len() <= 1_000);
        }
        assert!(w.state.lock().logs.len() >= 750);
        // Its first request (at t0) leaves the window in 58.999 s.
        let e = w.hit(regular, t0 + MS * 1_001).unwrap_err();
        assert_eq!(retry_after(&e), Some(59));
    }

    #[test]
    fn tracked_clients_counts_the_per_ip_table() {
        let l = limiter(2, 0, 0, 60_000);
        for n in 0..50 {
            l.check_ip(ip(n)).unwrap();
        }
        l.check_ip(ip(0)).unwrap();
        assert_eq!(l.tracked_clients(), 50);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = limiter(2, 0, 0, 60_000);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        l.check_ip(a).unwrap();
        l.check_ip(b).unwrap();
        assert!(l.check_ip(a).is_err());
        assert!(l.check_ip(other).is_ok());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        l.check_ip(v4).unwrap();
        l.check_ip(mapped).unwrap();
        assert!(l.check_ip(v4).is_err());
    }

    #[test]
    fn session_limit() {
        let l = limiter(0, 2, 0, 60_000);
        let a = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
        let b = "4f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
        assert_eq!(l.check_session(a).unwrap().remaining, 1);
        assert_eq!(l.check_session(a).unwrap().remaining, 0);
        let e = l.check_session(a).unwrap_err();
        assert_eq!(e.code(), "rate_limit_exceeded");
        assert!(matches!(
            e,
            ApiError::RateLimitExceeded {
                scope: "session",
                retry_after_secs: 59..=60
            }
        ));
        assert_eq!(l.check_session(b).unwrap().remaining, 1);
        assert_eq!(l.tracked_sessions(), 2);
        // The per-IP window is separate.
        assert_eq!(l.tracked_clients(), 0);
    }

    #[test]
    fn session_window_slides() {
        let l = limiter(0, 1, 0, 50);
        l.check_session("s").unwrap();
        assert!(l.check_session("s").is_err());
        std::thread::sleep(MS * 60);
        assert!(l.check_session("s").is_ok());
    }

    #[test]
    fn key_slots_are_counted_and_given_back() {
        let l = limiter(0, 0, 2, 60_000);
        let k1 = Secret::new("sk-cca-first-key-0001");
        let k2 = Secret::new("sk-cca-second-key-002");
        let a = l.acquire_key(&k1).unwrap();
        let b = l.acquire_key(&k1).unwrap();
        assert!(a.is_some() && b.is_some());
        assert_eq!(l.in_flight(&k1), 2);
        let e = l.acquire_key(&k1).err().unwrap();
        assert_eq!(
            e,
            ApiError::RateLimitExceeded {
                retry_after_secs: 1,
                scope: "key"
            }
        );
        // Keys do not share slots.
        let c = l.acquire_key(&k2).unwrap();
        assert_eq!(l.in_flight(&k2), 1);
        drop(a);
        assert_eq!(l.in_flight(&k1), 1);
        let d = l.acquire_key(&k1).unwrap();
        assert!(l.acquire_key(&k1).is_err());
        drop((b, c, d));
        assert_eq!(l.in_flight(&k1), 0);
        assert_eq!(l.in_flight(&k2), 0);
        // Nothing in flight leaves nothing behind.
        assert!(l.per_key.counts.lock().is_empty());
    }

    #[test]
    fn a_slot_comes_back_when_its_holder_panics() {
        let l = Arc::new(limiter(0, 0, 1, 60_000));
        let key = Secret::new("sk-cca-first-key-0001");
        let (l2, k2) = (l.clone(), key.clone());
        let joined = std::thread::spawn(move || {
            let _slot = l2.acquire_key(&k2).unwrap();
            panic!("handler died");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(l.in_flight(&key), 0);
        assert!(l.acquire_key(&key).unwrap().is_some());
    }

    #[test]
    fn headers_give_the_reset_as_unix_time() {
        let info = LimitInfo {
            limit: 60,
            remaining: 59,
            reset_after: MS * 2_500,
        };
        let headers = info.headers();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.parse::<u64>().unwrap())
                .unwrap()
        };
        assert_eq!(get("X-RateLimit-Limit"), 60);
        assert_eq!(get("X-RateLimit-Remaining"), 59);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = get("X-RateLimit-Reset");
        assert!((now + 2..=now + 4).contains(&reset), "{reset} vs {now}");
        assert_eq!(LimitInfo::exhausted(3, 7).headers()[1].1, "0");
    }
}
