//! OpenAI passthrough backend.

use crate::backend::{Backend, ChatRequest};
use crate::config::Config;
use crate::error::ApiError;
use crate::http::Reply;
use crate::router::Mode;

pub struct Passthrough {
    enabled: bool,
    has_key: bool,
}

impl Passthrough {
    pub fn new(config: &Config) -> Passthrough {
        Passthrough {
            enabled: config.openai_passthrough_enabled,
            has_key: config.openai_api_key.is_some() || config.allow_client_openai_key,
        }
    }
}

impl Backend for Passthrough {
    fn mode(&self) -> Mode {
        Mode::Passthrough
    }
    fn complete(&self, _request: &ChatRequest) -> Result<Reply, ApiError> {
        Err(ApiError::PassthroughNotConfigured)
    }
    fn stream(&self, request: &ChatRequest) -> Result<Reply, ApiError> {
        self.complete(request)
    }
    fn health(&self) -> &'static str {
        match (self.enabled, self.has_key) {
            (false, _) => "disabled",
            (true, false) => "no_key",
            (true, true) => "ok",
        }
    }
}
