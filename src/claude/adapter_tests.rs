//! The adapter fed the real CLI recordings, byte for byte, line by line.

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/",
            $name
        ))
        .as_slice()
    };
}

const ID: &str = "chatcmpl-test";
const CREATED: u64 = 1_740_500_000;

struct Run {
    steps: Vec<Step>,
    /// Every chunk sent before `finish`, parsed.
    live: Vec<Value>,
    started_before_first_chunk: bool,
    adapter: Adapter,
}

fn feed(stdout: &[u8], include_usage: bool) -> Run {
    let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), include_usage);
    let mut steps = Vec::new();
    let mut live = Vec::new();
    let mut started_before_first_chunk = true;
    for line in stdout.split(|&b| b == b'\n') {
        let step = adapter.push_line(line);
        if let Step::Chunks(chunks) = &step {
            if live.is_empty() {
                started_before_first_chunk = adapter.started();
            }
            live.extend(chunks.iter().map(|c| parse(c)));
        }
        steps.push(step);
    }
    Run {
        steps,
        live,
        started_before_first_chunk,
        adapter,
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a chunk is JSON")
}

struct Done {
    all: Vec<Value>,
    completion: Value,
    session_id: Option<String>,
}

fn succeed(mut run: Run) -> Done {
    match run.adapter.finish() {
        Outcome::Success {
            final_chunks,
            completion,
            session_id,
        } => {
            let mut all = run.live;
            all.extend(final_chunks.iter().map(|c| parse(c)));
            Done {
                all,
                completion,
                session_id,
            }
        }
        other => panic!("expected success, got {other:?}"),
    }
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn count(chunks: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    chunks.iter().filter(|c| pred(c)).count()
}

/// The invariants every successful stream keeps (decision 3).
fn assert_well_formed(chunks: &[Value], finish: &str) {
    for c in chunks {
        assert_eq!(c["id"], ID);
        assert_eq!(c["created"], CREATED);
        assert_eq!(c["model"], "gpt-4o");
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    assert_eq!(
        count(chunks, |c| !c["choices"][0]["delta"]["role"].is_null()),
        1
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "exactly one finish chunk");
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], finish);
    let last_choice = chunks
        .iter()
        .rposition(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(
        last_choice.map(|i| &chunks[i]["choices"][0]["finish_reason"]),
        Some(&json!(finish)),
        "the finish chunk is the last chunk with a choice"
    );
}

#[test]
fn stream_new() {
    let run = feed(fixture!("stream-new.stdout"), false);
    assert!(run.started_before_first_chunk);
    assert_eq!(run.adapter.bad_lines(), 0);
    let done = succeed(run);
    assert_well_formed(&done.all, "stop");
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
    assert!(done.all.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        done.completion,
        json!({
            "id": ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": "gpt-4o",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from fake upstream."},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        })
    );
    assert_eq!(
        done.session_id.as_deref(),
        Some("3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c")
    );
}

#[test]
fn content_streams_before_the_result_arrives() {
    let run = feed(fixture!("stream-new.stdout"), false);
    // Only the last word is held back (for the redactor) until the end.
    assert_eq!(text_of(&run.live), "Hello from fake ");
    assert_eq!(
        count(&run.live, |c| !c["choices"][0]["finish_reason"].is_null()),
        0
    );
}

#[test]
fn stream_resume() {
    let done = succeed(feed(fixture!("stream-resume.stdout"), false));
    assert_well_formed(&done.all, "stop");
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
    assert_eq!(
        done.session_id.as_deref(),
        Some("3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c")
    );
}

#[test]
fn stream_max_tokens_continuation_is_one_answer() {
    // The first message stops on max_tokens, the CLI continues, and the
    // second ends with end_turn: the turn as a whole stopped normally.
    let run = feed(fixture!("stream-max-tokens.stdout"), true);
    assert!(!run
        .live
        .iter()
        .any(|c| !c["choices"][0]["finish_reason"].is_null()));
    let done = succeed(run);
    assert_well_formed(&done.all, "stop");
    let both = "Hello from fake upstream.Hello from fake upstream.";
    assert_eq!(text_of(&done.all), both);
    assert_eq!(done.completion["choices"][0]["message"]["content"], both);
    assert_eq!(done.completion["choices"][0]["finish_reason"], "stop");
    let usage = json!({"prompt_tokens": 24, "completion_tokens": 10, "total_tokens": 34});
    assert_eq!(done.completion["usage"], usage);
    let last = done.all.last().expect("chunks");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], usage);
}

#[test]
fn stream_thinking_never_reaches_the_client() {
    let done = succeed(feed(fixture!("stream-thinking.stdout"), false));
    assert_well_formed(&done.all, "stop");
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
    for c in &done.all {
        let s = c.to_string();
        assert!(
            !s.contains("Let me think") && !s.contains("c2lnbmF0dXJl"),
            "{s}"
        );
    }
}

#[test]
fn stream_unicode_survives_intact() {
    let done = succeed(feed(fixture!("stream-unicode.stdout"), false));
    assert_well_formed(&done.all, "stop");
    let expected = "Grüße 🚀 日本語\n\"quoted\"";
    assert_eq!(text_of(&done.all), expected);
    assert_eq!(
        done.completion["choices"][0]["message"]["content"],
        expected
    );
}

