//! Client functions in Claude Code mode (issue 18) over real HTTP, with the
//! fake CLI (fixtures/fake-claude) calling them through the real bridge
//! (`claude-cli-api mcp-bridge`, the built binary): an answer that ends
//! with `tool_calls`, the results that carry the same CLI turn on (found by
//! their ids, with or without the session header), parallel calls, ids
//! nobody waits for, another key's results, results that come too late, a
//! client that sends a new question instead, and the drain.
//!
//! The fake's directive `[[fake:tools:NAME ARGS;;NAME ARGS]]` makes its
//! model call those functions; once the results are in it answers
//! `tool results: NAME=TEXT | ...`, so a test sees which result reached
//! which call. `mcp-PID.json` in the record dir holds what the bridge
//! listed and answered.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}
    ])
}

fn with_tools(messages: &[Value], stream: bool) -> String {
    json!({"model": "sonnet", "messages": messages, "tools": weather_tools(), "stream": stream})
        .to_string()
}

const PARIS: &str = r#"weather? [[fake:tools:get_weather {"city":"Paris"}]]"#;
const TWO: &str =
    r#"both [[fake:tools:get_weather {"city":"Paris"};;get_time {"zone":"Europe/Paris"}]]"#;

/// The assistant message of an answer, as a client sends it back.
fn echoed(answer: &Value) -> Value {
    answer["choices"][0]["message"].clone()
}

fn result_for(call: &Value, text: &str) -> Value {
    json!({"role": "tool", "tool_call_id": call["id"], "content": text})
}

fn post(w: &Warm, headers: &[(&str, &str)], body: String) -> HttpResponse {
    let mut all = vec![CLAUDE];
    all.extend_from_slice(headers);
    chat(w.addr(), &all, &body)
}

/// What the fake CLI `pid` recorded of its MCP server (the bridge).
fn mcp_record(w: &Warm, pid: i32) -> Value {
    let text = std::fs::read_to_string(w.records.join(format!("mcp-{pid}.json")))
        .unwrap_or_else(|e| panic!("no MCP record of {pid}: {e}"));
    serde_json::from_str::<Value>(&text).unwrap()["servers"]["client"].clone()
}

#[test]
fn a_call_ends_the_answer_and_its_result_carries_the_same_turn_on() {
    let w = Warm::start(&[]);
    let first = post(&w, &[], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let answer = first.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let message = echoed(&answer);
    assert_eq!(message["content"], "Let me check.");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"), "{call}");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();

    // The CLI was started with the bridge and nothing else, and the bridge
    // lists exactly the request's functions, read-only.
    let run = w.run_of(PARIS);
    assert_eq!(run.flag("--allowedTools").as_deref(), Some("mcp__client"));
    assert!(run.argv().contains(&"--strict-mcp-config".to_string()));
    let env = &run.value["env"];
    assert!(env["TMPDIR"]
        .as_str()
        .unwrap()
        .starts_with(w.work.to_str().unwrap()));
    assert!(
        env["MCP_TOOL_TIMEOUT"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 600_000
    );
    let listed = &mcp_record(&w, run.pid)["lists"][0]["tools"];
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(listed[0]["annotations"]["readOnlyHint"], true);
    assert_eq!(listed[0]["inputSchema"]["required"], json!(["city"]));

    // No session header: the result's id finds the waiting turn.
    let follow = post(
        &w,
        &[],
        with_tools(
            &[user(PARIS), message.clone(), result_for(call, "sunny 21C")],
            false,
        ),
    );
    assert_eq!(follow.status, 200, "{}", follow.text());
    assert_eq!(follow.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(follow.header("X-Claude-Session-Created"), None);
    assert_eq!(follow.header("X-Claude-Warm"), Some("true"));
    let done = follow.json();
    assert_eq!(done["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        done["choices"][0]["message"]["content"],
        "tool results: get_weather=sunny 21C"
    );
    assert_eq!(w.pids(), vec![run.pid], "one CLI for the whole loop");
    let answered = &mcp_record(&w, run.pid)["calls"][0];
    assert_eq!(
        answered["params"]["_meta"]["claudecode/toolUseId"],
        call["id"]
    );
    assert_eq!(answered["answer"]["result"]["isError"], false);

    // The conversation goes on by its history, on the same process.
    let third = post(
        &w,
        &[],
        with_tools(
            &[
                user(PARIS),
                message.clone(),
                result_for(call, "sunny 21C"),
                done["choices"][0]["message"].clone(),
                user("thanks"),
            ],
            false,
        ),
    );
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(third.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(third.header("X-Claude-Warm"), Some("true"));
    assert_eq!(w.pids(), vec![run.pid]);
    w.finish();
}

#[test]
fn streamed_calls_use_the_standard_deltas_and_parallel_calls_come_together() {
    let w = Warm::start(&[]);
    let mut headers = vec![CLAUDE];
    headers.push(("Content-Type", "application/json"));
    let events = SseClient::open(w.addr(), &headers, &with_tools(&[user(TWO)], true)).collect();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(deltas[0]["role"], "assistant");
    let text: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    // Assemble the calls the way the SDKs do.
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for delta in &deltas {
        for piece in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = piece["index"].as_u64().unwrap() as usize;
            if let Some(id) = piece["id"].as_str() {
                assert_eq!(index, calls.len(), "calls open in order");
                assert_eq!(piece["type"], "function");
                let name = piece["function"]["name"].as_str().unwrap().to_string();
                calls.push((id.to_string(), name, String::new()));
            }
            if let Some(args) = piece["function"]["arguments"].as_str() {
                calls[index].2.push_str(args);
            }
        }
    }
    assert_eq!(calls.len(), 2, "{events:?}");
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[1].1, "get_time");
    let args: Value = serde_json::from_str(&calls[1].2).unwrap();
    assert_eq!(args, json!({"zone": "Europe/Paris"}));
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");

    let pid = w.runs()[0].pid;

    // Results in the other order, streamed, with the session header.
    let message = json!({"role": "assistant", "content": "Let me check.", "tool_calls": calls.iter().map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})).collect::<Vec<_>>()});
    let results = [
        json!({"role": "tool", "tool_call_id": calls[1].0, "content": "12:00"}),
        json!({"role": "tool", "tool_call_id": calls[0].0, "content": [{"type": "text", "text": "rain"}]}),
    ];
    let mut messages = vec![user(TWO), message];
    messages.extend(results);
    let events = SseClient::open(w.addr(), &headers, &with_tools(&messages, true)).collect();
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "tool results: get_weather=rain | get_time=12:00");
    assert_eq!(w.pids(), vec![pid]);
    let calls_made = mcp_record(&w, pid)["calls"].as_array().unwrap().len();
    assert_eq!(calls_made, 2);
    w.finish();
}

