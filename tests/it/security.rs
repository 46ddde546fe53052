//! Auth and rate limits as a client meets them over HTTP.
//!
//! Chat requests here go to the passthrough with `OPENAI_PASSTHROUGH_ENABLED`
//! off, so a request that gets past auth and the limits is answered 503 at
//! once by the backend; 401 and 429 are what the checks in front of it say.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use claude_cli_api::config::Secret;

use crate::support;
use crate::support::{chat, config_from, get, server_with, wait_until, HttpResponse};

const KEY: &str = "sk-cca-primary-key-0001";
const ROTATED: &str = "sk-cca-rotated-key-0002";
const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn server(pairs: &[(&str, &str)]) -> support::TestServer {
    let mut all = vec![("OPENAI_PASSTHROUGH_ENABLED", "false")];
    all.extend_from_slice(pairs);
    server_with(config_from(&all))
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn chat_as(addr: SocketAddr, authorization: &str) -> HttpResponse {
    chat(addr, &[("Authorization", authorization)], BODY)
}

/// The backend answered: the request got through auth and every limit.
fn reached_backend(r: &HttpResponse) -> bool {
    r.status == 503
}

fn num(r: &HttpResponse, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An OpenAI error body with the given status, type and code, and the
/// request id header.
fn assert_error(r: &HttpResponse, status: u16, kind: &str, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    let error = &body["error"];
    assert_eq!(error["type"], kind);
    assert_eq!(error["code"], code);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error.as_object().unwrap().contains_key("param"));
    assert!(r.header("X-Request-ID").is_some_and(|id| !id.is_empty()));
}

#[test]
fn every_configured_key_is_accepted_and_nothing_else() {
    let s = server(&[("API_KEY", KEY), ("API_KEYS", ROTATED)]);
    assert!(reached_backend(&chat_as(s.addr, &bearer(KEY))));
    assert!(reached_backend(&chat_as(s.addr, &bearer(ROTATED))));

    let missing = chat(s.addr, &[("X-Request-ID", "req-missing-1")], BODY);
    assert_error(&missing, 401, "authentication_error", "missing_api_key");
    assert_eq!(missing.header("X-Request-ID"), Some("req-missing-1"));

    let wrong = chat_as(s.addr, &bearer("sk-cca-not-a-real-key-99"));
    assert_error(&wrong, 401, "authentication_error", "invalid_api_key");
    assert!(!wrong.text().contains("not-a-real-key"));

    for malformed in ["Basic dXNlcjpwYXNzd29yZA==", KEY] {
        let r = chat_as(s.addr, malformed);
        assert_error(&r, 401, "authentication_error", "invalid_api_key");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("Authorization: Bearer"), "{message}");
        assert!(!message.contains(KEY));
    }
}

#[test]
fn health_and_models_need_no_key() {
    let s = server(&[("API_KEY", KEY)]);
    let models = get(s.addr, "/v1/models");
    assert_eq!(models.status, 200);
    assert_eq!(models.json()["object"], "list");
    let health = get(s.addr, "/health");
    assert!(health.json()["status"].is_string());
    assert_ne!(health.status, 401);
}

#[test]
fn without_keys_the_server_is_open() {
    let s = server(&[]);
    assert!(reached_backend(&chat(s.addr, &[], BODY)));
    assert!(reached_backend(&chat_as(s.addr, "Bearer anything")));
}

#[test]
fn the_ip_limit_admits_exactly_n_per_window() {
    let s = server(&[
        ("API_KEY", KEY),
        ("RATE_LIMIT_PER_IP", "3"),
        ("RATE_LIMIT_WINDOW_MS", "1000"),
    ]);
    for remaining in [2, 1, 0] {
        let r = chat_as(s.addr, &bearer(KEY));
        assert!(reached_backend(&r), "{}", r.text());
        assert_eq!(num(&r, "X-RateLimit-Limit"), 3);
        assert_eq!(num(&r, "X-RateLimit-Remaining"), remaining);
        let reset = num(&r, "X-RateLimit-Reset");
        assert!((unix_now()..=unix_now() + 2).contains(&reset), "{reset}");
    }

    let refused = chat_as(s.addr, &bearer(KEY));
    assert_error(&refused, 429, "rate_limit_error", "rate_limit_exceeded");
    assert!(num(&refused, "Retry-After") >= 1);
    assert_eq!(num(&refused, "X-RateLimit-Limit"), 3);
    assert_eq!(num(&refused, "X-RateLimit-Remaining"), 0);
    assert!(num(&refused, "X-RateLimit-Reset") >= unix_now());

    let freed = wait_until(Duration::from_secs(3), || {
        std::thread::sleep(Duration::from_millis(25));
        chat_as(s.addr, &bearer(KEY)).status != 429
    });
    assert!(freed, "the window never let a request through again");
}

