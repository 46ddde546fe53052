//! The OpenAI passthrough over real HTTP: the server in front of a fake
//! upstream that records what it received.

use std::time::{Duration, Instant};

use crate::support;
use crate::support::fake_openai::{Answer, FakeOpenAi, SseEnd};
use crate::support::{chat, KeepAlive, SseClient, TestServer};

const SERVER_KEY: &str = "sk-proj-serverkey000000000001";
const CLIENT_KEY: &str = "sk-proj-clientkey000000000002";
const API_KEY: &str = "sk-cca-proxyclientkey0001";
const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str =
    r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const COMPLETION: &str = "{\"id\":\"chatcmpl-1\",  \"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n";

/// Environment-style settings or request headers, as name/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

/// A server whose passthrough points at `fake`, with the server key set;
/// `extra` settings win over those.
fn server_for(fake: &FakeOpenAi, extra: &[(&str, &str)]) -> TestServer {
    let base = fake.base_url();
    let mut pairs = vec![
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", SERVER_KEY),
    ];
    pairs.extend_from_slice(extra);
    support::server_with(support::config_from(&pairs))
}

fn chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}"
    )
}

fn payload(event: &str) -> String {
    event.strip_prefix("data: ").unwrap().to_string()
}

/// Asserts an error body names neither a key nor the upstream's address.
fn assert_no_secrets(r: &support::HttpResponse, fake_addr: &str) {
    let text = r.text();
    for secret in [SERVER_KEY, CLIENT_KEY, API_KEY, fake_addr] {
        assert!(!text.contains(secret), "response leaks {secret}: {text}");
    }
}

#[test]
fn request_body_reaches_the_upstream_byte_for_byte() {
    let fake = FakeOpenAi::start(Answer::Json {
        status: 200,
        headers: vec![
            ("x-request-id".into(), "req_upstream_1".into()),
            ("x-ratelimit-limit-requests".into(), "500".into()),
            ("openai-processing-ms".into(), "42".into()),
            ("openai-organization".into(), "acme-corp".into()),
        ],
        body: COMPLETION.into(),
    });
    let srv = server_for(&fake, &[]);
    // Odd spacing, escapes, field order, a trailing number format and
    // fields this server has no model of: all must survive untouched.
    let body = "{ \"messages\" :[{\"role\":\"user\",\"content\":\"h\\u00e9llo\\n\"}],\n\t\"model\":\"gpt-4o\"  ,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}], \"x_unknown\": 1.50 }";
    let r = chat(srv.addr, &[], body);

    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), COMPLETION);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Backend-Mode"), Some("openai-passthrough"));
    assert_eq!(r.header("X-Upstream-Request-ID"), Some("req_upstream_1"));
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("500"));
    assert_eq!(r.header("openai-processing-ms"), Some("42"));
    assert_eq!(r.header("openai-organization"), None);
    let ids = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
        .count();
    assert_eq!(ids, 1, "{:?}", r.headers);

    let seen = fake.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.header("Content-Type"), Some("application/json"));
    assert_eq!(
        seen.header("Authorization"),
        Some(format!("Bearer {SERVER_KEY}").as_str())
    );
}

#[test]
fn upstream_errors_come_back_unchanged() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let srv = server_for(&fake, &[]);
    let rows: [(u16, &str, Pairs); 4] = [
        (
            400,
            r#"{"error":{"message":"Invalid 'messages': empty.","type":"invalid_request_error","param":"messages","code":null}}"#,
            &[],
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-proj-****0001.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            &[],
        ),
        (
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            &[
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "20s"),
                ("retry-after", "20"),
            ],
        ),
        (
            500,
            r#"{"error":{"message":"The server had an error.","type":"server_error","param":null,"code":null}}"#,
            &[],
        ),
    ];
    for (status, body, headers) in rows {
        fake.answer(Answer::Json {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        });
        for request in [BODY, STREAM_BODY] {
            let r = chat(srv.addr, &[], request);
            let what = format!("upstream {status}, request {request}");
            assert_eq!(r.status, status, "{what}");
            assert_eq!(r.text(), body, "{what}");
            assert_eq!(r.header("Content-Type"), Some("application/json"), "{what}");
            assert_eq!(
                r.header("X-Backend-Mode"),
                Some("openai-passthrough"),
                "{what}"
            );
            for (name, value) in headers {
                assert_eq!(r.header(name), Some(*value), "{what}: header {name}");
            }
        }
    }
}

