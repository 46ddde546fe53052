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

/// What Codex CLI 0.171.0 sends: its tools in an `additional_tools` item,
/// grouped in namespaces, its shell as a custom tool; a hosted tool; its
/// instructions as developer messages; bookkeeping items.
#[test]
fn what_codex_sends_is_taken() {
    let t = ok(
        json!({"model": "gpt-6.2-sol", "stream": true, "store": false,
        "tool_choice": "auto", "parallel_tool_calls": false,
        "include": ["reasoning.encrypted_content"], "client_metadata": {"a": "b"},
        "tools": [{"type": "web_search", "external_web_access": false}],
        "input": [
            {"type": "additional_tools", "role": "developer", "tools": [
                {"type": "namespace", "name": "functions", "tools": [
                    {"type": "custom", "name": "exec", "description": "Run JS",
                     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
                    {"type": "function", "name": "wait", "parameters": {"type": "object"}}]}]},
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "custom_tool_call", "call_id": "call_1", "name": "exec",
             "namespace": "functions", "input": "text('x')"},
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "x"},
            {"type": "function_call_output", "output": "goal noted"},
            {"type": "reasoning", "summary": []},
            {"type": "item_reference", "id": "msg_unknown"},
            {"type": "web_search_call", "status": "completed"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        ]}),
    );
    let names: Vec<&str> = t.chat["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|f| f["function"]["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["functions.exec", "functions.wait"]);
    assert_eq!(t.chat["tool_choice"], "auto");
    assert_eq!(
        t.ignored,
        [
            "include",
            "tools:web_search",
            "input[5].call_id",
            "input:item_reference",
            "input:web_search_call"
        ]
    );
    assert_eq!(
        t.input[2]["tool_calls"][0]["function"],
        json!({"name": "functions.exec", "arguments": "{\"input\":\"text('x')\"}"})
    );
    assert_eq!(
        t.input[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "x"})
    );
    assert_eq!(
        t.words.message_places,
        ["input[1]", "input[2]", "input[3]", "input[4]", "input[9]"]
    );
    let valid = validate(&t.chat_body(&[])).expect("a valid chat request");
    assert_eq!(valid.system.as_deref(), Some("You are Codex."));
    assert_eq!(valid.cli_model, "sonnet");
}

#[test]
fn a_string_input_with_instructions_is_a_system_and_a_user_message() {
    let t = ok(json!({"model": "gpt-5", "input": "Hi", "instructions": "Be brief."}));
    let chat = t.chat_body(&[]);
    assert_eq!(
        chat["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert!(t.store);
    assert!(!t.stream);
    let valid = validate(&chat).expect("a valid chat request");
    assert_eq!(valid.system.as_deref(), Some("Be brief."));
    assert_eq!(valid.turns.len(), 1);
}

#[test]
fn an_agent_loop_history_becomes_one_assistant_turn_with_its_calls() {
    // What the Agents SDK sends back after a function call: the user
    // message, the model's text and call items, the call's output.
    let t = ok(json!({"model": "gpt-5", "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "toolu_1", "name": "get_weather",
         "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18 C"},
    ], "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}));
    assert!(ends_with_tool_results(&t.chat_body(&[])));
    let chat = t.chat_body(&[]);
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
        ])
    );
    assert_eq!(
        chat["tools"],
        json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object"}}}])
    );
    let valid = validate(&chat).expect("a valid chat request");
    assert_eq!(valid.tool_results().len(), 1);
    assert_eq!(valid.tools.functions.len(), 1);
}

