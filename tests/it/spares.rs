//! Spares (`WARM_SPARES`, issue 17): CLI processes started ahead of any
//! session, with a fresh session id, the default model and no system
//! prompt, so that a new session of that shape is answered by a process
//! that is already up. Over real HTTP with the fake CLI; the harness is
//! tests/it/support/warm.rs. A spare has no record file before its first
//! turn (the fake writes one when a turn's line arrives), so the tests
//! find it in /proc by the record directory its environment names.
//!
//! What a user would notice: `X-Claude-Warm: true` on a new session, the
//! session id the spare was started with, `spares` in /health, prompt
//! answers when the spare holds the only process slot, and nothing left
//! behind (processes, the spare's directory) when the server stops.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::binary;
use crate::support::warm::*;
use crate::support::*;

fn one_spare(config: &mut claude_cli_api::Config) {
    config.warm_spares = 1;
    config.warm_min_free_mb = 0;
}

/// The session id a spare was started with.
fn sid_of(spare: &Fake) -> String {
    spare
        .flag("--session-id")
        .unwrap_or_else(|| panic!("a spare without --session-id: {spare:?}"))
}

/// Kills, when dropped, the CLIs still alive that record into its
/// directory (a test that failed halfway).
struct Reaper(std::path::PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let mut pids = pids_in(&self.0);
        pids.extend(live_fakes(&self.0).iter().map(|f| f.pid));
        reap_leftovers(&pids);
    }
}

#[test]
fn a_new_default_session_is_served_warm_by_the_spare_started_before_it() {
    let w = Warm::start_with(&[], one_spare);
    let spare = w.wait_spares(1).remove(0);
    let spare_sid = sid_of(&spare);
    assert_eq!(
        spare.flag("--model").as_deref(),
        Some("sonnet"),
        "{spare:?}"
    );
    assert_eq!(spare.flag("--resume"), None, "{spare:?}");
    assert!(
        !spare.argv.iter().any(|a| a == "--system-prompt-file"),
        "{spare:?}"
    );
    assert!(w.runs().is_empty(), "a turn ran before any request");

    let a = w.say(None, "sonnet", "spare 1");
    assert!(a.created());
    assert!(a.warm(), "a new session did not get the spare");
    assert_eq!(a.turns(), 1, "{}", a.content);
    assert_eq!(a.sid, spare_sid, "the session is not the spare's");
    let run = w.run_of("spare 1");
    assert_eq!(
        (run.pid, run.nth),
        (spare.pid, 1),
        "not the spare's process"
    );
    assert_eq!(run.flag("--session-id").as_deref(), Some(a.sid.as_str()));
    assert_eq!(run.value["cwd"], w.work.join(&a.sid).display().to_string());
    assert!(
        approx(a.header_f64("X-Claude-Cost-USD"), 0.0001),
        "{:?}",
        a.response.headers
    );

    // Another spare takes its place, and serves the next new session.
    let next = w.wait_spares(1).remove(0);
    assert_ne!(next.pid, spare.pid);
    let next_sid = sid_of(&next);
    assert_ne!(next_sid, a.sid);
    let b = w.say(None, "sonnet", "spare 2");
    assert!(b.created() && b.warm(), "{:?}", b.response.headers);
    assert_eq!(b.turns(), 1, "{}", b.content);
    assert_eq!(b.sid, next_sid);
    assert_eq!(w.run_of("spare 2").pid, next.pid);
    w.wait_spares(1);
    w.finish();
}

#[test]
fn a_new_session_of_another_model_takes_the_spare_one_with_a_system_prompt_leaves_it() {
    let w = Warm::start_with(&[], one_spare);
    let first = w.wait_spares(1).remove(0);

    // The spare is told the model, and answers warm.
    let opus = w.say(None, "opus", "shape opus");
    assert!(opus.created());
    assert!(opus.warm(), "another model did not run on the spare");
    assert_eq!(opus.turns(), 1, "{}", opus.content);
    assert!(opus.content.contains("model=opus"), "{}", opus.content);
    assert_eq!(opus.sid, sid_of(&first));
    assert_eq!(w.run_of("shape opus").pid, first.pid);

    // The next spare is left by a system prompt it was not started with.
    let spare = w.wait_spares(1).remove(0);
    assert_ne!(spare.pid, first.pid);
    let spare_sid = sid_of(&spare);

    let system = w.ask(
        &[CLAUDE],
        body(
            "sonnet",
            &[
                json!({"role": "system", "content": "Be brief."}),
                user("shape system"),
            ],
        ),
    );
    assert!(system.created());
    assert!(!system.warm(), "a system prompt ran on the spare");
    assert_eq!(system.turns(), 1, "{}", system.content);
    assert!(system.content.contains("system=yes"), "{}", system.content);
    assert_ne!(system.sid, spare_sid);
    let run = w.run_of("shape system");
    assert_ne!(run.pid, spare.pid);
    assert_eq!(run.value["system"], "Be brief.");

    // The spare is still there, untouched, and serves the default shape.
    assert_eq!(w.wait_spares(1), vec![spare.clone()]);
    let default = w.say(None, "sonnet", "shape default");
    assert!(default.warm());
    assert_eq!(default.sid, spare_sid);
    assert_eq!(default.turns(), 1, "{}", default.content);
    assert_eq!(w.run_of("shape default").pid, spare.pid);
    w.finish();
}

