//! Compares what the docs show with what the server said.
//!
//! A JSON answer matches when every field the docs show is there, with the
//! same type, and with the same value except where the value differs from
//! run to run (ids, timestamps, the model's text, numbers such as token
//! counts). In a shown string, `...` stands for any text. A stream
//! matches when its events come in the same order of kinds (role, content,
//! finish, usage, error, `[DONE]`; runs of content, and runs of tool call
//! deltas, count as one) and the n-th shown event of each kind matches the
//! n-th real one, when there is one.
//!
//! Typed streams name each event by its `type`, which is its kind: a
//! Responses API stream (`response.*`, runs of text or argument deltas
//! count as one), whose events must also be numbered from 0
//! (`sequence_number`), and an Anthropic Messages stream (`message_start`,
//! `content_block_*`, ...; a block's kind adds its own type, as in
//! `content_block_delta:text_delta`, and runs of one kind of delta count as
//! one), whose content blocks must be numbered from 0 and which must end
//! with one `message_delta` and `message_stop`, or with an `error`
//! (`typed_stream_errors`).
//!
//! Excerpts: every non-blank line shown must be a line of the file, in the
//! file's order; an `@NAME@` placeholder in the file stands for any text
//! without spaces.

use serde_json::Value;

/// Keys whose values change from run to run (or come from the stand-in CLI:
/// `content` and a Responses output's `text` and `delta` are the model's).
const VOLATILE: &[&str] = &[
    "id",
    "created",
    "content",
    "version",
    "text",
    "delta",
    "item_id",
    "call_id",
    "previous_response_id",
];

pub fn compare_json(doc: &Value, actual: &Value, path: &str, errors: &mut Vec<String>) {
    let key = path.rsplit('.').next().unwrap_or("");
    match (doc, actual) {
        (Value::Object(d), Value::Object(a)) => {
            for (k, dv) in d {
                let here = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => compare_json(dv, av, &here, errors),
                    None => errors.push(format!("{here} is shown but missing")),
                }
            }
        }
        (Value::Array(d), Value::Array(a)) => {
            if d.is_empty() != a.is_empty() {
                errors.push(format!(
                    "{path} has {} items, the docs show {}",
                    a.len(),
                    d.len()
                ));
            }
            for (i, dv) in d.iter().enumerate() {
                match a.get(i) {
                    Some(av) => compare_json(dv, av, &format!("{path}[{i}]"), errors),
                    None => errors.push(format!("{path}[{i}] is shown but missing")),
                }
            }
        }
        (Value::String(d), Value::String(a)) => {
            let same = VOLATILE.contains(&key) || d == a || (d.contains("...") && elided(d, a));
            if !same {
                errors.push(format!("{path} is {a:?}, the docs show {d:?}"));
            }
        }
        (Value::Number(_), Value::Number(_)) => {}
        (d, a) if d == a => {}
        (d, a) => errors.push(format!("{path} is {a}, the docs show {d}")),
    }
}

