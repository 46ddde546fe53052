//! The relay of every OpenAI route other than chat completions, and Claude
//! Code mode by base URL, over real HTTP: the server in front of a fake
//! upstream (tests/it/support/fake_openai.rs) that records what it
//! received.
//!
//! Passthrough (`/v1/...`):
//! - JSON POSTs to `/v1/embeddings` and `/v1/responses` reach the upstream
//!   with their method, path, query string, body bytes and headers, under
//!   the right key, and come back unchanged; upstream errors keep their
//!   status and body;
//! - a streamed `/v1/responses` answer arrives event by event, byte for
//!   byte, with no `data: [DONE]` added (and exactly one when the upstream
//!   sent one);
//! - a binary answer (`audio/mpeg`) comes back byte for byte with its
//!   content type and disposition; `DELETE /v1/files/{id}` is relayed;
//! - a multipart upload of a few MB arrives byte for byte with its boundary,
//!   and starts arriving before the client has finished sending it; a
//!   chunked upload arrives whole;
//! - `GET /v1/models/{id}` answers the Claude ids itself and relays others;
//! - the key and header rules on routes other than chat, server auth
//!   (`API_KEYS`) and the per-IP limit;
//! - every path traversal form is refused with 400 `invalid_path` before
//!   anything reaches the upstream;
//! - `PASSTHROUGH_MAX_BODY_BYTES`: 413 for a declared length over it, and a
//!   chunked body that grows over it never reaches the upstream whole;
//! - a redirect is 502, an unreachable upstream 502, a disabled relay 503.
//!
//! Claude Code mode by base URL (`/claude/v1/...`): chat completions with no
//! header (sessions continuing by `X-Claude-Session-ID`), the Claude model
//! list and ids, and 404 for everything else there.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support;
use crate::support::fake_openai::{Answer, FakeOpenAi, Recorded, SseEnd};
use crate::support::{request, wait_until, HttpResponse, SseClient, TestServer};

const SERVER_KEY: &str = "sk-proj-serverkey000000000001";
const CLIENT_KEY: &str = "sk-proj-clientkey000000000002";
const API_KEY: &str = "sk-cca-proxyclientkey0001";
const CLAUDE_MODELS: [&str; 3] = ["claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5"];

/// An embeddings request with odd spacing and field order: it must reach
/// the upstream untouched.
const EMBEDDINGS_BODY: &str = "{ \"input\" : [\"h\\u00e9llo\", \"world\"],\n\t\"model\":\"text-embedding-3-small\", \"encoding_format\":\"float\", \"dimensions\": 4 }";
const EMBEDDINGS_ANSWER: &str = "{\"object\":\"list\",  \"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.0023,-0.0093,0.0158,1e-05]},{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.1,0.2,0.3,0.4]}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}\n";
const RESPONSES_BODY: &str =
    r#"{"model":"gpt-4o","input":"Say hello","store":false,"x_unknown_field":{"kept":true}}"#;
const RESPONSES_ANSWER: &str = r#"{"id":"resp_abc","object":"response","created_at":1741476542,"status":"completed","model":"gpt-4o-2024-08-06","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello!","annotations":[]}]}],"usage":{"input_tokens":9,"output_tokens":3,"total_tokens":12}}"#;
const STREAM_BODY: &str = r#"{"model":"gpt-4o","input":"Say hello","stream":true}"#;
const FILE_DELETED: &str = r#"{"id":"file-abc","object":"file","deleted":true}"#;

/// Environment-style settings or request headers, as name/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

/// A server whose passthrough points at `fake`, with the server key set;
/// `extra` settings win over those.
fn server_for(fake: &FakeOpenAi, extra: Pairs) -> TestServer {
    let base = fake.base_url();
    let mut pairs = vec![
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", SERVER_KEY),
    ];
    pairs.extend_from_slice(extra);
    support::server_with(support::config_from(&pairs))
}

/// POST a JSON body to `path`, with extra headers.
fn post_json(addr: SocketAddr, path: &str, headers: Pairs, body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(addr, "POST", path, &all, body.as_bytes())
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// An answer the server itself gave with this status and error code.
fn assert_error(r: &HttpResponse, status: u16, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (status, code),
        "{what}: {}",
        r.text()
    );
}

/// The upstream's answer relayed: its status and bytes, and the mode.
fn assert_relayed(r: &HttpResponse, status: u16, body: &[u8], what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_same_bytes(&r.body, body, what);
    assert_eq!(
        r.header("X-Backend-Mode"),
        Some("openai-passthrough"),
        "{what}"
    );
}

