//! The Responses API in Claude Code mode (issue 20), over real HTTP with
//! the fake CLI: `previous_response_id` chains on one warm process, forks
//! into a session of their own, unknown and other keys' ids, the function
//! call loop, whole-history input, stored responses, streaming, and the
//! relay of the same paths without the header.

use serde_json::{json, Value};

use crate::support::fake_openai::{Answer, FakeOpenAi};
use crate::support::warm::*;
use crate::support::*;

const ALICE: (&str, &str) = ("Authorization", "Bearer sk-cca-alice-1234567890");
const BOB: (&str, &str) = ("Authorization", "Bearer sk-cca-bob-0987654321");
const KEYS: (&str, &str) = ("API_KEYS", "sk-cca-alice-1234567890,sk-cca-bob-0987654321");

fn create(w: &Warm, headers: &[(&str, &str)], body: Value) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(
        w.addr(),
        "POST",
        "/claude/v1/responses",
        &all,
        body.to_string().as_bytes(),
    )
}

/// A 200 response object.
fn answered(r: HttpResponse) -> (Value, HttpResponse) {
    assert_eq!(r.status, 200, "{}", r.text());
    (r.json(), r)
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().into_iter().flatten())
        .filter_map(|part| part["text"].as_str())
        .collect()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])
}

