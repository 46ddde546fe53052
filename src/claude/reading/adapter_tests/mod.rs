//! The harness for the adapter tests: feeds stdout to an [`Adapter`] line
//! by line, collects the chunks and checks the shape every stream keeps.
//! `recordings` uses the real CLI output, `synthetic` made-up lines,
//! `tools` the recorded tool calls and structured output.

use serde_json::{json, Value};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/",
            $name
        ))
        .as_slice()
    };
}

const ID: &str = "chatcmpl-test";
const CREATED: u64 = 1_740_500_000;

struct Run {
    steps: Vec<Step>,
    /// Every chunk sent before `finish`, parsed.
    live: Vec<Value>,
    started_before_first_chunk: bool,
    adapter: Adapter,
}

fn feed(stdout: &[u8], include_usage: bool) -> Run {
    feed_to(
        Adapter::new(ID.into(), CREATED, "gpt-4o".into(), include_usage),
        stdout,
    )
}

/// `stdout` read by `adapter`.
fn feed_to(mut adapter: Adapter, stdout: &[u8]) -> Run {
    let mut steps = Vec::new();
    let mut live = Vec::new();
    let mut started_before_first_chunk = true;
    for line in stdout.split(|&b| b == b'\n') {
        let step = adapter.push_line(line);
        if let Step::Events(events) = &step {
            if live.is_empty() {
                started_before_first_chunk = adapter.started();
            }
            live.extend(
                adapter
                    .chat_chunks()
                    .encode_all(events)
                    .iter()
                    .map(|c| parse(c)),
            );
        }
        steps.push(step);
    }
    Run {
        steps,
        live,
        started_before_first_chunk,
        adapter,
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a chunk is JSON")
}

struct Done {
    all: Vec<Value>,
    completion: Value,
    session_id: Option<String>,
}

fn succeed(mut run: Run) -> Done {
    match run.adapter.finish() {
        Outcome::Success {
            final_events,
            answer,
            session_id,
        } => {
            let completion = run.adapter.chat_chunks().completion(&answer);
            let mut all = run.live;
            let chunks = run.adapter.chat_chunks().encode_all(&final_events);
            all.extend(chunks.iter().map(|c| parse(c)));
            Done {
                all,
                completion,
                session_id,
            }
        }
        other => panic!("expected success, got {other:?}"),
    }
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn count(chunks: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    chunks.iter().filter(|c| pred(c)).count()
}

/// The invariants every successful stream keeps (decision 3).
fn assert_well_formed(chunks: &[Value], finish: &str) {
    for c in chunks {
        assert_eq!(c["id"], ID);
        assert_eq!(c["created"], CREATED);
        assert_eq!(c["model"], "gpt-4o");
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    assert_eq!(
        count(chunks, |c| !c["choices"][0]["delta"]["role"].is_null()),
        1
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "exactly one finish chunk");
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], finish);
    let last_choice = chunks
        .iter()
        .rposition(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(
        last_choice.map(|i| &chunks[i]["choices"][0]["finish_reason"]),
        Some(&json!(finish)),
        "the finish chunk is the last chunk with a choice"
    );
}

mod recordings;
mod synthetic;
mod tool_follow_ups;
mod tool_harness;
mod tools;
