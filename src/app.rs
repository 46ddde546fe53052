//! Shared state of one running server: settings, both backends, the key
//! ring, the limiters, the budget for request bodies, the answers the
//! Messages and Responses APIs keep, and the drain flag. Built once at
//! start, then only read (its parts keep their own locks).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::allowance::Allowances;
use crate::anthropic::MessageThreads;
use crate::auth::KeyRing;
use crate::claude::child::slots::Capacity;
use crate::claude::ClaudeBackend;
use crate::config::Config;
use crate::http::body::BodyBudget;
use crate::metrics::{Gauges, Metrics};
use crate::passthrough::Passthrough;
use crate::ratelimit::RateLimiter;
use crate::responses::ResponseStore;

pub struct App {
    pub config: Config,
    /// Set on SIGTERM/SIGINT: new work is refused from then on (the Claude
    /// backend shares it: no new CLI starts).
    pub draining: Arc<AtomicBool>,
    pub keys: KeyRing,
    pub passthrough: Passthrough,
    pub claude: ClaudeBackend,
    pub limiter: RateLimiter,
    /// Request bodies held in memory at once (`MAX_BODY_MEMORY_BYTES`).
    pub bodies: Arc<BodyBudget>,
    pub metrics: Arc<Metrics>,
    /// The Messages API's answered `msg_` ids, for `thread` continuations.
    pub threads: Arc<MessageThreads>,
    /// The Responses API's answers, for `previous_response_id` and `GET`
    /// (kept on disk with their sessions).
    pub responses: Arc<ResponseStore>,
    /// Each login's subscription allowance, as the CLI reports it.
    pub allowance: Arc<Allowances>,
}

impl App {
    pub fn new(config: Config) -> Arc<App> {
        let passthrough = Passthrough::new(&config);
        let limiter = RateLimiter::new(&config);
        let metrics = Arc::new(Metrics::default());
        let draining = Arc::new(AtomicBool::new(false));
        let allowance = Arc::new(Allowances::kept_in(&config.state_dir, &config.accounts));
        let claude = ClaudeBackend::new(
            &config,
            limiter.key_holder(),
            metrics.clone(),
            draining.clone(),
            allowance.clone(),
        );
        Arc::new(App {
            keys: KeyRing::new(&config.api_keys),
            limiter,
            bodies: BodyBudget::new(config.max_body_memory_bytes),
            passthrough,
            claude,
            metrics,
            threads: Arc::new(MessageThreads::new(config.max_session_age)),
            responses: Arc::new(ResponseStore::on_disk(
                config.max_session_age,
                config.claude_work_dir.clone(),
            )),
            draining,
            allowance,
            config,
        })
    }

    pub fn capacity(&self) -> Capacity {
        self.claude.capacity()
    }

    /// `GET /metrics`: the counters, and the gauges as they are now.
    pub fn scrape(&self) -> String {
        let capacity = self.capacity();
        let mut out = self.metrics.render(&Gauges {
            processes_live: self.claude.live_children(),
            processes_warm: self.claude.warm_stats().processes,
            processes_queued: capacity.queued,
            tool_calls_waiting: self.claude.waiting_for_tools(),
            sessions_live: self.claude.sessions_live(),
        });
        self.allowance.write_metrics(&mut out);
        out
    }
}
