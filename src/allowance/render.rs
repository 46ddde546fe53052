//! The allowance as the server shows it: `GET /v1/usage`, the short form in
//! `/health`, the gauges of `/metrics`, and the
//! `anthropic-ratelimit-unified-*` headers a Messages API client (Claude
//! Code) reads from Anthropic's answers.

use std::fmt::Write;

use serde_json::{json, Value};

use super::{now_secs, refusal_at, Allowance, Known};

/// The API's header names for the windows it has names for.
const HEADER_NAMES: &[(&str, &str)] = &[("five_hour", "5h"), ("seven_day", "7d")];

/// Unix seconds as `2026-12-06T14:00:00Z`.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
}

fn status_value(status: &str) -> u8 {
    match status {
        "allowed_warning" => 1,
        "rejected" => 2,
        _ => 0,
    }
}

impl Allowance {
    /// One account's part of `GET /v1/usage`: its windows, as last
    /// reported.
    pub fn account_json(&self, name: &str) -> Value {
        let known = self.known();
        let now = now_secs();
        let windows: Vec<Value> = known
            .windows
            .iter()
            .map(|(kind, w)| {
                json!({
                    "kind": kind,
                    "utilization": w.utilization,
                    "status": w.status,
                    "resets_at": w.resets_at.map(iso8601),
                    "resets_in_seconds": w.resets_at.map(|at| at.saturating_sub(now)),
                })
            })
            .collect();
        let refusal = refusal_at(&known, now);
        json!({
            "name": name,
            "status": known.status,
            "refusing_until": refusal.map(|r| iso8601(r.resets_at)),
            "windows": windows,
            "last_seen": (known.seen_ms > 0).then(|| iso8601(known.seen_ms / 1000)),
            "refusals": known.refusals,
        })
    }

    /// The short form `/health` carries (`null` before any report).
    pub fn health_json(&self) -> Value {
        let known = self.known();
        if known.seen_ms == 0 {
            return Value::Null;
        }
        let mut short = serde_json::Map::new();
        short.insert("status".into(), json!(known.status));
        for (kind, w) in &known.windows {
            short.insert(kind.clone(), json!(w.utilization));
        }
        Value::Object(short)
    }

    /// Anthropic's `anthropic-ratelimit-unified-*` headers of the latest
    /// report (none before one).
    pub fn unified_headers(&self) -> Vec<(String, String)> {
        let known = self.known();
        unified_headers_of(&known)
    }
}

/// The allowance's series in `/metrics`, each account's under its name.
pub fn write_metrics<'a>(accounts: impl Iterator<Item = (&'a str, Known)>, out: &mut String) {
    let now = now_secs();
    let accounts: Vec<(&str, Known)> = accounts.collect();
    let series: [(&str, &str, &str); 4] = [
        (
            "claude_cli_api_allowance_utilization",
            "gauge",
            "How much of each window of a login's subscription allowance is used (0 to 1), \
             as last reported.",
        ),
        (
            "claude_cli_api_allowance_reset_seconds",
            "gauge",
            "Seconds until each window of the allowance resets.",
        ),
        (
            "claude_cli_api_allowance_status",
            "gauge",
            "Each window's status: 0 allowed, 1 allowed_warning (nearly spent), 2 rejected.",
        ),
        (
            "claude_cli_api_allowance_refusals_total",
            "counter",
            "Turns refused because a window of the allowance was spent, by window.",
        ),
    ];
    for (n, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (account, known) in &accounts {
            let labels = |window: &str| format!("{{account=\"{account}\",window=\"{window}\"}}");
            match n {
                0 => {
                    for (window, w) in &known.windows {
                        if let Some(u) = w.utilization {
                            let _ = writeln!(out, "{name}{} {u}", labels(window));
                        }
                    }
                }
                1 => {
                    for (window, w) in &known.windows {
                        if let Some(at) = w.resets_at {
                            let left = at.saturating_sub(now);
                            let _ = writeln!(out, "{name}{} {left}", labels(window));
                        }
                    }
                }
                2 => {
                    for (window, w) in &known.windows {
                        let status = status_value(&w.status);
                        let _ = writeln!(out, "{name}{} {status}", labels(window));
                    }
                }
                _ => {
                    for (window, count) in &known.refusals {
                        let _ = writeln!(out, "{name}{} {count}", labels(window));
                    }
                }
            }
        }
    }
}

pub(super) fn unified_headers_of(known: &Known) -> Vec<(String, String)> {
    let prefix = "anthropic-ratelimit-unified-";
    let mut headers = Vec::new();
    let Some(status) = &known.status else {
        return headers;
    };
    headers.push((format!("{prefix}status"), status.clone()));
    if let Some(limiting) = &known.limiting {
        headers.push((format!("{prefix}representative-claim"), limiting.clone()));
        if let Some(at) = known.windows.get(limiting).and_then(|w| w.resets_at) {
            headers.push((format!("{prefix}reset"), at.to_string()));
        }
    }
    for (kind, short) in HEADER_NAMES {
        let Some(w) = known.windows.get(*kind) else {
            continue;
        };
        headers.push((format!("{prefix}{short}-status"), w.status.clone()));
        if let Some(u) = w.utilization {
            headers.push((format!("{prefix}{short}-utilization"), u.to_string()));
        }
        if let Some(at) = w.resets_at {
            headers.push((format!("{prefix}{short}-reset"), at.to_string()));
        }
    }
    headers
}