#[test]
fn a_session_served_by_a_spare_continues_warm_on_its_process() {
    let w = Warm::start_with(&[], one_spare);
    let spare = w.wait_spares(1).remove(0);
    let one = w.say(None, "sonnet", "cont 1");
    assert!(one.warm());
    let sid = one.sid.clone();
    assert_eq!(sid, sid_of(&spare));

    // Turn 2 as a client resending the whole history sends it.
    let history = [user("cont 1"), assistant(&one.content), user("cont 2")];
    let two = w.ask(&[CLAUDE], body("sonnet", &history));
    assert_eq!(
        two.sid, sid,
        "the spare's session did not remember its history"
    );
    assert!(!two.created());
    assert!(two.warm());
    assert_eq!(two.turns(), 2, "{}", two.content);
    let run = w.run_of("cont 2");
    assert_eq!((run.pid, run.nth), (spare.pid, 2));
    assert!(
        approx(two.header_f64("X-Claude-Cost-USD"), 0.0002),
        "{:?}",
        two.response.headers
    );

    // Turn 3 by the session header.
    let three = w.say(Some(&sid), "sonnet", "cont 3");
    assert_eq!(three.sid, sid);
    assert!(three.warm());
    assert_eq!(three.turns(), 3, "{}", three.content);
    let run = w.run_of("cont 3");
    assert_eq!((run.pid, run.nth), (spare.pid, 3));
    w.finish();
}

#[test]
fn stopping_the_server_ends_the_spare_and_removes_its_unused_directory() {
    let w = Warm::start_with(&[], one_spare);
    w.wait_spares(1);
    let a = w.say(None, "sonnet", "stop 1");
    assert!(a.warm(), "served by the first spare");
    let b = w.say(None, "opus", "stop 2");
    let spare = w.wait_spares(1).remove(0);
    let spare_sid = sid_of(&spare);
    assert!(
        w.work_dirs().contains(&spare_sid),
        "the spare has no directory of its own: {:?}",
        w.work_dirs()
    );
    let mut answered = vec![a.sid.clone(), b.sid.clone()];
    answered.sort();
    let work = w.work.clone();

    // finish() also requires the spare, which never had a turn, gone.
    w.finish();
    assert!(!process_alive(spare.pid));
    assert!(
        wait_until(Duration::from_secs(5), || dirs_in(&work) == answered),
        "left in the work root: {:?}; the sessions that answered: {answered:?}; \
         the spare's: {spare_sid}",
        dirs_in(&work)
    );
}

