//! The Anthropic Messages API (issue 21), over real HTTP with the fake
//! CLI: the key in `x-api-key` or as a bearer, errors in Anthropic's shape
//! whatever raised them (validation, auth, size, rate, drain, an unknown
//! session), the event stream, a tool loop, and a resume by header.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

const KEY: &str = "sk-cca-anthropic-1234567890";

fn messages(w: &Warm, headers: &[(&str, &str)], body: &Value) -> HttpResponse {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("anthropic-version", "2023-06-01"),
    ];
    all.extend_from_slice(headers);
    request(
        w.addr(),
        "POST",
        "/v1/messages",
        &all,
        body.to_string().as_bytes(),
    )
}

fn hello(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-6", "max_tokens": 256,
        "messages": [{"role": "user", "content": text}]})
}

/// Anthropic's error shape with `kind`, and nothing of OpenAI's.
fn assert_anthropic_error(r: &HttpResponse, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(body["error"].get("code").is_none(), "{body}");
}

/// The message's (first) tool_use block.
fn tool_use_of(message: &Value) -> Value {
    message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["type"] == "tool_use")
        .cloned()
        .unwrap_or_else(|| panic!("a tool_use block: {message}"))
}

fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .collect()
}

#[test]
fn the_key_comes_as_x_api_key_or_bearer_and_errors_are_anthropic_s() {
    let w = Warm::start(&[("API_KEYS", KEY)]);
    let bearer = format!("Bearer {KEY}");
    let r = messages(&w, &[("x-api-key", KEY)], &hello("by x-api-key"));
    assert_eq!(r.status, 200, "{}", r.text());
    let message = r.json();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-6");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert!(text_of(&message).contains("turns=1"));
    assert_eq!(r.header("X-Backend-Mode"), Some("claude-code"));
    assert_eq!(r.header("X-Claude-Ignored-Params"), Some("max_tokens"));
    let r = messages(&w, &[("Authorization", &bearer)], &hello("by bearer"));
    assert_eq!(r.status, 200, "{}", r.text());

    assert_anthropic_error(
        &messages(&w, &[], &hello("no key")),
        401,
        "authentication_error",
    );
    let wrong = messages(&w, &[("x-api-key", "sk-cca-wrong-000000000")], &hello("x"));
    assert_anthropic_error(&wrong, 401, "authentication_error");
    assert!(wrong.text().contains("'x-api-key'"), "{}", wrong.text());
    // Elsewhere the key is a bearer only: x-api-key means nothing there.
    let chat = request(
        w.addr(),
        "POST",
        "/v1/chat/completions",
        &[
            ("Content-Type", "application/json"),
            ("x-api-key", KEY),
            CLAUDE,
        ],
        body("sonnet", &[user("hi")]).as_bytes(),
    );
    assert_eq!(chat.status, 401);
    assert_eq!(chat.error_code(), "missing_api_key");

    let key = [("x-api-key", KEY)];
    let mut no_max = hello("x");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert_anthropic_error(&messages(&w, &key, &no_max), 400, "invalid_request_error");
    let mut unknown = hello("x");
    unknown["model"] = json!("llama-3-70b");
    assert_anthropic_error(&messages(&w, &key, &unknown), 400, "invalid_request_error");
    let gone = (
        "X-Claude-Session-ID",
        "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c",
    );
    assert_anthropic_error(
        &messages(&w, &[key[0], gone], &hello("x")),
        404,
        "not_found_error",
    );
    let count = request(
        w.addr(),
        "POST",
        "/v1/messages/count_tokens",
        &[("Content-Type", "application/json"), key[0]],
        hello("x").to_string().as_bytes(),
    );
    assert_anthropic_error(&count, 400, "invalid_request_error");
    assert!(count.text().contains("not supported"));
    let not_json = request(
        w.addr(),
        "POST",
        "/claude/v1/messages",
        &[("Content-Type", "application/json"), key[0]],
        b"{",
    );
    assert_anthropic_error(&not_json, 400, "invalid_request_error");
    // The rest of the Messages API is not served, nor sent to the upstream.
    for path in ["/v1/messages/batches", "/claude/v1/messages/batches"] {
        let batches = request(w.addr(), "GET", path, &[key[0]], b"");
        assert_anthropic_error(&batches, 404, "not_found_error");
    }
    w.finish();
}

