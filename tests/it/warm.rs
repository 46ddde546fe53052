//! Warm sessions (issue 17) over real HTTP, with the fake CLI
//! (fixtures/fake-claude) taking several turns per process as the real CLI
//! does: a session's process kept for its next turn, closed when the
//! model or system prompt changes, when it dies, idles or is evicted, and
//! by the drain; interrupts on a deadline or a client gone; each turn's own
//! usage and cost. The harness and what it asserts are described in
//! tests/it/support/warm.rs; history matching is in tests/it/history.rs,
//! spares in tests/it/spares.rs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::binary;
use crate::support::warm::*;
use crate::support::*;

#[test]
fn five_turns_of_one_session_run_on_one_warm_process() {
    let w = Warm::start(&[]);
    let first = w.say(None, "sonnet", "turn 1");
    assert!(first.created());
    assert!(!first.warm(), "a new session has no process yet");
    assert_eq!(first.turns(), 1);
    let sid = first.sid.clone();
    let cli = w.run_of("turn 1");
    assert_eq!(cli.flag("--session-id").as_deref(), Some(sid.as_str()));
    assert!(process_alive(cli.pid), "the process stays after its turn");

    for n in 2..=5 {
        let text = format!("turn {n}");
        let a = w.say(Some(&sid), "sonnet", &text);
        assert_eq!(a.sid, sid);
        assert!(!a.created());
        assert!(a.warm(), "turn {n} ran warm");
        assert_eq!(
            a.turns(),
            n,
            "turn {n} reached the conversation: {}",
            a.content
        );
        let run = w.run_of(&text);
        assert_eq!((run.pid, run.nth), (cli.pid, n), "turn {n} on the same CLI");
        assert!(a.content.contains(&format!("prompt_chars={}", text.len())));
    }
    assert_eq!(w.pids(), vec![cli.pid], "one CLI answered all five turns");

    // The process is put back after the answer has gone out: a moment
    // later, not necessarily before the client reads it.
    assert!(
        wait_until(Duration::from_secs(5), || w.health_warm()["processes"] == 1),
        "{}",
        w.health_warm()
    );
    let health = w.health_warm();
    assert_eq!(health["processes"], 1, "{health}");
    assert_eq!(health["max"], 4, "{health}");
    assert!(health["rss_bytes"].as_u64().unwrap_or(0) > 0, "{health}");
    w.finish();
}

#[test]
fn a_model_change_stays_warm_a_system_prompt_change_runs_cold() {
    let w = Warm::start(&[]);
    let one = w.say(None, "sonnet", "model 1");
    let sid = one.sid.clone();
    let sonnet = w.run_of("model 1");
    assert!(w.say(Some(&sid), "sonnet", "model 2").warm());

    // The warm process is told the new model (`set_model`) and answers.
    let three = w.say(Some(&sid), "haiku", "model 3");
    assert!(three.warm(), "a new model is set on the warm process");
    assert_eq!(three.sid, sid);
    assert_eq!(three.turns(), 3, "{}", three.content);
    assert!(three.content.contains("model=haiku"), "{}", three.content);
    let haiku = w.run_of("model 3");
    assert_eq!(haiku.pid, sonnet.pid);

    let four = w.say(Some(&sid), "sonnet", "model 4");
    assert!(four.warm());
    assert_eq!(four.turns(), 4);
    assert!(four.content.contains("model=sonnet"), "{}", four.content);
    assert_eq!(w.run_of("model 4").pid, haiku.pid);

    // A system prompt the warm process was not started with: cold too.
    let five_sent = body(
        "haiku",
        &[
            json!({"role": "system", "content": "Be brief."}),
            user("model 5"),
        ],
    );
    let five = w.ask(&[CLAUDE, ("X-Claude-Session-ID", &sid)], five_sent);
    assert!(!five.warm());
    assert_eq!(five.turns(), 5, "{}", five.content);
    assert!(five.content.contains("system=yes"), "{}", five.content);
    let run = w.run_of("model 5");
    assert_ne!(run.pid, haiku.pid);
    assert_eq!(run.value["system"], "Be brief.");
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(haiku.pid)),
        "the process of the old system prompt was closed"
    );
    w.finish();
}

