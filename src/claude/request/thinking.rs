//! What a turn asks of the model's thinking, read from each API's own
//! field: chat `reasoning_effort`, the Responses API's `reasoning` and the
//! Messages API's `thinking`. The CLI takes it as settings of its running
//! process (`child::settings`): an effort level, which the adaptive models
//! follow, and a thinking budget, which the others follow (0 turns
//! thinking off). Asking for thinking also shows it to the client; a turn
//! that asks nothing runs with the CLI's defaults and shows none.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request_json::{invalid, present};

/// A turn's thinking, as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Thinking {
    /// The client wants to see the thinking.
    pub show: bool,
    /// Thinking tokens at most; `Some(0)` is no thinking, `None` the CLI's
    /// default.
    pub budget: Option<u32>,
    /// The CLI's effort level (`low`, `medium`, `high`, `xhigh`); `None`
    /// is its default.
    pub effort: Option<&'static str>,
}

/// The OpenAI effort words, and the CLI's level for each.
const EFFORTS: &[(&str, &str)] = &[
    ("none", "low"),
    ("minimal", "low"),
    ("low", "low"),
    ("medium", "medium"),
    ("high", "high"),
    ("xhigh", "xhigh"),
];

/// Anthropic's smallest thinking budget.
const MIN_BUDGET: u64 = 1024;

impl Thinking {
    /// An OpenAI effort word sent as `param` (chat `reasoning_effort`,
    /// Responses `reasoning.effort`). `none` turns thinking off.
    pub fn of_effort(param: &str, value: &Value) -> Result<Thinking, ApiError> {
        let word = value.as_str().unwrap_or_default();
        let Some((word, level)) = EFFORTS.iter().find(|(name, _)| *name == word) else {
            let words: Vec<&str> = EFFORTS.iter().map(|(name, _)| *name).collect();
            return Err(invalid(
                param,
                format!("'{param}' must be one of {}.", words.join(", ")),
            ));
        };
        let off = *word == "none";
        Ok(Thinking {
            show: !off,
            budget: off.then_some(0),
            effort: Some(level),
        })
    }

    /// Chat's `reasoning_effort`, when sent.
    pub fn of_chat(json: &Map<String, Value>) -> Result<Thinking, ApiError> {
        match present(json, "reasoning_effort") {
            None => Ok(Thinking::default()),
            Some(value) => Thinking::of_effort("reasoning_effort", value),
        }
    }

    /// The Messages API's `thinking`: `enabled` with a `budget_tokens`,
    /// `adaptive`, or `disabled`; with `display: "omitted"` (Claude Code
    /// sends it) the model thinks but the client is shown none of it.
    pub fn of_anthropic(value: &Value) -> Result<Thinking, ApiError> {
        let kind = value.get("type").and_then(Value::as_str);
        let omitted = value.get("display").and_then(Value::as_str) == Some("omitted");
        let asked = Thinking::of_anthropic_kind(kind, value)?;
        Ok(Thinking {
            show: asked.show && !omitted,
            ..asked
        })
    }

    fn of_anthropic_kind(kind: Option<&str>, value: &Value) -> Result<Thinking, ApiError> {
        match kind {
            Some("enabled") => {
                let budget = value.get("budget_tokens").and_then(Value::as_u64);
                let budget = budget.filter(|b| *b >= MIN_BUDGET).ok_or_else(|| {
                    invalid(
                        "thinking.budget_tokens",
                        format!(
                            "'thinking.budget_tokens' must be an integer of at least {MIN_BUDGET}."
                        ),
                    )
                })?;
                Ok(Thinking {
                    show: true,
                    budget: Some(u32::try_from(budget).unwrap_or(u32::MAX)),
                    effort: None,
                })
            }
            Some("adaptive") => Ok(Thinking {
                show: true,
                ..Thinking::default()
            }),
            Some("disabled") => Ok(Thinking {
                show: false,
                budget: Some(0),
                effort: None,
            }),
            _ => Err(invalid(
                "thinking.type",
                "'thinking.type' must be one of enabled, adaptive, disabled.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn effort_words_become_cli_levels_and_none_turns_thinking_off() {
        for (word, level, show, budget) in [
            ("none", "low", false, Some(0)),
            ("minimal", "low", true, None),
            ("low", "low", true, None),
            ("medium", "medium", true, None),
            ("high", "high", true, None),
            ("xhigh", "xhigh", true, None),
        ] {
            let thinking = Thinking::of_effort("reasoning_effort", &json!(word)).unwrap();
            assert_eq!(thinking.effort, Some(level), "{word}");
            assert_eq!((thinking.show, thinking.budget), (show, budget), "{word}");
        }
        let error = Thinking::of_effort("reasoning.effort", &json!("max")).unwrap_err();
        assert!(error
            .message()
            .contains("'reasoning.effort' must be one of"));
        assert!(Thinking::of_effort("reasoning_effort", &json!(3)).is_err());
    }

    #[test]
    fn anthropic_thinking_kinds() {
        let enabled = json!({"type": "enabled", "budget_tokens": 2048});
        let thinking = Thinking::of_anthropic(&enabled).unwrap();
        assert_eq!((thinking.show, thinking.budget), (true, Some(2048)));
        let adaptive = Thinking::of_anthropic(&json!({"type": "adaptive"})).unwrap();
        assert_eq!((adaptive.show, adaptive.budget), (true, None));
        // Claude Code's default: thinking, none of it shown.
        let omitted = json!({"type": "adaptive", "display": "omitted"});
        let omitted = Thinking::of_anthropic(&omitted).unwrap();
        assert_eq!((omitted.show, omitted.budget), (false, None));
        let disabled = Thinking::of_anthropic(&json!({"type": "disabled"})).unwrap();
        assert_eq!((disabled.show, disabled.budget), (false, Some(0)));
        let small = json!({"type": "enabled", "budget_tokens": 100});
        assert!(Thinking::of_anthropic(&small).is_err());
        assert!(Thinking::of_anthropic(&json!({"type": "sometimes"})).is_err());
    }

    #[test]
    fn a_chat_request_without_reasoning_effort_asks_nothing() {
        let json = json!({"model": "x"});
        let asked = Thinking::of_chat(json.as_object().unwrap()).unwrap();
        assert_eq!(asked, Thinking::default());
    }
}
