//! The adapter with client functions and `response_format`, fed the real
//! CLI's MCP tool-call and structured-output recordings
//! (`tools-*`, `tool-error-result`, `mcp-timeout`, `structured`).
//!
//! A recording holds a whole CLI run: the model's call, the tool result
//! the CLI got from its MCP server, the final answer and later turns. The
//! server reads an answer only until `Adapter::over` (as `CliRun::step`
//! does): for a call, that is the model message's `message_stop`; the
//! follow-up request that brings the results gets a new adapter, which
//! reads on from the next line. The tests do the same with
//! [`feed_until_over`].

use serde_json::Map;

use super::*;
use crate::claude::tools::read_tool_spec;

/// A client function with one string parameter.
fn function(name: &str, param: &str) -> Value {
    json!({"name": name, "description": format!("{name} by {param}"),
        "parameters": {"type": "object", "properties": {param: {"type": "string"}},
            "required": [param]}})
}

/// The tool spec of a request body (`tools`, `functions`, `response_format`).
fn spec_of(body: Value) -> Arc<ToolSpec> {
    Arc::new(read_tool_spec(body.as_object().expect("a body")).expect("a valid body"))
}

/// `tools: [get_weather {city}, get_time {zone}]`, as the recordings offer.
fn weather_and_time() -> Arc<ToolSpec> {
    spec_of(json!({"tools": [
        {"type": "function", "function": function("get_weather", "city")},
        {"type": "function", "function": function("get_time", "zone")},
    ]}))
}

/// The same two functions in the legacy `functions` field.
fn legacy_weather_and_time() -> Arc<ToolSpec> {
    spec_of(json!({"functions": [function("get_weather", "city"), function("get_time", "zone")]}))
}

/// `response_format` with the schema `structured` was recorded with.
fn city_temp_schema() -> Arc<ToolSpec> {
    spec_of(
        json!({"response_format": {"type": "json_schema", "json_schema": {
        "name": "weather",
        "schema": {"type": "object",
            "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
            "required": ["city", "temp"]}}}}),
    )
}

fn adapter(spec: &Arc<ToolSpec>, stream: bool, include_usage: bool) -> Adapter {
    let adapter =
        Adapter::new(ID.into(), CREATED, "gpt-4o".into(), include_usage).with_tools(spec.clone());
    if stream {
        adapter
    } else {
        adapter.without_chunks()
    }
}

/// A run that stopped where the server stops reading.
struct Over<'a> {
    run: Run,
    /// The last line read: the one that ended the answer.
    last: &'a [u8],
    /// Everything the CLI printed after it.
    rest: &'a [u8],
}

/// Feeds `stdout` line by line until `adapter.over()`, as the server does.
fn feed_until_over(adapter: Adapter, stdout: &[u8]) -> Over<'_> {
    let mut run = Run {
        steps: Vec::new(),
        live: Vec::new(),
        started_before_first_chunk: true,
        adapter,
    };
    let mut rest = stdout;
    let mut last: &[u8] = &[];
    while !run.adapter.over() && !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        last = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        let step = run.adapter.push_line(last);
        if let Step::Chunks(chunks) = &step {
            if run.live.is_empty() {
                run.started_before_first_chunk = run.adapter.started();
            }
            run.live.extend(chunks.iter().map(|c| parse(c)));
        }
        run.steps.push(step);
    }
    Over { run, last, rest }
}

/// Where an answer ended in the CLI's output.
struct Ending<'a> {
    /// The line that ended it.
    last: &'a [u8],
    /// Everything the CLI printed after it.
    rest: &'a [u8],
}

/// The answer at the start of `stdout`, streamed (chunks, with the usage
/// chunk) and not: both must give the same `chat.completion`, and the
/// non-streaming one no chunk at all.
fn answer<'a>(spec: &Arc<ToolSpec>, stdout: &'a [u8]) -> (Done, Ending<'a>) {
    let mut quiet = feed_until_over(adapter(spec, false, true), stdout);
    assert!(
        quiet
            .run
            .steps
            .iter()
            .all(|s| !matches!(s, Step::Chunks(_))),
        "a non-streaming adapter built chunks"
    );
    let quiet_completion = match quiet.run.adapter.finish() {
        Outcome::Success {
            final_chunks,
            completion,
            ..
        } => {
            assert!(final_chunks.is_empty(), "{final_chunks:?}");
            completion
        }
        other => panic!("expected success, got {other:?}"),
    };
    let streamed = feed_until_over(adapter(spec, true, true), stdout);
    assert_eq!(
        streamed.last, quiet.last,
        "streaming or not, the answer ends at the same line"
    );
    assert!(streamed.run.started_before_first_chunk);
    let ending = Ending {
        last: streamed.last,
        rest: streamed.rest,
    };
    let done = succeed(streamed.run);
    assert_eq!(
        done.completion, quiet_completion,
        "streamed and non-streamed differ"
    );
    (done, ending)
}

