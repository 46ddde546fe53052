//! The allowance's reading of the CLI's reports (the recorded ones), its
//! refusals and their end, what it keeps across a restart, and how it is
//! shown.

use serde_json::{json, Value};

use super::*;

/// The `rate_limit_info` of each `rate_limit_event` the real CLI wrote
/// (fixtures/claude-cli-2.1.331/ratelimit-subscription.stdout): allowed,
/// warned, rejected, then allowed again after the reset.
fn recorded() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/claude-cli-2.1.331/ratelimit-subscription.stdout"
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "rate_limit_event")
        .map(|l| l["rate_limit_info"].clone())
        .collect()
}

/// A report like the CLI's, with its reset `secs` from now.
fn report(status: &str, utilization: f64, secs: i64) -> Value {
    let at = (now_secs() as i64 + secs) as u64;
    json!({"status": status, "resetsAt": at, "rateLimitType": "five_hour",
        "unifiedWindows": {
            "five_hour": {"utilization": utilization, "resetsAt": at, "status": status},
            "seven_day": {"utilization": 0.3, "resetsAt": at + 86_400, "status": "allowed"}}})
}

#[test]
fn the_recorded_reports_read_as_the_cli_meant_them() {
    let infos = recorded();
    let statuses: Vec<&str> = infos
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "allowed",
            "allowed_warning",
            "allowed_warning",
            "rejected",
            "allowed"
        ]
    );
    let allowance = Allowance::in_memory();
    allowance.note(&infos[1]);
    let known = allowance.known();
    assert_eq!(known.windows["five_hour"].utilization, Some(0.8));
    assert_eq!(known.windows["seven_day"].status, "allowed");
    assert_eq!(known.limiting.as_deref(), Some("five_hour"));
    // Recorded long ago: the warning's window has reset since.
    assert_eq!(allowance.warning(), None);
    allowance.note(&infos[3]);
    assert_eq!(allowance.known().windows["five_hour"].status, "rejected");
}

#[test]
fn a_rejected_window_refuses_until_its_reset_and_the_margin() {
    let allowance = Allowance::in_memory();
    assert_eq!(allowance.refusal(), None);
    allowance.note(&report("allowed_warning", 0.91, 3600));
    assert_eq!(allowance.refusal(), None);
    let warning = allowance.warning().unwrap();
    assert!(warning.starts_with("five_hour 0.91 resets 20"), "{warning}");
    allowance.note(&report("rejected", 1.0, 30));
    let refusal = allowance.refusal().unwrap();
    assert_eq!(refusal.window, "five_hour");
    assert!(refusal.resets_at > now_secs());
    // Reset a moment ago, within the margin: still refused.
    allowance.note(&report("rejected", 1.0, -1));
    assert!(allowance.refusal().is_some());
    // Past the margin: admitted again, with no report needed.
    allowance.note(&report("rejected", 1.0, -(RESET_MARGIN_SECS as i64) - 1));
    assert_eq!(allowance.refusal(), None);
}

#[test]
fn a_turn_refused_without_a_reset_to_come_waits_a_short_while() {
    let allowance = Allowance::in_memory();
    allowance.note(&report("rejected", 1.0, -600));
    let refusal = allowance.refused();
    assert_eq!(refusal.window, "five_hour");
    let wait = refusal.resets_at - now_secs();
    assert!((UNKNOWN_RESET_WAIT_SECS - 1..=UNKNOWN_RESET_WAIT_SECS).contains(&wait));
    assert_eq!(allowance.refusal(), Some(refusal));
    // A report with a reset to come is believed.
    allowance.note(&report("rejected", 1.0, 7200));
    let refusal = allowance.refused();
    assert!(refusal.resets_at > now_secs() + 7000);
    assert_eq!(allowance.known().refusals["five_hour"], 2);
}