#[test]
fn a_model_the_warm_process_refuses_runs_cold_on_the_same_session() {
    let w = Warm::start_with(&[], |c| {
        c.child_env
            .0
            .push(("FAKE_CLAUDE_REFUSE_MODEL".into(), "opus".into()))
    });
    let one = w.say(None, "sonnet", "refuse 1");
    let first = w.run_of("refuse 1");
    let two = w.say(Some(&one.sid), "opus", "refuse 2");
    assert!(!two.warm(), "the refused model ran on the old process");
    assert_eq!((two.sid.as_str(), two.turns()), (one.sid.as_str(), 2));
    assert!(two.content.contains("model=opus"), "{}", two.content);
    let run = w.run_of("refuse 2");
    assert_ne!(run.pid, first.pid);
    assert_eq!(run.flag("--model").as_deref(), Some("opus"));
    w.finish();
}

#[test]
fn effort_and_thinking_budget_are_set_per_turn_and_reset_after() {
    let w = Warm::start(&[]);
    let one = w.say(None, "sonnet", "effort 1");
    assert!(!one.content.contains("effort="), "{}", one.content);
    let sid = one.sid.clone();
    let asked = json!({"model": "sonnet", "reasoning_effort": "high",
                       "messages": [user("effort 2")]})
    .to_string();
    let two = w.ask(&[CLAUDE, ("X-Claude-Session-ID", &sid)], asked);
    assert!(two.warm());
    assert!(two.content.contains("effort=high"), "{}", two.content);
    let off = json!({"model": "sonnet", "reasoning_effort": "none",
                     "messages": [user("effort 3")]})
    .to_string();
    let three = w.ask(&[CLAUDE, ("X-Claude-Session-ID", &sid)], off);
    assert!(three.warm());
    assert!(
        three.content.contains("effort=low budget=0"),
        "{}",
        three.content
    );
    // A turn that asks nothing runs with the CLI's defaults again.
    let four = w.say(Some(&sid), "sonnet", "effort 4");
    assert!(four.warm());
    assert!(
        !four.content.contains("effort=low") && !four.content.contains("budget=0"),
        "{}",
        four.content
    );
    assert_eq!(w.pids().len(), 1, "one process answered every turn");
    w.finish();
}

#[test]
fn one_warm_slot_shared_by_two_sessions_answers_every_turn_right() {
    let w = Warm::start_with(&[], |c| c.warm_sessions = 1);
    let a = w.say(None, "sonnet", "a 1").sid;
    let b = w.say(None, "sonnet", "b 1").sid;
    assert_ne!(a, b);
    for n in 2..=4 {
        for (name, sid) in [("a", &a), ("b", &b)] {
            let answer = w.say(Some(sid), "sonnet", &format!("{name} {n}"));
            assert_eq!(&answer.sid, sid);
            assert_eq!(answer.turns(), n, "{name} {n}: {}", answer.content);
            let alive = w.pids().into_iter().filter(|p| process_alive(*p)).count();
            assert!(
                wait_until(Duration::from_secs(5), || w.health_warm()["processes"]
                    .as_u64()
                    .is_some_and(|p| p <= 1)),
                "more than one warm process: {} ({alive} alive)",
                w.health_warm()
            );
        }
    }
    // One session's consecutive turns still run warm in the single slot.
    assert_eq!(w.say(Some(&a), "sonnet", "a 5").turns(), 5);
    let six = w.say(Some(&a), "sonnet", "a 6");
    assert!(six.warm());
    assert_eq!(six.turns(), 6);
    w.finish();
}

#[test]
fn a_warm_process_killed_between_turns_is_replaced_by_a_cold_one() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "kill 1").sid;
    assert!(w.say(Some(&sid), "sonnet", "kill 2").warm());
    let victim = w.run_of("kill 2");
    assert_eq!(victim.nth, 2);
    // SAFETY: SIGKILL to the fake CLI this test's server started.
    assert_eq!(unsafe { libc::kill(victim.pid, libc::SIGKILL) }, 0);
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        victim.pid
    )));

    let three = w.say(Some(&sid), "sonnet", "kill 3");
    assert!(!three.warm());
    assert_eq!(three.turns(), 3, "{}", three.content);
    let run = w.run_of("kill 3");
    assert_ne!(run.pid, victim.pid);
    assert_eq!(run.flag("--resume").as_deref(), Some(sid.as_str()));
    let four = w.say(Some(&sid), "sonnet", "kill 4");
    assert!(four.warm());
    assert_eq!((four.turns(), w.run_of("kill 4").pid), (4, run.pid));
    w.finish();
}