#[test]
fn retry_after_counts_down_as_the_window_slides() {
    let s = server(&[("RATE_LIMIT_PER_IP", "1"), ("RATE_LIMIT_WINDOW_MS", "1500")]);
    assert!(reached_backend(&chat(s.addr, &[], BODY)));
    let first = chat(s.addr, &[], BODY);
    assert_eq!(first.status, 429);
    assert_eq!(num(&first, "Retry-After"), 2);
    // Refusals are not counted, so polling does not push the end away.
    let counted_down = wait_until(Duration::from_secs(2), || {
        std::thread::sleep(Duration::from_millis(25));
        let r = chat(s.addr, &[], BODY);
        r.status == 429 && num(&r, "Retry-After") == 1
    });
    assert!(counted_down, "Retry-After never went down to 1");
    let freed = wait_until(Duration::from_secs(2), || {
        std::thread::sleep(Duration::from_millis(25));
        reached_backend(&chat(s.addr, &[], BODY))
    });
    assert!(freed);
}

#[test]
fn failed_logins_count_against_the_ip_limit() {
    let s = server(&[
        ("API_KEY", KEY),
        ("RATE_LIMIT_PER_IP", "2"),
        ("RATE_LIMIT_WINDOW_MS", "60000"),
    ]);
    for remaining in [1, 0] {
        let r = chat_as(s.addr, &bearer("sk-cca-guess-guess-guess"));
        assert_eq!(r.status, 401);
        assert_eq!(num(&r, "X-RateLimit-Remaining"), remaining);
    }
    let r = chat_as(s.addr, &bearer(KEY));
    assert_error(&r, 429, "rate_limit_error", "rate_limit_exceeded");
    assert!((59..=60).contains(&num(&r, "Retry-After")));
}

#[test]
fn a_zero_limit_disables_it() {
    let s = server(&[
        ("RATE_LIMIT_PER_IP", "0"),
        ("RATE_LIMIT_WINDOW_MS", "60000"),
    ]);
    for _ in 0..20 {
        let r = chat(s.addr, &[], BODY);
        assert!(reached_backend(&r));
        assert!(r.header("X-RateLimit-Limit").is_none());
    }
    assert_eq!(s.app().limiter.tracked_clients(), 0);
}

#[test]
fn x_forwarded_for_is_honoured_only_behind_a_trusted_proxy() {
    let limits = [
        ("RATE_LIMIT_PER_IP", "1"),
        ("RATE_LIMIT_WINDOW_MS", "60000"),
    ];
    let from = |addr, ip| chat(addr, &[("X-Forwarded-For", ip)], BODY);

    let direct = server(&limits);
    assert!(reached_backend(&from(direct.addr, "203.0.113.1")));
    // A forged header does not make a new client.
    assert_eq!(from(direct.addr, "203.0.113.2").status, 429);
    assert_eq!(direct.app().limiter.tracked_clients(), 1);

    let mut trusted_pairs = limits.to_vec();
    trusted_pairs.push(("TRUST_PROXY", "true"));
    let proxied = server(&trusted_pairs);
    assert!(reached_backend(&from(proxied.addr, "203.0.113.1")));
    assert!(reached_backend(&from(
        proxied.addr,
        "203.0.113.2, 10.0.0.1"
    )));
    assert_eq!(from(proxied.addr, "203.0.113.1").status, 429);
    assert_eq!(proxied.app().limiter.tracked_clients(), 2);
}