#[test]
fn a_restart_keeps_the_refusal() {
    let dir = std::env::temp_dir().join(format!("allowance-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(FILE);
    Allowance::kept_at(file.clone()).note(&report("rejected", 1.0, 600));
    let again = Allowance::kept_at(file);
    assert_eq!(
        again.refusal().map(|r| r.window).as_deref(),
        Some("five_hour")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shown_as_usage_health_metrics_and_anthropic_headers() {
    let allowance = Allowance::in_memory();
    assert_eq!(allowance.health_json(), Value::Null);
    assert!(allowance.unified_headers().is_empty());
    allowance.note(&report("allowed_warning", 0.91, 3600));
    let account = allowance.account_json("default");
    assert_eq!(account["status"], "allowed_warning");
    assert_eq!(account["windows"][0]["kind"], "five_hour");
    assert_eq!(account["windows"][0]["utilization"], 0.91);
    assert!(account["windows"][0]["resets_in_seconds"].as_u64().unwrap() > 3500);
    assert_eq!(
        allowance.health_json(),
        json!({"status": "allowed_warning", "five_hour": 0.91, "seven_day": 0.3})
    );
    let headers: std::collections::HashMap<String, String> =
        allowance.unified_headers().into_iter().collect();
    let prefix = "anthropic-ratelimit-unified-";
    assert_eq!(headers[&format!("{prefix}status")], "allowed_warning");
    assert_eq!(headers[&format!("{prefix}5h-utilization")], "0.91");
    assert_eq!(headers[&format!("{prefix}7d-status")], "allowed");
    assert_eq!(
        headers[&format!("{prefix}representative-claim")],
        "five_hour"
    );
    let mut scrape = String::new();
    render::write_metrics([("work", allowance.known())].into_iter(), &mut scrape);
    let five = "{account=\"work\",window=\"five_hour\"}";
    assert!(scrape.contains(&format!("claude_cli_api_allowance_utilization{five} 0.91")));
    assert!(scrape.contains(&format!("claude_cli_api_allowance_status{five} 1")));
}

#[test]
fn dates_are_written_in_utc() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso8601(1_796_544_310), "2026-12-06T08:05:10Z");
    assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
}

#[test]
fn a_new_session_goes_where_most_allowance_is_left_never_where_none_is() {
    use crate::config::Account;
    let dir = std::env::temp_dir().join(format!("allowances-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let account = |name: &str| Account {
        name: name.into(),
        config_dir: Some(dir.join(name)),
    };
    let all = Allowances::kept_in(&dir, &[account("a"), account("b"), account("c")]);
    // Nothing reported yet: the fewest live sessions, then the first.
    assert_eq!(all.place(None, |_| 0).unwrap(), "a");
    assert_eq!(all.place(None, |n| usize::from(n == "a")).unwrap(), "b");
    // The window nearest its limit decides.
    all.of("a").note(&report("allowed_warning", 0.91, 3600));
    all.of("b").note(&report("allowed", 0.4, 3600));
    all.of("c").note(&report("allowed", 0.6, 3600));
    assert_eq!(all.place(None, |_| 0).unwrap(), "b");
    assert_eq!(
        all.place(Some(&["a".into(), "c".into()]), |_| 0).unwrap(),
        "c"
    );
    // A refusing account is never chosen; with every one refusing, the
    // earliest reset is the answer.
    all.of("b").note(&report("rejected", 1.0, 900));
    all.of("c").note(&report("rejected", 1.0, 300));
    assert_eq!(all.place(None, |_| 0).unwrap(), "a");
    all.of("a").note(&report("rejected", 1.0, 600));
    let (account, refusal) = all.place(None, |_| 0).unwrap_err();
    assert_eq!(account, "c");
    assert!(refusal.resets_at <= now_secs() + 300);
    // Each account keeps its own file.
    assert!(dir.join("allowance-b.json").is_file());
    let usage = all.usage_json();
    let names: Vec<&str> = usage["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
