//! The session endpoints (issue 22, point 2) over real HTTP with the fake
//! CLI: `GET /v1/sessions`, `GET` and `DELETE /v1/sessions/{id}` (and the
//! same under `/claude/v1/`), scoped to the caller's key; a busy session
//! (a turn in progress, a turn waiting for tool results) is not deleted; a
//! deletion removes the directory and the warm process; a session whose CLI
//! is only exiting is deleted once it has exited; a session shows how full
//! its context is and the compactions it went through.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

const ALICE_KEY: &str = "sk-cca-alice-1234567890";
const BOB_KEY: &str = "sk-cca-bob-0987654321";
const ALICE: (&str, &str) = ("Authorization", "Bearer sk-cca-alice-1234567890");
const BOB: (&str, &str) = ("Authorization", "Bearer sk-cca-bob-0987654321");

fn two_keys() -> Warm {
    Warm::start(&[("API_KEYS", &format!("{ALICE_KEY},{BOB_KEY}"))])
}

fn call(w: &Warm, method: &str, path: &str, key: Option<(&str, &str)>) -> HttpResponse {
    let headers: Vec<(&str, &str)> = key.into_iter().collect();
    request(w.addr(), method, path, &headers, b"")
}

fn listed(w: &Warm, key: Option<(&str, &str)>) -> Vec<Value> {
    let r = call(w, "GET", "/v1/sessions", key);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["object"], "list");
    body["data"].as_array().unwrap().clone()
}