#[test]
fn a_client_leaving_mid_stream_interrupts_the_turn_and_the_process_stays_warm() {
    let w = Warm::start(&[]);
    let sid = w.say(None, "sonnet", "leave 1").sid;
    let cli = w.run_of("leave 1");
    let slow = json!({"model": "sonnet", "stream": true,
                      "messages": [user("[[fake:slow:300]] leave 2")]})
    .to_string();
    let mut stream = SseClient::open(w.addr(), &[CLAUDE, ("X-Claude-Session-ID", &sid)], &slow);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("X-Claude-Warm"), Some("true"));
    assert!(stream.next_data().is_some());
    stream.disconnect();

    // The fake leaves interrupted-PID-K once it has ended turn K on an
    // interrupt (its answer to the control request came first).
    let marker = format!("interrupted-{}-2", cli.pid);
    assert!(
        wait_until(Duration::from_secs(5), || w.marker_exists(&marker)),
        "the turn was not interrupted"
    );
    assert!(process_alive(cli.pid), "the CLI was not killed");

    let three = w.say(Some(&sid), "sonnet", "leave 3");
    assert!(three.warm());
    // The interrupted prompt stays in the conversation, as with the real CLI.
    assert_eq!(three.turns(), 3, "{}", three.content);
    assert_eq!(w.run_of("leave 3").pid, cli.pid);
    w.finish();
}

#[test]
fn a_turn_past_its_deadline_is_interrupted_answered_504_and_the_next_is_warm() {
    // Long enough for a cold start on a loaded machine, short for a test.
    let w = Warm::start(&[("REQUEST_TIMEOUT_MS", "4000")]);
    let sid = w.say(None, "sonnet", "late 1").sid;
    let cli = w.run_of("late 1");
    let started = Instant::now();
    let r = chat(
        w.addr(),
        &[CLAUDE, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", &[user("[[fake:sleep:30]] late 2")]),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (504, "timeout"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let marker = format!("interrupted-{}-2", cli.pid);
    assert!(wait_until(Duration::from_secs(3), || w.marker_exists(&marker)));
    assert!(process_alive(cli.pid));

    let three = w.say(Some(&sid), "sonnet", "late 3");
    assert!(three.warm());
    assert_eq!(three.turns(), 3, "{}", three.content);
    assert_eq!(w.run_of("late 3").pid, cli.pid);
    w.finish();
}

#[test]
fn a_turn_deaf_to_the_interrupt_is_killed_after_the_grace() {
    let w = Warm::start(&[
        ("REQUEST_TIMEOUT_MS", "4000"),
        ("CLAUDE_KILL_GRACE_MS", "500"),
    ]);
    let sid = w.say(None, "sonnet", "deaf 1").sid;
    let cli = w.run_of("deaf 1");
    let r = chat(
        w.addr(),
        &[CLAUDE, ("X-Claude-Session-ID", &sid)],
        &body("sonnet", &[user("[[fake:ignore-interrupt:60]] deaf 2")]),
    );
    assert_eq!(r.status, 504, "{}", r.text());
    let ignored = format!("interrupt-ignored-{}-2", cli.pid);
    assert!(
        wait_until(Duration::from_secs(3), || w.marker_exists(&ignored)),
        "no interrupt was sent before the kill"
    );
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        cli.pid
    )));

    let three = w.say(Some(&sid), "sonnet", "deaf 3");
    assert!(!three.warm());
    assert_eq!(three.turns(), 3, "{}", three.content);
    assert_ne!(w.run_of("deaf 3").pid, cli.pid);
    w.finish();
}

