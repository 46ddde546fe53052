//! The kept responses on disk, so that `previous_response_id`, an
//! `item_reference` and `GET /v1/responses/{id}` still work after a
//! restart: each response is one JSON line appended to
//! `responses.jsonl` in its session's working directory (mode 0600), a
//! deletion a line naming it. The file goes with its session: ending or
//! deleting the session removes the directory. At start the files are read
//! back, oldest first, within the store's own bounds.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{json, Value};

use super::store::Stored;

const FILE: &str = "responses.jsonl";
/// A session's file past this is not read back (its responses are lost,
/// its session is not).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub use crate::clock::unix_secs as now_secs;

/// Appends response `id`, kept at `at`, to its session's file.
pub fn append(root: &Path, id: &str, at: u64, stored: &Stored) {
    let line = json!({
        "id": id,
        "at": at,
        "owner": stored.owner,
        "session": stored.session,
        "previous": stored.previous,
        "input": stored.added,
        "output": stored.answer,
        "response": stored.extra,
    });
    write_line(root, &stored.session, &line);
}

/// Notes that response `id` of `session` was deleted.
pub fn append_deletion(root: &Path, session: &str, id: &str) {
    write_line(root, session, &json!({ "deleted": id }));
}

fn write_line(root: &Path, session: &str, line: &Value) {
    // A session id is a checked UUID: it names a directory under `root`.
    let path = root.join(session).join(FILE);
    let mut text = line.to_string();
    text.push('\n');
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        log::warn!("cannot keep a response on disk (session {session}): {e}");
    }
}

/// What is kept under `root`: every response as (id, kept at, stored),
/// oldest first, and the ids deleted since (unreadable lines left out).
pub fn read_all(root: &Path) -> (Vec<(String, u64, Stored)>, Vec<String>) {
    let mut all = Vec::new();
    let mut deleted = Vec::new();
    let Ok(dirs) = fs::read_dir(root) else {
        return (all, deleted);
    };
    for dir in dirs.filter_map(Result::ok) {
        let path = dir.path().join(FILE);
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.len() > MAX_FILE_BYTES {
            log::warn!("{} is too large to read back; skipped", path.display());
            continue;
        }
        let Ok(file) = fs::File::open(&path) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(id) = value["deleted"].as_str() {
                deleted.push(id.to_string());
            } else if let Some(entry) = read_line(value) {
                all.push(entry);
            }
        }
    }
    all.sort_by_key(|(_, at, _)| *at);
    (all, deleted)
}

fn read_line(mut value: Value) -> Option<(String, u64, Stored)> {
    let id = value["id"].as_str()?.to_string();
    let at = value["at"].as_u64()?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let stored = Stored {
        owner: text(&value["owner"]),
        session: text(&value["session"])?,
        previous: text(&value["previous"]),
        added: match value["input"].take() {
            Value::Array(input) => input,
            _ => return None,
        },
        answer: value["output"].take(),
        extra: value["response"].take(),
    };
    Some((id, at, stored))
}
