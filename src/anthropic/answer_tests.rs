//! Recorded CLI runs, read by the chat adapter as the server reads them,
//! then told as Anthropic events and as a whole message.

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::claude::tools::ToolSpec;
use crate::claude::{Answer, Stop, TokenCounts, TurnEvent};
use crate::dialect::recorded::{stdout, thinking_events, turn_events, weather_and_time};

fn meta() -> MessageMeta {
    MessageMeta {
        id: "msg_0123".into(),
        model: "claude-sonnet-4-6".into(),
    }
}

/// A recorded run streamed until the answer is over: its events and the
/// whole message made from its answer.
struct Told {
    events: Vec<Value>,
    whole: Value,
}

fn tell(stdout: &[u8], tools: Arc<ToolSpec>) -> Told {
    tell_turn(turn_events(stdout, tools))
}

fn tell_turn((turn, answer): (Vec<TurnEvent>, Answer)) -> Told {
    let mut writer = MessageEvents::new(meta());
    let mut framed: Vec<Vec<u8>> = turn.iter().flat_map(|e| writer.event(e)).collect();
    framed.extend(writer.complete());
    Told {
        events: framed.iter().map(|e| unframe(e)).collect(),
        whole: meta().whole(&answer),
    }
}

fn unframe(event: &[u8]) -> Value {
    let text = std::str::from_utf8(event).expect("UTF-8");
    let (name, data) = text.split_once('\n').expect("two lines");
    let data: Value =
        serde_json::from_str(data.strip_prefix("data: ").expect("data")).expect("JSON");
    assert_eq!(
        Some(data["type"].as_str().unwrap_or("")),
        name.strip_prefix("event: ")
    );
    data
}