/// Byte equality without printing megabytes when it fails.
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes instead of the {} sent, first difference at {first:?}; starts {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[..got.len().min(200)])
        );
    }
}

/// `n` bytes holding every byte value, CR, LF and NUL included, in no
/// repeating pattern a relay could get right by accident.
fn binary(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The upstream request carried none of what must stay on this server:
/// the server's client key, the client's OpenAI key header, `X-Claude-*`.
fn assert_nothing_private_forwarded(seen: &Recorded, what: &str) {
    for (k, v) in &seen.headers {
        let k = k.to_ascii_lowercase();
        assert!(
            !v.contains(API_KEY),
            "{what}: the API_KEYS key went up in {k}"
        );
        assert!(!k.starts_with("x-claude"), "{what}: {k} forwarded");
        assert_ne!(k, "x-openai-api-key", "{what}: the key header forwarded");
        assert_ne!(k, "cookie", "{what}: a header off the list forwarded");
    }
}

/// Writes raw bytes on a fresh connection and reads the answer; `None`
/// when the server closed (or reset) the connection without one.
fn exchange_raw(addr: SocketAddr, parts: &[&[u8]]) -> Option<HttpResponse> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for part in parts {
        // The server may answer and close before it has read everything.
        if stream.write_all(part).is_err() {
            break;
        }
    }
    let _ = stream.flush();
    let mut reader = BufReader::new(stream);
    match reader.fill_buf() {
        Ok(buf) if !buf.is_empty() => Some(support::read_response(&mut reader)),
        _ => None,
    }
}

/// A chunked request body: `pieces` as chunks, then the terminator.
fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------- JSON

#[test]
fn embeddings_and_responses_are_relayed_and_answered_unchanged() {
    let fake = FakeOpenAi::start(Answer::json(200, "{}"));
    let srv = server_for(&fake, &[]);
    let rows = [
        (
            "/v1/embeddings?x=1",
            "/v1/embeddings",
            Some("x=1"),
            EMBEDDINGS_BODY,
            EMBEDDINGS_ANSWER,
        ),
        (
            "/v1/responses",
            "/v1/responses",
            None,
            RESPONSES_BODY,
            RESPONSES_ANSWER,
        ),
        (
            "/v1/responses?include%5B%5D=file_search_call.results&api-version=2",
            "/v1/responses",
            Some("include%5B%5D=file_search_call.results&api-version=2"),
            RESPONSES_BODY,
            RESPONSES_ANSWER,
        ),
    ];
    for (i, (sent_path, path, query, body, answer)) in rows.into_iter().enumerate() {
        fake.answer(Answer::Json {
            status: 200,
            headers: vec![
                ("x-ratelimit-remaining-requests".into(), "99".into()),
                ("x-ratelimit-reset-tokens".into(), "6ms".into()),
            ],
            body: answer.into(),
        });
        let r = post_json(srv.addr, sent_path, &[("Accept", "application/json")], body);
        assert_relayed(&r, 200, answer.as_bytes(), sent_path);
        assert_eq!(
            r.header("Content-Type"),
            Some("application/json"),
            "{sent_path}"
        );
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("99"));
        assert_eq!(r.header("x-ratelimit-reset-tokens"), Some("6ms"));

        let requests = fake.requests();
        assert_eq!(requests.len(), i + 1, "{sent_path}: one upstream request");
        let seen = requests.last().unwrap();
        assert_eq!(
            (
                seen.method.as_str(),
                seen.path.as_str(),
                seen.query.as_deref()
            ),
            ("POST", path, query),
            "{sent_path}"
        );
        assert_same_bytes(&seen.body, body.as_bytes(), sent_path);
        assert_eq!(seen.header("Content-Type"), Some("application/json"));
        assert_eq!(
            seen.header("Content-Length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(seen.header("Accept"), Some("application/json"));
        assert_eq!(
            seen.header("Authorization"),
            Some(bearer(SERVER_KEY).as_str())
        );
    }
}

#[test]
fn upstream_errors_keep_their_status_and_body() {
    let fake = FakeOpenAi::start(Answer::json(200, "{}"));
    let srv = server_for(&fake, &[]);
    let not_found = r#"{"error":{"message":"No such File object: file-missing","type":"invalid_request_error","param":"id","code":null}}"#;
    fake.answer(Answer::json(404, not_found));
    let r = request(srv.addr, "GET", "/v1/files/file-missing", &[], b"");
    assert_relayed(&r, 404, not_found.as_bytes(), "upstream 404");

    let bad = r#"{"error":{"message":"Unsupported parameter: 'x_unknown_field'.","type":"invalid_request_error","param":"x_unknown_field","code":"unsupported_parameter"}}"#;
    fake.answer(Answer::Json {
        status: 400,
        headers: vec![("x-ratelimit-remaining-tokens".into(), "0".into())],
        body: bad.into(),
    });
    let r = post_json(srv.addr, "/v1/responses", &[], RESPONSES_BODY);
    assert_relayed(&r, 400, bad.as_bytes(), "upstream 400");
    assert_eq!(r.header("x-ratelimit-remaining-tokens"), Some("0"));
}

#[test]
fn a_get_with_a_query_string_is_relayed() {
    let list = r#"{"object":"list","data":[],"has_more":false}"#;
    let fake = FakeOpenAi::start(Answer::json(200, list));
    let srv = server_for(&fake, &[]);
    let r = request(
        srv.addr,
        "GET",
        "/v1/files?purpose=batch&limit=2&order=desc",
        &[],
        b"",
    );
    assert_relayed(&r, 200, list.as_bytes(), "GET /v1/files");
    let seen = fake.only_request();
    assert_eq!(
        (
            seen.method.as_str(),
            seen.path.as_str(),
            seen.query.as_deref()
        ),
        ("GET", "/v1/files", Some("purpose=batch&limit=2&order=desc"))
    );
    assert!(seen.body.is_empty());
}

// ----------------------------------------------------------------- SSE

/// Events as the Responses API writes them: an `event:` line, a `data:`
/// line, a comment, and no `[DONE]` at the end.
fn responses_events() -> Vec<String> {
    vec![
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}".into(),
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"delta\":\"Hel\"}".into(),
        ": keep-alive".into(),
        "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",  \"sequence_number\":2,\"item_id\":\"msg_1\",\"delta\":\"lo \\u00e9\"}".into(),
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\"}}".into(),
    ]
}

