//! `claude-cli-api --check`: reads the configuration as the server would and
//! tries each thing the server depends on, without starting it. It owns the
//! checks (the `claude` CLI and its `--version`, the Anthropic credentials the
//! child would get, the state and work directories, the passthrough upstream,
//! the listen address), the table they are printed as, and the exit status:
//! 0 when the server could start with at least one backend ready, 1 when not,
//! 2 when the configuration does not parse.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::claude::child::locate::locate_cli;
use crate::claude::reading::redact::redact;
use crate::config::{mask_key, Config};
use crate::passthrough::upstream;

/// How long `claude --version` may take.
const CLI_LIMIT: Duration = Duration::from_secs(10);
/// How long the upstream's `GET models` may take, connecting included.
const UPSTREAM_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    /// Worth fixing, but nothing stops working because of it.
    Warn,
    Fail,
    Off,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Off => "off",
        }
    }
}

struct Row {
    item: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
}

fn row(item: &'static str, status: Status, detail: impl Into<String>) -> Row {
    let detail = detail.into();
    Row {
        item,
        status,
        detail,
        fix: None,
    }
}

fn fail(item: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Row {
    row(item, Status::Fail, detail).with_fix(fix)
}

impl Row {
    fn with_fix(self, fix: impl Into<String>) -> Row {
        Row {
            fix: Some(fix.into()),
            ..self
        }
    }
}

/// The configuration in the environment, as the server and the check both
/// read it; what is wrong with it is said on stderr.
pub fn read_config() -> Option<Config> {
    Config::from_env()
        .inspect_err(|errors| {
            for e in errors {
                eprintln!("claude-cli-api: invalid configuration: {e}");
            }
        })
        .ok()
}

/// Runs every check on the configuration in the environment, prints the
/// table on stdout and returns the exit status.
pub fn run() -> ExitCode {
    let Some(config) = read_config() else {
        return ExitCode::from(2);
    };
    let cli = claude_cli(&config);
    let credentials = credentials(&config);
    let state = directory("state dir", "STATE_DIR", &config.state_dir);
    let work = directory("work dir", "CLAUDE_WORK_DIR", &config.claude_work_dir);
    let passthrough = passthrough(&config);
    let listen = listen(&config);
    let accounts: Vec<Row> = config
        .accounts
        .iter()
        .filter_map(|a| a.config_dir.as_deref().map(|dir| account(&a.name, dir)))
        .collect();

    // Without its directories or its address the server does not start.
    let starts = [&state, &work, &listen]
        .iter()
        .all(|r| r.status != Status::Fail);
    let claude_ready = starts && cli.status == Status::Ok;
    let passthrough_ready = starts && passthrough.status == Status::Ok;
    let mut rows = vec![cli, credentials];
    rows.extend(accounts);
    rows.extend([state, work, passthrough, listen]);

    println!(
        "claude-cli-api {} --check: the configuration in this environment",
        env!("CARGO_PKG_VERSION")
    );
    print!("{}", table(&rows));
    let word = |ready: bool| if ready { "ready" } else { "not ready" };
    let passthrough_word = match config.openai_passthrough_enabled {
        true => word(passthrough_ready),
        false => "off",
    };
    println!(
        "\nClaude Code mode: {}; passthrough: {passthrough_word}",
        word(claude_ready)
    );
    if claude_ready || passthrough_ready {
        return ExitCode::SUCCESS;
    }
    println!(
        "{}",
        match starts {
            true => "No backend is ready: the server would answer every request with an error.",
            false => "The server would not start: its directories or its address are unusable.",
        }
    );
    ExitCode::from(1)
}

/// The rows in aligned columns, each fix on its own line below its row.
fn table(rows: &[Row]) -> String {
    let item_w = rows.iter().map(|r| r.item.len()).max().unwrap_or(0).max(4);
    let status_w = 6;
    let mut out = format!("{:item_w$}  {:status_w$}  DETAIL\n", "ITEM", "STATUS");
    for r in rows {
        out += &format!(
            "{:item_w$}  {:status_w$}  {}\n",
            r.item,
            r.status.word(),
            r.detail
        );
        if let Some(fix) = &r.fix {
            out += &format!("{:w$}fix: {fix}\n", "", w = item_w + status_w + 4);
        }
    }
    out
}

/// A variable of the environment the `claude` child is given.
fn child_var<'a>(config: &'a Config, name: &str) -> Option<&'a str> {
    config
        .child_env
        .0
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Found as the server finds it, then `--version` with the child's
/// environment (exactly that, nothing of this process's own).
fn claude_cli(config: &Config) -> Row {
    const ITEM: &str = "claude CLI";
    let wanted = config.claude_path.display();
    let Some(path) = locate_cli(&config.claude_path, child_var(config, "PATH").unwrap_or(""))
    else {
        return fail(
            ITEM,
            format!("CLAUDE_PATH={wanted}: no executable file found (PATH of the child searched)"),
            "install Claude Code (npm install -g @anthropic-ai/claude-code) or set CLAUDE_PATH \
             to the claude executable",
        );
    };
    let shown = path.display();
    let fix_cli = "run it by hand to see why, or set CLAUDE_PATH to a working claude";
    let child = Command::new(&path)
        .arg("--version")
        .env_clear()
        .envs(config.child_env.0.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return fail(ITEM, format!("{shown}: cannot be started ({e})"), fix_cli),
    };
    let status = match child.wait_timeout(CLI_LIMIT) {
        Ok(Some(status)) => status,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let detail = format!("{shown}: no answer to `--version` within {CLI_LIMIT:?}");
            return fail(ITEM, detail, fix_cli);
        }
    };
    // Exited: what it wrote is all in the pipes.
    let output = child.wait_with_output().unwrap_or_else(|_| Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    });
    let first = |bytes: &[u8]| -> String {
        let text = String::from_utf8_lossy(bytes);
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        redact(line.trim()).chars().take(120).collect()
    };
    if !status.success() {
        let why = first(&output.stderr);
        let detail = format!("{shown}: `--version` failed ({status}): {why}");
        return fail(ITEM, detail, fix_cli);
    }
    row(
        ITEM,
        Status::Ok,
        format!("{shown}: {}", first(&output.stdout)),
    )
}