fn session(w: &Warm, sid: &str, key: Option<(&str, &str)>) -> Value {
    let r = call(w, "GET", &format!("/v1/sessions/{sid}"), key);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (status, code),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn each_key_sees_and_deletes_only_its_own_sessions() {
    let w = two_keys();
    let before = now_secs();
    let first = w.say_as(None, "sonnet", "hello", &[ALICE]);
    let sid = first.sid.clone();
    w.say_as(Some(&sid), "sonnet", "again", &[ALICE]);
    let bobs = w.say_as(None, "sonnet", "hi", &[BOB]).sid;

    // The warm child is parked once the answer has gone out.
    assert!(wait_until(Duration::from_secs(5), || session(
        &w,
        &sid,
        Some(ALICE)
    )["warm"]
        == true));
    let alice = listed(&w, Some(ALICE));
    assert_eq!(alice.len(), 1, "{alice:?}");
    let mine = &alice[0];
    assert_eq!(mine["id"], sid.as_str());
    assert_eq!(mine["object"], "session");
    assert_eq!(mine["turns"], 2);
    // The fake CLI's turn T reads 6 + T tokens fresh, 2 from the prompt
    // cache and writes 1 to it.
    let usage = &mine["usage"];
    assert_eq!(
        (
            &usage["input_tokens"],
            &usage["cache_read_input_tokens"],
            &usage["cache_creation_input_tokens"]
        ),
        (&json!(15), &json!(4), &json!(2)),
        "{usage}"
    );
    assert!(usage["output_tokens"].as_u64().unwrap_or(0) > 0, "{usage}");
    assert_eq!(mine["busy"], false);
    assert_eq!(mine["warm"], true);
    assert!(
        mine["model"].as_str().is_some_and(|m| !m.is_empty()),
        "{mine}"
    );
    let created = mine["created"].as_u64().unwrap();
    let last_used = mine["last_used"].as_u64().unwrap();
    assert!(before <= created && created <= last_used && last_used <= now_secs());
    assert_eq!(&session(&w, &sid, Some(ALICE)), mine);
    // The same under /claude/v1/, whatever the mode headers say.
    let claude = call(
        &w,
        "GET",
        &format!("/claude/v1/sessions/{sid}"),
        Some(ALICE),
    );
    assert_eq!(claude.status, 200, "{}", claude.text());
    assert_eq!(claude.json()["id"], sid.as_str());

    let bob = listed(&w, Some(BOB));
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert_eq!(
        (bob[0]["id"].as_str(), &bob[0]["turns"]),
        (Some(bobs.as_str()), &json!(1))
    );

    // Bob cannot tell Alice's session from none.
    let path = format!("/v1/sessions/{sid}");
    assert_error(&call(&w, "GET", &path, Some(BOB)), 404, "session_not_found");
    assert_error(
        &call(&w, "DELETE", &path, Some(BOB)),
        404,
        "session_not_found",
    );
    let unknown = format!("/v1/sessions/{}", "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c");
    assert_error(
        &call(&w, "GET", &unknown, Some(BOB)),
        404,
        "session_not_found",
    );
    assert_eq!(session(&w, &sid, Some(ALICE))["turns"], 2, "still there");
    assert!(w.work.join(&sid).is_dir());

    // A malformed id is told so; no key is refused.
    let bad = call(&w, "GET", "/v1/sessions/not-a-uuid", Some(ALICE));
    assert_error(&bad, 400, "invalid_session_id");
    let bad = call(&w, "DELETE", "/claude/v1/sessions/not-a-uuid", Some(ALICE));
    assert_error(&bad, 400, "invalid_session_id");
    assert_eq!(call(&w, "GET", "/v1/sessions", None).status, 401);
    assert_eq!(call(&w, "DELETE", &path, None).status, 401);
    w.finish();
}

#[test]
fn a_deletion_removes_the_directory_and_the_warm_process() {
    let w = two_keys();
    let sid = w.say_as(None, "sonnet", "hello", &[ALICE]).sid;
    let pid = w.runs()[0].pid;
    assert!(wait_until(Duration::from_secs(5), || w.health_warm()
        ["processes"]
        == 1));
    assert_eq!(session(&w, &sid, Some(ALICE))["warm"], true);
    let dir = w.work.join(&sid);
    assert!(dir.is_dir() && process_alive(pid));

    let r = call(&w, "DELETE", &format!("/v1/sessions/{sid}"), Some(ALICE));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": sid, "object": "session", "deleted": true})
    );
    assert!(!dir.exists(), "the working directory is removed");
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(pid)),
        "the warm CLI is closed"
    );
    assert_eq!(w.health_warm()["processes"], 0);

    // Gone for every route: read, delete, list, and a resume by header.
    let path = format!("/v1/sessions/{sid}");
    assert_error(
        &call(&w, "GET", &path, Some(ALICE)),
        404,
        "session_not_found",
    );
    assert_error(
        &call(&w, "DELETE", &path, Some(ALICE)),
        404,
        "session_not_found",
    );
    assert!(listed(&w, Some(ALICE)).is_empty());
    let resume = chat(
        w.addr(),
        &[CLAUDE, ALICE, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", &[user("still there?")]),
    );
    assert_error(&resume, 404, "session_not_found");
    w.finish();
}

#[test]
fn a_session_with_a_turn_in_progress_is_not_deleted() {
    let w = two_keys();
    let sid = w.say_as(None, "sonnet", "hello", &[ALICE]).sid;
    let addr = w.addr();
    let slow = {
        let sid = sid.clone();
        std::thread::spawn(move || {
            ask_at(
                addr,
                &[CLAUDE, ALICE, ("X-Claude-Session-ID", &sid)],
                body("sonnet", &[user("[[fake:sleep:5]]")]),
            )
        })
    };
    assert!(wait_until(Duration::from_secs(5), || session(
        &w,
        &sid,
        Some(ALICE)
    )["busy"]
        == true));
    let path = format!("/claude/v1/sessions/{sid}");
    assert_error(&call(&w, "DELETE", &path, Some(ALICE)), 409, "session_busy");
    assert!(w.work.join(&sid).is_dir());
    assert_eq!(listed(&w, Some(ALICE)).len(), 1);
    assert!(slow.join().unwrap().turns() >= 2);
    let after = session(&w, &sid, Some(ALICE));
    assert_eq!(
        (&after["busy"], &after["turns"]),
        (&json!(false), &json!(2))
    );
    // Once the turn has ended, the deletion goes through.
    assert_eq!(call(&w, "DELETE", &path, Some(ALICE)).status, 200);
    assert!(!w.work.join(&sid).exists());
    w.finish();
}