fn stream_of(events: &[String], end: SseEnd) -> Answer {
    Answer::Sse {
        events: events.to_vec(),
        gap: Duration::ZERO,
        gate: None,
        end,
    }
}

#[test]
fn a_responses_stream_is_relayed_byte_for_byte_with_no_done_added() {
    let events = responses_events();
    let fake = FakeOpenAi::start(stream_of(&events, SseEnd::Close));
    let srv = server_for(&fake, &[]);
    let r = post_json(
        srv.addr,
        "/v1/responses",
        &[("Accept", "text/event-stream")],
        STREAM_BODY,
    );
    let expected: String = events.iter().map(|e| format!("{e}\n\n")).collect();
    assert_relayed(&r, 200, expected.as_bytes(), "responses stream");
    assert!(!r.text().contains("[DONE]"), "a [DONE] was added");
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        r.header("Content-Type")
    );
    assert_eq!(r.header("x-ratelimit-remaining-tokens"), Some("4000"));
    let seen = fake.only_request();
    assert_eq!(seen.path, "/v1/responses");
    assert_same_bytes(&seen.body, STREAM_BODY.as_bytes(), "stream request");
    assert_eq!(seen.header("Accept"), Some("text/event-stream"));
}

#[test]
fn a_stream_that_ends_with_done_has_exactly_one() {
    let events = responses_events();
    let fake = FakeOpenAi::start(stream_of(&events, SseEnd::Done));
    let srv = server_for(&fake, &[]);
    let r = post_json(srv.addr, "/v1/responses", &[], STREAM_BODY);
    let mut expected: String = events.iter().map(|e| format!("{e}\n\n")).collect();
    expected.push_str("data: [DONE]\n\n");
    assert_relayed(&r, 200, expected.as_bytes(), "stream with [DONE]");
    assert_eq!(r.text().matches("[DONE]").count(), 1);
}

#[test]
fn each_responses_event_reaches_the_client_before_the_next_is_sent() {
    let (release, gate) = crossbeam_channel::unbounded();
    let events = vec![
        "event: response.created\ndata: {\"n\":0}".to_string(),
        "event: response.output_text.delta\ndata: {\"n\":1}".to_string(),
        "event: response.completed\ndata: {\"n\":2}".to_string(),
    ];
    let fake = FakeOpenAi::start(Answer::Sse {
        events: events.clone(),
        gap: Duration::ZERO,
        gate: Some(gate),
        end: SseEnd::Close,
    });
    let srv = server_for(&fake, &[]);
    let mut client = SseClient::open_at(srv.addr, "/v1/responses", &[], STREAM_BODY);
    assert_eq!(client.status, 200);
    assert_eq!(client.header("X-Backend-Mode"), Some("openai-passthrough"));
    // The fake sends event n+1 only after this test has seen event n.
    for n in 0..events.len() {
        assert_eq!(client.next_data(), Some(format!("{{\"n\":{n}}}")));
        release.send(()).unwrap();
    }
    assert_eq!(client.next_data(), None, "nothing after the last event");
}