/// What the child would log in with. Only a warning: the CLI may find
/// credentials this check does not know about.
fn credentials(config: &Config) -> Row {
    const ITEM: &str = "credentials";
    for name in [
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_AUTH_TOKEN",
    ] {
        if let Some(value) = child_var(config, name).filter(|v| !v.is_empty()) {
            return row(ITEM, Status::Ok, format!("{name}={}", mask_key(value)));
        }
    }
    let home = Path::new(child_var(config, "HOME").unwrap_or("/nonexistent"));
    let login = home.join(".claude/.credentials.json");
    if login.is_file() {
        return row(
            ITEM,
            Status::Ok,
            format!("claude login: {}", login.display()),
        );
    }
    let detail = format!(
        "no ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or {}",
        login.display()
    );
    row(ITEM, Status::Warn, detail).with_fix(
        "set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (claude setup-token), or run \
         `claude login` as this user",
    )
}

/// One of `CLAUDE_ACCOUNTS`: its configuration directory usable by the CLI,
/// and a login of its own in it (`claude login` there, or a token in its
/// `settings.json` `env`, which the CLI honours).
fn account(name: &str, dir: &Path) -> Row {
    const ITEM: &str = "account";
    let shown = dir.display();
    if let Err(why) = crate::dirs::usable(dir) {
        return fail(
            ITEM,
            format!("{name}={shown}: {why}"),
            format!("make it, and log in there: CLAUDE_CONFIG_DIR={shown} claude login"),
        );
    }
    if dir.join(".credentials.json").is_file() {
        return row(ITEM, Status::Ok, format!("{name}={shown}: claude login"));
    }
    let settings = std::fs::read(dir.join("settings.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let env = settings.as_ref().and_then(|s| s.get("env"));
    for var in [
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
    ] {
        if let Some(value) = env.and_then(|e| e.get(var)).and_then(|v| v.as_str()) {
            let detail = format!("{name}={shown}: {var}={} in settings.json", mask_key(value));
            return row(ITEM, Status::Ok, detail);
        }
    }
    row(
        ITEM,
        Status::Warn,
        format!("{name}={shown}: no login of its own (the server's, if any, is shared)"),
    )
    .with_fix(format!(
        "CLAUDE_CONFIG_DIR={shown} claude login, or put a token in {shown}/settings.json \
         under \"env\""
    ))
}

/// Usable as the server checks it at start (made 0700 when missing, then
/// written to), and private: it holds the sessions' files.
fn directory(item: &'static str, name: &str, path: &Path) -> Row {
    let shown = path.display();
    let existed = path.exists();
    if let Err(why) = crate::dirs::usable(path) {
        return fail(
            item,
            format!("{name}={shown}: {why}"),
            format!(
                "point {name} at a directory this user can create and write, or make it: \
                 mkdir -p -m 700 {shown}"
            ),
        );
    }
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    let created = if existed { "" } else { ", created" };
    let detail = format!("{shown}: writable, mode {mode:04o}{created}");
    if mode & 0o077 != 0 {
        let detail = format!("{detail} (the server wants 0700)");
        return row(item, Status::Warn, detail).with_fix(format!("chmod 700 {shown}"));
    }
    row(item, Status::Ok, detail)
}

/// `GET {OPENAI_BASE_URL}/models` with the server's key, as the server's
/// agent sends it. Without a server key any answer below 500 will do:
/// the clients bring their own.
fn passthrough(config: &Config) -> Row {
    const ITEM: &str = "passthrough";
    if !config.openai_passthrough_enabled {
        return row(ITEM, Status::Off, "OPENAI_PASSTHROUGH_ENABLED=false");
    }
    let key = config.openai_api_key.as_ref();
    if key.is_none() && !config.allow_client_openai_key {
        return fail(
            ITEM,
            "no key: OPENAI_API_KEY is unset and ALLOW_CLIENT_OPENAI_KEY=false",
            "set OPENAI_API_KEY, or ALLOW_CLIENT_OPENAI_KEY=true, or \
             OPENAI_PASSTHROUGH_ENABLED=false",
        );
    }
    let url = format!("{}/models", config.openai_base_url);
    let agent = upstream::agent(config.upstream_connect_timeout.min(UPSTREAM_LIMIT));
    let mut request = agent
        .get(&url)
        .config()
        .timeout_global(Some(UPSTREAM_LIMIT))
        .build();
    let with_key = match key {
        Some(key) => {
            request = request.header("Authorization", format!("Bearer {}", key.expose()));
            format!("with OPENAI_API_KEY={}", key.masked())
        }
        None => "without a key (clients send X-OpenAI-API-Key)".to_string(),
    };
    let fix_url = "check OPENAI_BASE_URL and that this host can reach it, or set \
                   OPENAI_PASSTHROUGH_ENABLED=false";
    let status = match request.call() {
        Ok(response) => response.status().as_u16(),
        Err(e) => {
            let (_, cause) = upstream::classify(&e);
            return fail(
                ITEM,
                format!("GET {url} {with_key}: no answer ({cause})"),
                fix_url,
            );
        }
    };
    let detail = format!("GET {url} {with_key}: HTTP {status}");
    match (status, key.is_some()) {
        (200..=299, _) | (400..=499, false) => row(ITEM, Status::Ok, detail),
        (401 | 403, true) => fail(
            ITEM,
            detail,
            "check OPENAI_API_KEY: the upstream refused it",
        ),
        _ => fail(ITEM, detail, fix_url),
    }
}

/// The address is bound and released, as the server would bind it.
fn listen(config: &Config) -> Row {
    const ITEM: &str = "listen address";
    let addr = if config.host.contains(':') && !config.host.starts_with('[') {
        format!("[{}]:{}", config.host, config.port)
    } else {
        format!("{}:{}", config.host, config.port)
    };
    match TcpListener::bind(&addr) {
        // Dropped at once: the port is free again for the server.
        Ok(_listener) => row(ITEM, Status::Ok, format!("{addr} is free")),
        Err(e) => fail(
            ITEM,
            format!("cannot listen on {addr} ({e})"),
            "stop what listens there, or set HOST/PORT to a free address",
        ),
    }
}
