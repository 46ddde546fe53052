//! What the tool-call tests share: request specs like the recordings', and
//! reading a recorded CLI run the way the server does, up to
//! `Adapter::over`, streamed and not, with the deltas assembled the way
//! the OpenAI SDKs assemble them.

use serde_json::Map;

use super::*;
use crate::claude::tools::read_tool_spec;

/// A client function with one string parameter.
pub(super) fn function(name: &str, param: &str) -> Value {
    json!({"name": name, "description": format!("{name} by {param}"),
        "parameters": {"type": "object", "properties": {param: {"type": "string"}},
            "required": [param]}})
}

/// The tool spec of a request body (`tools`, `functions`, `response_format`).
pub(super) fn spec_of(body: Value) -> Arc<ToolSpec> {
    Arc::new(read_tool_spec(body.as_object().expect("a body")).expect("a valid body"))
}

/// `tools: [get_weather {city}, get_time {zone}]`, as the recordings offer.
pub(super) fn weather_and_time() -> Arc<ToolSpec> {
    spec_of(json!({"tools": [
        {"type": "function", "function": function("get_weather", "city")},
        {"type": "function", "function": function("get_time", "zone")},
    ]}))
}

/// The same two functions in the legacy `functions` field.
pub(super) fn legacy_weather_and_time() -> Arc<ToolSpec> {
    spec_of(json!({"functions": [function("get_weather", "city"), function("get_time", "zone")]}))
}

/// `response_format` with the schema `structured` was recorded with.
pub(super) fn city_temp_schema() -> Arc<ToolSpec> {
    spec_of(
        json!({"response_format": {"type": "json_schema", "json_schema": {
        "name": "weather",
        "schema": {"type": "object",
            "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
            "required": ["city", "temp"]}}}}),
    )
}

pub(super) fn adapter(spec: &Arc<ToolSpec>, stream: bool, include_usage: bool) -> Adapter {
    let adapter =
        Adapter::new(ID.into(), CREATED, "gpt-4o".into(), include_usage).with_tools(spec.clone());
    if stream {
        adapter
    } else {
        adapter.without_events()
    }
}

/// A run that stopped where the server stops reading.
pub(super) struct Over<'a> {
    pub(super) run: Run,
    /// The last line read: the one that ended the answer.
    pub(super) last: &'a [u8],
    /// Everything the CLI printed after it.
    pub(super) rest: &'a [u8],
}

/// Feeds `stdout` line by line until `adapter.over()`, as the server does.
pub(super) fn feed_until_over(adapter: Adapter, stdout: &[u8]) -> Over<'_> {
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
        if let Step::Events(events) = &step {
            if run.live.is_empty() {
                run.started_before_first_chunk = run.adapter.started();
            }
            let chunks = run.adapter.chat_chunks().encode_all(events);
            run.live.extend(chunks.iter().map(|c| parse(c)));
        }
        run.steps.push(step);
    }
    Over { run, last, rest }
}

/// Where an answer ended in the CLI's output.
pub(super) struct Ending<'a> {
    /// The line that ended it.
    pub(super) last: &'a [u8],
    /// Everything the CLI printed after it.
    pub(super) rest: &'a [u8],
}

/// The answer at the start of `stdout`, streamed (chunks, with the usage
/// chunk) and not: both must give the same `chat.completion`, and the
/// non-streaming one no chunk at all.
pub(super) fn answer<'a>(spec: &Arc<ToolSpec>, stdout: &'a [u8]) -> (Done, Ending<'a>) {
    let mut quiet = feed_until_over(adapter(spec, false, true), stdout);
    assert!(
        quiet
            .run
            .steps
            .iter()
            .all(|s| !matches!(s, Step::Events(_))),
        "a non-streaming adapter built chunks"
    );
    let quiet_completion = match quiet.run.adapter.finish() {
        Outcome::Success {
            final_events,
            answer,
            ..
        } => {
            assert!(final_events.is_empty(), "{final_events:?}");
            quiet.run.adapter.chat_chunks().completion(&answer)
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

pub(super) fn is_event(line: &[u8], kind: &str) -> bool {
    let line: Value = serde_json::from_slice(line).expect("a JSON line");
    line["type"] == "stream_event" && line["event"]["type"] == kind
}

/// The chunks without the usage chunk (which has no choice).
pub(super) fn with_choice(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .filter(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
        .collect()
}

/// What each chunk carries, repeats folded: "role", "content", "open"
/// (a call's id and name), "args", "finish".
pub(super) fn shape(chunks: &[Value]) -> Vec<&'static str> {
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
pub(super) fn accumulate(acc: &mut Map<String, Value>, delta: &Map<String, Value>) {
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
pub(super) fn assembled(chunks: &[Value]) -> Value {
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

pub(super) fn message(done: &Done) -> &Value {
    &done.completion["choices"][0]["message"]
}

/// The argument pieces the chunks carried, per call index.
pub(super) fn argument_pieces(chunks: &[Value], index: u64) -> Vec<String> {
    with_choice(chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .filter(|call| call["index"] == index && call["function"].get("name").is_none())
        .map(|call| call["function"]["arguments"].as_str().unwrap().to_string())
        .collect()
}
