//! Turns a validated request into the CLI's argument vector, the user turn
//! it reads on its standard input (one stream-json line) and the system
//! prompt it reads from a file. Pure: no process is started and no file is
//! written here.
//!
//! Every run reads its turn from stdin (`--input-format stream-json`), so
//! one way of starting the CLI serves new and resumed sessions, and later
//! a process that stays up for the next turn. Nothing the client wrote
//! travels as an argument: no argv length limit, nothing that could be
//! read as an option.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::claude::request::validate::{Message, Part, Role, ValidChat};
use crate::claude::tools::spec::SERVER_NAME;
use crate::error::ApiError;

/// Which session the child works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionArg {
    /// Create it: `--session-id ID`.
    New(String),
    /// Continue it: `--resume ID`.
    Resume(String),
}

/// The system prompt's file in the session's working directory.
pub const SYSTEM_PROMPT_FILE: &str = "system-prompt.txt";

/// What to run: `claude` + `args`, with `stdin` written to the child and
/// the pipe then closed (the CLI answers the turn and exits at EOF), after
/// `system` has been written to `system_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<String>,
    pub stdin: String,
    /// The system prompt and the file `args` name for it.
    pub system: Option<(PathBuf, String)>,
}

/// `mcp_config` is the bridge's `--mcp-config` when the request offers
/// functions.
pub fn build_invocation(
    chat: &ValidChat,
    session: &SessionArg,
    work_dir: &Path,
    skip_permissions: bool,
    mcp_config: Option<String>,
) -> Invocation {
    let mut args = command_line(chat.cli_model, session);
    if let Some(config) = mcp_config {
        // Only the bridge: no MCP server of the CLI's own configuration,
        // and the bridge's tools need no permission prompt.
        args.extend([
            "--mcp-config".to_string(),
            config,
            "--strict-mcp-config".to_string(),
            "--allowedTools".to_string(),
            format!("mcp__{SERVER_NAME}"),
        ]);
    }
    if let Some(schema) = &chat.tools.output_schema {
        args.extend(["--json-schema".to_string(), schema.to_string()]);
    }
    let system = chat.system.as_ref().map(|text| {
        let file = work_dir.join(SYSTEM_PROMPT_FILE);
        args.extend([
            "--system-prompt-file".to_string(),
            file.display().to_string(),
        ]);
        (file, text.clone())
    });
    if skip_permissions {
        args.push("--dangerously-skip-permissions".into());
    }
    Invocation {
        args,
        stdin: blocks_line(prompt_blocks(chat, session)),
        system,
    }
}

/// A CLI started ahead of its session (a spare): the default model, no
/// system prompt, a fresh session id; its first turn comes later.
pub fn spare_invocation(model: &str, id: &str, skip_permissions: bool) -> Invocation {
    let mut args = command_line(model, &SessionArg::New(id.to_string()));
    if skip_permissions {
        args.push("--dangerously-skip-permissions".into());
    }
    Invocation {
        args,
        stdin: String::new(),
        system: None,
    }
}

/// The options every run starts with: stream-json both ways, no tools,
/// the model, and the session to create or resume.
fn command_line(model: &str, session: &SessionArg) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--tools",
        "",
        "--model",
        model,
    ]
    .map(String::from)
    .to_vec();
    match session {
        SessionArg::New(id) => args.extend(["--session-id".to_string(), id.clone()]),
        SessionArg::Resume(id) => args.extend(["--resume".to_string(), id.clone()]),
    }
    args
}

/// One user turn as the CLI reads it with `--input-format stream-json`.
pub fn user_line(text: &str) -> String {
    blocks_line(vec![json!({"type": "text", "text": text})])
}

/// A user turn of Anthropic content blocks (text and images).
pub fn blocks_line(blocks: Vec<serde_json::Value>) -> String {
    let turn = json!({
        "type": "user",
        "message": {"role": "user", "content": blocks},
    });
    format!("{turn}\n")
}

