//! The sliding-window log behind the per-IP and per-session limits, and
//! the bounded table of clients it keeps.
//!
//! A window keeps the admission times of each client, so it is exact: within
//! any span of `RATE_LIMIT_WINDOW_MS`, the first `limit` requests pass and
//! the next one is refused. A refused request is not recorded, so hammering
//! does not push the reset further away. The wait a client is told is the
//! real time until its oldest counted request leaves the window, rounded up
//! to whole seconds.
//!
//! Memory stays bounded: clients with nothing left in their window are
//! swept at most once per window when a new client arrives, and past
//! [`MAX_TRACKED`](super::MAX_TRACKED) the clients with the fewest counted
//! requests are dropped. That keeps a flood of distinct (or, behind
//! `TRUST_PROXY`, forged) addresses from growing the table, at the price of
//! forgetting a few counts, while clients near their limit stay tracked.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;

use super::{ceil_secs, LimitInfo};
use crate::error::ApiError;

/// A sliding-window log per client.
pub(super) struct SlidingWindow<K> {
    scope: &'static str,
    pub(super) limit: u32,
    window: Duration,
    cap: usize,
    pub(super) state: Mutex<Logs<K>>,
}

pub(super) struct Logs<K> {
    /// Admission times per client, oldest first; never longer than `limit`.
    pub(super) logs: HashMap<K, VecDeque<Instant>>,
    next_sweep: Option<Instant>,
}

impl<K: Hash + Eq> SlidingWindow<K> {
    pub(super) fn new(scope: &'static str, limit: u32, window: Duration, cap: usize) -> Self {
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

    pub(super) fn hit(&self, key: K, now: Instant) -> Result<LimitInfo, ApiError> {
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
        let due = self.next_sweep.is_none_or(|t| now >= t);
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
