//! `GET /metrics` (issue 22), over real HTTP with the fake CLI and a fake
//! upstream: after requests of each kind and each fault the scrape is
//! Prometheus' text format, names and labels say what happened, and every
//! counter only goes up. The key guards it unless `METRICS_PUBLIC=true`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::fake_openai::{Answer, FakeOpenAi};
use crate::support::warm::*;
use crate::support::*;

const KEY: &str = "sk-cca-metrics-1234567890";

/// Every sample of a scrape by its name and labels, after checking that
/// each family has its HELP and TYPE before its samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut typed = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            typed.push(words.next().unwrap_or("").to_string());
            let kind = words.next().unwrap_or("");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| typed.iter().any(|t| t == base))
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == family), "no TYPE before {line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

fn scrape(w: &Warm) -> BTreeMap<String, f64> {
    let auth = format!("Bearer {KEY}");
    let r = request(
        w.addr(),
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("Content-Type")
        .unwrap_or("")
        .starts_with("text/plain"));
    parse(&r.text())
}

/// A scrape once the server has counted `n` requests other than scrapes:
/// a request is counted after its last byte is written, so just after the
/// client has read it.
fn scrape_after(w: &Warm, n: f64) -> BTreeMap<String, f64> {
    let counted = |samples: &BTreeMap<String, f64>| -> f64 {
        samples
            .iter()
            .filter(|(k, _)| {
                k.starts_with("claude_cli_api_requests_total") && !k.contains("\"metrics\"")
            })
            .map(|(_, v)| v)
            .sum()
    };
    let mut samples = scrape(w);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while counted(&samples) < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        samples = scrape(w);
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} not in {:#?}", samples.keys().collect::<Vec<_>>()))
}

