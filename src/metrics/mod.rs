//! What `GET /metrics` reports, in Prometheus' text format (written by
//! hand: a few lines of text). Counters are atomics or a map behind a lock
//! taken once per request; gauges that other parts already keep (processes,
//! warm children, waiting tool calls, sessions) are read when scraped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::mode::Mode;
use crate::turn_event::TokenCounts;

/// Upper bounds of the latency histogram, in seconds: 5 ms to 300 s.
const BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const MODES: [&str; 3] = ["passthrough", "claude-code", "none"];

/// Why a Claude Code turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEnd {
    Answered,
    CliError,
    Timeout,
    Killed,
    OutputLimit,
    ClientGone,
    /// Its tool calls were declined for a new question, or never answered.
    Interrupted,
}

const TURN_ENDS: [(TurnEnd, &str); 7] = [
    (TurnEnd::Answered, "answered"),
    (TurnEnd::CliError, "cli_error"),
    (TurnEnd::Timeout, "timeout"),
    (TurnEnd::Killed, "killed"),
    (TurnEnd::OutputLimit, "output_limit"),
    (TurnEnd::ClientGone, "client_gone"),
    (TurnEnd::Interrupted, "interrupted"),
];

/// Why a turn that waited for tool results was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// `TOOL_RESULT_TIMEOUT_MS` passed.
    Timeout,
    /// A new turn needed its process slot, and none was free.
    Pressure,
    /// Its key had more turns waiting than `MAX_TOOL_WAITS_PER_KEY`.
    KeyLimit,
    /// More turns waited than `MAX_TOOL_WAITS`.
    TotalLimit,
}

pub const GIVE_UPS: [(GiveUp, &str); 4] = [
    (GiveUp::Timeout, "timeout"),
    (GiveUp::Pressure, "pressure"),
    (GiveUp::KeyLimit, "key_limit"),
    (GiveUp::TotalLimit, "total_limit"),
];

