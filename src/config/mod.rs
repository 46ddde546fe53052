//! Server settings, read from the environment once at start-up.
//!
//! This is the only module that looks at environment variables. Every value
//! is parsed into the type it is used as; every problem is collected and
//! reported with the variable's name, so a misconfigured server stops before
//! it binds its port. The environment the `claude` child gets is decided
//! here too (an allowlist), so secrets of the server never reach it.
//!
//! This file holds [`Config`] and the one pass over the variables that
//! builds it; `read` turns single values into types, `secret` keeps keys
//! out of logs.

mod accounts;
mod read;
mod secret;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use accounts::read_accounts;
pub use accounts::{Account, DEFAULT_ACCOUNT};
pub use read::ConfigError;
use read::Reader;
pub use secret::{mask_key, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Environment handed to each `claude` child: names and values.
#[derive(Clone, Default)]
pub struct ChildEnv(pub Vec<(String, String)>);

impl fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "ChildEnv{names:?}")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    // Server
    pub host: String,
    pub port: u16,
    pub log_level: log::LevelFilter,
    pub log_format: LogFormat,
    pub api_keys: Vec<Secret>,
    pub cors_allowed_origins: Vec<String>,
    pub worker_threads: usize,
    pub trust_proxy: bool,
    /// `GET /metrics` without a key (`METRICS_PUBLIC`), for a scraper on a
    /// private network.
    pub metrics_public: bool,
    pub headers_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, across all requests.
    pub max_body_memory_bytes: usize,
    pub shutdown_timeout: Duration,
    pub state_dir: PathBuf,

    // Claude Code
    pub anthropic_key_set: bool,
    pub claude_path: PathBuf,
    pub default_model: String,
    pub request_timeout: Duration,
    /// Largest request body relayed on a passthrough route other than chat
    /// (uploads); streamed, never held.
    pub passthrough_max_body_bytes: u64,
    /// How long a CLI waits for the client to send its tool calls' results.
    pub tool_result_timeout: Duration,
    /// The binary the CLI starts as the tool bridge (`mcp-bridge`): this
    /// one. Not a setting; tests, which run the server inside the test
    /// binary, point it at the built server.
    pub bridge_exe: PathBuf,
    pub max_concurrent_processes: usize,
    pub pool_queue_timeout: Duration,
    /// After this long without a byte to a stream's client, a keep-alive
    /// (`STREAM_KEEPALIVE_MS`, 0: never).
    pub stream_keepalive: Option<Duration>,
    /// Turns that may wait for tool results at once, in all and per key;
    /// past them the oldest is given up.
    pub max_tool_waits: usize,
    pub max_tool_waits_per_key: usize,
    pub session_ttl: Duration,
    pub max_session_age: Duration,
    pub session_cleanup_interval: Duration,
    pub claude_work_dir: PathBuf,
    /// The logins sessions are spread over (one, unnamed, by default).
    pub accounts: Vec<Account>,
    /// Keys whose sessions may run only on some accounts (`API_KEYS`
    /// entries `key=account+account`).
    pub key_accounts: Vec<(Secret, Vec<String>)>,
    pub claude_max_retries: u32,
    pub claude_skip_permissions: bool,
    /// Time between SIGTERM and SIGKILL for a child that must stop.
    pub kill_grace: Duration,
    pub child_env: ChildEnv,
    /// Idle CLI processes kept for their session's next turn (0: none).
    pub warm_sessions: usize,
    pub warm_idle: Duration,
    /// No process is kept warm while the host has less memory available.
    pub warm_min_free_mb: u64,
    /// Processes started ahead for the next new session.
    pub warm_spares: usize,
    /// Whether a request that resends a known history continues its session.
    pub claude_match_history: bool,

    // Passthrough
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    pub openai_passthrough_enabled: bool,
    pub allow_client_openai_key: bool,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub upstream_idle_timeout: Duration,

    // Limits
    pub rate_limit_per_ip: u32,
    pub rate_limit_per_session: u32,
    pub max_concurrent_per_key: u32,
    pub rate_limit_window: Duration,
}

/// Names the `claude` child may inherit besides those listed in
/// `CLAUDE_ENV_PASSTHROUGH`.
const CHILD_ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
];

