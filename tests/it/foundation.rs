//! The foundation as a client meets it: configuration refusals from the
//! real binary, the mode router, error answers and their common headers,
//! CORS, `/health` and `/v1/models`, probe latency while every worker is
//! busy, the SIGTERM drain and the access log.
//!
//! The backends are placeholders in this branch, so chat requests end in a
//! 503; where the router is under test the `X-Backend-Mode` header of that
//! answer says which backend was picked. Every server points its upstream
//! at a closed local port and its CLI at a missing file, so nothing here
//! can reach the network or run a real `claude`.

mod wire;

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wait_timeout::ChildExt;

use crate::support;
use crate::support::binary::{binary, Running, CLOSED_UPSTREAM, MISSING_CLI};
use crate::support::{
    chat, config_from, free_port, get, request, server_with, wait_until, HttpResponse,
};
use wire::{assert_common_headers, assert_error, connect, get_within, read_response, SlowClient};

const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const SESSION: &str = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
const MIB: usize = 1024 * 1024;

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'"),
    ("Referrer-Policy", "no-referrer"),
];

/// Settings shared by the in-process servers here, plus `extra`.
fn offline(extra: &[(&str, &str)]) -> claude_cli_api::Config {
    let mut pairs = vec![
        ("CLAUDE_PATH", MISSING_CLI),
        ("OPENAI_BASE_URL", CLOSED_UPSTREAM),
    ];
    pairs.extend_from_slice(extra);
    config_from(&pairs)
}

// ---------------------------------------------------------------------------
// Configuration.

#[test]
fn bad_settings_stop_the_binary_with_one_line_naming_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        ("PORT", "0", "1-65535"),
        ("PORT", "70000", "1-65535"),
        ("PORT", "abc", "1-65535"),
        ("LOG_LEVEL", "loud", "trace, debug, info, warn, error"),
        ("MAX_CONCURRENT_PROCESSES", "0", "1-10000"),
        ("OPENAI_PASSTHROUGH_ENABLED", "maybe", "true/false"),
        ("API_KEY", "not-prefixed", "sk-cca-"),
    ];
    for (var, value, accepted) in cases {
        let state = support::temp_dir("bad-config");
        let state = state.display().to_string();
        let (code, lines) = refused_start(&[("STATE_DIR", &state), (var, value)]);
        assert_eq!(code, Some(2), "{var}={value}: {lines:?}");
        assert_eq!(lines.len(), 1, "{var}={value}: {lines:?}");
        assert!(lines[0].contains(var), "{var}={value}: {}", lines[0]);
        assert!(lines[0].contains(accepted), "{var}={value}: {}", lines[0]);
        if *var == "API_KEY" {
            assert!(!lines[0].contains(value), "the key leaked: {}", lines[0]);
        }
    }
}

/// The exit status and the non-empty stderr lines of a start that must
/// fail at once.
fn refused_start(vars: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let mut cmd = binary();
    // A binary that wrongly accepted a value must not take a fixed port.
    cmd.env("PORT", free_port().to_string());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let Some(status) = child.wait_timeout(Duration::from_secs(10)).unwrap() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{vars:?}: the server started instead of refusing");
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (status.code(), lines)
}

#[test]
fn unusable_directories_stop_the_start_with_a_line_naming_them() {
    let base = support::temp_dir("bad-dirs");
    let file = base.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file = file.display().to_string();
    let below_file = format!("{file}/state");
    let good = base.join("good").display().to_string();
    let good_work = base.join("good-work").display().to_string();
    let cases: &[(&str, &str, &str)] = &[
        ("STATE_DIR", &file, "is not a directory"),
        ("STATE_DIR", &below_file, "cannot be created"),
        ("CLAUDE_WORK_DIR", &file, "is not a directory"),
        // Not writable even for root.
        ("CLAUDE_WORK_DIR", "/proc/self", "cannot be written"),
    ];
    for (var, value, why) in cases {
        let mut vars = vec![
            ("STATE_DIR", good.as_str()),
            ("CLAUDE_WORK_DIR", &good_work),
        ];
        vars.retain(|(k, _)| k != var);
        vars.push((var, value));
        let (code, lines) = refused_start(&vars);
        assert_eq!(code, Some(2), "{var}={value}: {lines:?}");
        assert_eq!(lines.len(), 1, "{var}={value}: {lines:?}");
        assert!(lines[0].contains(&format!("{var}={value}")), "{}", lines[0]);
        assert!(lines[0].contains(why), "{}", lines[0]);
    }
}

