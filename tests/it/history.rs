//! History matching (issue 17): a client that resends the whole
//! conversation every turn and never reads `X-Claude-Session-ID` lands on
//! the session that answered it, and only then: an edited, regenerated or
//! cut history, another key's identical history, a busy session and
//! `CLAUDE_MATCH_HISTORY=false` all start a new session, which gets the
//! history as a transcript. Over real HTTP with the fake CLI; the harness
//! is tests/it/support/warm.rs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

const KEY_A: &str = "sk-cca-warm-owner-key-0001";
const KEY_B: &str = "sk-cca-warm-other-key-0002";

#[test]
fn whole_histories_without_a_header_land_on_one_warm_session() {
    let w = Warm::start(&[]);
    let mut messages = vec![user("history 1")];
    let first = w.ask(&[CLAUDE], body("sonnet", &messages));
    assert!(first.created() && !first.warm());
    assert_eq!(first.turns(), 1);
    let sid = first.sid.clone();
    let cli = w.run_of("history 1");
    messages.push(assistant(&first.content));

    for n in 2..=5 {
        let text = format!("history {n}");
        messages.push(user(&text));
        let a = w.ask(&[CLAUDE], body("sonnet", &messages));
        assert_eq!(a.sid, sid, "turn {n} continued the session");
        assert!(!a.created(), "turn {n}");
        assert!(a.warm(), "turn {n} ran warm");
        assert_eq!(a.turns(), n, "{}", a.content);
        // Only the new message reaches the CLI, not the history squashed
        // into one prompt.
        let run = w.run_of(&text);
        assert_eq!((run.pid, run.nth), (cli.pid, n));
        messages.push(assistant(&a.content));
    }
    w.finish();
}

#[test]
fn an_edited_history_starts_a_new_session() {
    // Room for every session below to stay warm, so that the first one's
    // process is not evicted by the others.
    let w = Warm::start_with(&[], |c| c.warm_sessions = 8);
    let one = w.ask(&[CLAUDE], body("sonnet", &[user("edit 1")]));
    let sid = one.sid.clone();
    let after_one = vec![user("edit 1"), assistant(&one.content)];
    let mut two_sent = after_one.clone();
    two_sent.push(user("edit 2"));
    let two = w.ask(&[CLAUDE], body("sonnet", &two_sent));
    assert_eq!((two.sid.as_str(), two.turns()), (sid.as_str(), 2));
    let after_two = [two_sent.clone(), vec![assistant(&two.content)]].concat();

    let edited_answer = [
        vec![user("edit 1"), assistant("something else"), user("edit 2")],
        vec![assistant(&two.content), user("edit 3a")],
    ]
    .concat();
    let edited_question = [
        vec![user("edit 1, reworded"), assistant(&one.content)],
        vec![user("edit 2"), assistant(&two.content), user("edit 3b")],
    ]
    .concat();
    // Turn 2 asked again (a regenerate): its history matches the session
    // as it was after turn 1, but the session has moved on since.
    let regenerated = two_sent.clone();
    // The oldest turn dropped, as a client trimming its context does.
    let cut_short = [after_two[2..].to_vec(), vec![user("edit 3c")]].concat();
    let mut seen = vec![sid.clone()];
    for (name, messages) in [
        ("an edited answer", edited_answer),
        ("an edited question", edited_question),
        ("a regenerated turn", regenerated),
        ("a cut history", cut_short),
    ] {
        let a = w.ask(&[CLAUDE], body("sonnet", &messages));
        assert!(
            !seen.contains(&a.sid),
            "{name} landed on an existing session {}",
            a.sid
        );
        assert!(a.created() && !a.warm(), "{name}");
        assert_eq!(a.turns(), 1, "{name}: {}", a.content);
        seen.push(a.sid.clone());
    }

    // The session itself was left alone: its own history still continues it.
    let three_sent = [after_two, vec![user("edit 3")]].concat();
    let three = w.ask(&[CLAUDE], body("sonnet", &three_sent));
    assert_eq!(three.sid, sid);
    assert!(three.warm());
    assert_eq!(three.turns(), 3, "{}", three.content);
    w.finish();
}

#[test]
fn another_keys_identical_history_never_matches() {
    let keys = format!("{KEY_A},{KEY_B}");
    let w = Warm::start(&[("API_KEYS", &keys)]);
    let auth_a = format!("Bearer {KEY_A}");
    let auth_b = format!("Bearer {KEY_B}");
    let as_a = [CLAUDE, ("Authorization", auth_a.as_str())];
    let as_b = [CLAUDE, ("Authorization", auth_b.as_str())];

    let first = w.ask(&as_a, body("sonnet", &[user("shared 1")]));
    let history = vec![
        user("shared 1"),
        assistant(&first.content),
        user("shared 2"),
    ];
    let other = w.ask(&as_b, body("sonnet", &history));
    assert_ne!(other.sid, first.sid, "another key's history matched");
    assert!(other.created() && !other.warm());
    assert_eq!(other.turns(), 1, "{}", other.content);

    // The same history from its owner does continue the session.
    let own = w.ask(&as_a, body("sonnet", &history));
    assert_eq!(own.sid, first.sid);
    assert!(own.warm());
    assert_eq!(own.turns(), 2, "{}", own.content);
    w.finish();
}

