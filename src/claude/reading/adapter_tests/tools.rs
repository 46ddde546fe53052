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
//! `feed_until_over` (`tool_harness`); the follow-up requests are in
//! `tool_follow_ups`.

use super::tool_harness::*;
use super::*;

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
            "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
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