/// `shown` with each `...` standing for any text (the docs elide a session
/// id, or the tail of a long list) matches `actual`.
fn elided(shown: &str, actual: &str) -> bool {
    let parts: Vec<&str> = shown.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first)
        || !actual.ends_with(last)
        || actual.len() < first.len() + last.len()
    {
        return false;
    }
    let mut middle = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match middle.find(part) {
            Some(at) => middle = &middle[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The string or number at `path` (`$.a.b[0].c`) of `value`, as text.
pub fn json_at(value: &Value, path: &str) -> Option<String> {
    let mut at = value;
    let mut rest = path.strip_prefix('$')?;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            at = at.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            at = at.get(after[..end].parse::<usize>().ok()?)?;
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    match at {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Done,
    Json(Value),
}

/// The `data:` payloads of SSE text, as the docs show it.
pub fn events_of_text(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(event_of)
        .collect()
}

pub fn event_of(payload: &str) -> Result<Event, String> {
    if payload.trim() == "[DONE]" {
        return Ok(Event::Done);
    }
    serde_json::from_str(payload)
        .map(Event::Json)
        .map_err(|e| format!("event {payload:?} is not JSON: {e}"))
}

/// The kind of a stream event: a Responses API event's `type`, or, for a
/// chat chunk, what it carries.
pub fn kind(event: &Event) -> String {
    let Event::Json(v) = event else {
        return "done".into();
    };
    if let Some(kind) = typed(v) {
        // An Anthropic block event is told apart by the block's own type.
        let sub = match kind {
            "content_block_start" => v["content_block"]["type"].as_str(),
            "content_block_delta" => v["delta"]["type"].as_str(),
            _ => None,
        };
        return match sub {
            Some(sub) => format!("{kind}:{sub}"),
            None => kind.to_string(),
        };
    }
    if v.get("error").is_some() {
        return "error".into();
    }
    let choices = v["choices"].as_array().cloned().unwrap_or_default();
    let Some(first) = choices.first() else {
        return if v["usage"].is_object() {
            "usage"
        } else {
            "other"
        }
        .into();
    };
    if first["delta"].get("role").is_some() {
        "role"
    } else if first["finish_reason"].is_string() {
        "finish"
    } else if first["delta"]["tool_calls"].is_array() {
        "tool_calls"
    } else if first["delta"]["content"].is_string() {
        "content"
    } else {
        "other"
    }
    .into()
}

/// The event types of an Anthropic Messages stream.
const ANTHROPIC_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

/// The `type` of a typed event: a Responses API event (`response.…`) or
/// an Anthropic Messages one.
fn typed(v: &Value) -> Option<&str> {
    v["type"]
        .as_str()
        .filter(|t| t.starts_with("response.") || ANTHROPIC_EVENTS.contains(t))
}

/// Which API a stream's events belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `chat.completion.chunk`s, ending with `[DONE]`.
    Chat,
    /// The Responses API's `response.*` events.
    Responses,
    /// The Anthropic Messages API's events.
    Anthropic,
}

pub fn stream_kind(events: &[Event]) -> StreamKind {
    let mut kind = StreamKind::Chat;
    for e in events {
        if let Event::Json(v) = e {
            match typed(v) {
                Some(t) if t.starts_with("response.") => return StreamKind::Responses,
                // An `error` alone could be a chat stream's error event.
                Some(t) if t != "error" => kind = StreamKind::Anthropic,
                _ => {}
            }
        }
    }
    kind
}

/// Kinds whose runs count as one: the pieces of one text or one call.
const RUNS: &[&str] = &[
    "content",
    "tool_calls",
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "content_block_delta:text_delta",
    "content_block_delta:input_json_delta",
];

fn kinds(events: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in events.iter().map(kind) {
        let run = RUNS.contains(&k.as_str()) && out.last() == Some(&k);
        if !run {
            out.push(k);
        }
    }
    out
}

/// What is wrong with the typed events of SSE `text` (as sent or as the
/// docs show it): each event's `event:` line must name its `type`; a
/// Responses API stream must count `sequence_number` from 0 without gaps;
/// an Anthropic stream must follow its order (`anthropic_order_errors`).
/// Comments and events without data are skipped.
pub fn typed_stream_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut expected = 0u64;
    let mut anthropic = Vec::new();
    for block in text.split("\n\n") {
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
        };
        let Some(data) = field("data:") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            errors.push(format!("event data {data:?} is not JSON"));
            continue;
        };
        let Some(kind) = typed(&v) else {
            errors.push(format!("an event without a known type: {data}"));
            continue;
        };
        if field("event:") != Some(kind) {
            errors.push(format!(
                "the {kind} event is named {:?} by its event: line",
                field("event:")
            ));
        }
        if !kind.starts_with("response.") {
            anthropic.push(v);
            continue;
        }
        match v["sequence_number"].as_u64() {
            Some(n) if n == expected => {}
            other => errors.push(format!(
                "the {kind} event has sequence_number {other:?}, expected {expected}"
            )),
        }
        expected += 1;
    }
    if !anthropic.is_empty() {
        errors.extend(anthropic_order_errors(&anthropic));
    }
    errors
}

/// What breaks the order of an Anthropic Messages stream: `message_start`
/// first; content blocks started, added to and stopped one at a time, their
/// `index` counting from 0; then one `message_delta` and `message_stop`,
/// the last event. A stream may instead end with an `error` event at any
/// point after it began. `ping`s may come anywhere.
pub fn anthropic_order_errors(events: &[Value]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut started = false;
    let mut next_block = 0u64;
    let mut open: Option<u64> = None;
    let mut delta_seen = false;
    let mut stopped = false;
    for (i, v) in events.iter().enumerate() {
        let kind = v["type"].as_str().unwrap_or("");
        let index = v["index"].as_u64();
        let mut wrong = |why: &str| errors.push(format!("event {i} ({kind}): {why}"));
        if stopped {
            wrong("comes after message_stop");
            continue;
        }
        if !started && kind != "message_start" {
            wrong("comes before message_start");
        }
        match kind {
            "message_start" if started => wrong("a second message_start"),
            "message_start" => started = true,
            "ping" => {}
            "error" if i + 1 != events.len() => wrong("an error that is not the last event"),
            "error" => {}
            _ if delta_seen && kind != "message_stop" => wrong("comes after message_delta"),
            "content_block_start" => {
                if open.is_some() {
                    wrong("starts a block while another is open");
                }
                if index != Some(next_block) {
                    wrong(&format!("index {index:?}, expected {next_block}"));
                }
                open = Some(next_block);
                next_block += 1;
            }
            "content_block_delta" | "content_block_stop" => {
                if open.is_none() || index != open {
                    wrong(&format!("index {index:?}, but the open block is {open:?}"));
                }
                if kind == "content_block_stop" {
                    open = None;
                }
            }
            "message_delta" if open.is_some() => wrong("a block is still open"),
            "message_delta" => delta_seen = true,
            "message_stop" if !delta_seen => wrong("no message_delta before it"),
            "message_stop" => stopped = true,
            _ => wrong("an unknown event"),
        }
    }
    let ended = stopped || events.last().and_then(|v| v["type"].as_str()) == Some("error");
    if !ended {
        errors.push("the stream ends without message_stop or an error event".into());
    }
    errors
}