#[test]
fn limits_and_the_drain_answer_in_anthropic_s_shape_too() {
    let w = Warm::start(&[("MAX_BODY_BYTES", "2048"), ("RATE_LIMIT_PER_IP", "3")]);
    let big = hello(&"x".repeat(4096));
    assert_anthropic_error(&messages(&w, &[], &big), 413, "request_too_large");
    let mut last = messages(&w, &[], &hello("one"));
    for _ in 0..5 {
        last = messages(&w, &[], &hello("again"));
    }
    assert_anthropic_error(&last, 429, "rate_limit_error");
    assert!(last.header("Retry-After").is_some());
    // OpenAI's routes keep OpenAI's shape.
    let chat = chat(w.addr(), &[CLAUDE], &body("sonnet", &[user("hi")]));
    assert_eq!(chat.status, 429);
    assert_eq!(chat.error_code(), "rate_limit_exceeded");
    let app = w.server.as_ref().unwrap().app();
    app.draining.store(true, Ordering::SeqCst);
    assert_anthropic_error(&messages(&w, &[], &hello("late")), 503, "overloaded_error");
    app.draining.store(false, Ordering::SeqCst);
    w.finish();
}

#[test]
fn a_stream_is_one_message_of_anthropic_events() {
    let w = Warm::start(&[]);
    let mut body = hello("[[fake:say]]Streaming words to you");
    body["stream"] = json!(true);
    body["temperature"] = json!(0.5);
    let stream = SseClient::open_at(w.addr(), "/v1/messages", &[], &body.to_string());
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("X-Claude-Ignored-Params"),
        Some("max_tokens,temperature")
    );
    let events: Vec<Value> = stream
        .collect()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("JSON: {e}")))
        .collect();
    let mut kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Streaming words to you");
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    w.finish();
}

#[test]
fn a_tool_loop_answers_with_tool_use_and_feeds_tool_results_to_the_waiting_call() {
    let w = Warm::start(&[]);
    let tools = json!([{"name": "get_weather", "description": "weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let question = json!({"role": "user", "content": r#"weather? [[fake:tools:get_weather {"city":"Oslo"}]]"#});
    let first =
        json!({"model": "sonnet", "max_tokens": 100, "tools": tools, "messages": [question]});
    let r = messages(&w, &[], &first);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["stop_reason"], "tool_use");
    let call = tool_use_of(&answer);
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
    let follow = json!({"model": "sonnet", "max_tokens": 100, "tools": tools, "messages": [
        question,
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "snow"}]}]});
    let r = messages(&w, &[], &follow);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(text_of(&r.json()), "tool results: get_weather=snow");
    assert_eq!(r.json()["stop_reason"], "end_turn");
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    assert_eq!(w.pids().len(), 1);
    // A result for a call nobody waits for.
    let stray = json!({"model": "sonnet", "max_tokens": 100, "tools": tools, "messages": [
        question,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}]});
    assert_anthropic_error(&messages(&w, &[], &stray), 400, "invalid_request_error");
    w.finish();
}

#[test]
fn the_session_header_resumes_warm_and_comes_back_on_every_answer() {
    let w = Warm::start(&[]);
    let r = messages(&w, &[], &hello("first"));
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    assert_eq!(r.header("X-Claude-Session-Created"), Some("true"));
    // The fake CLI's running total: turn T costs T × 0.0001.
    assert_eq!(r.header("X-Claude-Cost-USD"), Some("0.0001"));
    assert!(r.header("X-Claude-Duration-Ms").is_some());
    let r = messages(&w, &[("X-Claude-Session-ID", &sid)], &hello("second"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    assert!(text_of(&r.json()).contains("turns=2"));
    assert_eq!(
        r.header("X-Claude-Cost-USD"),
        Some("0.0002"),
        "this turn's share"
    );
    assert_eq!(w.pids().len(), 1);
    w.finish();
}

#[test]
fn a_stream_that_breaks_ends_with_an_error_event() {
    let w = Warm::start(&[]);
    let mut body = hello("[[fake:crash]]");
    body["stream"] = json!(true);
    let events = SseClient::open_at(w.addr(), "/v1/messages", &[], &body.to_string()).collect();
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["type"], "error", "{events:?}");
    assert_eq!(last["error"]["type"], "api_error");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude CLI"));
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["type"], "message_start");
    assert!(!events
        .iter()
        .any(|e| e == "[DONE]" || e.contains("message_stop")));
    w.finish();
}