/// The message the events describe, assembled as Anthropic's SDKs do.
fn assembled(events: &[Value]) -> Value {
    let mut message = events[0]["message"].clone();
    let mut json_pieces: Vec<String> = Vec::new();
    for event in events {
        match event["type"].as_str() {
            Some("content_block_start") => {
                let index = event["index"].as_u64().expect("index") as usize;
                let blocks = message["content"].as_array_mut().expect("content");
                assert_eq!(blocks.len(), index, "blocks are numbered in order from 0");
                blocks.push(event["content_block"].clone());
                json_pieces.push(String::new());
            }
            Some("content_block_delta") => {
                let index = event["index"].as_u64().expect("index") as usize;
                let block = &mut message["content"][index];
                match event["delta"]["type"].as_str() {
                    Some("text_delta") => {
                        let text = format!(
                            "{}{}",
                            block["text"].as_str().unwrap_or(""),
                            event["delta"]["text"].as_str().unwrap_or("")
                        );
                        block["text"] = json!(text);
                    }
                    Some("input_json_delta") => json_pieces[index]
                        .push_str(event["delta"]["partial_json"].as_str().unwrap_or("")),
                    Some(kind @ ("thinking_delta" | "signature_delta")) => {
                        let field = kind.trim_end_matches("_delta");
                        let joined = format!(
                            "{}{}",
                            block[field].as_str().unwrap_or(""),
                            event["delta"][field].as_str().unwrap_or("")
                        );
                        block[field] = json!(joined);
                    }
                    other => panic!("delta {other:?}"),
                }
            }
            Some("content_block_stop") => {
                let index = event["index"].as_u64().expect("index") as usize;
                if !json_pieces[index].is_empty() {
                    message["content"][index]["input"] =
                        serde_json::from_str(&json_pieces[index]).expect("JSON input");
                }
            }
            Some("message_delta") => {
                message["stop_reason"] = event["delta"]["stop_reason"].clone();
                message["usage"] = event["usage"].clone();
            }
            _ => {}
        }
    }
    message
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// One message_start (then a ping), one message_delta, one message_stop
/// last; every block started, then stopped before the next.
fn assert_one_message(events: &[Value]) {
    let kinds = kinds(events);
    assert_eq!(kinds[..2], ["message_start", "ping"]);
    assert_eq!(kinds[kinds.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(kinds.iter().filter(|k| **k == "message_start").count(), 1);
    let mut open = false;
    for kind in &kinds[2..kinds.len() - 2] {
        match *kind {
            "content_block_start" => {
                assert!(!open);
                open = true;
            }
            "content_block_stop" => {
                assert!(open);
                open = false;
            }
            "content_block_delta" => assert!(open),
            other => panic!("{other} inside the message"),
        }
    }
    assert!(!open);
}

#[test]
fn a_text_answer_is_one_message_whose_events_add_up_to_the_whole_one() {
    let told = tell(&stdout("stream-new.stdout"), Arc::default());
    assert_one_message(&told.events);
    let start = &told.events[0]["message"];
    assert_eq!(start["id"], "msg_0123");
    assert_eq!(start["model"], "claude-sonnet-4-6");
    assert_eq!(start["content"], json!([]));
    assert_eq!(assembled(&told.events), told.whole);
    assert_eq!(told.whole["stop_reason"], "end_turn");
    assert_eq!(told.whole["content"][0]["type"], "text");
    assert!(told.whole["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn a_turn_the_cli_continued_after_max_tokens_streams_as_one_message() {
    // The recording holds two API messages; the client sees one, its
    // blocks numbered from 0.
    let recorded = stdout("stream-max-tokens.stdout");
    let starts = recorded
        .split(|&b| b == b'\n')
        .filter(|l| l.windows(15).any(|w| w == b"\"message_start\""))
        .count();
    assert!(starts >= 2, "the recording continues after max_tokens");
    let told = tell(&recorded, Arc::default());
    assert_one_message(&told.events);
    assert_eq!(assembled(&told.events), told.whole);
    assert_eq!(told.whole["content"].as_array().map(Vec::len), Some(1));
}

#[test]
fn thinking_stays_hidden() {
    let told = tell(&stdout("stream-thinking.stdout"), Arc::default());
    assert_one_message(&told.events);
    let all = serde_json::to_string(&told.events).unwrap_or_default();
    assert!(!all.contains("thinking"), "{all}");
    assert_eq!(assembled(&told.events), told.whole);
}

#[test]
fn shown_thinking_is_a_signed_block_before_the_text() {
    let told = tell_turn(thinking_events(&stdout("stream-thinking.stdout")));
    assert_one_message(&told.events);
    assert_eq!(assembled(&told.events), told.whole);
    assert_eq!(
        told.whole["content"],
        json!([
            {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"},
            {"type": "text", "text": "Hello from fake upstream."}
        ])
    );
}

#[test]
fn calls_are_tool_use_blocks_with_their_input() {
    let told = tell(&stdout("tools-parallel.stdout"), weather_and_time());
    assert_one_message(&told.events);
    assert_eq!(told.whole["stop_reason"], "tool_use");
    let uses: Vec<&Value> = told.whole["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(uses[0]["name"], "get_weather");
    assert_eq!(uses[1]["name"], "get_time");
    assert!(uses
        .iter()
        .all(|u| u["id"].as_str().unwrap_or("").starts_with("toolu_")));
    assert!(uses.iter().all(|u| u["input"].is_object()));
    assert_eq!(assembled(&told.events), told.whole);
}

#[test]
fn a_broken_stream_ends_with_an_error_event() {
    let mut writer = MessageEvents::new(meta());
    let mut events: Vec<Value> = writer
        .event(&TurnEvent::Text("Hal".into()))
        .iter()
        .map(|e| unframe(e))
        .collect();
    events.extend(
        writer
            .fail("api_error", "The claude CLI crashed.")
            .iter()
            .map(|e| unframe(e)),
    );
    let last = events.last().expect("events");
    assert_eq!(last["type"], "error");
    assert_eq!(
        last["error"],
        json!({"type": "api_error", "message": "The claude CLI crashed."})
    );
}

#[test]
fn stop_reasons_map_from_the_turns_stop() {
    for (stop, reason) in [
        (Stop::EndTurn, "end_turn"),
        (Stop::MaxTokens, "max_tokens"),
        (Stop::ToolUse, "tool_use"),
    ] {
        let answer = Answer {
            thinking: Vec::new(),
            text: "x".into(),
            calls: Vec::new(),
            stop,
            counts: TokenCounts {
                input: 3,
                output: 1,
                ..TokenCounts::default()
            },
        };
        let whole = meta().whole(&answer);
        assert_eq!(whole["stop_reason"], reason);
        assert_eq!(whole["usage"]["input_tokens"], 3);
    }
}

/// A warm session's turn read most of its prompt from the cache: the
/// Messages API says so as Anthropic does, whole and streamed alike.
#[test]
fn cache_reads_and_writes_are_reported_apart_from_fresh_input() {
    let counts = TokenCounts {
        input: 10,
        output: 7,
        cache_read: 500,
        cache_creation: 30,
        reasoning: 0,
    };
    let expected = json!({"input_tokens": 10, "output_tokens": 7,
        "cache_creation_input_tokens": 30, "cache_read_input_tokens": 500});
    let answer = Answer {
        thinking: Vec::new(),
        text: "Hi".into(),
        calls: Vec::new(),
        stop: Stop::EndTurn,
        counts,
    };
    assert_eq!(meta().whole(&answer)["usage"], expected);
    let mut writer = MessageEvents::new(meta());
    for event in [
        TurnEvent::Text("Hi".into()),
        TurnEvent::Stopped(Stop::EndTurn),
        TurnEvent::Counted(counts),
    ] {
        writer.event(&event);
    }
    let ending: Vec<Value> = writer.complete().iter().map(|e| unframe(e)).collect();
    assert_eq!(ending[0]["type"], "message_delta");
    assert_eq!(ending[0]["usage"], expected);
}
