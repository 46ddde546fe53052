//! The scrape: every counter and gauge in Prometheus' text format, written
//! by hand (a few lines of text), with the gauges other parts keep read now.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use super::*;

impl Metrics {
    /// The whole scrape.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        header(
            &mut out,
            "claude_cli_api_build_info",
            "gauge",
            "The running build.",
        );
        let _ = writeln!(
            out,
            "claude_cli_api_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "When the server started (unix time).",
        );
        let _ = writeln!(out, "process_start_time_seconds {started:.3}");

        header(
            &mut out,
            "claude_cli_api_requests_total",
            "counter",
            "Requests answered, by route, mode and status class.",
        );
        for ((route, mode, class), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_requests_total{{route=\"{route}\",mode=\"{mode}\",status=\"{class}\"}} {n}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its last byte, by mode.",
        );
        for (mode, histogram) in MODES.iter().zip(&self.latency) {
            let name = "claude_cli_api_request_duration_seconds";
            for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
                let n = bucket.load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{mode=\"{mode}\",le=\"{bound}\"}} {n}");
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{mode=\"{mode}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{mode=\"{mode}\"}} {sum:.6}");
            let _ = writeln!(out, "{name}_count{{mode=\"{mode}\"}} {count}");
        }
        gauge(
            &mut out,
            "claude_cli_api_sse_streams_open",
            "Event streams being written.",
            self.streams_open.load(Ordering::Relaxed).max(0),
        );
        gauge(
            &mut out,
            "claude_cli_api_claude_processes_live",
            "claude CLI processes alive, warm ones included.",
            gauges.processes_live,
        );
        gauge(
            &mut out,
            "claude_cli_api_claude_processes_warm",
            "claude CLI processes kept warm between turns.",
            gauges.processes_warm,
        );
        gauge(
            &mut out,
            "claude_cli_api_claude_processes_queued",
            "Requests waiting for a CLI process slot.",
            gauges.processes_queued,
        );
        gauge(
            &mut out,
            "claude_cli_api_tool_calls_waiting",
            "Turns stopped for client functions, waiting for their results.",
            gauges.tool_calls_waiting,
        );
        gauge(
            &mut out,
            "claude_cli_api_sessions_live",
            "Claude Code sessions this server knows.",
            gauges.sessions_live,
        );

        header(
            &mut out,
            "claude_cli_api_turns_total",
            "counter",
            "Claude Code turns ended, by cause.",
        );
        for ((_, cause), n) in TURN_ENDS.iter().zip(&self.turn_ends) {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "claude_cli_api_turns_total{{cause=\"{cause}\"}} {n}");
        }
        header(
            &mut out,
            "claude_cli_api_tool_waits_given_up_total",
            "counter",
            "Turns waiting for tool results that were given up, by cause.",
        );
        for (cause, n) in self.given_up() {
            let _ = writeln!(
                out,
                "claude_cli_api_tool_waits_given_up_total{{cause=\"{cause}\"}} {n}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_upstream_errors_total",
            "counter",
            "Passthrough answers that were errors, by upstream status.",
        );
        for (status, n) in self.upstream_errors.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_upstream_errors_total{{status=\"{status}\"}} {n}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_rate_limited_total",
            "counter",
            "Requests refused by a rate limit, by limit.",
        );
        for (limit, n) in self.rate_limited.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_rate_limited_total{{limit=\"{limit}\"}} {n}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_cost_usd_total",
            "counter",
            "What the claude CLI reported its turns cost, by model.",
        );
        for (model, usd) in self.cost_usd.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_cost_usd_total{{model=\"{model}\"}} {usd:.9}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_tokens_total",
            "counter",
            "Tokens of Claude Code turns by model and kind: input read fresh, read from \
             the prompt cache (cache_read), written to it (cache_write), output.",
        );
        for (model, by_kind) in self.tokens.lock().iter() {
            for (kind, n) in TOKEN_KINDS.iter().zip(by_kind) {
                let _ = writeln!(
                    out,
                    "claude_cli_api_tokens_total{{model=\"{model}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        header(
            &mut out,
            "claude_cli_api_compactions_total",
            "counter",
            "Conversations the claude CLI compacted (summarized to fit its context), by model.",
        );
        for (model, n) in self.compactions.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_compactions_total{{model=\"{model}\"}} {n}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_sessions_moved_total",
            "counter",
            "Sessions carried to another account (CLAUDE_ACCOUNTS) because theirs had no \
             allowance left, by account.",
        );
        let by_account = self.by_account.lock();
        header(
            &mut out,
            "claude_cli_api_account_turns_total",
            "counter",
            "Claude Code turns answered, by account (CLAUDE_ACCOUNTS; `default` without).",
        );
        for (account, (turns, _)) in by_account.iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_account_turns_total{{account=\"{account}\"}} {turns}"
            );
        }
        header(
            &mut out,
            "claude_cli_api_account_cost_usd_total",
            "counter",
            "What the CLI reported those turns cost, by account.",
        );
        for (account, (_, usd)) in by_account.iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_account_cost_usd_total{{account=\"{account}\"}} {usd:.9}"
            );
        }
        drop(by_account);
        for ((from, to), n) in self.moves.lock().iter() {
            let _ = writeln!(
                out,
                "claude_cli_api_sessions_moved_total{{from=\"{from}\",to=\"{to}\"}} {n}"
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}