#[test]
fn a_scrape_tells_what_happened_and_counters_only_go_up() {
    let upstream = FakeOpenAi::start(Answer::json(
        200,
        r#"{"id":"x","object":"chat.completion","choices":[]}"#,
    ));
    let base = upstream.base_url();
    let w = Warm::start(&[
        ("API_KEYS", KEY),
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", "sk-upstream"),
        ("RATE_LIMIT_PER_SESSION", "1"),
    ]);
    let auth = format!("Bearer {KEY}");
    let key = ("Authorization", auth.as_str());
    let hi = body("sonnet", &[user("hi")]);
    assert_eq!(request(w.addr(), "GET", "/metrics", &[], b"").status, 401);

    assert_eq!(chat(w.addr(), &[key], &hi).status, 200);
    upstream.answer(Answer::json(500, r#"{"error":{"message":"boom"}}"#));
    assert_eq!(chat(w.addr(), &[key], &hi).status, 500);
    let answered = chat(w.addr(), &[key, CLAUDE], &hi);
    assert_eq!(answered.status, 200);
    let sid = answered.header("X-Claude-Session-ID").unwrap().to_string();
    // The session's one turn in the window, then its refusal.
    let again = [key, CLAUDE, ("X-Claude-Session-ID", sid.as_str())];
    assert_eq!(chat(w.addr(), &again, &hi).status, 200);
    assert_eq!(chat(w.addr(), &again, &hi).status, 429);
    let crash = json!({"model": "sonnet", "stream": true, "messages": [user("[[fake:crash]]")]});
    let events = SseClient::open(w.addr(), &[key, CLAUDE], &crash.to_string()).collect();
    assert!(
        events.iter().any(|e| e.contains("stream_error")),
        "{events:?}"
    );
    let tools = json!({"model": "sonnet", "messages": [user(r#"[[fake:tools:get_weather {"city":"Oslo"}]]"#)],
        "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
    let waiting = chat(w.addr(), &[key, CLAUDE], &tools.to_string());
    assert_eq!(waiting.json()["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chat(w.addr(), &[], &hi).status, 401);

    let first = scrape_after(&w, 8.0);
    let requests = |mode: &str, class: &str| {
        format!("claude_cli_api_requests_total{{route=\"chat_completions\",mode=\"{mode}\",status=\"{class}\"}}")
    };
    assert_eq!(value(&first, &requests("passthrough", "2xx")), 1.0);
    assert_eq!(value(&first, &requests("passthrough", "5xx")), 1.0);
    assert_eq!(value(&first, &requests("claude-code", "2xx")), 4.0);
    assert_eq!(value(&first, &requests("claude-code", "4xx")), 1.0);
    assert_eq!(value(&first, &requests("none", "4xx")), 1.0);
    assert_eq!(
        value(
            &first,
            "claude_cli_api_upstream_errors_total{status=\"500\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &first,
            "claude_cli_api_rate_limited_total{limit=\"session\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&first, "claude_cli_api_turns_total{cause=\"answered\"}"),
        3.0
    );
    assert_eq!(
        value(&first, "claude_cli_api_turns_total{cause=\"cli_error\"}"),
        1.0
    );
    assert_eq!(value(&first, "claude_cli_api_tool_calls_waiting"), 1.0);
    assert_eq!(value(&first, "claude_cli_api_sse_streams_open"), 0.0);
    assert!(value(&first, "claude_cli_api_claude_processes_live") >= 1.0);
    assert!(value(&first, "claude_cli_api_sessions_live") >= 2.0);
    assert!(value(&first, "claude_cli_api_cost_usd_total{model=\"sonnet\"}") > 0.0);
    // The fake CLI reports cache reads and writes besides fresh input.
    for kind in ["input", "cache_read", "cache_write", "output"] {
        let series = format!("claude_cli_api_tokens_total{{model=\"sonnet\",kind=\"{kind}\"}}");
        assert!(value(&first, &series) > 0.0, "{series}");
    }
    assert_eq!(
        value(&first, "claude_cli_api_build_info{version=\"0.1.0\"}"),
        1.0
    );
    assert!(value(&first, "process_start_time_seconds") > 1.7e9);
    let histogram = "claude_cli_api_request_duration_seconds";
    assert_eq!(
        value(
            &first,
            &format!("{histogram}_count{{mode=\"passthrough\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &first,
            &format!("{histogram}_bucket{{mode=\"passthrough\",le=\"+Inf\"}}")
        ),
        2.0
    );
    assert!(
        value(
            &first,
            &format!("{histogram}_bucket{{mode=\"claude-code\",le=\"300\"}}")
        ) >= 5.0
    );

    // The tool call's answer, more requests, and a scrape again.
    let call = &waiting.json()["choices"][0]["message"]["tool_calls"][0];
    let results = json!({"model": "sonnet", "tools": tools["tools"], "messages": [
        tools["messages"][0], waiting.json()["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "snow"}]});
    assert_eq!(
        chat(w.addr(), &[key, CLAUDE], &results.to_string()).status,
        200
    );
    assert_eq!(chat(w.addr(), &[key], &hi).status, 500);
    let second = scrape_after(&w, 10.0);
    assert_eq!(value(&second, "claude_cli_api_tool_calls_waiting"), 0.0);
    assert_eq!(
        value(
            &second,
            "claude_cli_api_upstream_errors_total{status=\"500\"}"
        ),
        2.0
    );
    assert_eq!(
        value(&second, "claude_cli_api_turns_total{cause=\"answered\"}"),
        4.0
    );
    // The scrapes count themselves too.
    assert!(
        value(
            &second,
            "claude_cli_api_requests_total{route=\"metrics\",mode=\"none\",status=\"2xx\"}"
        ) >= 1.0
    );
    for (series, before) in &first {
        let counted = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .any(|s| series.split('{').next().unwrap_or("").ends_with(s));
        if counted {
            assert!(value(&second, series) >= *before, "{series} went down");
        }
    }
    w.finish();
}

#[test]
fn metrics_public_opens_the_scrape_without_a_key() {
    let w = Warm::start(&[("API_KEYS", KEY), ("METRICS_PUBLIC", "true")]);
    let r = get(w.addr(), "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("claude_cli_api_build_info"));
    // Only the scrape: the API still wants the key.
    assert_eq!(
        chat(w.addr(), &[CLAUDE], &body("sonnet", &[user("hi")])).status,
        401
    );
}