#[test]
fn a_previous_response_id_chain_stays_on_one_warm_process() {
    let w = Warm::start(&[]);
    let (first, r1) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-4.1", "input": "one", "instructions": "Be brief."}),
    ));
    assert!(first["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["model"], "gpt-4.1");
    assert_eq!(first["instructions"], "Be brief.");
    assert!(output_text(&first).contains("turns=1"), "{first}");
    assert!(first["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();
    let mut previous = first["id"].as_str().unwrap().to_string();
    for (turn, text) in [(2, "two"), (3, "three")] {
        let (next, r) = answered(create(
            &w,
            &[],
            json!({"model": "gpt-4.1", "input": text, "instructions": "Be brief.",
                "previous_response_id": previous}),
        ));
        assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
        assert_eq!(r.header("X-Claude-Warm"), Some("true"), "turn {turn}");
        // The fake CLI's running total: turn T costs T × 0.0001.
        let share = format!("0.000{turn}");
        assert_eq!(r.header("X-Claude-Cost-USD"), Some(share.as_str()));
        assert_eq!(next["previous_response_id"], previous.as_str());
        assert!(
            output_text(&next).contains(&format!("turns={turn}")),
            "{next}"
        );
        previous = next["id"].as_str().unwrap().to_string();
    }
    assert_eq!(w.pids().len(), 1, "one CLI process served the chain");
    // The last response can be read back.
    let got = get(w.addr(), &format!("/claude/v1/responses/{previous}"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], previous.as_str());
    assert!(output_text(&got.json()).contains("turns=3"));
    w.finish();
}

#[test]
fn a_reply_to_an_older_response_forks_a_session_and_leaves_the_original() {
    let w = Warm::start(&[]);
    let (a, ra) = answered(create(
        &w,
        &[],
        json!({"model": "sonnet", "input": "alpha"}),
    ));
    let sid = ra.header("X-Claude-Session-ID").unwrap().to_string();
    let a_id = a["id"].as_str().unwrap();
    let (b, _) = answered(create(
        &w,
        &[],
        json!({"model": "sonnet", "input": "beta", "previous_response_id": a_id}),
    ));
    // Back to `a`: a new session, started from the history up to `a`.
    let (fork, rf) = answered(create(
        &w,
        &[],
        json!({"model": "sonnet", "input": "gamma", "previous_response_id": a_id}),
    ));
    let fork_sid = rf.header("X-Claude-Session-ID").unwrap().to_string();
    assert_ne!(fork_sid, sid);
    assert_eq!(rf.header("X-Claude-Session-Created"), Some("true"));
    let prompts: Vec<String> = w
        .runs()
        .iter()
        .filter_map(|r| r.value["prompt"].as_str().map(str::to_string))
        .filter(|p| p.contains("gamma"))
        .collect();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].starts_with("User: alpha\n\nAssistant: ") && !prompts[0].contains("beta"),
        "the fork's history is the conversation up to `a`: {prompts:?}"
    );
    // The original goes on from `b`, on its own process.
    let (c, rc) = answered(create(
        &w,
        &[],
        json!({"model": "sonnet", "input": "delta", "previous_response_id": b["id"]}),
    ));
    assert_eq!(rc.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(rc.header("X-Claude-Warm"), Some("true"));
    assert!(output_text(&c).contains("turns=3"), "{c}");
    // And the fork goes on from its own answer.
    let (_, rg) = answered(create(
        &w,
        &[],
        json!({"model": "sonnet", "input": "epsilon", "previous_response_id": fork["id"]}),
    ));
    assert_eq!(rg.header("X-Claude-Session-ID"), Some(fork_sid.as_str()));
    w.finish();
}

#[test]
fn unknown_and_other_keys_ids_are_404_in_openai_s_shape() {
    let w = Warm::start(&[KEYS]);
    let r = create(
        &w,
        &[ALICE],
        json!({"model": "sonnet", "input": "x", "previous_response_id": "resp_nope"}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let error = &r.json()["error"];
    assert_eq!(error["code"], "previous_response_not_found");
    assert_eq!(error["param"], "previous_response_id");
    assert_eq!(error["type"], "invalid_request_error");

    let (mine, _) = answered(create(
        &w,
        &[ALICE],
        json!({"model": "sonnet", "input": "mine"}),
    ));
    let id = mine["id"].as_str().unwrap();
    let r = create(
        &w,
        &[BOB],
        json!({"model": "sonnet", "input": "x", "previous_response_id": id}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error_code(), "previous_response_not_found");
    let path = format!("/claude/v1/responses/{id}");
    let theirs = request(w.addr(), "GET", &path, &[BOB], b"");
    assert_eq!(theirs.status, 404, "{}", theirs.text());
    assert_eq!(theirs.error_code(), "response_not_found");
    let own = request(w.addr(), "GET", &path, &[ALICE], b"");
    assert_eq!(own.status, 200, "{}", own.text());
    // No `text` was sent, so the default format shows.
    assert_eq!(own.json()["text"], json!({"format": {"type": "text"}}));
    // Only its owner can delete it; then it is gone for everyone.
    let theirs = request(w.addr(), "DELETE", &path, &[BOB], b"");
    assert_eq!(theirs.status, 404, "{}", theirs.text());
    let deleted = request(w.addr(), "DELETE", &path, &[ALICE], b"");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json()["deleted"], true);
    assert_eq!(request(w.addr(), "GET", &path, &[ALICE], b"").status, 404);
    let r = create(
        &w,
        &[ALICE],
        json!({"model": "sonnet", "input": "x", "previous_response_id": id}),
    );
    assert_eq!(r.error_code(), "previous_response_not_found");

    // store: false keeps nothing to continue or read.
    let (unkept, _) = answered(create(
        &w,
        &[ALICE],
        json!({"model": "sonnet", "input": "x", "store": false}),
    ));
    assert_eq!(unkept["store"], false);
    let path = format!("/claude/v1/responses/{}", unkept["id"].as_str().unwrap());
    assert_eq!(request(w.addr(), "GET", &path, &[ALICE], b"").status, 404);
    let r = create(
        &w,
        &[ALICE],
        json!({"model": "sonnet", "input": "x", "previous_response_id": unkept["id"]}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    w.finish();
}

#[test]
fn a_function_call_output_carries_the_waiting_turn_on() {
    let w = Warm::start(&[]);
    let (first, r1) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(),
            "input": r#"weather? [[fake:tools:get_weather {"city":"Paris"}]]"#}),
    ));
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["type"] == "function_call")
        .unwrap_or_else(|| panic!("a function_call item: {first}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(call["call_id"].as_str().unwrap().starts_with("toolu_"));
    // No cost yet: the turn goes on once its results are in.
    assert_eq!(r1.header("X-Claude-Cost-USD"), None);
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();

    let (second, r2) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(), "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": call["call_id"],
                "output": "18 C, sunny"}]}),
    ));
    assert_eq!(
        output_text(&second),
        "tool results: get_weather=18 C, sunny"
    );
    assert_eq!(
        r2.header("X-Claude-Cost-USD"),
        Some("0.0001"),
        "the turn's cost, once"
    );
    assert_eq!(r2.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r2.header("X-Claude-Warm"), Some("true"));
    assert_eq!(w.pids().len(), 1);

    // Output for a call nobody waits for.
    let r = create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(), "previous_response_id": second["id"],
            "input": [{"type": "function_call_output", "call_id": "toolu_unknown", "output": "x"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    w.finish();
}

#[test]
fn whole_history_input_continues_its_session_as_agent_loops_send_it() {
    let w = Warm::start(&[]);
    let question = json!({"role": "user", "content": r#"weather? [[fake:tools:get_weather {"city":"Oslo"}]]"#});
    let (first, r1) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(), "store": false, "input": [question]}),
    ));
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();
    // The Agents SDK sends back every output item, then the results.
    let mut input = vec![question.clone()];
    input.extend(first["output"].as_array().unwrap().iter().cloned());
    let call_id = input
        .iter()
        .find(|i| i["type"] == "function_call")
        .map(|i| i["call_id"].clone())
        .unwrap();
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "snow"}));
    let (second, r2) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(), "store": false, "input": input}),
    ));
    assert_eq!(output_text(&second), "tool results: get_weather=snow");
    assert_eq!(r2.header("X-Claude-Session-ID"), Some(sid.as_str()));
    // And the next question, with everything so far.
    input.extend(second["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"role": "user", "content": "thanks"}));
    let (third, r3) = answered(create(
        &w,
        &[],
        json!({"model": "gpt-5", "tools": weather_tool(), "store": false, "input": input}),
    ));
    assert_eq!(r3.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r3.header("X-Claude-Warm"), Some("true"));
    assert!(output_text(&third).contains("turns=2"), "{third}");
    assert_eq!(w.pids().len(), 1);
    w.finish();
}

#[test]
fn a_stream_is_the_typed_event_sequence_ending_with_the_response() {
    let w = Warm::start(&[]);
    let body = json!({"model": "gpt-4.1", "input": "[[fake:say]]Hello from the stream", "stream": true,
        "temperature": 0.3, "reasoning": {"effort": "none"}});
    let stream = SseClient::open_at(w.addr(), "/claude/v1/responses", &[], &body.to_string());
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("X-Claude-Ignored-Params"),
        Some("temperature")
    );
    let events: Vec<Value> = stream
        .collect()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("JSON event: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n as u64);
    }
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, "Hello from the stream");
    let done = &events[events.len() - 1]["response"];
    assert_eq!(output_text(done), deltas);
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
    // The stream's cost is its last line, a comment SDKs skip.
    let raw = request(
        w.addr(),
        "POST",
        "/claude/v1/responses",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    let text = raw.text();
    let last = text.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with(": cost usd=0.000"), "{last}");
    // Kept like a whole one.
    let got = get(
        w.addr(),
        &format!("/claude/v1/responses/{}", done["id"].as_str().unwrap()),
    );
    assert_eq!(got.json()["id"], done["id"]);
    w.finish();
}