#[test]
fn key_choice_and_headers_never_forwarded() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let server_auth = format!("Bearer {SERVER_KEY}");
    let client_auth = format!("Bearer {CLIENT_KEY}");
    let rows: [(&str, Pairs, bool, &str); 4] = [
        ("server key by default", &[], false, &server_auth),
        ("client key overrides", &[], true, &client_auth),
        (
            "client key ignored when not allowed",
            &[("ALLOW_CLIENT_OPENAI_KEY", "false")],
            true,
            &server_auth,
        ),
        (
            "client key alone",
            &[("OPENAI_API_KEY", "")],
            true,
            &client_auth,
        ),
    ];
    let proxy_auth = format!("Bearer {API_KEY}");
    for (name, settings, send_client_key, want) in rows {
        let mut extra = vec![("API_KEY", API_KEY)];
        extra.extend_from_slice(settings);
        let srv = server_for(&fake, &extra);
        let before = fake.requests().len();
        let mut headers = vec![
            ("Authorization", proxy_auth.as_str()),
            ("X-Claude-Code", "false"),
            ("X-Claude-Model-Hint", "opus"),
        ];
        if send_client_key {
            headers.push(("X-OpenAI-API-Key", CLIENT_KEY));
        }
        let r = chat(srv.addr, &headers, BODY);
        assert_eq!(r.status, 200, "{name}: {}", r.text());

        let seen = fake.requests().pop().unwrap();
        assert_eq!(fake.requests().len(), before + 1, "{name}");
        assert_eq!(seen.header("Authorization"), Some(want), "{name}");
        for (k, v) in &seen.headers {
            let k = k.to_ascii_lowercase();
            assert!(!v.contains(API_KEY), "{name}: proxy key forwarded in {k}");
            assert!(!k.starts_with("x-claude"), "{name}: {k} forwarded");
            assert_ne!(k, "x-openai-api-key", "{name}");
        }
    }
}

#[test]
fn organization_and_project_headers_are_forwarded() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let srv = server_for(&fake, &[]);
    let r = chat(
        srv.addr,
        &[
            ("OpenAI-Organization", "org-abc"),
            ("OpenAI-Project", "proj_xyz"),
        ],
        BODY,
    );
    assert_eq!(r.status, 200);
    let seen = fake.only_request();
    assert_eq!(seen.header("OpenAI-Organization"), Some("org-abc"));
    assert_eq!(seen.header("OpenAI-Project"), Some("proj_xyz"));
}

#[test]
fn an_overlong_client_key_is_refused() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let srv = server_for(&fake, &[]);
    let long = format!("sk-proj-{}", "x".repeat(250));
    let r = chat(srv.addr, &[("X-OpenAI-API-Key", &long)], BODY);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_header_value");
    assert_eq!(r.json()["error"]["param"], "X-OpenAI-API-Key");
    assert!(!r.text().contains(&long));
    assert!(fake.requests().is_empty());
}

#[test]
fn claude_code_false_with_a_session_header_still_goes_upstream() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let srv = server_for(&fake, &[]);
    let r = chat(
        srv.addr,
        &[
            ("X-Claude-Code", "false"),
            (
                "X-Claude-Session-ID",
                "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c",
            ),
        ],
        BODY,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Backend-Mode"), Some("openai-passthrough"));
    assert_eq!(r.header("X-Claude-Session-ID"), None);
    let seen = fake.only_request();
    assert!(seen.header("X-Claude-Session-ID").is_none());
    assert!(seen.header("X-Claude-Code").is_none());
}