// ------------------------------------------------- binary, DELETE, upload

#[test]
fn a_binary_answer_comes_back_byte_for_byte() {
    let audio = binary(300_000);
    let fake = FakeOpenAi::start(Answer::Bytes {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "audio/mpeg".into()),
            (
                "Content-Disposition".into(),
                "attachment; filename=\"speech.mp3\"".into(),
            ),
            ("x-ratelimit-remaining-requests".into(), "42".into()),
        ],
        body: audio.clone(),
    });
    let srv = server_for(&fake, &[]);
    let body = r#"{"model":"gpt-4o-mini-tts","input":"Hello there","voice":"alloy"}"#;
    let r = post_json(srv.addr, "/v1/audio/speech", &[], body);
    assert_relayed(&r, 200, &audio, "audio/speech");
    assert_eq!(r.header("Content-Type"), Some("audio/mpeg"));
    assert_eq!(
        r.header("Content-Disposition"),
        Some("attachment; filename=\"speech.mp3\"")
    );
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("42"));
    let seen = fake.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/audio/speech")
    );
    assert_same_bytes(&seen.body, body.as_bytes(), "speech request");
}

#[test]
fn a_download_larger_than_any_buffer_is_copied_through_whole() {
    // 40 MB: over the 32 MB a chat answer may have; a file's contents are
    // copied to the client as they arrive, not held.
    let contents = binary(40 * 1024 * 1024);
    let fake = FakeOpenAi::start(Answer::Bytes {
        status: 200,
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        body: contents.clone(),
    });
    let srv = server_for(&fake, &[]);
    let r = request(srv.addr, "GET", "/v1/files/file-abc/content", &[], b"");
    assert_relayed(&r, 200, &contents, "file content");
}

#[test]
fn delete_a_file_is_relayed() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_DELETED));
    let srv = server_for(&fake, &[]);
    let r = request(srv.addr, "DELETE", "/v1/files/file-abc", &[], b"");
    assert_relayed(&r, 200, FILE_DELETED.as_bytes(), "DELETE");
    let seen = fake.only_request();
    assert_eq!(
        (
            seen.method.as_str(),
            seen.path.as_str(),
            seen.query.as_deref()
        ),
        ("DELETE", "/v1/files/file-abc", None)
    );
    assert!(seen.body.is_empty());
    assert_eq!(
        seen.header("Authorization"),
        Some(bearer(SERVER_KEY).as_str())
    );
}

const BOUNDARY: &str = "----cca-relay-boundary-7d3f0a";

/// A `files.create`-style multipart body around `file`.
fn multipart(file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

const FILE_OBJECT: &str = r#"{"id":"file-xyz","object":"file","bytes":3145728,"created_at":1741476542,"filename":"data.bin","purpose":"assistants"}"#;

#[test]
fn a_multipart_upload_arrives_byte_for_byte() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_OBJECT));
    let srv = server_for(&fake, &[]);
    let body = multipart(&binary(3 * 1024 * 1024));
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let r = request(
        srv.addr,
        "POST",
        "/v1/files",
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_relayed(&r, 200, FILE_OBJECT.as_bytes(), "upload");
    let seen = fake.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/files")
    );
    assert!(seen.complete);
    assert_same_bytes(&seen.body, &body, "uploaded body");
    assert_eq!(seen.header("Content-Type"), Some(content_type.as_str()));
    assert_eq!(
        seen.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
}

#[test]
fn an_upload_reaches_the_upstream_before_the_client_has_sent_it_all() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_OBJECT));
    let srv = server_for(&fake, &[]);
    let body = multipart(&binary(4 * 1024 * 1024));
    let head = format!(
        "POST /v1/files HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(srv.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let first = 1024 * 1024;
    stream.write_all(&body[..first]).unwrap();
    // A server that buffered the whole body would send nothing yet.
    let streamed = wait_until(Duration::from_secs(5), || fake.body_bytes_received() > 0);
    // A server that refused the upload may have closed already: its answer
    // tells why.
    let _ = stream.write_all(&body[first..]);
    let r = support::read_response(&mut BufReader::new(stream));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        streamed,
        "the upstream got no byte of the body while the client held back 3 MB of it"
    );
    assert_same_bytes(&fake.only_request().body, &body, "streamed upload");
}

