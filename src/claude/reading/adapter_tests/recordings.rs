//! The adapter fed the recorded CLI output, byte for byte, line by line:
//! each scenario, and the same recordings with noise or cut short.

use super::*;

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
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
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
    let usage = json!({"prompt_tokens": 24, "completion_tokens": 10, "total_tokens": 34, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
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
fn stream_thinking_is_reasoning_content_when_the_client_asked() {
    let adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), false).showing_thinking();
    let done = succeed(feed_to(adapter, fixture!("stream-thinking.stdout")));
    assert_well_formed(&done.all, "stop");
    assert_eq!(text_of(&done.all), "Hello from fake upstream.");
    let thought: String = done
        .all
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(thought, "Let me think.");
    // The signature has no place in chat.
    assert!(!done
        .all
        .iter()
        .any(|c| c.to_string().contains("c2lnbmF0dXJl")));
    let message = &done.completion["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Let me think.");
    assert_eq!(message["content"], "Hello from fake upstream.");
    assert_eq!(
        done.completion["usage"]["completion_tokens_details"]["reasoning_tokens"], 0,
        "the recording reports no thinking tokens"
    );
}

#[test]
fn context_use_is_the_last_calls_prompt_and_output_and_compactions_count() {
    let mut run = feed(fixture!("stream-new.stdout"), false);
    let _ = run.adapter.finish();
    let context = run.adapter.context_use();
    assert_eq!((context.tokens, context.compactions), (12 + 5, 0));
    // `/compact` as a turn (compact.stdout): one compaction, and the
    // conversation's size after it.
    let mut run = feed(fixture!("compact.stdout"), false);
    assert!(matches!(run.adapter.finish(), Outcome::Success { .. }));
    let context = run.adapter.context_use();
    assert_eq!((context.tokens, context.compactions), (537, 1));
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
fn a_non_streaming_adapter_builds_no_chunks_and_gives_the_same_answer() {
    let stdout = fixture!("stream-new.stdout");
    let streamed = succeed(feed(stdout, true));
    let mut adapter = Adapter::new(ID.into(), CREATED, "gpt-4o".into(), true).without_events();
    for line in stdout.split(|&b| b == b'\n') {
        let step = adapter.push_line(line);
        assert!(
            !matches!(step, Step::Events(_)),
            "a chunk was built: {step:?}"
        );
    }
    assert!(adapter.started());
    match adapter.finish() {
        Outcome::Success {
            final_events,
            answer,
            ..
        } => {
            assert!(final_events.is_empty(), "{final_events:?}");
            let completion = adapter.chat_chunks().completion(&answer);
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
