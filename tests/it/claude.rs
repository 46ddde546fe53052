//! Claude Code mode over real HTTP, with the fake CLI (fixtures/fake-claude)
//! replaying the real CLI's recordings and recording what it was given.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

struct Claude {
    server: TestServer,
    records: PathBuf,
}

impl Claude {
    fn start(extra: &[(&str, &str)]) -> Claude {
        let mut vars = vec![
            ("OPENAI_API_KEY", "sk-proj-server-openai-key-000000"),
            ("ANTHROPIC_API_KEY", "sk-ant-test-key-1234567890"),
        ];
        vars.extend_from_slice(extra);
        let (server, records) = server_with_fake_cli(&vars);
        Claude { server, records }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// What the fake CLI recorded, one entry per run, oldest first.
    fn runs(&self) -> Vec<Value> {
        let mut runs: Vec<(std::time::SystemTime, Value)> = std::fs::read_dir(&self.records)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let value: Value = serde_json::from_str(&text).ok()?;
                Some((e.metadata().ok()?.modified().ok()?, value))
            })
            .collect();
        runs.sort_by_key(|(t, _)| *t);
        runs.into_iter().map(|(_, v)| v).collect()
    }

    fn last_run(&self) -> Value {
        self.runs().pop().expect("the fake CLI ran")
    }
}

fn body(model: &str, user: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": user}]}).to_string()
}

fn argv(run: &Value) -> Vec<String> {
    run["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn pid_alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn non_streaming_answer_with_session_headers_and_usage() {
    let c = Claude::start(&[]);
    let r = chat(c.addr(), &[CLAUDE], &body("gpt-4o", "hello there"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Backend-Mode"), Some("claude-code"));
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    assert_eq!(uuid::Uuid::parse_str(&sid).unwrap().get_version_num(), 4);
    assert_eq!(r.header("X-Claude-Session-Created"), Some("true"));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "model=sonnet turns=1 system=no prompt_chars=11"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // input 7 + cache read 2 + cache creation 1
    assert_eq!(v["usage"]["prompt_tokens"], 10);
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["usage"]["total_tokens"], 14);

    let run = c.last_run();
    let args = argv(&run);
    for flag in [
        "-p",
        "--verbose",
        "--include-partial-messages",
        "--output-format",
        "--input-format",
        "--tools",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} in {args:?}");
    }
    assert_eq!(
        flag_value(&args, "--output-format").as_deref(),
        Some("stream-json")
    );
    assert_eq!(
        flag_value(&args, "--input-format").as_deref(),
        Some("stream-json")
    );
    // The turn travels on stdin, never as an argument.
    assert_eq!(run["prompt"], "hello there");
    assert!(!args.contains(&"hello there".to_string()));
    assert_eq!(flag_value(&args, "--tools").as_deref(), Some(""));
    assert_eq!(flag_value(&args, "--model").as_deref(), Some("sonnet"));
    assert_eq!(
        flag_value(&args, "--session-id").as_deref(),
        Some(sid.as_str())
    );
    assert!(!args.contains(&"--dangerously-skip-permissions".to_string()));
    assert!(run["cwd"].as_str().unwrap().ends_with(&sid));
    let env = run["env"].as_object().unwrap();
    assert!(env.get("OPENAI_API_KEY").is_none());
    assert_eq!(env["ANTHROPIC_API_KEY"], "sk-ant-test-key-1234567890");
    assert_eq!(env["TERM"], "dumb");
    assert_eq!(env["CLAUDE_CODE_MAX_RETRIES"], "2");
}

#[test]
fn resumed_session_sends_only_the_last_user_message_in_the_same_directory() {
    // A cold resume: with warm children the turn would go to the first CLI.
    let c = Claude::start(&[("WARM_SESSIONS", "0")]);
    let first = chat(c.addr(), &[CLAUDE], &body("sonnet", "my name is Ada"));
    assert_eq!(first.status, 200);
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    let cwd1 = c.last_run()["cwd"].as_str().unwrap().to_string();

    let follow = json!({"model": "sonnet", "messages": [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "hi Ada"},
        {"role": "user", "content": "what is my name?"}
    ]})
    .to_string();
    let second = chat(c.addr(), &[("X-Claude-Session-ID", &sid)], &follow);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(second.header("X-Claude-Session-Created"), None);
    let content = second.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.contains("turns=2"), "{content}");
    assert!(content.contains("prompt_chars=16"), "{content}");
    let run = c.last_run();
    let args = argv(&run);
    assert_eq!(flag_value(&args, "--resume").as_deref(), Some(sid.as_str()));
    assert_eq!(run["prompt"], "what is my name?");
    assert_eq!(run["cwd"].as_str().unwrap(), cwd1);
}

