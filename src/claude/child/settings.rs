//! What a running CLI can be told to change between turns, on its stdin,
//! as control requests: its model (`set_model`), its effort level
//! (`apply_flag_settings` with `effortLevel`) and its thinking budget
//! (`set_max_thinking_tokens`; 0 is no thinking). A process remembers what
//! it runs with, so a turn that asks for something else has only that
//! changed, on the warm process, instead of a new one. The CLI applies
//! them in order, before a turn written after them (seen with 2.1.331; see
//! `fixtures/claude-cli-2.1.331/control-settings.*`).

use serde_json::{json, Value};

/// What a CLI process runs its turns with. `None` is the CLI's own default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The `--model` value (or what `set_model` made it since).
    pub model: &'static str,
    pub effort: Option<&'static str>,
    pub budget: Option<u32>,
}

impl Settings {
    /// A process started with `--model model` and nothing else.
    pub fn started(model: &'static str) -> Settings {
        Settings {
            model,
            effort: None,
            budget: None,
        }
    }
}

/// One control request that changes a setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its `request_id`, which the CLI's `control_response` carries.
    pub id: String,
    /// The stream-json line, newline included.
    pub line: String,
    pub what: Setting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Model,
    Effort,
    Budget,
}

/// The control requests that take a process from `now` to `wanted`, in
/// the order to write them (the model first: the others apply to it).
pub fn changes(now: &Settings, wanted: &Settings) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut add = |what: Setting, request: Value| {
        let id = format!("set-{}", uuid::Uuid::new_v4().simple());
        let line = json!({"type": "control_request", "request_id": id, "request": request});
        changes.push(Change {
            id,
            line: format!("{line}\n"),
            what,
        });
    };
    if now.model != wanted.model {
        add(
            Setting::Model,
            json!({"subtype": "set_model", "model": wanted.model}),
        );
    }
    if now.effort != wanted.effort {
        add(
            Setting::Effort,
            json!({"subtype": "apply_flag_settings", "settings": {"effortLevel": wanted.effort}}),
        );
    }
    if now.budget != wanted.budget {
        add(
            Setting::Budget,
            json!({"subtype": "set_max_thinking_tokens", "max_thinking_tokens": wanted.budget}),
        );
    }
    changes
}

/// What the CLI answered to a control request, when `line` is its answer:
/// the request's id, and the error it gave, if any.
pub fn answer_of(line: &[u8]) -> Option<(String, Option<String>)> {
    let value: Value = serde_json::from_slice(line).ok()?;
    if value.get("type")?.as_str()? != "control_response" {
        return None;
    }
    let response = value.get("response")?;
    let id = response.get("request_id")?.as_str()?.to_string();
    let error = (response.get("subtype").and_then(Value::as_str) == Some("error")).then(|| {
        let code = response.get("error_code").and_then(Value::as_str);
        code.unwrap_or("error").to_string()
    });
    Some((id, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(change: &Change) -> Value {
        let line: Value = serde_json::from_str(change.line.trim_end()).unwrap();
        assert_eq!(line["type"], "control_request");
        assert_eq!(line["request_id"], change.id.as_str());
        line["request"].clone()
    }

    #[test]
    fn only_what_differs_is_changed_model_first() {
        let now = Settings::started("sonnet");
        assert!(changes(&now, &now).is_empty());
        let wanted = Settings {
            model: "opus",
            effort: Some("high"),
            budget: Some(2048),
        };
        let all = changes(&now, &wanted);
        let kinds: Vec<Setting> = all.iter().map(|c| c.what).collect();
        assert_eq!(kinds, [Setting::Model, Setting::Effort, Setting::Budget]);
        assert_eq!(
            request(&all[0]),
            json!({"subtype": "set_model", "model": "opus"})
        );
        assert_eq!(
            request(&all[1]),
            json!({"subtype": "apply_flag_settings", "settings": {"effortLevel": "high"}})
        );
        assert_eq!(
            request(&all[2]),
            json!({"subtype": "set_max_thinking_tokens", "max_thinking_tokens": 2048})
        );
        // Back to the defaults: null resets each.
        let back = changes(&wanted, &Settings::started("opus"));
        assert_eq!(back.len(), 2);
        assert_eq!(request(&back[0])["settings"]["effortLevel"], Value::Null);
        assert_eq!(request(&back[1])["max_thinking_tokens"], Value::Null);
    }

    #[test]
    fn answers_are_read_with_their_errors() {
        let ok = br#"{"type":"control_response","response":{"subtype":"success","request_id":"set-1","response":{"model":"claude-opus-4-6"}}}"#;
        assert_eq!(answer_of(ok), Some(("set-1".into(), None)));
        let refused = br#"{"type":"control_response","response":{"subtype":"error","request_id":"set-2","error":"Model x is not a recognized model id.","error_code":"catalog_unknown"}}"#;
        assert_eq!(
            answer_of(refused),
            Some(("set-2".into(), Some("catalog_unknown".into())))
        );
        assert_eq!(answer_of(br#"{"type":"system","subtype":"status"}"#), None);
        assert_eq!(answer_of(b"not json"), None);
    }

    /// The real CLI's answers (fixtures/claude-cli-2.1.331/control-settings):
    /// one per request, the empty model refused.
    #[test]
    fn the_recorded_answers_read_as_sent() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/claude-cli-2.1.331/control-settings.stdout"
        );
        let stdout = std::fs::read(path).unwrap();
        let mut answers: Vec<(String, Option<String>)> = stdout
            .split(|&b| b == b'\n')
            .filter_map(answer_of)
            .collect();
        answers.sort();
        let refused = Some("catalog_unknown".to_string());
        let expected: Vec<(String, Option<String>)> = (1..=7)
            .map(|n| (format!("b{n}"), if n == 6 { refused.clone() } else { None }))
            .collect();
        assert_eq!(answers, expected);
    }
}