#[test]
fn a_stream_that_breaks_ends_with_response_failed() {
    let w = Warm::start(&[]);
    let body = json!({"model": "sonnet", "input": "[[fake:crash]]", "stream": true});
    let events =
        SseClient::open_at(w.addr(), "/claude/v1/responses", &[], &body.to_string()).collect();
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["type"], "response.failed", "{events:?}");
    assert_eq!(last["response"]["status"], "failed");
    assert!(last["response"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude CLI"));
    assert!(!events.iter().any(|e| e == "[DONE]"));
    w.finish();
}

#[test]
fn the_header_decides_and_without_it_the_same_paths_are_relayed() {
    let upstream = FakeOpenAi::start(Answer::json(200, r#"{"id":"resp_up","object":"response"}"#));
    let w = Warm::start(&[
        ("OPENAI_BASE_URL", &upstream.base_url()),
        ("OPENAI_API_KEY", "sk-up"),
    ]);
    let body = json!({"model": "gpt-4.1", "input": "hi"}).to_string();
    let json_type = ("Content-Type", "application/json");
    let relayed = request(
        w.addr(),
        "POST",
        "/v1/responses",
        &[json_type],
        body.as_bytes(),
    );
    assert_eq!(relayed.header("X-Backend-Mode"), Some("openai-passthrough"));
    assert_eq!(
        upstream.requests().last().map(|r| r.path.clone()),
        Some("/v1/responses".into())
    );
    let local = request(
        w.addr(),
        "POST",
        "/v1/responses",
        &[json_type, ("X-Claude-Code", "true")],
        body.as_bytes(),
    );
    assert_eq!(local.status, 200, "{}", local.text());
    assert_eq!(local.header("X-Backend-Mode"), Some("claude-code"));
    let id = local.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/responses/{id}");
    let read = request(w.addr(), "GET", &path, &[("X-Claude-Code", "true")], b"");
    assert_eq!(read.status, 200, "{}", read.text());
    let unheadered = get(w.addr(), &path);
    assert_eq!(
        unheadered.header("X-Backend-Mode"),
        Some("openai-passthrough")
    );
    assert_eq!(
        upstream.requests().last().map(|r| r.path.clone()),
        Some(path)
    );
    w.finish();
}

/// The AI SDK's default provider sends its earlier answers back as
/// `item_reference` items naming this server's own output items.
#[test]
fn item_references_to_kept_output_land_on_their_session() {
    let w = Warm::start(&[KEYS]);
    let user =
        |text: &str| json!({"role": "user", "content": [{"type": "input_text", "text": text}]});
    let (first, r1) = answered(create(
        &w,
        &[ALICE],
        json!({"model": "gpt-5", "input": [user("one")]}),
    ));
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();
    let item = first["output"][0]["id"].clone();
    assert!(item.as_str().unwrap().starts_with("msg_"), "{first}");
    let second = json!({"model": "gpt-5", "input": [
        user("one"), {"type": "item_reference", "id": item}, user("two")]});
    let (answer, r2) = answered(create(&w, &[ALICE], second.clone()));
    assert_eq!(r2.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r2.header("X-Claude-Warm"), Some("true"));
    assert!(output_text(&answer).contains("turns=2"), "{answer}");
    assert_eq!(r2.header("X-Claude-Ignored-Params"), None);
    // Another key cannot resolve it: the reference is skipped and named,
    // and the history (now without the answer) starts a session of its own.
    let (_, r3) = answered(create(&w, &[BOB], second));
    assert_ne!(r3.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(
        r3.header("X-Claude-Ignored-Params"),
        Some("input:item_reference")
    );
    w.finish();
}

/// Codex CLI 0.171.0: tools in an `additional_tools` item, grouped in a
/// namespace, its shell a custom tool; calls come back in its words.
#[test]
fn codex_s_namespaced_and_custom_tools_come_back_as_codex_reads_them() {
    let w = Warm::start(&[]);
    let tools = json!({"type": "additional_tools", "role": "developer", "tools": [
        {"type": "namespace", "name": "functions", "description": "", "tools": [
            {"type": "custom", "name": "exec", "description": "Run JavaScript",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "function", "name": "wait", "strict": false,
             "parameters": {"type": "object", "properties": {"cell_id": {"type": "string"}}}}]}]});
    let developer = json!({"type": "message", "role": "developer",
        "content": [{"type": "input_text", "text": "You are Codex."}]});
    let ask = |text: &str| {
        json!({"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]})
    };
    // The stand-in MCP names: the chat names `functions.exec` and
    // `functions.wait` hold a dot.
    let prompt = r#"go [[fake:tools:fn0_functions_exec {"input":"text('hi')"};;fn1_functions_wait {"cell_id":"c1"}]]"#;
    let body = json!({"model": "gpt-6.2-sol", "store": false, "stream": false,
        "tools": [{"type": "web_search"}], "tool_choice": "auto", "parallel_tool_calls": false,
        "client_metadata": {"turn": "1"},
        "input": [tools, developer, ask(prompt)]});
    let (first, r1) = answered(create(&w, &[], body.clone()));
    assert_eq!(
        r1.header("X-Claude-Ignored-Params"),
        Some("tools:web_search,parallel_tool_calls")
    );
    let output = first["output"].as_array().unwrap();
    let exec = output
        .iter()
        .find(|i| i["type"] == "custom_tool_call")
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(exec["name"], "exec");
    assert_eq!(exec["namespace"], "functions");
    assert_eq!(exec["input"], "text('hi')");
    assert!(exec["id"].as_str().unwrap().starts_with("ctc_"));
    let wait = output
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(wait["name"], "wait");
    assert_eq!(wait["namespace"], "functions");
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();
    // Codex resends everything (store: false), with its outputs and a
    // bookkeeping output of its own that answers no call.
    let mut input = body["input"].as_array().unwrap().clone();
    input.push(exec.clone());
    input.push(wait.clone());
    input.push(
        json!({"type": "custom_tool_call_output", "call_id": exec["call_id"], "output": "hi"}),
    );
    input.push(
        json!({"type": "function_call_output", "call_id": wait["call_id"], "output": "done"}),
    );
    input.push(json!({"type": "function_call_output", "output": "goal noted"}));
    let mut next = body.clone();
    next["input"] = Value::Array(input);
    let (second, r2) = answered(create(&w, &[], next));
    assert_eq!(
        output_text(&second),
        "tool results: fn0_functions_exec=hi | fn1_functions_wait=done"
    );
    assert_eq!(r2.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r2.header("X-Claude-Warm"), Some("true"));
    assert!(r2
        .header("X-Claude-Ignored-Params")
        .unwrap()
        .contains("input[7].call_id"));
    w.finish();
}

/// Errors found behind the translation name the Responses API's fields.
#[test]
fn errors_name_the_input_items() {
    let w = Warm::start(&[]);
    let (_, _) = answered(create(&w, &[], json!({"model": "gpt-5", "input": "first"})));
    let r = create(
        &w,
        &[],
        json!({"model": "gpt-5", "instructions": "Be brief.", "input": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": ""}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let error = &r.json()["error"];
    assert_eq!(error["param"], "input[1]", "{error}");
    assert!(
        error["message"].as_str().unwrap().starts_with("input[1]"),
        "{error}"
    );
    let r = create(
        &w,
        &[],
        json!({"model": "gpt-5", "input": [
        {"type": "function_call_output", "call_id": "toolu_x", "output": "x"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let error = &r.json()["error"];
    assert_eq!(error["param"], "input", "{error}");
    assert_eq!(error["code"], "invalid_tool_call_id", "{error}");
    assert!(
        !error["message"].as_str().unwrap().contains("tool_calls"),
        "{error}"
    );
    w.finish();
}

/// The Responses API's stream carries SSE comments through a silence.
#[test]
fn a_long_silence_carries_keep_alive_comments() {
    let w = Warm::start(&[("STREAM_KEEPALIVE_MS", "200")]);
    let body = json!({"model": "gpt-5", "stream": true, "input": "[[fake:sleep:1]] hi"});
    let sse = SseClient::open_at(w.addr(), "/claude/v1/responses", &[], &body.to_string());
    assert_eq!(sse.status, 200);
    let raw = sse.raw_rest();
    let created = raw
        .find("event: response.created")
        .unwrap_or_else(|| panic!("{raw}"));
    assert!(
        raw[..created].matches(": keep-alive\n").count() >= 2,
        "{raw}"
    );
    assert!(raw.contains("event: response.completed"), "{raw}");
    w.finish();
}

/// Stored responses live on disk with their session: after a restart,
/// `previous_response_id`, `GET` and `item_reference` still work, a
/// deletion stays deleted, and deleting the session takes them along.
#[test]
fn stored_responses_survive_a_restart() {
    let state = temp_dir("responses-restart-state");
    let work = state.join("cli-work");
    let records = temp_dir("responses-restart-records");
    let (state_s, work_s) = (state.display().to_string(), work.display().to_string());
    let settings = [
        ("STATE_DIR", state_s.as_str()),
        ("CLAUDE_WORK_DIR", work_s.as_str()),
        KEYS,
    ];
    let a = Warm::start_on(records.clone(), &settings, |_| {});
    let (first, r1) = answered(create(
        &a,
        &[ALICE],
        json!({"model": "gpt-5", "input": "one"}),
    ));
    let sid = r1.header("X-Claude-Session-ID").unwrap().to_string();
    let (gone, _) = answered(create(
        &a,
        &[ALICE],
        json!({"model": "gpt-5", "input": "forget me", "previous_response_id": first["id"]}),
    ));
    let r = request(
        a.addr(),
        "DELETE",
        &format!("/claude/v1/responses/{}", gone["id"].as_str().unwrap()),
        &[ALICE],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    a.finish();

    let b = Warm::start_on(records, &settings, |_| {});
    let get = |id: &Value, who: (&str, &str)| {
        let path = format!("/claude/v1/responses/{}", id.as_str().unwrap());
        request(b.addr(), "GET", &path, &[who], b"")
    };
    let r = get(&first["id"], ALICE);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["output"], first["output"]);
    assert_eq!(get(&first["id"], BOB).status, 404);
    assert_eq!(get(&gone["id"], ALICE).status, 404, "a deletion is kept");
    // The conversation goes on from the older response: it forks, as the
    // deleted one came after it.
    let (next, r2) = answered(create(
        &b,
        &[ALICE],
        json!({"model": "gpt-5", "input": "two", "previous_response_id": first["id"]}),
    ));
    let forked = r2.header("X-Claude-Session-ID").unwrap().to_string();
    assert_ne!(forked, sid);
    assert!(
        output_text(&next).contains("turns=1"),
        "a new session: {next}"
    );
    let prompts: Vec<String> = b
        .runs()
        .iter()
        .filter_map(|r| r.value["prompt"].as_str().map(String::from))
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.starts_with("User: one") && p.ends_with("User: two")),
        "the fork's transcript: {prompts:?}"
    );
    // An item of a response kept before the restart resolves.
    let (_, r3) = answered(create(
        &b,
        &[ALICE],
        json!({"model": "gpt-5", "input": [
            {"role": "user", "content": "one"},
            {"type": "item_reference", "id": first["output"][0]["id"]},
            {"role": "user", "content": "three"}]}),
    ));
    assert_eq!(r3.header("X-Claude-Ignored-Params"), None, "resolved");
    // (A new session: the original went on past that answer.)
    assert_ne!(r3.header("X-Claude-Session-ID"), Some(sid.as_str()));
    let answer_one = first["output"][0]["content"][0]["text"].as_str().unwrap();
    let resolved = b.runs().iter().any(|r| {
        r.value["prompt"].as_str().is_some_and(|p| {
            p.contains(&format!("Assistant: {answer_one}")) && p.ends_with("User: three")
        })
    });
    assert!(
        resolved,
        "the referenced answer did not reach the transcript"
    );
    // Deleting the session takes its responses along.
    let r = request(
        b.addr(),
        "DELETE",
        &format!("/claude/v1/sessions/{sid}"),
        &[ALICE],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&first["id"], ALICE).status, 404);
    assert!(!work.join(&sid).exists());
    b.finish();
}
