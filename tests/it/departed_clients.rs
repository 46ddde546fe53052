//! A client that leaves while its turn runs (a stop button, a closed
//! laptop, a timeout) frees its session within a second, even when the CLI
//! writes nothing meanwhile: the next turn on that session is served, on
//! the same warm process, instead of being refused `session_busy` until the
//! model would have finished. A session busy with a client that is still
//! there is refused at once, as before. With the fake CLI, whose `sleep`
//! directive is a model silent for that long (fixtures/fake-claude).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::warm::*;
use crate::support::*;

/// Sends a turn of session `sid` and leaves without reading anything.
fn ask_and_leave(w: &Warm, sid: &str, text: &str, stream: bool) {
    let body = json!({"model": "sonnet", "stream": stream, "messages": [user(text)]}).to_string();
    let mut socket = TcpStream::connect(w.addr()).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nX-Claude-Code: true\r\n\
         X-Claude-Session-ID: {sid}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(head.as_bytes()).unwrap();
    under_way(w, text);
}

/// Waits until the session's process has begun the turn asking `text`
/// (the fake CLI records a turn as it starts it).
fn under_way(w: &Warm, text: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || w
            .runs()
            .iter()
            .any(|r| r.value["prompt"] == text)),
        "the turn {text:?} never began"
    );
}

/// The next turn of `sid` once the client of the one before has gone: a
/// 200 on the same warm process, well before the silent model would have
/// said anything; and the turn that was left was interrupted.
fn next_turn_is_served(w: &Warm, sid: &str, left: &str) {
    let cli = w.run_of("first");
    let started = Instant::now();
    let next = w.say(Some(sid), "sonnet", "after the leaver");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    assert!(next.warm(), "the session's process was not kept");
    assert_eq!(w.run_of("after the leaver").pid, cli.pid);
    // The left prompt stays in the conversation, as with the real CLI.
    assert_eq!(next.turns(), 3, "{}", next.content);
    assert!(
        w.marker_exists(&format!("interrupted-{}-2", cli.pid)),
        "the turn of {left:?} was not interrupted"
    );
}

#[test]
fn a_stream_left_before_its_first_word_frees_the_session() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "first").sid;
    ask_and_leave(&w, &sid, "[[fake:sleep:30]] thinking", true);
    next_turn_is_served(&w, &sid, "thinking");
    w.finish();
}

#[test]
fn a_stream_left_during_a_silence_frees_the_session() {
    // The head goes out with the first keep-alive; the client reads it and
    // leaves while the model is still silent.
    let w = Warm::start(&[("STREAM_KEEPALIVE_MS", "200")]);
    let sid = w.say(None, "sonnet", "first").sid;
    let body = json!({"model": "sonnet", "stream": true,
                      "messages": [user("[[fake:sleep:30]] silent")]})
    .to_string();
    let stream = SseClient::open(w.addr(), &[CLAUDE, ("X-Claude-Session-ID", &sid)], &body);
    assert_eq!(stream.status, 200);
    stream.disconnect();
    next_turn_is_served(&w, &sid, "silent");
    w.finish();
}

#[test]
fn a_plain_request_left_frees_the_session_and_it_can_be_deleted() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "first").sid;
    ask_and_leave(&w, &sid, "[[fake:sleep:30]] waiting", false);
    next_turn_is_served(&w, &sid, "waiting");
    // Counted as a client that left, not as a failure of the CLI.
    let metrics = request(w.addr(), "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("claude_cli_api_turns_total{cause=\"client_gone\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("claude_cli_api_turns_total{cause=\"cli_error\"} 0\n"));

    // A session whose client left can be deleted at once too.
    ask_and_leave(&w, &sid, "[[fake:sleep:30]] again", false);
    let started = Instant::now();
    let deleted = request(
        w.addr(),
        "DELETE",
        &format!("/v1/sessions/{sid}"),
        &[CLAUDE],
        b"",
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["deleted"], true);
    assert!(started.elapsed() < Duration::from_secs(5));
    w.finish();
}

#[test]
fn a_session_busy_with_a_client_still_there_is_refused_at_once() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "first").sid;
    let body = json!({"model": "sonnet", "stream": true,
                      "messages": [user("[[fake:sleep:3]] still here")]})
    .to_string();
    let addr = w.addr();
    let held_sid = sid.clone();
    // The client waits for its answer on another thread.
    let holder = std::thread::spawn(move || {
        let stream = SseClient::open(addr, &[CLAUDE, ("X-Claude-Session-ID", &held_sid)], &body);
        let status = stream.status;
        let answer = stream.collect();
        (status, answer.last().cloned())
    });
    under_way(&w, "[[fake:sleep:3]] still here");
    let started = Instant::now();
    let refused = request(
        w.addr(),
        "POST",
        "/v1/chat/completions",
        &[
            CLAUDE,
            ("X-Claude-Session-ID", &sid),
            ("Content-Type", "application/json"),
        ],
        body_of("sonnet", "meanwhile").as_bytes(),
    );
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "session_busy");
    assert!(started.elapsed() < Duration::from_secs(1));
    let (status, last) = holder.join().unwrap();
    assert_eq!((status, last.as_deref()), (200, Some("[DONE]")));
    w.finish();
}

fn body_of(model: &str, text: &str) -> String {
    body(model, &[user(text)])
}
