//! Recorded CLI runs, read by the chat adapter as the server reads them,
//! then told as Responses events: the order the SDK stream helpers follow,
//! and a streamed answer equal to the whole one.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::*;
use crate::claude::tools::ToolSpec;
use crate::claude::{Answer, Stop, TokenCounts, TurnEvent};
use crate::dialect::recorded::{spec, stdout, thinking_events, turn_events, weather_and_time};
use crate::responses::object::from_answer;

fn meta() -> ResponseMeta {
    ResponseMeta {
        id: "resp_0123".into(),
        created_at: 1_740_500_000,
        model: "gpt-5".into(),
        previous_response_id: None,
        store: true,
        reasoning_summary: false,
        echo: Map::new(),
        tools: Default::default(),
    }
}

/// A recorded run streamed (chunks with usage) until the answer is over:
/// its events and final response, and the whole answer.
struct Told {
    events: Vec<Value>,
    response: Value,
    answer: Answer,
}

fn tell(stdout: &[u8], tools: Arc<ToolSpec>) -> Told {
    tell_turn(meta(), turn_events(stdout, tools))
}

fn tell_turn(meta: ResponseMeta, (turn, answer): (Vec<TurnEvent>, Answer)) -> Told {
    let mut writer = ResponseEvents::new(meta);
    let mut framed: Vec<Vec<u8>> = turn.iter().flat_map(|e| writer.event(e)).collect();
    let (ending, response) = writer.complete();
    framed.extend(ending);
    Told {
        events: framed.iter().map(|e| unframe(e)).collect(),
        response,
        answer,
    }
}

/// `event: NAME\ndata: JSON` → the JSON, its name checked against `type`.
fn unframe(event: &[u8]) -> Value {
    let text = std::str::from_utf8(event).expect("UTF-8");
    let (name, data) = text.split_once('\n').expect("two lines");
    let name = name.strip_prefix("event: ").expect("an event line");
    let data: Value =
        serde_json::from_str(data.strip_prefix("data: ").expect("a data line")).expect("JSON");
    assert_eq!(data["type"], name);
    data
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// What every stream keeps: numbered from 0 by one, created and
/// in_progress first, the final event last, each item's events between
/// its `added` and `done` and items one after the other.
fn assert_well_formed(events: &[Value], last: &str) {
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n as u64, "{event}");
    }
    let kinds = kinds(events);
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(kinds[kinds.len() - 1], last);
    let mut open: Option<u64> = None;
    let mut next_index = 0;
    for event in &events[2..events.len() - 1] {
        let index = event["output_index"].as_u64().expect("an output index");
        match event["type"].as_str() {
            Some("response.output_item.added") => {
                assert_eq!(open, None, "an item opened inside another");
                assert_eq!(index, next_index);
                open = Some(index);
            }
            Some("response.output_item.done") => {
                assert_eq!(open, Some(index));
                open = None;
                next_index += 1;
            }
            _ => assert_eq!(open, Some(index), "{event}"),
        }
    }
    assert_eq!(open, None);
}

fn joined(events: &[Value], kind: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

#[test]
fn a_text_answer_streams_in_the_documented_order() {
    let told = tell(&stdout("stream-new.stdout"), Arc::default());
    assert_well_formed(&told.events, "response.completed");
    let mut kinds = kinds(&told.events);
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let text = told.answer.text.as_str();
    assert!(!text.is_empty());
    assert_eq!(joined(&told.events, "response.output_text.delta"), text);
    assert_eq!(told.response["output"][0]["content"][0]["text"], text);
    assert_eq!(told.response["status"], "completed");
    let usage = &told.response["usage"];
    assert_eq!(usage["input_tokens"], told.answer.counts.prompt());
    assert!(usage["output_tokens"].as_u64().unwrap_or(0) > 0);
    // The created event's snapshot is in progress, with nothing yet.
    let created = &told.events[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["id"], "resp_0123");
    // Streamed or whole, the same response.
    assert_eq!(from_answer(&meta(), &told.answer), told.response);
}

#[test]
fn thinking_is_not_part_of_the_answer() {
    let told = tell(&stdout("stream-thinking.stdout"), Arc::default());
    assert_well_formed(&told.events, "response.completed");
    assert_eq!(told.response["output"].as_array().map(Vec::len), Some(1));
    assert_eq!(from_answer(&meta(), &told.answer), told.response);
}

#[test]
fn shown_thinking_is_a_reasoning_item_with_its_summary_when_one_was_asked() {
    let summarized = ResponseMeta {
        reasoning_summary: true,
        ..meta()
    };
    let told = tell_turn(
        summarized.clone(),
        thinking_events(&stdout("stream-thinking.stdout")),
    );
    assert_well_formed(&told.events, "response.completed");
    let output = &told.response["output"];
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(
        output[0]["summary"],
        json!([{"type": "summary_text", "text": "Let me think."}])
    );
    assert_eq!(output[1]["type"], "message");
    assert_eq!(from_answer(&summarized, &told.answer), told.response);
    let deltas: String = told
        .events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, "Let me think.");

    // Without a summary asked for, the item says nothing of it.
    let told = tell_turn(meta(), thinking_events(&stdout("stream-thinking.stdout")));
    assert_well_formed(&told.events, "response.completed");
    assert_eq!(told.response["output"][0]["summary"], json!([]));
    assert_eq!(from_answer(&meta(), &told.answer), told.response);
}