/// The Anthropic SDK's tool runner: the first request starts a thread, the
/// next carries only its `tool_result` and the previous answer's id.
#[test]
fn a_thread_continues_the_session_that_gave_the_message() {
    let w = Warm::start(&[(
        "API_KEYS",
        "sk-cca-anthropic-1234567890,sk-cca-other-0987654321",
    )]);
    let alice = ("x-api-key", KEY);
    let tools = json!([{"type": "custom", "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first = json!({"model": "sonnet", "max_tokens": 100, "tools": tools,
        "thread": {"type": "create"},
        "messages": [{"role": "user",
            "content": r#"weather? [[fake:tools:get_weather {"city":"Oslo"}]]"#}]});
    let r = messages(&w, &[alice], &first);
    assert_eq!(r.status, 200, "{}", r.text());
    let first_answer = r.json();
    let answer = first_answer.clone();
    assert_eq!(answer["stop_reason"], "tool_use");
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let call = tool_use_of(&answer);
    let first_call = call.clone();
    // Only the result and the thread: no tools, no history.
    let next = json!({"model": "sonnet", "max_tokens": 100,
        "thread": {"type": "continue", "previous_message_id": answer["id"]},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "snow"}]}]});
    let r = messages(&w, &[alice], &next);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(text_of(&r.json()), "tool results: get_weather=snow");
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    let after_results = r.json();
    // The first answer was continued already: the SDK replays on this code.
    let again = messages(&w, &[alice], &next);
    assert_anthropic_error(&again, 409, "invalid_request_error");
    assert_eq!(
        again.json()["error"]["details"]["error_code"],
        "thread_already_continued"
    );
    // A new question on the thread, by the last answer's id, without the
    // tools: the thread's are offered still, on the same warm process.
    let question = json!({"model": "sonnet", "max_tokens": 100,
        "thread": {"type": "continue", "previous_message_id": after_results["id"]},
        "messages": [{"role": "user",
            "content": r#"and Rome? [[fake:tools:get_weather {"city":"Rome"}]]"#}]});
    let r = messages(&w, &[alice], &question);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    let answer = r.json();
    assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
    let call = tool_use_of(&answer);
    assert_eq!(call["name"], "get_weather");
    let next = json!({"model": "sonnet", "max_tokens": 100,
        "thread": {"type": "continue", "previous_message_id": answer["id"]},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "sun"}]}]});
    let r = messages(&w, &[alice], &next);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(text_of(&r.json()), "tool results: get_weather=sun");
    // The same conversation resent whole, as a new runner starts it, finds
    // its session by the history's digest.
    let whole = json!({"model": "sonnet", "max_tokens": 100, "tools": tools,
        "thread": {"type": "create"},
        "messages": [
            first["messages"][0],
            {"role": "assistant", "content": first_answer["content"]},
            {"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": first_call["id"], "content": "snow"}]},
            {"role": "assistant", "content": after_results["content"]},
            question["messages"][0],
            {"role": "assistant", "content": answer["content"]},
            next["messages"][0],
            {"role": "assistant", "content": r.json()["content"]},
            {"role": "user", "content": "thanks"}]});
    let r = messages(&w, &[alice], &whole);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    assert_eq!(w.pids().len(), 1);
    // Unknown ids and another key's are 404 in Anthropic's shape.
    let mut unknown = question.clone();
    unknown["thread"]["previous_message_id"] = json!("msg_0000");
    let r = messages(&w, &[alice], &unknown);
    assert_anthropic_error(&r, 404, "not_found_error");
    // The SDK's tool runner replays the whole conversation on this code.
    assert_eq!(
        r.json()["error"]["details"]["error_code"],
        "thread_not_found"
    );
    let other = ("x-api-key", "sk-cca-other-0987654321");
    assert_anthropic_error(&messages(&w, &[other], &question), 404, "not_found_error");
    w.finish();
}

