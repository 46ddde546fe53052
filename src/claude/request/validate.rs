//! Checks a chat request body for Claude Code mode and reduces it to what
//! the CLI can use: the model, the system text, the conversation turns and
//! the streaming flags. Everything the CLI cannot honour is either listed
//! as ignored (harmless sampling knobs) or refused with a 400 that says how
//! to get it (passthrough mode).

use serde_json::{Map, Value};

use crate::claude::request::messages::read_messages;
pub use crate::claude::request::messages::{CallRef, Message, Part, Role, MAX_MESSAGES};
use crate::claude::request::models::resolve_model;
pub use crate::claude::request::thinking::Thinking;
use crate::claude::tools::{read_tool_spec, ToolSpec};
use crate::error::ApiError;
use crate::request_json::{invalid, present, unsupported};

const MAX_MODEL_CHARS: usize = 256;

/// Accepted, not honoured; reported in `X-Claude-Ignored-Params` in this order.
const IGNORED: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "user",
    "n",
];

/// Refused in Claude Code mode (`n` > 1 is refused separately).
const REFUSED: &[(&str, &str)] = &[
    ("logprobs", "log probabilities"),
    ("top_logprobs", "log probabilities"),
    ("logit_bias", "logit bias"),
];

/// A request Claude Code mode can serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidChat {
    /// As the client sent it; echoed in every response.
    pub requested_model: String,
    /// The `--model` value.
    pub cli_model: &'static str,
    /// All system and developer messages, joined by a blank line.
    pub system: Option<String>,
    /// Non-system messages in order; the last is a user turn, or the
    /// results of the previous answer's tool calls.
    pub turns: Vec<Message>,
    /// Functions offered, and the answer's schema.
    pub tools: ToolSpec,
    pub stream: bool,
    pub include_usage: bool,
    pub ignored_params: Vec<String>,
    /// What the turn asks of the model's thinking (each API reads its own
    /// field; chat's is `reasoning_effort`).
    pub thinking: Thinking,
}

impl ValidChat {
    /// The trailing tool results, when the request ends with them.
    pub fn tool_results(&self) -> &[Message] {
        let n = self
            .turns
            .iter()
            .rev()
            .take_while(|t| t.role == Role::Tool)
            .count();
        &self.turns[self.turns.len() - n..]
    }

    /// The tool results just before the final user turn, when the request
    /// answers the last calls and then asks something new (pydantic-ai's
    /// next run after a forced call does).
    pub fn results_before_question(&self) -> &[Message] {
        let Some((last, before)) = self.turns.split_last() else {
            return &[];
        };
        if last.role != Role::User {
            return &[];
        }
        let n = before
            .iter()
            .rev()
            .take_while(|t| t.role == Role::Tool)
            .count();
        &before[before.len() - n..]
    }

    /// This request as a new question alone: without the results before
    /// it, which a waiting turn took.
    pub fn question_only(&self) -> ValidChat {
        let mut asked = self.clone();
        let results = self.results_before_question().len();
        let question = asked.turns.len() - 1;
        asked.turns.drain(question - results..question);
        asked
    }

    /// The final user turn, when the request ends with one.
    pub fn new_user_turn(&self) -> Option<&Message> {
        self.turns.last().filter(|t| t.role == Role::User)
    }
}

