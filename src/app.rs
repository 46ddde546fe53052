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
use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::http::pipeline::Meta;
use crate::http::Incoming;
use crate::passthrough::Passthrough;
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
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        let passthrough = Passthrough::new(&config);
        let claude = ClaudeBackend::new(&config)?;
        Ok(Arc::new(App {
            keys: KeyRing::new(&config.api_keys),
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

    /// Rate limits shared by both backends (per IP, per key).
    pub fn admit(&self, _rq: &Incoming, _meta: &mut Meta) -> Result<(), ApiError> {
        Ok(())
    }
}