#[test]
fn a_session_waiting_for_tool_results_is_not_deleted() {
    let w = two_keys();
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let question = user(r#"weather? [[fake:tools:get_weather {"city":"Paris"}]]"#);
    let ask = |messages: &[Value]| {
        let sent = json!({"model": "sonnet", "messages": messages, "tools": tools});
        chat(w.addr(), &[CLAUDE, ALICE], &sent.to_string())
    };
    let first = ask(std::slice::from_ref(&question));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["choices"][0]["finish_reason"], "tool_calls");
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    assert_eq!(session(&w, &sid, Some(ALICE))["busy"], true);

    let path = format!("/v1/sessions/{sid}");
    assert_error(&call(&w, "DELETE", &path, Some(ALICE)), 409, "session_busy");
    assert!(w.work.join(&sid).is_dir());

    // The turn carries on as if nothing happened.
    let message = first.json()["choices"][0]["message"].clone();
    let result = json!({"role": "tool", "tool_call_id": message["tool_calls"][0]["id"],
        "content": "sunny"});
    let done = ask(&[question, message, result]);
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.json()["choices"][0]["message"]["content"],
        "tool results: get_weather=sunny"
    );
    assert_eq!(session(&w, &sid, Some(ALICE))["busy"], false);
    assert_eq!(call(&w, "DELETE", &path, Some(ALICE)).status, 200);
    w.finish();
}

#[test]
fn a_session_whose_cli_is_only_exiting_is_deleted_once_it_has_exited() {
    // Without warm children the CLI gets EOF after its answer; `linger`
    // stays until the test lets it go.
    let w = Warm::start_with(&[], |config| config.warm_sessions = 0);
    let sid = w.say(None, "sonnet", "[[fake:linger]]").sid;
    let pid = w.runs()[0].pid;
    let addr = w.addr();
    let deleting = {
        let path = format!("/v1/sessions/{sid}");
        std::thread::spawn(move || request(addr, "DELETE", &path, &[], b""))
    };
    let app = w.server.as_ref().unwrap().app();
    assert!(wait_until(Duration::from_secs(5), || app
        .claude
        .resumes_waiting()
        == 1));
    assert!(process_alive(pid) && w.work.join(&sid).is_dir());
    assert_eq!(session(&w, &sid, None)["busy"], false, "answered");
    std::fs::write(w.records.join("release"), "").unwrap();
    let r = deleting.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], true);
    assert!(!process_alive(pid));
    assert!(!w.work.join(&sid).exists());
    assert!(listed(&w, None).is_empty());
    w.finish();
}

#[test]
fn a_session_shows_how_full_its_context_is_and_its_compactions() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "hello").sid;
    let two = w.say(Some(&sid), "sonnet", "again");
    assert!(
        two.content.starts_with("model=sonnet turns=2"),
        "{}",
        two.content
    );
    // The last call read 6 + 2 tokens and wrote the answer's 4 words.
    let context = &session(&w, &sid, None)["context"];
    assert_eq!(*context, json!({"tokens": 12, "compactions": 0}));

    // A turn in which the CLI compacted the conversation (as `/compact`
    // does): the context is what the compaction left.
    let sent = json!({"model": "sonnet",
        "messages": [{"role": "user", "content": "[[fake:compact]]"}]})
    .to_string();
    let r = chat(w.addr(), &[CLAUDE, ("X-Claude-Session-ID", &sid)], &sent);
    assert_eq!(r.status, 200, "{}", r.text());
    let context = &session(&w, &sid, None)["context"];
    assert_eq!(*context, json!({"tokens": 40, "compactions": 1}));
    let scrape = get(w.addr(), "/metrics").text();
    assert!(
        scrape.contains("claude_cli_api_compactions_total{model=\"sonnet\"} 1"),
        "{scrape}"
    );

    // The next turn counts from there; the compaction stays counted.
    w.say(Some(&sid), "sonnet", "after");
    let context = &session(&w, &sid, None)["context"];
    assert_eq!(context["compactions"], 1, "{context}");
    assert!(context["tokens"].as_u64().unwrap_or(0) > 0, "{context}");
    w.finish();
}
