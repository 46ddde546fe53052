//! The worker pool as a client meets it: probes are answered while every
//! worker holds a stream, a request that finds the workers busy and the
//! queue full is refused at once, and a drain with a full pool answers
//! everything it had taken in and leaves no CLI behind.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// A Claude stream that takes about three seconds: the fake CLI waits
/// 400 ms between its output lines.
fn slow_stream_body() -> String {
    json!({"model": "sonnet", "stream": true,
        "messages": [{"role": "user", "content": "[[fake:slow:400]]"}]})
    .to_string()
}

fn quick_body() -> String {
    json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

fn wait_for(limit: Duration, what: &str, check: impl FnMut() -> bool) {
    assert!(wait_until(limit, check), "timed out waiting: {what}");
}

#[test]
fn a_probe_is_answered_while_every_worker_holds_a_stream() {
    let (s, _records) = server_with_fake_cli(&[("WORKER_THREADS", "2")]);
    let handle = s.handle.as_ref().unwrap();
    let streams: Vec<SseClient> = (0..2)
        .map(|_| SseClient::open(s.addr, &[CLAUDE], &slow_stream_body()))
        .collect();
    assert!(streams.iter().all(|c| c.status == 200));
    assert_eq!(handle.busy_workers(), 2);

    let mut slowest = Duration::ZERO;
    for path in ["/health", "/v1/models"].repeat(5) {
        let started = Instant::now();
        let r = get(s.addr, path);
        slowest = slowest.max(started.elapsed());
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    assert!(
        slowest < Duration::from_millis(200),
        "slowest probe {slowest:?}"
    );
    // The probes did not wait for a worker, and the streams are still on.
    assert_eq!(handle.busy_workers(), 2);
    for stream in streams {
        let events = stream.collect();
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    }
}

#[test]
fn a_request_that_finds_the_queue_full_gets_429_with_retry_after() {
    // One worker and a queue of one.
    let (s, _records) = server_with_fake_cli(&[("WORKER_THREADS", "1")]);
    let handle = s.handle.as_ref().unwrap();
    let stream = SseClient::open(s.addr, &[CLAUDE], &slow_stream_body());
    assert_eq!(stream.status, 200);

    let addr = s.addr;
    let queued = std::thread::spawn(move || chat(addr, &[CLAUDE], &quick_body()));
    wait_for(Duration::from_secs(5), "a request queued", || {
        handle.in_flight() == 2
    });

    let started = Instant::now();
    let refused = chat(s.addr, &[CLAUDE], &quick_body());
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.error_code(), "capacity_exceeded");
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");
    assert_eq!(refused.header("Retry-After"), Some("1"));
    assert!(refused.header("X-Request-ID").is_some());

    // Nothing was lost: the stream and the queued request are answered.
    assert_eq!(stream.collect().last().map(String::as_str), Some("[DONE]"));
    let queued = queued.join().unwrap();
    assert_eq!(queued.status, 200, "{}", queued.text());
    wait_for(Duration::from_secs(5), "the pool at rest", || {
        handle.in_flight() == 0
    });
}

#[test]
fn a_drain_with_a_full_pool_answers_what_it_took_in_and_leaves_no_cli() {
    let (mut s, records) = server_with_fake_cli(&[("WORKER_THREADS", "1")]);
    let stream = SseClient::open(s.addr, &[CLAUDE], &slow_stream_body());
    assert_eq!(stream.status, 200);
    let addr = s.addr;
    let queued = std::thread::spawn(move || chat(addr, &[CLAUDE], &quick_body()));
    let handle = s.handle.take().unwrap();
    wait_for(Duration::from_secs(5), "a request queued", || {
        handle.in_flight() == 2
    });

    let report = std::thread::spawn(move || handle.shutdown(Duration::from_secs(5)));
    // The stream's CLI is stopped at the start of the drain: the stream
    // ends with an error event, then [DONE].
    let events = stream.collect();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events.iter().any(|e| e.contains("stream_error")),
        "{events:?}"
    );
    let queued = queued.join().unwrap();
    assert_eq!(queued.status, 503, "{}", queued.text());
    assert_eq!(queued.error_code(), "server_shutting_down");

    let report = report.join().unwrap();
    assert_eq!(report.abandoned, 0);
    let pids: Vec<i32> = std::fs::read_dir(&records)
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter_map(|v| v["pid"].as_i64())
        .map(|p| p as i32)
        .collect();
    assert!(!pids.is_empty());
    wait_for(Duration::from_secs(5), "no CLI left", || {
        pids.iter().all(|p| !process_alive(*p))
    });
}
