//! The `claude-cli-api` binary: settings from the environment, the logger,
//! the server, and the signals that drain it; `--check` (module `check`),
//! `--version` and `--help`.

use std::process::ExitCode;

use claude_cli_api::{logging, start, StartError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "\
Usage: claude-cli-api [--check | --version | --help]

An OpenAI-compatible server in front of the claude CLI and an OpenAI upstream.
Without arguments it starts the server; every setting comes from environment
variables (see docs/DEPLOYMENT.md).

  --check      read the configuration as the server would, check the claude CLI,
               credentials, directories, upstream and address, print a table;
               exit 0 when at least one backend is ready, 1 when none, 2 when
               the configuration is invalid
  --version    print the version
  --help       print this help

(`mcp-bridge SOCKET` is internal: the claude CLI starts it as the tool bridge.)
";

fn main() -> ExitCode {
    // The CLI starts this binary as the stdio end of the tool bridge.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, socket] = args.as_slice() {
        if command == "mcp-bridge" {
            let status = claude_cli_api::claude::tools::relay::run(socket);
            return ExitCode::from(u8::try_from(status).unwrap_or(1));
        }
    }
    match args.as_slice() {
        [] => {}
        [flag] if flag == "--check" => return claude_cli_api::check::run(),
        [flag] if flag == "--version" || flag == "-V" => {
            println!("claude-cli-api {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--help" || flag == "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [first, ..] => {
            eprintln!("claude-cli-api: unexpected argument {first:?}");
            eprintln!("Try 'claude-cli-api --help' for more information.");
            return ExitCode::from(2);
        }
    }
    let Some(config) = claude_cli_api::check::read_config() else {
        return ExitCode::from(2);
    };
    logging::init(&config);
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("claude-cli-api: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    if config.api_keys.is_empty() && !config.is_loopback() {
        log::warn!(
            "no API_KEY/API_KEYS configured while listening on {}: anyone who can reach it \
             can use it",
            config.host
        );
    }
    let grace = config.shutdown_timeout;
    let server = match start(config) {
        Ok(server) => server,
        Err(StartError::Directories(lines)) => {
            for line in lines {
                eprintln!("claude-cli-api: unusable directory: {line}");
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("claude-cli-api: {e}");
            return ExitCode::from(1);
        }
    };
    let app = server.app().clone();
    log::info!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "addr": server.addr().to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "claude_cli": app.claude.cli_path().map(|p| p.display().to_string()),
            "openai_passthrough": app.passthrough.health(),
        })
    );

    if signals.forever().next().is_none() {
        return ExitCode::from(1);
    }
    log::info!(
        "shutdown signal received: draining for up to {} ms",
        grace.as_millis()
    );
    // A second signal cuts the drain short: kill the children and leave.
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            log::warn!("second signal: killing children and exiting now");
            app.claude.kill_all();
            std::process::exit(0);
        }
    });
    let report = server.shutdown(grace);
    log::info!(
        "{}",
        serde_json::json!({
            "event": "stopped",
            "abandoned_requests": report.abandoned,
            "drain_ms": report.took.as_millis() as u64,
        })
    );
    ExitCode::SUCCESS
}