pub fn validate(json: &Map<String, Value>) -> Result<ValidChat, ApiError> {
    let model =
        present(json, "model").ok_or(ApiError::MissingRequiredParameter { param: "model" })?;
    let messages = present(json, "messages")
        .ok_or(ApiError::MissingRequiredParameter { param: "messages" })?;
    let requested_model = match model {
        Value::String(s) if s.chars().count() > MAX_MODEL_CHARS => {
            return Err(invalid(
                "model",
                format!("'model' is too long: at most {MAX_MODEL_CHARS} characters."),
            ))
        }
        Value::String(s) => s.clone(),
        _ => return Err(invalid("model", "'model' must be a string.")),
    };
    let cli_model = resolve_model(&requested_model)?;

    check_refused(json)?;
    let mut ignored_params = ignored_params(json)?;
    let tools = read_tool_spec(json)?;
    ignored_params.extend(tools.ignored.iter().cloned());
    let stream = match present(json, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean.")),
    };
    let include_usage = include_usage(json)?;
    let (system, turns) = read_messages(messages)?;
    let thinking = Thinking::of_chat(json)?;

    Ok(ValidChat {
        requested_model,
        cli_model,
        system,
        turns,
        tools,
        stream,
        include_usage,
        ignored_params,
        thinking,
    })
}

const USE_PASSTHROUGH: &str = "Remove it, or send the request without the X-Claude-Code and \
     X-Claude-Session-ID headers to use OpenAI passthrough mode (or call the Anthropic API \
     directly), which supports it.";

fn check_refused(json: &Map<String, Value>) -> Result<(), ApiError> {
    for (param, feature) in REFUSED {
        let Some(value) = present(json, param) else {
            continue;
        };
        // `logprobs: false` is what several SDKs send by default.
        if *param == "logprobs" && value == &Value::Bool(false) {
            continue;
        }
        return Err(unsupported(
            param,
            format!(
                "'{param}' is not supported in Claude Code mode ({feature}). {USE_PASSTHROUGH}"
            ),
        ));
    }
    if let Some(n) = present(json, "n") {
        match n.as_u64() {
            Some(1) => {}
            Some(k) if k > 1 => {
                return Err(unsupported(
                    "n",
                    format!(
                        "'n' = {k} is not supported in Claude Code mode: it always returns \
                         exactly one choice. Send n = 1 or leave it out. {USE_PASSTHROUGH}"
                    ),
                ))
            }
            _ => return Err(invalid("n", "'n' must be a positive integer.")),
        }
    }
    Ok(())
}

/// Type-checks the sampling knobs the CLI ignores, so a client bug still
/// shows as a 400 like OpenAI would give, and names the ones that were sent.
fn ignored_params(json: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let mut sent = Vec::new();
    for &param in IGNORED {
        let Some(value) = present(json, param) else {
            continue;
        };
        let number_in = |lo: f64, hi: f64| value.as_f64().is_some_and(|x| (lo..=hi).contains(&x));
        let problem = match param {
            "temperature" if !number_in(0.0, 2.0) => Some("a number between 0 and 2"),
            "top_p" if !number_in(0.0, 1.0) => Some("a number between 0 and 1"),
            "frequency_penalty" | "presence_penalty" if !number_in(-2.0, 2.0) => {
                Some("a number between -2 and 2")
            }
            "max_tokens" | "max_completion_tokens" if value.as_u64().unwrap_or(0) == 0 => {
                Some("a positive integer")
            }
            "seed" if !value.is_i64() && !value.is_u64() => Some("an integer"),
            "user" if !value.is_string() => Some("a string"),
            "stop" if !stop_is_valid(value) => Some("a string or an array of up to 4 strings"),
            // `n` was checked with the refused parameters.
            _ => None,
        };
        if let Some(expected) = problem {
            return Err(invalid(param, format!("'{param}' must be {expected}.")));
        }
        sent.push(param.to_string());
    }
    Ok(sent)
}

fn stop_is_valid(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.len() <= 4 && items.iter().all(Value::is_string),
        _ => false,
    }
}

fn include_usage(json: &Map<String, Value>) -> Result<bool, ApiError> {
    let Some(options) = present(json, "stream_options") else {
        return Ok(false);
    };
    let Some(options) = options.as_object() else {
        return Err(invalid(
            "stream_options",
            "'stream_options' must be an object.",
        ));
    };
    match present(options, "include_usage") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(
            "stream_options.include_usage",
            "'stream_options.include_usage' must be a boolean.",
        )),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
