//! The rest of what agents send in Claude Code mode (issue 18), over real
//! HTTP with the fake CLI: `response_format` answered through the CLI's
//! `--json-schema` (streamed and not), images reaching the CLI as image
//! blocks, the legacy `functions` loop, `tool_choice`, and a drain while a
//! tool call waits. Tool loops themselves are in tests/it/tools.rs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::binary;
use crate::support::warm::*;
use crate::support::*;

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn schema_body(stream: bool) -> String {
    json!({"model": "sonnet", "stream": stream,
        "messages": [user(r#"describe Paris [[fake:json:{"city":"Paris","temp":21}]]"#)],
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather",
            "schema": {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}}}}})
    .to_string()
}

#[test]
fn a_json_schema_answer_is_the_structured_call_s_json() {
    let w = Warm::start(&[]);
    let r = chat(w.addr(), &[CLAUDE], &schema_body(false));
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{content}: {e}"));
    assert_eq!(parsed, json!({"city": "Paris", "temp": 21}));
    assert!(
        !content.contains("Thinking"),
        "text before the call is not the answer"
    );
    let run = w.runs().pop().unwrap();
    let schema: Value = serde_json::from_str(&run.flag("--json-schema").unwrap()).unwrap();
    assert_eq!(schema["properties"]["temp"]["type"], "number");
    assert_eq!(run.flag("--mcp-config"), None, "no functions, no bridge");

    let events = SseClient::open(w.addr(), &[CLAUDE], &schema_body(true)).collect();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), parsed);
    assert!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"].is_string())
            .count()
            > 1,
        "the JSON arrives in pieces"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // json_object asks for any object.
    let body = json!({"model": "sonnet", "messages": [user("anything")],
        "response_format": {"type": "json_object"}});
    let r = chat(w.addr(), &[CLAUDE], &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&content).unwrap(),
        json!({"ok": true})
    );
    w.finish();
}

#[test]
fn images_reach_the_cli_as_image_blocks() {
    let w = Warm::start(&[]);
    let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]}]});
    let r = chat(w.addr(), &[CLAUDE], &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.ends_with("images=2"), "{content}");
    let run = w.runs().pop().unwrap();
    let line: Value = serde_json::from_str(run.value["stdin"].as_str().unwrap()).unwrap();
    let blocks = &line["message"]["content"];
    assert_eq!(blocks[0], json!({"type": "text", "text": "what is this?"}));
    assert_eq!(
        blocks[1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
    );
    assert_eq!(
        blocks[2],
        json!({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
    );
    // The CLI's copies of images go to a temporary directory of the session.
    assert_eq!(run.value["env"]["TMPDIR"], run.value["cwd"]);

    // Too large for the API: refused before any CLI runs.
    let big = "A".repeat(7 * 1024 * 1024);
    let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{big}")}}]}]});
    let r = chat(w.addr(), &[CLAUDE], &body.to_string());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limit"));
    w.finish();
}

#[test]
fn legacy_functions_loop_with_function_call_answers() {
    let w = Warm::start(&[]);
    let question = user(r#"weather? [[fake:tools:get_weather {"city":"Oslo"}]]"#);
    let functions = json!([{"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}}}]);
    let first = json!({"model": "sonnet", "messages": [question], "functions": functions});
    let r = chat(w.addr(), &[CLAUDE], &first.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "function_call");
    let message = answer["choices"][0]["message"].clone();
    assert_eq!(message["function_call"]["name"], "get_weather");
    assert!(message.get("tool_calls").is_none());
    // A `function` message has no id: the history before it finds the turn.
    let follow = json!({"model": "sonnet", "functions": functions, "messages": [
        question, message, {"role": "function", "name": "get_weather", "content": "snow"}]});
    let r = chat(w.addr(), &[CLAUDE], &follow.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "tool results: get_weather=snow"
    );
    assert_eq!(w.pids().len(), 1);
    w.finish();
}

#[test]
fn tool_choice_none_offers_no_function_and_a_named_one_only_that_one() {
    let w = Warm::start(&[]);
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "function": {"name": "get_time"}}]);
    let none =
        json!({"model": "sonnet", "messages": [user("hi")], "tools": tools, "tool_choice": "none"});
    let r = chat(w.addr(), &[CLAUDE], &none.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.runs().pop().unwrap().flag("--mcp-config"), None);
    let named = json!({"model": "sonnet", "messages": [user("hi again")], "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "get_time"}}});
    let r = chat(w.addr(), &[CLAUDE], &named.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Ignored-Params"), Some("tool_choice"));
    let pid = w.run_of("hi again").pid;
    let text = std::fs::read_to_string(w.records.join(format!("mcp-{pid}.json"))).unwrap();
    let listed =
        &serde_json::from_str::<Value>(&text).unwrap()["servers"]["client"]["lists"][0]["tools"];
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "get_time");
    w.finish();
}

#[test]
fn the_drain_does_not_wait_for_a_tool_call_and_leaves_nothing_running() {
    let records = temp_dir("agents-drain-records");
    let records_s = records.display().to_string();
    let path = std::env::var("PATH").unwrap_or_default();
    let mut server = binary::Running::start(&[
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
        ("FAKE_CLAUDE_RECORD_DIR", &records_s),
        ("CLAUDE_ENV_PASSTHROUGH", "FAKE_CLAUDE_RECORD_DIR"),
        ("RATE_LIMIT_PER_IP", "0"),
        ("WARM_MIN_FREE_MB", "0"),
        ("SHUTDOWN_TIMEOUT_MS", "5000"),
    ]);
    let body = json!({"model": "sonnet", "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "messages": [user(r#"x [[fake:tools:get_weather {"city":"Rome"}]]"#)]});
    let r = chat(server.addr(), &[CLAUDE], &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["finish_reason"], "tool_calls");
    let health = get(server.addr(), "/health").json();
    assert_eq!(health["checks"]["waiting_for_tools"], 1, "{health}");
    // The server has the variable too; what it started has arguments.
    let started_by = |records: &std::path::Path| -> Vec<(i32, Vec<String>)> {
        processes_recording_into(records)
            .into_iter()
            .filter(|(_, argv)| argv.len() > 1)
            .collect()
    };
    let started = started_by(&records);
    assert_eq!(started.len(), 2, "the CLI and its bridge: {started:?}");
    assert!(started
        .iter()
        .any(|(_, argv)| argv.get(1).map(String::as_str) == Some("mcp-bridge")));

    let took = server.drain();
    assert!(
        took < Duration::from_secs(5),
        "a waiting call held the drain for {took:?}"
    );
    drop(server);
    let gone = wait_until(Duration::from_secs(5), || started_by(&records).is_empty());
    let left = started_by(&records);
    reap_leftovers(&left.iter().map(|(pid, _)| *pid).collect::<Vec<_>>());
    assert!(gone, "left after the drain: {left:?}");
}
