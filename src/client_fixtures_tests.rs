//! The requests real clients sent (recorded under `fixtures/clients/` by
//! `scripts/e2e/recorder.py`, `RECORD_CLIENTS=1 make e2e`), replayed
//! through this server's reading of each API. What the server makes of
//! each request (accepted or the error, the fields left out, the tools
//! offered, the conversation's roles) is kept beside the recordings in
//! `translated.json`; a client release that sends something new shows up
//! here as a difference, not as a user's bug report. After a deliberate
//! change, `UPDATE_CLIENT_FIXTURES=1 cargo test client_fixtures` rewrites
//! those files; review their diff.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::claude::request::validate::{validate, Role};
use crate::error::ApiError;

/// What the server makes of one recorded request.
fn summary(api: &str, body: &Map<String, Value>) -> Value {
    let translated = match api {
        "chat" => Ok((body.clone(), Vec::new(), None, None)),
        "responses" => crate::responses::request::translate(body).map(|t| {
            let continues = t
                .previous_response_id
                .as_ref()
                .map(|_| "previous_response_id");
            (t.chat_body(&[]), t.ignored, continues, Some(t.thinking))
        }),
        "messages" => crate::anthropic::request::translate(body).map(|t| {
            let continues = t.previous_message_id.as_ref().map(|_| "thread");
            (t.chat, t.ignored, continues, Some(t.thinking))
        }),
        other => panic!("a recording of an unknown API '{other}'"),
    };
    let checked = translated.and_then(|(chat, ignored, continues, thinking)| {
        validate(&chat).map(|mut valid| {
            valid.thinking = thinking.unwrap_or(valid.thinking);
            (valid, ignored, continues)
        })
    });
    match checked {
        Ok((valid, mut ignored, continues)) => {
            ignored.extend(valid.ignored_params.iter().cloned());
            let roles: String = valid
                .turns
                .iter()
                .map(|t| match t.role {
                    Role::User => 'u',
                    Role::Assistant => 'a',
                    Role::Tool => 't',
                })
                .collect();
            let tools: Vec<&str> = valid
                .tools
                .functions
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            json!({
                "accepted": true,
                "model": valid.cli_model,
                "system": valid.system.is_some(),
                "turns": roles,
                "tools": tools,
                "output_schema": valid.tools.output_schema.is_some(),
                "ignored": ignored,
                "continues": continues,
                "thinking": {
                    "show": valid.thinking.show,
                    "effort": valid.thinking.effort,
                    "budget": valid.thinking.budget,
                },
            })
        }
        Err(error) => refused(&error),
    }
}

fn refused(error: &ApiError) -> Value {
    json!({"accepted": false, "code": error.code(), "param": error.param()})
}

#[test]
fn recorded_client_requests_read_as_before() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clients");
    let update = std::env::var_os("UPDATE_CLIENT_FIXTURES").is_some();
    let mut clients: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures/clients")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    clients.sort();
    assert!(!clients.is_empty(), "no recorded clients");
    let mut differences = Vec::new();
    for dir in clients {
        let mut now = BTreeMap::new();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("a client's folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| p.file_name().is_some_and(|n| n != "translated.json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a recording");
            let recording: Value = serde_json::from_str(&text).expect("a JSON recording");
            let api = recording["api"].as_str().expect("its api");
            let body = recording["body"].as_object().expect("a JSON body");
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            now.insert(name.to_string(), summary(api, body));
        }
        let now = serde_json::to_value(&now).expect("a map");
        let kept_path = dir.join("translated.json");
        if update {
            let text = serde_json::to_string_pretty(&now).expect("JSON") + "\n";
            std::fs::write(&kept_path, text).expect("translated.json written");
            continue;
        }
        let kept: Value = std::fs::read_to_string(&kept_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let empty = Map::new();
        let kept = kept.as_object().unwrap_or(&empty);
        for (name, summary) in now.as_object().expect("a map") {
            if kept.get(name) != Some(summary) {
                differences.push(format!(
                    "{}/{name}:\n  kept: {}\n  now:  {summary}",
                    dir.display(),
                    kept.get(name).unwrap_or(&Value::Null)
                ));
            }
        }
        for name in kept
            .keys()
            .filter(|n| !now.as_object().is_some_and(|m| m.contains_key(*n)))
        {
            differences.push(format!(
                "{}/{name}: kept, but no longer recorded",
                dir.display()
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "what the server makes of recorded client requests changed (rerun with \
         UPDATE_CLIENT_FIXTURES=1 after a deliberate change):\n{}",
        differences.join("\n")
    );
}

/// Every recorded request of a client on its defaults is taken.
#[test]
fn every_recorded_client_request_is_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clients");
    let mut refused_ones = Vec::new();
    for dir in std::fs::read_dir(&root)
        .expect("fixtures/clients")
        .filter_map(Result::ok)
    {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.filter_map(Result::ok).map(|e| e.path()) {
            if file.extension().is_none_or(|x| x != "json")
                || file.file_name().is_some_and(|n| n == "translated.json")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("a recording");
            let recording: Value = serde_json::from_str(&text).expect("a JSON recording");
            let api = recording["api"].as_str().expect("its api");
            let body = recording["body"].as_object().expect("a JSON body");
            let summary = summary(api, body);
            if summary["accepted"] != true {
                refused_ones.push(format!("{}: {summary}", file.display()));
            }
        }
    }
    assert!(
        refused_ones.is_empty(),
        "refused:\n{}",
        refused_ones.join("\n")
    );
}