#[test]
fn missing_key_and_disabled_passthrough_are_503() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let rows: [(&str, Pairs, Pairs, &str); 3] = [
        (
            "no server key, client keys off",
            &[("OPENAI_API_KEY", ""), ("ALLOW_CLIENT_OPENAI_KEY", "false")],
            &[("X-OpenAI-API-Key", CLIENT_KEY)],
            "passthrough_not_configured",
        ),
        (
            "no server key, no client key sent",
            &[("OPENAI_API_KEY", "")],
            &[],
            "passthrough_not_configured",
        ),
        (
            "disabled",
            &[("OPENAI_PASSTHROUGH_ENABLED", "false")],
            &[("X-OpenAI-API-Key", CLIENT_KEY)],
            "passthrough_disabled",
        ),
    ];
    for (name, settings, headers, code) in rows {
        let srv = server_for(&fake, settings);
        for body in [BODY, STREAM_BODY] {
            let r = chat(srv.addr, headers, body);
            assert_eq!((r.status, r.error_code().as_str()), (503, code), "{name}");
            assert_eq!(r.header("X-Backend-Mode"), Some("openai-passthrough"));
            assert_no_secrets(&r, &fake.addr().to_string());
        }
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn an_unreachable_upstream_is_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let refused = format!("http://{closed_addr}/v1");
    for (name, base) in [
        ("connection refused", refused.as_str()),
        ("no such host", "http://no-such-host.invalid/v1"),
    ] {
        let config = support::config_from(&[
            ("OPENAI_BASE_URL", base),
            ("OPENAI_API_KEY", SERVER_KEY),
            ("UPSTREAM_CONNECT_TIMEOUT_MS", "5000"),
        ]);
        let srv = support::server_with(config);
        for body in [BODY, STREAM_BODY] {
            let r = chat(srv.addr, &[], body);
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (502, "upstream_unreachable"),
                "{name}: {}",
                r.text()
            );
            assert_no_secrets(&r, &closed_addr.to_string());
            assert!(!r.text().contains("no-such-host"), "{name}");
        }
    }
}

#[test]
fn a_silent_upstream_is_504() {
    let fake = FakeOpenAi::start(Answer::Hang);
    let srv = server_for(
        &fake,
        &[
            ("UPSTREAM_TIMEOUT_MS", "300"),
            ("UPSTREAM_IDLE_TIMEOUT_MS", "300"),
        ],
    );
    for body in [BODY, STREAM_BODY] {
        let started = Instant::now();
        let r = chat(srv.addr, &[], body);
        let took = started.elapsed();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (504, "timeout"),
            "{body}"
        );
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("OpenAI upstream"));
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "took {took:?}"
        );
        assert_no_secrets(&r, &fake.addr().to_string());
    }
}

#[test]
fn redirects_are_never_followed() {
    let target = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let location = format!("{}/chat/completions", target.base_url());
    for status in [307, 308, 302] {
        let redirecting = FakeOpenAi::start(Answer::Redirect {
            status,
            location: location.clone(),
        });
        let srv = server_for(&redirecting, &[]);
        for body in [BODY, STREAM_BODY] {
            let r = chat(srv.addr, &[], body);
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (502, "backend_error"),
                "{status}: {}",
                r.text()
            );
            assert_eq!(r.header("Location"), None);
            assert_no_secrets(&r, &target.addr().to_string());
        }
        assert_eq!(redirecting.requests().len(), 2);
    }
    assert!(target.requests().is_empty(), "the redirect was followed");
}