#[test]
fn api_key_and_api_keys_are_merged() {
    let a = "sk-cca-aaaaaaaaaaaaaaaa";
    let b = "sk-cca-bbbbbbbbbbbbbbbb";
    let s = server_with(offline(&[
        ("API_KEY", a),
        ("API_KEYS", &format!("{b}, {a}")),
    ]));
    assert_eq!(s.app().config.api_keys.len(), 2, "duplicates are dropped");
    for key in [a, b] {
        let auth = format!("Bearer {key}");
        let r = chat(s.addr, &[("Authorization", &auth)], BODY);
        assert_ne!(r.status, 401, "{key} was refused: {}", r.text());
    }
    let r = chat(
        s.addr,
        &[("Authorization", "Bearer sk-cca-cccccccccccccccc")],
        BODY,
    );
    assert_error(&r, 401, "invalid_api_key");
    assert_error(&chat(s.addr, &[], BODY), 401, "missing_api_key");
    // Probes and model discovery stay open.
    assert_eq!(get(s.addr, "/health").status, 200);
    assert_eq!(get(s.addr, "/v1/models").status, 200);
}

// ---------------------------------------------------------------------------
// Mode router.

#[test]
fn router_picks_the_backend_from_the_headers() {
    let s = server_with(offline(&[]));
    let pass = Some("openai-passthrough");
    let claude = Some("claude-code");
    // (X-Claude-Code, session header present, backend or None for a 400)
    let cases: &[(Option<&str>, bool, Option<&str>)] = &[
        (None, false, pass),
        (None, true, claude),
        (Some("true"), false, claude),
        (Some("true"), true, claude),
        (Some("false"), false, pass),
        (Some("false"), true, pass),
        (Some("maybe"), false, None),
        (Some("maybe"), true, None),
        (Some("TRUE"), false, claude),
        (Some("Yes"), true, claude),
        (Some("Yes"), false, claude),
        (Some("0"), true, pass),
        (Some("NO"), false, pass),
        (Some("1"), false, claude),
    ];
    for (flag, with_session, want) in cases {
        let mut headers = Vec::new();
        if let Some(flag) = flag {
            headers.push(("X-Claude-Code", *flag));
        }
        if *with_session {
            headers.push(("X-Claude-Session-ID", SESSION));
        }
        let r = chat(s.addr, &headers, BODY);
        let case = format!("X-Claude-Code={flag:?} session={with_session}");
        match want {
            Some(mode) => {
                assert_eq!(r.header("X-Backend-Mode"), Some(*mode), "{case}");
                assert_ne!(r.status, 200, "{case}: no backend is wired yet");
                let code = r.error_code();
                assert_ne!(code, "invalid_header_value", "{case}");
                assert_common_headers(&r);
            }
            None => {
                let error = assert_error(&r, 400, "invalid_header_value");
                assert_eq!(error["param"], "X-Claude-Code", "{case}");
                assert!(
                    error["message"].as_str().unwrap().contains("true/1/yes"),
                    "{case}: {error}"
                );
                assert_eq!(r.header("X-Backend-Mode"), None, "{case}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Errors with schema, request id and security headers.

#[test]
fn unknown_route_and_wrong_method() {
    let s = server_with(offline(&[]));
    let r = get(s.addr, "/nope");
    assert_error(&r, 404, "not_found");
    let r = get(s.addr, "/claude/v1/nope");
    assert_error(&r, 404, "not_found");
    // Under /v1/ every other route is the upstream's (with no key here).
    let r = get(s.addr, "/v1/nope");
    assert_error(&r, 503, "passthrough_not_configured");

    let r = get(s.addr, "/v1/chat/completions");
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("Allow"), Some("POST"));

    let r = request(s.addr, "DELETE", "/health", &[], b"");
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("Allow"), Some("GET"));
}

#[test]
fn a_body_over_the_limit_is_refused_by_its_declared_length() {
    let s = server_with(offline(&[("MAX_BODY_BYTES", "1048576")]));
    let mut stream = connect(s.addr);
    // Only the head is sent: the answer must not wait for the body.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        MIB + 1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let r = read_response(&mut BufReader::new(stream));
    let error = assert_error(&r, 413, "payload_too_large");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("1048576"), "{message}");
    assert!(
        message.contains("MAX_BODY_BYTES"),
        "names the setting: {message}"
    );
}

#[test]
fn a_chunked_body_over_the_limit_is_refused() {
    let s = server_with(offline(&[("MAX_BODY_BYTES", "1048576")]));
    let mut stream = connect(s.addr);
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    // One byte more than the limit and no terminating chunk: the server
    // must decide from what it has read, without waiting for the end.
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < MIB + 1 {
        let n = chunk.len().min(MIB + 1 - sent);
        stream.write_all(format!("{n:x}\r\n").as_bytes()).unwrap();
        stream.write_all(&chunk[..n]).unwrap();
        stream.write_all(b"\r\n").unwrap();
        sent += n;
    }
    stream.flush().unwrap();
    let r = read_response(&mut BufReader::new(stream));
    assert_error(&r, 413, "payload_too_large");
}

#[test]
fn a_screenshot_sized_body_is_read_by_default() {
    // A 6 MB body (a base64 screenshot) gets past the body limit: the
    // answer is the passthrough's own refusal, not a 413.
    let s = server_with(offline(&[("OPENAI_PASSTHROUGH_ENABLED", "false")]));
    let text = "x".repeat(6_000_000);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]});
    let r = request(
        s.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_error(&r, 503, "passthrough_disabled");
}

