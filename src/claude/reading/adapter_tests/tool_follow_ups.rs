//! The request after a tool call, fed the rest of the real CLI's recording:
//! a new adapter reads on from the line after the answer's `message_stop`
//! (the CLI's tool_result line) to the final answer, whatever the tool
//! said, and an interrupted tool turn fails without hurting the next one.

use super::tool_harness::*;
use super::*;

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
        json!({"prompt_tokens": 50, "completion_tokens": 24, "total_tokens": 74, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    let mut follow = feed_until_over(adapter(&spec, false, false).continuing(), paused.rest);
    let Outcome::Success { answer: whole, .. } = follow.run.adapter.finish() else {
        panic!("the follow-up failed");
    };
    let completion = follow.run.adapter.chat_chunks().completion(&whole);
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
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
