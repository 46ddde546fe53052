//! The `claude-cli-api` binary: settings from the environment, the logger,
//! the server, and the signals that drain it.

use std::process::ExitCode;

use claude_cli_api::{logging, start, Config};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// glibc's malloc keeps a cache of freed blocks in every thread, which a
/// server with a thread per connection pays for in every connection: under
/// 64 connections the caches held 4.5 MB (peak RSS 12.7 MB with them, 8.1
/// without), and after the load the blocks they had pinned kept the heap
/// from shrinking. They can only be turned off by the environment glibc
/// starts with, so the server executes its own binary again, once, with
/// `glibc.malloc.tcache_count=0` added to `GLIBC_TUNABLES`. A value the
/// operator set for the cache is kept; if the re-execution fails (no
/// `/proc`, or the binary was replaced on disk), the server runs as it is.
/// Children never see the variable: their environment is an allowlist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn without_per_thread_malloc_caches() {
    use std::os::unix::process::CommandExt;
    const TUNABLES: &str = "GLIBC_TUNABLES";
    const NO_CACHE: &str = "glibc.malloc.tcache_count=0";
    let current = std::env::var_os(TUNABLES).unwrap_or_default();
    let current = current.to_string_lossy();
    if current.contains("glibc.malloc.tcache_count") {
        return;
    }
    let wanted = if current.is_empty() {
        NO_CACHE.to_string()
    } else {
        format!("{current}:{NO_CACHE}")
    };
    // The path /proc/self/exe points to, not the link itself: the process
    // name shown by ps and top comes from the path executed.
    let program = match std::env::current_exe() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("claude-cli-api: could not re-execute with {NO_CACHE} ({error}); continuing without");
            return;
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let error = std::process::Command::new(program)
        .arg0(arg0)
        .args(args)
        .env(TUNABLES, wanted)
        .exec();
    eprintln!("claude-cli-api: could not re-execute with {NO_CACHE} ({error}); continuing without");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn without_per_thread_malloc_caches() {}

/// glibc gives every busy thread its own malloc arena and keeps them for
/// good, so memory taken under load never came back. Two arenas are enough
/// for a server whose threads mostly wait on sockets and pipes.
fn limit_malloc_arenas() {
    // SAFETY: mallopt is called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    without_per_thread_malloc_caches();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(errors) => {
            for e in errors {
                eprintln!("claude-cli-api: invalid configuration: {e}");
            }
            return ExitCode::from(2);
        }
    };
    limit_malloc_arenas();
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
            "openai_passthrough": claude_cli_api::backend::Backend::health(&app.passthrough),
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