#[test]
fn bodies_wait_for_room_in_the_memory_budget_then_are_refused() {
    let s = server_with(offline(&[
        ("OPENAI_PASSTHROUGH_ENABLED", "false"),
        ("MAX_BODY_BYTES", "65536"),
        ("MAX_BODY_MEMORY_BYTES", "100000"),
    ]));
    let post = |length: usize| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let body = format!(
        "{{\"model\":\"gpt-4o\",\"pad\":\"{}\"}}",
        "x".repeat(59_973)
    );
    assert_eq!(body.len(), 60_000);
    // The first holds what it has sent so far, all but 10 bytes.
    let mut first = connect(s.addr);
    first.write_all(post(60_000).as_bytes()).unwrap();
    first.write_all(&body.as_bytes()[..59_990]).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || s.app().bodies.used() >= 59_990),
        "the first body's bytes were never held: {}",
        s.app().bodies.used()
    );
    // The second does not fit beside it: it waits, then is told to retry.
    let started = Instant::now();
    let mut second = connect(s.addr);
    second.write_all(post(60_000).as_bytes()).unwrap();
    second.write_all(body.as_bytes()).unwrap();
    let r = read_response(&mut BufReader::new(second));
    assert_error(&r, 429, "capacity_exceeded");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for room first"
    );
    // The first, once complete, is read and answered; then there is room again.
    first.write_all(&body.as_bytes()[59_990..]).unwrap();
    let r = read_response(&mut BufReader::new(first));
    assert_error(&r, 503, "passthrough_disabled");
    let r = request(
        s.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_error(&r, 503, "passthrough_disabled");
}

#[test]
fn the_body_memory_budget_must_hold_one_largest_body() {
    let errors = claude_cli_api::Config::from_vars(vec![
        ("MAX_BODY_BYTES".to_string(), "2000000".to_string()),
        ("MAX_BODY_MEMORY_BYTES".to_string(), "1000000".to_string()),
    ])
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("MAX_BODY_MEMORY_BYTES")),
        "{errors:?}"
    );
}