#[test]
fn image_parts_text_format_and_tool_choice_are_carried_over() {
    let t = ok(json!({"model": "gpt-4.1", "stream": true,
        "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "cat", "strict": true,
            "schema": {"type": "object", "properties": {"kind": {"type": "string"}}}}}}));
    let chat = t.chat_body(&[]);
    assert_eq!(
        chat["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}})
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(chat["response_format"]["type"], "json_schema");
    assert_eq!(chat["response_format"]["json_schema"]["name"], "cat");
    let valid = validate(&chat).expect("a valid chat request");
    assert!(valid.tools.output_schema.is_some());
    assert!(valid.stream);
}

#[test]
fn knobs_the_cli_cannot_turn_are_named_and_echoed() {
    let t = ok(
        json!({"model": "gpt-5.6-luna", "input": "x", "temperature": 0.2,
        "reasoning": {"effort": "none"}, "text": {"verbosity": "low"},
        "include": ["reasoning.encrypted_content"], "metadata": {"a": "b"}, "top_p": null,
        "store": false, "previous_response_id": "resp_1"}),
    );
    assert_eq!(
        t.ignored,
        ["temperature", "include", "metadata", "text.verbosity"]
    );
    // The effort is honoured: `none` is no thinking.
    assert_eq!((t.thinking.budget, t.thinking.show), (Some(0), false));
    assert!(!t.store);
    assert_eq!(t.previous_response_id.as_deref(), Some("resp_1"));
    assert_eq!(t.echo["temperature"], json!(0.2));
    assert_eq!(t.echo["metadata"], json!({"a": "b"}));
    assert!(!t.chat_body(&[]).contains_key("response_format"));
    // Empty lists and objects ask for nothing, as the Agents SDK sends them.
    let quiet = ok(json!({"model": "gpt-5", "input": "x", "include": [], "metadata": {}}));
    assert!(quiet.ignored.is_empty(), "{:?}", quiet.ignored);
}

#[test]
fn history_from_a_previous_response_goes_between_instructions_and_input() {
    let t = ok(json!({"model": "gpt-5", "input": "and now?", "instructions": "Sys"}));
    let earlier = [
        json!({"role": "user", "content": "before"}),
        json!({"role": "assistant", "content": "answer"}),
    ];
    let roles: Vec<Value> = t.chat_body(&earlier)["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("system"),
            json!("user"),
            json!("assistant"),
            json!("user")
        ]
    );
}

#[test]
fn what_cannot_be_passed_on_is_refused_by_its_own_name() {
    for (body, param, code) in [
        (json!({"input": "x"}), "model", "missing_required_parameter"),
        (
            json!({"model": "gpt-5"}),
            "input",
            "missing_required_parameter",
        ),
        (
            json!({"model": "gpt-5", "input": 3}),
            "input",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "namespace", "name": "n"}]}),
            "tools[0].tools",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-5", "input": [{"role": "user", "content": [
                {"type": "input_file", "file_id": "file_1"}]}]}),
            "input[0].content[0]",
            "unsupported_content",
        ),
        (
            json!({"model": "gpt-5", "input": [{"role": "user", "content": [
                {"type": "input_image", "file_id": "file_1"}]}]}),
            "input[0].content[0]",
            "unsupported_content",
        ),
        (
            json!({"model": "gpt-5", "input": [{"type": "function_call", "name": "f",
                "arguments": "{}"}]}),
            "input[0].call_id",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "conversation": "conv_1"}),
            "conversation",
            "unsupported_parameter",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "background": true}),
            "background",
            "unsupported_parameter",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "text": {"format": {"type": "yaml"}}}),
            "text.format",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "previous_response_id": 7}),
            "previous_response_id",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "store": "no"}),
            "store",
            "invalid_value",
        ),
    ] {
        let error = read(body.clone()).expect_err(&body.to_string());
        assert_eq!(error.param(), Some(param), "{body}");
        assert_eq!(error.code(), code, "{body}");
        assert_eq!(error.status(), 400, "{body}");
    }
}

/// Long agent sessions resend thousands of items: taken; the bound counts
/// the client's own items and names its field.
#[test]
fn a_long_history_is_taken_and_the_bound_names_input() {
    let item = |i: usize| {
        json!({"role": if i.is_multiple_of(2) { "user" } else { "assistant" },
        "content": format!("turn {i}")})
    };
    let long: Vec<Value> = (0..2001).map(item).collect();
    let t = ok(json!({"model": "gpt-5", "input": long}));
    assert_eq!(t.input.len(), 2001);
    assert!(validate(&t.chat_body(&[])).is_ok());
    let too_long: Vec<Value> = (0..20_001).map(item).collect();
    let error = read(json!({"model": "gpt-5", "input": too_long})).expect_err("too long");
    assert_eq!(error.param(), Some("input"));
    assert!(
        error.message().starts_with("'input' has 20001 items"),
        "{}",
        error.message()
    );
}