#[test]
fn new_session_with_history_gets_a_transcript_and_system_prompt() {
    let c = Claude::start(&[]);
    let req = json!({"model": "haiku", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"}
    ]})
    .to_string();
    let r = chat(c.addr(), &[CLAUDE], &req);
    assert_eq!(r.status, 200, "{}", r.text());
    let run = c.last_run();
    let args = argv(&run);
    // The system prompt is a private file in the session's directory.
    let file = flag_value(&args, "--system-prompt-file").expect("a system prompt file");
    assert!(file.starts_with(run["cwd"].as_str().unwrap()), "{file}");
    assert_eq!(run["system"], "Be terse.\n\nAnswer in English.");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let prompt = run["prompt"].as_str().expect("a transcript prompt");
    assert!(prompt.contains("User: Hi") && prompt.contains("Assistant: Hello"));
    assert!(prompt.contains("User: Bye"));
    assert!(!prompt.contains("Be terse"));
}

#[test]
fn session_errors_are_told_apart() {
    let c = Claude::start(&[]);
    let r = chat(
        c.addr(),
        &[("X-Claude-Session-ID", "not-a-uuid")],
        &body("sonnet", "x"),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_session_id")
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = chat(
        c.addr(),
        &[("X-Claude-Session-ID", &unknown)],
        &body("sonnet", "x"),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "session_not_found")
    );
}

#[test]
fn a_session_the_cli_lost_is_404_and_forgotten() {
    let c = Claude::start(&[]);
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", "hi"));
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let resume = [("X-Claude-Session-ID", sid.as_str())];
    let r = chat(c.addr(), &resume, &body("sonnet", "[[fake:gone]]"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "session_not_found")
    );
    let runs = c.runs().len();
    let r = chat(c.addr(), &resume, &body("sonnet", "again"));
    assert_eq!(r.status, 404);
    assert_eq!(c.runs().len(), runs, "a forgotten session starts no CLI");
}