#[test]
fn post_without_json_content_type() {
    let s = server_with(offline(&[]));
    let r = request(s.addr, "POST", "/v1/chat/completions", &[], BODY.as_bytes());
    assert_error(&r, 415, "unsupported_media_type");
    let r = request(
        s.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "text/plain")],
        BODY.as_bytes(),
    );
    assert_error(&r, 415, "unsupported_media_type");
    // Parameters after the media type are fine.
    let r = request(
        s.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json; charset=utf-8")],
        BODY.as_bytes(),
    );
    assert_ne!(r.status, 415);
}

#[test]
fn malformed_json_is_a_400() {
    let s = server_with(offline(&[]));
    for body in [r#"{"model": "gpt-4o", "messages": [}"#, "[1, 2]", ""] {
        let r = chat(s.addr, &[], body);
        let error = assert_error(&r, 400, "invalid_json");
        assert_eq!(error["type"], "invalid_request_error", "{body:?}");
    }
}

#[test]
fn request_id_is_echoed_when_sane_and_replaced_otherwise() {
    let s = server_with(offline(&[]));
    let sane = "client-id_1.2:3";
    let r = request(s.addr, "GET", "/health", &[("X-Request-ID", sane)], b"");
    assert_eq!(r.header("X-Request-ID"), Some(sane));
    // Error answers carry it too.
    let r = request(s.addr, "GET", "/nope", &[("X-Request-ID", sane)], b"");
    assert_eq!(r.header("X-Request-ID"), Some(sane));

    let long = "a".repeat(200);
    for insane in ["has space", "semi;colon", "<script>", long.as_str()] {
        let r = request(s.addr, "GET", "/health", &[("X-Request-ID", insane)], b"");
        let id = r.header("X-Request-ID").unwrap();
        assert_ne!(id, insane);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let a = get(s.addr, "/health");
    let b = get(s.addr, "/health");
    assert_ne!(a.header("X-Request-ID"), b.header("X-Request-ID"));
}

// ---------------------------------------------------------------------------
// CORS.

fn cors_headers(r: &HttpResponse) -> Vec<&(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
        .collect()
}

fn preflight(addr: SocketAddr, origin: &str) -> HttpResponse {
    request(
        addr,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, x-claude-code",
            ),
        ],
        b"",
    )
}

#[test]
fn no_cors_headers_by_default() {
    let s = server_with(offline(&[]));
    let origin = "https://app.example";
    let r = request(s.addr, "GET", "/health", &[("Origin", origin)], b"");
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
    let r = chat(s.addr, &[("Origin", origin)], BODY);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
    let r = preflight(s.addr, origin);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
}

#[test]
fn allowed_origin_gets_cors_headers_and_a_preflight_answer() {
    let s = server_with(offline(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://app.example, https://other.example",
    )]));
    let origin = "https://app.example";
    let r = request(s.addr, "GET", "/health", &[("Origin", origin)], b"");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
    let expose = r.header("Access-Control-Expose-Headers").unwrap_or("");
    assert!(expose.contains("X-Request-ID"), "{expose}");
    // Error answers too: a browser must be able to read why it failed.
    let r = chat(s.addr, &[("Origin", origin)], BODY);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));

    let r = preflight(s.addr, origin);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
    let methods = r.header("Access-Control-Allow-Methods").unwrap_or("");
    assert!(methods.contains("POST"), "{methods}");
    let allowed = r
        .header("Access-Control-Allow-Headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for h in [
        "content-type",
        "x-claude-code",
        "authorization",
        "x-api-key",
        "anthropic-version",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert_common_headers(&r);
}

#[test]
fn denied_origin_gets_no_cors_headers() {
    let s = server_with(offline(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]));
    let evil = "https://evil.example";
    let r = request(s.addr, "GET", "/health", &[("Origin", evil)], b"");
    assert_eq!(r.status, 200);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
    let r = preflight(s.addr, evil);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);
}

// ---------------------------------------------------------------------------
// /health and /v1/models.