/// The one recorded turn whose prompt contains `needle`.
fn run_containing(w: &Warm, needle: &str) -> Run {
    let runs = w.runs();
    let found: Vec<&Run> = runs
        .iter()
        .filter(|r| r.value["prompt"].as_str().unwrap_or("").contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "runs whose prompt holds {needle:?}; prompts seen: {:?}",
        runs.iter().map(|r| &r.value["prompt"]).collect::<Vec<_>>()
    );
    found[0].clone()
}

/// Checks that `run` got `messages` as a labelled transcript (a new
/// session is told the conversation so far), in order, rather than only
/// the last message.
fn assert_transcript(run: &Run, messages: &[(&str, &str)]) {
    let prompt = run.value["prompt"].as_str().unwrap();
    let mut from = 0;
    for (label, text) in messages {
        let line = format!("{label}: {text}");
        let at = prompt[from..]
            .find(&line)
            .unwrap_or_else(|| panic!("{line:?} missing or out of order in {prompt:?}"));
        from += at + line.len();
    }
}

#[test]
fn with_matching_off_a_whole_history_starts_a_new_session_told_the_transcript() {
    let w = Warm::start_with(&[], |c| c.claude_match_history = false);
    let first = w.ask(&[CLAUDE], body("sonnet", &[user("off 1")]));
    assert!(first.created());
    let history = [user("off 1"), assistant(&first.content), user("off 2")];
    let second = w.ask(&[CLAUDE], body("sonnet", &history));
    assert!(
        second.created(),
        "a resent history was matched with matching off"
    );
    assert_ne!(second.sid, first.sid);
    assert!(!second.warm());
    assert_eq!(second.turns(), 1, "{}", second.content);
    let run = run_containing(&w, "off 2");
    assert_eq!(run.nth, 1);
    assert_eq!(
        run.flag("--session-id").as_deref(),
        Some(second.sid.as_str())
    );
    assert_eq!(run.flag("--resume"), None);
    assert_transcript(
        &run,
        &[
            ("User", "off 1"),
            ("Assistant", &first.content),
            ("User", "off 2"),
        ],
    );
    let prompt_chars = run.value["prompt"].as_str().unwrap().chars().count();
    assert!(
        second
            .content
            .contains(&format!("prompt_chars={prompt_chars}")),
        "{}",
        second.content
    );

    // The first session was left alone: by its header it continues warm.
    let own = w.say(Some(&first.sid), "sonnet", "off 2 by header");
    assert!(own.warm());
    assert_eq!(own.turns(), 2, "{}", own.content);
    w.finish();
}

#[test]
fn a_history_resent_after_a_restart_lands_on_its_session_and_resumes_cold() {
    let state = temp_dir("history-restart-state");
    let work = state.join("cli-work");
    let records = temp_dir("history-restart-records");
    let state_s = state.display().to_string();
    let work_s = work.display().to_string();
    let settings = [
        ("STATE_DIR", state_s.as_str()),
        ("CLAUDE_WORK_DIR", work_s.as_str()),
        ("API_KEY", KEY_A),
    ];
    let auth = format!("Bearer {KEY_A}");
    let headers = [CLAUDE, ("Authorization", auth.as_str())];

    let a = Warm::start_on(records.clone(), &settings, |_| {});
    assert_eq!(a.work, work);
    let first = a.ask(&headers, body("sonnet", &[user("restart 1")]));
    let sid = first.sid.clone();
    let a_cli = a.run_of("restart 1");
    assert!(process_alive(a_cli.pid), "kept warm before the restart");
    a.finish();

    let b = Warm::start_on(records, &settings, |_| {});
    let history = [
        user("restart 1"),
        assistant(&first.content),
        user("restart 2"),
    ];
    let second = b.ask(&headers, body("sonnet", &history));
    assert_eq!(second.sid, sid, "the history did not survive the restart");
    assert!(!second.created());
    assert!(!second.warm(), "no process survives a restart");
    assert_eq!(second.turns(), 2, "{}", second.content);
    let run = b.run_of("restart 2");
    assert_ne!(run.pid, a_cli.pid);
    assert_eq!(run.nth, 1);
    assert_eq!(run.flag("--resume").as_deref(), Some(sid.as_str()));
    assert_eq!(run.value["cwd"], work.join(&sid).display().to_string());

    // And the conversation goes on, warm again on the new server.
    let history = [
        history.to_vec(),
        vec![assistant(&second.content), user("restart 3")],
    ]
    .concat();
    let third = b.ask(&headers, body("sonnet", &history));
    assert_eq!(third.sid, sid);
    assert!(third.warm());
    assert_eq!(third.turns(), 3, "{}", third.content);
    assert_eq!(b.run_of("restart 3").pid, run.pid);
    b.finish();
}