#[test]
fn a_chunked_upload_is_relayed_whole() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_OBJECT));
    let srv = server_for(&fake, &[]);
    let file = binary(200_000);
    let body = multipart(&file);
    let (a, b) = body.split_at(70_000);
    let (b, c) = b.split_at(100_000);
    let head = format!(
        "POST /v1/files HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let r = exchange_raw(srv.addr, &[head.as_bytes(), &chunked(&[a, b, c])])
        .expect("an answer to a chunked upload");
    assert_relayed(&r, 200, FILE_OBJECT.as_bytes(), "chunked upload");
    let seen = fake.only_request();
    assert!(seen.complete);
    assert_same_bytes(&seen.body, &body, "chunked upload body");
    assert_eq!(
        seen.header("Content-Type"),
        Some(format!("multipart/form-data; boundary={BOUNDARY}").as_str())
    );
}

// -------------------------------------------------------------- models

#[test]
fn models_retrieve_relays_other_ids_and_answers_claude_ids_itself() {
    let gpt = r#"{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"}"#;
    let fake = FakeOpenAi::start(Answer::json(200, gpt));
    let srv = server_for(&fake, &[]);

    let r = request(srv.addr, "GET", "/v1/models/gpt-4o", &[], b"");
    assert_relayed(&r, 200, gpt.as_bytes(), "models.retrieve gpt-4o");
    let seen = fake.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v1/models/gpt-4o")
    );
    assert_eq!(
        seen.header("Authorization"),
        Some(bearer(SERVER_KEY).as_str())
    );

    let deleted = r#"{"id":"ft:gpt-4o-mini:acme::abc123","object":"model","deleted":true}"#;
    fake.answer(Answer::json(200, deleted));
    let r = request(
        srv.addr,
        "DELETE",
        "/v1/models/ft:gpt-4o-mini:acme::abc123",
        &[],
        b"",
    );
    assert_relayed(&r, 200, deleted.as_bytes(), "models.delete");
    let seen = fake.requests().pop().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("DELETE", "/v1/models/ft:gpt-4o-mini:acme::abc123")
    );

    let before = fake.requests().len();
    for id in CLAUDE_MODELS {
        let r = request(srv.addr, "GET", &format!("/v1/models/{id}"), &[], b"");
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"id": id, "object": "model", "created": 1700000000, "owned_by": "anthropic"}),
            "{id}"
        );
    }
    let list = support::get(srv.addr, "/v1/models");
    assert_eq!(list.status, 200);
    let ids: Vec<String> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, CLAUDE_MODELS, "GET /v1/models is unchanged");
    assert_eq!(fake.requests().len(), before, "a Claude id went upstream");
}

// ------------------------------------------------- keys, headers, auth

#[test]
fn key_choice_and_header_rules_hold_off_the_chat_route() {
    let fake = FakeOpenAi::start(Answer::json(200, EMBEDDINGS_ANSWER));
    let server_auth = bearer(SERVER_KEY);
    let client_auth = bearer(CLIENT_KEY);
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
    let proxy_auth = bearer(API_KEY);
    for (name, settings, send_client_key, want) in rows {
        let mut extra = vec![("API_KEYS", API_KEY)];
        extra.extend_from_slice(settings);
        let srv = server_for(&fake, &extra);
        let mut headers = vec![
            ("Authorization", proxy_auth.as_str()),
            ("Accept", "application/json"),
            ("OpenAI-Organization", "org-abc"),
            ("OpenAI-Project", "proj_xyz"),
            ("OpenAI-Beta", "assistants=v2"),
            ("X-Claude-Code", "false"),
            ("X-Claude-Model-Hint", "opus"),
            ("Cookie", "session=private"),
        ];
        if send_client_key {
            headers.push(("X-OpenAI-API-Key", CLIENT_KEY));
        }
        let requests = [
            ("POST", "/v1/embeddings", EMBEDDINGS_BODY.as_bytes()),
            ("DELETE", "/v1/files/file-abc", b"".as_slice()),
            ("GET", "/v1/models/gpt-4o", b"".as_slice()),
        ];
        for (method, path, body) in requests {
            let what = format!("{name}, {method} {path}");
            let before = fake.requests().len();
            let mut all = headers.clone();
            if !body.is_empty() {
                all.push(("Content-Type", "application/json"));
            }
            let r = request(srv.addr, method, path, &all, body);
            assert_eq!(r.status, 200, "{what}: {}", r.text());
            let requests = fake.requests();
            assert_eq!(requests.len(), before + 1, "{what}");
            let seen = requests.last().unwrap();
            assert_eq!(seen.header("Authorization"), Some(want), "{what}");
            assert_eq!(
                seen.header("OpenAI-Organization"),
                Some("org-abc"),
                "{what}"
            );
            assert_eq!(seen.header("OpenAI-Project"), Some("proj_xyz"), "{what}");
            assert_eq!(seen.header("OpenAI-Beta"), Some("assistants=v2"), "{what}");
            assert_eq!(seen.header("Accept"), Some("application/json"), "{what}");
            assert_nothing_private_forwarded(seen, &what);
        }
    }
}