#[test]
fn every_answer_reports_its_own_turns_usage_and_cost() {
    let w = Warm::start(&[]);
    let one = w.say(None, "sonnet", "cost 1");
    let sid = one.sid.clone();
    let per_turn = |a: &Answer, n: u32| {
        assert_eq!(a.turns(), n);
        let cost = a.header_f64("X-Claude-Cost-USD");
        assert!(
            approx(cost, 0.0001 * n as f64),
            "turn {n} cost {cost}, not its own share"
        );
        assert_eq!(
            a.response.header("X-Claude-Duration-Ms"),
            Some((10 + n).to_string().as_str())
        );
        let usage = &a.response.json()["usage"];
        assert_eq!(usage["prompt_tokens"], 9 + n, "turn {n}: {usage}");
        assert_eq!(usage["completion_tokens"], 4, "turn {n}: {usage}");
    };
    per_turn(&one, 1);
    let two = w.say(Some(&sid), "sonnet", "cost 2");
    assert!(two.warm());
    per_turn(&two, 2);

    // Turn 3 streamed: the cost comment just before [DONE], usage chunk.
    let sent = json!({"model": "sonnet", "stream": true,
                      "stream_options": {"include_usage": true},
                      "messages": [user("cost 3")]})
    .to_string();
    let r = chat(w.addr(), &[CLAUDE, ("X-Claude-Session-ID", &sid)], &sent);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(": cost "))
        .unwrap_or_else(|| panic!("no cost comment in {text}"));
    assert_eq!(lines.get(at + 1), Some(&"data: [DONE]"), "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with(": cost ")).count(), 1);
    let fields: Vec<(&str, &str)> = lines[at][": cost ".len()..]
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let usd: f64 = fields
        .iter()
        .find(|(k, _)| *k == "usd")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", lines[at]));
    assert!(approx(usd, 0.0003), "turn 3 cost {usd}: {}", lines[at]);
    assert!(fields.contains(&("duration_ms", "13")), "{}", lines[at]);
    let usage: Vec<Value> = r
        .sse_data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter(|c| c["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1, "{text}");
    assert_eq!(usage[0]["usage"]["prompt_tokens"], 12);
    let streamed: String = r
        .sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(turns_in(&streamed), Some(3), "{streamed}");

    // A cold resume: the CLI's running total starts from the stored one,
    // and the answer still carries only its own turn's share.
    let sent = body(
        "sonnet",
        &[
            json!({"role": "system", "content": "Be brief."}),
            user("cost 4"),
        ],
    );
    let four = w.ask(&[CLAUDE, ("X-Claude-Session-ID", &sid)], sent);
    assert!(!four.warm());
    per_turn(&four, 4);
    w.finish();
}

#[test]
fn an_idle_warm_process_is_closed_and_the_next_turn_runs_cold() {
    let w = Warm::start_with(&[], |c| c.warm_idle = Duration::from_millis(1000));
    let sid = w.say(None, "sonnet", "idle 1").sid;
    let cli = w.run_of("idle 1");
    assert!(process_alive(cli.pid), "kept warm after its turn");
    assert!(
        wait_until(Duration::from_secs(10), || !process_alive(cli.pid)),
        "the idle process was not closed"
    );
    assert!(wait_until(Duration::from_secs(2), || w.health_warm()
        ["processes"]
        == 0));

    let two = w.say(Some(&sid), "sonnet", "idle 2");
    assert!(!two.warm());
    assert_eq!(two.turns(), 2, "{}", two.content);
    assert_ne!(w.run_of("idle 2").pid, cli.pid);
    w.finish();
}

#[test]
fn a_closed_process_that_stays_after_eof_gets_sigterm_before_sigkill() {
    // `linger` stays after EOF (until a release file that never comes).
    // Closing it is EOF, SIGTERM 10 s later, SIGKILL after the grace: with
    // a 5 s grace, only the SIGTERM ends it before 15 s.
    let w = Warm::start_with(&[("CLAUDE_KILL_GRACE_MS", "5000")], |c| {
        c.warm_idle = Duration::from_millis(300)
    });
    w.say(None, "sonnet", "[[fake:linger]] stays");
    let cli = w.run_of("[[fake:linger]] stays");
    let answered = Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || !process_alive(cli.pid)),
        "the lingering process was never stopped"
    );
    let took = answered.elapsed();
    assert!(
        took >= Duration::from_secs(9),
        "EOF first, then a wait: {took:?}"
    );
    assert!(
        took < Duration::from_secs(14),
        "SIGTERM came before SIGKILL: {took:?}"
    );
    w.finish();
}

#[test]
fn a_new_session_takes_the_slot_of_an_idle_warm_process_at_once() {
    // Queueing for the slot would take the whole pool timeout.
    let w = Warm::start(&[
        ("MAX_CONCURRENT_PROCESSES", "1"),
        ("POOL_QUEUE_TIMEOUT_MS", "20000"),
    ]);
    let a = w.say(None, "sonnet", "slot a 1").sid;
    let a_cli = w.run_of("slot a 1");
    assert!(process_alive(a_cli.pid));

    let started = Instant::now();
    let b = w.say(None, "sonnet", "slot b 1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for the slot",
        started.elapsed()
    );
    assert!(b.created() && !b.warm());
    assert_eq!(b.turns(), 1);
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        a_cli.pid
    )));

    // And back: session a resumes cold in the slot b's process held.
    let b_cli = w.run_of("slot b 1");
    let started = Instant::now();
    let a2 = w.say(Some(&a), "sonnet", "slot a 2");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!a2.warm());
    assert_eq!(a2.turns(), 2, "{}", a2.content);
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        b_cli.pid
    )));
    w.finish();
}

