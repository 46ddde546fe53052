//! The subscription allowance (issue 32), over real HTTP with the fake
//! CLI's `limit` turns (a `rate_limit_event` as 2.1.331 writes one, and the
//! refused turn's result): the warning header, `/v1/usage`, `/health` and
//! `/metrics`; a refusal answered 429 with a true `Retry-After` in both
//! APIs' shapes; new turns refused at once, without a CLI, until the reset;
//! admitted again by themselves after it; refused again with the new reset
//! believed; and the refusal kept across a restart.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

fn chat_turn(w: &Warm, sid: Option<&str>, text: &str) -> HttpResponse {
    let mut headers = vec![CLAUDE];
    if let Some(sid) = sid {
        headers.push(("X-Claude-Session-ID", sid));
    }
    let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]});
    chat(w.addr(), &headers, &body.to_string())
}

fn messages_turn(w: &Warm, text: &str) -> HttpResponse {
    let body = json!({"model": "claude-sonnet-4-6", "max_tokens": 256,
        "messages": [{"role": "user", "content": text}]});
    let headers = [
        ("Content-Type", "application/json"),
        ("anthropic-version", "2023-06-01"),
    ];
    request(
        w.addr(),
        "POST",
        "/v1/messages",
        &headers,
        body.to_string().as_bytes(),
    )
}

fn usage(w: &Warm) -> Value {
    let r = get(w.addr(), "/v1/usage");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn retry_after(r: &HttpResponse) -> u64 {
    r.header("Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
}

#[test]
fn a_nearly_spent_window_is_warned_of_and_shown() {
    let w = Warm::start(&[]);
    assert_eq!(usage(&w)["accounts"][0]["windows"], json!([]));
    let r = chat_turn(&w, None, "[[fake:limit:allowed_warning:3600]] hi");
    assert_eq!(r.status, 200, "{}", r.text());
    let warning = r.header("X-Claude-Usage-Warning").unwrap_or_default();
    assert!(warning.starts_with("five_hour 0.91 resets 20"), "{warning}");
    let account = &usage(&w)["accounts"][0];
    assert_eq!(account["status"], "allowed_warning");
    let five = &account["windows"][0];
    assert_eq!(
        (&five["kind"], &five["utilization"]),
        (&json!("five_hour"), &json!(0.91))
    );
    assert!(five["resets_in_seconds"].as_u64().unwrap() > 3500, "{five}");
    let health = get(w.addr(), "/health").json();
    assert_eq!(health["checks"]["allowance"]["five_hour"], 0.91, "{health}");
    let scrape = get(w.addr(), "/metrics").text();
    assert!(scrape
        .contains("claude_cli_api_allowance_status{account=\"default\",window=\"five_hour\"} 1"));
    assert!(scrape.contains(
        "claude_cli_api_allowance_utilization{account=\"default\",window=\"seven_day\"} 0.3"
    ));

    // A Messages answer carries Anthropic's own headers, for Claude Code.
    let r = messages_turn(&w, "hello");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("anthropic-ratelimit-unified-5h-utilization"),
        Some("0.91")
    );
    assert_eq!(
        r.header("anthropic-ratelimit-unified-status"),
        Some("allowed_warning")
    );
    w.finish();
}

#[test]
fn a_spent_allowance_refuses_until_its_reset_then_admits_again() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "before").sid;
    let r = chat_turn(&w, Some(&sid), "[[fake:limit:rejected:3]] hi");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "usage_limit_reached");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("five_hour limit"), "{message}");
    let wait = retry_after(&r);
    assert!((3..=6).contains(&wait), "Retry-After {wait}");
    let refused_at = Instant::now();

    // Refused at once, with no CLI asked: no turn reaches the fake.
    let turns = w.runs().len();
    let again = chat_turn(&w, Some(&sid), "while refused");
    assert_eq!(again.status, 429, "{}", again.text());
    assert!(retry_after(&again) <= wait);
    let anthropic = messages_turn(&w, "while refused");
    assert_eq!(anthropic.status, 429);
    assert_eq!(anthropic.json()["error"]["type"], "rate_limit_error");
    assert_eq!(
        anthropic.header("anthropic-ratelimit-unified-status"),
        Some("rejected")
    );
    assert!(anthropic.header("Retry-After").is_some());
    assert_eq!(w.runs().len(), turns, "a refused turn started a CLI");
    let scrape = get(w.addr(), "/metrics").text();
    assert!(
        scrape.contains(
            "claude_cli_api_allowance_refusals_total{account=\"default\",window=\"five_hour\"} 3"
        ),
        "{scrape}"
    );

    // Past the reset (and its margin): admitted, with no restart.
    let until = refused_at + Duration::from_secs(wait);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let after = chat_turn(&w, Some(&sid), "after the reset");
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.header("X-Claude-Warm"), Some("true"));

    // Refused again after the reset: the new reset time is believed.
    let r = chat_turn(&w, Some(&sid), "[[fake:limit:rejected:600]] again");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(retry_after(&r) > 590, "Retry-After {}", retry_after(&r));
    w.finish();
}

#[test]
fn a_refusal_is_kept_across_a_restart() {
    let state = temp_dir("allowance-restart");
    let work = state.join("cli-work");
    let records = temp_dir("allowance-restart-records");
    let (state_s, work_s) = (state.display().to_string(), work.display().to_string());
    let settings = [
        ("STATE_DIR", state_s.as_str()),
        ("CLAUDE_WORK_DIR", work_s.as_str()),
    ];
    let a = Warm::start_on(records.clone(), &settings, |_| {});
    let r = chat_turn(&a, None, "[[fake:limit:rejected:600]] hi");
    assert_eq!(r.status, 429, "{}", r.text());
    a.finish();

    let b = Warm::start_on(records, &settings, |_| {});
    let turns = b.runs().len();
    let r = chat_turn(&b, None, "after the restart");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "usage_limit_reached");
    assert!(retry_after(&r) > 590);
    assert_eq!(
        b.runs().len(),
        turns,
        "a CLI was started for a refused turn"
    );
    b.finish();
}