#[test]
fn relayed_routes_need_the_servers_api_key() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_DELETED));
    let srv = server_for(&fake, &[("API_KEYS", API_KEY)]);
    let routes: [(&str, &str, &[u8]); 4] = [
        ("POST", "/v1/embeddings", EMBEDDINGS_BODY.as_bytes()),
        ("POST", "/v1/responses", RESPONSES_BODY.as_bytes()),
        ("DELETE", "/v1/files/file-abc", b""),
        ("GET", "/v1/models/gpt-4o", b""),
    ];
    let wrong = bearer("sk-cca-not-a-real-key-99");
    for (method, path, body) in routes {
        let what = format!("{method} {path}");
        let json = [("Content-Type", "application/json")];
        let r = request(srv.addr, method, path, &json, body);
        assert_error(&r, 401, "missing_api_key", &what);
        let r = request(
            srv.addr,
            method,
            path,
            &[json[0], ("Authorization", wrong.as_str())],
            body,
        );
        assert_error(&r, 401, "invalid_api_key", &what);
        // A client's OpenAI key is no way past this server's own auth.
        let r = request(
            srv.addr,
            method,
            path,
            &[json[0], ("X-OpenAI-API-Key", CLIENT_KEY)],
            body,
        );
        assert_error(&r, 401, "missing_api_key", &what);
    }
    assert!(
        fake.requests().is_empty(),
        "an unauthenticated request went up"
    );

    let r = request(
        srv.addr,
        "DELETE",
        "/v1/files/file-abc",
        &[("Authorization", &bearer(API_KEY))],
        b"",
    );
    assert_relayed(&r, 200, FILE_DELETED.as_bytes(), "with the key");
}