#[test]
fn a_session_belongs_to_the_key_that_created_it() {
    let c = Claude::start(&[(
        "API_KEYS",
        "sk-cca-owner-key-000001,sk-cca-other-key-000002",
    )]);
    let owner = ("Authorization", "Bearer sk-cca-owner-key-000001");
    let other = ("Authorization", "Bearer sk-cca-other-key-000002");
    let r = chat(c.addr(), &[CLAUDE, owner], &body("sonnet", "hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let r = chat(
        c.addr(),
        &[other, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", "hi"),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "session_not_found")
    );
    let r = chat(
        c.addr(),
        &[owner, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", "hi"),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_busy_session_refuses_a_second_request() {
    let c = Claude::start(&[]);
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", "hi"));
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let addr = c.addr();
    let sid2 = sid.clone();
    let slow = std::thread::spawn(move || {
        chat(
            addr,
            &[("X-Claude-Session-ID", &sid2)],
            &body("sonnet", "[[fake:sleep:1]]"),
        )
    });
    assert!(wait_until(Duration::from_secs(5), || c.runs().len() == 2));
    let r = chat(
        c.addr(),
        &[("X-Claude-Session-ID", &sid)],
        &body("sonnet", "again"),
    );
    assert_eq!((r.status, r.error_code().as_str()), (429, "session_busy"));
    assert_eq!(slow.join().unwrap().status, 200);
}

/// Lets every `linger` run of the fake CLI exit.
fn release_lingering(c: &Claude) {
    std::fs::write(c.records.join("release"), "").unwrap();
}

fn active_processes(c: &Claude) -> Value {
    get(c.addr(), "/health").json()["checks"]["capacity"]["active"].clone()
}

#[test]
fn the_answer_leaves_when_the_cli_has_answered_not_when_it_exits() {
    // Without warm children every CLI gets EOF after its turn and exits.
    let c = Claude::start(&[("WARM_SESSIONS", "0")]);
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", "[[fake:linger]]"));
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"].clone();
    assert!(content.as_str().unwrap().contains("turns=1"), "{content}");
    let first = c.last_run()["pid"].as_i64().unwrap() as i32;

    let data = SseClient::open(c.addr(), &[CLAUDE], &stream_body("[[fake:linger]]")).collect();
    let chunks = assert_well_formed(&data, "stop");
    assert!(content_of(&chunks).contains("turns=1"));
    let second = c.last_run()["pid"].as_i64().unwrap() as i32;

    // Both CLIs are still there, waiting to be let go, and still hold
    // their process slots.
    assert!(process_alive(first) && process_alive(second));
    assert_eq!(active_processes(&c), 2);
    release_lingering(&c);
    assert!(wait_until(Duration::from_secs(5), || !process_alive(first)
        && !process_alive(second)));
    assert!(wait_until(Duration::from_secs(2), || active_processes(&c) == 0));
    assert_eq!(c.server.app().claude.live_children(), 0);
}

#[test]
fn a_resume_waits_for_the_previous_cli_to_exit_instead_of_refusing() {
    let c = Claude::start(&[("WARM_SESSIONS", "0")]);
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", "[[fake:linger]]"));
    assert_eq!(r.status, 200);
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    let addr = c.addr();
    let next = std::thread::spawn(move || {
        chat(
            addr,
            &[("X-Claude-Session-ID", &sid)],
            &body("sonnet", "and now?"),
        )
    });
    // A server that refused it, or started a second CLI on the session
    // (the fake then fails the run), would never get here.
    assert!(wait_until(Duration::from_secs(5), || c
        .server
        .app()
        .claude
        .resumes_waiting()
        == 1));
    assert_eq!(c.runs().len(), 1, "no second CLI while the first lives");
    release_lingering(&c);
    let r = next.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"].clone();
    assert!(content.as_str().unwrap().contains("turns=2"), "{content}");
}

fn chunks(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn assert_well_formed(data: &[String], finish: &str) -> Vec<Value> {
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(data);
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
        .count();
    assert_eq!(roles, 1, "one role chunk");
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "one finish chunk");
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], finish);
    let id = &chunks[0]["id"];
    assert!(chunks
        .iter()
        .all(|c| &c["id"] == id && c["created"] == chunks[0]["created"]));
    chunks
}

fn stream_body(user: &str) -> String {
    json!({"model": "claude-sonnet-4-6", "stream": true,
           "messages": [{"role": "user", "content": user}]})
    .to_string()
}

#[test]
fn streams_follow_the_recordings() {
    let c = Claude::start(&[]);
    for (scenario, text) in [
        ("replay:stream-new", "Hello from fake upstream."),
        (
            "replay:stream-max-tokens",
            "Hello from fake upstream.Hello from fake upstream.",
        ),
        ("replay:stream-thinking", "Hello from fake upstream."),
        ("replay:stream-unicode", "Grüße 🚀 日本語\n\"quoted\""),
    ] {
        let s = SseClient::open(
            c.addr(),
            &[CLAUDE],
            &stream_body(&format!("[[fake:{scenario}]]")),
        );
        assert_eq!(s.status, 200, "{scenario}");
        assert_eq!(s.header("Content-Type"), Some("text/event-stream"));
        assert!(s.header("X-Claude-Session-ID").is_some());
        let data = s.collect();
        let chunks = assert_well_formed(&data, "stop");
        let content = content_of(&chunks);
        if scenario.ends_with("unicode") {
            assert!(content.starts_with("Grüße 🚀 日本語\n\""), "{content:?}");
        } else {
            assert_eq!(content, text, "{scenario}");
        }
        assert!(!content.contains("Let me think"), "no thinking text");
        assert!(chunks.iter().all(|c| c["model"] == "claude-sonnet-4-6"));
    }
}

#[test]
fn stream_usage_chunk_when_asked() {
    let c = Claude::start(&[]);
    let req = json!({"model": "sonnet", "stream": true, "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let data = SseClient::open(c.addr(), &[CLAUDE], &req).collect();
    let chunks = chunks(&data);
    let usage: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["usage"]["prompt_tokens"], 10);
}

#[test]
fn errors_are_mapped_by_cause() {
    let c = Claude::start(&[]);
    for (scenario, stream, status, code) in [
        ("replay:json-authfail", false, 401, "backend_auth_failed"),
        ("replay:stream-authfail", true, 401, "backend_auth_failed"),
        ("replay:json-overload", false, 502, "backend_error"),
        ("replay:stream-badreq", true, 400, "context_length_exceeded"),
        ("replay:json-badreq", false, 400, "context_length_exceeded"),
        ("stderr-exit", false, 500, "internal_error"),
        ("garbage", false, 500, "internal_error"),
        ("crash", false, 500, "internal_error"),
        ("not-logged-in", false, 401, "backend_auth_failed"),
        ("not-logged-in", true, 401, "backend_auth_failed"),
    ] {
        let req = json!({"model": "sonnet", "stream": stream,
                         "messages": [{"role": "user", "content": format!("[[fake:{scenario}]]")}]})
        .to_string();
        let r = chat(c.addr(), &[CLAUDE], &req);
        assert_eq!(r.status, status, "{scenario}: {}", r.text());
        assert_eq!(r.error_code(), code, "{scenario}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        for leak in [
            "/usr/lib",
            "/home/app",
            "sk-ant-",
            "127.0.0.1",
            "ANTHROPIC_API_KEY=",
        ] {
            assert!(
                !message.contains(leak),
                "{scenario} leaks {leak}: {message}"
            );
        }
    }
}

#[test]
fn a_warning_on_stderr_does_not_fail_a_good_answer() {
    // The real CLI warns on stderr about a model name it does not know and
    // still answers, exit status 0.
    let c = Claude::start(&[]);
    let r = chat(
        c.addr(),
        &[CLAUDE],
        &body("sonnet", "[[fake:replay:json-bad-model]]"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
}

#[test]
fn auth_retries_are_cut_short() {
    let c = Claude::start(&[]);
    let started = Instant::now();
    let r = chat(
        c.addr(),
        &[CLAUDE],
        &body("sonnet", "[[fake:authfail-hang]]"),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "backend_auth_failed")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let pid = c.last_run()["pid"].as_i64().unwrap();
    assert!(wait_until(Duration::from_secs(2), || !pid_alive(pid)));
}

#[test]
fn crash_mid_stream_ends_with_finish_error_and_done() {
    let c = Claude::start(&[]);
    let stream = SseClient::open(c.addr(), &[CLAUDE], &stream_body("[[fake:crash]]"));
    let sid = stream.header("X-Claude-Session-ID").unwrap().to_string();
    let data = stream.collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
    let parsed = chunks(&data);
    let error = parsed.last().unwrap();
    assert_eq!(error["error"]["code"], "stream_error");
    let finish = &parsed[parsed.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(content_of(&parsed), "partial");
    // The client was given the session id; it stays usable.
    let r = chat(
        c.addr(),
        &[("X-Claude-Session-ID", &sid)],
        &body("sonnet", "again"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn validation_rejects_what_claude_mode_cannot_do() {
    let c = Claude::start(&[]);
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            json!({"messages": user}),
            400,
            "missing_required_parameter",
            Some("model"),
        ),
        (
            json!({"model": "sonnet"}),
            400,
            "missing_required_parameter",
            Some("messages"),
        ),
        (
            json!({"model": "llama-3-70b", "messages": user}),
            400,
            "model_not_found",
            Some("model"),
        ),
        (
            json!({"model": "sonnet", "messages": user, "tools": [{"type": "function"}]}),
            400,
            "invalid_value",
            Some("tools[0].function"),
        ),
        (
            json!({"model": "sonnet", "messages": user, "n": 2}),
            400,
            "unsupported_parameter",
            Some("n"),
        ),
        (
            json!({"model": "sonnet", "messages": user, "response_format": {"type": "xml"}}),
            400,
            "invalid_value",
            Some("response_format.type"),
        ),
        (
            json!({"model": "sonnet", "messages": [{"role": "tool", "content": "x", "tool_call_id": "t"}]}),
            400,
            "invalid_tool_call_id",
            Some("messages"),
        ),
        (
            json!({"model": "sonnet", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            400,
            "unsupported_content",
            Some("messages[0].content[0]"),
        ),
        (
            json!({"model": "sonnet", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            400,
            "invalid_value",
            Some("messages[0].content[0]"),
        ),
        (
            json!({"model": "sonnet", "messages": []}),
            400,
            "invalid_value",
            None,
        ),
        (
            json!({"model": "sonnet", "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "invalid_value",
            None,
        ),
    ];
    for (req, status, code, param) in cases {
        let r = chat(c.addr(), &[CLAUDE], &req.to_string());
        assert_eq!(r.status, status, "{req}: {}", r.text());
        assert_eq!(r.error_code(), code, "{req}");
        if let Some(param) = param {
            assert_eq!(r.json()["error"]["param"], param, "{req}");
        }
    }
    let r = chat(
        c.addr(),
        &[CLAUDE],
        &json!({"model": "llama-3-70b", "messages": user}).to_string(),
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("sonnet") && message.contains("gpt-4o"),
        "{message}"
    );
    assert!(c.runs().is_empty(), "no CLI run for a rejected request");

    let ok = json!({"model": "gpt-4o-2024-11-20", "temperature": 0.2, "max_tokens": 5, "messages": user});
    let r = chat(c.addr(), &[CLAUDE], &ok.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let ignored = r.header("X-Claude-Ignored-Params").unwrap();
    assert!(ignored.contains("temperature") && ignored.contains("max_tokens"));
    assert_eq!(r.json()["model"], "gpt-4o-2024-11-20");
}

#[test]
fn text_parts_are_joined() {
    let c = Claude::start(&[]);
    let req = json!({"model": "sonnet", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "[[fake:say]]one"}, {"type": "text", "text": "two"}]}]});
    let r = chat(c.addr(), &[CLAUDE], &req.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains("one") && content.contains("two"),
        "{content}"
    );
}

#[test]
fn shell_metacharacters_reach_the_cli_literally() {
    let c = Claude::start(&[]);
    let canary = c.records.join("pwned");
    let nasty = format!(
        "$(touch {p}) `touch {p}`; touch {p} && echo $HOME | cat > {p} 'quote\" \\ \n",
        p = canary.display()
    );
    let req = json!({"model": "sonnet", "messages": [
        {"role": "system", "content": nasty},
        {"role": "user", "content": nasty}]});
    let r = chat(c.addr(), &[CLAUDE], &req.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let run = c.last_run();
    assert_eq!(
        run["prompt"],
        nasty.as_str(),
        "the turn arrives byte-identical"
    );
    assert_eq!(run["system"], nasty.as_str());
    assert!(argv(&run).iter().all(|a| !a.contains("touch")));
    assert!(!canary.exists(), "nothing was executed");
}

#[test]
fn long_prompts_and_system_prompts_go_whole() {
    let c = Claude::start(&[]);
    let long = "a".repeat(200 * 1024);
    let system = "s".repeat(300 * 1024);
    let req = json!({"model": "sonnet", "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": long}]});
    let r = chat(c.addr(), &[CLAUDE], &req.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let run = c.last_run();
    assert_eq!(run["prompt"].as_str().unwrap().len(), long.len());
    assert_eq!(run["system"].as_str().unwrap().len(), system.len());
    assert!(argv(&run).iter().all(|a| a.len() < 1024));
}

#[test]
fn secrets_in_answers_are_redacted_even_when_split() {
    let c = Claude::start(&[]);
    let secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
    let user = format!("[[fake:say]]the key is {secret} ok");
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", &user));
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!content.contains("abcdefghij"), "{content}");
    assert!(content.contains("[REDACTED]"), "{content}");

    let data = SseClient::open(c.addr(), &[CLAUDE], &stream_body(&user)).collect();
    let streamed = content_of(&chunks(&data));
    assert!(!streamed.contains("abcdefghij"), "{streamed}");
    assert!(
        streamed.contains("[REDACTED]") && streamed.ends_with(" ok"),
        "{streamed}"
    );
}

#[test]
fn missing_cli_is_503_backend_unavailable() {
    let c = Claude::start(&[("CLAUDE_PATH", "/nonexistent/claude")]);
    let r = chat(c.addr(), &[CLAUDE], &body("sonnet", "hi"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "backend_unavailable")
    );
    let h = get(c.addr(), "/health").json();
    assert_eq!(h["checks"]["claude_cli"], "error");
}

#[test]
fn sessions_survive_a_restart() {
    let state = temp_dir("restart-state");
    let state_s = state.display().to_string();
    let keys = ("API_KEY", "sk-cca-restart-key-0001");
    let auth = ("Authorization", "Bearer sk-cca-restart-key-0001");
    let first = Claude::start(&[("STATE_DIR", &state_s), keys]);
    let r = chat(first.addr(), &[CLAUDE, auth], &body("sonnet", "hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    drop(first);

    let second = Claude::start(&[
        ("STATE_DIR", &state_s),
        ("API_KEYS", "sk-cca-restart-key-0001,sk-cca-intruder-key-02"),
    ]);
    let intruder = ("Authorization", "Bearer sk-cca-intruder-key-02");
    let r = chat(
        second.addr(),
        &[intruder, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", "x"),
    );
    assert_eq!(r.status, 404);
    let r = chat(
        second.addr(),
        &[auth, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", "again"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.contains("turns=2"), "{content}");
    let registry = std::fs::read_to_string(Path::new(&state).join("sessions.json")).unwrap();
    assert!(!registry.contains("sk-cca-restart-key-0001"));
}