/// One request as the access log sees it.
pub struct Finished {
    pub route: &'static str,
    pub mode: Option<Mode>,
    pub status: u16,
    pub elapsed: Duration,
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

pub struct Metrics {
    started: SystemTime,
    /// (route, mode, status class) → requests.
    requests: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    latency: [Histogram; MODES.len()],
    streams_open: AtomicI64,
    turn_ends: [AtomicU64; TURN_ENDS.len()],
    given_up: [AtomicU64; GIVE_UPS.len()],
    /// Upstream status (or `unreachable`, `timeout`) → errors.
    upstream_errors: Mutex<BTreeMap<String, u64>>,
    /// Limit (`ip`, `key`, `session`, `concurrency`) → refusals.
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
    /// CLI model → dollars.
    cost_usd: Mutex<BTreeMap<&'static str, f64>>,
    /// CLI model → tokens by kind (see `TOKEN_KINDS`).
    tokens: Mutex<BTreeMap<&'static str, [u64; TOKEN_KINDS.len()]>>,
    /// CLI model → conversations the CLI compacted.
    compactions: Mutex<BTreeMap<&'static str, u64>>,
    /// (from, to) account → sessions moved for a spent allowance.
    moves: Mutex<BTreeMap<(String, String), u64>>,
    /// Account → answered turns, and their cost in dollars.
    by_account: Mutex<BTreeMap<String, (u64, f64)>>,
}

/// The kinds of tokens counted, in `TokenCounts`' terms and the label's.
const TOKEN_KINDS: [&str; 4] = ["input", "cache_read", "cache_write", "output"];

/// The gauges read at scrape time from the parts that keep them.
pub struct Gauges {
    pub processes_live: usize,
    pub processes_warm: usize,
    pub processes_queued: usize,
    pub tool_calls_waiting: usize,
    pub sessions_live: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: SystemTime::now(),
            requests: Mutex::default(),
            latency: Default::default(),
            streams_open: AtomicI64::new(0),
            turn_ends: Default::default(),
            given_up: Default::default(),
            upstream_errors: Mutex::default(),
            rate_limited: Mutex::default(),
            cost_usd: Mutex::default(),
            tokens: Mutex::default(),
            compactions: Mutex::default(),
            moves: Mutex::default(),
            by_account: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn request(&self, done: &Finished) {
        let mode = match done.mode {
            Some(Mode::Passthrough) => 0,
            Some(Mode::ClaudeCode) => 1,
            None => 2,
        };
        let class = match done.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        *self
            .requests
            .lock()
            .entry((done.route, MODES[mode], class))
            .or_default() += 1;
        let histogram = &self.latency[mode];
        let seconds = done.elapsed.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(done.elapsed.as_micros()).unwrap_or(u64::MAX);
        histogram.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn stream_opened(&self) {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.streams_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn turn_ended(&self, end: TurnEnd) {
        if let Some(i) = TURN_ENDS.iter().position(|(e, _)| *e == end) {
            self.turn_ends[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn gave_up(&self, cause: GiveUp) {
        if let Some(i) = GIVE_UPS.iter().position(|(c, _)| *c == cause) {
            self.given_up[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waiting turns given up so far, by cause (for `/health`).
    pub fn given_up(&self) -> Vec<(&'static str, u64)> {
        GIVE_UPS
            .iter()
            .zip(&self.given_up)
            .map(|((_, cause), n)| (*cause, n.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn upstream_error(&self, status: String) {
        *self.upstream_errors.lock().entry(status).or_default() += 1;
    }

    pub fn rate_limited(&self, limit: &'static str) {
        *self.rate_limited.lock().entry(limit).or_default() += 1;
    }

    pub fn cost(&self, model: &'static str, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            *self.cost_usd.lock().entry(model).or_default() += usd;
        }
    }

    /// A turn's tokens, as the CLI counted them for `model`.
    pub fn tokens(&self, model: &'static str, counts: &TokenCounts) {
        let by_kind = [
            counts.input,
            counts.cache_read,
            counts.cache_creation,
            counts.output,
        ];
        let mut tokens = self.tokens.lock();
        let total = tokens.entry(model).or_default();
        for (sum, n) in total.iter_mut().zip(by_kind) {
            *sum = sum.saturating_add(n);
        }
    }

    /// `n` compactions of a conversation by the CLI running `model`.
    pub fn compactions(&self, model: &'static str, n: u64) {
        if n > 0 {
            *self.compactions.lock().entry(model).or_default() += n;
        }
    }

    /// A turn of `account` answered, and `usd` it cost.
    pub fn account_turn(&self, account: &str, usd: f64) {
        let mut by_account = self.by_account.lock();
        let (turns, cost) = by_account.entry(account.to_string()).or_default();
        *turns += 1;
        if usd.is_finite() && usd > 0.0 {
            *cost += usd;
        }
    }

    /// A session carried from account `from` to `to`, whose allowance was
    /// left.
    pub fn session_moved(&self, from: &str, to: &str) {
        *self
            .moves
            .lock()
            .entry((from.to_string(), to.to_string()))
            .or_default() += 1;
    }
}

mod render;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_counter_and_every_bucket_above_it() {
        let metrics = Metrics::default();
        metrics.request(&Finished {
            route: "chat_completions",
            mode: Some(Mode::ClaudeCode),
            status: 200,
            elapsed: Duration::from_millis(30),
        });
        metrics.cost("sonnet", 0.0002);
        metrics.turn_ended(TurnEnd::Answered);
        let text = metrics.render(&Gauges {
            processes_live: 1,
            processes_warm: 1,
            processes_queued: 0,
            tool_calls_waiting: 0,
            sessions_live: 1,
        });
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("claude_cli_api_requests_total{route=\"chat_completions\",mode=\"claude-code\",status=\"2xx\"} 1"), "{text}");
        let name = "claude_cli_api_request_duration_seconds_bucket";
        assert!(has(&format!(
            "{name}{{mode=\"claude-code\",le=\"0.025\"}} 0"
        )));
        assert!(has(&format!(
            "{name}{{mode=\"claude-code\",le=\"0.05\"}} 1"
        )));
        assert!(has(&format!(
            "{name}{{mode=\"claude-code\",le=\"+Inf\"}} 1"
        )));
        assert!(has("claude_cli_api_turns_total{cause=\"answered\"} 1"));
        assert!(has(
            "claude_cli_api_cost_usd_total{model=\"sonnet\"} 0.000200000"
        ));
        assert!(has("claude_cli_api_claude_processes_warm 1"));
    }
}