#[test]
fn the_per_ip_limit_counts_relayed_requests() {
    let fake = FakeOpenAi::start(Answer::json(200, EMBEDDINGS_ANSWER));
    let srv = server_for(
        &fake,
        &[
            ("RATE_LIMIT_PER_IP", "2"),
            ("RATE_LIMIT_WINDOW_MS", "60000"),
        ],
    );
    for _ in 0..2 {
        let r = post_json(srv.addr, "/v1/embeddings", &[], EMBEDDINGS_BODY);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = post_json(srv.addr, "/v1/embeddings", &[], EMBEDDINGS_BODY);
    assert_error(&r, 429, "rate_limit_exceeded", "third request");
    assert_eq!(fake.requests().len(), 2);
}

// ---------------------------------------------------------- path checks

#[test]
fn every_traversal_form_is_refused_and_nothing_reaches_the_upstream() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_DELETED));
    let srv = server_for(&fake, &[]);
    // The control: the same server does relay a clean path.
    let ok = request(srv.addr, "GET", "/v1/files/file-abc", &[], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(fake.requests().len(), 1);

    let paths = [
        "/v1/../admin",
        "/v1/files/../../secrets",
        "/v1/files/..",
        "/v1/..",
        "/v1/./files",
        "/v1/files/.",
        "/v1/files/./file-abc",
        "/v1//files",
        "/v1/files//file-abc",
        "/v1/files/%2e%2e/admin",
        "/v1/files/%2E%2E/admin",
        "/v1/files/.%2e/admin",
        "/v1/%2e/files",
        "/v1/%2E/files",
        "/v1/files/file%2eabc",
        "/v1/files%2f..%2fadmin",
        "/v1/files%2Fadmin",
        "/v1/files/%5c..%5cadmin",
        "/v1/files%5Cadmin",
        "/v1/files\\..\\admin",
        "/v1/files\\admin",
        "/v1/embeddings/..?x=1",
    ];
    // Raw request lines: no client library gets a chance to normalise them.
    for (i, path) in paths.iter().enumerate() {
        let (method, body): (&str, &[u8]) = match i % 3 {
            0 => ("GET", b""),
            1 => ("POST", EMBEDDINGS_BODY.as_bytes()),
            _ => ("DELETE", b""),
        };
        let what = format!("{method} {path}");
        let r = request(
            srv.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        );
        assert_error(&r, 400, "invalid_path", &what);
    }
    assert_eq!(
        fake.requests().len(),
        1,
        "a refused path reached the upstream: {:?}",
        fake.requests()
            .iter()
            .skip(1)
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
}

// ------------------------------------------------------------ body limit

#[test]
fn a_declared_length_over_the_limit_is_413_at_once() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_OBJECT));
    let srv = server_for(&fake, &[("PASSTHROUGH_MAX_BODY_BYTES", "1024")]);

    // Only the head is sent: the answer must not wait for the body.
    let head = "POST /v1/files HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                Content-Type: application/octet-stream\r\nContent-Length: 1025\r\n\r\n";
    let r = exchange_raw(srv.addr, &[head.as_bytes()]).expect("an answer to the head");
    assert_error(&r, 413, "payload_too_large", "1025 bytes declared");

    let head = "POST /v1/files HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                Content-Type: application/octet-stream\r\nContent-Length: 600000000\r\n\r\n";
    let r = exchange_raw(srv.addr, &[head.as_bytes()]).expect("an answer to the head");
    assert_error(&r, 413, "payload_too_large", "600 MB declared");
    assert!(fake.requests().is_empty(), "an oversized body was relayed");

    // Exactly the limit passes.
    let body = binary(1024);
    let r = request(
        srv.addr,
        "POST",
        "/v1/files",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_relayed(&r, 200, FILE_OBJECT.as_bytes(), "1024 bytes");
    assert_same_bytes(&fake.only_request().body, &body, "body at the limit");
}

#[test]
fn a_chunked_body_over_the_limit_never_reaches_the_upstream_whole() {
    let fake = FakeOpenAi::start(Answer::json(200, FILE_OBJECT));
    let srv = server_for(&fake, &[("PASSTHROUGH_MAX_BODY_BYTES", "1024")]);
    let head = "POST /v1/files HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let piece = binary(512);
    let body = chunked(&[piece.as_slice(); 8]);
    // No answer at all (the connection closed) is a refusal too.
    if let Some(r) = exchange_raw(srv.addr, &[head.as_bytes(), &body]) {
        assert_error(&r, 413, "payload_too_large", "4 KB chunked");
    }
    // Give a relay that would finish the request late the time to do so.
    let whole = wait_until(Duration::from_millis(500), || {
        fake.requests().iter().any(|r| r.complete)
    });
    assert!(!whole, "the upstream got the whole oversized body");
}

// -------------------------------------------------------------- failures

#[test]
fn a_redirect_is_502_and_never_followed() {
    let target = FakeOpenAi::start(Answer::json(200, EMBEDDINGS_ANSWER));
    let location = format!("{}/embeddings", target.base_url());
    for status in [301, 302, 307, 308] {
        let redirecting = FakeOpenAi::start(Answer::Redirect {
            status,
            location: location.clone(),
        });
        let srv = server_for(&redirecting, &[]);
        let r = post_json(srv.addr, "/v1/embeddings", &[], EMBEDDINGS_BODY);
        assert_error(&r, 502, "backend_error", &format!("POST, {status}"));
        assert_eq!(r.header("Location"), None);
        let r = request(srv.addr, "GET", "/v1/files/file-abc", &[], b"");
        assert_error(&r, 502, "backend_error", &format!("GET, {status}"));
        assert_eq!(redirecting.requests().len(), 2);
    }
    assert!(target.requests().is_empty(), "the redirect was followed");
}

