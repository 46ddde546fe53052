use serde_json::{json, Value};

use super::*;
use crate::claude::request::validate::validate;
use crate::routes::ends_with_tool_results;

fn read(body: Value) -> Result<Translated, ApiError> {
    translate(body.as_object().expect("an object"))
}

fn ok(body: Value) -> Translated {
    read(body).expect("accepted")
}

#[test]
fn system_blocks_and_a_text_message_become_a_chat_request() {
    let t = ok(json!({"model": "claude-sonnet-4-6", "max_tokens": 1024,
        "system": [{"type": "text", "text": "Be brief."},
                   {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.1, "top_k": 5}));
    assert_eq!(
        t.chat["messages"],
        json!([{"role": "system", "content": "Be brief.\n\nBe kind."},
               {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    );
    assert_eq!(t.ignored, ["max_tokens", "temperature", "top_k"]);
    assert!(!t.stream && !ends_with_tool_results(&t.chat));
    let valid = validate(&t.chat).expect("a valid chat request");
    assert_eq!(valid.system.as_deref(), Some("Be brief.\n\nBe kind."));
    assert_eq!(valid.cli_model, "claude-sonnet-4-6");
}

/// What Claude Code 2.1.331 sends as a client: a system message among the
/// messages, a tool kept for a tool search, Anthropic's server tools.
#[test]
fn what_claude_code_sends_is_taken() {
    let t = ok(json!({"model": "claude-opus-5-5", "max_tokens": 128000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment",
                "cache_control": {"type": "ephemeral"}}]}],
        "tools": [
            {"name": "Bash", "input_schema": {"type": "object"}},
            {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"},
             "defer_loading": true},
            {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto"}}));
    let valid = validate(&t.chat).expect("a valid chat request");
    // The system message goes with the user message it follows.
    assert_eq!(valid.system.as_deref(), Some("You are Claude Code."));
    assert_eq!(valid.turns.len(), 1);
    assert_eq!(
        valid.turns[0].content,
        "Say hello\n<system-reminder>\n# Environment\n</system-reminder>"
    );
    let names: Vec<&str> = valid
        .tools
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["Bash"]);
    assert_eq!(
        t.ignored,
        [
            "max_tokens",
            "tools:defer_loading",
            "tools:web_search_20250305"
        ]
    );
    assert_eq!(t.words.tool_places, ["tools[0]"]);
    // Only server tools: the turn runs without tools.
    let t = ok(json!({"model": "sonnet", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any"}}));
    assert!(t.chat.get("tools").is_none() && t.chat.get("tool_choice").is_none());
    assert_eq!(
        t.ignored,
        ["max_tokens", "tools:web_search_20250305", "tool_choice"]
    );
}

/// System messages inside the conversation stay where they stand, so the
/// system prompt stays the same when a client adds one (Claude Code does
/// when its tools change between turns).
#[test]
fn system_messages_go_with_the_user_message_they_follow() {
    let sys = |text: &str| json!({"role": "system", "content": text});
    let t = ok(
        json!({"model": "sonnet", "max_tokens": 5, "system": "Top.", "messages": [
        sys("Leading."),
        {"role": "user", "content": "one"},
        sys("After one."),
        {"role": "assistant", "content": "ok"},
        sys("Before two."),
        {"role": "user", "content": [{"type": "text", "text": "two"}]}]}),
    );
    let valid = validate(&t.chat).expect("a valid chat request");
    assert_eq!(valid.system.as_deref(), Some("Top.\n\nLeading."));
    let contents: Vec<&str> = valid.turns.iter().map(|t| t.content.as_str()).collect();
    assert_eq!(
        contents,
        [
            "one\n<system-reminder>\nAfter one.\n</system-reminder>",
            "ok",
            "two\n<system-reminder>\nBefore two.\n</system-reminder>"
        ]
    );
    // After tool results, it joins the last result, as reminders do.
    let t = ok(json!({"model": "sonnet", "max_tokens": 5, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
        sys("Tools changed.")]}));
    assert_eq!(
        t.chat["messages"][2]["content"],
        "r\n\n<system-reminder>\nTools changed.\n</system-reminder>"
    );
    assert!(ends_with_tool_results(&t.chat));
}

/// pydantic-ai puts its next question after the results it sends.
#[test]
fn a_question_after_the_results_is_a_user_message_of_its_own() {
    let t = ok(json!({"model": "sonnet", "max_tokens": 5, "messages": [
        {"role": "user", "content": "Describe Paris."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "final_result", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Final result processed."},
            {"type": "text", "text": "Now describe Rome."}]}],
        "thread": {"type": "continue", "previous_message_id": "msg_1"}}));
    let messages = t.chat["messages"].as_array().expect("messages");
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["content"], "Final result processed.");
    assert_eq!(
        messages[3],
        json!({"role": "user", "content": [{"type": "text", "text": "Now describe Rome."}]})
    );
    assert_eq!(t.words.message_places[3], "messages[2]");
    assert_eq!(t.previous_message_id.as_deref(), Some("msg_1"));
    assert!(!ends_with_tool_results(&t.chat));
}

#[test]
fn a_tool_loop_s_blocks_become_calls_and_results() {
    let t = ok(json!({"model": "sonnet", "max_tokens": 100, "stream": true,
    "tools": [{"name": "get_weather", "description": "by city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "18 C"}]},
            {"type": "text", "text": "<system-reminder>Keep going</system-reminder>"}]},
    ]}));
    assert!(ends_with_tool_results(&t.chat));
    let messages = t.chat["messages"].as_array().expect("messages");
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "toolu_1",
               "content": "18 C\n\n<system-reminder>Keep going</system-reminder>"})
    );
    assert_eq!(t.chat["tool_choice"], "required");
    assert_eq!(t.chat["parallel_tool_calls"], false);
    assert_eq!(
        t.chat["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    let valid = validate(&t.chat).expect("a valid chat request");
    assert_eq!(valid.tool_results().len(), 1);
    assert_eq!(valid.tools.functions[0].name, "get_weather");
}

#[test]
fn images_errors_and_output_formats_are_carried_over() {
    let t = ok(json!({"model": "sonnet", "max_tokens": 10,
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            {"type": "text", "text": "What are these?"}]}]}));
    let parts = &t.chat["messages"][0]["content"];
    assert_eq!(parts[0]["image_url"]["url"], "data:image/png;base64,iVBO");
    assert_eq!(parts[1]["image_url"]["url"], "https://example.com/a.jpg");
    assert_eq!(
        t.chat["response_format"]["json_schema"]["schema"],
        json!({"type": "object"})
    );
    let valid = validate(&t.chat).expect("a valid chat request");
    assert!(valid.tools.output_schema.is_some());

    let failed = ok(json!({"model": "sonnet", "max_tokens": 10, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
            "content": "disk full", "is_error": true}]}]}));
    assert_eq!(failed.chat["messages"][2]["content"], "Error: disk full");
}

