//! `claude-cli-api --check`, `--version` and `--help`, run as the built
//! binary with a cleared environment: a good configuration (the fake CLI,
//! a fake upstream) and broken ones (a missing CLI, a state directory
//! under a regular file, an unreachable upstream), by exit status and the
//! rows of the table. Also: the upstream key never appears, only masked.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use crate::support::fake_openai::{Answer, FakeOpenAi};
use crate::support::{temp_dir, FAKE_CLI};

const KEY: &str = "sk-proj-check0test0key0abcd9876";
const MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}"#;

/// The binary with only `PATH` and a fresh `HOME` and `STATE_DIR`, on a
/// port that was free a moment ago, plus `vars`.
fn run(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let home = temp_dir("check-home");
    let state = temp_dir("check-state").join("state");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-cli-api"));
    cmd.args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env("HOME", &home)
        .env("STATE_DIR", &state)
        .env("PORT", port.to_string())
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let out = String::from_utf8(stdout).unwrap();
    let err = String::from_utf8(stderr).unwrap();
    (status.code(), out, err)
}

/// The status word of the table's row for `item`, and the line below it
/// when that is its fix.
fn row<'a>(out: &'a str, item: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(item) && l[item.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {item:?} in:\n{out}"));
    let status = lines[i][item.len()..].split_whitespace().next().unwrap();
    let fix = lines
        .get(i + 1)
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with("fix: "));
    (status, fix)
}