#[test]
fn an_unreachable_upstream_is_502_and_a_disabled_relay_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let srv = support::server_with(support::config_from(&[
        ("OPENAI_BASE_URL", &format!("http://{closed_addr}/v1")),
        ("OPENAI_API_KEY", SERVER_KEY),
    ]));
    let r = post_json(srv.addr, "/v1/embeddings", &[], EMBEDDINGS_BODY);
    assert_error(&r, 502, "upstream_unreachable", "refused");
    assert!(!r.text().contains(&closed_addr.to_string()));
    let r = request(srv.addr, "DELETE", "/v1/files/file-abc", &[], b"");
    assert_error(&r, 502, "upstream_unreachable", "refused DELETE");

    let fake = FakeOpenAi::start(Answer::json(200, EMBEDDINGS_ANSWER));
    let srv = server_for(&fake, &[("OPENAI_PASSTHROUGH_ENABLED", "false")]);
    let r = post_json(srv.addr, "/v1/embeddings", &[], EMBEDDINGS_BODY);
    assert_error(&r, 503, "passthrough_disabled", "disabled");
    let r = request(srv.addr, "GET", "/v1/models/gpt-4o", &[], b"");
    assert_error(&r, 503, "passthrough_disabled", "disabled models.retrieve");
    assert!(fake.requests().is_empty());
}

// ------------------------------------------------------- /claude/v1/

/// A server whose `claude` is the fake CLI and whose passthrough points at
/// `fake` (which must then see nothing).
fn claude_server(fake: &FakeOpenAi) -> TestServer {
    let base = fake.base_url();
    let (srv, _records) = support::server_with_fake_cli(&[
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", SERVER_KEY),
        ("ANTHROPIC_API_KEY", "sk-ant-test-key-1234567890"),
    ]);
    srv
}

fn content(r: &HttpResponse) -> String {
    r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {}", r.text()))
        .to_string()
}

#[test]
fn chat_under_claude_v1_is_claude_code_mode_without_a_header() {
    let fake = FakeOpenAi::start(Answer::json(200, "{}"));
    let srv = claude_server(&fake);
    let path = "/claude/v1/chat/completions";
    let first =
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "hello there"}]});
    let r = post_json(srv.addr, path, &[], &first.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Backend-Mode"), Some("claude-code"));
    assert_eq!(r.header("X-Claude-Session-Created"), Some("true"));
    assert_eq!(r.json()["object"], "chat.completion");
    assert_eq!(
        content(&r),
        "model=sonnet turns=1 system=no prompt_chars=11"
    );
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();

    // The session header continues the conversation here as on /v1.
    let next = json!({"model": "sonnet", "messages": [{"role": "user", "content": "and now?"}]});
    let r = post_json(
        srv.addr,
        path,
        &[("X-Claude-Session-ID", &sid)],
        &next.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Backend-Mode"), Some("claude-code"));
    assert_eq!(r.header("X-Claude-Session-ID"), Some(sid.as_str()));
    assert_eq!(r.header("X-Claude-Session-Created"), None);
    assert!(content(&r).contains("turns=2"), "{}", content(&r));

    // Streaming too.
    let stream =
        json!({"model": "sonnet", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let client = SseClient::open_at(srv.addr, path, &[], &stream.to_string());
    assert_eq!(client.status, 200);
    assert_eq!(client.header("X-Backend-Mode"), Some("claude-code"));
    let data = client.collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let first_chunk: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first_chunk["object"], "chat.completion.chunk");

    assert!(fake.requests().is_empty(), "Claude mode went to OpenAI");
}

#[test]
fn models_under_claude_v1_are_the_claude_models() {
    let fake = FakeOpenAi::start(Answer::json(200, "{}"));
    let srv = claude_server(&fake);
    let list = support::get(srv.addr, "/claude/v1/models");
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, CLAUDE_MODELS);

    for id in CLAUDE_MODELS {
        let r = support::get(srv.addr, &format!("/claude/v1/models/{id}"));
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"id": id, "object": "model", "created": 1700000000, "owned_by": "anthropic"})
        );
    }
    let r = support::get(srv.addr, "/claude/v1/models/gpt-4o");
    assert_error(&r, 404, "model_not_found", "gpt-4o under /claude/v1");
    assert!(fake.requests().is_empty());
}

#[test]
fn other_paths_under_claude_v1_are_404() {
    let fake = FakeOpenAi::start(Answer::json(200, "{}"));
    let srv = claude_server(&fake);
    let rows: [(&str, &str, &[u8]); 4] = [
        ("POST", "/claude/v1/embeddings", EMBEDDINGS_BODY.as_bytes()),
        ("GET", "/claude/v1/responses/resp_1/input_items", b""),
        ("GET", "/claude/v1/files", b""),
        ("DELETE", "/claude/v1/files/file-abc", b""),
    ];
    for (method, path, body) in rows {
        let r = request(
            srv.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        );
        assert_error(&r, 404, "not_found", &format!("{method} {path}"));
    }
    assert!(fake.requests().is_empty(), "a /claude/v1 path was relayed");
}