#[test]
fn what_cannot_be_passed_on_is_refused_by_its_own_name() {
    let user = json!([{"role": "user", "content": "hi"}]);
    for (body, param, code) in [
        (
            json!({"max_tokens": 5, "messages": user}),
            "model",
            "missing_required_parameter",
        ),
        (
            json!({"model": "sonnet", "messages": user}),
            "max_tokens",
            "missing_required_parameter",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 0, "messages": user}),
            "max_tokens",
            "invalid_value",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5}),
            "messages",
            "missing_required_parameter",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
            "invalid_value",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": user,
                "thread": {"type": "fork", "previous_message_id": "msg_1"}}),
            "thread.type",
            "invalid_value",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": user,
                "thread": {"type": "continue"}}),
            "thread.previous_message_id",
            "invalid_value",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "data": "x"}}]}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}},
                {"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]}),
            "messages[0].content",
            "unsupported_content",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": user, "mcp_servers": []}),
            "mcp_servers",
            "unsupported_parameter",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": user, "tool_choice": {"type": "all"}}),
            "tool_choice",
            "invalid_value",
        ),
        (
            json!({"model": "sonnet", "max_tokens": 5, "messages": user, "system": [{"type": "image"}]}),
            "system[0]",
            "invalid_value",
        ),
    ] {
        let error = read(body.clone()).expect_err(&body.to_string());
        assert_eq!(error.param(), Some(param), "{body}");
        assert_eq!(error.code(), code, "{body}");
        assert_eq!(error.anthropic_kind(), "invalid_request_error", "{body}");
    }
}

#[test]
fn output_config_s_format_is_honoured_and_unread_fields_are_named() {
    let t = ok(json!({"model": "sonnet", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"effort": "high",
            "format": {"type": "json_schema", "schema": {"type": "object"}}},
        "inference_geo": "us", "speed": null, "stop_sequences": ["END"]}));
    assert_eq!(
        t.chat["response_format"]["json_schema"]["schema"],
        json!({"type": "object"})
    );
    assert_eq!(t.ignored, ["max_tokens", "stop_sequences", "inference_geo"]);
    // The effort is honoured: it is the turn's.
    assert_eq!(t.thinking.effort, Some("high"));
    let bad = read(json!({"model": "sonnet", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"format": {"type": "xml"}}}))
    .expect_err("not a schema");
    assert_eq!(bad.param(), Some("output_config.format"));
}

/// The bound counts the client's own messages and names its field.
#[test]
fn a_long_history_is_taken_and_the_bound_names_messages() {
    let message = |i: usize| {
        json!({"role": if i.is_multiple_of(2) { "user" } else { "assistant" },
        "content": format!("turn {i}")})
    };
    let long: Vec<Value> = (0..2001).map(message).collect();
    let t = ok(json!({"model": "sonnet", "max_tokens": 5, "messages": long}));
    assert!(validate(&t.chat).is_ok());
    let too_long: Vec<Value> = (0..20_001).map(message).collect();
    let error = read(json!({"model": "sonnet", "max_tokens": 5, "messages": too_long}))
        .expect_err("too long");
    assert_eq!(error.param(), Some("messages"));
    assert!(
        error.message().contains("20001 messages"),
        "{}",
        error.message()
    );
}
