//! The adapter fed made-up stream-json lines, shaped like the recordings,
//! for cases no recording covers: usage counting, redaction across deltas,
//! sub-agents, error subtypes and retries.

use super::*;

/// Stream-json lines for a made-up run, shaped like the recordings.
fn text_event(text: &str) -> String {
    json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": text}}, "parent_tool_use_id": null})
    .to_string()
}

fn synthetic(texts: &[&str], stop: &str, result: Value) -> Vec<u8> {
    let mut lines = vec![
        json!({"type": "stream_event", "event": {"type": "message_start", "message": {}}})
            .to_string(),
    ];
    lines.extend(texts.iter().map(|t| text_event(t)));
    lines.push(
        json!({"type": "stream_event", "event": {"type": "message_delta",
            "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}}})
        .to_string(),
    );
    lines.push(result.to_string());
    lines.join("\n").into_bytes()
}

fn ok_result(text: &str, usage: Value) -> Value {
    json!({"type": "result", "subtype": "success", "is_error": false, "result": text,
        "session_id": "s-1", "stop_reason": "end_turn", "usage": usage})
}

#[test]
fn usage_counts_cached_input_as_prompt_and_says_how_much_was_cached() {
    let usage = json!({"input_tokens": 10, "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 3, "output_tokens": 7});
    let stdout = synthetic(&["Hi"], "end_turn", ok_result("Hi", usage));
    let done = succeed(feed(&stdout, true));
    let expected = json!({"prompt_tokens": 18, "completion_tokens": 7, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 0}});
    assert_eq!(done.completion["usage"], expected);
    let (last, rest) = done.all.split_last().expect("chunks");
    assert_eq!(last["usage"], expected);
    assert_eq!(last["choices"], json!([]));
    assert!(rest
        .iter()
        .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
}

#[test]
fn a_secret_split_across_two_deltas_is_redacted_everywhere() {
    let key = "sk-ant-api03-abcDEF0123456789xyz";
    let stdout = synthetic(
        &["my key is sk-ant-api", "03-abcDEF0123456789xyz", " done"],
        "end_turn",
        ok_result(&format!("my key is {key} done"), json!({})),
    );
    let done = succeed(feed(&stdout, false));
    for c in &done.all {
        let s = c.to_string();
        assert!(!s.contains("sk-ant") && !s.contains("abcDEF"), "{s}");
    }
    assert_eq!(text_of(&done.all), "my key is [REDACTED] done");
    assert_eq!(
        done.completion["choices"][0]["message"]["content"],
        "my key is [REDACTED] done"
    );
}

#[test]
fn the_result_text_is_redacted_when_it_is_the_answer() {
    let mut adapter = Adapter::new(ID.into(), CREATED, "m".into(), false);
    let line = ok_result("AKIAIOSFODNN7EXAMPLE", json!({})).to_string();
    adapter.push_line(line.as_bytes());
    let Outcome::Success { answer, .. } = adapter.finish() else {
        panic!("not a success");
    };
    let completion = adapter.chat_chunks().completion(&answer);
    assert_eq!(completion["choices"][0]["message"]["content"], "[REDACTED]");
}

#[test]
fn a_run_that_ends_on_max_tokens_finishes_with_length() {
    let stdout = synthetic(&["cut sh"], "max_tokens", ok_result("cut sh", json!({})));
    let done = succeed(feed(&stdout, false));
    assert_well_formed(&done.all, "length");
    assert_eq!(done.completion["choices"][0]["finish_reason"], "length");
}

#[test]
fn sub_agent_text_is_not_the_answer() {
    let mut adapter = Adapter::new(ID.into(), CREATED, "m".into(), false);
    let line = json!({"type": "stream_event", "parent_tool_use_id": "toolu_1", "event": {
        "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "inner "}}});
    assert_eq!(
        adapter.push_line(line.to_string().as_bytes()),
        Step::Nothing
    );
    assert!(!adapter.started());
}

#[test]
fn an_error_subtype_fails_even_without_is_error() {
    let mut adapter = Adapter::new(ID.into(), CREATED, "m".into(), false);
    let line = json!({"type": "result", "subtype": "error_max_turns", "session_id": "s"});
    adapter.push_line(line.to_string().as_bytes());
    let Outcome::Failed(e) = adapter.finish() else {
        panic!("not a failure");
    };
    assert_eq!(e.code(), "internal_error");
}

#[test]
fn other_retries_do_not_abort() {
    let mut adapter = Adapter::new(ID.into(), CREATED, "m".into(), false);
    for status in ["529", "500", "429", "null"] {
        let line = format!(
            r#"{{"type":"system","subtype":"api_retry","attempt":1,"error_status":{status}}}"#
        );
        assert_eq!(
            adapter.push_line(line.as_bytes()),
            Step::Nothing,
            "{status}"
        );
    }
    let forbidden = r#"{"type":"system","subtype":"api_retry","error_status":403}"#;
    assert_eq!(adapter.push_line(forbidden.as_bytes()), Step::AuthFailed);
}

/// The answer that carries a turn on after its tool results counts its own
/// model message, from that message's usage: the cache reads stay apart.
#[test]
fn a_follow_up_counts_its_own_message_with_its_cache_reads() {
    let start = json!({"type": "stream_event", "event": {"type": "message_start", "message":
        {"usage": {"input_tokens": 4, "cache_read_input_tokens": 100,
                   "cache_creation_input_tokens": 2, "output_tokens": 1}}}});
    let delta = json!({"type": "stream_event", "event": {"type": "message_delta",
        "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}});
    let whole_turn = json!({"input_tokens": 9, "cache_read_input_tokens": 300,
        "output_tokens": 20});
    let lines = [
        start.to_string(),
        text_event("Done."),
        delta.to_string(),
        ok_result("Done.", whole_turn).to_string(),
    ];
    let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), true).continuing();
    for line in &lines {
        adapter.push_line(line.as_bytes());
    }
    let Outcome::Success { answer, .. } = adapter.finish() else {
        panic!("not a success");
    };
    let usage = &adapter.chat_chunks().completion(&answer)["usage"];
    assert_eq!(
        *usage,
        json!({"prompt_tokens": 106, "completion_tokens": 5, "total_tokens": 111,
            "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
}
