//! Request validation, one rule per row where it fits.

use super::*;
use serde_json::json;

fn check(body: Value) -> Result<ValidChat, ApiError> {
    validate(body.as_object().expect("test body is an object"))
}

fn hi(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().expect("object").iter() {
        body[k] = v.clone();
    }
    body
}

/// (status, code, param) of an error, for table rows.
fn shape(e: &ApiError) -> (u16, &'static str, Option<String>) {
    (e.status(), e.code(), e.param().map(str::to_string))
}

#[test]
fn a_plain_request_is_reduced_to_what_the_cli_needs() {
    let chat = check(json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ],
        "stream": true,
        "stream_options": {"include_usage": true}
    }))
    .unwrap();
    assert_eq!(chat.requested_model, "gpt-4o");
    assert_eq!(chat.cli_model, "sonnet");
    assert_eq!(chat.system.as_deref(), Some("Be terse.\n\nNo emoji."));
    assert_eq!(
        chat.turns,
        vec![
            text_turn(Role::User, "hi"),
            text_turn(Role::Assistant, "hello"),
            Message {
                parts: vec![Part::Text("a".into()), Part::Text("b".into())],
                ..text_turn(Role::User, "a\nb")
            },
        ]
    );
    assert!(chat.stream && chat.include_usage);
    assert!(chat.ignored_params.is_empty());
    assert_eq!(
        chat.new_user_turn().map(|t| t.content.as_str()),
        Some("a\nb")
    );
}

fn text_turn(role: Role, text: &str) -> Message {
    Message {
        role,
        content: text.into(),
        parts: if role == Role::User {
            vec![Part::Text(text.into())]
        } else {
            Vec::new()
        },
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

#[test]
fn missing_model_or_messages_is_an_error_never_a_default() {
    let e = check(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap_err();
    assert_eq!(
        shape(&e),
        (400, "missing_required_parameter", Some("model".into()))
    );
    let e = check(json!({"model": null, "messages": []})).unwrap_err();
    assert_eq!(e.param(), Some("model"));
    let e = check(json!({"model": "gpt-4o"})).unwrap_err();
    assert_eq!(
        shape(&e),
        (400, "missing_required_parameter", Some("messages".into()))
    );
}

#[test]
fn tier_two_parameters_are_listed_in_a_stable_order() {
    let chat = check(hi(json!({
        "user": "u1", "n": 1, "seed": 7, "stop": ["x"], "max_tokens": 10,
        "temperature": 0.2, "top_p": 1, "presence_penalty": 0, "frequency_penalty": -1.5,
        "max_completion_tokens": 5, "metadata": {"a": "b"}
    })))
    .unwrap();
    assert_eq!(
        chat.ignored_params,
        vec![
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "seed",
            "frequency_penalty",
            "presence_penalty",
            "user",
            "n"
        ]
    );
    let chat = check(hi(json!({"temperature": null, "stop": null}))).unwrap();
    assert!(chat.ignored_params.is_empty());
}

#[test]
fn tier_two_parameters_of_the_wrong_type_are_invalid() {
    for extra in [
        json!({"temperature": "hot"}),
        json!({"temperature": 3}),
        json!({"top_p": 1.5}),
        json!({"max_tokens": 0}),
        json!({"max_tokens": -5}),
        json!({"seed": 1.5}),
        json!({"stop": 5}),
        json!({"stop": ["a", "b", "c", "d", "e"]}),
        json!({"user": 5}),
        json!({"n": 0}),
        json!({"n": "two"}),
    ] {
        let e = check(hi(extra.clone())).unwrap_err();
        let key = extra.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(shape(&e), (400, "invalid_value", Some(key)), "{extra}");
    }
}

#[test]
fn tier_three_parameters_are_refused_and_point_to_passthrough() {
    for (extra, param) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 2}), "top_logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"n": 2}), "n"),
    ] {
        let e = check(hi(extra.clone())).unwrap_err();
        assert_eq!(
            shape(&e),
            (400, "unsupported_parameter", Some(param.into())),
            "{extra}"
        );
        assert!(e.message().contains("passthrough"), "{}", e.message());
        assert!(e.message().contains("X-Claude-Code"), "{}", e.message());
    }
}

#[test]
fn absent_forms_of_tier_three_parameters_are_accepted() {
    let chat = check(hi(json!({
        "logprobs": false, "tools": null, "tool_choice": null, "response_format": null,
        "top_logprobs": null, "logit_bias": null, "functions": null, "function_call": null
    })))
    .unwrap();
    assert!(chat.ignored_params.is_empty());
}

#[test]
fn stream_flags() {
    let e = check(hi(json!({"stream": "yes"}))).unwrap_err();
    assert_eq!(shape(&e), (400, "invalid_value", Some("stream".into())));
    let chat = check(hi(json!({"stream": null}))).unwrap();
    assert!(!chat.stream && !chat.include_usage);
    let chat = check(hi(
        json!({"stream": true, "stream_options": {"include_usage": false}}),
    ))
    .unwrap();
    assert!(chat.stream && !chat.include_usage);
    let e = check(hi(json!({"stream_options": {"include_usage": 1}}))).unwrap_err();
    assert_eq!(e.code(), "invalid_value");
    let e = check(hi(json!({"stream_options": "x"}))).unwrap_err();
    assert_eq!(e.code(), "invalid_value");
}