#[test]
fn stream_authfail_stops_at_the_first_retry() {
    let mut run = feed(fixture!("stream-authfail.stdout"), false);
    let first = run.steps.iter().position(|s| *s == Step::AuthFailed);
    // Line 3 (after init and status) is the api_retry with error_status 401.
    assert_eq!(first, Some(2));
    assert!(run.live.is_empty());
    assert!(!run.adapter.started());
    assert_eq!(
        run.adapter.finish(),
        Outcome::Failed(ApiError::BackendAuthFailed)
    );
}

#[test]
fn stream_badreq_is_context_length_exceeded() {
    let mut run = feed(fixture!("stream-badreq.stdout"), false);
    assert!(!run.adapter.started());
    assert!(run.steps.iter().all(|s| *s == Step::Nothing));
    match run.adapter.finish() {
        Outcome::Failed(e @ ApiError::ContextLengthExceeded { .. }) => {
            assert_eq!((e.status(), e.code()), (400, "context_length_exceeded"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_results_map_errors_by_cause() {
    for (stdout, status, code) in [
        (fixture!("json-authfail.stdout"), 401, "backend_auth_failed"),
        (
            fixture!("json-badreq.stdout"),
            400,
            "context_length_exceeded",
        ),
        (fixture!("json-overload.stdout"), 502, "backend_error"),
    ] {
        let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), false);
        assert_eq!(adapter.push_line(stdout), Step::Nothing);
        let Outcome::Failed(e) = adapter.finish() else {
            panic!("{code}: not a failure");
        };
        assert_eq!((e.status(), e.code()), (status, code));
        let body = e.body().to_string();
        assert!(
            !body.contains("127.0.0.1") && !body.contains("8080"),
            "{body}"
        );
    }
}

#[test]
fn a_result_without_stream_events_is_still_a_whole_answer() {
    let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), false);
    assert_eq!(
        adapter.push_line(fixture!("json-resume.stdout")),
        Step::Nothing
    );
    assert!(!adapter.started());
    let done = succeed(Run {
        steps: Vec::new(),
        live: Vec::new(),
        started_before_first_chunk: false,
        adapter,
    });
    assert_well_formed(&done.all, "stop");
    assert_eq!(done.all.len(), 3);
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
    assert_eq!(done.completion["usage"]["total_tokens"], 17);
    assert_eq!(
        done.session_id.as_deref(),
        Some("3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c")
    );
}

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
fn usage_counts_cached_input_as_prompt() {
    let usage = json!({"input_tokens": 10, "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 3, "output_tokens": 7});
    let stdout = synthetic(&["Hi"], "end_turn", ok_result("Hi", usage));
    let done = succeed(feed(&stdout, true));
    let expected = json!({"prompt_tokens": 18, "completion_tokens": 7, "total_tokens": 25});
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
    let Outcome::Success { completion, .. } = adapter.finish() else {
        panic!("not a success");
    };
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
fn garbage_lines_are_counted_and_skipped() {
    let mut stdout =
        b"not json\n{broken\n\n   \n\xff\xfe\n[1,2]\n{\"type\":\"new_kind\"}\n".to_vec();
    stdout.extend_from_slice(fixture!("stream-new.stdout"));
    let run = feed(&stdout, false);
    assert_eq!(run.adapter.bad_lines(), 3);
    let done = succeed(run);
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
}

#[test]
fn crlf_line_endings_are_accepted() {
    let stdout = String::from_utf8(fixture!("stream-new.stdout").to_vec())
        .expect("utf-8")
        .replace('\n', "\r\n");
    let run = feed(stdout.as_bytes(), false);
    assert_eq!(run.adapter.bad_lines(), 0);
    assert_eq!(text_of(&succeed(run).all), "Hello from fake upstream.");
}

#[test]
fn no_result_line_means_no_result() {
    let full = fixture!("stream-new.stdout");
    let cut = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("several lines");
    let mut run = feed(&full[..cut], false);
    assert!(run.adapter.started());
    assert_eq!(run.adapter.finish(), Outcome::NoResult);
    let mut empty = Adapter::new(ID.into(), CREATED, "m".into(), false);
    assert_eq!(empty.finish(), Outcome::NoResult);
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

#[test]
fn a_non_streaming_adapter_builds_no_chunks_and_gives_the_same_answer() {
    let stdout = fixture!("stream-new.stdout");
    let streamed = succeed(feed(stdout, true));
    let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), true).without_chunks();
    for line in stdout.split(|&b| b == b'\n') {
        let step = adapter.push_line(line);
        assert!(
            !matches!(step, Step::Chunks(_)),
            "a chunk was built: {step:?}"
        );
    }
    assert!(adapter.started());
    match adapter.finish() {
        Outcome::Success {
            final_chunks,
            completion,
            ..
        } => {
            assert!(final_chunks.is_empty(), "{final_chunks:?}");
            assert_eq!(completion, streamed.completion);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chunks_carry_usage_null_only_when_usage_was_asked_for() {
    for include_usage in [false, true] {
        let done = succeed(feed(fixture!("stream-new.stdout"), include_usage));
        let content = done
            .all
            .iter()
            .find(|c| c["choices"][0]["delta"]["content"].is_string())
            .unwrap();
        assert_eq!(content.get("usage").is_some(), include_usage, "{content}");
        if include_usage {
            assert!(content["usage"].is_null());
        }
        assert_eq!(content["object"], "chat.completion.chunk");
        assert_eq!(content["choices"][0]["index"], 0);
        assert!(content["choices"][0]["finish_reason"].is_null());
        assert!(content["choices"][0]["delta"].get("role").is_none());
    }
}