/// An executable stand-in for the CLI; `/health` only checks that it is there.
fn fake_cli() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = support::temp_dir("fake-cli").join("claude");
    std::fs::write(&path, "#!/bin/sh\necho '2.1.331 (Claude Code)'\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn health_is_ready_with_the_passthrough_alone() {
    let s = server_with(offline(&[("MAX_CONCURRENT_PROCESSES", "7")]));
    let r = get(s.addr, "/health");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_common_headers(&r);
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let checks = &v["checks"];
    assert_eq!(checks["claude_cli"], "error");
    assert_eq!(checks["anthropic_key"], "missing");
    assert_eq!(checks["openai_passthrough"], "ok");
    assert_eq!(
        checks["capacity"],
        serde_json::json!({"active": 0, "max": 7, "queued": 0})
    );
}

#[test]
fn health_is_unavailable_without_any_backend() {
    let s = server_with(offline(&[("OPENAI_PASSTHROUGH_ENABLED", "false")]));
    let r = get(s.addr, "/health");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_common_headers(&r);
    let v = r.json();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["checks"]["claude_cli"], "error");
    assert_eq!(v["checks"]["openai_passthrough"], "disabled");
}

#[test]
fn health_reports_a_passthrough_without_key_source() {
    let s = server_with(offline(&[("ALLOW_CLIENT_OPENAI_KEY", "false")]));
    let r = get(s.addr, "/health");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["checks"]["openai_passthrough"], "no_key");
}

#[test]
fn health_is_ready_with_the_cli_alone_even_without_anthropic_key() {
    let cli = fake_cli();
    let s = server_with(offline(&[
        ("OPENAI_PASSTHROUGH_ENABLED", "false"),
        ("CLAUDE_PATH", cli.to_str().unwrap()),
    ]));
    let r = get(s.addr, "/health");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["checks"]["claude_cli"], "ok");
    // A subscription login works without a key, so this is not fatal.
    assert_eq!(v["checks"]["anthropic_key"], "missing");
    assert_eq!(v["checks"]["openai_passthrough"], "disabled");
}

#[test]
fn health_sees_the_anthropic_key() {
    let s = server_with(offline(&[("ANTHROPIC_API_KEY", "sk-ant-test-0000000000")]));
    let r = get(s.addr, "/health");
    assert_eq!(r.json()["checks"]["anthropic_key"], "ok");
    assert!(!r.text().contains("sk-ant-test"), "the key leaked");
}

#[test]
fn models_lists_the_claude_models() {
    let s = server_with(offline(&[]));
    let r = get(s.addr, "/v1/models");
    assert_eq!(r.status, 200);
    assert_common_headers(&r);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().expect("data is an array");
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(
        ids,
        ["claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5"]
    );
    for m in data {
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], "anthropic");
        assert!(m["created"].as_u64().is_some(), "{m}");
    }
}

#[test]
fn health_answers_fast_while_every_worker_is_busy() {
    let s = server_with(offline(&[("WORKER_THREADS", "2")]));
    let mut busy: Vec<SlowClient> = (0..2).map(|_| SlowClient::open(s.addr)).collect();
    for c in &mut busy {
        c.wait_for_worker();
    }
    // One more waits in the queue behind them.
    busy.push(SlowClient::open(s.addr));
    assert!(
        support::wait_until(Duration::from_secs(5), || s
            .handle
            .as_ref()
            .unwrap()
            .in_flight()
            == 3),
        "the third request never reached the queue"
    );
    assert_eq!(s.handle.as_ref().unwrap().busy_workers(), 2);

    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = get_within(s.addr, "/health", Duration::from_secs(1));
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["status"], "ready");
    }
    assert!(
        slowest < Duration::from_millis(50),
        "slowest /health took {slowest:?}"
    );

    // Still queued: the probe did not free a worker.
    assert_eq!(s.handle.as_ref().unwrap().in_flight(), 3);
    // Released, each held request gets its own answer.
    for c in busy {
        let r = c.finish();
        assert_eq!(r.header("X-Backend-Mode"), Some("openai-passthrough"));
        assert_common_headers(&r);
    }
}

