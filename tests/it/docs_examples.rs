//! The docs cannot rot: every curl example in README.md and docs/ that is
//! marked `<!-- test: ... -->` is sent, as curl would send it, to a real
//! server started here (with the stand-in CLI `fixtures/fake-claude` and a
//! fake OpenAI upstream), and the answer is checked against the marker
//! (status, headers) and against the `response` block the docs show.
//! Blocks that are not run here must say why: `mirrored:` (the end-to-end
//! suite in scripts/e2e/ runs the same SDK calls, `make e2e`), `excerpt:`
//! (lines of a file, checked below), or `no-test:` with a reason.
//!
//! Marker keys: `status=N` (required), `server=open|keys|bare|tools`,
//! `upstream=ok|401|embedding|response` (what the fake upstream answers: a
//! chat completion or stream, an OpenAI 401, an embedding, a Responses API
//! `response`), `header:NAME=VALUE` (`-` for absent, `$VAR` allowed),
//! `capture:VAR=HEADER` or `capture:VAR=$.json.path[0]` (a header, or a
//! string or number of the JSON answer; later examples of the same file may
//! use `$VAR`).
//!
//! A shown stream is compared event by event (see docs_support::shape). A
//! chat stream must end with one `[DONE]`; a typed stream must not have
//! one, and must name each event by its type: a Responses API stream
//! (`response.*` events) numbers them in order, an Anthropic Messages
//! stream (`message_start`, `content_block_*`, ...) numbers its content
//! blocks from 0 and ends with `message_delta` and `message_stop` (or an
//! `error`); so must the stream the docs show.
//!
//! The `tools` server's stand-in model calls `get_weather` with
//! `{"city":"Paris"}` at the start of every new turn (the fake's
//! `tools:` scenario), so tool loops can be shown without the fake's
//! `[[fake:...]]` directives in the prompts; its final answer, once the
//! result is in, quotes what the tool returned.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::docs_support::curl::{self, CurlRequest};
use crate::docs_support::markdown::{self, Block, Note};
use crate::docs_support::shape::{self, Event, StreamKind};
use crate::support;
use crate::support::fake_openai::{Answer, FakeOpenAi};
use crate::support::{TestServer, FAKE_CLI};

/// What `$API_KEY` and `$OTHER_API_KEY` stand for; the `keys` server takes both.
const API_KEY: &str = "sk-cca-docs-example-key-0001";
const OTHER_API_KEY: &str = "sk-cca-docs-other-key-0002";
/// `$OPENAI_API_KEY` in the docs: a client's own OpenAI key.
const CLIENT_OPENAI_KEY: &str = "sk-proj-docs-client-key-0000000001";
const SERVER_OPENAI_KEY: &str = "sk-proj-docs-server-key-0000000002";

/// Documents whose curl examples run here.
const RUN: &[&str] = &[
    "README.md",
    "docs/API_REFERENCE.md",
    "docs/SESSIONS.md",
    "docs/COMPATIBILITY.md",
];
/// What the `tools` server's stand-in model does with every new turn.
const TOOLS_SCENARIO: &str = r#"tools:get_weather {"city":"Paris"}"#;
/// Documents checked for unaccounted examples.
const ALL_DOCS: &[&str] = &[
    "README.md",
    "docs/API_REFERENCE.md",
    "docs/SESSIONS.md",
    "docs/COMPATIBILITY.md",
    "docs/DEPLOYMENT.md",
    "docs/ARCHITECTURE.md",
    "docs/ROADMAP.md",
];

/// One document's run: the fake upstream, the servers it asked for so far,
/// and the variables its examples use.
struct World {
    fake: FakeOpenAi,
    servers: HashMap<String, TestServer>,
    vars: HashMap<String, String>,
}