pub fn compare_stream(doc: &[Event], actual: &[Event], errors: &mut Vec<String>) {
    let (want, got) = (kinds(doc), kinds(actual));
    if want != got {
        errors.push(format!(
            "the stream's events are {got:?}, the docs show {want:?}"
        ));
        return;
    }
    for (i, shown) in doc.iter().enumerate() {
        let Event::Json(shown_json) = shown else {
            continue;
        };
        // The n-th shown event of a kind stands for the n-th real one.
        let shown_kind = kind(shown);
        let nth = doc[..i].iter().filter(|e| kind(e) == shown_kind).count();
        let real = actual.iter().filter(|e| kind(e) == shown_kind).nth(nth);
        if let Some(Event::Json(real)) = real {
            compare_json(shown_json, real, &format!("event {i}"), errors);
        }
    }
}

/// Lines of `shown` that are not, in order, lines of `file`.
pub fn excerpt_errors(shown: &str, file: &str) -> Vec<String> {
    let file_lines: Vec<&str> = file.lines().map(str::trim).collect();
    let mut at = 0;
    let mut errors = Vec::new();
    for line in shown.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match (at..file_lines.len()).find(|&j| line_matches(file_lines[j], line)) {
            Some(j) => at = j + 1,
            None => errors.push(format!("{line:?} is not in the file (after line {at})")),
        }
    }
    errors
}

/// `pattern` with each `@NAME@` standing for one or more non-space characters.
pub fn line_matches(pattern: &str, text: &str) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('@') {
        let Some(len) = rest[start + 1..].find('@') else {
            break;
        };
        let name = &rest[start + 1..start + 1 + len];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        parts.push(&rest[..start]);
        rest = &rest[start + len + 2..];
    }
    parts.push(rest);
    glob(&parts, text)
}