#[test]
fn drain_closes_every_warm_process() {
    let records = temp_dir("warm-drain-records");
    let records_s = records.display().to_string();
    let path = std::env::var("PATH").unwrap_or_default();
    let mut server = binary::Running::start(&[
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
        ("FAKE_CLAUDE_RECORD_DIR", &records_s),
        ("CLAUDE_ENV_PASSTHROUGH", "FAKE_CLAUDE_RECORD_DIR"),
        ("RATE_LIMIT_PER_IP", "0"),
        ("WARM_SESSIONS", "4"),
        ("WARM_MIN_FREE_MB", "0"),
        ("WARM_IDLE_MS", "120000"),
        ("SHUTDOWN_TIMEOUT_MS", "5000"),
    ]);
    let addr = server.addr();
    let ask = |headers: &[(&str, &str)], text: &str| {
        let r = chat(addr, headers, &body("sonnet", &[user(text)]));
        assert_eq!(r.status, 200, "{text}: {}", r.text());
        r
    };
    let first = ask(&[CLAUDE], "drain a 1");
    let sid = first.header("X-Claude-Session-ID").unwrap().to_string();
    let second = ask(&[("X-Claude-Session-ID", &sid)], "drain a 2");
    assert_eq!(second.header("X-Claude-Warm"), Some("true"));
    ask(&[CLAUDE], "drain b 1");
    ask(&[CLAUDE], "drain c 1");
    let pids = pids_in(&records);
    assert_eq!(pids.len(), 3, "three sessions, three CLIs");
    assert!(pids.iter().all(|p| process_alive(*p)), "all warm: {pids:?}");

    // The access log says which turns were warm: only "drain a 2".
    let access = |l: &str| {
        serde_json::from_str::<Value>(l)
            .ok()
            .filter(|v| v["event"] == "request" && v["path"] == "/v1/chat/completions")
    };
    let seen = std::cell::Cell::new(0);
    let all_four = server.wait_line(Duration::from_secs(5), |l| {
        seen.set(seen.get() + usize::from(access(l).is_some()));
        seen.get() == 4
    });
    assert!(all_four.is_some(), "access lines: {:?}", server.seen);
    let lines: Vec<Value> = server.seen.iter().filter_map(|l| access(l)).collect();
    let warm: Vec<&Value> = lines.iter().filter(|v| v["warm"] == true).collect();
    assert_eq!(warm.len(), 1, "{lines:?}");
    assert_eq!(warm[0]["session_id"], sid.as_str(), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|v| v["warm"] == false).count(),
        3,
        "{lines:?}"
    );

    let took = server.drain();
    assert!(
        took < Duration::from_secs(5),
        "idle warm processes held the drain for {took:?}"
    );
    let left: Vec<i32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
    reap_leftovers(&left);
    assert!(
        left.is_empty(),
        "warm processes left after the drain: {left:?}"
    );
}

/// A model that thinks long before its first word: the stream begins anyway
/// and carries SSE comments through the silence, then the answer whole.
#[test]
fn a_long_silence_in_a_stream_carries_keep_alives() {
    let w = Warm::start(&[("STREAM_KEEPALIVE_MS", "200")]);
    let body = json!({"model": "sonnet", "stream": true,
        "messages": [{"role": "user", "content": "[[fake:sleep:1]] hello"}]});
    let sse = SseClient::open(w.addr(), &[CLAUDE], &body.to_string());
    assert_eq!(sse.status, 200);
    let raw = sse.raw_rest();
    let first_data = raw.find("data: ").unwrap_or(raw.len());
    let before = raw[..first_data].matches(": keep-alive\n").count();
    assert!(
        (2..=8).contains(&before),
        "{before} keep-alives before the answer: {raw}"
    );
    assert!(raw.contains("turns=1"), "{raw}");
    assert!(raw.trim_end().ends_with("data: [DONE]"), "{raw}");
    // Off: the same silence passes without them.
    let w2 = Warm::start(&[("STREAM_KEEPALIVE_MS", "0")]);
    let sse = SseClient::open(w2.addr(), &[CLAUDE], &body.to_string());
    let raw = sse.raw_rest();
    assert!(!raw.contains("keep-alive"), "{raw}");
    assert!(raw.contains("turns=1"), "{raw}");
    w.finish();
    w2.finish();
}