impl World {
    fn new() -> World {
        let vars = [
            ("API_KEY", API_KEY),
            ("OTHER_API_KEY", OTHER_API_KEY),
            ("OPENAI_API_KEY", CLIENT_OPENAI_KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        World {
            fake: FakeOpenAi::start(Answer::json(500, "{}")),
            servers: HashMap::new(),
            vars,
        }
    }

    /// `open`: both backends, no client keys, the default per-address rate
    /// limit, no `ANTHROPIC_API_KEY` (as with a subscription login).
    /// `keys`: the same with `API_KEYS`. `bare`: neither backend usable.
    /// `tools`: `open` whose stand-in model calls a tool on every new turn.
    fn server(&mut self, name: &str) -> Result<&TestServer, String> {
        if !self.servers.contains_key(name) {
            let base = self.fake.base_url();
            let path = std::env::var("PATH").unwrap_or_default();
            let keys = format!("{API_KEY},{OTHER_API_KEY}");
            let mut pairs: Vec<(&str, &str)> = vec![
                ("PATH", &path),
                ("OPENAI_BASE_URL", &base),
                ("RATE_LIMIT_PER_IP", "60"),
            ];
            match name {
                "open" | "keys" | "tools" => {
                    pairs.push(("CLAUDE_PATH", FAKE_CLI));
                    pairs.push(("OPENAI_API_KEY", SERVER_OPENAI_KEY));
                    if name == "keys" {
                        pairs.push(("API_KEYS", &keys));
                    }
                    if name == "tools" {
                        pairs.push(("FAKE_CLAUDE_SCENARIO", TOOLS_SCENARIO));
                        pairs.push(("CLAUDE_ENV_PASSTHROUGH", "FAKE_CLAUDE_SCENARIO"));
                    }
                }
                "bare" => {
                    pairs.push(("CLAUDE_PATH", "/nonexistent/claude"));
                    pairs.push(("ALLOW_CLIENT_OPENAI_KEY", "false"));
                }
                other => return Err(format!("unknown server {other:?}")),
            }
            let mut config = support::config_from(&pairs);
            // The server runs inside this test binary: the CLI must start
            // the built server as its tool bridge.
            config.bridge_exe = env!("CARGO_BIN_EXE_claude-cli-api").into();
            let server = support::server_with(config);
            self.servers.insert(name.to_string(), server);
        }
        self.servers
            .get(name)
            .ok_or_else(|| "server vanished".to_string())
    }
}

/// A parsed `test:` marker.
#[derive(Default)]
struct Marker {
    status: Option<u16>,
    server: String,
    upstream: String,
    headers: Vec<(String, String)>,
    captures: Vec<(String, String)>,
}

fn marker(text: &str) -> Result<Marker, String> {
    let mut m = Marker {
        server: "open".into(),
        upstream: "ok".into(),
        ..Marker::default()
    };
    for token in text.split_whitespace() {
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| format!("marker token {token:?} is not key=value"))?;
        match key.split_once(':') {
            None if key == "status" => {
                m.status = Some(value.parse().map_err(|_| format!("bad status {value}"))?)
            }
            None if key == "server" => m.server = value.into(),
            None if key == "upstream" => m.upstream = value.into(),
            Some(("header", name)) => m.headers.push((name.into(), value.into())),
            Some(("capture", var)) => m.captures.push((var.into(), value.into())),
            _ => return Err(format!("unknown marker key {key:?}")),
        }
    }
    if m.status.is_none() {
        return Err("the marker has no status=".into());
    }
    Ok(m)
}

/// What the fake upstream answers to `rq`: an OpenAI-style completion or
/// stream for the requested model, or an OpenAI error.
fn upstream_answer(kind: &str, rq: &CurlRequest) -> Result<Answer, String> {
    let body: Value = rq
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("gpt-4o-mini");
    let id = "chatcmpl-Bq3n5Kp0d7ZfT2xYw9sL";
    match kind {
        "embedding" => Ok(Answer::json(
            200,
            &json!({"object": "list", "model": model,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0091, 0.0152]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
            .to_string(),
        )),
        "response" => Ok(Answer::json(
            200,
            &json!({"id": "resp_68a1c0ffee0123456789abcdef012345", "object": "response",
                "created_at": 1764000000, "status": "completed", "model": model,
                "output": [{"id": "msg_68a1c0ffee0123456789abcdef012345", "type": "message",
                    "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello!", "annotations": []}]}],
                "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}})
            .to_string(),
        )),
        "401" => Ok(Answer::json(
            401,
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        )),
        "ok" if body["stream"] == json!(true) => {
            let chunk = |delta: Value, finish: Value| {
                let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1764000000,
                    "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                format!("data: {c}")
            };
            let mut events = vec![
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                chunk(json!({"content": "Hello"}), Value::Null),
                chunk(json!({"content": "!"}), Value::Null),
                chunk(json!({}), json!("stop")),
            ];
            if body["stream_options"]["include_usage"] == json!(true) {
                let usage = json!({"id": id, "object": "chat.completion.chunk", "created": 1764000000,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}});
                events.push(format!("data: {usage}"));
            }
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            Ok(Answer::sse(&events))
        }
        "ok" => Ok(Answer::Json {
            status: 200,
            headers: vec![("x-request-id".into(), "req_docs_example".into())],
            body: json!({"id": id, "object": "chat.completion", "created": 1764000000,
                "model": model, "choices": [{"index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
            .to_string(),
        }),
        other => Err(format!("unknown upstream answer {other:?}")),
    }
}

fn substitute(value: &str, vars: &HashMap<String, String>) -> String {
    match value.strip_prefix('$') {
        Some(name) => vars.get(name).cloned().unwrap_or_else(|| value.to_string()),
        None => value.to_string(),
    }
}

/// Runs one `test:` block; the problems found, if any.
fn run_example(world: &mut World, block: &Block, marker_text: &str) -> Result<(), Vec<String>> {
    let one = |e: String| vec![e];
    let m = marker(marker_text).map_err(one)?;
    let rq = curl::request_of(&block.text, &world.vars).map_err(one)?;
    world
        .fake
        .answer(upstream_answer(&m.upstream, &rq).map_err(one)?);
    let addr = world.server(&m.server).map_err(one)?.addr;
    let headers: Vec<(&str, &str)> = rq
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = rq.body.as_deref().unwrap_or("").as_bytes();
    let r = support::request(addr, &rq.method, &rq.path, &headers, body);

    let mut errors = Vec::new();
    let status = m.status.unwrap_or(0);
    if r.status != status {
        errors.push(format!(
            "status {} (the docs say {status}): {}",
            r.status,
            r.text()
        ));
    }
    for (name, want) in &m.headers {
        let got = r.header(name);
        match want.as_str() {
            "-" if got.is_some() => errors.push(format!("{name} is {got:?}, expected absent")),
            "-" => {}
            want => {
                let want = substitute(want, &world.vars);
                let ok = got.is_some_and(|g| {
                    g == want || (name.eq_ignore_ascii_case("content-type") && g.starts_with(&want))
                });
                if !ok {
                    errors.push(format!("{name} is {got:?}, expected {want:?}"));
                }
            }
        }
    }
    for (var, source) in &m.captures {
        let value = if source.starts_with('$') {
            serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|body| shape::json_at(&body, source))
        } else {
            r.header(source).map(str::to_string)
        };
        match value {
            Some(v) => {
                world.vars.insert(var.clone(), v);
            }
            None => errors.push(format!("no {source} in the answer to capture as ${var}")),
        }
    }
    let is_stream = r
        .header("Content-Type")
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_stream {
        let events: Result<Vec<Event>, String> =
            r.sse_data().iter().map(|d| shape::event_of(d)).collect();
        match events {
            Ok(events) => {
                check_stream(&r.text(), &events, block, &mut errors);
            }
            Err(e) => errors.push(e),
        }
    } else if let Some(shown) = &block.response {
        match (
            serde_json::from_str::<Value>(&shown.text),
            serde_json::from_slice::<Value>(&r.body),
        ) {
            (Ok(doc), Ok(actual)) => shape::compare_json(&doc, &actual, "$", &mut errors),
            (Err(e), _) => errors.push(format!("{} is not JSON: {e}", shown.place)),
            (_, Err(_)) => errors.push(format!("the answer is not JSON: {}", r.text())),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A stream's ending, and its events against the ones the docs show. A
/// chat stream ends with exactly one `[DONE]`; a typed stream (the
/// Responses API's, or the Anthropic Messages API's) has none, and its
/// events (the real ones and the ones shown) are named by their type, and
/// numbered or ordered as that API does.
fn check_stream(text: &str, events: &[Event], block: &Block, errors: &mut Vec<String>) {
    let done = events.iter().filter(|e| **e == Event::Done).count();
    let typed = shape::stream_kind(events) != StreamKind::Chat;
    if typed {
        if done != 0 {
            errors.push("a Responses or Anthropic stream has a [DONE]".into());
        }
        errors.extend(shape::typed_stream_errors(text));
    } else if done != 1 {
        errors.push("the stream does not end with exactly one [DONE]".into());
    }
    let Some(shown) = &block.response else {
        return;
    };
    match shape::events_of_text(&shown.text) {
        Ok(doc) => {
            if typed {
                for e in shape::typed_stream_errors(&shown.text) {
                    errors.push(format!("{}: {e}", shown.place));
                }
            }
            shape::compare_stream(&doc, events, errors);
        }
        Err(e) => errors.push(format!("{}: {e}", shown.place)),
    }
}

/// Runs every `test:` block of `doc` in order; fails listing each problem
/// with the place in the docs it belongs to.
fn run_doc(doc: &str) {
    let blocks = markdown::blocks(doc);
    let mut world = World::new();
    let mut ran = 0;
    let mut problems = Vec::new();
    for block in &blocks {
        let Some(Note::Test(marker_text)) = &block.note else {
            continue;
        };
        ran += 1;
        if let Err(errors) = run_example(&mut world, block, marker_text) {
            for e in errors {
                problems.push(format!("{}: {e}", block.place));
            }
        }
    }
    assert!(ran > 0, "{doc} has no `test:` examples");
    assert!(
        problems.is_empty(),
        "{} problem(s) in {doc}:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("{doc}: {ran} examples ran");
}

#[test]
fn readme_examples_run() {
    run_doc("README.md");
}

#[test]
fn api_reference_examples_run() {
    run_doc("docs/API_REFERENCE.md");
}

#[test]
fn sessions_examples_run() {
    run_doc("docs/SESSIONS.md");
}

#[test]
fn compatibility_examples_run() {
    run_doc("docs/COMPATIBILITY.md");
}

/// A block needs a note when it is code a reader would run or copy: a curl
/// command, an SDK snippet, or a configuration file.
fn needs_note(block: &Block) -> bool {
    let code = matches!(
        block.language(),
        "python" | "py" | "js" | "javascript" | "ts" | "typescript" | "nginx" | "ini" | "systemd"
    );
    let curl = block
        .text
        .lines()
        .any(|l| l.trim_start().starts_with("curl "));
    !block.is_response() && (code || curl)
}

#[test]
fn every_example_is_run_mirrored_or_excused() {
    let mut problems = Vec::new();
    for doc in ALL_DOCS {
        for block in markdown::blocks(doc) {
            if !needs_note(&block) {
                continue;
            }
            match &block.note {
                None => problems.push(format!(
                    "{}: a {} block without a test:, mirrored:, excerpt: or no-test: note",
                    block.place,
                    block.language()
                )),
                Some(Note::Test(_)) if !RUN.contains(doc) => problems.push(format!(
                    "{}: `test:` in a document this test does not run",
                    block.place
                )),
                Some(Note::NoTest(why)) if why.trim().is_empty() => {
                    problems.push(format!("{}: no-test without a reason", block.place))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn excerpts_are_lines_of_their_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut problems = Vec::new();
    for doc in ALL_DOCS {
        for block in markdown::blocks(doc) {
            let Some(Note::Excerpt(path)) = &block.note else {
                continue;
            };
            checked += 1;
            match std::fs::read_to_string(root.join(path)) {
                Ok(file) => {
                    for e in shape::excerpt_errors(&block.text, &file) {
                        problems.push(format!("{} ({path}): {e}", block.place));
                    }
                }
                Err(e) => problems.push(format!("{}: cannot read {path}: {e}", block.place)),
            }
        }
    }
    assert!(checked > 0, "no excerpts found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `mirrored:` names the end-to-end tests that run the same calls; they
/// must exist.
#[test]
fn mirrored_examples_name_real_end_to_end_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in ALL_DOCS {
        for block in markdown::blocks(doc) {
            let Some(Note::Mirrored(what)) = &block.note else {
                continue;
            };
            let mut words = what.split_whitespace();
            let file = words.next().unwrap_or("");
            let source = match std::fs::read_to_string(root.join(file)) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{}: cannot read {file}: {e}", block.place));
                    continue;
                }
            };
            for name in words.filter(|w| w.starts_with("test_")) {
                checked += 1;
                if !source.contains(&format!("def {name}(")) {
                    problems.push(format!("{}: {file} has no {name}", block.place));
                }
            }
        }
    }
    assert!(checked > 0, "no mirrored examples found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