fn glob(parts: &[&str], text: &str) -> bool {
    let Some((first, others)) = parts.split_first() else {
        return text.is_empty();
    };
    let Some(after) = text.strip_prefix(first) else {
        return false;
    };
    if others.is_empty() {
        return after.is_empty();
    }
    // A placeholder: one or more non-space characters, then the rest.
    let run = after.find(char::is_whitespace).unwrap_or(after.len());
    (1..=run).any(|n| glob(others, &after[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shown_fields_must_exist_with_their_values() {
        let doc = json!({"object": "list", "id": "x", "n": 1, "items": [{"a": "b..."}], "m": "Session ... not found."});
        let good = json!({"object": "list", "id": "y", "n": 7, "extra": true, "items": [{"a": "bcd"}], "m": "Session 12 not found."});
        let mut errors = Vec::new();
        compare_json(&doc, &good, "$", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let bad = json!({"object": "other", "n": "7", "items": [], "m": "Session 12 gone."});
        compare_json(&doc, &bad, "$", &mut errors);
        assert_eq!(errors.len(), 6, "{errors:?}");
    }

    #[test]
    fn json_paths_pick_strings_and_numbers() {
        let v = json!({"choices": [{"message": {"tool_calls": [{"id": "toolu_1"}]}}], "n": 3});
        assert_eq!(
            json_at(&v, "$.choices[0].message.tool_calls[0].id").as_deref(),
            Some("toolu_1")
        );
        assert_eq!(json_at(&v, "$.n").as_deref(), Some("3"));
        assert_eq!(json_at(&v, "$.choices[1].message"), None);
        assert_eq!(json_at(&v, "$.choices"), None);
    }

    #[test]
    fn streams_compare_by_kinds() {
        let chunk = |delta: Value, finish: Value| {
            Event::Json(json!({"choices": [{"delta": delta, "finish_reason": finish}]}))
        };
        let doc = vec![
            chunk(json!({"role": "assistant"}), Value::Null),
            chunk(json!({"content": "a"}), Value::Null),
            chunk(json!({}), json!("stop")),
            Event::Done,
        ];
        let mut actual = doc.clone();
        actual.insert(2, chunk(json!({"content": "b"}), Value::Null));
        let mut errors = Vec::new();
        compare_stream(&doc, &actual, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        actual.remove(3);
        compare_stream(&doc, &actual, &mut errors);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn typed_streams_compare_by_type_and_count_in_order() {
        let event = |kind: &str, n: u64| {
            format!("event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{n}}}\n\n")
        };
        let text: String = [
            event("response.created", 0),
            event("response.output_text.delta", 1),
            event("response.output_text.delta", 2),
            event("response.completed", 3),
            ": cost usd=0.0001\n\n".to_string(),
        ]
        .concat();
        assert!(typed_stream_errors(&text).is_empty());
        let events = events_of_text(&text).unwrap();
        assert_eq!(stream_kind(&events), StreamKind::Responses);
        let shown = events_of_text(
            &[
                event("response.created", 0),
                event("response.output_text.delta", 1),
                event("response.completed", 2),
            ]
            .concat(),
        )
        .unwrap();
        let mut errors = Vec::new();
        compare_stream(&shown, &events, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");

        let misnamed = text.replacen("event: response.completed", "event: response.done", 1);
        assert_eq!(typed_stream_errors(&misnamed).len(), 1);
        let gap = text.replacen("\"sequence_number\":2", "\"sequence_number\":7", 1);
        assert_eq!(typed_stream_errors(&gap).len(), 1);
        let without_end =
            events_of_text(&text.replace("response.completed", "response.failed")).unwrap();
        compare_stream(&shown, &without_end, &mut errors);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn anthropic_streams_compare_by_type_and_keep_their_order() {
        let event = |v: Value| {
            let kind = v["type"].as_str().unwrap().to_string();
            format!("event: {kind}\ndata: {v}\n\n")
        };
        let text_delta = |i: u64, t: &str| {
            event(json!({"type": "content_block_delta", "index": i,
                "delta": {"type": "text_delta", "text": t}}))
        };
        let start = event(json!({"type": "message_start", "message": {"id": "msg_1"}}));
        let ping = event(json!({"type": "ping"}));
        let block = |i: u64, kind: &str| {
            event(json!({"type": "content_block_start", "index": i,
                "content_block": {"type": kind}}))
        };
        let stop = |i: u64| event(json!({"type": "content_block_stop", "index": i}));
        let json_delta = event(json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{}"}}));
        let end = event(json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}))
            + &event(json!({"type": "message_stop"}));
        let sent: String = [
            start.clone(),
            ping.clone(),
            block(0, "text"),
            text_delta(0, "Let "),
            text_delta(0, "me check."),
            stop(0),
            block(1, "tool_use"),
            json_delta.clone(),
            stop(1),
            end.clone(),
            ": cost usd=0.0001\n\n".to_string(),
        ]
        .concat();
        assert!(
            typed_stream_errors(&sent).is_empty(),
            "{:?}",
            typed_stream_errors(&sent)
        );
        let events = events_of_text(&sent).unwrap();
        assert_eq!(stream_kind(&events), StreamKind::Anthropic);
        let shown_text: String = [
            start.clone(),
            ping.clone(),
            block(0, "text"),
            text_delta(0, "Let me check."),
            stop(0),
            block(1, "tool_use"),
            json_delta.clone(),
            stop(1),
            end.clone(),
        ]
        .concat();
        let shown = events_of_text(&shown_text).unwrap();
        let mut errors = Vec::new();
        compare_stream(&shown, &events, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");

        // Blocks numbered from 1, a delta outside its block, no ending.
        let misnumbered = sent.replace("\"index\":1", "\"index\":2");
        assert_eq!(typed_stream_errors(&misnumbered).len(), 3);
        let unended = [start.clone(), block(0, "text"), text_delta(0, "a")].concat();
        assert_eq!(typed_stream_errors(&unended).len(), 1);
        let broken = unended + &event(json!({"type": "error", "error": {"type": "api_error"}}));
        assert!(typed_stream_errors(&broken).is_empty());
        let misnamed = sent.replacen("event: ping", "event: pong", 1);
        assert_eq!(typed_stream_errors(&misnamed).len(), 1);
        // A tool call shown where the real stream has none.
        let text_only = events_of_text(
            &[
                start,
                ping,
                block(0, "text"),
                text_delta(0, "Hi"),
                stop(0),
                end,
            ]
            .concat(),
        )
        .unwrap();
        compare_stream(&shown, &text_only, &mut errors);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn excerpt_lines_with_placeholders() {
        let file = "a {\n    server @UPSTREAM_A@;\n    listen @LISTEN@ ssl;\n}\n";
        assert!(
            excerpt_errors("a {\nserver 10.0.0.1:3456;\n  listen 443 ssl;\n}", file).is_empty()
        );
        assert_eq!(
            excerpt_errors("listen 443 ssl;\nserver 10.0.0.1:3456;", file).len(),
            1
        );
        assert!(!line_matches("server @UPSTREAM_A@;", "server two words;"));
        assert!(line_matches("email a@b.c", "email a@b.c"));
    }
}
