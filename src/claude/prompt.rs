//! Turns a validated request into the CLI's argument vector and, when the
//! prompt cannot safely be an argument, the text for its standard input.
//! Pure: no process is started here.

use super::validate::{Role, ValidChat};

/// Which session the child works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionArg {
    /// Create it: `--session-id ID`.
    New(String),
    /// Continue it: `--resume ID`.
    Resume(String),
}

/// What to run: `claude` + `args`, with `stdin` written to the child (and
/// the pipe closed) when present. With `stdin: None` the child's standard
/// input should be empty (`/dev/null`): the CLI appends piped input to the
/// prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

/// Linux refuses a single argument of 128 KiB or more (MAX_ARG_STRLEN,
/// counting its NUL), so longer prompts go through standard input.
pub const MAX_ARGV_PROMPT_BYTES: usize = 128 * 1024 - 1;

pub fn build_invocation(
    chat: &ValidChat,
    session: &SessionArg,
    skip_permissions: bool,
) -> Invocation {
    let prompt = prompt_text(chat, session);
    // The prompt goes right after `-p`, where the recordings have it: after
    // `--tools` it would be taken as a second tool name (that option takes a
    // list). A prompt that begins with `-` would be read as an option
    // wherever it stands, and whether this CLI honours `--` as the end of
    // options is not recorded, so such prompts (and over-long ones) go
    // through standard input instead, which the CLI reads when `-p` has no
    // prompt argument (fixtures/claude-cli-2.1.331/json-stdin-prompt).
    let via_stdin = prompt.len() > MAX_ARGV_PROMPT_BYTES || prompt.starts_with('-');
    let mut args: Vec<String> = vec!["-p".into()];
    let stdin = if via_stdin {
        Some(prompt)
    } else {
        args.push(prompt);
        None
    };
    for a in [
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--tools",
        "",
        "--model",
        chat.cli_model,
    ] {
        args.push(a.to_string());
    }
    match session {
        SessionArg::New(id) => args.extend(["--session-id".to_string(), id.clone()]),
        SessionArg::Resume(id) => args.extend(["--resume".to_string(), id.clone()]),
    }
    // `--system-prompt` takes a required value, so the next argument is its
    // value even when the text starts with `-`.
    if let Some(system) = &chat.system {
        args.extend(["--system-prompt".to_string(), system.clone()]);
    }
    if skip_permissions {
        args.push("--dangerously-skip-permissions".into());
    }
    Invocation { args, stdin }
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

    fn chat(body: Value) -> ValidChat {
        validate(body.as_object().expect("object")).expect("valid")
    }

    fn user(text: &str) -> ValidChat {
        chat(json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]}))
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_new_session_matches_the_recorded_command_line() {
        let inv = build_invocation(&user("hi there"), &SessionArg::New(ID.into()), false);
        assert_eq!(
            strs(&inv.args),
            [
                "-p",
                "hi there",
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
        assert_eq!(inv.stdin, None);
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
        let inv = build_invocation(&c, &SessionArg::Resume(ID.into()), true);
        assert_eq!(
            strs(&inv.args),
            [
                "-p",
                "second turn",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
                "--tools",
                "",
                "--model",
                "claude-haiku-4-5-20251001",
                "--resume",
                ID,
                "--system-prompt",
                "You are terse.\n\n-no lists",
                "--dangerously-skip-permissions"
            ]
        );
        assert!(!build_invocation(&c, &SessionArg::New(ID.into()), false)
            .args
            .iter()
            .any(|a| a.contains("dangerously")));
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
    fn shell_metacharacters_stay_one_literal_argument() {
        let text = "$(rm -rf /); `id` && echo $HOME | cat > /tmp/x; 'q' \"d\" \n*";
        let inv = build_invocation(&user(text), &SessionArg::New(ID.into()), false);
        assert_eq!(inv.args[1], text);
        assert_eq!(inv.args.len(), 12);
    }

    #[test]
    fn a_prompt_that_looks_like_an_option_goes_to_stdin() {
        for text in ["--model opus", "-h", "- list item"] {
            let inv = build_invocation(&user(text), &SessionArg::New(ID.into()), false);
            assert_eq!(inv.stdin.as_deref(), Some(text));
            assert_eq!(inv.args[0], "-p");
            assert_eq!(inv.args[1], "--output-format");
            assert!(!inv.args.iter().any(|a| a == text));
        }
    }

    #[test]
    fn a_long_prompt_goes_to_stdin_never_argv() {
        let at_limit = "x".repeat(MAX_ARGV_PROMPT_BYTES);
        let inv = build_invocation(&user(&at_limit), &SessionArg::New(ID.into()), false);
        assert_eq!(inv.stdin, None);
        assert_eq!(inv.args[1].len(), MAX_ARGV_PROMPT_BYTES);

        let long = "ü".repeat(70_000); // 140 000 bytes
        let inv = build_invocation(&user(&long), &SessionArg::New(ID.into()), false);
        assert_eq!(inv.stdin.as_deref(), Some(long.as_str()));
        assert!(inv.args.iter().all(|a| a.len() < 1000));
        assert_eq!(
            &strs(&inv.args)[..3],
            ["-p", "--output-format", "stream-json"]
        );
    }
}