#[test]
fn a_good_configuration_is_ok_everywhere() {
    let upstream = FakeOpenAi::start(Answer::json(200, MODELS));
    let base = upstream.base_url();
    let (code, out, err) = run(
        &["--check"],
        &[
            ("CLAUDE_PATH", FAKE_CLI),
            ("ANTHROPIC_API_KEY", "sk-ant-check0test0anthropic1234"),
            ("OPENAI_BASE_URL", &base),
            ("OPENAI_API_KEY", KEY),
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    for item in [
        "claude CLI",
        "credentials",
        "state dir",
        "work dir",
        "passthrough",
        "listen address",
    ] {
        assert_eq!(row(&out, item), ("ok", None), "{out}");
    }
    assert!(out.contains("2.1.331 (Claude Code)"), "{out}");
    assert!(out.contains("mode 0700"), "{out}");
    assert!(
        out.contains("Claude Code mode: ready; passthrough: ready"),
        "{out}"
    );
    // The key went upstream, and only its masked form was printed.
    let request = upstream.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert!(out.contains("sk-proj-****9876"), "{out}");
    assert!(!out.contains(KEY) && !err.contains(KEY));
    assert!(!out.contains("sk-ant-check0test0anthropic1234"));
}

#[test]
fn a_missing_cli_fails_its_row_but_the_passthrough_is_enough() {
    let upstream = FakeOpenAi::start(Answer::json(200, MODELS));
    let base = upstream.base_url();
    let (code, out, _) = run(
        &["--check"],
        &[
            ("CLAUDE_PATH", "/nonexistent"),
            ("OPENAI_BASE_URL", &base),
            ("OPENAI_API_KEY", KEY),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let (status, fix) = row(&out, "claude CLI");
    assert_eq!(status, "FAIL", "{out}");
    assert!(fix.is_some_and(|f| f.contains("CLAUDE_PATH")), "{out}");
    assert_eq!(row(&out, "passthrough").0, "ok", "{out}");
    assert_eq!(row(&out, "credentials").0, "warn", "{out}");
    assert!(
        out.contains("Claude Code mode: not ready; passthrough: ready"),
        "{out}"
    );
}

#[test]
fn a_state_directory_under_a_regular_file_fails() {
    // A path whose parent is a file: no permission bits involved, so this
    // fails for root too.
    let file = temp_dir("check-file").join("plain");
    std::fs::write(&file, b"x").unwrap();
    let state = file.join("state");
    let state = state.to_str().unwrap();
    let (code, out, _) = run(
        &["--check"],
        &[("CLAUDE_PATH", FAKE_CLI), ("STATE_DIR", state)],
    );
    let (status, fix) = row(&out, "state dir");
    assert_eq!(status, "FAIL", "{out}");
    assert!(out.contains(&format!("STATE_DIR={state}")), "{out}");
    assert!(fix.is_some_and(|f| f.contains("STATE_DIR")), "{out}");
    // The server would refuse to start, so nothing is ready.
    assert_eq!(code, Some(1), "{out}");
}

#[test]
fn an_unreachable_upstream_and_no_cli_exit_1() {
    let (code, out, err) = run(
        &["--check"],
        &[
            ("CLAUDE_PATH", "/nonexistent"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("OPENAI_API_KEY", KEY),
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    let (status, fix) = row(&out, "passthrough");
    assert_eq!(status, "FAIL", "{out}");
    assert!(fix.is_some_and(|f| f.contains("OPENAI_BASE_URL")), "{out}");
    assert!(out.contains("http://127.0.0.1:9/v1/models"), "{out}");
    assert!(out.contains("sk-proj-****9876"), "{out}");
    assert!(!out.contains(KEY) && !err.contains(KEY));
    assert_eq!(row(&out, "claude CLI").0, "FAIL", "{out}");
}

#[test]
fn a_refused_key_fails_and_a_disabled_passthrough_is_off() {
    let upstream = FakeOpenAi::start(Answer::json(401, r#"{"error":{}}"#));
    let base = upstream.base_url();
    let (code, out, _) = run(
        &["--check"],
        &[
            ("CLAUDE_PATH", FAKE_CLI),
            ("OPENAI_BASE_URL", &base),
            ("OPENAI_API_KEY", KEY),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let (status, fix) = row(&out, "passthrough");
    assert_eq!(status, "FAIL", "{out}");
    assert!(fix.is_some_and(|f| f.contains("OPENAI_API_KEY")), "{out}");

    let (code, out, _) = run(
        &["--check"],
        &[
            ("CLAUDE_PATH", FAKE_CLI),
            ("OPENAI_PASSTHROUGH_ENABLED", "false"),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(row(&out, "passthrough"), ("off", None), "{out}");
}

#[test]
fn an_invalid_configuration_exits_2() {
    let (code, out, err) = run(&["--check"], &[("LOG_LEVEL", "loud")]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("LOG_LEVEL"), "{err}");
}

#[test]
fn version_help_and_unknown_flags() {
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        format!("claude-cli-api {}\n", env!("CARGO_PKG_VERSION"))
    );

    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("Usage: claude-cli-api"), "{out}");
    for flag in ["--check", "--version", "--help", "mcp-bridge"] {
        assert!(out.contains(flag), "{out}");
    }

    let (code, out, err) = run(&["--frobnicate"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--frobnicate") && err.contains("--help"),
        "{err}"
    );
}

#[test]
fn each_account_gets_a_row() {
    let root = temp_dir("check-accounts");
    let (work, personal, missing) = (root.join("work"), root.join("personal"), root.join("gone"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&personal).unwrap();
    let token = "sk-ant-oat01-check0account0token123";
    let settings = format!(r#"{{"env": {{"CLAUDE_CODE_OAUTH_TOKEN": "{token}"}}}}"#);
    std::fs::write(work.join("settings.json"), settings).unwrap();
    std::fs::write(root.join("gone"), "a file, not a directory").unwrap();
    let accounts = format!(
        "work={},personal={},gone={}",
        work.display(),
        personal.display(),
        missing.join("x").display()
    );
    let (_, out, err) = run(
        &["--check"],
        &[("CLAUDE_PATH", FAKE_CLI), ("CLAUDE_ACCOUNTS", &accounts)],
    );
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("account ")).collect();
    assert_eq!(rows.len(), 3, "{out}{err}");
    assert!(
        rows[0].contains(" ok ") && rows[0].contains("work="),
        "{out}"
    );
    assert!(rows[0].contains("sk-ant-****"), "{out}");
    assert!(
        rows[1].contains(" warn ") && rows[1].contains("no login of its own"),
        "{out}"
    );
    assert!(
        rows[2].contains(" FAIL ") && rows[2].contains("gone="),
        "{out}"
    );
    assert!(!out.contains(token), "{out}");
}
