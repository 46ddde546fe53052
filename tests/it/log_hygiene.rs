//! What the real binary writes to its log over a whole lifecycle, both
//! backends, successes and failures: every request has its access line
//! (request id, status, duration, masked key), refusals leave structured
//! audit lines at warn, and no prompt, answer or secret appears anywhere.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::binary::Running;
use crate::support::fake_openai::{Answer, FakeOpenAi};
use crate::support::{chat, SseClient, FAKE_CLI};

const SERVER_KEY: &str = "sk-cca-loghygiene-key-7f3a";
const OPENAI_KEY: &str = "sk-proj-server-openai-secret-0042";
const CLIENT_OPENAI_KEY: &str = "sk-proj-client-supplied-secret-0077";
const ANTHROPIC_KEY: &str = "sk-ant-api03-anthropic-secret-0099";
const PROMPT: &str = "PROMPT-CANARY-the quick brown fox";
const ANSWER: &str = "ANSWER-CANARY-from-upstream";

#[test]
fn a_whole_lifecycle_logs_metadata_and_nothing_secret() {
    let upstream = FakeOpenAi::start(Answer::json(
        200,
        &json!({"id": "x", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]})
        .to_string(),
    ));
    let base = upstream.base_url();
    let path = std::env::var("PATH").unwrap_or_default();
    let mut server = Running::start(&[
        ("API_KEY", SERVER_KEY),
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", &base),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
        ("RATE_LIMIT_PER_IP", "8"),
        ("RATE_LIMIT_WINDOW_MS", "60000"),
        ("LOG_LEVEL", "debug"),
    ]);
    let addr = server.addr();
    let auth = format!("Bearer {SERVER_KEY}");
    let auth = ("Authorization", auth.as_str());
    let body = |extra: &str| {
        json!({"model": "sonnet", "messages": [{"role": "user", "content": format!("{extra}{PROMPT}")}]})
            .to_string()
    };

    // Passthrough: server key, then the client's own key.
    assert_eq!(chat(addr, &[auth], &body("")).status, 200);
    assert_eq!(
        chat(
            addr,
            &[auth, ("X-OpenAI-API-Key", CLIENT_OPENAI_KEY)],
            &body("")
        )
        .status,
        200
    );
    // Claude mode: an answer that echoes the prompt, a stream, a failure.
    let claude = ("X-Claude-Code", "true");
    let r = chat(addr, &[auth, claude], &body("[[fake:say]]"));
    assert_eq!(r.status, 200, "{}", r.text());
    let stream = json!({"model": "sonnet", "stream": true,
        "messages": [{"role": "user", "content": format!("[[fake:say]]{PROMPT}")}]})
    .to_string();
    assert!(
        SseClient::open(addr, &[auth, claude], &stream)
            .collect()
            .len()
            > 2
    );
    assert_eq!(
        chat(addr, &[auth, claude], &body("[[fake:stderr-exit]]")).status,
        500
    );
    // Refusals: a wrong key, then the per-IP limit.
    let wrong = ("Authorization", "Bearer sk-cca-wrong-guess-000000001234");
    assert_eq!(chat(addr, &[wrong], &body("")).status, 401);
    let mut limited = false;
    for _ in 0..6 {
        limited |= chat(addr, &[auth], &body("")).status == 429;
    }
    assert!(limited);

    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let lines = server.all_lines();
    let text = lines.join("\n");

    for secret in [
        SERVER_KEY,
        OPENAI_KEY,
        CLIENT_OPENAI_KEY,
        ANTHROPIC_KEY,
        "sk-cca-wrong-guess-000000001234",
        "PROMPT-CANARY",
        "quick brown fox",
        ANSWER,
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = parsed.iter().filter(|v| v["event"] == "request").collect();
    assert_eq!(access.len(), 12, "one access line per request");
    for line in &access {
        assert!(line["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(line["status"].is_u64());
        assert!(line["duration_ms"].is_number());
        if line["status"] == 200 {
            assert!(line["mode"].is_string(), "{line}");
        }
    }
    let with_key = access
        .iter()
        .filter(|l| l["key"] == "sk-cca-****7f3a")
        .count();
    assert!(with_key >= 6, "authenticated requests carry the masked key");
    assert!(access
        .iter()
        .any(|l| l["mode"] == "claude-code" && l["session_id"].is_string()));

    let audit = |event: &str| {
        parsed
            .iter()
            .find(|v| v["event"] == event)
            .unwrap_or_else(|| panic!("no {event} line"))
            .clone()
    };
    let denied = audit("auth_failed");
    assert_eq!(denied["level"], "warn");
    assert_eq!(denied["client_ip"], "127.0.0.1");
    assert_eq!(denied["key"], "sk-cca-****1234");
    let limited = audit("rate_limited");
    assert_eq!(limited["level"], "warn");
    assert_eq!(limited["scope"], "ip");
    assert!(limited["retry_after"].is_u64());
    // The CLI's stderr is logged for operators, with its secrets redacted.
    let stderr = audit("cli_stderr");
    assert!(stderr["stderr"].as_str().unwrap().contains("[REDACTED]"));
}