fn is_event(line: &[u8], kind: &str) -> bool {
    let line: Value = serde_json::from_slice(line).expect("a JSON line");
    line["type"] == "stream_event" && line["event"]["type"] == kind
}

/// The chunks without the usage chunk (which has no choice).
fn with_choice(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .filter(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
        .collect()
}

/// What each chunk carries, repeats folded: "role", "content", "open"
/// (a call's id and name), "args", "finish".
fn shape(chunks: &[Value]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for chunk in with_choice(chunks) {
        let delta = &chunk["choices"][0]["delta"];
        let call = delta
            .get("tool_calls")
            .map(|calls| &calls[0])
            .or_else(|| delta.get("function_call"));
        let kind = if !chunk["choices"][0]["finish_reason"].is_null() {
            "finish"
        } else if delta.get("role").is_some() {
            "role"
        } else if delta.get("content").is_some() {
            "content"
        } else if let Some(call) = call {
            let name = call.get("function").unwrap_or(call).get("name");
            if name.is_some() {
                "open"
            } else {
                "args"
            }
        } else {
            "empty"
        };
        if kinds.last() != Some(&kind) || kind == "open" {
            kinds.push(kind);
        }
    }
    kinds
}

/// The deltas merged the way the OpenAI SDKs do it (openai-python's
/// `accumulate_delta`): strings appended, `index` and `type` replaced,
/// objects merged, and lists of objects merged entry by entry by `index`.
fn accumulate(acc: &mut Map<String, Value>, delta: &Map<String, Value>) {
    for (key, value) in delta {
        let Some(old) = acc.get_mut(key).filter(|old| !old.is_null()) else {
            acc.insert(key.clone(), value.clone());
            continue;
        };
        if key == "index" || key == "type" {
            *old = value.clone();
            continue;
        }
        match (old, value) {
            (Value::String(old), Value::String(piece)) => old.push_str(piece),
            (Value::Object(old), Value::Object(piece)) => accumulate(old, piece),
            (Value::Array(old), Value::Array(entries)) => {
                for entry in entries {
                    let index = entry["index"].as_u64().expect("an index") as usize;
                    match old.get_mut(index) {
                        Some(Value::Object(have)) => {
                            accumulate(have, entry.as_object().expect("an entry"))
                        }
                        _ => old.insert(index, entry.clone()),
                    }
                }
            }
            (old, value) => panic!("{key}: cannot merge {value} into {old}"),
        }
    }
}

/// The `message` a client library builds from the streamed chunks.
fn assembled(chunks: &[Value]) -> Value {
    let mut message = Map::new();
    for chunk in with_choice(chunks) {
        let delta = chunk["choices"][0]["delta"].as_object().expect("a delta");
        accumulate(&mut message, delta);
    }
    message.entry("content").or_insert(Value::Null);
    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
        for call in calls {
            call.as_object_mut().expect("a call").remove("index");
        }
    }
    Value::Object(message)
}

fn message(done: &Done) -> &Value {
    &done.completion["choices"][0]["message"]
}

