//! The model's thinking in all three APIs (issue 31), over real HTTP with
//! the fake CLI's `think` turn (a thinking block "Let me think." signed
//! `c2lnLTE=`, then the answer; 7 thinking tokens): shown in each API's own
//! form when the client asked, whole and streamed, and not when it did
//! not; its token count always; a thinking block sent back accepted.

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

const THOUGHT: &str = "Let me think.";
const SIGNATURE: &str = "c2lnLTE=";

fn post(w: &Warm, path: &str, body: &Value) -> HttpResponse {
    let headers = [
        ("Content-Type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        CLAUDE,
    ];
    request(
        w.addr(),
        "POST",
        path,
        &headers,
        body.to_string().as_bytes(),
    )
}

fn events(r: &HttpResponse) -> Vec<Value> {
    r.sse_data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

#[test]
fn chat_shows_thinking_as_reasoning_content_when_reasoning_effort_is_sent() {
    let w = Warm::start(&[]);
    let asked = json!({"model": "sonnet", "reasoning_effort": "high",
        "messages": [{"role": "user", "content": "[[fake:think]] hi"}]});
    let r = post(&w, "/v1/chat/completions", &asked);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let message = &body["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], THOUGHT, "{body}");
    assert!(message["content"].as_str().unwrap().contains("effort=high"));
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        7
    );

    // Streamed: the thinking in `reasoning_content` deltas, before the text.
    let mut streamed = asked.clone();
    streamed["stream"] = json!(true);
    let r = post(&w, "/v1/chat/completions", &streamed);
    let chunks = events(&r);
    let pieces = |field: &str| -> String {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][field].as_str())
            .collect()
    };
    assert_eq!(pieces("reasoning_content"), THOUGHT, "{}", r.text());
    let first_text = chunks
        .iter()
        .position(|c| c["choices"][0]["delta"]["content"].is_string());
    let last_thought = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"]["reasoning_content"].is_string());
    assert!(last_thought < first_text, "{}", r.text());

    // A client that did not ask sees none of it, but its count.
    let plain = json!({"model": "sonnet",
        "messages": [{"role": "user", "content": "[[fake:think]] hi"}]});
    let body = post(&w, "/v1/chat/completions", &plain).json();
    assert!(body["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        7
    );
    w.finish();
}

#[test]
fn messages_give_signed_thinking_blocks_and_take_them_back() {
    let w = Warm::start(&[]);
    let asked = json!({"model": "claude-sonnet-4-6", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "[[fake:think]] hi"}]});
    let r = post(&w, "/v1/messages", &asked);
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let message = r.json();
    assert_eq!(
        message["content"][0],
        json!({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    );
    assert_eq!(message["content"][1]["type"], "text");
    assert!(message["content"][1]["text"]
        .as_str()
        .unwrap()
        .contains("budget=2048"));

    // The SDK sends the thinking back with the conversation: accepted,
    // and the session (which holds it already) goes on warm.
    let mut next = asked.clone();
    next["messages"] = json!([
        {"role": "user", "content": "[[fake:think]] hi"},
        {"role": "assistant", "content": message["content"].clone()},
        {"role": "user", "content": "and again"}]);
    let r = post(&w, "/v1/messages", &next);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    assert!(w.run_of("and again").value["prompt"]
        .as_str()
        .is_some_and(|p| !p.contains(THOUGHT)));

    // Streamed: a thinking block at index 0 closed by its signature, then
    // the text at index 1.
    let mut streamed = asked.clone();
    streamed["stream"] = json!(true);
    let r = post(&w, "/v1/messages", &streamed);
    let all = events(&r);
    let kinds: Vec<String> = all
        .iter()
        .map(|e| {
            let delta = e["delta"]["type"].as_str().unwrap_or("");
            let block = e["content_block"]["type"].as_str().unwrap_or("");
            format!("{}{}{}", e["type"].as_str().unwrap(), delta, block)
        })
        .filter(|k| k.starts_with("content_block"))
        .collect();
    assert_eq!(
        &kinds[..2],
        [
            "content_block_startthinking",
            "content_block_deltathinking_delta"
        ],
        "{}",
        r.text()
    );
    let signature_at = kinds
        .iter()
        .position(|k| k == "content_block_deltasignature_delta")
        .expect("a signature");
    assert_eq!(kinds[signature_at + 1], "content_block_stop");
    assert_eq!(kinds[signature_at + 2], "content_block_starttext");
    let thought: String = all
        .iter()
        .filter_map(|e| e["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(thought, THOUGHT);
    let text_start = all
        .iter()
        .find(|e| e["content_block"]["type"] == "text")
        .unwrap();
    assert_eq!(text_start["index"], 1);

    // Redacted thinking is passed on as it came.
    let redacted = json!({"model": "claude-sonnet-4-6", "max_tokens": 4096,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "[[fake:think-redacted]] hi"}]});
    let message = post(&w, "/v1/messages", &redacted).json();
    assert_eq!(
        message["content"][0],
        json!({"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"})
    );

    // Without `thinking` (or with Claude Code's `display: "omitted"`): none.
    for thinking in [
        Value::Null,
        json!({"type": "adaptive", "display": "omitted"}),
    ] {
        let mut plain = asked.clone();
        plain["thinking"] = thinking;
        let message = post(&w, "/v1/messages", &plain).json();
        assert_eq!(message["content"][0]["type"], "text", "{message}");
    }
    w.finish();
}

#[test]
fn responses_give_reasoning_items_with_their_summary() {
    let w = Warm::start(&[]);
    let asked = json!({"model": "gpt-5", "input": "[[fake:think]] hi",
        "reasoning": {"effort": "medium", "summary": "auto"}});
    let r = post(&w, "/claude/v1/responses", &asked);
    assert_eq!(r.status, 200, "{}", r.text());
    let response = r.json();
    let reasoning = &response["output"][0];
    assert_eq!(reasoning["type"], "reasoning", "{response}");
    assert_eq!(
        reasoning["summary"],
        json!([{"type": "summary_text", "text": THOUGHT}])
    );
    assert_eq!(response["output"][1]["type"], "message");
    assert_eq!(
        response["usage"]["output_tokens_details"]["reasoning_tokens"],
        7
    );

    let mut streamed = asked.clone();
    streamed["stream"] = json!(true);
    let r = post(&w, "/claude/v1/responses", &streamed);
    let all = events(&r);
    let deltas: String = all
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, THOUGHT, "{}", r.text());
    let completed = all
        .iter()
        .find(|e| e["type"] == "response.completed")
        .expect("response.completed");
    let item = &completed["response"]["output"][0];
    assert_eq!(
        (&item["type"], &item["summary"]),
        (&reasoning["type"], &reasoning["summary"])
    );

    // Effort alone changes the effort, and shows nothing.
    let effort = json!({"model": "gpt-5", "input": "[[fake:think]] hi",
        "reasoning": {"effort": "low"}});
    let response = post(&w, "/claude/v1/responses", &effort).json();
    assert_eq!(response["output"][0]["type"], "message", "{response}");
    w.finish();
}