#[test]
fn the_clis_own_continuation_after_max_tokens_is_one_completed_answer() {
    let told = tell(&stdout("stream-max-tokens.stdout"), Arc::default());
    assert_well_formed(&told.events, "response.completed");
    assert_eq!(told.response["output"].as_array().map(Vec::len), Some(1));
    assert_eq!(from_answer(&meta(), &told.answer), told.response);
}

#[test]
fn an_answer_cut_at_the_output_limit_is_incomplete() {
    let mut writer = ResponseEvents::new(meta());
    let mut events = Vec::new();
    let counts = TokenCounts {
        input: 5,
        output: 2,
        ..TokenCounts::default()
    };
    for event in [
        TurnEvent::Began,
        TurnEvent::Text("Once upon".into()),
        TurnEvent::Stopped(Stop::MaxTokens),
        TurnEvent::Counted(counts),
    ] {
        events.extend(writer.event(&event));
    }
    let (ending, response) = writer.complete();
    events.extend(ending);
    let events: Vec<Value> = events.iter().map(|e| unframe(e)).collect();
    assert_well_formed(&events, "response.incomplete");
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["usage"]["total_tokens"], 7);
    assert_eq!(response["output"][0]["content"][0]["text"], "Once upon");
}

#[test]
fn parallel_calls_are_function_call_items_after_the_text() {
    let told = tell(&stdout("tools-parallel.stdout"), weather_and_time());
    assert_well_formed(&told.events, "response.completed");
    let output = told.response["output"].as_array().expect("output");
    let calls: Vec<&Value> = output
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    let chat_calls = &told.answer.calls;
    assert_eq!(calls.len(), chat_calls.len());
    assert!(calls.len() >= 2);
    for (item, call) in calls.iter().zip(chat_calls) {
        assert_eq!(item["call_id"], call.id.as_str());
        assert_eq!(item["name"], call.name.as_str());
        assert_eq!(item["arguments"], call.arguments.as_str());
        assert_eq!(item["status"], "completed");
        let arguments: Value =
            serde_json::from_str(item["arguments"].as_str().expect("text")).expect("JSON");
        assert!(arguments.is_object());
        // The argument deltas of this item add up to its arguments.
        let pieces: String = told
            .events
            .iter()
            .filter(|e| {
                e["type"] == "response.function_call_arguments.delta" && e["item_id"] == item["id"]
            })
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(pieces, item["arguments"].as_str().unwrap_or_default());
    }
    let names: Vec<&str> = calls.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(from_answer(&meta(), &told.answer), told.response);
}

#[test]
fn structured_output_is_the_text_of_the_message() {
    let schema = spec(
        json!({"response_format": {"type": "json_schema", "json_schema": {
        "name": "weather", "schema": {"type": "object",
            "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
            "required": ["city", "temp"]}}}}),
    );
    let told = tell(&stdout("structured.stdout"), schema);
    assert_well_formed(&told.events, "response.completed");
    let text = told.response["output"][0]["content"][0]["text"]
        .as_str()
        .expect("text");
    let answer: Value = serde_json::from_str(text).expect("JSON text");
    assert_eq!(answer["city"], "Paris");
    assert!(!kinds(&told.events).contains(&"response.function_call_arguments.delta"));
}

#[test]
fn a_turn_that_breaks_ends_with_response_failed() {
    let mut writer = ResponseEvents::new(meta());
    let mut events: Vec<Value> = writer
        .event(&TurnEvent::Text("Hal".into()))
        .iter()
        .map(|e| unframe(e))
        .collect();
    events.extend(
        writer
            .fail("The claude CLI crashed.")
            .iter()
            .map(|e| unframe(e)),
    );
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(
        last["response"]["error"]["message"],
        "The claude CLI crashed."
    );
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n as u64);
    }
}

/// A warm session's turn read most of its prompt from the cache: all of it
/// counts as input, and the details say how much was cached, whole and
/// streamed alike.
#[test]
fn cached_input_is_counted_and_shown_in_the_details() {
    let counts = TokenCounts {
        input: 10,
        output: 7,
        cache_read: 500,
        cache_creation: 30,
        reasoning: 0,
    };
    let answer = Answer {
        thinking: Vec::new(),
        text: "Hi".into(),
        calls: Vec::new(),
        stop: Stop::EndTurn,
        counts,
    };
    let whole = from_answer(&meta(), &answer);
    assert_eq!(whole["usage"]["input_tokens"], 540);
    assert_eq!(whole["usage"]["input_tokens_details"]["cached_tokens"], 500);
    assert_eq!(whole["usage"]["total_tokens"], 547);
    let mut writer = ResponseEvents::new(meta());
    for event in [
        TurnEvent::Text("Hi".into()),
        TurnEvent::Stopped(Stop::EndTurn),
        TurnEvent::Counted(counts),
    ] {
        writer.event(&event);
    }
    let (_, streamed) = writer.complete();
    assert_eq!(streamed["usage"], whole["usage"]);
}
