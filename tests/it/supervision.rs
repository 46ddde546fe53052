//! Process supervision with the fake CLI: the pool and its queue,
//! deadlines and the SIGTERM → SIGKILL escalation, process groups, output
//! limits and client disconnects. Every test checks no child is left.
//!
//! These are the rules for a child that is not kept warm (`WARM_SESSIONS=0`,
//! and every child once it cannot be reused); tests/it/warm.rs has the
//! ones for warm children, which are interrupted rather than stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

struct Setup {
    server: TestServer,
    records: PathBuf,
}

fn start(extra: &[(&str, &str)]) -> Setup {
    let mut settings = vec![("WARM_SESSIONS", "0")];
    settings.extend_from_slice(extra);
    let (server, records) = server_with_fake_cli(&settings);
    Setup { server, records }
}

impl Setup {
    fn pids(&self) -> Vec<i32> {
        std::fs::read_dir(&self.records)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(pid) = name.strip_suffix(".json") {
                    return pid.parse().ok();
                }
                if name.starts_with("grandchild-") {
                    return std::fs::read_to_string(e.path()).ok()?.trim().parse().ok();
                }
                None
            })
            .collect()
    }

    fn capacity(&self) -> Value {
        get(self.server.addr, "/health").json()["checks"]["capacity"].clone()
    }

    /// Every process the fake CLI reported is gone and nothing is active.
    fn assert_nothing_left(&self) {
        let pids = self.pids();
        assert!(
            wait_until(Duration::from_secs(3), || pids
                .iter()
                .all(|p| !process_alive(*p))),
            "processes left: {:?}",
            pids.iter()
                .filter(|p| process_alive(**p))
                .collect::<Vec<_>>()
        );
        assert!(wait_until(Duration::from_secs(2), || self.capacity()
            ["active"]
            == 0));
        assert_eq!(self.server.app().claude.live_children(), 0);
    }
}

fn body(user: &str, stream: bool) -> String {
    json!({"model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": user}]})
        .to_string()
}

#[test]
fn full_pool_queues_then_refuses_with_retry_after() {
    let s = start(&[
        ("MAX_CONCURRENT_PROCESSES", "1"),
        ("POOL_QUEUE_TIMEOUT_MS", "200"),
    ]);
    let addr = s.server.addr;
    let holder =
        std::thread::spawn(move || chat(addr, &[CLAUDE], &body("[[fake:sleep:1.5]]", false)));
    assert!(wait_until(Duration::from_secs(5), || s.capacity()
        ["active"]
        == 1));
    let r = chat(addr, &[CLAUDE], &body("hi", false));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "capacity_exceeded")
    );
    assert!(r.header("Retry-After").is_some());
    assert_eq!(holder.join().unwrap().status, 200);
    s.assert_nothing_left();
}

#[test]
fn queued_requests_run_in_order_when_slots_free() {
    let s = start(&[
        ("MAX_CONCURRENT_PROCESSES", "1"),
        ("POOL_QUEUE_TIMEOUT_MS", "10000"),
    ]);
    let addr = s.server.addr;
    let holder =
        std::thread::spawn(move || chat(addr, &[CLAUDE], &body("[[fake:sleep:0.5]]", false)));
    assert!(wait_until(Duration::from_secs(5), || s.capacity()
        ["active"]
        == 1));
    let mut waiters = Vec::new();
    for i in 0..3 {
        waiters.push(std::thread::spawn(move || {
            let r = chat(addr, &[CLAUDE], &body(&format!("[[fake:say]]w{i}"), false));
            (i, r.status, Instant::now())
        }));
        assert!(wait_until(Duration::from_secs(5), || s.capacity()
            ["queued"]
            == i + 1));
    }
    assert_eq!(holder.join().unwrap().status, 200);
    let mut done: Vec<(i32, u16, Instant)> =
        waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(done.iter().all(|(_, status, _)| *status == 200));
    done.sort_by_key(|(_, _, at)| *at);
    assert_eq!(
        done.iter().map(|(i, _, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    s.assert_nothing_left();
}

#[test]
fn timeout_answers_504_and_the_child_is_gone() {
    let s = start(&[("REQUEST_TIMEOUT_MS", "1000")]);
    let r = chat(s.server.addr, &[CLAUDE], &body("[[fake:sleep:30]]", false));
    assert_eq!((r.status, r.error_code().as_str()), (504, "timeout"));
    s.assert_nothing_left();
}

#[test]
fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
    // The timeout leaves the fake time to install its SIGTERM handler.
    let s = start(&[
        ("REQUEST_TIMEOUT_MS", "1000"),
        ("CLAUDE_KILL_GRACE_MS", "400"),
    ]);
    let started = Instant::now();
    let r = chat(
        s.server.addr,
        &[CLAUDE],
        &body("[[fake:ignore-term]]", false),
    );
    assert_eq!(r.status, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1350),
        "SIGKILL waited for the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    s.assert_nothing_left();
}

#[test]
fn grandchildren_die_with_the_cli() {
    let s = start(&[("REQUEST_TIMEOUT_MS", "2000")]);
    let r = chat(
        s.server.addr,
        &[CLAUDE],
        &body("[[fake:grandchild]]", false),
    );
    assert_eq!(r.status, 504);
    assert_eq!(s.pids().len(), 2, "fake and its grandchild recorded");
    s.assert_nothing_left();
}

#[test]
fn output_limits_stop_the_child() {
    let s = start(&[]);
    let r = chat(s.server.addr, &[CLAUDE], &body("[[fake:huge:20]]", false));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "output_limit_exceeded")
    );
    let r = chat(
        s.server.addr,
        &[CLAUDE],
        &body("[[fake:huge-stderr]]", false),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "output_limit_exceeded")
    );
    s.assert_nothing_left();
}

#[test]
fn a_client_that_leaves_mid_stream_frees_its_slot() {
    let s = start(&[]);
    let mut stream = SseClient::open(s.server.addr, &[CLAUDE], &body("[[fake:slow:150]]", true));
    assert_eq!(stream.status, 200);
    assert!(stream.next_data().is_some());
    stream.disconnect();
    let gone = Instant::now();
    assert!(wait_until(Duration::from_secs(2), || s.capacity()
        ["active"]
        == 0));
    assert!(
        gone.elapsed() < Duration::from_secs(1),
        "{:?}",
        gone.elapsed()
    );
    s.assert_nothing_left();
}

#[test]
fn slots_come_back_after_many_failures() {
    let s = start(&[("MAX_CONCURRENT_PROCESSES", "2")]);
    let addr = s.server.addr;
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let scenario = ["crash", "garbage", "stderr-exit", "replay:json-overload"][i % 4];
            std::thread::spawn(move || {
                chat(
                    addr,
                    &[CLAUDE],
                    &body(&format!("[[fake:{scenario}]]"), i % 2 == 1),
                )
                .status
            })
        })
        .collect();
    for t in threads {
        let status = t.join().unwrap();
        assert!(status >= 400, "{status}");
    }
    let capacity = s.capacity();
    assert_eq!(capacity["active"], 0);
    assert_eq!(capacity["queued"], 0);
    s.assert_nothing_left();
}