#[test]
fn each_event_reaches_the_client_before_the_next_is_sent() {
    let (release, gate) = crossbeam_channel::unbounded();
    let events = [chunk("Hel"), chunk("lo"), chunk("!")];
    let fake = FakeOpenAi::start(Answer::Sse {
        events: events.to_vec(),
        gap: Duration::ZERO,
        gate: Some(gate),
        end: SseEnd::Done,
    });
    let srv = server_for(&fake, &[]);
    let mut client = SseClient::open(srv.addr, &[], STREAM_BODY);
    assert_eq!(client.status, 200);
    assert_eq!(client.header("Content-Type"), Some("text/event-stream"));
    assert_eq!(client.header("X-Backend-Mode"), Some("openai-passthrough"));
    // The fake sends event n+1 only after this test has seen event n.
    for event in &events {
        assert_eq!(client.next_data(), Some(payload(event)));
        release.send(()).unwrap();
    }
    assert_eq!(client.next_data().as_deref(), Some("[DONE]"));
    assert_eq!(client.next_data(), None);
}

#[test]
fn the_stream_head_arrives_before_the_first_event_exists() {
    let (release, gate) = crossbeam_channel::unbounded();
    // The empty first "event" is a bare blank line: the upstream has
    // answered but sent nothing to relay, and holds the real first event
    // until the test has seen the head.
    let fake = FakeOpenAi::start(Answer::Sse {
        events: vec![String::new(), chunk("late")],
        gap: Duration::ZERO,
        gate: Some(gate),
        end: SseEnd::Done,
    });
    let srv = server_for(&fake, &[]);
    let (opened_tx, opened_rx) = crossbeam_channel::bounded(1);
    let addr = srv.addr;
    let client = std::thread::spawn(move || {
        let mut client = SseClient::open(addr, &[], STREAM_BODY);
        opened_tx.send(client.status).unwrap();
        client.next_data()
    });
    let status = opened_rx.recv_timeout(Duration::from_secs(5));
    let _ = release.send(());
    assert_eq!(
        status,
        Ok(200),
        "no response head while the upstream was quiet"
    );
    assert_eq!(client.join().unwrap(), Some(payload(&chunk("late"))));
}

#[test]
fn stream_is_relayed_raw_with_exactly_one_done() {
    let usage = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
    let events = [
        chunk("Hi"),
        "event: message\r\ndata: {\"odd\" :  true}".to_string(),
        usage.to_string(),
    ];
    let fake = FakeOpenAi::start(Answer::Sse {
        events: events.to_vec(),
        gap: Duration::ZERO,
        gate: None,
        end: SseEnd::Done,
    });
    let srv = server_for(&fake, &[]);
    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let r = chat(srv.addr, &[], body);
    assert_eq!(r.status, 200);
    let expected = format!(
        "{}\n\n{}\n\n{}\n\ndata: [DONE]\n\n",
        events[0], events[1], events[2]
    );
    assert_eq!(r.text(), expected);
    assert_eq!(r.header("x-ratelimit-remaining-tokens"), Some("4000"));
    assert_eq!(r.header("X-Upstream-Request-ID"), Some("req_stream"));
    assert_eq!(fake.only_request().body, body.as_bytes());
}

#[test]
fn a_broken_upstream_stream_ends_with_an_error_event() {
    let fake = FakeOpenAi::start(Answer::Sse {
        events: vec![chunk("partial")],
        gap: Duration::ZERO,
        gate: None,
        end: SseEnd::DropConnection,
    });
    let srv = server_for(&fake, &[]);
    let data = SseClient::open(srv.addr, &[], STREAM_BODY).collect();
    assert_eq!(data.len(), 3, "{data:?}");
    assert_eq!(data[0], payload(&chunk("partial")));
    let error: serde_json::Value = serde_json::from_str(&data[1]).unwrap();
    assert_eq!(error["error"]["code"], "stream_error");
    assert_eq!(data[2], "[DONE]");
}