/// What Claude Code 2.1.331 sends as a client of `/v1/messages`.
#[test]
fn claude_code_s_requests_are_served() {
    let w = Warm::start(&[]);
    let body = json!({"model": "claude-opus-5-5", "max_tokens": 128000, "stream": false,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331;"},
                   {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>Skills</system-reminder>"},
                {"type": "text", "text": "Say hello"}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment\nLinux"}]}],
        "tools": [
            {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
            {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}, "defer_loading": true},
            {"type": "web_search_20250305", "name": "web_search"}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"},
        "metadata": {"user_id": "u"}});
    let r = messages(&w, &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(text_of(&r.json()).contains("system=yes"), "{}", r.text());
    assert_eq!(
        r.header("X-Claude-Ignored-Params"),
        Some("max_tokens,metadata,tools:defer_loading,tools:web_search_20250305")
    );
    w.finish();
}

/// pydantic-ai's next run after a forced call: the call's result and the
/// next question in one user message. The waiting turn takes the result,
/// then the question is the next turn, on the same process.
#[test]
fn results_then_a_question_finish_the_waiting_turn_then_ask_it() {
    let w = Warm::start(&[]);
    let tools = json!([{"name": "final_result", "input_schema": {"type": "object"}}]);
    let ask =
        json!({"role": "user", "content": r#"Paris [[fake:tools:final_result {"city":"Paris"}]]"#});
    let first = json!({"model": "sonnet", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "any"}, "messages": [ask]});
    let r = messages(&w, &[], &first);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let call = answer["content"][1].clone();
    assert_eq!(call["type"], "tool_use", "{answer}");
    let next = json!({"model": "sonnet", "max_tokens": 100, "tools": tools, "messages": [
        ask,
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "Final result processed."},
            {"type": "text", "text": "Now Rome."}]}]});
    let r = messages(&w, &[], &next);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    let text = text_of(&r.json());
    assert!(
        text.contains("turns=2"),
        "the question is the next turn: {text}"
    );
    assert_eq!(w.pids().len(), 1);
    // The waiting call got the client's result, not an error.
    let pid = w.pids()[0];
    // The fake's bridge records the answer as it hands it on: wait for that.
    let path = w.records.join(format!("mcp-{pid}.json"));
    let answered = || {
        let record = std::fs::read_to_string(&path).ok()?;
        let record: Value = serde_json::from_str(&record).ok()?;
        let answer = record["servers"]["client"]["calls"][0]["answer"].clone();
        (!answer.is_null()).then_some(answer)
    };
    assert!(wait_until(Duration::from_secs(5), || answered().is_some()));
    let answer = answered().unwrap();
    assert!(
        answer.to_string().contains("Final result processed."),
        "{answer}"
    );
    assert!(answer["result"]["isError"] != json!(true), "{answer}");
    w.finish();
}

/// Errors found behind the translation name the Messages API's things.
#[test]
fn errors_speak_of_tool_result_blocks() {
    let w = Warm::start(&[]);
    assert_eq!(messages(&w, &[], &hello("first")).status, 200);
    let lone = json!({"model": "sonnet", "max_tokens": 100, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}]});
    let r = messages(&w, &[], &lone);
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("tool_use blocks"), "{message}");
    assert!(!message.contains("tool_calls"), "{message}");
    w.finish();
}

/// Anthropic's keep-alive is its own `ping` event, as its API sends it.
#[test]
fn a_long_silence_carries_ping_events() {
    let w = Warm::start(&[("STREAM_KEEPALIVE_MS", "200")]);
    let mut body = hello("[[fake:sleep:1]] hi");
    body["stream"] = json!(true);
    let sse = SseClient::open_at(w.addr(), "/v1/messages", &[], &body.to_string());
    assert_eq!(sse.status, 200);
    let raw = sse.raw_rest();
    let start = raw
        .find("event: message_start")
        .unwrap_or_else(|| panic!("{raw}"));
    let pings = raw[..start]
        .matches("event: ping\ndata: {\"type\": \"ping\"}\n\n")
        .count();
    assert!(pings >= 2, "{pings} pings before the message: {raw}");
    assert!(!raw.contains(": keep-alive"), "{raw}");
    assert!(raw.contains("event: message_stop"), "{raw}");
    w.finish();
}
