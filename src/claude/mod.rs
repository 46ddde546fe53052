//! Claude Code backend: runs the `claude` CLI for a chat request.

pub mod adapter;
pub mod events;
pub mod failure;
pub mod models;
pub mod pool;
pub mod prompt;
pub mod redact;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{Backend, ChatRequest};
use crate::config::Config;
use crate::error::ApiError;
use crate::http::Reply;
use crate::router::Mode;
use pool::{Capacity, ProcessPool};

pub struct ClaudeBackend {
    cli: Option<PathBuf>,
    pool: Arc<ProcessPool>,
}

impl ClaudeBackend {
    pub fn new(config: &Config) -> Result<ClaudeBackend, String> {
        let path_var = config
            .child_env
            .0
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        Ok(ClaudeBackend {
            cli: locate_cli(&config.claude_path, path_var),
            pool: ProcessPool::new(config.max_concurrent_processes),
        })
    }

    pub fn capacity(&self) -> Capacity {
        self.pool.capacity()
    }
}

impl Backend for ClaudeBackend {
    fn mode(&self) -> Mode {
        Mode::ClaudeCode
    }
    fn complete(&self, _request: &ChatRequest) -> Result<Reply, ApiError> {
        Err(ApiError::BackendUnavailable {
            reason: "not implemented".into(),
        })
    }
    fn stream(&self, request: &ChatRequest) -> Result<Reply, ApiError> {
        self.complete(request)
    }
    fn health(&self) -> &'static str {
        if self.cli.is_some() {
            "ok"
        } else {
            "error"
        }
    }
}

/// Finds the CLI: a path with a slash is taken as is, a bare name is looked
/// up in `PATH`. Only an executable regular file counts.
pub fn locate_cli(claude_path: &Path, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if claude_path.components().count() > 1 || claude_path.is_absolute() {
        return executable(claude_path).then(|| claude_path.to_path_buf());
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(claude_path))
        .find(|p| executable(p))
}

impl ClaudeBackend {
    /// SIGTERM to every running child (drain).
    pub fn terminate_all(&self) {}
    /// SIGKILL to every running child (end of drain, second signal).
    pub fn kill_all(&self) {}
}

impl ClaudeBackend {
    pub fn cli_path(&self) -> Option<&Path> {
        self.cli.as_deref()
    }
}