/// Never handed to the child, whatever `CLAUDE_ENV_PASSTHROUGH` says.
fn child_env_forbidden(name: &str) -> bool {
    name.starts_with("OPENAI_") || name == "API_KEY" || name == "API_KEYS" || name == "CLAUDECODE"
}

impl Config {
    /// The first account named: the spares' and that of the sessions
    /// recorded before accounts were.
    pub fn first_account(&self) -> &str {
        self.accounts
            .first()
            .map_or(DEFAULT_ACCOUNT, |a| a.name.as_str())
    }

    /// The accounts `key`'s sessions may run on (`None`: any).
    pub fn accounts_for(&self, key: Option<&Secret>) -> Option<&[String]> {
        let key = key?;
        self.key_accounts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, names)| names.as_slice())
    }

    pub fn from_env() -> Result<Config, Vec<ConfigError>> {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Vec<ConfigError>> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let mut r = Reader {
            vars: &vars,
            errors: Vec::new(),
        };

        let port = r.number("PORT", 3456, 1, 65535) as u16;
        let host = r.string("HOST", "127.0.0.1");
        let log_level = match r.raw("LOG_LEVEL").map(|v| v.to_ascii_lowercase()) {
            None => log::LevelFilter::Info,
            Some(v) => match v.as_str() {
                "trace" => log::LevelFilter::Trace,
                "debug" => log::LevelFilter::Debug,
                "info" => log::LevelFilter::Info,
                "warn" | "warning" => log::LevelFilter::Warn,
                "error" | "fatal" => log::LevelFilter::Error,
                "off" | "silent" => log::LevelFilter::Off,
                _ => {
                    r.fail(
                        "LOG_LEVEL",
                        format!(
                            "expected one of trace, debug, info, warn, error, fatal, silent, got {v:?}"
                        ),
                    );
                    log::LevelFilter::Info
                }
            },
        };
        let log_format = match r.raw("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            None => LogFormat::Json,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(v) => {
                r.fail("LOG_FORMAT", format!("expected json or pretty, got {v:?}"));
                LogFormat::Json
            }
        };

        let accounts = read_accounts(&mut r);
        let mut api_keys: Vec<Secret> = Vec::new();
        let mut key_accounts: Vec<(Secret, Vec<String>)> = Vec::new();
        for entry in r
            .raw("API_KEY")
            .map(|k| vec![k.to_string()])
            .unwrap_or_default()
            .into_iter()
            .chain(r.list("API_KEYS"))
        {
            // `sk-cca-…=work+personal`: the key's sessions go only there.
            let (key, limited) = match entry.split_once('=') {
                Some((key, names)) => (
                    key.to_string(),
                    Some(
                        names
                            .split('+')
                            .map(|n| n.trim().to_string())
                            .collect::<Vec<_>>(),
                    ),
                ),
                None => (entry, None),
            };
            if !key.starts_with("sk-cca-") || key.len() < 16 {
                let masked = mask_key(&key);
                r.fail(
                    "API_KEY",
                    format!(
                        "every key in API_KEY/API_KEYS must start with 'sk-cca-' and be at least \
                         16 characters (got {masked})"
                    ),
                );
                continue;
            }
            let key = Secret::new(key);
            if let Some(names) = limited {
                let unknown = names
                    .iter()
                    .find(|n| !accounts.iter().any(|a| &a.name == *n));
                if let Some(unknown) = unknown {
                    r.fail(
                        "API_KEYS",
                        format!(
                            "key {} names account {unknown:?}, which CLAUDE_ACCOUNTS does not",
                            mask_key(key.expose())
                        ),
                    );
                }
                key_accounts.push((key.clone(), names));
            }
            if !api_keys.contains(&key) {
                api_keys.push(key);
            }
        }

        let home = r.string("HOME", "/tmp");
        let state_default = match r.raw("XDG_STATE_HOME") {
            Some(x) => format!("{x}/claude-cli-api"),
            None => format!("{home}/.local/state/claude-cli-api"),
        };
        let state_dir = PathBuf::from(r.string("STATE_DIR", &state_default));
        let work_default = state_dir.join("work");
        let claude_work_dir = r
            .raw("CLAUDE_WORK_DIR")
            .map(PathBuf::from)
            .unwrap_or(work_default);

        let max_concurrent_processes = r.number("MAX_CONCURRENT_PROCESSES", 10, 1, 10_000) as usize;
        let max_concurrent_per_key = r.number("MAX_CONCURRENT_PER_KEY", 5, 0, 1_000_000) as u32;
        let worker_threads = r.number("WORKER_THREADS", 256, 1, 10_000) as usize;
        let max_body_bytes = r.number("MAX_BODY_BYTES", 16 << 20, 1024, 1 << 30) as usize;
        let max_body_memory_bytes =
            r.number("MAX_BODY_MEMORY_BYTES", 64 << 20, 1024, 1 << 34) as usize;
        if max_body_memory_bytes < max_body_bytes {
            r.fail(
                "MAX_BODY_MEMORY_BYTES",
                format!(
                    "must be at least MAX_BODY_BYTES ({max_body_bytes}), or no body that large \
                     could ever be read; got {max_body_memory_bytes}"
                ),
            );
        }

        let openai_base_url = r
            .string("OPENAI_BASE_URL", "https://api.openai.com/v1")
            .trim_end_matches('/')
            .to_string();
        if !(openai_base_url.starts_with("http://") || openai_base_url.starts_with("https://")) {
            r.fail(
                "OPENAI_BASE_URL",
                format!("expected an http:// or https:// URL, got {openai_base_url:?}"),
            );
        }

        let mut child_env: Vec<(String, String)> = Vec::new();
        let extra = r.list("CLAUDE_ENV_PASSTHROUGH");
        for name in CHILD_ENV_ALLOWLIST
            .iter()
            .map(|s| s.to_string())
            .chain(extra)
        {
            if child_env_forbidden(&name) || child_env.iter().any(|(k, _)| *k == name) {
                continue;
            }
            if let Some(v) = vars.get(&name) {
                child_env.push((name, v.clone()));
            }
        }
        if !child_env.iter().any(|(k, _)| k == "PATH") {
            child_env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
        }
        if !child_env.iter().any(|(k, _)| k == "HOME") {
            child_env.push(("HOME".into(), home.clone()));
        }
        if !child_env.iter().any(|(k, _)| k == "LANG") {
            child_env.push(("LANG".into(), "C.UTF-8".into()));
        }
        child_env.push(("TERM".into(), "dumb".into()));

        let config = Config {
            host,
            port,
            log_level,
            log_format,
            api_keys,
            cors_allowed_origins: r.list("CORS_ALLOWED_ORIGINS"),
            worker_threads,
            trust_proxy: r.bool("TRUST_PROXY", false),
            metrics_public: r.bool("METRICS_PUBLIC", false),
            headers_timeout: r.millis("HEADERS_TIMEOUT_MS", 30_000, 100),
            body_timeout: r.millis("BODY_TIMEOUT_MS", 30_000, 100),
            keepalive_timeout: r.millis("KEEPALIVE_TIMEOUT_MS", 5_000, 100),
            max_body_bytes,
            max_body_memory_bytes,
            shutdown_timeout: r.millis("SHUTDOWN_TIMEOUT_MS", 10_000, 0),
            state_dir,
            anthropic_key_set: r.raw("ANTHROPIC_API_KEY").is_some(),
            claude_path: PathBuf::from(r.string("CLAUDE_PATH", "claude")),
            default_model: r.string("DEFAULT_MODEL", "sonnet"),
            request_timeout: r.millis("REQUEST_TIMEOUT_MS", 300_000, 100),
            tool_result_timeout: r.millis("TOOL_RESULT_TIMEOUT_MS", 300_000, 100),
            passthrough_max_body_bytes: r.number(
                "PASSTHROUGH_MAX_BODY_BYTES",
                512 * 1024 * 1024,
                0,
                u64::MAX / 2,
            ),
            max_concurrent_processes,
            pool_queue_timeout: r.millis("POOL_QUEUE_TIMEOUT_MS", 5_000, 0),
            stream_keepalive: Some(r.millis("STREAM_KEEPALIVE_MS", 15_000, 0))
                .filter(|every| !every.is_zero()),
            // Half the pool may wait on clients, a quarter on one key's:
            // abandoned calls cannot fill it.
            max_tool_waits: r.number(
                "MAX_TOOL_WAITS",
                (max_concurrent_processes as u64 / 2).max(1),
                1,
                10_000,
            ) as usize,
            max_tool_waits_per_key: r.number(
                "MAX_TOOL_WAITS_PER_KEY",
                default_waits_per_key(max_concurrent_processes, max_concurrent_per_key),
                1,
                10_000,
            ) as usize,
            session_ttl: r.millis("SESSION_TTL_MS", 3_600_000, 1_000),
            max_session_age: r.millis("MAX_SESSION_AGE_MS", 86_400_000, 1_000),
            session_cleanup_interval: r.millis("SESSION_CLEANUP_INTERVAL_MS", 60_000, 100),
            claude_work_dir,
            accounts: accounts.clone(),
            key_accounts,
            claude_max_retries: r.number("CLAUDE_MAX_RETRIES", 2, 0, 20) as u32,
            claude_skip_permissions: r.bool("CLAUDE_SKIP_PERMISSIONS", false),
            kill_grace: r.millis("CLAUDE_KILL_GRACE_MS", 5_000, 0),
            child_env: ChildEnv(child_env),
            bridge_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("claude-cli-api")),
            warm_sessions: r.number("WARM_SESSIONS", 4, 0, 10_000) as usize,
            warm_idle: r.millis("WARM_IDLE_MS", 300_000, 100),
            warm_min_free_mb: r.number("WARM_MIN_FREE_MB", 1024, 0, 1 << 30),
            warm_spares: r.number("WARM_SPARES", 0, 0, 64) as usize,
            claude_match_history: r.bool("CLAUDE_MATCH_HISTORY", true),
            openai_api_key: r.raw("OPENAI_API_KEY").map(Secret::new),
            openai_base_url,
            openai_passthrough_enabled: r.bool("OPENAI_PASSTHROUGH_ENABLED", true),
            allow_client_openai_key: r.bool("ALLOW_CLIENT_OPENAI_KEY", true),
            upstream_connect_timeout: r.millis("UPSTREAM_CONNECT_TIMEOUT_MS", 10_000, 1),
            upstream_timeout: r.millis("UPSTREAM_TIMEOUT_MS", 600_000, 1),
            upstream_idle_timeout: r.millis("UPSTREAM_IDLE_TIMEOUT_MS", 120_000, 1),
            rate_limit_per_ip: r.number("RATE_LIMIT_PER_IP", 60, 0, 1_000_000) as u32,
            rate_limit_per_session: r.number("RATE_LIMIT_PER_SESSION", 10, 0, 1_000_000) as u32,
            max_concurrent_per_key,
            rate_limit_window: r.millis("RATE_LIMIT_WINDOW_MS", 60_000, 1),
        };
        if r.errors.is_empty() {
            Ok(config)
        } else {
            Err(r.errors)
        }
    }

    /// True when the server listens only on a loopback address.
    pub fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "127.0.0.1" | "localhost" | "::1")
            || self.host.starts_with("127.")
    }

    /// Settings for tests: loopback, ephemeral port, quiet, no keys, state
    /// under the given directory.
    pub fn for_tests(state_dir: impl Into<PathBuf>) -> Config {
        let state_dir: PathBuf = state_dir.into();
        let vars = vec![
            ("PORT".to_string(), "1".to_string()),
            ("STATE_DIR".to_string(), state_dir.display().to_string()),
        ];
        match Config::from_vars(vars) {
            Ok(mut c) => {
                c.port = 0;
                c
            }
            Err(errors) => panic!("test defaults must parse: {errors:?}"),
        }
    }
}

/// A quarter of the pool may wait on one key's clients, and always fewer
/// than the key's own concurrency (`MAX_CONCURRENT_PER_KEY`, 0: none), so
/// that its waiting turns never leave it without a slot for a new one.
fn default_waits_per_key(processes: usize, per_key: u32) -> u64 {
    let quarter = (processes as u64 / 4).max(1);
    match per_key {
        0 => quarter,
        n => quarter.min(u64::from(n).saturating_sub(1).max(1)),
    }
}