/// What the model is asked, as content blocks: the newest user turn's text
/// and images, or for a new session with history the whole conversation
/// as a labelled transcript (images where they were). Results of tool
/// calls that no waiting turn took (their turn was given up, see
/// `waiting`) come first, as text: the session holds the calls, answered
/// with an error then.
pub fn prompt_blocks(chat: &ValidChat, session: &SessionArg) -> Vec<serde_json::Value> {
    let resumed = matches!(session, SessionArg::Resume(_));
    let Some(last) = chat.new_user_turn() else {
        return late_results(chat.tool_results(), chat)
            .into_iter()
            .collect();
    };
    if resumed || chat.turns.len() == 1 {
        let late = late_results(chat.results_before_question(), chat);
        return late.into_iter().chain(part_blocks(&last.parts)).collect();
    }
    let mut blocks = Vec::new();
    let mut text = String::new();
    for turn in &chat.turns {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&transcript_entry(turn));
        let images: Vec<&Part> = turn
            .parts
            .iter()
            .filter(|p| !matches!(p, Part::Text(_)))
            .collect();
        if !images.is_empty() {
            blocks.push(json!({"type": "text", "text": std::mem::take(&mut text)}));
            blocks.extend(images.into_iter().map(part_block));
        }
    }
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    blocks
}

/// A history this server does not hold becomes one transcript for a new
/// session; past this many characters it fits no model's context, so it is
/// refused before a CLI is started for it.
pub const MAX_TRANSCRIPT_CHARS: usize = 4_000_000;

/// Refuses a new session's transcript that cannot fit (see above).
pub fn check_transcript(chat: &ValidChat) -> Result<(), ApiError> {
    if chat.turns.len() < 2 {
        return Ok(());
    }
    let chars: usize = chat.turns.iter().map(|t| t.content.chars().count()).sum();
    if chars <= MAX_TRANSCRIPT_CHARS {
        return Ok(());
    }
    Err(ApiError::ContextLengthExceeded {
        message: format!(
            "This conversation is not one this server holds (no session header, response or \
             message id, or history it answered), and as a transcript for a new session its \
             {} messages hold {chars} characters, more than any model's context (at most \
             {MAX_TRANSCRIPT_CHARS}). Continue it on its session, or send a shorter history.",
            chat.turns.len()
        ),
    })
}

/// `results` as one text block for a session whose calls were answered
/// with an error before these came.
fn late_results(results: &[Message], chat: &ValidChat) -> Option<serde_json::Value> {
    if results.is_empty() {
        return None;
    }
    let name_of = |id: &str| {
        chat.turns
            .iter()
            .flat_map(|t| &t.tool_calls)
            .find(|c| c.id.as_deref() == Some(id))
            .map(|c| c.name.as_str())
    };
    let mut text = String::from(
        "The results of your tool calls came after those calls had been answered with an \
         error. Here they are:",
    );
    for result in results {
        let id = result.tool_call_id.as_deref().unwrap_or("?");
        match name_of(id) {
            Some(name) => text.push_str(&format!("\n\n[{name}, call {id}]\n")),
            None => text.push_str(&format!("\n\n[call {id}]\n")),
        }
        text.push_str(&result.content);
    }
    Some(json!({"type": "text", "text": text}))
}

fn transcript_entry(turn: &Message) -> String {
    match turn.role {
        Role::User => format!("User: {}", turn.content),
        Role::Assistant => {
            let mut entry = format!("Assistant: {}", turn.content);
            for call in &turn.tool_calls {
                entry.push_str(&format!("\n[called {} with {}]", call.name, call.arguments));
            }
            entry
        }
        Role::Tool => format!("Tool result: {}", turn.content),
    }
}

fn part_blocks(parts: &[Part]) -> Vec<serde_json::Value> {
    parts.iter().map(part_block).collect()
}

