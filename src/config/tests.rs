//! Tests of reading the environment into a `Config`.

use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
    Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.port, 3456);
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.max_concurrent_processes, 10);
    assert_eq!(c.request_timeout, Duration::from_secs(300));
    assert_eq!(c.openai_base_url, "https://api.openai.com/v1");
    assert!(c.openai_passthrough_enabled && c.allow_client_openai_key);
    assert_eq!(c.rate_limit_per_ip, 60);
    assert_eq!(c.rate_limit_per_session, 10);
    assert_eq!(c.max_concurrent_per_key, 5);
    assert_eq!((c.max_tool_waits, c.max_tool_waits_per_key), (5, 2));
    assert_eq!(c.stream_keepalive, Some(Duration::from_secs(15)));
    let off = parse(&[("STREAM_KEEPALIVE_MS", "0")]).unwrap();
    assert_eq!(off.stream_keepalive, None);
    assert_eq!(c.rate_limit_window, Duration::from_secs(60));
    assert_eq!(c.max_session_age, Duration::from_secs(86_400));
    assert_eq!(c.session_cleanup_interval, Duration::from_secs(60));
    assert_eq!(c.default_model, "sonnet");
    assert!(!c.claude_skip_permissions);
}

#[test]
fn bad_values_name_their_variable() {
    for (var, value) in [
        ("PORT", "0"),
        ("PORT", "70000"),
        ("PORT", "abc"),
        ("LOG_LEVEL", "loud"),
        ("MAX_CONCURRENT_PROCESSES", "0"),
        ("OPENAI_PASSTHROUGH_ENABLED", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("OPENAI_BASE_URL", "ftp://x"),
    ] {
        let errors = parse(&[(var, value)]).unwrap_err();
        assert_eq!(errors.len(), 1, "{var}={value}");
        assert_eq!(errors[0].var, var);
        assert!(errors[0].to_string().starts_with(var));
    }
}

#[test]
fn all_errors_are_collected() {
    let errors = parse(&[("PORT", "x"), ("LOG_LEVEL", "y")]).unwrap_err();
    assert_eq!(errors.len(), 2);
}

#[test]
fn keys_merge_dedupe_and_need_prefix() {
    let c = parse(&[
        ("API_KEY", "sk-cca-aaaaaaaaaaaa"),
        ("API_KEYS", "sk-cca-bbbbbbbbbbbb, sk-cca-aaaaaaaaaaaa"),
    ])
    .unwrap();
    assert_eq!(c.api_keys.len(), 2);
    let errors = parse(&[("API_KEYS", "plainkey1234567890")]).unwrap_err();
    assert!(errors[0].message.contains("sk-cca-"));
    assert!(!errors[0].message.contains("plainkey1234567890"));
}

#[test]
fn debug_hides_secrets() {
    let c = parse(&[
        ("API_KEY", "sk-cca-secretsecret1234"),
        ("OPENAI_API_KEY", "sk-proj-openaisecret9999"),
        ("ANTHROPIC_API_KEY", "sk-ant-anthropicsecret77"),
    ])
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("secretsecret"));
    assert!(!dbg.contains("openaisecret"));
    assert!(!dbg.contains("anthropicsecret"));
    assert!(dbg.contains("sk-cca-****1234"));
}

#[test]
fn child_env_is_an_allowlist() {
    let c = parse(&[
        ("PATH", "/bin"),
        ("OPENAI_API_KEY", "sk-x"),
        ("ANTHROPIC_API_KEY", "sk-ant-1"),
        ("CLAUDECODE", "1"),
        ("AWS_REGION", "eu"),
        ("SECRET_THING", "x"),
        (
            "CLAUDE_ENV_PASSTHROUGH",
            "AWS_REGION,OPENAI_API_KEY,CLAUDECODE",
        ),
    ])
    .unwrap();
    let names: Vec<&str> = c.child_env.0.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"ANTHROPIC_API_KEY"));
    assert!(names.contains(&"AWS_REGION"));
    assert!(names.contains(&"TERM"));
    assert!(!names.contains(&"OPENAI_API_KEY"));
    assert!(!names.contains(&"CLAUDECODE"));
    assert!(!names.contains(&"SECRET_THING"));
}

#[test]
fn masks_keys() {
    assert_eq!(mask_key("sk-cca-0123456789abcdef7f3a"), "sk-cca-****7f3a");
    assert_eq!(mask_key("short"), "****");
}

#[test]
fn waiting_turns_leave_each_key_a_slot() {
    let waits = |pairs: &[(&str, &str)]| {
        let c = parse(pairs).unwrap();
        (c.max_tool_waits, c.max_tool_waits_per_key)
    };
    assert_eq!(waits(&[("MAX_CONCURRENT_PROCESSES", "24")]), (12, 4));
    assert_eq!(
        waits(&[
            ("MAX_CONCURRENT_PROCESSES", "24"),
            ("MAX_CONCURRENT_PER_KEY", "0")
        ]),
        (12, 6)
    );
    assert_eq!(waits(&[("MAX_CONCURRENT_PROCESSES", "1")]), (1, 1));
    assert_eq!(
        waits(&[("MAX_TOOL_WAITS", "3"), ("MAX_TOOL_WAITS_PER_KEY", "3")]),
        (3, 3)
    );
}

#[test]
fn accounts_and_keys_limited_to_them() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.accounts.len(), 1);
    assert_eq!(
        (c.accounts[0].name.as_str(), &c.accounts[0].config_dir),
        (DEFAULT_ACCOUNT, &None)
    );
    let c = parse(&[
        (
            "CLAUDE_ACCOUNTS",
            "work=/srv/claude/work, personal=/srv/claude/me",
        ),
        (
            "API_KEYS",
            "sk-cca-team-0123456789=work,sk-cca-me-01234567890=work+personal",
        ),
    ])
    .unwrap();
    let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["work", "personal"]);
    assert_eq!(
        c.accounts[1].config_dir.as_deref(),
        Some(std::path::Path::new("/srv/claude/me"))
    );
    assert_eq!(c.api_keys.len(), 2, "the limits are not part of the keys");
    let team = Secret::new("sk-cca-team-0123456789".to_string());
    assert_eq!(c.accounts_for(Some(&team)), Some(&["work".to_string()][..]));
    assert_eq!(c.accounts_for(None), None);
    for (var, value) in [
        ("CLAUDE_ACCOUNTS", "work"),
        ("CLAUDE_ACCOUNTS", "work=relative/dir"),
        ("CLAUDE_ACCOUNTS", "a b=/x"),
        ("CLAUDE_ACCOUNTS", "w=/x,w=/y"),
    ] {
        let errors = parse(&[(var, value)]).unwrap_err();
        assert!(errors.iter().any(|e| e.var == var), "{value}: {errors:?}");
    }
    let errors = parse(&[
        ("CLAUDE_ACCOUNTS", "work=/srv/w"),
        ("API_KEYS", "sk-cca-team-0123456789=play"),
    ])
    .unwrap_err();
    assert!(errors.iter().any(|e| e.var == "API_KEYS"), "{errors:?}");
}
