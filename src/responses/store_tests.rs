use std::time::Duration;

use serde_json::json;

use super::*;

fn stored(session: &str, previous: Option<&str>, said: &str, answer: &str) -> Stored {
    Stored {
        owner: Some("alice".into()),
        session: session.into(),
        previous: previous.map(str::to_string),
        added: vec![json!({"role": "user", "content": said})],
        answer: json!({"role": "assistant", "content": answer}),
        extra: json!({"id": "r", "said": said}),
    }
}

fn alive(_: &str) -> bool {
    true
}

fn store() -> ResponseStore {
    ResponseStore::new(Duration::from_secs(3600))
}

#[test]
fn the_latest_response_continues_its_session_and_an_older_one_forks() {
    let store = store();
    store.keep("r1", stored("s1", None, "one", "1"));
    store.keep("r2", stored("s1", Some("r1"), "two", "2"));
    store.keep("r3", stored("s1", Some("r2"), "three", "3"));
    match store.previous("r3", Some("alice"), alive) {
        Some(Previous::Latest { session, answer }) => {
            assert_eq!(session, "s1");
            assert_eq!(answer["content"], "3");
        }
        other => panic!("{other:?}"),
    }
    let Some(Previous::Older { history }) = store.previous("r2", Some("alice"), alive) else {
        panic!("r2 is older than r3");
    };
    let contents: Vec<&str> = history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["one", "1", "two", "2"]);
    // A fork's first answer is the latest of its own session.
    store.keep("r2b", stored("s2", Some("r2"), "two-b", "2b"));
    assert!(matches!(
        store.previous("r2b", Some("alice"), alive),
        Some(Previous::Latest { .. })
    ));
    // The original is untouched: r3 still continues s1.
    assert!(matches!(
        store.previous("r3", Some("alice"), alive),
        Some(Previous::Latest { session, .. }) if session == "s1"
    ));
}

#[test]
fn another_owner_or_an_ended_session_sees_nothing() {
    let store = store();
    store.keep("r1", stored("s1", None, "one", "1"));
    assert_eq!(store.previous("r1", Some("mallory"), alive), None);
    assert_eq!(store.previous("r1", None, alive), None);
    assert_eq!(store.get("r1", Some("mallory"), alive), None);
    assert_eq!(store.previous("r1", Some("alice"), |_| false), None);
    assert_eq!(store.get("r1", Some("alice"), |_| false), None);
    assert_eq!(
        store
            .get("r1", Some("alice"), alive)
            .map(|r| r["said"].clone()),
        Some(json!("one"))
    );
    assert_eq!(store.previous("nope", Some("alice"), alive), None);
}

#[test]
fn a_fork_past_a_forgotten_link_is_refused_rather_than_cut_short() {
    let store = ResponseStore::new(Duration::ZERO);
    store.keep("r1", stored("s1", None, "one", "1"));
    store.keep("r2", stored("s1", Some("r1"), "two", "2"));
    store.keep("r3", stored("s1", Some("r2"), "three", "3"));
    // With no age allowed, each keep forgets what came before, and what is
    // left is past its age when read.
    assert_eq!(store.len(), 1);
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(store.previous("r3", Some("alice"), alive), None);
    let store = store_with_hole();
    assert_eq!(store.previous("r2", Some("alice"), alive), None);
}

/// r1 ← r2 ← r3 in s1 with r1 gone.
fn store_with_hole() -> ResponseStore {
    let store = store();
    store.keep("r2", stored("s1", Some("r1"), "two", "2"));
    store.keep("r3", stored("s1", Some("r2"), "three", "3"));
    store
}

#[test]
fn the_count_and_byte_budgets_drop_the_oldest_first() {
    let store = store();
    let big = "x".repeat(MAX_BYTES / 3);
    for n in 0..4 {
        store.keep(&format!("r{n}"), stored(&format!("s{n}"), None, &big, "ok"));
    }
    assert_eq!(store.get("r0", Some("alice"), alive), None);
    assert!(store.get("r3", Some("alice"), alive).is_some());
    assert!(store.len() <= 2, "{}", store.len());
}