/// The argument pieces the chunks carried, per call index.
fn argument_pieces(chunks: &[Value], index: u64) -> Vec<String> {
    with_choice(chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .filter(|call| call["index"] == index && call["function"].get("name").is_none())
        .map(|call| call["function"]["arguments"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tools_single_ends_the_answer_at_message_stop_with_its_call() {
    let stdout = fixture!("tools-single.stdout");
    let spec = weather_and_time();
    let over = feed_until_over(adapter(&spec, true, false), stdout);
    // Line 11 is the model message's message_stop; the message_delta with
    // stop_reason tool_use before it does not end the answer yet.
    assert!(is_event(over.last, "message_stop"));
    assert_eq!(over.run.steps.len(), 11);
    let adapter = &over.run.adapter;
    assert!(adapter.paused() && adapter.over() && adapter.answered());
    assert!(!adapter.has_result());
    assert_eq!(adapter.calls().len(), 1);
    assert_eq!(adapter.calls()[0].id, "toolu_fake0001");
    assert_eq!(adapter.calls()[0].name, "get_weather");
    // The next line is the CLI's tool result, which the answer never saw.
    assert!(over.rest.starts_with(br#"{"type":"user""#));

    let (done, _) = answer(&spec, stdout);
    assert_eq!(
        done.completion,
        json!({
            "id": ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "toolu_fake0001",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
                    }],
                },
                "finish_reason": "tool_calls",
            }],
            // The first model message's own counts: no result line yet.
            "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37},
        })
    );
}

#[test]
fn tools_single_streams_the_call_as_openai_does() {
    let (done, _) = answer(&weather_and_time(), fixture!("tools-single.stdout"));
    assert_well_formed(&done.all, "tool_calls");
    assert_eq!(shape(&done.all), ["role", "open", "args", "finish"]);
    let opening = with_choice(&done.all)[1]["choices"][0]["delta"].clone();
    assert_eq!(
        opening,
        json!({"tool_calls": [{"index": 0, "id": "toolu_fake0001", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]})
    );
    // The pieces as the CLI streamed them (input_json_delta), one chunk each.
    assert_eq!(
        argument_pieces(&done.all, 0),
        ["{\"city", "\": \"Pa", "ris\"}"]
    );
    assert_eq!(assembled(&done.all), *message(&done));
    // The usage chunk comes last, with the model message's counts.
    let last = done.all.last().expect("chunks");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], done.completion["usage"]);
    // Nothing of what the CLI printed after the pause is in the answer.
    let all = serde_json::to_string(&done.all).unwrap();
    assert!(
        !all.contains("sunny") && !all.contains("tool said"),
        "{all}"
    );
}

#[test]
fn the_follow_up_reads_the_final_answer_after_the_tool_result() {
    let stdout = fixture!("tools-single.stdout");
    let spec = weather_and_time();
    let (_, paused) = answer(&spec, stdout);
    // The follow-up request bringing the result gets a new adapter, which
    // reads from the line after message_stop (the CLI's tool_result line).
    let follow = feed_until_over(adapter(&spec, true, true), paused.rest);
    assert!(follow.run.adapter.has_result() && !follow.run.adapter.paused());
    assert!(follow.run.adapter.calls().is_empty());
    let (done, after) = answer(&spec, paused.rest);
    assert_well_formed(&done.all, "stop");
    let text = r#"tool said: [{"is_error": null, "content": [{"type": "text", "text": "sunny 21C in Paris"}]}]"#;
    assert_eq!(text_of(&done.all), text);
    assert_eq!(
        *message(&done),
        json!({"role": "assistant", "content": text})
    );
    assert_eq!(done.completion["choices"][0]["finish_reason"], "stop");
    // The result line's usage covers the whole CLI turn, both model
    // messages; the server's follow-up adapter (`continuing`) counts only
    // the message it answers, the first having been counted with the call.
    assert_eq!(
        done.completion["usage"],
        json!({"prompt_tokens": 50, "completion_tokens": 24, "total_tokens": 74})
    );
    let mut follow = feed_until_over(adapter(&spec, false, false).continuing(), paused.rest);
    let Outcome::Success { completion, .. } = follow.run.adapter.finish() else {
        panic!("the follow-up failed");
    };
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37})
    );
    assert_eq!(
        done.session_id.as_deref(),
        Some("5a1b7c00-0000-4000-8000-000000000001")
    );
    assert!(done
        .all
        .iter()
        .all(|c| !c.to_string().contains("tool_calls")));

    // Turn 2 of the recording is a plain question, answered in text.
    let (next, _) = answer(&spec, after.rest);
    assert_well_formed(&next.all, "stop");
    assert!(text_of(&next.all).starts_with("plain answer;"));
}