#[test]
fn results_nobody_waits_for_get_a_400_at_once() {
    let w = Warm::start(&[]);
    let started = Instant::now();
    let fake_call = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "toolu_nobody", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]});
    let r = post(
        &w,
        &[],
        with_tools(
            &[
                user("q"),
                fake_call,
                json!({"role": "tool", "tool_call_id": "toolu_nobody", "content": "x"}),
            ],
            false,
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_tool_call_id");
    assert_eq!(r.json()["error"]["param"], "messages");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(w.pids().is_empty(), "no CLI was started for it");

    // With the header of a session this server does not have (behind a load
    // balancer it lives on another instance), a 404 that sends it on.
    let elsewhere = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
    let body = with_tools(
        &[
            user("q"),
            json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "toolu_nobody", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "toolu_nobody", "content": "x"}),
        ],
        false,
    );
    let r = post(&w, &[("X-Claude-Session-ID", elsewhere)], body.clone());
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error_code(), "session_not_found");
    // A session it has, with ids nothing waits for: the 400.
    let sid = w.say(None, "sonnet", "hello").sid;
    let r = post(&w, &[("X-Claude-Session-ID", &sid)], body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_tool_call_id");
    w.finish();
}

#[test]
fn only_the_key_that_started_the_turn_can_carry_it_on() {
    let w = Warm::start(&[("API_KEYS", "sk-cca-alice-1234567890,sk-cca-bob-0987654321")]);
    let alice = ("Authorization", "Bearer sk-cca-alice-1234567890");
    let bob = ("Authorization", "Bearer sk-cca-bob-0987654321");
    let first = post(&w, &[alice], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    let follow = with_tools(&[user(PARIS), message, result_for(&call, "sunny")], false);
    let stolen = post(&w, &[bob], follow.clone());
    assert_eq!(stolen.status, 400, "{}", stolen.text());
    assert_eq!(stolen.error_code(), "invalid_tool_call_id");
    let mine = post(&w, &[alice], follow);
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(
        mine.json()["choices"][0]["message"]["content"],
        "tool results: get_weather=sunny"
    );
    w.finish();
}

#[test]
fn results_that_come_too_late_still_continue_their_conversation() {
    let w = Warm::start(&[("TOOL_RESULT_TIMEOUT_MS", "300")]);
    let first = post(&w, &[], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    let pid = w.runs()[0].pid;
    // The call is answered with an error once the wait is over.
    assert!(
        wait_until(Duration::from_secs(10), || {
            mcp_record(&w, pid)["calls"][0]["answer"]["result"]["isError"] == true
        }),
        "{} {}",
        mcp_record(&w, pid),
        get(w.addr(), "/health").text()
    );
    let text = mcp_record(&w, pid)["calls"][0]["answer"]["result"]["content"][0]["text"].clone();
    assert!(text.as_str().unwrap().contains("in time"), "{text}");
    // The session is free again, and its process was kept.
    assert!(wait_until(Duration::from_secs(10), || w.health_warm()
        ["processes"]
        == 1));
    // The results, late, are the session's next turn, as text.
    let late = post(
        &w,
        &[],
        with_tools(&[user(PARIS), message, result_for(&call, "sunny")], false),
    );
    assert_eq!(late.status, 200, "{}", late.text());
    assert_eq!(late.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(late.header("X-Claude-Warm"), Some("true"));
    let runs = w.runs();
    let latest = runs.iter().max_by_key(|r| r.nth).unwrap();
    let prompt = latest.value["prompt"].as_str().unwrap().to_string();
    assert!(prompt.contains("[get_weather, call "), "{prompt}");
    assert!(prompt.ends_with("sunny"), "{prompt}");
    assert_eq!(w.pids(), vec![pid]);
    w.finish();
}

/// Turns waiting for tool results, as `/health` shows them.
fn waiting(w: &Warm) -> u64 {
    get(w.addr(), "/health").json()["checks"]["waiting_for_tools"]
        .as_u64()
        .unwrap()
}

/// pydantic-ai's and LangChain's structured output forces a call that is
/// the whole answer and is never answered: such turns never take the pool.
#[test]
fn turns_waiting_for_tools_give_way_to_new_work() {
    let w = Warm::start(&[
        ("MAX_CONCURRENT_PROCESSES", "2"),
        ("MAX_TOOL_WAITS", "2"),
        ("MAX_TOOL_WAITS_PER_KEY", "2"),
        ("WARM_SESSIONS", "0"),
        ("SPARE_PROCESSES", "0"),
    ]);
    let forced = |city: &str| {
        let prompt = format!(r#"{city} [[fake:tools:get_weather {{"city":"{city}"}}]]"#);
        with_tools(&[user(&prompt)], false)
    };
    let first = post(&w, &[], forced("Oslo"));
    assert_eq!(first.status, 200, "{}", first.text());
    let second = post(&w, &[], forced("Rome"));
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(waiting(&w), 2);
    // The pool is full of waiting turns: the oldest gives way, at once.
    let started = std::time::Instant::now();
    let plain = post(&w, &[], with_tools(&[user("hello")], false));
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(waiting(&w), 1);
    let metrics = get(w.addr(), "/metrics").text();
    assert!(
        metrics.contains("claude_cli_api_tool_waits_given_up_total{cause=\"pressure\"} 1"),
        "{metrics}"
    );
    // The given-up conversation goes on when its results come, cold.
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    let user_text = r#"Oslo [[fake:tools:get_weather {"city":"Oslo"}]]"#;
    let late = post(
        &w,
        &[],
        with_tools(
            &[user(user_text), message, result_for(&call, "snow")],
            false,
        ),
    );
    assert_eq!(late.status, 200, "{}", late.text());
    assert_eq!(
        late.header("X-Claude-Session-ID"),
        first.header("X-Claude-Session-ID")
    );
    assert_eq!(late.header("X-Claude-Warm"), Some("false"));
    w.finish();
}

/// One key's abandoned calls cannot fill the pool.
#[test]
fn a_key_keeps_only_its_newest_waiting_turns() {
    let w = Warm::start(&[("MAX_TOOL_WAITS_PER_KEY", "1")]);
    let mut answers = Vec::new();
    for city in ["Oslo", "Rome"] {
        let prompt = format!(r#"{city} [[fake:tools:get_weather {{"city":"{city}"}}]]"#);
        let r = post(&w, &[], with_tools(&[user(&prompt)], false));
        assert_eq!(r.status, 200, "{}", r.text());
        answers.push((prompt, r));
    }
    // The first was given up, in the background: its results, sent at
    // once, wait for that to end instead of finding the session busy.
    let (prompt, first) = &answers[0];
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    let late = post(
        &w,
        &[],
        with_tools(&[user(prompt), message, result_for(&call, "snow")], false),
    );
    assert_eq!(late.status, 200, "{}", late.text());
    assert_eq!(
        late.header("X-Claude-Session-ID"),
        first.header("X-Claude-Session-ID")
    );
    assert_eq!(waiting(&w), 1);
    let metrics = get(w.addr(), "/metrics").text();
    assert!(
        metrics.contains("claude_cli_api_tool_waits_given_up_total{cause=\"key_limit\"} 1"),
        "{metrics}"
    );
    w.finish();
}

#[test]
fn a_new_question_instead_of_results_declines_the_calls_and_is_answered() {
    let w = Warm::start(&[]);
    let first = post(&w, &[], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    let pid = w.runs()[0].pid;
    let next = post(
        &w,
        &[("X-Claude-Session-ID", &sid)],
        with_tools(&[user("never mind, what is 2+2?")], false),
    );
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.header("X-Claude-Warm"), Some("true"));
    let content = next.json()["choices"][0]["message"]["content"].clone();
    assert!(content.as_str().unwrap().contains("turns=2"), "{content}");
    let answer = &mcp_record(&w, pid)["calls"][0]["answer"]["result"];
    assert_eq!(answer["isError"], true);
    assert_eq!(
        answer["content"][0]["text"],
        "The client did not run this tool."
    );
    assert_eq!(w.pids(), vec![pid]);
    w.finish();
}

#[test]
fn a_follow_up_with_results_is_not_counted_against_the_session_rate() {
    let w = Warm::start(&[("RATE_LIMIT_PER_SESSION", "1")]);
    let sid = w.say(None, "sonnet", "hello").sid;
    let session = ("X-Claude-Session-ID", sid.as_str());
    // The session's one turn a minute.
    let first = post(&w, &[session], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    let follow = post(
        &w,
        &[session],
        with_tools(&[user(PARIS), message, result_for(&call, "sunny")], false),
    );
    assert_eq!(follow.status, 200, "{}", follow.text());
    let another = post(&w, &[session], with_tools(&[user("more")], false));
    assert_eq!(another.status, 429, "a new turn still counts");
    w.finish();
}

#[test]
fn a_waiting_turn_holds_one_of_its_key_s_slots_but_its_results_get_in() {
    let key = ("Authorization", "Bearer sk-cca-agent-1234567890");
    let w = Warm::start(&[
        ("API_KEYS", "sk-cca-agent-1234567890"),
        ("MAX_CONCURRENT_PER_KEY", "1"),
    ]);
    let first = post(&w, &[key], with_tools(&[user(PARIS)], false));
    assert_eq!(first.status, 200, "{}", first.text());
    let message = echoed(&first.json());
    let call = message["tool_calls"][0].clone();
    // The waiting turn is the key's one request in flight.
    let other = post(&w, &[key], with_tools(&[user("something else")], false));
    assert_eq!(other.status, 429, "{}", other.text());
    assert_eq!(other.error_code(), "rate_limit_exceeded");
    let follow = post(
        &w,
        &[key],
        with_tools(&[user(PARIS), message, result_for(&call, "sunny")], false),
    );
    assert_eq!(follow.status, 200, "{}", follow.text());
    // Answered: the slot is free again.
    let again = post(&w, &[key], with_tools(&[user("and now?")], false));
    assert_eq!(again.status, 200, "{}", again.text());
    w.finish();
}

#[test]
fn a_warm_process_is_told_of_new_functions_instead_of_being_replaced() {
    let w = Warm::start(&[]);
    let only_weather = |messages: &[Value]| {
        json!({"model": "sonnet", "messages": messages,
            "tools": [weather_tools()[0].clone()]})
        .to_string()
    };
    let first = post(&w, &[], only_weather(&[user("hello")]));
    assert_eq!(first.status, 200, "{}", first.text());
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    let pid = w.runs()[0].pid;
    // Both functions now, and a call of the new one.
    let ask = r#"time? [[fake:tools:get_time {"zone":"UTC"}]]"#;
    let second = post(
        &w,
        &[("X-Claude-Session-ID", &sid)],
        with_tools(&[user(ask)], false),
    );
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("X-Claude-Warm"), Some("true"));
    let answer = second.json();
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_time"
    );
    let lists = mcp_record(&w, pid)["lists"].clone();
    let names = |n: usize| -> Vec<String> {
        lists[n]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(0), ["get_weather"]);
    assert_eq!(
        names(lists.as_array().unwrap().len() - 1),
        ["get_weather", "get_time"]
    );
    assert_eq!(w.pids(), vec![pid]);
    // An output schema is fixed at start: that still needs a new process.
    let schema = json!({"model": "sonnet", "messages": [user("as json")], "tools": weather_tools(),
        "response_format": {"type": "json_object"}});
    let third = post(&w, &[("X-Claude-Session-ID", &sid)], schema.to_string());
    // The call of the second turn is still waiting: the new question
    // declines it, then needs a CLI started with the schema.
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(third.header("X-Claude-Warm"), Some("false"));
    w.finish();
}