fn part_block(part: &Part) -> serde_json::Value {
    match part {
        Part::Text(text) => json!({"type": "text", "text": text}),
        Part::Image { media_type, data } => json!({"type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}}),
        Part::ImageUrl(url) => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// What the model is asked. A resumed session already holds the history,
/// so it gets only the newest user message; a new session with history
/// gets the whole conversation as a labelled transcript.
pub fn prompt_text(chat: &ValidChat, session: &SessionArg) -> String {
    if matches!(session, SessionArg::Resume(_)) || chat.turns.len() == 1 {
        return chat
            .new_user_turn()
            .map(|t| t.content.clone())
            .unwrap_or_default();
    }
    chat.turns
        .iter()
        .map(transcript_entry)
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::request::validate::validate;
    use serde_json::{json, Value};

    const ID: &str = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
    const DIR: &str = "/srv/app";

    fn chat(body: Value) -> ValidChat {
        validate(body.as_object().expect("object")).expect("valid")
    }

    fn user(text: &str) -> ValidChat {
        chat(json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]}))
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    fn turn_text(line: &str) -> String {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["type"], "user");
        assert_eq!(v["message"]["role"], "user");
        v["message"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_new_session_matches_the_recorded_command_line() {
        // fixtures/claude-cli-2.1.331/multi-turn.stdin and its README.
        let inv = build_invocation(
            &user("hi there"),
            &SessionArg::New(ID.into()),
            Path::new(DIR),
            false,
            None,
        );
        assert_eq!(
            strs(&inv.args),
            [
                "-p",
                "--input-format",
                "stream-json",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
                "--tools",
                "",
                "--model",
                "sonnet",
                "--session-id",
                ID
            ]
        );
        assert_eq!(
            inv.stdin,
            "{\"message\":{\"content\":[{\"text\":\"hi there\",\"type\":\"text\"}],\"role\":\"user\"},\"type\":\"user\"}\n"
        );
        assert_eq!(inv.system, None);
    }

    #[test]
    fn resume_system_prompt_and_skip_permissions() {
        let c = chat(json!({"model": "claude-haiku-4-5", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": "-no lists"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second turn"}
        ]}));
        let inv = build_invocation(
            &c,
            &SessionArg::Resume(ID.into()),
            Path::new(DIR),
            true,
            None,
        );
        assert_eq!(
            strs(&inv.args)[9..],
            [
                "--model",
                "claude-haiku-4-5-20251001",
                "--resume",
                ID,
                "--system-prompt-file",
                "/srv/app/system-prompt.txt",
                "--dangerously-skip-permissions"
            ]
        );
        assert_eq!(turn_text(&inv.stdin), "second turn");
        assert_eq!(
            inv.system,
            Some((
                PathBuf::from("/srv/app/system-prompt.txt"),
                "You are terse.\n\n-no lists".to_string()
            ))
        );
        assert!(
            !build_invocation(&c, &SessionArg::New(ID.into()), Path::new(DIR), false, None)
                .args
                .iter()
                .any(|a| a.contains("dangerously"))
        );
    }

    #[test]
    fn a_new_session_with_history_gets_a_transcript() {
        let c = chat(json!({"model": "sonnet", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "My name is Alice."},
            {"role": "assistant", "content": "Hello Alice."},
            {"role": "user", "content": "What is my name?"}
        ]}));
        assert_eq!(
            prompt_text(&c, &SessionArg::New(ID.into())),
            "User: My name is Alice.\n\nAssistant: Hello Alice.\n\nUser: What is my name?"
        );
        assert_eq!(
            prompt_text(&c, &SessionArg::Resume(ID.into())),
            "What is my name?"
        );
    }

    #[test]
    fn what_the_client_wrote_is_never_an_argument() {
        let long = "ü".repeat(70_000); // 140 000 bytes: over one argument's limit
        let texts = [
            "$(rm -rf /); `id` && echo $HOME | cat > /tmp/x; 'q' \"d\" \n*",
            "--model opus",
            "-h",
            long.as_str(),
        ];
        for text in texts {
            let inv = build_invocation(
                &user(text),
                &SessionArg::New(ID.into()),
                Path::new(DIR),
                false,
                None,
            );
            assert_eq!(turn_text(&inv.stdin), text);
            assert_eq!(inv.args.len(), 13);
            assert!(inv.args.iter().all(|a| a.len() < 100));
        }
    }
}