#[test]
fn a_stream_that_goes_quiet_ends_after_the_idle_limit() {
    // The gate is never opened: after one event the upstream says nothing.
    let (_hold, gate) = crossbeam_channel::unbounded::<()>();
    let fake = FakeOpenAi::start(Answer::Sse {
        events: vec![chunk("one"), chunk("never")],
        gap: Duration::ZERO,
        gate: Some(gate),
        end: SseEnd::Done,
    });
    let srv = server_for(&fake, &[("UPSTREAM_IDLE_TIMEOUT_MS", "300")]);
    let started = Instant::now();
    let data = SseClient::open(srv.addr, &[], STREAM_BODY).collect();
    let took = started.elapsed();
    assert_eq!(data.len(), 3, "{data:?}");
    assert_eq!(data[0], payload(&chunk("one")));
    assert!(data[1].contains("stream_error"), "{}", data[1]);
    assert_eq!(data[2], "[DONE]");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_stream_may_outlast_the_total_timeout_while_it_keeps_talking() {
    let events: Vec<String> = (0..5).map(|i| chunk(&i.to_string())).collect();
    let fake = FakeOpenAi::start(Answer::Sse {
        events: events.clone(),
        gap: Duration::from_millis(100),
        gate: None,
        end: SseEnd::Done,
    });
    let srv = server_for(
        &fake,
        &[
            ("UPSTREAM_TIMEOUT_MS", "200"),
            ("UPSTREAM_IDLE_TIMEOUT_MS", "2000"),
        ],
    );
    let data = SseClient::open(srv.addr, &[], STREAM_BODY).collect();
    let mut want: Vec<String> = events.iter().map(|e| payload(e)).collect();
    want.push("[DONE]".into());
    assert_eq!(data, want);
}

#[test]
fn a_client_that_leaves_closes_the_upstream_connection() {
    let fake = FakeOpenAi::start(Answer::Flood {
        gap: Duration::from_millis(10),
    });
    let srv = server_for(&fake, &[]);
    let mut client = SseClient::open(srv.addr, &[], STREAM_BODY);
    assert!(client.next_data().is_some());
    assert!(client.next_data().is_some());
    client.disconnect();
    assert!(
        fake.wait_write_failed(Duration::from_secs(1)),
        "the upstream kept streaming after the client left"
    );
}

#[test]
fn upstream_connections_are_kept_alive() {
    let fake = FakeOpenAi::start(Answer::json(200, COMPLETION));
    let srv = server_for(&fake, &[]);
    for _ in 0..3 {
        assert_eq!(chat(srv.addr, &[], BODY).status, 200);
    }
    let connections: Vec<usize> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0]);
}

#[test]
fn upstream_connections_are_kept_alive_after_a_stream() {
    let fake = FakeOpenAi::start(Answer::Sse {
        events: vec![chunk("Hi")],
        gap: Duration::ZERO,
        gate: None,
        end: SseEnd::Done,
    });
    let srv = server_for(&fake, &[]);
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    // One client connection: the server reads each next request only after
    // it has finished the last, the read of the upstream body's end (which
    // follows the client's [DONE]) included.
    let mut client = KeepAlive::open(srv.addr);
    for _ in 0..3 {
        let r = client.chat(&[], body);
        assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    }
    let connections: Vec<usize> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0]);
}

#[test]
fn health_reports_the_passthrough_state() {
    let rows: [(Pairs, &str); 4] = [
        (&[("OPENAI_API_KEY", SERVER_KEY)], "ok"),
        (&[], "ok"),
        (&[("ALLOW_CLIENT_OPENAI_KEY", "false")], "no_key"),
        (
            &[
                ("OPENAI_API_KEY", SERVER_KEY),
                ("OPENAI_PASSTHROUGH_ENABLED", "false"),
            ],
            "disabled",
        ),
    ];
    for (settings, want) in rows {
        let srv = support::server_with(support::config_from(settings));
        let r = support::get(srv.addr, "/health");
        assert_eq!(
            r.json()["checks"]["openai_passthrough"],
            want,
            "{settings:?}"
        );
    }
}