#[test]
fn parallel_and_sequential_calls_come_in_one_answer_after_the_text() {
    for (name, stdout, ids) in [
        (
            "tools-parallel",
            fixture!("tools-parallel.stdout"),
            ["toolu_fake0002", "toolu_fake0003"],
        ),
        (
            "tools-sequential",
            fixture!("tools-sequential.stdout"),
            ["toolu_fake0004", "toolu_fake0005"],
        ),
    ] {
        let spec = weather_and_time();
        let (done, over) = answer(&spec, stdout);
        assert!(is_event(over.last, "message_stop"), "{name}");
        assert_well_formed(&done.all, "tool_calls");
        assert_eq!(
            shape(&done.all),
            ["role", "content", "open", "args", "open", "args", "finish"],
            "{name}"
        );
        assert_eq!(text_of(&done.all), "Let me check.", "{name}");
        assert_eq!(
            *message(&done),
            json!({
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": ids[0], "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                    {"id": ids[1], "type": "function",
                        "function": {"name": "get_time", "arguments": "{\"zone\": \"Europe/Paris\"}"}},
                ],
            }),
            "{name}"
        );
        let openings: Vec<&Value> = with_choice(&done.all)
            .into_iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
            .filter(|call| call.get("id").is_some())
            .collect();
        assert_eq!(openings.len(), 2, "{name}");
        assert_eq!(
            (&openings[0]["index"], &openings[1]["index"]),
            (&json!(0), &json!(1))
        );
        assert_eq!(
            argument_pieces(&done.all, 1),
            ["{\"zone\":", " \"Europe", "/Paris\"}"],
            "{name}"
        );
        assert_eq!(assembled(&done.all), *message(&done), "{name}");

        // The follow-up gets the answer the model gave with both results.
        let (follow, _) = answer(&spec, over.rest);
        assert_well_formed(&follow.all, "stop");
        let text = text_of(&follow.all);
        assert!(
            text.contains("sunny 21C in Paris") && text.contains("14:05 in Europe/Paris"),
            "{name}: {text}"
        );
    }
}

#[test]
fn legacy_functions_answer_with_function_call() {
    let spec = legacy_weather_and_time();
    let (done, over) = answer(&spec, fixture!("tools-single.stdout"));
    assert!(is_event(over.last, "message_stop"));
    assert_well_formed(&done.all, "function_call");
    assert_eq!(
        *message(&done),
        json!({"role": "assistant", "content": null,
            "function_call": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}})
    );
    assert_eq!(
        done.completion["choices"][0]["finish_reason"],
        "function_call"
    );
    assert_eq!(shape(&done.all), ["role", "open", "args", "finish"]);
    let deltas: Vec<&Value> = with_choice(&done.all)
        .iter()
        .map(|c| &c["choices"][0]["delta"])
        .collect();
    assert_eq!(
        deltas[1],
        &json!({"function_call": {"name": "get_weather", "arguments": ""}})
    );
    assert_eq!(
        deltas[2],
        &json!({"function_call": {"arguments": "{\"city"}})
    );
    assert!(done
        .all
        .iter()
        .all(|c| !c.to_string().contains("tool_calls")));
    assert_eq!(assembled(&done.all), *message(&done));
}

#[test]
fn legacy_functions_answer_with_the_first_of_several_calls_only() {
    let (done, _) = answer(
        &legacy_weather_and_time(),
        fixture!("tools-parallel.stdout"),
    );
    assert_well_formed(&done.all, "function_call");
    assert_eq!(
        *message(&done),
        json!({"role": "assistant", "content": "Let me check.",
            "function_call": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}})
    );
    let all = serde_json::to_string(&done.all).unwrap();
    assert!(
        !all.contains("get_time") && !all.contains("Europe"),
        "{all}"
    );
    assert_eq!(assembled(&done.all), *message(&done));
}

#[test]
fn structured_output_is_the_answer_and_the_text_around_it_is_not() {
    let spec = city_temp_schema();
    let mut stdout = fixture!("structured.stdout");
    // Turns 1 and 2 of the recording both end with a StructuredOutput call.
    for (turn, city) in [(1, "Paris"), (2, "Berlin")] {
        let (done, over) = answer(&spec, stdout);
        // Not a pause: the CLI answers StructuredOutput itself and ends the
        // turn, so the answer ends at the result line.
        let result: Value = serde_json::from_slice(over.last).expect("the result line");
        assert_eq!(result["type"], "result", "turn {turn}");
        assert_eq!(result["stop_reason"], "tool_use", "turn {turn}");
        assert_well_formed(&done.all, "stop");
        assert_eq!(done.completion["choices"][0]["finish_reason"], "stop");
        let content = message(&done)["content"].as_str().expect("text content");
        let parsed: Value = serde_json::from_str(content).expect("JSON content");
        assert_eq!(parsed, result["structured_output"], "turn {turn}");
        assert_eq!(parsed["city"], city);
        assert_eq!(text_of(&done.all), content, "turn {turn}");
        assert!(message(&done).get("tool_calls").is_none());
        let all = serde_json::to_string(&done.all).unwrap();
        assert!(
            !all.contains("Let me think") && !all.contains("StructuredOutput"),
            "turn {turn}: {all}"
        );
        assert!(!content.contains("Let me think"));
        stdout = over.rest;
    }
}

