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

use super::validate::{Role, ValidChat};

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

pub fn build_invocation(
    chat: &ValidChat,
    session: &SessionArg,
    work_dir: &Path,
    skip_permissions: bool,
) -> Invocation {
    let mut args = command_line(chat.cli_model, session);
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
        stdin: user_line(&prompt_text(chat, session)),
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
    let turn = json!({
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    });
    format!("{turn}\n")
}

/// What the model is asked. A resumed session already holds the history,
/// so it gets only the newest user message; a new session with history
/// gets the whole conversation as a labelled transcript.
pub fn prompt_text(chat: &ValidChat, session: &SessionArg) -> String {
    if matches!(session, SessionArg::Resume(_)) || chat.turns.len() == 1 {
        return chat.last_user_message().to_string();
    }
    chat.turns
        .iter()
        .map(|turn| {
            let label = match turn.role {
                Role::User => "User",
                Role::Assistant => "Assistant",
            };
            format!("{label}: {}", turn.content)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::validate::validate;
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
        let inv = build_invocation(&c, &SessionArg::Resume(ID.into()), Path::new(DIR), true);
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
            !build_invocation(&c, &SessionArg::New(ID.into()), Path::new(DIR), false)
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
            );
            assert_eq!(turn_text(&inv.stdin), text);
            assert_eq!(inv.args.len(), 13);
            assert!(inv.args.iter().all(|a| a.len() < 100));
        }
    }
}