#[test]
fn model_rules() {
    let e = check(hi(json!({"model": 4}))).unwrap_err();
    assert_eq!(shape(&e), (400, "invalid_value", Some("model".into())));
    let e = check(hi(json!({"model": "a".repeat(257)}))).unwrap_err();
    assert_eq!(shape(&e), (400, "invalid_value", Some("model".into())));
    let e = check(hi(json!({"model": "llama-3-70b"}))).unwrap_err();
    assert_eq!(shape(&e), (400, "model_not_found", Some("model".into())));
    assert!(e.message().contains("claude-sonnet-4-6"));
    let chat = check(hi(json!({"model": "claude-haiku-4-5"}))).unwrap();
    assert_eq!(chat.cli_model, "claude-haiku-4-5-20251001");
}

#[test]
fn message_rules() {
    let user = |c: Value| json!({"role": "user", "content": c});
    let rows: Vec<(Value, u16, &str, &str)> = vec![
        (json!("nope"), 400, "invalid_value", "messages"),
        (json!([]), 400, "invalid_value", "messages"),
        (
            json!(vec![user(json!("x")); 20_001]),
            400,
            "invalid_value",
            "messages",
        ),
        (json!(["hi"]), 400, "invalid_value", "messages[0]"),
        (
            json!([{"content": "hi"}]),
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            json!([{"role": 1, "content": "hi"}]),
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            json!([{"role": "robot", "content": "hi"}]),
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            json!([user(json!("a")), {"role": "tool", "content": "r", "tool_call_id": "t"}]),
            400,
            "invalid_value",
            "messages",
        ),
        (
            json!([user(json!("a")), {"role": "assistant", "content": "b"},
                {"role": "function", "content": "r"}]),
            400,
            "invalid_value",
            "messages",
        ),
        (
            json!([user(json!("a")), {"role": "assistant", "content": "x", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}, {"role": "tool", "content": "r"}]),
            400,
            "invalid_value",
            "messages[2].tool_call_id",
        ),
        (
            json!([user(json!("a")), {"role": "assistant", "content": null, "tool_calls": [{}]}, user(json!("b"))]),
            400,
            "invalid_value",
            "messages[1].tool_calls[0]",
        ),
        (
            json!([user(
                json!([{"type": "image_url", "image_url": {"url": "http://x y"}}])
            )]),
            400,
            "invalid_value",
            "messages[0].content[0]",
        ),
        (
            json!([user(
                json!([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}])
            )]),
            400,
            "unsupported_content",
            "messages[0].content[0]",
        ),
        (
            json!([user(
                json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,A?A="}}])
            )]),
            400,
            "invalid_value",
            "messages[0].content[0]",
        ),
        (
            json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, user(json!("a"))]),
            400,
            "unsupported_content",
            "messages[0].content[0]",
        ),
        (
            json!([user(
                json!([{"type": "text", "text": "a"}, {"type": "input_audio"}])
            )]),
            400,
            "unsupported_content",
            "messages[0].content[1]",
        ),
        (
            json!([user(json!([{"type": "text"}]))]),
            400,
            "invalid_value",
            "messages[0].content[0]",
        ),
        (
            json!([user(json!([5]))]),
            400,
            "invalid_value",
            "messages[0].content[0]",
        ),
        (
            json!([user(json!(5))]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([user(json!(""))]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([user(json!(" \n\t"))]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([{"role": "user"}]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([user(json!("a\u{0}b"))]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([user(json!("x".repeat(500_001)))]),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            json!([user(json!("q")), {"role": "assistant", "content": "a"}]),
            400,
            "invalid_value",
            "messages",
        ),
        (
            json!([{"role": "system", "content": "s"}]),
            400,
            "invalid_value",
            "messages",
        ),
    ];
    for (messages, status, code, param) in rows {
        let e = check(json!({"model": "sonnet", "messages": messages.clone()})).unwrap_err();
        assert_eq!(
            shape(&e),
            (status, code, Some(param.to_string())),
            "{}",
            &messages.to_string()[..messages.to_string().len().min(200)]
        );
    }
}

#[test]
fn limits_are_inclusive_and_count_characters() {
    let one = json!({"role": "user", "content": "x"});
    let chat = check(json!({"model": "sonnet", "messages": vec![one; 100]})).unwrap();
    assert_eq!(chat.turns.len(), 100);
    // 500 000 two-byte characters is a million bytes, still within the limit.
    let chat = check(
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "ü".repeat(500_000)}]}),
    )
    .unwrap();
    assert_eq!(chat.turns[0].content.chars().count(), 500_000);
}

#[test]
fn error_messages_name_the_role_and_the_part_type() {
    let e = check(json!({"model": "sonnet", "messages": [{"role": "robot", "content": "x"}]}))
        .unwrap_err();
    assert!(e.message().contains("'robot'"), "{}", e.message());
    let e = check(json!({"model": "sonnet", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}))
        .unwrap_err();
    assert!(e.message().contains("image_url"), "{}", e.message());
}

#[test]
fn empty_system_and_assistant_content_is_allowed() {
    let chat = check(json!({"model": "sonnet", "messages": [
        {"role": "system", "content": "  "},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "b"}
    ]}))
    .unwrap();
    assert_eq!(chat.system, None);
    assert_eq!(chat.turns[1], text_turn(Role::Assistant, ""));
}

#[test]
fn a_system_prompt_over_one_argument_s_limit_is_accepted() {
    // It travels in a file now, not as an argument (128 KiB at most).
    let big = "s".repeat(70_000);
    let v = check(json!({"model": "sonnet", "messages": [
        {"role": "system", "content": big},
        {"role": "system", "content": big},
        {"role": "user", "content": "q"}]}))
    .unwrap();
    assert_eq!(v.system.map(|s| s.len()), Some(140_002));
}