#[test]
fn a_call_of_a_function_the_client_did_not_offer_is_not_shown() {
    // Only get_weather offered: the get_time call is the CLI's business,
    // and the answer holds the get_weather call alone, as index 0.
    let only_weather = spec_of(json!({"tools": [
        {"type": "function", "function": function("get_weather", "city")},
    ]}));
    let (done, over) = answer(&only_weather, fixture!("tools-parallel.stdout"));
    assert!(is_event(over.last, "message_stop"));
    assert_well_formed(&done.all, "tool_calls");
    let calls = message(&done)["tool_calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], "toolu_fake0002");
    let all = serde_json::to_string(&done.all).unwrap();
    assert!(!all.contains("get_time") && !all.contains("toolu_fake0003"));
    assert_eq!(assembled(&done.all), *message(&done));

    // Only get_time offered, and the model called get_weather alone: no
    // pause, the answer reads on to the turn's end and is its final text.
    let only_time = spec_of(json!({"tools": [
        {"type": "function", "function": function("get_time", "zone")},
    ]}));
    let stdout = fixture!("tools-single.stdout");
    let over = feed_until_over(adapter(&only_time, true, false), stdout);
    assert!(!over.run.adapter.paused() && over.run.adapter.has_result());
    let (done, _) = answer(&only_time, stdout);
    assert_well_formed(&done.all, "stop");
    assert!(message(&done).get("tool_calls").is_none());
    assert!(text_of(&done.all).starts_with("tool said:"));
    assert!(!serde_json::to_string(&done.all)
        .unwrap()
        .contains("toolu_fake0001"));
}

#[test]
fn an_error_tool_result_reaches_the_follow_up_as_the_models_answer() {
    for (name, stdout, id, error) in [
        (
            "tool-error-result",
            fixture!("tool-error-result.stdout"),
            "toolu_fake0023",
            "the client did not run this tool",
        ),
        (
            "mcp-timeout",
            fixture!("mcp-timeout.stdout"),
            "toolu_fake0016",
            r#"MCP server \"client\" tool \"get_weather\" timed out after 3s"#,
        ),
    ] {
        let spec = weather_and_time();
        let (done, over) = answer(&spec, stdout);
        assert_well_formed(&done.all, "tool_calls");
        assert_eq!(message(&done)["tool_calls"][0]["id"], id, "{name}");
        // The follow-up: the CLI's error tool_result line is not shown, the
        // model's answer to it is, as a normal answer.
        let (follow, _) = answer(&spec, over.rest);
        assert_well_formed(&follow.all, "stop");
        let text = text_of(&follow.all);
        assert!(
            text.starts_with(r#"tool said: [{"is_error": true"#),
            "{name}: {text}"
        );
        assert!(text.contains(error), "{name}: {text}");
        assert!(message(&follow).get("tool_calls").is_none());
    }
}

#[test]
fn an_interrupted_tool_turn_fails_and_the_next_turn_answers() {
    let stdout = fixture!("tools-interrupt.stdout");
    let spec = weather_and_time();
    let (done, over) = answer(&spec, stdout);
    assert_well_formed(&done.all, "tool_calls");
    assert_eq!(message(&done)["tool_calls"][0]["id"], "toolu_fake0018");
    // What follows the pause when the waiting turn is interrupted: the
    // control_response, the rejected tool_result, and an error result.
    let mut after = feed_until_over(adapter(&spec, true, false), over.rest);
    assert!(after.run.live.is_empty(), "{:?}", after.run.live);
    assert!(!after.run.adapter.started() && !after.run.adapter.committed());
    assert!(after.run.adapter.has_result() && !after.run.adapter.answered());
    match after.run.adapter.finish() {
        Outcome::Failed(e) => assert_eq!(e.status(), 500, "{e:?}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // The process keeps serving: the next turn is a normal answer.
    let (next, _) = answer(&spec, after.rest);
    assert_well_formed(&next.all, "stop");
    assert!(text_of(&next.all).starts_with("tool said:"));
}