#[test]
fn a_key_slot_is_released_after_each_response() {
    let s = server(&[("API_KEY", KEY), ("MAX_CONCURRENT_PER_KEY", "1")]);
    for _ in 0..5 {
        let r = chat_as(s.addr, &bearer(KEY));
        assert!(reached_backend(&r), "{}", r.text());
        assert_eq!(s.app().limiter.in_flight(&Secret::new(KEY)), 0);
    }
    let streamed = chat(
        s.addr,
        &[("Authorization", &bearer(KEY))],
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert!(reached_backend(&streamed));
    assert!(reached_backend(&chat_as(s.addr, &bearer(KEY))));
}

/// A request whose body is held back keeps its key's slot while the
/// server waits for the body. The body is padded past the 1 KB that
/// tiny_http reads ahead before it hands a request over.
struct HeldRequest(TcpStream);

fn padded_body() -> String {
    format!("{BODY}{}", " ".repeat(2048))
}

impl HeldRequest {
    fn open(addr: SocketAddr, key: &str) -> HeldRequest {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            padded_body().len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.flush().unwrap();
        HeldRequest(stream)
    }

    /// Sends the body and returns the status of the answer.
    fn finish(mut self) -> u16 {
        self.0.write_all(padded_body().as_bytes()).unwrap();
        let mut answer = String::new();
        self.0.read_to_string(&mut answer).unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

#[test]
fn a_busy_key_is_refused_until_its_request_ends() {
    let s = server(&[
        ("API_KEY", KEY),
        ("API_KEYS", ROTATED),
        ("MAX_CONCURRENT_PER_KEY", "1"),
    ]);
    let limiter = &s.app().limiter;
    let held = HeldRequest::open(s.addr, KEY);
    assert!(wait_until(Duration::from_secs(5), || limiter
        .in_flight(&Secret::new(KEY))
        == 1));

    let refused = chat_as(s.addr, &bearer(KEY));
    assert_error(&refused, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_eq!(num(&refused, "Retry-After"), 1);
    // Each key has its own slots.
    assert!(reached_backend(&chat_as(s.addr, &bearer(ROTATED))));

    assert_eq!(held.finish(), 503);
    assert_eq!(limiter.in_flight(&Secret::new(KEY)), 0);
    assert!(reached_backend(&chat_as(s.addr, &bearer(KEY))));
}

/// A refusal's `X-RateLimit-*` headers describe the limit that refused it;
/// answers it let through describe the per-IP window.
#[test]
fn each_refusal_carries_its_own_limits_headers() {
    let s = server(&[
        ("API_KEY", KEY),
        ("RATE_LIMIT_PER_IP", "50"),
        ("RATE_LIMIT_PER_SESSION", "2"),
        ("MAX_CONCURRENT_PER_KEY", "1"),
        ("CLAUDE_PATH", "/nonexistent/claude"),
    ]);
    let session = [
        ("Authorization", bearer(KEY)),
        (
            "X-Claude-Session-ID",
            "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c".to_string(),
        ),
    ];
    let session: Vec<(&str, &str)> = session.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let r = chat(s.addr, &session, BODY);
        assert_ne!(r.status, 429, "{}", r.text());
        assert_eq!(num(&r, "X-RateLimit-Limit"), 50);
    }
    let refused = chat(s.addr, &session, BODY);
    assert_error(&refused, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_eq!(num(&refused, "X-RateLimit-Limit"), 2);
    assert_eq!(num(&refused, "X-RateLimit-Remaining"), 0);
    let retry = num(&refused, "Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(num(&refused, "X-RateLimit-Reset") >= unix_now() + retry - 1);

    let held = HeldRequest::open(s.addr, KEY);
    let limiter = &s.app().limiter;
    assert!(wait_until(Duration::from_secs(5), || limiter
        .in_flight(&Secret::new(KEY))
        == 1));
    let refused = chat_as(s.addr, &bearer(KEY));
    assert_error(&refused, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_eq!(num(&refused, "X-RateLimit-Limit"), 1);
    assert_eq!(num(&refused, "X-RateLimit-Remaining"), 0);
    assert_eq!(num(&refused, "Retry-After"), 1);
    assert_eq!(held.finish(), 503);
}