#[test]
fn drain_ends_the_spare_and_removes_its_unused_directory() {
    let records = temp_dir("spares-drain-records");
    let state = temp_dir("spares-drain-state");
    let work = state.join("work");
    let records_s = records.display().to_string();
    let state_s = state.display().to_string();
    let path = std::env::var("PATH").unwrap_or_default();
    // Dropped after the server (killed if the test fails before its
    // drain): no CLI of this test outlives it.
    let _reaper = Reaper(records.clone());
    let mut server = binary::Running::start(&[
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
        ("STATE_DIR", &state_s),
        ("FAKE_CLAUDE_RECORD_DIR", &records_s),
        ("CLAUDE_ENV_PASSTHROUGH", "FAKE_CLAUDE_RECORD_DIR"),
        ("RATE_LIMIT_PER_IP", "0"),
        ("WARM_SESSIONS", "4"),
        ("WARM_SPARES", "1"),
        ("WARM_MIN_FREE_MB", "0"),
        ("WARM_IDLE_MS", "120000"),
        ("SHUTDOWN_TIMEOUT_MS", "5000"),
    ]);
    let addr = server.addr();
    let spares = || -> Vec<Fake> {
        let recorded = pids_in(&records);
        live_fakes(&records)
            .into_iter()
            .filter(|f| !recorded.contains(&f.pid))
            .collect()
    };
    let health_spares = || get(addr, "/health").json()["checks"]["warm"]["spares"].clone();
    let spare_ready = || {
        wait_until(Duration::from_secs(10), || {
            health_spares() == 1 && spares().len() == 1
        })
    };

    assert!(spare_ready(), "no spare: {}", health_spares());
    let first = spares().remove(0);
    let r = chat(addr, &[CLAUDE], &body("sonnet", &[user("drain spare 1")]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Warm"), Some("true"));
    let sid = r.header("X-Claude-Session-ID").unwrap().to_string();
    assert_eq!(Some(sid.clone()), first.flag("--session-id"));
    assert!(
        spare_ready(),
        "no spare after the first: {}",
        health_spares()
    );
    let spare = spares().remove(0);
    let spare_sid = sid_of(&spare);
    assert!(dirs_in(&work).contains(&spare_sid), "{:?}", dirs_in(&work));

    let took = server.drain();
    assert!(
        took < Duration::from_secs(5),
        "the spare held the drain for {took:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || live_fakes(&records).is_empty()),
        "processes left after the drain: {:?}",
        live_fakes(&records)
    );
    assert_all_gone(&pids_in(&records));
    assert!(!process_alive(spare.pid));
    assert!(
        wait_until(Duration::from_secs(5), || dirs_in(&work) == [sid.clone()]),
        "left in the work root: {:?}; the session that answered: {sid}; the spare's: {spare_sid}",
        dirs_in(&work)
    );
}

#[test]
fn a_spare_holding_the_only_slot_gives_it_up_to_a_new_session_of_another_shape() {
    // Queueing for the slot would take the whole pool timeout.
    let w = Warm::start_with(
        &[
            ("MAX_CONCURRENT_PROCESSES", "1"),
            ("POOL_QUEUE_TIMEOUT_MS", "20000"),
        ],
        one_spare,
    );
    let spare = w.wait_spares(1).remove(0);
    let spare_sid = sid_of(&spare);

    let started = Instant::now();
    let system = json!({"role": "system", "content": "Be brief."});
    let a = w.ask(&[CLAUDE], body("sonnet", &[system, user("one slot 1")]));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for the spare's slot",
        started.elapsed()
    );
    assert!(a.created() && !a.warm());
    assert_eq!(a.turns(), 1, "{}", a.content);
    assert_ne!(w.run_of("one slot 1").pid, spare.pid);
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(spare.pid)),
        "the spare was not closed for the slot"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !w
            .work_dirs()
            .contains(&spare_sid)),
        "the closed spare's directory is left: {:?}",
        w.work_dirs()
    );

    // A default-shape session after it is answered promptly too (by a
    // spare started again, or a new process in the warm one's slot).
    let started = Instant::now();
    let b = w.say(None, "sonnet", "one slot 2");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for the slot",
        started.elapsed()
    );
    assert!(b.created());
    assert_eq!(b.turns(), 1, "{}", b.content);
    assert_ne!(b.sid, a.sid);
    w.finish();
}

#[test]
fn a_spare_waiting_longer_than_the_request_timeout_still_serves_warm() {
    // A spare has had no turn, so it has no turn deadline: waiting for
    // its session past REQUEST_TIMEOUT_MS (and the kill grace) must not
    // cost it its warmth.
    let w = Warm::start_with(
        &[
            ("REQUEST_TIMEOUT_MS", "1000"),
            ("CLAUDE_KILL_GRACE_MS", "200"),
        ],
        one_spare,
    );
    let spare = w.wait_spares(1).remove(0);
    // Time for the timeout and the grace to pass, or for the spare to die.
    let stopped = wait_until(Duration::from_millis(2500), || !process_alive(spare.pid));
    let health = w.health_warm();
    let r = chat(w.addr(), &[CLAUDE], &body("sonnet", &[user("patient 1")]));
    assert_eq!(
        r.header("X-Claude-Warm"),
        Some("true"),
        "the new session did not run on the spare; the spare (pid {}) was {} \
         while it waited, and /health said {health} before the request; got {} {}",
        spare.pid,
        if stopped { "stopped" } else { "alive" },
        r.status,
        r.text()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("X-Claude-Session-Created"), Some("true"));
    assert_eq!(
        r.header("X-Claude-Session-ID"),
        Some(sid_of(&spare).as_str())
    );
    let content = r.json()["choices"][0]["message"]["content"].clone();
    assert_eq!(content.as_str().and_then(turns_in), Some(1), "{}", r.text());
    assert!(!stopped);
    w.finish();
}

#[test]
fn a_spare_idle_past_warm_idle_is_replaced_and_its_directory_removed() {
    let w = Warm::start_with(&[], |c| {
        one_spare(c);
        c.warm_idle = Duration::from_millis(1000);
    });
    let old = w.wait_spares(1).remove(0);
    let old_sid = sid_of(&old);
    assert!(w.work_dirs().contains(&old_sid));
    assert!(
        wait_until(Duration::from_secs(10), || w
            .spares()
            .iter()
            .any(|s| s.pid != old.pid)),
        "the idle spare was not replaced: {:?}",
        w.spares()
    );
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        old.pid
    )));
    assert!(
        wait_until(Duration::from_secs(5), || !w.work_dirs().contains(&old_sid)),
        "the replaced spare's directory is left: {:?}",
        w.work_dirs()
    );
    // The replacement serves a new session, on its own session id.
    let new = w.wait_spares(1).remove(0);
    let a = w.say(None, "sonnet", "replaced 1");
    assert!(a.warm());
    assert_eq!(a.sid, sid_of(&new));
    assert_ne!(a.sid, old_sid);
    w.finish();
}