// ---------------------------------------------------------------------------
// The binary: drain on SIGTERM and the access log.

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let mut server = Running::start(&[("SHUTDOWN_TIMEOUT_MS", "10000")]);
    let addr = server.addr();
    assert_eq!(get(addr, "/health").status, 200);

    let mut in_flight = SlowClient::open(addr);
    in_flight.wait_for_worker();

    server.signal(libc::SIGTERM);
    assert!(
        server
            .wait_line(Duration::from_secs(5), |l| l.contains("shutdown signal"))
            .is_some(),
        "no drain log line: {:?}",
        server.seen
    );
    assert!(
        support::wait_until(Duration::from_secs(5), || get(addr, "/v1/models").status
            == 503),
        "the server never started refusing"
    );
    let r = chat(addr, &[], BODY);
    assert_error(&r, 503, "server_shutting_down");
    let r = get(addr, "/health");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "draining");

    // The drain waits for it: past the half second the server gives killed
    // children after the grace period, the process must still be there.
    let early_exit = server
        .child
        .wait_timeout(Duration::from_millis(1000))
        .unwrap();
    assert!(
        early_exit.is_none(),
        "exited with a request in flight: {early_exit:?}"
    );

    // The request admitted before the signal still gets its own answer.
    let r = in_flight.finish();
    assert_eq!(r.header("X-Backend-Mode"), Some("openai-passthrough"));
    assert_ne!(r.error_code(), "server_shutting_down", "{}", r.text());
    assert_common_headers(&r);

    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
    let lines = server.all_lines();
    assert!(lines.iter().any(|l| l.contains("\"stopped\"")), "{lines:?}");
}

#[test]
fn access_log_has_one_json_line_per_request() {
    let prompt = "the-secret-prompt-text";
    let openai_key = "sk-proj-openaisecretkey12345678";
    let mut server = Running::start(&[("OPENAI_API_KEY", openai_key)]);
    let addr = server.addr();

    let body = BODY.replace("hi", prompt);
    let chat_answer = chat(addr, &[("X-Request-ID", "log-test-chat")], &body);
    assert_eq!(chat_answer.header("X-Request-ID"), Some("log-test-chat"));
    let r = request(
        addr,
        "GET",
        "/health",
        &[("X-Request-ID", "log-test-health")],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = request(
        addr,
        "GET",
        "/nope",
        &[("X-Request-ID", "log-test-404")],
        b"",
    );
    assert_eq!(r.status, 404);

    // The line is written after the answer; wait for all three.
    for id in ["log-test-chat", "log-test-health", "log-test-404"] {
        let needle = format!("\"request_id\":\"{id}\"");
        assert!(
            server
                .wait_line(Duration::from_secs(5), |l| l.contains(&needle)
                    && l.contains("\"event\":\"request\""))
                .is_some(),
            "no access line for {id}: {:?}",
            server.seen
        );
    }
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let lines = server.all_lines();

    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["time"].is_u64(), "{line}");
        assert!(!line.contains(prompt), "a prompt was logged: {line}");
        assert!(!line.contains(openai_key), "a key was logged: {line}");
    }
    let access: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "request")
        .collect();
    let find = |id: &str| -> &Value {
        let matching: Vec<&Value> = access.iter().filter(|v| v["request_id"] == id).collect();
        assert_eq!(matching.len(), 1, "{id}: {access:?}");
        matching[0]
    };
    let chat_line = find("log-test-chat");
    assert_eq!(chat_line["method"], "POST");
    assert_eq!(chat_line["path"], "/v1/chat/completions");
    assert_eq!(chat_line["status"], chat_answer.status);
    assert_eq!(chat_line["mode"], "openai-passthrough");
    assert!(chat_line["duration_ms"].as_f64().is_some(), "{chat_line}");

    let health_line = find("log-test-health");
    assert_eq!(health_line["method"], "GET");
    assert_eq!(health_line["path"], "/health");
    assert_eq!(health_line["status"], 200);
    assert!(health_line["duration_ms"].as_f64().is_some());
    assert!(health_line.get("mode").is_none(), "{health_line}");

    assert_eq!(find("log-test-404")["status"], 404);
}