#[test]
fn two_requests_resending_one_history_at_once_never_share_a_session() {
    let w = Warm::start(&[]);
    let first = w.ask(&[CLAUDE], body("sonnet", &[user("twice 1")]));
    let sid = first.sid.clone();
    let cli = w.run_of("twice 1");
    let shared = vec![user("twice 1"), assistant(&first.content)];
    let slow_text = "[[fake:sleep:2]] twice 2a";
    let slow_sent = [shared.clone(), vec![user(slow_text)]].concat();
    let quick_sent = [shared.clone(), vec![user("twice 2b")]].concat();

    let addr = w.addr();
    let (slow, quick) = std::thread::scope(|s| {
        let slow = s.spawn(|| ask_at(addr, &[CLAUDE], body("sonnet", &slow_sent)));
        // The slow turn has reached a CLI (and sleeps there): whichever
        // session it took is busy while the second request comes.
        assert!(
            wait_until(Duration::from_secs(10), || w
                .runs()
                .iter()
                .any(|r| r.value["prompt"] == slow_text)),
            "the first request never reached the CLI"
        );
        let quick = w.ask(&[CLAUDE], body("sonnet", &quick_sent));
        (slow.join().unwrap(), quick)
    });

    // The first continued the session, warm.
    assert_eq!(slow.sid, sid);
    assert!(!slow.created());
    assert!(slow.warm());
    assert_eq!(slow.turns(), 2, "{}", slow.content);
    let slow_run = w.run_of(slow_text);
    assert_eq!((slow_run.pid, slow_run.nth), (cli.pid, 2));

    // The other got a session of its own, told the whole conversation.
    assert_ne!(quick.sid, sid);
    assert!(quick.created());
    assert!(!quick.warm());
    assert_eq!(quick.turns(), 1, "{}", quick.content);
    let quick_run = run_containing(&w, "twice 2b");
    assert_ne!(quick_run.pid, cli.pid);
    assert_eq!(
        quick_run.flag("--session-id").as_deref(),
        Some(quick.sid.as_str())
    );
    assert_transcript(
        &quick_run,
        &[
            ("User", "twice 1"),
            ("Assistant", &first.content),
            ("User", "twice 2b"),
        ],
    );

    // Each conversation goes on on its own session, never mixed.
    let slow_next = [slow_sent, vec![assistant(&slow.content), user("twice 3a")]].concat();
    let a = w.ask(&[CLAUDE], body("sonnet", &slow_next));
    assert_eq!(
        (a.sid.as_str(), a.turns()),
        (sid.as_str(), 3),
        "{}",
        a.content
    );
    assert!(a.warm());
    let quick_next = [
        quick_sent,
        vec![assistant(&quick.content), user("twice 3b")],
    ]
    .concat();
    let b = w.ask(&[CLAUDE], body("sonnet", &quick_next));
    assert_eq!(
        (b.sid.as_str(), b.turns()),
        (quick.sid.as_str(), 2),
        "{}",
        b.content
    );
    assert!(b.warm());
    w.finish();
}

#[test]
fn a_history_spelled_with_text_parts_matches_one_sent_as_strings() {
    let w = Warm::start(&[]);
    let first = w.ask(&[CLAUDE], body("sonnet", &[user("parts 1")]));
    let sid = first.sid.clone();
    let cli = w.run_of("parts 1");
    let parts = |role: &str, text: &str| -> Value {
        json!({"role": role, "content": [{"type": "text", "text": text}]})
    };

    // Turn 1 resent as lists of text parts.
    let second_sent = vec![
        parts("user", "parts 1"),
        parts("assistant", &first.content),
        user("parts 2"),
    ];
    let second = w.ask(&[CLAUDE], body("sonnet", &second_sent));
    assert_eq!(
        second.sid, sid,
        "a list of text parts did not match a string"
    );
    assert!(!second.created());
    assert!(second.warm());
    assert_eq!(second.turns(), 2, "{}", second.content);
    assert_eq!(w.run_of("parts 2").pid, cli.pid);

    // And the other way: turn 2, sent as a string, resent as parts, the
    // rest as strings.
    let third_sent = vec![
        user("parts 1"),
        assistant(&first.content),
        parts("user", "parts 2"),
        assistant(&second.content),
        user("parts 3"),
    ];
    let third = w.ask(&[CLAUDE], body("sonnet", &third_sent));
    assert_eq!(third.sid, sid);
    assert!(third.warm());
    assert_eq!(third.turns(), 3, "{}", third.content);
    assert_eq!(w.run_of("parts 3").pid, cli.pid);
    w.finish();
}
